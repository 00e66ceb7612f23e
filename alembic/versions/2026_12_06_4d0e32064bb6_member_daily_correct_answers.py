"""member daily correct answers

Reviewed by hand: `member_daily_points.correct`, how many of a member's answers of
the day in the topic were right. Summed over the member's days, it gives /stats'
per-topic accuracy and what the end-of-quiz achievements count (topics with a
correct answer, topics mastered), which were aggregated from the member's whole
answer history: a statement that grew with every answer, run at every quiz's end
while the players' rows are locked. The days are far fewer rows than the answers,
and the column rides on the upsert every answer already makes (no new row or
statement). The next revision (d2b7c41e9a05) indexes it for that read.

ADD COLUMN with a constant default changes no row. The upgrade then fills the
column from the stored answers, per (guild, UTC day, member, topic) as the rows were
filled by 72f1d3577c5a; rows of answers that are gone (a deleted question takes its
answers along) keep those answers in `answers` but cannot count them as correct. The
fill rewrites every row with a correct answer (dead versions for the next vacuum).

Locks: ADD COLUMN takes an ACCESS EXCLUSIVE lock on member_daily_points, held until
the upgrade commits (all pending revisions run in one transaction), so answers,
/stats, quiz ends and the day, topic and global boards wait for the fill. Measured on
the benchmark's standard data after a run (266,000 answers, 33,853 rows): 0.45 s for
the fill; it grows with the answers (the fill reads them all). Stop running bots
before upgrading: a bot of the previous version would keep adding answers without
their correct ones, lowering its players' per-topic accuracy for good (re-derive the
column from the answers with this fill to repair). The downgrade drops the column
(the answers stay, so nothing is lost).

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


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('member_daily_points', 'correct')
