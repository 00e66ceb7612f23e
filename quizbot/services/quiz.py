"""The quiz engine: start a quiz, present questions, take answers, finish with a summary.

Services take plain values (ids, strings), never discord.py objects, so the same
engine runs the Discord bot, `quizbot play` and the benchmark.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Boolean, Date, Integer, Row, String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot.cache import QUESTIONS, SCORES, QuizCache
from quizbot.driver import prime_at_start
from quizbot.errors import InvalidInputError, NotFoundError
from quizbot.levels import LEVEL_SQL, level_for_xp
from quizbot.models import Difficulty, QuestionKind, QuizSession, SessionMode, SessionStatus
from quizbot.rank_mirror import RankMirror
from quizbot.repositories import (
    AchievementRepository,
    Executor,
    ExecutorFactory,
    MemberDelta,
    MemberRepository,
    NewSession,
    QuestionRepository,
    SessionRepository,
)
from quizbot.repositories.members import (
    MEMBER_TOPICS_SQL,
    ONE_ANSWER_DAILY_POINTS,
    ONE_ANSWER_PERIOD_POINTS,
)
from quizbot.repositories.reviews import UPSERT_CARDS_SQL, Cards, card_params
from quizbot.repositories.sessions import END_STATEMENTS
from quizbot.resilience import is_connection_failure, retry_transient
from quizbot.services import achievements as catalogue
from quizbot.services.answer_batch import (
    AWARD_STATEMENTS,
    AnswerBatchWriter,
    PendingAnswer,
    Recorded,
    award_achievements,
    progress_snapshot,
    rejection,
)
from quizbot.services.group_commit import GroupCommitter
from quizbot.services.guild_settings import GuildSettingsService, stored_settings_text
from quizbot.services.matching import check_answer
from quizbot.services.question_draw import draw_candidates
from quizbot.services.scoring import score_answer
from quizbot.services.spaced_repetition import ReviewScheduler, quiz_review_cards

log = logging.getLogger(__name__)

MIN_QUESTIONS, MAX_QUESTIONS = 1, 50
DIFFICULTIES = ("easy", "medium", "hard", "mixed")
# Questions kept in process memory (their content never changes; see `question`).
QUESTION_MEMO_SIZE = 20_000
# Question messages written by one statement at most, and such writes under way at once
# (each holds a connection while it runs: one of the answer writer's in the app, which
# has one per write in flight, else one of the main pool).
MESSAGE_BATCH_MAX, MESSAGE_FLUSHES = 256, 2
MessageItem = tuple[int, int | None]  # (session id, message id) for `set_message`


@dataclass(frozen=True)
class QuizFilters:
    """What a player asked for; validated on construction."""

    topic: str | None = None
    category: str | None = None
    difficulty: str = "mixed"
    count: int = 10

    def __post_init__(self) -> None:
        if self.difficulty not in DIFFICULTIES:
            raise InvalidInputError(
                f"difficulty must be one of {', '.join(DIFFICULTIES)} (got {self.difficulty!r})"
            )
        if not MIN_QUESTIONS <= self.count <= MAX_QUESTIONS:
            raise InvalidInputError(
                f"number of questions must be from {MIN_QUESTIONS} to {MAX_QUESTIONS}"
            )


@dataclass(frozen=True)
class QuestionData:
    """What the engine needs of a question; cached, so checking an answer reads nothing."""

    id: int
    topic: str
    category: str
    difficulty: Difficulty
    kind: QuestionKind
    prompt: str
    choices: tuple[str, ...]
    answer: str
    accepted: tuple[str, ...]
    tolerance: float | None
    explanation: str


@dataclass(frozen=True)
class QuestionView:
    """A question as shown to players."""

    session_id: int
    position: int  # 0-based
    total: int
    question_id: int
    topic: str
    category: str
    difficulty: Difficulty
    kind: QuestionKind
    prompt: str
    choices: tuple[str, ...]  # display order, stable for the session
    time_limit: int
    started_at: dt.datetime | None
    mode: SessionMode

    @property
    def number(self) -> int:
        """1-based position for display."""
        return self.position + 1


class AnswerOutcome(NamedTuple):
    """What happened to one answer; `recorded` is False for repeats and late clicks.

    A named tuple (one is made per answer): see `answer_batch.PendingAnswer`.
    """

    recorded: bool
    reason: str | None  # why not recorded: "duplicate", "not_current", "finished"
    correct: bool
    points: int
    xp: int
    streak: int
    canonical_answer: str
    explanation: str
    level: int
    level_up: bool
    achievements: tuple[catalogue.AchievementDef, ...] = ()
    total_points: int = 0


@dataclass(frozen=True)
class PlayerResult:
    """One player's result in a finished quiz."""

    user_id: int
    display_name: str
    answered: int
    correct: int
    points: int


@dataclass(frozen=True)
class QuizSummary:
    """The end of a quiz."""

    session_id: int
    status: SessionStatus
    total_questions: int
    asked: int
    players: tuple[PlayerResult, ...]
    achievements: dict[int, tuple[catalogue.AchievementDef, ...]] = field(default_factory=dict)

    @property
    def correct(self) -> int:
        """Correct answers of all players."""
        return sum(p.correct for p in self.players)

    @property
    def answered(self) -> int:
        """Answers of all players."""
        return sum(p.answered for p in self.players)

    @property
    def points(self) -> int:
        """Points of all players."""
        return sum(p.points for p in self.players)

    @property
    def accuracy(self) -> float:
        """Share of correct answers (0.0 when nobody answered)."""
        return self.correct / self.answered if self.answered else 0.0


