"""member period points

Reviewed by hand: each member's points per week and per month (UTC), which the
weekly and monthly guild boards rank with one index instead of summing a
window of the per-day roll-up. The upgrade fills the table from the per-day
roll-up (its sums, windows with points only), in the same transaction as the
DDL and before the indexes are built; the downgrade drops the table (the
answers and the days stay, so nothing is lost). Stop running bots before this
upgrade: a bot of the previous version writes days but no weeks or months.

Revision ID: 60e57fa0104d
Revises: cee4495a388f
Create Date: 2026-12-01 03:21:46.006404

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '60e57fa0104d'
down_revision: Union[str, Sequence[str], None] = 'cee4495a388f'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('member_period_points',
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=5), nullable=False),
    sa.Column('starts', sa.Date(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.CheckConstraint("period IN ('week', 'month')", name=op.f('ck_member_period_points_period')),
    sa.ForeignKeyConstraint(['guild_id', 'user_id'], ['guild_members.guild_id', 'guild_members.user_id'], name=op.f('fk_member_period_points_guild_id_guild_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guild_id', 'period', 'starts', 'user_id', name=op.f('pk_member_period_points'))
    )
    # Backfill: the windows' sums of the days, as the writers keep them. The days are
    # UTC dates already; through `timestamp`, date_trunc ignores the session's TimeZone.
    op.execute(
        "INSERT INTO member_period_points (guild_id, period, starts, user_id, points) "
        "SELECT d.guild_id, k.period, "
        "CAST(date_trunc(k.period, CAST(d.day AS timestamp)) AS date), d.user_id, "
        "sum(d.points) "
        "FROM member_daily_points d CROSS JOIN (VALUES ('week'), ('month')) AS k(period) "
        "GROUP BY 1, 2, 3, 4 HAVING sum(d.points) > 0"
    )
    op.create_index('ix_member_period_points_board', 'member_period_points', ['guild_id', 'period', 'starts', sa.literal_column('points DESC'), 'user_id'], unique=False)
    op.create_index('ix_member_period_points_user_id', 'member_period_points', ['user_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_member_period_points_user_id', table_name='member_period_points')
    op.drop_index('ix_member_period_points_board', table_name='member_period_points')
    op.drop_table('member_period_points')
