"""member daily correct answers

Reviewed by hand: `member_daily_points.correct`, how many of a member's answers of
the day in the topic were right. Summed over the member's days, it gives /stats'
per-topic accuracy and what the end-of-quiz achievements count (topics with a
correct answer, topics mastered), which were aggregated from the member's whole
answer history: a statement that grew with every answer, run at every quiz's end
while the players' rows are locked. The days are far fewer rows than the answers,
and the column rides on the upsert every answer already makes (no new row or
statement). The member index (user_id) becomes (user_id, guild_id, topic) INCLUDE
(answers, correct): a member's topics are then one index-only range in topic order
(a member with 1,015 days and topics: 0.3-0.4 ms; 0.6-0.7 ms from a key-only index,
which must read the rows and sort them), and the foreign key's cascade still finds a
member's rows by it. The cost is on the write: an upsert of a day that adds wrong
answers only (no points) was a HOT update and no longer is, since `answers` is now
in an index (250 such rows: 4.3 -> 5.8 ms, measured on the benchmark's data); an
upsert that adds points never was, since the primary key and the day index INCLUDE
the points.

ADD COLUMN with a constant default changes no row. The upgrade then fills the
column from the stored answers, per (guild, UTC day, member, topic) as the rows were
filled by 72f1d3577c5a; rows of answers that are gone (a deleted question takes its
answers along) keep those answers in `answers` but cannot count them as correct. The
fill rewrites every row with a correct answer (dead versions for the next vacuum),
and the index is built after it (one sort).

Locks: ADD COLUMN and DROP INDEX take an ACCESS EXCLUSIVE lock on
member_daily_points, held until the upgrade commits (all pending revisions run in one
transaction), so answers, /stats, quiz ends and the day, topic and global boards wait
for the fill and the index build. Measured on the benchmark's standard data after a
run (266,000 answers, 33,853 rows): 0.45 s for the fill; it grows with the answers
(the fill reads them all). Stop running bots before upgrading: a bot of the previous
version would keep adding answers without their correct ones, lowering its players'
per-topic accuracy for good (re-derive the column from the answers with this fill to
repair). The downgrade puts the old index back and drops the column (the answers
stay, so nothing is lost).

Revision ID: 4d0e32064bb6
Revises: a95d8780a54d
Create Date: 2026-12-06 21:00:44.555636

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '4d0e32064bb6'
down_revision: Union[str, Sequence[str], None] = 'a95d8780a54d'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('member_daily_points', sa.Column('correct', sa.Integer(), server_default=sa.text('0'), nullable=False))
    # The day is taken in UTC whatever the session's TimeZone, as the rows' days are.
    op.execute(
        "UPDATE member_daily_points d SET correct = a.correct "
        "FROM (SELECT guild_id, CAST(timezone('UTC', answered_at) AS date) AS day, user_id, "
        "topic, count(*) AS correct FROM answers WHERE correct GROUP BY 1, 2, 3, 4) a "
        "WHERE d.guild_id = a.guild_id AND d.day = a.day AND d.user_id = a.user_id "
        "AND d.topic = a.topic"
    )
    op.drop_index('ix_member_daily_points_user_id', table_name='member_daily_points')
    op.create_index('ix_member_daily_points_member_topics', 'member_daily_points', ['user_id', 'guild_id', 'topic'], unique=False, postgresql_include=['answers', 'correct'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_member_daily_points_member_topics', table_name='member_daily_points', postgresql_include=['answers', 'correct'])
    op.create_index('ix_member_daily_points_user_id', 'member_daily_points', ['user_id'], unique=False)
    op.drop_column('member_daily_points', 'correct')
