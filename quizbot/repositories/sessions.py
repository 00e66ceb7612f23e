"""Quiz sessions and answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Integer,
    Row,
    String,
    Table,
    bindparam,
    column,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from quizbot.driver import ANSWER_POOL, prime_at_start
from quizbot.errors import ActiveSessionError, NotFoundError
from quizbot.models import Answer, QuizSession, SessionMode, SessionStatus
from quizbot.repositories.base import Repository, translate_integrity_errors
from quizbot.repositories.members import (
    ONE_ANSWER_DAILY_POINTS,
    ONE_ANSWER_PERIOD_POINTS,
    ensure_member_ctes,
    ensure_member_params,
)

# The table, for Core statements on the hot paths (no ORM identity-map bookkeeping).
_SESSIONS: Table = QuizSession.__table__  # type: ignore[assignment]

# Built once: these run after every question, and constructing a Core statement (coercing
# every column of RETURNING, the WHERE clause and the values) cost more than running it.
_ADVANCE = (
    update(_SESSIONS)
    .where(
        _SESSIONS.c.id == bindparam("session_id"),
        _SESSIONS.c.position == bindparam("from_position"),
        _SESSIONS.c.status == SessionStatus.ACTIVE,
        func.cardinality(_SESSIONS.c.question_ids) > bindparam("from_position", type_=Integer) + 1,
    )
    # The message showing the previous question does not show this one: forget it,
    # so that a bot restarted before posting the next question posts it anew.
    .values(position=_SESSIONS.c.position + 1, question_started_at=func.now(), message_id=None)
    .returning(*_SESSIONS.c)
)
# The question's clock starts when its message is posted: the move that chose it ran
# before the previous question's reveal was edited into Discord, which can take seconds.
# The messages that now show their quizzes' questions, and each question's clock
# started: one statement for every quiz of a group commit (QuizService.set_message).
# The rows are locked in id order first, as the answer batches lock them, so that two
# statements that share quizzes queue instead of deadlocking.
_SET_MESSAGES = text(
    """
    UPDATE quiz_sessions AS s
    SET message_id = m.message_id, question_started_at = statement_timestamp()
    FROM (
        SELECT q.id, given.message_id
        FROM unnest(:session_ids, :message_ids) AS given(id, message_id)
        JOIN quiz_sessions q ON q.id = given.id
        ORDER BY q.id
        FOR NO KEY UPDATE OF q
    ) AS m
    WHERE s.id = m.id
    RETURNING s.id, s.question_started_at
    """
).bindparams(
    bindparam("session_ids", type_=ARRAY(BigInteger)),
    bindparam("message_ids", type_=ARRAY(BigInteger)),
)

_SESSION_COLUMNS = ", ".join(c.name for c in _SESSIONS.c)
# One statement object, compiled once (also on the driver, which compiles per object).
_ROW = select(*_SESSIONS.c).where(_SESSIONS.c.id == bindparam("session_id"))
# A question's answers, fastest first, for its reveal: [user id, name, correct, points].
_REVEALED_SELECT = """
    SELECT coalesce(json_agg(json_build_array(
               a.user_id, coalesce(gm.display_name, ''), a.correct, a.points)
               ORDER BY a.response_ms, a.id), '[]') AS revealed
    FROM answers a
    LEFT JOIN guild_members gm ON gm.guild_id = a.guild_id AND gm.user_id = a.user_id
    WHERE a.session_id = :session_id AND a.question_id = :question_id
