"""Group-committed answers (DESIGN §5): answers that arrive within a few milliseconds
of each other are written together, in one transaction of two or three statements.

`group_commit.GroupCommitter` is the mechanism: callers `submit` an item and await
its result; a single runner task collects what arrives within the window (or until
the batch is full), hands the batch to a flush function, and resolves every caller's
future with exactly its own result, after the commit. If the flush raises, every
caller of that batch gets the exception: nobody is left waiting.

`AnswerBatchWriter` is the flush for answers, one transaction per batch (or the fast
path below):

1. `_BATCH_CONTEXT`: where every session stands, each member's streak and held
   achievements, whether the answer already exists; the user and member rows of
   first-time players are created, and the rows step 3 updates are locked in key
   order (so two bot processes sharing members queue instead of deadlocking).
2. Scores are computed in Python (scoring is pure Python), member by member in
   arrival order, so a member with two answers in the batch (two sessions) gets
   the streak bonus the second answer earns. The deltas are then summed per
   member, per user, per session and per (member, topic): `UPDATE ... FROM` applies
   one source row per target row, so a key must appear once.
3. `_BATCH_RECORD`: one statement inserts the answers (a repeat inserts nothing:
   unique constraint) and applies the summed deltas, among them each member's points
   of the day per topic (`member_daily_points`, what the period boards read). It also
   reports how many answers were inserted; if another process stored one of them
   since step 1, the sums would count it, so the whole transaction is rolled back and
   run again.
4. `_BATCH_AWARD` (only when someone earned something): every new achievement of
   the batch and its XP reward in one statement.

So a batch is two statements (three with awards) however many answers it holds;
one answer on its own (ANSWER_GROUP_COMMIT=false) is two statements too.

**The fast path.** Inside a transaction those statements are four or five round
trips (BEGIN and COMMIT), each waiting for a turn of a busy event loop while the
batch's callers wait. With autocommit sessions (the app's), a batch first runs the
steps with no transaction: step 1 reads without locking, and step 3 is
`_BATCH_RECORD_GUARDED`, which locks the rows in the same order, checks that every
session still asks the question answered, every member still has the streak step 2
scored with and no row vanished, and writes only then. If anything moved, or
another process stored one of the answers, it fails as a whole (nothing written)
and the batch runs on the transactional path above. Step 4 then commits on its own,
tried twice: the answers count whatever happens to it (they are committed); if both
tries fail, the batch's new achievements are lost (logged), and threshold ones come
back with the member's next answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot.cache import SCORES, QuizCache
from quizbot.driver import ANSWER_POOL, MAIN_POOL, prime_at_start
from quizbot.errors import NotFoundError
from quizbot.levels import LEVEL_SQL, level_for_xp
from quizbot.models import Difficulty, SessionMode, SessionStatus
from quizbot.models.guild import UTC_DAY_SQL
from quizbot.rank_mirror import RankMirror
from quizbot.repositories import Executor, ExecutorFactory
from quizbot.repositories.members import add_period_points_sql
from quizbot.services import achievements as catalogue
from quizbot.services.guild_settings import (
    GuildSettingsService,
    stored_settings_text,
)
from quizbot.services.scoring import score_answer

log = logging.getLogger(__name__)

# Attempts when another process stores one of the batch's answers concurrently.
RACE_ATTEMPTS = 3


# The records made for every answer (`PendingAnswer`, `Recorded`, and scoring's
# `ScoreResult`, the quiz service's `AnswerOutcome`) are named tuples, not frozen
# dataclasses: as immutable, and built in a third of the time (a frozen dataclass's
# __init__ sets each field through object.__setattr__), which a burst of answers pays
# once per answer each.
class PendingAnswer(NamedTuple):
    """An answer checked for correctness (from cached question data), not yet written."""

    session_id: int
    question_id: int
    user_id: int
    name: str
    given: str
    correct: bool
    now: dt.datetime
    topic: str
    difficulty: Difficulty


class Recorded(NamedTuple):
    """The outcome of one answer's write, before the question's texts are added."""

    recorded: bool
    reason: str | None = None
    points: int = 0
    xp: int = 0
    streak: int = 0
    level: int = 0
    level_up: bool = False
    total_points: int = 0
    achievements: tuple[catalogue.AchievementDef, ...] = ()

    @classmethod
    def rejected(cls, reason: str) -> Recorded:
        """Not counted: "duplicate", "not_current", "finished" or "not_player"."""
        return cls(recorded=False, reason=reason)


def progress_snapshot(counters: Any, **context: Any) -> catalogue.ProgressSnapshot:
    """A member's counters (anything with the guild_members columns) plus what just
    happened (the snapshot's other fields; those left out keep their defaults)."""
    return catalogue.ProgressSnapshot(
        answered=counters.answered,
        correct=counters.correct,
        quizzes_taken=counters.quizzes_taken,
        answer_streak=counters.answer_streak,
        best_streak=counters.best_streak,
        daily_streak=counters.daily_streak,
        level=counters.level,
        **context,
    )


def rejection(ctx: Any, question_id: int, user_id: int) -> str | None:
    """Why an answer cannot count, from its session's state; None when it can."""
    if ctx.status != SessionStatus.ACTIVE.value:
        return "finished"
    if ctx.current_question != question_id:
        return "not_current"
    if ctx.mode == SessionMode.SOLO.value and ctx.owner_id != user_id:
        return "not_player"
    return None


def _batch_context_sql(lock: bool) -> str:
    """Step 1; `lock`: take the row locks (the transaction), else read (the fast path).

    Work done once per batch or per new member, not per answer (measured on the
    standard seed, 240 answers of one guild's members: 12.8 -> 8.3 ms, medians of 200
    alternated runs): the guild's settings are read with the session, not per answer;
    the user and member rows are inserted only for members the statement did not
    find (a member's user exists: foreign key), so the members a guild already has
    cost no conflicting insert; and the read-only variant does not read the users
    at all (the locked one locks them for step 3; the fast path's step 3 locks them
    itself).
    """
    for_update = "FOR NO KEY UPDATE" if lock else ""
    # The users' locks, after the members' (the locked path only: the fast path's
    # step 3 takes them itself).
    lock_users = (
        """, lu AS (
        SELECT t.user_id FROM users t
        WHERE t.user_id IN (SELECT user_id FROM c WHERE ok)
          AND (SELECT count(*) FROM lm) >= 0
        ORDER BY t.user_id FOR NO KEY UPDATE
    )"""
        if lock
        else ""
    )
    # Nothing reads this column: it is what runs `lu` (PostgreSQL never executes a
    # SELECT CTE that nothing references, so without it the users go unlocked).
    locked = "(SELECT count(*) FROM lu) AS locked," if lock else ""
    return f"""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ords AS int[]), CAST(:session_ids AS bigint[]), CAST(:question_ids AS bigint[]),
            CAST(:user_ids AS bigint[]), CAST(:names AS text[])
        ) AS v(ord, session_id, question_id, user_id, name)
    ), ls AS (
        -- The rows step 3 updates are locked in one order (sessions, members, users,
        -- each by key; `finish` takes them in that order too): two batches that share
        -- rows (two bot processes) queue instead of deadlocking. NO KEY UPDATE, like
        -- the UPDATE itself, so foreign-key checks of concurrent inserts are not
        -- blocked. Everything checked is read from the locked rows: a row locked after
        -- waiting is its newest version, while the rest of the statement sees the
        -- snapshot taken before the wait (a `finish`, an `advance` or another batch
        -- that committed meanwhile would be missed).
        SELECT q.id, q.status, q.guild_id, q.mode, q.user_id AS owner_id, q.time_limit,
               q.question_ids[q.position + 1] AS current_question, q.question_started_at,
               -- Read here, not through the settings cache: a cache miss inside this
               -- transaction would need a second pooled connection while holding locks.
               (SELECT g.settings::text FROM guilds g WHERE g.guild_id = q.guild_id)
                   AS guild_settings
        FROM quiz_sessions q WHERE q.id IN (SELECT session_id FROM v)
        ORDER BY q.id {for_update}
    ), c AS (
        SELECT v.ord, v.session_id, v.question_id, v.user_id, v.name,
               s.status, s.guild_id, s.mode, s.owner_id, s.time_limit, s.current_question,
               s.question_started_at, s.guild_settings,
               (s.status = 'active' AND s.current_question = v.question_id
                AND (s.mode <> 'solo' OR s.owner_id = v.user_id)) AS ok
        FROM v JOIN ls s ON s.id = v.session_id
    ), lm AS (
        -- (SELECT count(*) FROM ls): every session is locked before the first member.
        SELECT t.guild_id, t.user_id, t.answer_streak, t.best_streak
        FROM guild_members t
        WHERE (t.guild_id, t.user_id) IN (SELECT guild_id, user_id FROM c WHERE ok)
          AND (SELECT count(*) FROM ls) >= 0
        ORDER BY t.guild_id, t.user_id {for_update}
    ), j AS (
        SELECT c.*, gm.answer_streak, gm.best_streak, gm.user_id IS NOT NULL AS member
        FROM c LEFT JOIN lm gm ON gm.guild_id = c.guild_id AND gm.user_id = c.user_id
    ), nu AS (
        -- First answers: the rows step 3 updates. A member (or user) that another
        -- process created since this statement's snapshot is left alone (no conflict
        -- error), as is a user who is a member of another guild.
        INSERT INTO users (user_id, name)
        SELECT DISTINCT ON (user_id) user_id, name FROM j WHERE ok AND NOT member
        ORDER BY user_id, ord DESC
        ON CONFLICT (user_id) DO NOTHING
    ), nm AS (
        INSERT INTO guild_members (guild_id, user_id, display_name)
        SELECT DISTINCT ON (guild_id, user_id) guild_id, user_id, name FROM j
        WHERE ok AND NOT member
        ORDER BY guild_id, user_id, ord DESC
        ON CONFLICT (guild_id, user_id) DO NOTHING
    ){lock_users}
    SELECT j.ord, j.status, j.guild_id, j.mode, j.owner_id, j.time_limit, j.current_question,
           j.question_started_at, {locked}
           coalesce(j.answer_streak, 0) AS answer_streak,
           coalesce(j.best_streak, 0) AS best_streak,
           j.guild_settings,
           coalesce((SELECT array_agg(ua.code) FROM user_achievements ua
                     WHERE ua.user_id = j.user_id AND ua.guild_id = j.guild_id), '{{}}') AS held,
           EXISTS (SELECT 1 FROM answers a
                   WHERE a.session_id = j.session_id AND a.question_id = j.question_id
                     AND a.user_id = j.user_id) AS answered
    FROM j
    """


_BATCH_CONTEXT = text(_batch_context_sql(lock=True))
_BATCH_CONTEXT_READ = text(_batch_context_sql(lock=False))

_DAILY = """CASE WHEN t.last_active_day = p.today THEN t.daily_streak
                 WHEN t.last_active_day = p.today - 1 THEN t.daily_streak + 1
                 ELSE 1 END"""

# Step 3. The per-member, per-user, per-session and per-topic (the day's roll-up) sums
# come aggregated from Python: one row per key, because UPDATE ... FROM applies a
# single source row per target and INSERT ... ON CONFLICT DO UPDATE refuses to update
# a row twice. The roll-up's rows are also sorted by key, so two writers that share
# rows take their locks in one order (the members' rows, locked before them, already
# serialize batches of the same member). No CTE is joined to another: with a generic
# plan their row estimates are guesses, and a nested loop over two CTE scans would be
# quadratic in the batch size. The sums assume every answer inserts (step 1 found
# none of them); `inserted` says whether that held, and if a concurrent process won a
# race the batch is rolled back and run again, so no total ever counts an answer that
# was not stored.
_RECORD_TEMPLATE = f"""
    WITH @GUARD_CTES@ins AS (
        INSERT INTO answers (session_id, question_id, user_id, guild_id, topic, given,
                             correct, response_ms, points)
        SELECT * FROM unnest(
            CAST(:session_ids AS bigint[]), CAST(:question_ids AS bigint[]),
            CAST(:user_ids AS bigint[]), CAST(:guild_ids AS bigint[]), CAST(:topics AS text[]),
            CAST(:givens AS text[]), CAST(:corrects AS boolean[]), CAST(:response_ms AS int[]),
            CAST(:points AS int[])
        )@WHEN_OK@
        ON CONFLICT (session_id, question_id, user_id) DO NOTHING
        RETURNING 1
    ), p AS (
        SELECT * FROM unnest(
            CAST(:m_guild_ids AS bigint[]), CAST(:m_user_ids AS bigint[]),
            CAST(:m_points AS bigint[]), CAST(:m_xp AS bigint[]), CAST(:m_answered AS int[]),
            CAST(:m_correct AS int[]), CAST(:m_has_wrong AS boolean[]), CAST(:m_lead AS int[]),
            CAST(:m_tail AS int[]), CAST(:m_inner AS int[]), CAST(:m_today AS date[]),
            CAST(:m_names AS text[])
        ) AS p(guild_id, user_id, points, xp, answered, correct, has_wrong, lead_run, tail_run,
               inner_best, today, name)
    ), m AS (
        -- Streaks: lead_run = correct answers before the first wrong one (they extend
        -- the streak), tail_run = after the last wrong one, inner_best = the longest
        -- run after a wrong one.
        UPDATE guild_members t SET
            points = t.points + p.points,
            xp = t.xp + p.xp,
            level = {LEVEL_SQL.format(xp="t.xp + p.xp")},
            answered = t.answered + p.answered,
            correct = t.correct + p.correct,
            answer_streak = CASE WHEN p.has_wrong THEN p.tail_run
                                 ELSE t.answer_streak + p.lead_run END,
            best_streak = greatest(t.best_streak, t.answer_streak + p.lead_run, p.inner_best),
            daily_streak = {_DAILY},
            best_daily_streak = greatest(t.best_daily_streak, {_DAILY}),
            last_active_day = p.today,
            display_name = p.name,
            last_active = now()
        FROM p
        WHERE t.guild_id = p.guild_id AND t.user_id = p.user_id@AND_OK@
        RETURNING t.guild_id, t.user_id, t.points, t.xp, t.level, t.answered, t.correct,
                  t.quizzes_taken, t.answer_streak, t.best_streak, t.daily_streak
    ), u AS (
        UPDATE users t SET
            points = t.points + pu.points,
            xp = t.xp + pu.xp,
            level = {LEVEL_SQL.format(xp="t.xp + pu.xp")},
            name = pu.name,
            last_active = now()
        FROM unnest(
            CAST(:u_ids AS bigint[]), CAST(:u_points AS bigint[]), CAST(:u_xp AS bigint[]),
            CAST(:u_names AS text[])
        ) AS pu(user_id, points, xp, name)
        WHERE t.user_id = pu.user_id@AND_OK@
    ), d AS (
        -- The boards' per-day roll-up, one row per (guild, member, topic), in key order.
        -- The answers above take answered_at = now() (the column default: the
        -- start of the transaction, or of the statement in autocommit), so their day is
        -- now()'s, in UTC.
        INSERT INTO member_daily_points AS t (guild_id, day, user_id, topic, points, answers,
                                              correct)
        SELECT pd.guild_id, {UTC_DAY_SQL.format(at="now()")}, pd.user_id, pd.topic, pd.points,
               pd.answers, pd.correct
        FROM unnest(
            CAST(:d_guild_ids AS bigint[]), CAST(:d_user_ids AS bigint[]),
            CAST(:d_topics AS text[]), CAST(:d_points AS bigint[]), CAST(:d_answers AS int[]),
            CAST(:d_correct AS int[])
        ) AS pd(guild_id, user_id, topic, points, answers, correct)@WHEN_OK@
        ON CONFLICT (guild_id, day, user_id, topic) DO UPDATE SET
            points = t.points + excluded.points,
            answers = t.answers + excluded.answers,
            correct = t.correct + excluded.correct
    ), w AS (
        -- The week's and the month's points (what those boards rank), from the members'
        -- sums above, of the same UTC day.
        {add_period_points_sql("p AS r", UTC_DAY_SQL.format(at="now()"), and_where="@AND_OK@")}
    ), s AS (
        UPDATE quiz_sessions q SET
            answered_count = q.answered_count + ps.answered,
            correct_count = q.correct_count + ps.correct,
            points_earned = q.points_earned + ps.points
        FROM unnest(
            CAST(:s_ids AS bigint[]), CAST(:s_answered AS int[]), CAST(:s_correct AS int[]),
            CAST(:s_points AS bigint[])
        ) AS ps(session_id, answered, correct, points)
        WHERE q.id = ps.session_id@AND_OK@
    )
    SELECT m.*, NULL AS inserted FROM m
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, @INSERTED@
    FROM ins
    """

# Step 3 of the fast path, in autocommit: the statement takes the locks step 1 did not
# (sessions, members, users, in the order the transactional path and `finish` take
# them), then checks that nothing step 2 relied on moved since step 1: every session
# still asks the question answered, every member still has the streak read, no row
# vanished. Only then does it write; if anything moved, or another process stored one
# of the answers meanwhile, it raises (`_GUARD_MARKER`) and so writes nothing at all,
# and the batch runs again on the transactional path.
_GUARD_MARKER = "quizbot: batch rows moved since step 1"
_GUARD_CTES = """ls AS (
        SELECT q.id, q.status, q.question_ids[q.position + 1] AS current_question
        FROM quiz_sessions q WHERE q.id = ANY(CAST(:s_ids AS bigint[]))
        ORDER BY q.id FOR NO KEY UPDATE
    ), lm AS (
        SELECT t.guild_id, t.user_id, t.answer_streak FROM guild_members t
        JOIN unnest(CAST(:m_guild_ids AS bigint[]), CAST(:m_user_ids AS bigint[]))
             AS k(guild_id, user_id) ON t.guild_id = k.guild_id AND t.user_id = k.user_id
        WHERE (SELECT count(*) FROM ls) >= 0
        ORDER BY t.guild_id, t.user_id FOR NO KEY UPDATE OF t
    ), lu AS (
        SELECT t.user_id FROM users t
        WHERE t.user_id = ANY(CAST(:u_ids AS bigint[])) AND (SELECT count(*) FROM lm) >= 0
        ORDER BY t.user_id FOR NO KEY UPDATE
    ), ok AS (
        SELECT (SELECT count(*) FROM lu) = cardinality(CAST(:u_ids AS bigint[]))
           AND (SELECT count(*) FROM lm) = cardinality(CAST(:m_user_ids AS bigint[]))
           AND NOT EXISTS (
               SELECT 1 FROM unnest(CAST(:s_ids AS bigint[]), CAST(:s_current AS bigint[]))
                    AS e(id, current_question)
               LEFT JOIN ls ON ls.id = e.id
               WHERE ls.status IS DISTINCT FROM 'active'
                  OR ls.current_question IS DISTINCT FROM e.current_question)
           AND NOT EXISTS (
               SELECT 1 FROM unnest(CAST(:m_guild_ids AS bigint[]), CAST(:m_user_ids AS bigint[]),
                                    CAST(:m_streaks AS int[])) AS e(guild_id, user_id, streak)
               JOIN lm ON lm.guild_id = e.guild_id AND lm.user_id = e.user_id
               WHERE lm.answer_streak <> e.streak) AS ok
    ), """


def _batch_record_sql(guarded: bool) -> str:
    """Step 3; `guarded`: the fast path's checked, all-or-nothing version (see above)."""
    if not guarded:
        return (
            _RECORD_TEMPLATE.replace("@GUARD_CTES@", "")
            .replace("@WHEN_OK@", "")
            .replace("@AND_OK@", "")
            .replace("@INSERTED@", "count(*)")
        )
    # Not a constant: PostgreSQL would fold a constant failing cast while planning.
    failed = f"CAST('{_GUARD_MARKER} (' || count(*) || ' stored)' AS bigint)"
    return (
        _RECORD_TEMPLATE.replace("@GUARD_CTES@", _GUARD_CTES)
        .replace("@WHEN_OK@", " WHERE (SELECT ok FROM ok)")
        .replace("@AND_OK@", " AND (SELECT ok FROM ok)")
        .replace("@INSERTED@", f"CASE WHEN count(*) = :expected THEN count(*) ELSE {failed} END")
    )


_BATCH_RECORD = text(_batch_record_sql(guarded=False))
_BATCH_RECORD_GUARDED = text(_batch_record_sql(guarded=True))

_BATCH_AWARD = text(
    f"""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:user_ids AS bigint[]), CAST(:guild_ids AS bigint[]), CAST(:codes AS text[]),
            CAST(:xps AS bigint[])
        ) AS v(user_id, guild_id, code, xp)
    ), lm AS (
        -- Members, then users, locked in key order before anything is written, as
        -- every writer takes them: run as a statement of its own (the fast path), it
        -- cannot deadlock with a transaction that holds some of them (a `finish`).
        -- Inside a transaction that locked them already, this costs nothing.
        SELECT t.user_id FROM guild_members t
        WHERE (t.guild_id, t.user_id) IN (SELECT guild_id, user_id FROM v)
        ORDER BY t.guild_id, t.user_id FOR NO KEY UPDATE
    ), lu AS (
        SELECT t.user_id FROM users t
        WHERE t.user_id IN (SELECT user_id FROM v) AND (SELECT count(*) FROM lm) >= 0
        ORDER BY t.user_id FOR NO KEY UPDATE
    ), ins AS (
        INSERT INTO user_achievements (user_id, guild_id, code)
        SELECT user_id, guild_id, code FROM v WHERE (SELECT count(*) FROM lu) >= 0
        ON CONFLICT DO NOTHING
        RETURNING user_id, guild_id, code
    ), r AS (
        SELECT v.guild_id, v.user_id, sum(v.xp) AS xp
        FROM v JOIN ins USING (user_id, guild_id, code)
        GROUP BY v.guild_id, v.user_id HAVING sum(v.xp) > 0
    ), m AS (
        UPDATE guild_members t SET
            xp = t.xp + r.xp, level = {LEVEL_SQL.format(xp="t.xp + r.xp")}, last_active = now()
        FROM r WHERE t.guild_id = r.guild_id AND t.user_id = r.user_id
    ), ru AS (
        SELECT user_id, sum(xp) AS xp FROM r GROUP BY user_id
    ), u AS (
        UPDATE users t SET
            xp = t.xp + ru.xp, level = {LEVEL_SQL.format(xp="t.xp + ru.xp")}, last_active = now()
        FROM ru WHERE t.user_id = ru.user_id
    )
    SELECT user_id, guild_id, code FROM ins
    """
)

# The fast path runs on the answer writer's connections (the locked path in a session);
# a quiz's end awards on the engine's (`QuizService.finish`).
prime_at_start(_BATCH_CONTEXT_READ, _BATCH_RECORD_GUARDED, pools=(ANSWER_POOL,))
# The locked path's statements (`_write_locked`), run in ORM sessions on the same
# connections when the fast path finds rows moved: rare, so not primed, but planned as
# the others there (`tests/integration/test_generic_plans.py`).
LOCKED_PATH_STATEMENTS = (_BATCH_CONTEXT, _BATCH_RECORD)
# What `award_achievements` runs (for a batch, and at a quiz's end).
AWARD_STATEMENTS = (_BATCH_AWARD,)
prime_at_start(_BATCH_AWARD, pools=(ANSWER_POOL, MAIN_POOL))


async def award_achievements(
    session: Executor, wanted: Sequence[tuple[int, int, str]]
) -> set[tuple[int, int, str]]:
    """Award (user, guild, code) triples and their XP in one statement.

    Returns the triples that were new: an achievement already held is skipped by the
    primary key, so a race between two writers awards it (and its XP) once.
    """
    if not wanted:
        return set()
    rows = await session.execute(
        _BATCH_AWARD,
        {
            "user_ids": [w[0] for w in wanted],
            "guild_ids": [w[1] for w in wanted],
            "codes": [w[2] for w in wanted],
            "xps": [catalogue.CATALOGUE_BY_CODE[w[2]].xp_reward for w in wanted],
        },
    )
    return {(r.user_id, r.guild_id, r.code) for r in rows}


@dataclass
class _Accepted:
    """An answer that passed the checks, with its score."""

    index: int
    item: PendingAnswer
    guild_id: int
    points: int
    xp: int
    response_ms: int
    today: dt.date
    ctx: Any


@dataclass
class _After:
    """A member's counters right after one of their answers in the batch."""

    answered: int
    correct: int
    quizzes_taken: int
    answer_streak: int
    best_streak: int
    daily_streak: int
    level: int
    points: int
    xp: int
    wanted: list[str] = field(default_factory=list)


class RaceLostError(Exception):
    """Another process stored one of the batch's answers between steps 1 and 3."""


def _runs(answers: Sequence[_Accepted]) -> list[int]:
    """Correct answers before the first wrong one, then after each wrong one."""
    runs = [0]
    for a in answers:
        if a.item.correct:
            runs[-1] += 1
        else:
            runs.append(0)
    return runs


class _RowsMovedError(Exception):
    """The fast path's step 3 found its rows changed since step 1 and wrote nothing."""


class AnswerBatchWriter:
    """Writes a batch of answers (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: QuizCache,
        settings: GuildSettingsService,
        rank_mirror: RankMirror | None = None,
        *,
        autocommit: ExecutorFactory | None = None,
    ) -> None:
        """Args:
        sessionmaker: sessions for the transactional path.
        cache: told which guilds' scores changed, after the commit.
        settings: the guilds' settings (scoring).
        rank_mirror: told every member's new points after the commit.
        autocommit: autocommit connections (or sessions) on the same pool; with them a
            batch first tries the fast path (two statements, no BEGIN/COMMIT).
        """
        self._sessions = sessionmaker
        self._autocommit = autocommit
        self._cache = cache
        self._settings = settings
        self._rank_mirror = rank_mirror
        # Batches whose answers the fast path wrote, and those it handed to the locked
        # path because their rows moved between its two statements (tests, benchmark).
        self.fast_batches = 0
        self.moved_batches = 0

    async def write(self, items: Sequence[PendingAnswer]) -> list[Recorded | BaseException]:
        """Record `items` (the fast path, else one transaction); one result (or error)
        per item, in order."""
        results: list[Recorded | BaseException | None] = [None] * len(items)
        first_of: dict[tuple[int, int, int], int] = {}
        repeats: list[tuple[int, int]] = []
        for i, it in enumerate(items):
            key = (it.session_id, it.question_id, it.user_id)
            if key in first_of:
                repeats.append((i, first_of[key]))  # a double click within the batch
            else:
                first_of[key] = i
        firsts = list(first_of.values())
        totals = await self._write_fast(items, firsts, results)
        if totals is None:
            results = [None] * len(items)
            totals = await self._write_locked(items, firsts, results)
        if self._rank_mirror is not None and totals:
            await self._rank_mirror.points_changed((g, u, p) for (g, u), p in totals.items())
        for guild_id in sorted({g for g, _u in totals}):
            try:
                await self._cache.invalidate(SCORES, guild_id)
            except Exception:
                # Committed already: the answers count. A cache that cannot be told
                # only serves boards until their TTL; failing the callers would make
                # them retry answers that are stored.
                log.exception("could not invalidate the scores cache of guild %s", guild_id)
        for i, first in repeats:
            original = results[first]
            counted = isinstance(original, Recorded) and original.reason in (None, "duplicate")
            if counted:
                results[i] = Recorded.rejected("duplicate")
            else:
                results[i] = original
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    async def _write_fast(
        self,
        items: Sequence[PendingAnswer],
        firsts: list[int],
        results: list[Recorded | BaseException | None],
    ) -> dict[tuple[int, int], int] | None:
        """Steps 1 to 4 in autocommit: step 1 reads without locks, step 3 locks, checks
        and writes in one statement. Two round trips where the transaction takes four.

        Returns:
            Each member's points after the batch; None when there is no fast path or
            step 3 found its rows moved (it wrote nothing then).
        """
        if self._autocommit is None:
            return None
        async with self._autocommit() as session:
            accepted = await self._check(session, items, firsts, results, lock=False)
            if not accepted:
                return {}
            try:
                totals = await self._record(session, accepted, results, guarded=True)
            except _RowsMovedError:
                self.moved_batches += 1
                return None
        self.fast_batches += 1
        return totals

    async def _write_locked(
        self,
        items: Sequence[PendingAnswer],
        firsts: list[int],
        results: list[Recorded | BaseException | None],
    ) -> dict[tuple[int, int], int]:
        """Steps 1 to 4 in one transaction, step 1 locking every row step 3 writes."""
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                async with self._sessions() as session, session.begin():
                    accepted = await self._check(session, items, firsts, results, lock=True)
                    if accepted:
                        return await self._record(session, accepted, results, guarded=False)
                return {}
            except RaceLostError:
                # Rolled back; step 1 of the next attempt sees the stored answers.
                if attempt == RACE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _check(
        self,
        session: Executor,
        items: Sequence[PendingAnswer],
        firsts: list[int],
        results: list[Recorded | BaseException | None],
        *,
        lock: bool,
    ) -> list[_Accepted]:
        """Statement 1 (`lock`: locking what step 3 writes), then validation and
        scoring in arrival order."""
        rows = await session.execute(
            _BATCH_CONTEXT if lock else _BATCH_CONTEXT_READ,
            {
                "ords": firsts,
                "session_ids": [items[i].session_id for i in firsts],
                "question_ids": [items[i].question_id for i in firsts],
                "user_ids": [items[i].user_id for i in firsts],
                "names": [items[i].name[:100] for i in firsts],
            },
        )
        ctx_of = {r.ord: r for r in rows}
        streaks: dict[tuple[int, int], int] = {}
        accepted: list[_Accepted] = []
        for i in firsts:
            it = items[i]
            ctx = ctx_of.get(i)
            if ctx is None:
                results[i] = NotFoundError(f"quiz session {it.session_id} not found")
                continue
            reason = rejection(ctx, it.question_id, it.user_id)
            if reason is None and ctx.answered:
                reason = "duplicate"
            if reason is not None:
                results[i] = Recorded.rejected(reason)
                continue
            guild_settings = stored_settings_text(ctx.guild_settings)
            started = ctx.question_started_at or it.now
            response_ms = max(0, int((it.now - started).total_seconds() * 1000))
            key = (ctx.guild_id, it.user_id)
            streak_before = streaks.get(key, ctx.answer_streak)
            score = score_answer(
                guild_settings.scoring,
                difficulty=it.difficulty,
                correct=it.correct,
                response_ms=response_ms,
                time_limit_s=ctx.time_limit,
                streak_before=streak_before,
            )
            streaks[key] = streak_before + 1 if it.correct else 0
            accepted.append(
                _Accepted(
                    i,
                    it,
                    ctx.guild_id,
                    score.points,
                    score.xp,
                    response_ms,
                    guild_settings.today(it.now),
                    ctx,
                )
            )
        return accepted

    async def _record(
        self,
        session: Executor,
        accepted: list[_Accepted],
        results: list[Recorded | BaseException | None],
        *,
        guarded: bool,
    ) -> dict[tuple[int, int], int]:
        """Steps 3 and 4; fills `results` for the accepted answers.

        `guarded`: the fast path's step 3, which checks that what step 1 read still
        holds (raising `_RowsMovedError`, having written nothing, when it does not).

        Returns:
            Each member's points after the batch, by (guild_id, user_id).
        """
        by_member: dict[tuple[int, int], list[_Accepted]] = {}
        by_user: dict[int, list[_Accepted]] = {}
        by_session: dict[int, list[_Accepted]] = {}
        # The day is the same for the whole statement (now()): one roll-up row per key.
        by_topic: dict[tuple[int, int, str], list[_Accepted]] = {}
        for a in accepted:  # arrival order
            by_member.setdefault((a.guild_id, a.item.user_id), []).append(a)
            by_user.setdefault(a.item.user_id, []).append(a)
            by_session.setdefault(a.item.session_id, []).append(a)
            by_topic.setdefault((a.guild_id, a.item.user_id, a.item.topic), []).append(a)
        members, users, sessions = sorted(by_member), sorted(by_user), sorted(by_session)
        topics = sorted(by_topic)
        runs = {key: _runs(by_member[key]) for key in members}
        params: dict[str, Any] = {
            "session_ids": [a.item.session_id for a in accepted],
            "question_ids": [a.item.question_id for a in accepted],
            "user_ids": [a.item.user_id for a in accepted],
            "guild_ids": [a.guild_id for a in accepted],
            "topics": [a.item.topic for a in accepted],
            "givens": [a.item.given[:200] for a in accepted],
            "corrects": [a.item.correct for a in accepted],
            "response_ms": [a.response_ms for a in accepted],
            "points": [a.points for a in accepted],
            "m_guild_ids": [g for g, _u in members],
            "m_user_ids": [u for _g, u in members],
            "m_points": [sum(a.points for a in by_member[k]) for k in members],
            "m_xp": [sum(a.xp for a in by_member[k]) for k in members],
            "m_answered": [len(by_member[k]) for k in members],
            "m_correct": [sum(a.item.correct for a in by_member[k]) for k in members],
            "m_has_wrong": [len(runs[k]) > 1 for k in members],
            "m_lead": [runs[k][0] for k in members],
            "m_tail": [runs[k][-1] for k in members],
            "m_inner": [max(runs[k][1:], default=0) for k in members],
            "m_today": [max(a.today for a in by_member[k]) for k in members],
            "m_names": [by_member[k][-1].item.name[:100] for k in members],
            "u_ids": users,
            "u_points": [sum(a.points for a in by_user[u]) for u in users],
            "u_xp": [sum(a.xp for a in by_user[u]) for u in users],
            "u_names": [by_user[u][-1].item.name[:100] for u in users],
            "d_guild_ids": [g for g, _u, _t in topics],
            "d_user_ids": [u for _g, u, _t in topics],
            "d_topics": [t for _g, _u, t in topics],
            "d_points": [sum(a.points for a in by_topic[k]) for k in topics],
            "d_answers": [len(by_topic[k]) for k in topics],
            "d_correct": [sum(a.item.correct for a in by_topic[k]) for k in topics],
            "s_ids": sessions,
            "s_answered": [len(by_session[s]) for s in sessions],
            "s_correct": [sum(a.item.correct for a in by_session[s]) for s in sessions],
            "s_points": [sum(a.points for a in by_session[s]) for s in sessions],
        }
        if guarded:
            # What step 2 scored against: each session's question, each member's streak.
            params["s_current"] = [by_session[s][0].item.question_id for s in sessions]
            params["m_streaks"] = [by_member[k][0].ctx.answer_streak for k in members]
            params["expected"] = len(accepted)
            try:
                rows = await session.execute(_BATCH_RECORD_GUARDED, params)
            except DBAPIError as exc:
                if _GUARD_MARKER in str(exc.orig):
                    raise _RowsMovedError(str(exc.orig)) from exc
                raise
        else:
            rows = await session.execute(_BATCH_RECORD, params)
        final: dict[tuple[int, int], Any] = {}
        inserted = None
        for r in rows:
            if r.inserted is not None:
                inserted = r.inserted
            else:
                final[(r.guild_id, r.user_id)] = r
        if inserted != len(accepted) or len(final) != len(by_member):
            if guarded:  # the statement raises first (its checks); committed if it did not
                raise AssertionError("a guarded batch committed rows its checks did not cover")
            raise RaceLostError(
                f"{len(accepted) - (inserted or 0)} answers of the batch were stored concurrently"
            )
        after = self._replay(by_member, final)
        awarded: set[tuple[int, int, str]] = set()
        wanted = [
            (a.item.user_id, a.guild_id, code)
            for answers in by_member.values()
            for a in answers
            for code in after[a.index].wanted
        ]
        if wanted and not guarded:
            awarded = await award_achievements(session, wanted)
        elif wanted:
            awarded = await self._award_committed(session, wanted)
        for (guild_id, user_id), answers in by_member.items():
            for a in answers:
                state = after[a.index]
                results[a.index] = Recorded(
                    recorded=True,
                    points=a.points,
                    xp=a.xp,
                    streak=state.answer_streak,
                    level=state.level,
                    level_up=state.level > level_for_xp(state.xp - a.xp),
                    total_points=state.points,
                    achievements=tuple(
                        catalogue.CATALOGUE_BY_CODE[c]
                        for c in state.wanted
                        if (user_id, guild_id, c) in awarded
                    ),
                )
        return {key: row.points for key, row in final.items()}

    @staticmethod
    async def _award_committed(
        session: Executor, wanted: Sequence[tuple[int, int, str]]
    ) -> set[tuple[int, int, str]]:
        """Step 4 of the fast path, after its answers committed, tried twice (the award
        is idempotent). On the batch's own autocommit session: the writer has one
        connection per batch in flight, so asking for another could wait forever.

        The answers must be acknowledged whatever happens here: failing their callers
        would have them retry answers that are stored. So a second failure is logged
        and the achievements are reported as not awarded; the XP shown with the batch's
        later answers of that member then includes rewards that were not written.
        """
        for attempt in (1, 2):
            try:
                return await award_achievements(session, wanted)
            except Exception:
                if attempt == 2:
                    log.exception("answers recorded, but their achievements could not be awarded")
        return set()

    @staticmethod
    def _replay(
        by_member: dict[tuple[int, int], list[_Accepted]], final: dict[tuple[int, int], Any]
    ) -> dict[int, _After]:
        """Each member's counters after each of their answers, and what each one earned.

        Sums are exact, walked back from the row the update returned. The streak
        before the batch is exact too when all of the member's answers were correct
        (final streak minus their number); otherwise it is the one read in step 1.
        XP (and so the level) after an answer includes the rewards of achievements
        earned by the member's earlier answers in the batch, as it would one by one.
        """
        out: dict[int, _After] = {}
        for key, answers in by_member.items():
            last = final[key]
            points, xp, answered, correct = last.points, last.xp, last.answered, last.correct
            sums: list[tuple[int, int, int, int]] = []
            for a in reversed(answers):
                sums.append((points, xp, answered, correct))
                points, xp = points - a.points, xp - a.xp
                answered, correct = answered - 1, correct - int(a.item.correct)
            sums.reverse()
            first_ctx = answers[0].ctx
            if all(a.item.correct for a in answers):
                streak = last.answer_streak - len(answers)
            else:
                streak = first_ctx.answer_streak
            best = max(first_ctx.best_streak, streak)
            held = set(first_ctx.held)
            rewards = 0  # XP of achievements earned earlier in this batch (step 4 adds it)
            for n, (a, (points, xp, answered, correct)) in enumerate(
                zip(answers, sums, strict=True)
            ):
                streak = streak + 1 if a.item.correct else 0
                best = max(best, streak)
                is_last = n == len(answers) - 1
                state = _After(
                    answered=answered,
                    correct=correct,
                    quizzes_taken=last.quizzes_taken,
                    answer_streak=last.answer_streak if is_last else streak,
                    best_streak=last.best_streak if is_last else best,
                    daily_streak=last.daily_streak,
                    level=level_for_xp(xp + rewards),
                    points=points,
                    xp=xp + rewards,
                )
                snapshot = progress_snapshot(
                    state, last_response_ms=a.response_ms, last_correct=a.item.correct
                )
                state.wanted = [c for c in catalogue.earned(snapshot) if c not in held]
                held.update(state.wanted)
                rewards += sum(catalogue.CATALOGUE_BY_CODE[c].xp_reward for c in state.wanted)
                out[a.index] = state
        return out
