"""guild ranked members

Reviewed by hand: `guilds.ranked_members`, the number of the guild's members with
points (the size of its board, which /stats shows), kept by statement-level
triggers on guild_members (after INSERT, UPDATE, DELETE and TRUNCATE), so every
writer of points (answer batches, awards, season resets, member and guild deletion,
cascades) keeps it without knowing. Counting those members took 60 ms at a million
members; reading the column takes one index lookup.

Statement-level triggers with transition tables: one call per statement however
many rows it changed (a season reset of a million members is one call, not a
million), and no column list, which PostgreSQL does not allow with transition
tables. A call moves a guild's count only where the statement changed how many of
its members have points, locking those guilds in key order, so two statements that
move the same guilds queue instead of deadlocking. An INSERT ... ON CONFLICT DO
UPDATE fires the UPDATE trigger, then the INSERT trigger: an upsert that brings
members of several guilds onto the board at once is not ordered across the two
calls. No writer does that (a member's first points come from an UPDATE, and the
upserts that create members create them without points, which moves no count).
Cost, measured on the benchmark's dataset, alternating blocks with the triggers on
and off: about 0.1 ms of server time per UPDATE of 50 members (11 % of that
statement), a few microseconds per statement that changes no row.

The upgrade creates the triggers, then fills the column from the members. CREATE
TRIGGER locks guild_members against writes until the migration commits, so no
write falls between the count and the triggers; ADD COLUMN locks guilds for the
whole upgrade (a second or two at a million members), so commands wait meanwhile.
The downgrade drops the triggers, the function and the column.

Revision ID: a95d8780a54d
Revises: 60e57fa0104d
Create Date: 2026-12-06 19:31:39.789286

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'a95d8780a54d'
down_revision: Union[str, Sequence[str], None] = '60e57fa0104d'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Move each guild's count by how much the statement moved it, guilds in key order;
# {rows} is the members it changed, as they are after it (+1 each with points) and
# before it (-1 each).
_MOVE = """
        FOR moved IN
            SELECT guild_id, sum(delta) AS delta FROM ({rows}) AS d
            GROUP BY guild_id HAVING sum(delta) <> 0 ORDER BY guild_id
        LOOP
            UPDATE guilds SET ranked_members = ranked_members + moved.delta
            WHERE guild_id = moved.guild_id;
        END LOOP;"""
_AFTER = "SELECT guild_id, 1 AS delta FROM new_members WHERE points > 0"
_BEFORE = "SELECT guild_id, -1 AS delta FROM old_members WHERE points > 0"

FUNCTION = f"""
CREATE FUNCTION guild_ranked_members_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved record;
BEGIN
    -- Each branch names only the transition tables its trigger declares.
    IF TG_OP = 'INSERT' THEN{_MOVE.format(rows=_AFTER)}
    ELSIF TG_OP = 'UPDATE' THEN{_MOVE.format(rows=_AFTER + " UNION ALL " + _BEFORE)}
    ELSIF TG_OP = 'DELETE' THEN{_MOVE.format(rows=_BEFORE)}
    ELSE  -- TRUNCATE: no member is left anywhere
        UPDATE guilds SET ranked_members = 0 WHERE ranked_members <> 0;
    END IF;
    RETURN NULL;
END
$$
"""
TRIGGERS = {
    "guild_members_ranked_insert": "AFTER INSERT ON guild_members "
    "REFERENCING NEW TABLE AS new_members",
    "guild_members_ranked_update": "AFTER UPDATE ON guild_members "
    "REFERENCING OLD TABLE AS old_members NEW TABLE AS new_members",
    "guild_members_ranked_delete": "AFTER DELETE ON guild_members "
    "REFERENCING OLD TABLE AS old_members",
    "guild_members_ranked_truncate": "AFTER TRUNCATE ON guild_members",
}


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('guilds', sa.Column('ranked_members', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    op.execute(FUNCTION)
    for name, when in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} "
            "FOR EACH STATEMENT EXECUTE FUNCTION guild_ranked_members_moved()"
        )
    op.execute(
        "UPDATE guilds g SET ranked_members = c.members FROM ("
        "SELECT guild_id, count(*) AS members FROM guild_members WHERE points > 0 "
        "GROUP BY guild_id) AS c WHERE g.guild_id = c.guild_id"
    )


def downgrade() -> None:
    """Downgrade schema."""
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON guild_members")
    op.execute("DROP FUNCTION guild_ranked_members_moved()")
    op.drop_column('guilds', 'ranked_members')
