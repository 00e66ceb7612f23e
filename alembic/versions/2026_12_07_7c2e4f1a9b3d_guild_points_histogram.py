"""guild points histogram

Reviewed by hand: `guild_points_histogram`, how many of each guild's members hold
each number of points (members with points only), kept by statement-level triggers
on guild_members (after INSERT, UPDATE, DELETE and TRUNCATE) as `ranked_members` is
(migration a95d8780a54d), so every writer of points keeps it without knowing. A
member's rank on the guild's all-time board is one plus the histogram's members
above their points: one row per distinct total, where counting the members ahead in
the board's index took 90 ms in the middle of a million members and 150 ms at the
bottom.

A call adds what the statement moved to each (guild, points) row in key order, so
two statements that move the same rows queue instead of deadlocking, then deletes
the rows it emptied. A row a decrement finds missing (a histogram out of step with
its members, which only a write that skipped the triggers leaves) is created below
zero and deleted at once, so such a drift never fails a member's write. There is no
foreign key to guilds: a guild's removal empties its rows through its members'
deletion, and a cascade from guilds could run before that and leave the decrements
no row to find. The triggers' names sort before the `ranked_members` ones, so an
INSERT, UPDATE or DELETE takes the histogram's rows, then the guilds' rows. Not so a
multi-row INSERT ... ON CONFLICT DO UPDATE that both inserts and updates members with
points: PostgreSQL fires its UPDATE triggers before its INSERT ones, so it takes
histogram rows, guild rows, then histogram rows again, out of one key order. No
writer does that: the answer's upsert with points is one member's, and the batch's
upserts of members carry no points.

The upgrade creates the table and the triggers, then fills the table from the
members. CREATE TRIGGER locks guild_members against writes until the migration
commits, so no write falls between the fill and the triggers. The downgrade drops
the triggers, the function and the table.

Revision ID: 7c2e4f1a9b3d
Revises: d2b7c41e9a05
Create Date: 2026-12-07 07:02:49.751729

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7c2e4f1a9b3d'
down_revision: Union[str, Sequence[str], None] = 'd2b7c41e9a05'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Add what the statement moved to each (guild, points) row in key order, then delete
# the rows it left empty; {rows} is the members it changed, as they are after it (+1
# each with points) and before it (-1 each).
_MOVE = """
        WITH moved AS (
            INSERT INTO guild_points_histogram AS h (guild_id, points, members)
            SELECT guild_id, points, sum(delta) FROM ({rows}) AS d
            GROUP BY guild_id, points HAVING sum(delta) <> 0 ORDER BY guild_id, points
            ON CONFLICT (guild_id, points) DO UPDATE SET members = h.members + excluded.members
            RETURNING h.guild_id, h.points, h.members
        )
        SELECT array_agg(guild_id), array_agg(points) INTO emptied_guilds, emptied_points
        FROM moved WHERE members <= 0;
        IF emptied_guilds IS NOT NULL THEN
            DELETE FROM guild_points_histogram h
            USING unnest(emptied_guilds, emptied_points) AS e(guild_id, points)
            WHERE h.guild_id = e.guild_id AND h.points = e.points AND h.members <= 0;
        END IF;"""
_AFTER = "SELECT guild_id, points, 1 AS delta FROM new_members WHERE points > 0"
_BEFORE = "SELECT guild_id, points, -1 AS delta FROM old_members WHERE points > 0"

FUNCTION = f"""
CREATE FUNCTION guild_points_histogram_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    emptied_guilds bigint[];
    emptied_points bigint[];
BEGIN
    -- Each branch names only the transition tables its trigger declares.
    IF TG_OP = 'INSERT' THEN{_MOVE.format(rows=_AFTER)}
    ELSIF TG_OP = 'UPDATE' THEN{_MOVE.format(rows=_AFTER + " UNION ALL " + _BEFORE)}
    ELSIF TG_OP = 'DELETE' THEN{_MOVE.format(rows=_BEFORE)}
    ELSE  -- TRUNCATE: no member is left anywhere
        DELETE FROM guild_points_histogram;
    END IF;
    RETURN NULL;
END
$$
"""
TRIGGERS = {
    "guild_members_histogram_insert": "AFTER INSERT ON guild_members "
    "REFERENCING NEW TABLE AS new_members",
    "guild_members_histogram_update": "AFTER UPDATE ON guild_members "
    "REFERENCING OLD TABLE AS old_members NEW TABLE AS new_members",
    "guild_members_histogram_delete": "AFTER DELETE ON guild_members "
    "REFERENCING OLD TABLE AS old_members",
    "guild_members_histogram_truncate": "AFTER TRUNCATE ON guild_members",
}


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('guild_points_histogram',
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('guild_id', 'points', name=op.f('pk_guild_points_histogram'))
    )
    op.execute(FUNCTION)
    for name, when in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} "
            "FOR EACH STATEMENT EXECUTE FUNCTION guild_points_histogram_moved()"
        )
    op.execute(
        "INSERT INTO guild_points_histogram (guild_id, points, members) "
        "SELECT guild_id, points, count(*) FROM guild_members WHERE points > 0 "
        "GROUP BY guild_id, points"
    )


def downgrade() -> None:
    """Downgrade schema."""
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON guild_members")
    op.execute("DROP FUNCTION guild_points_histogram_moved()")
    op.drop_table('guild_points_histogram')