def display_order(session_id: int, question: QuestionData) -> tuple[str, ...]:
    """The choices in a shuffled order that is the same every time for this session."""
    if question.kind is not QuestionKind.MULTIPLE_CHOICE:
        return question.choices
    order = list(question.choices)
    random.Random(f"{session_id}:{question.id}").shuffle(order)
    return tuple(order)


# Before an answer: where the session stands and the member's streak, in one statement.
# The session row is locked first (the order `finish` and the batches take it in); a
# row locked after waiting is its newest version, so a `finish` or `advance` that
# committed meanwhile is seen and the answer refused.
_ANSWER_CONTEXT = text(
    """
    SELECT s.status, s.guild_id, s.mode, s.user_id AS owner_id, s.time_limit,
           s.question_ids[s.position + 1] AS current_question,
           s.question_started_at,
           coalesce(gm.answer_streak, 0) AS answer_streak,
           (SELECT g.settings::text FROM guilds g WHERE g.guild_id = s.guild_id) AS guild_settings,
           coalesce((SELECT array_agg(ua.code) FROM user_achievements ua
                     WHERE ua.user_id = :user_id AND ua.guild_id = s.guild_id), '{}') AS held
    FROM quiz_sessions s
    LEFT JOIN guild_members gm ON gm.guild_id = s.guild_id AND gm.user_id = :user_id
    WHERE s.id = :session_id
    FOR NO KEY UPDATE OF s
    """
)

# The answer's whole write in one statement: the answer row (a repeat inserts
# nothing, and then nothing else changes), member and global totals as upserts (a
# first-time player in a channel quiz gets rows), the member's points of the day in
# the topic, of the week and of the month (what period boards read), and the
# session's counters.
_RECORD_ANSWER = text(
    f"""
    WITH ins AS (
        INSERT INTO answers (session_id, question_id, user_id, guild_id, topic, given,
                             correct, response_ms, points)
        VALUES (:session_id, :question_id, :user_id, :guild_id, :topic, :given,
                :correct, :response_ms, :points)
        ON CONFLICT (session_id, question_id, user_id) DO NOTHING
        RETURNING id, answered_at
    ), d AS (
        -- The member row it references may be created by `m` below.
        {ONE_ANSWER_DAILY_POINTS}
    ), w AS (
        -- The week's and the month's points (what those boards rank).
        {ONE_ANSWER_PERIOD_POINTS}
    ), u AS (
        INSERT INTO users AS t (user_id, name, points, xp, level, last_active)
        SELECT :user_id, :name, :points, :xp, {LEVEL_SQL.format(xp="CAST(:xp AS bigint)")}, now()
        FROM ins
        ON CONFLICT (user_id) DO UPDATE SET
            points = t.points + excluded.points,
            xp = t.xp + excluded.xp,
            level = {LEVEL_SQL.format(xp="t.xp + excluded.xp")},
            name = excluded.name,
            last_active = now()
        RETURNING t.level
    ), m AS (
        INSERT INTO guild_members AS t (guild_id, user_id, display_name, points, xp, level,
                                        answered, correct, answer_streak, best_streak,
                                        daily_streak, best_daily_streak, last_active_day,
                                        last_active)
        SELECT :guild_id, :user_id, :name, :points, :xp,
               {LEVEL_SQL.format(xp="CAST(:xp AS bigint)")}, 1, CAST(:correct AS int),
               CAST(:correct AS int), CAST(:correct AS int), 1, 1, :today, now()
        FROM ins
        ON CONFLICT (guild_id, user_id) DO UPDATE SET
            points = t.points + excluded.points,
            xp = t.xp + excluded.xp,
            level = {LEVEL_SQL.format(xp="t.xp + excluded.xp")},
            answered = t.answered + 1,
            correct = t.correct + excluded.correct,
            answer_streak = CASE WHEN :correct THEN t.answer_streak + 1 ELSE 0 END,
            best_streak = greatest(t.best_streak,
                                   CASE WHEN :correct THEN t.answer_streak + 1 ELSE 0 END),
            daily_streak = CASE
                WHEN t.last_active_day = :today THEN t.daily_streak
                WHEN t.last_active_day = :today - 1 THEN t.daily_streak + 1
                ELSE 1 END,
            best_daily_streak = greatest(t.best_daily_streak, CASE
                WHEN t.last_active_day = :today THEN t.daily_streak
                WHEN t.last_active_day = :today - 1 THEN t.daily_streak + 1
                ELSE 1 END),
            last_active_day = :today,
            display_name = excluded.display_name,
            last_active = now()
        RETURNING t.points, t.xp, t.level, t.answered, t.correct, t.quizzes_taken,
                  t.answer_streak, t.best_streak, t.daily_streak
    ), s AS (
        UPDATE quiz_sessions SET
            answered_count = answered_count + 1,
            correct_count = correct_count + CAST(:correct AS int),
            points_earned = points_earned + :points
        FROM ins
        WHERE quiz_sessions.id = :session_id
    )
    SELECT m.* FROM m
    """
).bindparams(
    bindparam("session_id", type_=BigInteger),
    bindparam("question_id", type_=BigInteger),
    bindparam("user_id", type_=BigInteger),
    bindparam("guild_id", type_=BigInteger),
    bindparam("topic", type_=String),
    bindparam("given", type_=String),
    bindparam("name", type_=String),
    bindparam("correct", type_=Boolean),
    bindparam("response_ms", type_=Integer),
    bindparam("points", type_=Integer),
    bindparam("xp", type_=BigInteger),
    bindparam("today", type_=Date),
)