"""
# After a question's time is up: who answered it (fastest first, for the reveal) and
# the move to the next question, in one statement and one round trip where they took
# two, after every question of every quiz. The row is the moved session (`moved`), or,
# when nothing moved, the session as it stood when the statement began. After the last
# question the quiz moves past its end (`position` = the number of questions): that
# closes the last question to answers as a move closes any other (they are refused
# as no longer current until `finish` ends the quiz), and takes the row's lock, so
# the check below covers the last question's reveal too.
# The answers are read in the snapshot the statement began with. An answer batch that
# committed while the UPDATE waited for the session's row is missing from them; the
# moved row (its newest version) then counts more answers (`answered_count`) than the
# snapshot did (`seen_count`), and the caller reads the reveal again (`revealed_of`).
# `status = :active` is a parameter, not a literal, as in `_ADVANCE`: with the literal,
# the planner's generic plan may serve the UPDATE from the partial index of running
# sessions (every running session's entry read to find one id), not the primary key.
_ADVANCE_REVEALING = text(
    f"""
    WITH moved AS (
        UPDATE quiz_sessions
        SET position = position + 1, question_started_at = now(), message_id = NULL
        WHERE id = :session_id AND position = :from_position AND status = :active
          AND cardinality(question_ids) > :from_position
        RETURNING {_SESSION_COLUMNS}
    ), revealed AS ({_REVEALED_SELECT}
    ), seen AS (
        SELECT answered_count AS seen_count FROM quiz_sessions WHERE id = :session_id
    )
    SELECT true AS moved, moved.*, revealed.revealed, seen.seen_count
    FROM moved, revealed, seen
    UNION ALL
    SELECT false, {_SESSION_COLUMNS}, revealed.revealed, answered_count
    FROM quiz_sessions, revealed
    WHERE id = :session_id AND NOT EXISTS (SELECT FROM moved)
    """
).columns(
    column("moved", Boolean), *_SESSIONS.c, column("revealed", JSON), column("seen_count", Integer)
)
_REVEALED = text(_REVEALED_SELECT).columns(column("revealed", JSON))

# A quiz's end and everything the end needs to know, in one statement (where it took
# three): the ending UPDATE, then the answers of the quiz with the player's name and
# the player's review card of the question. The session comes once, in a row whose
# answer columns are NULL, and each answer in a row whose session columns are NULL
# (`FULL JOIN ... ON false`): a channel quiz has hundreds of answers, and repeating the
# session's columns on each made every row twice as wide. `ended` says whether this
# call ended it; when it did not, the session columns are the row as the statement
# began. The answers are read in the snapshot the statement began with: an answer
# batch that committed while the UPDATE waited for the session's row is missing from
# them. The ended row's `answered_count` (its newest version) then differs from the
# answers read, and the caller reads them again (`SessionRepository.answers_of`), in
# its transaction that now holds the row.
_ANSWER_COLUMNS = """
    a.user_id AS a_user_id, coalesce(gm.display_name, u.name, '') AS a_name,
    a.question_id AS a_question_id, a.correct AS a_correct, a.points AS a_points,
    a.response_ms AS a_response_ms, a.answered_at AS a_answered_at,
    rc.due AS c_due, rc.stability AS c_stability, rc.difficulty AS c_difficulty,
    rc.reps AS c_reps, rc.lapses AS c_lapses, rc.last_review AS c_last_review
"""
_ANSWER_JOINS = """
    LEFT JOIN guild_members gm ON gm.guild_id = a.guild_id AND gm.user_id = a.user_id
    LEFT JOIN users u ON u.user_id = a.user_id
    LEFT JOIN review_cards rc ON rc.user_id = a.user_id AND rc.question_id = a.question_id
