"""Seeding a benchmark database with bulk SQL (`INSERT ... SELECT generate_series`).

Everything is generated server-side, so even the large scale needs no data
shipped from Python. The data is deterministic (no random()), so two runs of a
scale seed identical databases. Ids live in fixed ranges the players reuse:

- guilds: GUILD_BASE + 1 .. + guilds
- users / members: USER_BASE + 1 .. + members; member i belongs to guild `guild_of(i)`
- questions: the shared bank (guild_id NULL), all multiple choice; the right
  choice is the text RIGHT, so a simulated player can answer right or wrong on purpose.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from bench.config import Scale
from quizbot.levels import LEVEL_SQL
from quizbot.models.guild import (
    PERIOD_POINTS_FROM_DAYS_SQL,
    POINTS_HISTOGRAM_FROM_MEMBERS_SQL,
    RANKED_MEMBERS_FROM_MEMBERS_SQL,
)
from quizbot.services.achievements import catalogue_rows

GUILD_BASE = 1_000_000
USER_BASE = 2_000_000_000
PAST_CHANNEL_BASE = 3_000_000
RIGHT = "right"
WRONG = ("wrong 1", "wrong 2", "wrong 3")
ANSWERS_PER_PAST_QUIZ = 10
TOPICS = 10

# Hot indexes of the schema: the legacy copy drops them (the plan's starting
# point had none of the composite indexes). Primary keys and unique constraints
# stay: they are correctness (ON CONFLICT, one active quiz per channel), not speed.
HOT_INDEXES = (
    "ix_guild_members_leaderboard",
    "ix_users_points_rank",
    "ix_questions_pool",
    "ix_quiz_sessions_user_recent",
    "ix_user_achievements_recent",
    "ix_answers_user_guild_recent",
    # A member's topics over their days (/stats, a quiz's end); it also serves the
    # foreign key's cascade, which the benchmark does not exercise.
    "ix_member_daily_points_member_topics",
)


def guild_of(member: int, scale: Scale) -> int:
    """The guild id of member number `member` (1-based)."""
    return GUILD_BASE + 1 + (member % scale.guilds)


def user_of(member: int) -> int:
    """The user id of member number `member` (1-based)."""
    return USER_BASE + member


@dataclass(frozen=True)
class SeedReport:
    """What was seeded."""

    guilds: int
    members: int
    questions: int
    past_sessions: int
    past_answers: int
    seconds: float


def _steps(scale: Scale) -> list[tuple[str, str]]:
    g, m, q = scale.guilds, scale.members, scale.questions
    sessions = max(1, scale.past_answers // ANSWERS_PER_PAST_QUIZ)
    stride = max(1, q // ANSWERS_PER_PAST_QUIZ)
    level = LEVEL_SQL.format(xp="a.xp")
    return [
        (
            "guilds",
            f"INSERT INTO guilds (guild_id, name) "
            f"SELECT {GUILD_BASE} + g, 'Guild ' || g FROM generate_series(1, {g}) g",
        ),
        (
            "users",
            f"INSERT INTO users (user_id, name) "
            f"SELECT {USER_BASE} + i, 'player' || i FROM generate_series(1, {m}) i",
        ),
        (
            "members",
            f"INSERT INTO guild_members (guild_id, user_id, display_name, joined_at) "
            f"SELECT {GUILD_BASE} + 1 + (i % {g}), {USER_BASE} + i, 'player' || i, "
            f"now() - interval '90 days' FROM generate_series(1, {m}) i",
        ),
        (
            "questions",
            "INSERT INTO questions (guild_id, topic, category, difficulty, kind, prompt, "
            "choices, answer, explanation, source, content_hash) "
            f"SELECT NULL, 'topic' || (i % {TOPICS}), 'cat' || (i % 3), "
            "(ARRAY['easy','medium','hard'])[1 + i % 3], 'multiple_choice', "
            "'Benchmark question ' || i || '?', "
            f'\'["{RIGHT}","{WRONG[0]}","{WRONG[1]}","{WRONG[2]}"]\'::jsonb, '
            f"'{RIGHT}', 'Because.', 'bench', md5('bench' || i) "
            f"FROM generate_series(1, {q}) i",
        ),
        (
            "past quizzes",
            # Session s belongs to member ui = 1 + (s * 7919 % m) (a stride that
            # spreads sessions over members) and asks 10 distinct questions.
            "WITH q AS (SELECT array_agg(id ORDER BY id) AS ids FROM questions), "
            f"s AS (SELECT s, 1 + ((s::bigint * 7919) % {m}) AS ui "
            f"FROM generate_series(1, {sessions}) s) "
            "INSERT INTO quiz_sessions (guild_id, channel_id, user_id, mode, status, "
            "difficulty, question_ids, position, time_limit, created_at, finished_at) "
            f"SELECT {GUILD_BASE} + 1 + (s.ui % {g}), {PAST_CHANNEL_BASE} + s.s, "
            f"{USER_BASE} + s.ui, 'solo', 'finished', 'mixed', "
            f"ARRAY(SELECT q.ids[1 + ((s.s * 37 + k * {stride}) % {q})] "
            f"FROM generate_series(0, {ANSWERS_PER_PAST_QUIZ - 1}) k), "
            f"{ANSWERS_PER_PAST_QUIZ - 1}, 30, "
            "now() - (s.s % 60) * interval '1 day' - (s.s % 86400) * interval '1 second', "
            "now() - (s.s % 60) * interval '1 day' - (s.s % 86400) * interval '1 second' "
            "+ interval '5 minutes' "
            "FROM s CROSS JOIN q",
        ),
        (
            "past answers",
            "INSERT INTO answers (session_id, question_id, user_id, guild_id, topic, given, "
            "correct, response_ms, points, answered_at) "
            f"SELECT s.id, t.qid, s.user_id, s.guild_id, qu.topic, "
            f"CASE WHEN c.ok THEN '{RIGHT}' ELSE '{WRONG[0]}' END, c.ok, "
            "1000 + (s.id * 13 + t.k * 101) % 20000, "
            "CASE WHEN c.ok THEN 50 + ((s.id * 40503 + t.k * 9973) / 16) % 100 ELSE 0 END, "
            "s.created_at + t.k * interval '10 seconds' "
            "FROM quiz_sessions s "
            "CROSS JOIN LATERAL unnest(s.question_ids) WITH ORDINALITY AS t(qid, k) "
            "JOIN questions qu ON qu.id = t.qid "
            # Pseudo-random per answer (about 60 % right) and 50-149 points for a right
            # one, so members' totals spread like a real board's. (A pattern that gave
            # every member the same total made every rank 1 and counting ranks free.)
            "CROSS JOIN LATERAL (SELECT ((s.id * 1103515245 + t.k * 2654435761) / 65536) "
            "% 10 < 6 AS ok) c",
        ),
        (
            "daily points",
            # The period boards' roll-up, as quizbot's answer writes keep it: per guild,
            # UTC day, member and topic (the migrations' backfill statements in one).
            "INSERT INTO member_daily_points (guild_id, day, user_id, topic, points, answers, "
            "correct) "
            "SELECT guild_id, CAST(timezone('UTC', answered_at) AS date), user_id, topic, "
            "sum(points), count(*), count(*) FILTER (WHERE correct) "
            "FROM answers GROUP BY 1, 2, 3, 4",
        ),
        (
            "week and month points",
            # The weekly and monthly boards' sums, as the answer writes keep them.
            PERIOD_POINTS_FROM_DAYS_SQL,
        ),
        (
            "past quiz totals",
            "UPDATE quiz_sessions s SET answered_count = a.n, correct_count = a.c, "
            "points_earned = a.p FROM (SELECT session_id, count(*) AS n, "
            "count(*) FILTER (WHERE correct) AS c, sum(points) AS p FROM answers "
            "GROUP BY session_id) a WHERE s.id = a.session_id",
        ),
        (
            "member totals",
            # Totals agree with the answers, as the bot would have left them.
            f"UPDATE guild_members gm SET points = a.points, xp = a.xp, level = {level}, "
            "answered = a.n, correct = a.c, quizzes_taken = a.n / "
            f"{ANSWERS_PER_PAST_QUIZ}, best_streak = least(a.c, 5), last_active = a.last, "
            "last_active_day = a.last::date "
            "FROM (SELECT guild_id, user_id, sum(points) AS points, 10 * count(*) AS xp, "
            "count(*) AS n, count(*) FILTER (WHERE correct) AS c, max(answered_at) AS last "
            "FROM answers GROUP BY guild_id, user_id) a "
            "WHERE gm.guild_id = a.guild_id AND gm.user_id = a.user_id",
        ),
        # What the triggers on guild_members keep, which the seed's replica role skips.
        ("board sizes", RANKED_MEMBERS_FROM_MEMBERS_SQL),
        ("board histograms", POINTS_HISTOGRAM_FROM_MEMBERS_SQL),
        (
            "user totals",
            f"UPDATE users u SET points = a.points, xp = a.xp, level = {level} "
            "FROM (SELECT user_id, sum(points) AS points, sum(xp) AS xp FROM guild_members "
            "GROUP BY user_id) a WHERE u.user_id = a.user_id",
        ),
        (
            "review cards",
            # The spaced-repetition cards the past quizzes' ends left: one per member and
            # question answered, due a few days after its last answer (more when it was
            # answered right), so some are due now and some later.
            "INSERT INTO review_cards (user_id, question_id, due, stability, difficulty, "
            "reps, lapses, last_review) "
            "SELECT user_id, question_id, "
            "max(answered_at) + (1 + 3 * count(*) FILTER (WHERE correct)) * interval '1 day', "
            "1 + 3 * count(*) FILTER (WHERE correct), 5, count(*), "
            "count(*) FILTER (WHERE NOT correct), max(answered_at) "
            "FROM answers GROUP BY user_id, question_id",
        ),
        (
            "achievements",
            "INSERT INTO user_achievements (user_id, guild_id, code, earned_at) "
            "SELECT gm.user_id, gm.guild_id, a.code, now() - interval '3 days' "
            "FROM guild_members gm CROSS JOIN "
            "(SELECT code FROM achievements ORDER BY code LIMIT 3) a "
            "WHERE gm.user_id % 10 = 0 AND gm.answered > 0",
        ),
    ]


async def seed(
    url_args: dict[str, object],
    scale: Scale,
    progress: Callable[[str, int, int], None] | None = None,
) -> SeedReport:
    """Fill a freshly migrated database with `scale`'s dataset, then VACUUM ANALYZE it.

    Args:
        url_args: asyncpg.connect keyword arguments of the database.
        scale: the sizes.
        progress: called with (step name, steps done, steps in all).
    """
    import time

    began = time.perf_counter()
    steps = _steps(scale)
    total = len(steps) + 2
    conn = await asyncpg.connect(**url_args)
    try:
        # The achievements catalogue, as App.bootstrap would upsert it.
        await conn.executemany(
            "INSERT INTO achievements (code, name, description, icon, xp_reward) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING",
            [(a.code, a.name, a.description, a.icon, a.xp_reward) for a in catalogue_rows()],
        )
        if progress:
            progress("achievements catalogue", 1, total)
        # Bulk loading: no WAL flush wait per statement.
        await conn.execute("SET synchronous_commit = off")
        # The generated rows are consistent by construction: skip the per-row
        # foreign-key triggers (10M deferred checks at the large scale). Superuser only.
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET session_replication_role = replica")
        for done, (name, sql) in enumerate(steps, start=2):
            await conn.execute(sql)
            if progress:
                progress(name, done, total)
        await conn.execute("VACUUM ANALYZE")
        if progress:
            progress("vacuum analyze", total, total)
        sessions = await conn.fetchval("SELECT count(*) FROM quiz_sessions")
        answers = await conn.fetchval("SELECT count(*) FROM answers")
    finally:
        await conn.close()
    return SeedReport(
        guilds=scale.guilds,
        members=scale.members,
        questions=scale.questions,
        past_sessions=int(sessions),
        past_answers=int(answers),
        seconds=time.perf_counter() - began,
    )


async def disable_kept_counts(url_args: dict[str, object]) -> None:
    """Switch off quizbot's own triggers on guild_members, which keep each guild's board
    size (guilds.ranked_members) and histogram of points (guild_points_histogram): the
    legacy copy, as the plan had no such thing.
    (Foreign keys are internal triggers: `USER` leaves them on.)"""
    conn = await asyncpg.connect(**url_args)
    try:
        await conn.execute("ALTER TABLE guild_members DISABLE TRIGGER USER")
    finally:
        await conn.close()


async def drop_hot_indexes(url_args: dict[str, object]) -> list[str]:
    """Drop the composite/hot indexes (the legacy copy); returns the names dropped."""
    conn = await asyncpg.connect(**url_args)
    try:
        for name in HOT_INDEXES:
            await conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return list(HOT_INDEXES)