def _player_results(answers: Sequence[Row[Any]]) -> tuple[PlayerResult, ...]:
    """Each player's totals in a quiz from its answers (`finish_with_answers`' rows):
    most points first, then most correct, then by user id."""
    totals: dict[int, list[Any]] = {}
    for a in answers:
        t = totals.setdefault(a.a_user_id, [a.a_name, 0, 0, 0])
        t[1] += 1
        t[2] += bool(a.a_correct)
        t[3] += a.a_points or 0
    results = [
        PlayerResult(u, name, n, correct, points)
        for u, (name, n, correct, points) in totals.items()
    ]
    results.sort(key=lambda p: (-p.points, -p.correct, p.user_id))
    return tuple(results)


# After a quiz ends, in one statement: its review cards are written, its players' quiz
# counts go up (rows locked in key order, as every writer of members locks them), and
# what the end-of-quiz achievements need is read from the updated rows. It was three
# statements: the counts, the progress and the cards. The sub-selects read the snapshot
# the statement began with: an answer batch of a player that commits while `lm` waits
# for the player's row counts for their topics at their next finish, not this one.
# (Global totals are untouched: a quiz's end changes no points; `users.last_active`
# moved with the player's answers.)
_FINISH_PLAYERS = text(
    f"""
    WITH cards AS ({UPSERT_CARDS_SQL}
    ), lm AS (
        SELECT gm.user_id FROM guild_members gm
        WHERE gm.guild_id = :guild_id AND gm.user_id = ANY(:user_ids)
        ORDER BY gm.user_id FOR NO KEY UPDATE
    ), gm AS (
        UPDATE guild_members gm
        SET quizzes_taken = gm.quizzes_taken + 1, last_active = now()
        FROM lm
        WHERE gm.guild_id = :guild_id AND gm.user_id = lm.user_id
        RETURNING gm.*
    )
    SELECT gm.user_id, gm.answered, gm.correct, gm.quizzes_taken, gm.answer_streak,
           gm.best_streak, gm.daily_streak, gm.level,
           (SELECT count(*) FROM quiz_sessions q
             WHERE q.user_id = gm.user_id AND q.guild_id = gm.guild_id
               AND q.status = 'finished' AND q.mode = 'solo'
               AND cardinality(q.question_ids) >= :perfect_min
               AND q.correct_count = cardinality(q.question_ids)) AS perfect_quizzes,
           tp.topics_with_correct, tp.mastered_topic_answers,
           coalesce((SELECT array_agg(ua.code) FROM user_achievements ua
                     WHERE ua.user_id = gm.user_id AND ua.guild_id = gm.guild_id), '{{}}') AS held
    FROM gm
    -- The player's topics (their days summed, not their answers): with a correct
    -- answer, and the most answers in one topic at the mastery accuracy or more.
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE t.correct > 0) AS topics_with_correct,
               coalesce(max(t.answered) FILTER (
                 WHERE t.correct >= {catalogue.TOPIC_MASTERY_MIN_ACCURACY!r} * t.answered
               ), 0) AS mastered_topic_answers
        FROM ({MEMBER_TOPICS_SQL.format(user_id="gm.user_id", guild_id="gm.guild_id")}) t
    ) tp
    """
).bindparams(bindparam("user_ids", type_=ARRAY(BigInteger)))
prime_at_start(_FINISH_PLAYERS)
# Every statement `finish` runs in its transaction. They use their generic plans there
# (FINISH_GENERIC_PLANS), so each one's is checked to find its rows by key
# (`tests/integration/test_generic_plans.py`): a statement added to `finish` belongs here.
FINISH_STATEMENTS = (*END_STATEMENTS, _FINISH_PLAYERS, *AWARD_STATEMENTS)


def _question_data(q: Any) -> QuestionData:
    return QuestionData(
        id=q.id,
        topic=q.topic,
        category=q.category,
        difficulty=Difficulty(q.difficulty),
        kind=QuestionKind(q.kind),
        prompt=q.prompt,
        choices=tuple(q.choices or ()),
        answer=q.answer,
        accepted=tuple(q.accepted or ()),
        tolerance=q.tolerance,
        explanation=q.explanation,
    )


def _message_key(item: MessageItem) -> int:
    """A quiz's messages are written one flush after the other (no two flushes race for
    its row)."""
    return item[0]


def _answer_key(answer: PendingAnswer) -> int:
    """Answers of one user are written one flush after the other (streaks, totals)."""
    return answer.user_id