"""
_ANSWER_TYPES = (
    column("a_user_id", BigInteger),
    column("a_name", String),
    column("a_question_id", BigInteger),
    column("a_correct", Boolean),
    column("a_points", Integer),
    column("a_response_ms", Integer),
    column("a_answered_at", DateTime(timezone=True)),
    column("c_due", DateTime(timezone=True)),
    column("c_stability", Float),
    column("c_difficulty", Float),
    column("c_reps", Integer),
    column("c_lapses", Integer),
    column("c_last_review", DateTime(timezone=True)),
)
_FINISH_WITH_ANSWERS = text(
    f"""
    WITH ended AS (
        UPDATE quiz_sessions SET status = :new_status, finished_at = now()
        WHERE id = :session_id AND status = :active
        RETURNING {_SESSION_COLUMNS}
    ), s AS (
        SELECT true AS ended, ended.* FROM ended
        UNION ALL
        SELECT false, {_SESSION_COLUMNS} FROM quiz_sessions
        WHERE id = :session_id AND NOT EXISTS (SELECT FROM ended)
    )
    SELECT s.*, answer.*
    FROM s FULL JOIN (
        SELECT {_ANSWER_COLUMNS} FROM answers a {_ANSWER_JOINS}
        WHERE a.session_id = :session_id
    ) answer ON false
    """
).columns(column("ended", Boolean), *_SESSIONS.c, *_ANSWER_TYPES)
_ANSWERS_OF = text(
    f"SELECT {_ANSWER_COLUMNS} FROM answers a {_ANSWER_JOINS} WHERE a.session_id = :session_id"
).columns(*_ANSWER_TYPES)


def _start_sql(
    questions: str, draw_ctes: str = "", *, first_ctes: str = "", only_if: str | None = None
) -> str:
    """A quiz's start in one statement: the guild, user and member rows are created if
    missing, then the session, whose questions are the SQL expression `questions`.
    With `only_if` (a condition on `first_ctes`), nothing is written unless it holds,
    and no row is returned.

    The foreign keys are checked at the statement's end, so they see the rows the CTEs
    inserted; a conflict with a running quiz undoes it all.
    """
    row = f"""
        :guild_id, :channel_id, :user_id, :mode, :topic, :category, :difficulty,
        {questions}, :time_limit, :question_started_at"""
    source = f"VALUES ({row})" if only_if is None else f"SELECT {row} WHERE {only_if}"
    return f"""
    WITH {first_ctes}{ensure_member_ctes(only_if)}{draw_ctes}
    INSERT INTO quiz_sessions (guild_id, channel_id, user_id, mode, topic, category,
                               difficulty, question_ids, time_limit, question_started_at)
    {source}
    RETURNING {_SESSION_COLUMNS}
    """


# The questions the caller chose.
_START = text(_start_sql("CAST(:question_ids AS bigint[])")).columns(*_SESSIONS.c)

# The questions drawn by the statement (`QuestionDraw`): one round trip where reading
# the member's recent answers first took two. Unseen candidates come first, in the
# candidates' (random) order, then those seen longest ago; a question answered again
# counts by its latest answer.
_DRAW_CTES = """,
    recent AS (
        SELECT question_id, answered_at FROM answers
        WHERE user_id = :user_id AND guild_id = :guild_id
        ORDER BY answered_at DESC
        LIMIT :window
    ), drawn AS (
        SELECT c.id, s.last, c.ord
        FROM unnest(CAST(:candidates AS bigint[])) WITH ORDINALITY AS c(id, ord)
        LEFT JOIN (
            SELECT question_id, max(answered_at) AS last FROM recent GROUP BY question_id
        ) s ON s.question_id = c.id
        ORDER BY s.last NULLS FIRST, c.ord
        LIMIT :count
    )"""
_START_DRAWING = text(
    _start_sql("ARRAY(SELECT id FROM drawn ORDER BY last NULLS FIRST, ord)", _DRAW_CTES)
).columns(*_SESSIONS.c)

# A review's questions taken by its start's statement (`DueReviews`): one round trip
# where reading the due cards first took two. The cards `ReviewRepository.due_summary`
# counts as due (the index on (user_id, due) finds them).
# Nothing is written when none is due, not even the member's rows.
_DUE_CTES = """
    due AS (
        SELECT rc.question_id, rc.due FROM review_cards rc
        JOIN questions q ON q.id = rc.question_id
        WHERE rc.user_id = :user_id AND rc.due <= :now AND q.enabled
          AND (q.guild_id IS NULL OR q.guild_id = :guild_id)
        ORDER BY rc.due, rc.question_id
        LIMIT :count
    ),"""
_START_REVIEW = text(
    _start_sql(
        "ARRAY(SELECT question_id FROM due ORDER BY due, question_id)",
        first_ctes=_DUE_CTES,
        only_if="EXISTS (SELECT FROM due)",
    )
).columns(*_SESSIONS.c)

# A quiz's start, moves, messages and end run on the driver (`QuizService`); the
# messages on the answer writer's connections in the app (the main pool's without it).
prime_at_start(
    _START,
    _START_DRAWING,
    _START_REVIEW,
    _ADVANCE,
    _ADVANCE_REVEALING,
    _REVEALED,
    _SET_MESSAGES,
    _ROW,
    _FINISH_WITH_ANSWERS,
    _ANSWERS_OF,
)
prime_at_start(_SET_MESSAGES, pools=(ANSWER_POOL,))
# What a quiz's end reads and writes here (`finish_with_answers`, then `require_row` or
# `answers_of` when another writer got there first); `QuizService.finish` runs them
# with their generic plans.
END_STATEMENTS = (_FINISH_WITH_ANSWERS, _ROW, _ANSWERS_OF)

_ACTIVE_CONFLICTS: dict[str, tuple[type[ActiveSessionError], str]] = {
    "uq_quiz_sessions_active_channel": (
        ActiveSessionError,
        "a channel quiz is already running in this channel",
    ),
    "uq_quiz_sessions_active_solo": (
        ActiveSessionError,
        "you already have a quiz running in this channel",
    ),
}


@dataclass(frozen=True)
class QuestionDraw:
    """Questions a start draws in its own statement: `count` of `candidates` (ids, in
    random order), the member's unseen ones first, then those they saw longest ago
    among their last `window` answers in the guild."""

    candidates: list[int]
    count: int
    window: int


@dataclass(frozen=True)
class DueReviews:
    """A review's questions, taken by its start's statement: the member's cards due by
    `now` whose questions the guild can ask (the shared bank and its own, enabled),
    most overdue first, at most `count`. Nothing is started when none is due."""

    count: int
    now: dt.datetime


@dataclass(frozen=True)
class NewSession:
    """A quiz about to start: where, who, and the questions chosen for it."""

    guild_id: int
    guild_name: str
    channel_id: int
    user_id: int
    display_name: str
    mode: SessionMode
    # The ids, or what the start's statement draws or takes.
    questions: list[int] | QuestionDraw | DueReviews
    time_limit: int
    question_started_at: dt.datetime
    topic: str | None = None
    category: str | None = None
    difficulty: str = "mixed"


class SessionRepository(Repository[QuizSession]):
    """Sessions: one running quiz per channel (or per player and channel in solo mode)."""

    model_type = QuizSession

    async def create(self, session_row: QuizSession) -> QuizSession:
        """Insert a new session.

        Raises:
            ActiveSessionError: a quiz is already running there.
        """
        self.orm.add(session_row)
        with translate_integrity_errors(dict(_ACTIVE_CONFLICTS)):
            await self.orm.flush()
        return session_row

    async def start(self, new: NewSession) -> Row[Any]:
        """Insert a running session, creating its guild, user and member if missing.

        One statement (atomic on its own, so it may run in autocommit). The questions
        are the ids `new.questions` names, or, for a `QuestionDraw`, drawn by the
        statement (for `DueReviews`, see `start_review`).

        Returns:
            The new session's row.

        Raises:
            ActiveSessionError: a quiz is already running there (nothing is written).
        """
        if isinstance(new.questions, DueReviews):
            raise TypeError("a review may start nothing: use start_review")
        row = await self._start(new)
        if row is None:  # an INSERT ... VALUES returns its row or raises
            raise RuntimeError("a quiz's start inserted no session")
        return row

    async def start_review(self, new: NewSession) -> Row[Any] | None:
        """`start` for `DueReviews`: the statement takes the member's due cards.

        Returns:
            The new session's row, or None when nothing was due (nothing is written,
            not even the member's rows).

        Raises:
            ActiveSessionError: a quiz is already running there (nothing is written).
        """
        if not isinstance(new.questions, DueReviews):
            raise TypeError("start_review takes DueReviews")
        return await self._start(new)

    async def _start(self, new: NewSession) -> Row[Any] | None:
        params = ensure_member_params(
            guild_id=new.guild_id,
            user_id=new.user_id,
            display_name=new.display_name,
            guild_name=new.guild_name,
        )
        params.update(
            channel_id=new.channel_id,
            mode=new.mode.value,
            topic=new.topic,
            category=new.category,
            difficulty=new.difficulty,
            time_limit=new.time_limit,
            question_started_at=new.question_started_at,
        )
        statement = _START
        if isinstance(new.questions, QuestionDraw):
            statement = _START_DRAWING
            draw = new.questions
            params.update(candidates=draw.candidates, count=draw.count, window=draw.window)
        elif isinstance(new.questions, DueReviews):
            statement = _START_REVIEW
            params.update(count=new.questions.count, now=new.questions.now)
        else:
            params.update(question_ids=new.questions)
        with translate_integrity_errors(dict(_ACTIVE_CONFLICTS)):
            return (await self.session.execute(statement, params)).one_or_none()

    async def active_in_channel(self, *, channel_id: int) -> list[QuizSession]:
        """Running sessions in a channel."""
        stmt = select(QuizSession).where(
            QuizSession.channel_id == channel_id, QuizSession.status == SessionStatus.ACTIVE
        )
        return list((await self.orm.scalars(stmt)).all())

    async def all_active(self) -> list[QuizSession]:
        """Every running session (restart recovery)."""
        stmt = select(QuizSession).where(QuizSession.status == SessionStatus.ACTIVE)
        return list((await self.orm.scalars(stmt.order_by(QuizSession.id))).all())

    async def advance(self, *, session_id: int, from_position: int) -> int | None:
        """Move to the next question if the session is still at `from_position`.

        The position guard makes two concurrent "next question" calls move once.

        Returns:
            The new position, or None when another caller already moved it (or the
            session is not running, or is at its last question).
        """
        moved = await self.advance_returning(session_id=session_id, from_position=from_position)
        return None if moved is None else moved.position

    async def advance_returning(self, *, session_id: int, from_position: int) -> Row[Any] | None:
        """`advance`, returning the moved session's columns in the same statement.

        Returns None (and moves nothing) when the session is not at
        `from_position`, is not running, or is at its last question. The row has the
        session's column names as attributes. A Core statement on the table: this runs
        after every question, and the ORM's bookkeeping for an UPDATE of an entity
        (synchronising the identity map) cost more than the statement.
        """
        params = {"session_id": session_id, "from_position": from_position}
        return (await self.session.execute(_ADVANCE, params)).one_or_none()

    async def advance_revealing(
        self, *, session_id: int, from_position: int, question_id: int
    ) -> Row[Any] | None:
        """Who answered `question_id` and the move past it, in one statement.

        After the last question the session moves past its end (`position` equals
        the number of questions), where no answer counts.

        Returns:
            None for no such session; else a row with the session's columns, `moved`
            (whether this call moved it: the columns are then the moved row's, else
            the session's as the statement began), `revealed`, the question's answers
            fastest first as [user id, display name, correct, points] lists, and
            `seen_count`, the session's `answered_count` in the statement's snapshot.
            A moved row whose `answered_count` exceeds `seen_count` had answers committed
            while the move waited: they are missing from `revealed` (`revealed_of`).
        """
        params = {
            "session_id": session_id,
            "from_position": from_position,
            "question_id": question_id,
            "active": SessionStatus.ACTIVE.value,
        }
        return (await self.session.execute(_ADVANCE_REVEALING, params)).one_or_none()

    async def revealed_of(self, *, session_id: int, question_id: int) -> list[list[Any]]:
        """A question's answers as `advance_revealing` reveals them, read now."""
        params = {"session_id": session_id, "question_id": question_id}
        revealed: list[list[Any]] = (await self.session.execute(_REVEALED, params)).scalar_one()
        return revealed

    async def finish_with_answers(
        self, *, session_id: int, status: SessionStatus = SessionStatus.FINISHED
    ) -> Sequence[Row[Any]]:
        """End a running session and read its answers, in one statement.

        Returns:
            No row for no such session; else, in no set order, one row with the
            session's columns and `ended` (whether this call ended it; if not, the
            columns are the session as the statement began), its answer columns NULL;
            and one row per answer, its session columns NULL (`ended` too), with the
            answer as `a_user_id`, `a_name`, `a_question_id`,
            `a_correct`, `a_points`, `a_response_ms`, `a_answered_at`, and the player's
            review card of the question (`c_due`, `c_stability`, `c_difficulty`,
            `c_reps`, `c_lapses`, `c_last_review`; NULL without one).
            When `answered_count` differs from the answers returned, an answer committed
            while the UPDATE waited is missing: read them again with `answers_of`.
        """
        params = {
            "session_id": session_id,
            "new_status": status.value,
            "active": SessionStatus.ACTIVE.value,
        }
        return (await self.session.execute(_FINISH_WITH_ANSWERS, params)).all()

    async def answers_of(self, *, session_id: int) -> Sequence[Row[Any]]:
        """A session's answers with the columns of `finish_with_answers`' answer part."""
        return (await self.session.execute(_ANSWERS_OF, {"session_id": session_id})).all()

    async def set_messages(self, messages: dict[int, int | None]) -> dict[int, dt.datetime]:
        """Remember the Discord message that shows each session's current question
        (session id -> message id), and start those questions' clocks now.

        Returns each updated session's new start; a session that does not exist is
        left out.
        """
        params = {"session_ids": list(messages), "message_ids": list(messages.values())}
        rows = (await self.session.execute(_SET_MESSAGES, params)).all()
        return {session_id: started for session_id, started in rows}

    async def require_row(self, session_id: int) -> Row[Any]:
        """The session's columns as a row, freshly read (works on a Core connection).

        Raises:
            NotFoundError: no such session.
        """
        row = (await self.session.execute(_ROW, {"session_id": session_id})).one_or_none()
        if row is None:
            raise NotFoundError(f"quiz session {session_id} not found")
        return row

    async def require(self, session_id: int) -> QuizSession:
        """The session, freshly read.

        Raises:
            NotFoundError: no such session.
        """
        row = await self.orm.scalar(
            select(QuizSession)
            .where(QuizSession.id == session_id)
            .execution_options(populate_existing=True)
        )
        if row is None:
            raise NotFoundError(f"quiz session {session_id} not found")
        return row


# An answer with its day's, week's and month's points: nothing else may write answers
# without the roll-ups the period boards read.
_RECORD_ANSWER = text(
    f"""
    WITH ins AS (
        INSERT INTO answers (session_id, question_id, user_id, guild_id, topic, given,
                             correct, response_ms, points, answered_at)
        VALUES (:session_id, :question_id, :user_id, :guild_id, :topic, :given,
                :correct, :response_ms, :points, coalesce(:answered_at, now()))
        ON CONFLICT (session_id, question_id, user_id) DO NOTHING
        RETURNING id, answered_at
    ), d AS (
        {ONE_ANSWER_DAILY_POINTS}
    ), w AS (
        {ONE_ANSWER_PERIOD_POINTS}
    )
    SELECT id FROM ins
    """
).bindparams(
    bindparam("session_id", type_=BigInteger),
    bindparam("question_id", type_=BigInteger),
    bindparam("user_id", type_=BigInteger),
    bindparam("guild_id", type_=BigInteger),
    bindparam("topic", type_=String),
    bindparam("given", type_=String),
    bindparam("correct", type_=Boolean),
    bindparam("response_ms", type_=Integer),
    bindparam("points", type_=Integer),
    bindparam("answered_at", type_=DateTime(timezone=True)),
)


class AnswerRepository(Repository[Answer]):
    """Answers; the unique (session, question, user) key makes a repeat a no-op."""

    model_type = Answer

    async def record(
        self,
        *,
        session_id: int,
        question_id: int,
        user_id: int,
        guild_id: int,
        topic: str,
        given: str,
        correct: bool,
        response_ms: int,
        points: int,
        answered_at: dt.datetime | None = None,
    ) -> int | None:
        """Insert an answer unless this member already answered this question, and add
        its points to the member's day in its topic (`member_daily_points`), in one
        statement. The member must exist (the day references it).

        Returns:
            The new answer's id, or None for a repeat (nothing written).
        """
        params = {
            "session_id": session_id,
            "question_id": question_id,
            "user_id": user_id,
            "guild_id": guild_id,
            "topic": topic,
            "given": given[:200],
            "correct": correct,
            "response_ms": response_ms,
            "points": points,
            "answered_at": answered_at,
        }
        return (await self.session.execute(_RECORD_ANSWER, params)).scalar_one_or_none()

    async def for_question(self, *, session_id: int, question_id: int) -> list[Answer]:
        """Everyone's answers to one question of a session, fastest first (the reveal)."""
        stmt = (
            select(Answer)
            .where(Answer.session_id == session_id, Answer.question_id == question_id)
            .order_by(Answer.response_ms, Answer.id)
        )
        return list((await self.orm.scalars(stmt)).all())
