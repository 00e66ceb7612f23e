"""member daily points member topics index

Reviewed by hand: the member index of member_daily_points, (user_id), becomes
(user_id, guild_id, topic) INCLUDE (answers, correct). A member's topics over all
their days (/stats' per-topic accuracy, a quiz's end) are then one index-only range
in topic order (a member with 1,015 days and topics: 0.3-0.4 ms; 0.6-0.7 ms from a
key-only index, which must read the rows and sort them), and the foreign key's
cascade still finds a member's rows by it. The cost is on the write: an upsert of a
day that adds wrong answers only (no points) was a HOT update and no longer is, since
`answers` is now in an index (250 such rows: 4.3 -> 5.8 ms, measured on the
benchmark's data); an upsert that adds points never was, since the primary key and
the day index INCLUDE the points.

Its own revision, not part of 4d0e32064bb6: a database that ran that revision before
the index was added to it must still get the index. DROP INDEX takes an ACCESS
EXCLUSIVE lock on member_daily_points until the upgrade commits, and the new index
is built in one sort meanwhile. The downgrade puts the old index back.

Revision ID: d2b7c41e9a05
Revises: 4d0e32064bb6
Create Date: 2026-12-06 22:50:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = 'd2b7c41e9a05'
down_revision: Union[str, Sequence[str], None] = '4d0e32064bb6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_index('ix_member_daily_points_user_id', table_name='member_daily_points')
    op.create_index('ix_member_daily_points_member_topics', 'member_daily_points', ['user_id', 'guild_id', 'topic'], unique=False, postgresql_include=['answers', 'correct'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_member_daily_points_member_topics', table_name='member_daily_points', postgresql_include=['answers', 'correct'])
    op.create_index('ix_member_daily_points_user_id', 'member_daily_points', ['user_id'], unique=False)