class QuizService:
    """Runs quizzes. Every public method is one unit of work (one transaction)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: QuizCache,
        settings: GuildSettingsService | None = None,
        *,
        rng: random.Random | None = None,
        reviews: ReviewScheduler | None = None,
        answer_group_commit: bool = True,
        answer_group_commit_ms: float = 3.0,
        answer_batch_max: int = 1024,
        answer_flushes: int = 1,
        reads: async_sessionmaker[AsyncSession] | None = None,
        answer_sessions: async_sessionmaker[AsyncSession] | None = None,
        answer_autocommit: ExecutorFactory | None = None,
        rank_mirror: RankMirror | None = None,
        statements: ExecutorFactory | None = None,
        finish_transactions: ExecutorFactory | None = None,
        message_statements: ExecutorFactory | None = None,
    ) -> None:
        """Args:
        sessionmaker: one session per unit of work.
        cache: memoized reads and their invalidation.
        settings: guild settings (default: a service over the same sessionmaker and cache).
        rng: question order (tests pass a seeded one).
        reviews: schedules review cards when a quiz ends (tests turn fuzzing off).
        answer_group_commit: write answers arriving close together in one transaction
            (ANSWER_GROUP_COMMIT); off, each answer is its own transaction.
        answer_group_commit_ms: how long the first answer of a batch waits for others.
        answer_batch_max: most answers per batch.
        answer_flushes: batches written at once (ANSWER_FLUSHES; `answer_sessions` must
            offer that many connections). A member's answers are never in two at once.
        reads: autocommit sessions (`db.create_read_sessionmaker`), for units of work of
            one statement: reads, and writes that are a single atomic statement (no
            BEGIN/COMMIT round trips). Default: `sessionmaker`, in a transaction.
        answer_sessions: sessions for the group-committed answer batches (default
            `sessionmaker`; the app passes ones on a connection of their own, so that a
            batch never queues for the pool behind other work).
        answer_autocommit: autocommit connections (or sessions) on the same pool as
            `answer_sessions`: a batch then takes the two-statement fast path first.
        rank_mirror: told every member's new points after each commit (with Redis).
        statements: autocommit Core connections for the hot units of work of one
            statement that returns rows, not mapped objects (start, move on, remember
            the message, reveal): `driver.DriverConnections` in the app. Default:
            `reads` when given, else `sessionmaker` in a transaction.
        finish_transactions: the end of a quiz's transaction (several statements that
            commit together and return rows, not mapped objects):
            `DriverConnections.transaction` in the app, with generic plans
            (FINISH_GENERIC_PLANS), so each statement `finish` runs must be one whose
            generic plan is checked (`tests/integration/test_generic_plans.py`).
            Default: `sessionmaker`, in a transaction.
        message_statements: autocommit connections for the question messages' batches
            (`set_message`): the app passes the answer writer's, whose connections plan
            each statement once (ANSWER_GENERIC_PLANS). Default: `statements`.
        """
        self._sessions = sessionmaker
        self._reads = reads or sessionmaker
        self._autocommit = reads
        self._statements: ExecutorFactory = statements or self._one_statement
        self._finish_transactions: ExecutorFactory = finish_transactions or self._in_transaction
        self._message_statements: ExecutorFactory = message_statements or self._statements
        self._reviews = reviews or ReviewScheduler()
        self._cache = cache
        self.settings = settings or GuildSettingsService(sessionmaker, cache, reads=reads)
        self._rng = rng or random.Random()
        self._rank_mirror = rank_mirror
        self._writer = AnswerBatchWriter(
            answer_sessions or sessionmaker,
            cache,
            self.settings,
            rank_mirror,
            autocommit=answer_autocommit,
        )
        self.answer_batcher: GroupCommitter[PendingAnswer, Recorded] | None = None
        if answer_group_commit:
            self.answer_batcher = GroupCommitter(
                self._write_batch,
                window=answer_group_commit_ms / 1000,
                max_batch=answer_batch_max,
                in_flight=answer_flushes,
                key=_answer_key,
            )
        # No window: a message is written at once when the writer is idle; under load the
        # messages posted while a write is under way form the next batch.
        self.message_writer: GroupCommitter[MessageItem, dt.datetime | None] = GroupCommitter(
            self._write_messages,
            window=0.0,
            max_batch=MESSAGE_BATCH_MAX,
            in_flight=MESSAGE_FLUSHES,
            key=_message_key,
            name="message",
        )
        self._pool = cache.memoize("pool", self._load_pool, ttl=300)
        self._question = cache.memoize("question", self._load_question, ttl=3600)
        self._question_memo: dict[int, QuestionData] = {}
        self._topics = cache.memoize("topics", self._load_topics, ttl=300)

    # -- cached reads -------------------------------------------------------

    async def _load_pool(
        self,
        guild_id: int,
        topic: str | None,
        category: str | None,
        difficulty: str,
        _shared_gen: int,
        _guild_gen: int,
    ) -> tuple[int, ...]:
        # A Core connection: a pool is a thousand ids or more, and the ORM built a row
        # object for each of them (the profile showed it among the costliest reads).
        async with self._statements() as session:
            ids = await QuestionRepository(session=session).pool_ids(
                guild_id=guild_id,
                topic=topic,
                category=category,
                difficulty=None if difficulty == "mixed" else Difficulty(difficulty),
            )
        return tuple(ids)

    async def question_pool(
        self, guild_id: int, topic: str | None, category: str | None, difficulty: str
    ) -> tuple[int, ...]:
        """Ids of the enabled questions matching the filters (cached per guild and filters)."""
        shared_gen, guild_gen = await self._cache.generations(QUESTIONS, [0, guild_id])
        return await self._pool(
            guild_id,
            (topic or "").lower() or None,
            (category or "").lower() or None,
            difficulty,
            shared_gen,
            guild_gen,
        )

    async def _load_topics(
        self, guild_id: int, _shared_gen: int, _guild_gen: int
    ) -> tuple[tuple[str, str, int], ...]:
        async with self._statements() as session:
            rows = await QuestionRepository(session=session).topics(guild_id=guild_id)
        return tuple(rows)

    async def topics(self, guild_id: int) -> tuple[tuple[str, str, int], ...]:
        """(topic, category, enabled questions) a guild can play, cached like the pools."""
        shared_gen, guild_gen = await self._cache.generations(QUESTIONS, [0, guild_id])
        return await self._topics(guild_id, shared_gen, guild_gen)

    async def _load_question(self, question_id: int) -> QuestionData | None:
        async with self._statements() as session:
            rows = await QuestionRepository(session=session).get_many([question_id])
        return _question_data(rows[0]) if rows else None

    def _memoise(self, data: QuestionData) -> None:
        if data.id not in self._question_memo and len(self._question_memo) >= QUESTION_MEMO_SIZE:
            # Full: the oldest entry goes (dicts keep insertion order), not the whole
            # memo, so a bank larger than the memo keeps most of what was warmed.
            del self._question_memo[next(iter(self._question_memo))]
        self._question_memo[data.id] = data

    async def _prefetch_questions(self, session: Executor, ids: Sequence[int]) -> None:
        """Memoise a new quiz's questions in one statement on the start's connection.

        Loaded one at a time, each question this process had not seen yet cost a
        statement (and a checkout) at the start or at a move; now a quiz costs at most
        one, and none once the memo holds its questions.
        """
        if not self._cache.enabled:
            return  # the ablation without cache reads every question, as it always did
        missing = [i for i in dict.fromkeys(ids) if i not in self._question_memo]
        if not missing:
            return
        try:
            rows = await QuestionRepository(session=session).get_many(missing)
        except Exception:
            # Only a saving: the quiz is committed, and each question is read when it is
            # shown. Failing here would leave a started quiz nobody runs.
            log.warning("could not read the questions of a new quiz ahead", exc_info=True)
            return
        for row in rows:
            self._memoise(_question_data(row))

    async def warm_question_cache(self, limit: int = QUESTION_MEMO_SIZE) -> int:
        """Memoise up to `limit` enabled questions (by id) in one statement; returns how
        many. Run once at start-up, so the first quizzes after a restart read no
        question; a bank larger than the memo keeps its first `limit` questions."""
        if not self._cache.enabled or limit <= 0:
            return 0
        async with self._statements() as session:
            rows = await QuestionRepository(session=session).enabled(limit=limit)
        for row in rows:
            self._memoise(_question_data(row))
        return len(rows)

    async def question(self, question_id: int) -> QuestionData:
        """A question's data, cached (questions are immutable once written but for `enabled`).

        Raises:
            NotFoundError: no such question.
        """
        data = self._question_memo.get(question_id)
        if data is not None:
            return data
        data = await self._question(question_id)
        if data is None:
            raise NotFoundError(f"question {question_id} not found")
        if self._cache.enabled:
            # Immutable once written, so an in-process copy never goes stale; it
            # saves the shared cache's round trip on every answer.
            self._memoise(data)
        return data

    # -- the game -----------------------------------------------------------

    async def start(
        self,
        *,
        guild_id: int,
        guild_name: str,
        channel_id: int,
        user_id: int,
        display_name: str,
        mode: SessionMode = SessionMode.SOLO,
        filters: QuizFilters | None = None,
    ) -> QuestionView:
        """Start a quiz and present its first question.

        Args:
            guild_id: the guild (server) the quiz runs in.
            guild_name: kept for the guild row.
            channel_id: the channel; one channel quiz per channel, one solo quiz per
                player and channel.
            user_id: who starts it.
            display_name: the starter's name, kept for leaderboards.
            mode: solo (only the starter answers) or channel (everyone may).
            filters: topic, category, difficulty and number of questions.

        Returns:
            The first question.

        Raises:
            InvalidInputError: no question matches the filters, or quizzes are not
                allowed in this channel.
            ActiveSessionError: a quiz is already running there.
        """
        filters = filters or QuizFilters()
        guild_settings = await self.settings.get(guild_id)
        if guild_settings.channels and channel_id not in guild_settings.channels:
            raise InvalidInputError("quizzes are not enabled in this channel")
        pool = await self.question_pool(
            guild_id, filters.topic, filters.category, filters.difficulty
        )
        if not pool:
            wanted = ", ".join(
                v for v in (filters.topic, filters.category, filters.difficulty) if v
            )
            raise InvalidInputError(f"no questions match {wanted}; try /topics")
        # One statement in autocommit: it reads the member's recent answers, draws the
        # questions from the candidates and inserts the session. It was two statements
        # ("recently seen", then the insert), and four between BEGIN and COMMIT before.
        new = NewSession(
            guild_id=guild_id,
            guild_name=guild_name,
            channel_id=channel_id,
            user_id=user_id,
            display_name=display_name,
            mode=mode,
            questions=draw_candidates(self._rng, pool, filters.count),
            time_limit=guild_settings.timer,
            question_started_at=dt.datetime.now(dt.UTC),
            topic=filters.topic,
            category=filters.category,
            difficulty=filters.difficulty,
        )
        return await self.open_session(new)

    async def open_session(self, new: NewSession) -> QuestionView:
        """Start a quiz of the questions the caller chose (or its statement draws) and
        present the first.

        One statement: the member is created if missing, and the session inserted.

        Raises:
            ActiveSessionError: a quiz is already running there.
        """
        async with self._statements() as session:
            row = await SessionRepository(session=session).start(new)
            await self._prefetch_questions(session, row.question_ids)
        return await self._view(row)

    async def open_review(self, new: NewSession) -> QuestionView | None:
        """`open_session` for a review (`new.questions` are `DueReviews`): its one
        statement takes the member's due questions.

        Returns:
            The first question, or None when none was due (nothing is written).

        Raises:
            ActiveSessionError: a quiz is already running there.
        """
        async with self._statements() as session:
            row = await SessionRepository(session=session).start_review(new)
            if row is None:
                return None
            await self._prefetch_questions(session, row.question_ids)
        return await self._view(row)

    async def _view(self, row: QuizSession | Row[Any]) -> QuestionView:
        question = await self.question(row.question_ids[row.position])
        return QuestionView(
            session_id=row.id,
            position=row.position,
            total=len(row.question_ids),
            question_id=question.id,
            topic=question.topic,
            category=question.category,
            difficulty=question.difficulty,
            kind=question.kind,
            prompt=question.prompt,
            choices=display_order(row.id, question),
            time_limit=row.time_limit,
            started_at=row.question_started_at,
            mode=row.mode,
        )

    async def current(self, session_id: int) -> QuestionView | None:
        """The question being asked, or None when the quiz is over.

        Raises:
            NotFoundError: no such session.
        """
        async with self._reads() as session:
            row = await SessionRepository(session=session).require(session_id)
        if row.status is not SessionStatus.ACTIVE or row.position >= len(row.question_ids):
            return None
        return await self._view(row)

    async def answer(
        self,
        *,
        session_id: int,
        question_id: int,
        user_id: int,
        display_name: str,
        given: str,
        now: dt.datetime | None = None,
    ) -> AnswerOutcome:
        """Take one member's answer to the current question.

        A repeat (double click, retried request) records nothing and says so; so
        does a click on a question that is no longer current.

        Args:
            session_id: the quiz.
            question_id: the question the member answered (a stale button names an old one).
            user_id: who answered.
            display_name: their current name, kept for leaderboards.
            given: the answer text, or the chosen option.
            now: when the answer arrived (default: now).

        Returns:
            Whether it counted, correctness, points, streak, level and new achievements,
            plus the canonical answer and explanation to show.

        Raises:
            NotFoundError: no such session or question.
        """
        now = now or dt.datetime.now(dt.UTC)
        question = await self.question(question_id)
        checked = check_answer(
            question.kind,
            given,
            question.answer,
            question.accepted,
            question.tolerance,
            question.choices,
        )
        pending = PendingAnswer(
            session_id=session_id,
            question_id=question_id,
            user_id=user_id,
            name=display_name[:100],
            given=given[:200],
            correct=checked.correct,
            now=now,
            topic=question.topic,
            difficulty=question.difficulty,
        )
        if self.answer_batcher is not None:
            result = await self.answer_batcher.submit(pending)
        else:
            result = await retry_transient(lambda: self._record_one(pending))
        if not result.recorded:
            return self._not_recorded(question, result.reason or "duplicate", checked.correct)
        return AnswerOutcome(
            recorded=True,
            reason=None,
            correct=checked.correct,
            points=result.points,
            xp=result.xp,
            streak=result.streak,
            canonical_answer=question.answer,
            explanation=question.explanation,
            level=result.level,
            level_up=result.level_up,
            achievements=result.achievements,
            total_points=result.total_points,
        )

    async def _write_batch(self, items: Sequence[PendingAnswer]) -> list[Recorded | BaseException]:
        """The group commit's flush: one transaction for the batch.

        Deadlocks and stale cached statements roll the batch back whole and are
        retried. When the batch fails otherwise (one bad answer must not sink the
        others), each answer is tried on its own; a connection failure fails them
        all at once, because one by one would only fail slower.
        """
        try:
            return await retry_transient(lambda: self._writer.write(items))
        except Exception as error:
            if len(items) == 1 or is_connection_failure(error):
                raise
            log.warning(
                "a batch of %d answers failed (%s): recording them one by one",
                len(items),
                error,
            )
        results: list[Recorded | BaseException] = []
        for item in items:
            try:
                results.append(await retry_transient(functools.partial(self._record_one, item)))
            except Exception as error:
                results.append(error)
        return results

    async def _record_one(self, it: PendingAnswer) -> Recorded:
        """One answer in its own transaction: context read, one-statement write (+ awards)."""
        async with self._sessions() as session, session.begin():
            ctx = (
                await session.execute(
                    _ANSWER_CONTEXT, {"session_id": it.session_id, "user_id": it.user_id}
                )
            ).one_or_none()
            if ctx is None:
                raise NotFoundError(f"quiz session {it.session_id} not found")
            reason = rejection(ctx, it.question_id, it.user_id)
            if reason is not None:
                return Recorded.rejected(reason)
            # From the context row: loading them here (a cache miss) would need a
            # second pooled connection while this transaction holds its locks.
            guild_settings = stored_settings_text(ctx.guild_settings)
            started = ctx.question_started_at or it.now
            response_ms = max(0, int((it.now - started).total_seconds() * 1000))
            score = score_answer(
                guild_settings.scoring,
                difficulty=it.difficulty,
                correct=it.correct,
                response_ms=response_ms,
                time_limit_s=ctx.time_limit,
                streak_before=ctx.answer_streak,
            )
            member = (
                await session.execute(
                    _RECORD_ANSWER,
                    {
                        "session_id": it.session_id,
                        "question_id": it.question_id,
                        "user_id": it.user_id,
                        "guild_id": ctx.guild_id,
                        "topic": it.topic,
                        "given": it.given,
                        "name": it.name,
                        "correct": it.correct,
                        "response_ms": response_ms,
                        "points": score.points,
                        "xp": score.xp,
                        "today": guild_settings.today(it.now),
                    },
                )
            ).one_or_none()
            if member is None:
                return Recorded.rejected("duplicate")
            snapshot = progress_snapshot(
                member, last_response_ms=response_ms, last_correct=it.correct
            )
            new = await self._award(
                session, it.user_id, ctx.guild_id, catalogue.earned(snapshot), set(ctx.held)
            )
        await self._scores_changed(ctx.guild_id)
        if self._rank_mirror is not None:
            await self._rank_mirror.points_changed([(ctx.guild_id, it.user_id, member.points)])
        old_level = level_for_xp(member.xp - score.xp)
        return Recorded(
            recorded=True,
            points=score.points,
            xp=score.xp,
            streak=member.answer_streak,
            level=member.level,
            level_up=member.level > old_level,
            total_points=member.points,
            achievements=new,
        )

    async def _scores_changed(self, guild_id: int) -> None:
        """Invalidate the guild's boards after a commit that changed scores.

        Committed already: a cache that cannot be told only serves boards until their
        TTL, while failing the caller would report a stored answer (or an ended quiz)
        as failed, and a retry would then be refused as a duplicate.
        """
        try:
            await self._cache.invalidate(SCORES, guild_id)
        except Exception:
            log.exception("could not invalidate the scores cache of guild %s", guild_id)

    async def close(self) -> None:
        """Write the answers and messages still queued (call before the engine is
        disposed)."""
        try:
            if self.answer_batcher is not None:
                await self.answer_batcher.close()
        finally:
            await self.message_writer.close()

    @staticmethod
    def _not_recorded(question: QuestionData, reason: str, correct: bool) -> AnswerOutcome:
        return AnswerOutcome(
            recorded=False,
            reason=reason,
            correct=correct,
            points=0,
            xp=0,
            streak=0,
            canonical_answer=question.answer,
            explanation=question.explanation,
            level=0,
            level_up=False,
        )

    async def _award(
        self,
        session: AsyncSession,
        user_id: int,
        guild_id: int,
        candidates: Sequence[str],
        held: set[str],
    ) -> tuple[catalogue.AchievementDef, ...]:
        """Award what is newly earned; only touches the database when something is."""
        wanted = [c for c in candidates if c not in held]
        if not wanted:
            return ()
        codes = await AchievementRepository(session=session).award(
            user_id=user_id, guild_id=guild_id, codes=wanted
        )
        defs = tuple(catalogue.CATALOGUE_BY_CODE[c] for c in codes)
        reward = sum(d.xp_reward for d in defs)
        if reward:
            await MemberRepository(session=session).award_batch(
                guild_id=guild_id, deltas=[MemberDelta(user_id, xp=reward)]
            )
        return defs

    @contextlib.asynccontextmanager
    async def _in_transaction(self) -> AsyncIterator[Executor]:
        """A session in a transaction, committed when the block ends without error."""
        async with self._sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def _one_statement(self) -> AsyncIterator[Executor]:
        """A session for writes that are each one atomic statement.

        In autocommit when the app gave autocommit sessions (each statement commits on
        its own, with no BEGIN and COMMIT round trips), else in a transaction.
        """
        if self._autocommit is not None:
            async with self._autocommit() as session:
                yield session
        else:
            async with self._in_transaction() as session:
                yield session

    async def advance(self, session_id: int, from_position: int) -> QuestionView | None:
        """Move to the next question; None when the quiz has no more (then call `finish`).

        Two callers advancing from the same position move the quiz once; the
        second gets the question the first moved to.
        """

        async def move() -> Row[Any] | None:
            # Autocommit: the UPDATE is atomic on its own, and without BEGIN and COMMIT
            # the usual case is one round trip, not three. The usual case is one
            # statement: move and read the moved row.
            async with self._statements() as session:
                return await SessionRepository(session=session).advance_returning(
                    session_id=session_id, from_position=from_position
                )

        row = await retry_transient(move)
        if row is None:
            # Not running, at its last question, or already moved by another caller.
            row = self._moved_from(await self._now(session_id), from_position)
        if row is None or row.position >= len(row.question_ids):
            return None
        return await self._view(row)

    async def reveal_and_advance(
        self, session_id: int, question_id: int, from_position: int
    ) -> tuple[list[PlayerResult], QuestionView | None]:
        """Who answered the question, then move past it: one round trip, not two.

        What `reveal` then `advance` return, read and moved in one statement (this runs
        after every question of every quiz). Answers stored before the quiz moved are
        revealed; the quiz moves once however many callers there are.

        Args:
            session_id: the quiz.
            question_id: the question whose time is up (at `from_position`).
            from_position: where the caller saw the quiz.

        Returns:
            The question's answers, fastest first, and the next question (None when the
            quiz has no more: then call `finish`).

        Raises:
            NotFoundError: no such session.
        """

        async def move() -> Row[Any]:
            async with self._statements() as session:
                row = await SessionRepository(session=session).advance_revealing(
                    session_id=session_id, from_position=from_position, question_id=question_id
                )
            if row is None:
                raise NotFoundError(f"quiz session {session_id} not found")
            return row

        row = await retry_transient(move)
        current: QuizSession | Row[Any] | None = row
        answered = row.answered_count  # the newest count known of the quiz's answers
        if not row.moved:
            if row.status is not SessionStatus.ACTIVE:
                current = None  # ended
            elif row.position == from_position:
                # Another caller moved it after this statement began (its UPDATE waited
                # for that one, then found nothing to move): read where it is now.
                now = await self._now(session_id)
                answered = now.answered_count
                current = self._moved_from(now, from_position)
        revealed = row.revealed
        if answered != row.seen_count:
            # Answers committed after the statement's snapshot (while the move waited
            # for the quiz's row, or before another caller's move): the snapshot missed
            # them. Rare (a batch and the question's end within milliseconds), so one
            # more statement then, none otherwise.
            async with self._statements() as session:
                revealed = await SessionRepository(session=session).revealed_of(
                    session_id=session_id, question_id=question_id
                )
        results = [
            PlayerResult(user_id, name, 1, int(correct), points)
            for user_id, name, correct, points in revealed
        ]
        if current is None or current.position >= len(current.question_ids):
            return results, None
        return results, await self._view(current)

    async def _now(self, session_id: int) -> Row[Any]:
        """The quiz's row as it is now (a fresh read: no UPDATE's snapshot is needed).

        Raises:
            NotFoundError: no such session.
        """
        async with self._statements() as session:
            return await SessionRepository(session=session).require_row(session_id)

    @staticmethod
    def _moved_from(row: Row[Any], from_position: int) -> Row[Any] | None:
        """`row` when another caller moved the quiz on from `from_position`; None when
        it is not running or still there."""
        if row.status is not SessionStatus.ACTIVE or row.position == from_position:
            return None
        return row

    async def set_message(self, session_id: int, message_id: int | None) -> dt.datetime | None:
        """Remember which message shows the current question (restart recovery), and
        start the question's clock: its time runs from when players can see it.

        Returns once written. Messages posted close together are written by one
        statement (`group_commit`): at the start of a game night hundreds of quizzes
        post their first question within a second, and each wrote its message with a
        checkout and a round trip of its own.

        Returns:
            When the question's time started (None: no such session).
        """
        return await self.message_writer.submit((session_id, message_id))

    async def _write_messages(self, items: Sequence[MessageItem]) -> list[dt.datetime | None]:
        # A session named twice in one batch keeps the later message, as two writes one
        # after the other would; both callers get the clock's one start.
        latest = dict(items)

        async def write() -> dict[int, dt.datetime]:
            # One UPDATE, atomic on its own: autocommit spares the BEGIN and COMMIT round
            # trips. Written again after a transient failure (a batch fails all of its
            # games' questions, and writing it twice only starts the clocks later).
            async with self._message_statements() as session:
                return await SessionRepository(session=session).set_messages(latest)

        started = await retry_transient(write)
        return [started.get(session_id) for session_id, _message in items]

    async def finish(
        self, session_id: int, status: SessionStatus = SessionStatus.FINISHED
    ) -> QuizSummary:
        """End a quiz (idempotent) and return its summary.

        Quiz counts and end-of-quiz achievements are applied by the call that
        actually ends it; a repeat call just reads the summary.

        Raises:
            NotFoundError: no such session.
        """
        awarded: dict[int, tuple[catalogue.AchievementDef, ...]] = {}
        async with self._finish_transactions() as session:
            repo = SessionRepository(session=session)
            # The end, the answers and their review cards: one statement.
            rows = await repo.finish_with_answers(session_id=session_id, status=status)
            row = next((r for r in rows if r.ended is not None), None)
            if row is None:
                raise NotFoundError(f"quiz session {session_id} not found")
            ended_now = bool(row.ended)
            if not ended_now:
                # Ended by another call, maybe one that committed while this UPDATE waited:
                # the row above is the snapshot from before the wait. Read it as it is now.
                row = await repo.require_row(session_id)
            answers = [r for r in rows if r.a_user_id is not None]
            if len(answers) != row.answered_count:
                # An answer batch committed while the UPDATE waited for the row: its
                # answers are newer than the statement's snapshot. Read them again (this
                # transaction holds the row now: no answer can be added meanwhile).
                answers = list(await repo.answers_of(session_id=session_id))
            results = _player_results(answers)
            if ended_now and results:
                cards = quiz_review_cards(answers, row.time_limit, self._reviews)
                awarded = await self._finish_players(session, row, results, cards)
        if ended_now:
            await self._scores_changed(row.guild_id)
        asked = min(row.position + 1, len(row.question_ids)) if results else row.position
        return QuizSummary(
            session_id=session_id,
            status=row.status,
            total_questions=len(row.question_ids),
            asked=asked,
            players=results,
            achievements=awarded,
        )

    async def _finish_players(
        self,
        session: Executor,
        row: QuizSession | Row[Any],
        results: tuple[PlayerResult, ...],
        cards: Cards,
    ) -> dict[int, tuple[catalogue.AchievementDef, ...]]:
        """Count the quiz for its players, write its review cards and award what its
        end earned (`_FINISH_PLAYERS`, then the awards when there are any)."""
        by_user = {p.user_id: p for p in results}
        progress = await session.execute(
            _FINISH_PLAYERS,
            {
                "guild_id": row.guild_id,
                "user_ids": list(by_user),
                "perfect_min": catalogue.PERFECT_QUIZ_MIN_QUESTIONS,
                **card_params(cards),
            },
        )
        # Every player's new achievements in one statement (not one per player).
        wanted: list[tuple[int, int, str]] = []
        for p in progress:
            mine = by_user[p.user_id]
            snapshot = progress_snapshot(
                p,
                quiz_finished=True,
                quiz_size=len(row.question_ids),
                quiz_correct=mine.correct,
                perfect_quizzes=p.perfect_quizzes,
                # Only topics at TOPIC_MASTERY_MIN_ACCURACY or more are counted: answered = correct.
                topic_answered=p.mastered_topic_answers,
                topic_correct=p.mastered_topic_answers,
                topics_with_correct=p.topics_with_correct,
            )
            held = set(p.held)
            wanted += [
                (p.user_id, row.guild_id, code)
                for code in catalogue.earned(snapshot)
                if code not in held
            ]
        new = await award_achievements(session, wanted)
        awarded: dict[int, tuple[catalogue.AchievementDef, ...]] = {}
        for user_id, _guild_id, code in wanted:  # catalogue order, per player
            if (user_id, row.guild_id, code) in new:
                awarded[user_id] = (*awarded.get(user_id, ()), catalogue.CATALOGUE_BY_CODE[code])
        return awarded

    async def stop(self, *, channel_id: int, user_id: int) -> QuizSummary | None:
        """Stop the caller's running quiz in a channel (theirs in solo, the channel's otherwise).

        Returns:
            The summary, or None when nothing was running.
        """
        async with self._reads() as session:
            running = await SessionRepository(session=session).active_in_channel(
                channel_id=channel_id
            )
        mine = [s for s in running if s.mode is SessionMode.CHANNEL or s.user_id == user_id]
        if not mine:
            return None
        return await self.finish(mine[0].id, SessionStatus.CANCELLED)

    async def running_sessions(self) -> list[QuizSession]:
        """Every running quiz (used at start-up to resume them)."""
        async with self._reads() as session:
            return await SessionRepository(session=session).all_active()
