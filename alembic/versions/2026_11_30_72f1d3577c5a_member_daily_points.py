"""member daily points

Reviewed by hand: the per-day points roll-up that day/week/month and topic
boards read instead of summing answers. Autogenerate dropped the primary key's
INCLUDE (points), which makes the guild board an index-only scan: added back
here (`alembic check` does not compare it). The upgrade fills the table from
the answers already stored, in the same transaction as the DDL, before the
secondary indexes are built (one sort each, not row by row); the downgrade
drops the table (the answers stay, so nothing is lost).

Revision ID: 72f1d3577c5a
Revises: 55d06c60c2ef
Create Date: 2026-11-30 20:07:31.610126

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '72f1d3577c5a'
down_revision: Union[str, Sequence[str], None] = '55d06c60c2ef'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('member_daily_points',
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('points', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('answers', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.ForeignKeyConstraint(['guild_id', 'user_id'], ['guild_members.guild_id', 'guild_members.user_id'], name=op.f('fk_member_daily_points_guild_id_guild_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guild_id', 'day', 'user_id', 'topic', name=op.f('pk_member_daily_points'), postgresql_include=['points'])
    )
    # Backfill: one row per (guild, UTC day, member, topic) of the stored answers. The
    # day is taken in UTC whatever the session's TimeZone, as the boards' windows are.
    # Answers without a guild_members row (the bot creates it with the first answer
    # and deletes both together) cannot be referenced and are left out.
    op.execute(
        "INSERT INTO member_daily_points (guild_id, day, user_id, topic, points, answers) "
        "SELECT a.guild_id, CAST(timezone('UTC', a.answered_at) AS date), a.user_id, a.topic, "
        "sum(a.points), count(*) "
        "FROM answers a "
        "WHERE EXISTS (SELECT 1 FROM guild_members gm "
        "WHERE gm.guild_id = a.guild_id AND gm.user_id = a.user_id) "
        "GROUP BY 1, 2, 3, 4"
    )
    op.create_index('ix_member_daily_points_day', 'member_daily_points', ['day'], unique=False, postgresql_include=['user_id', 'topic', 'points'])
    op.create_index('ix_member_daily_points_user_id', 'member_daily_points', ['user_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_member_daily_points_user_id', table_name='member_daily_points')
    op.drop_index('ix_member_daily_points_day', table_name='member_daily_points', postgresql_include=['user_id', 'topic', 'points'])
    op.drop_table('member_daily_points')
