"""The legacy baseline: the data layer the optimization plan starts from, re-created small.

Only the workload's calls, on quizbot's schema and data, written the way the
plan describes the old code (its "Critical Issues Identified"):

1. psycopg2 with a `ThreadedConnectionPool(1, 10)` behind an `AsyncConnectionWrapper`
   whose methods are `async def` but call the blocking driver directly, so every
   query stops the event loop for its whole round trip;
2. one query per item (the N+1 pattern) for stats, leaderboard names, reveals and
   the review cards a quiz's end schedules;
3. none of the hot indexes (the runner drops `dataset.HOT_INDEXES` on this variant's
   copy of the database; the schema's other indexes stay);
4. a temporary table per batch update;
5. no cache: every read goes to the database.

It stays *correct* (each answer is one transaction, points are added in SQL), so
the integrity check holds for it too: the baseline is slow, not broken.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2.pool import ThreadedConnectionPool

from bench.metrics import count_held, count_pool_wait, count_statement, count_tx, held_by_current
from bench.workload import Ack, Member, Shown


class Tx:
    """A cursor inside one transaction; each call is a blocking round trip."""

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self._cur = conn.cursor()

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        count_statement(sql, args)
        self._cur.execute(sql, args)

    def fetchall(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self.execute(sql, args)
        return list(self._cur.fetchall())

    def fetchone(self, sql: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        self.execute(sql, args)
        row: tuple[Any, ...] | None = self._cur.fetchone()
        return row


class AsyncConnectionWrapper:
    """The plan's wrapper: async signatures over a synchronous pool (not really async)."""

    def __init__(self, dsn: str) -> None:
        self.pool = ThreadedConnectionPool(1, 10, dsn)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        began = time.perf_counter()
        conn = self.pool.getconn()
        taken = time.perf_counter()
        count_pool_wait(taken - began)
        holder = held_by_current()
        try:
            # psycopg2 sends BEGIN before the first statement and COMMIT here.
            count_tx("BEGIN")
            yield Tx(conn)
            count_tx("COMMIT")
            conn.commit()
        except BaseException:
            count_tx("ROLLBACK")
            conn.rollback()
            raise
        finally:
            self.pool.putconn(conn)
            count_held(holder, time.perf_counter() - taken)

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.transaction() as tx:
            return tx.fetchall(sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        with self.transaction() as tx:
            return tx.fetchone(sql, args)

    def close(self) -> None:
        self.pool.closeall()


class LegacyDriver:
    """The workload's commands over the legacy data layer."""

    def __init__(self, dsn: str) -> None:
        self.db = AsyncConnectionWrapper(dsn)

    async def setup(self) -> None:
        return None

    async def close(self) -> None:
        self.db.close()

    def _question(self, tx: Tx, question_id: int) -> tuple[Any, ...]:
        row = tx.fetchone(
            "SELECT id, topic, difficulty, answer, choices FROM questions WHERE id = %s",
            (question_id,),
        )
        if row is None:
            raise LookupError(f"question {question_id} not found")
        return row

    def _register(self, tx: Tx, m: Member) -> None:
        """Register guild, user and member: look first, insert if missing."""
        if tx.fetchone("SELECT 1 FROM guilds WHERE guild_id = %s", (m.guild_id,)) is None:
            tx.execute(
                "INSERT INTO guilds (guild_id, name) VALUES (%s, %s)",
                (m.guild_id, f"Guild {m.guild_id}"),
            )
        if tx.fetchone("SELECT 1 FROM users WHERE user_id = %s", (m.user_id,)) is None:
            tx.execute("INSERT INTO users (user_id, name) VALUES (%s, %s)", (m.user_id, m.name))
        if (
            tx.fetchone(
                "SELECT 1 FROM guild_members WHERE guild_id = %s AND user_id = %s",
                (m.guild_id, m.user_id),
            )
            is None
        ):
            tx.execute(
                "INSERT INTO guild_members (guild_id, user_id, display_name) VALUES (%s, %s, %s)",
                (m.guild_id, m.user_id, m.name),
            )

    def _timer(self, tx: Tx, guild_id: int) -> int:
        settings = tx.fetchone("SELECT settings FROM guilds WHERE guild_id = %s", (guild_id,))
        return int((settings[0] if settings else {}).get("timer", 30))

    def _open(
        self, tx: Tx, m: Member, channel_id: int, mode: str, chosen: list[int], timer: int
    ) -> int:
        """Insert the session; read its first question to show it."""
        row = tx.fetchone(
            "INSERT INTO quiz_sessions (guild_id, channel_id, user_id, mode, status, "
            "difficulty, question_ids, position, time_limit, question_started_at) "
            "VALUES (%s, %s, %s, %s, 'active', 'mixed', %s, 0, %s, now()) RETURNING id",
            (m.guild_id, channel_id, m.user_id, mode, chosen, timer),
        )
        assert row is not None
        self._question(tx, chosen[0])
        return int(row[0])

    def _posted(self, session_id: int) -> None:
        """The game posts the question, then remembers its message."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE quiz_sessions SET message_id = %s WHERE id = %s",
                (session_id * 64, session_id),
            )

    async def start(self, m: Member, channel_id: int, mode: str, count: int) -> Shown:
        with self.db.transaction() as tx:
            self._register(tx, m)
            timer = self._timer(tx, m.guild_id)
            pool = [
                r[0]
                for r in tx.fetchall(
                    "SELECT id FROM questions WHERE enabled AND (guild_id IS NULL "
                    "OR guild_id = %s)",
                    (m.guild_id,),
                )
            ]
            seen = {
                r[0]
                for r in tx.fetchall(
                    "SELECT question_id FROM answers WHERE user_id = %s AND guild_id = %s "
                    "ORDER BY answered_at DESC LIMIT 300",
                    (m.user_id, m.guild_id),
                )
            }
            fresh = [q for q in pool if q not in seen] or pool
            chosen = fresh[: max(count, 1)] if len(fresh) <= count else _sample(fresh, count)
            session_id = self._open(tx, m, channel_id, mode, chosen, timer)
        self._posted(session_id)
        return Shown(session_id, chosen[0], 0)

    async def review(self, m: Member, channel_id: int, count: int) -> Shown | None:
        with self.db.transaction() as tx:
            timer = self._timer(tx, m.guild_id)
            due = [
                r[0]
                for r in tx.fetchall(
                    "SELECT rc.question_id FROM review_cards rc "
                    "JOIN questions q ON q.id = rc.question_id "
                    "WHERE rc.user_id = %s AND rc.due <= now() AND q.enabled "
                    "AND (q.guild_id IS NULL OR q.guild_id = %s) ORDER BY rc.due LIMIT %s",
                    (m.user_id, m.guild_id, count),
                )
            ]
            if not due:
                # The reply says when the next review is due.
                tx.fetchone("SELECT min(due) FROM review_cards WHERE user_id = %s", (m.user_id,))
                return None
            self._register(tx, m)
            session_id = self._open(tx, m, channel_id, "solo", due, timer)
        self._posted(session_id)
        return Shown(session_id, due[0], 0)

    async def answer(self, m: Member, session_id: int, question_id: int, given: str) -> Ack | None:
        with self.db.transaction() as tx:
            s = tx.fetchone(
                "SELECT status, guild_id, mode, user_id, question_ids[position + 1], "
                "question_started_at, time_limit FROM quiz_sessions WHERE id = %s",
                (session_id,),
            )
            if s is None:
                raise LookupError(f"quiz session {session_id} not found")
            status, guild_id, mode, owner, current, started, _limit = s
            if (
                status != "active"
                or current != question_id
                or (mode == "solo" and owner != m.user_id)
            ):
                return None
            q = self._question(tx, question_id)
            correct = given.strip().lower() == str(q[3]).strip().lower()
            member = tx.fetchone(
                "SELECT answer_streak FROM guild_members WHERE guild_id = %s AND user_id = %s",
                (guild_id, m.user_id),
            )
            streak = int(member[0]) if member else 0
            response_ms = max(0, int((dt.datetime.now(dt.UTC) - started).total_seconds() * 1000))
            points = 100 + 10 * min(streak, 5) if correct else 0
            xp = 10 if correct else 2
            inserted = tx.fetchone(
                "INSERT INTO answers (session_id, question_id, user_id, guild_id, topic, given, "
                "correct, response_ms, points) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (session_id, question_id, user_id) DO NOTHING RETURNING id",
                (
                    session_id,
                    question_id,
                    m.user_id,
                    guild_id,
                    q[1],
                    given,
                    correct,
                    response_ms,
                    points,
                ),
            )
            if inserted is None:
                return None
            if member is None:
                tx.execute(
                    "INSERT INTO guild_members (guild_id, user_id, display_name) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    (guild_id, m.user_id, m.name),
                )
            tx.execute(
                "UPDATE guild_members SET points = points + %s, xp = xp + %s, "
                "answered = answered + 1, correct = correct + %s, answer_streak = %s, "
                "best_streak = greatest(best_streak, %s), last_active = now() "
                "WHERE guild_id = %s AND user_id = %s",
                (
                    points,
                    xp,
                    int(correct),
                    streak + 1 if correct else 0,
                    streak + 1 if correct else 0,
                    guild_id,
                    m.user_id,
                ),
            )
            tx.execute(
                "UPDATE users SET points = points + %s, xp = xp + %s, last_active = now() "
                "WHERE user_id = %s",
                (points, xp, m.user_id),
            )
            tx.execute(
                "UPDATE quiz_sessions SET answered_count = answered_count + 1, "
                "correct_count = correct_count + %s, points_earned = points_earned + %s "
                "WHERE id = %s",
                (int(correct), points, session_id),
            )
            return Ack(session_id, question_id, m.user_id, points)

    async def advance(self, session_id: int, question_id: int, position: int) -> Shown | None:
        # The old bot: the reveal's reads, then the move, each on its own.
        await self._reveal(session_id, question_id)
        return await self._advance(session_id, position)

    async def _reveal(self, session_id: int, question_id: int) -> None:
        with self.db.transaction() as tx:
            self._question(tx, question_id)
            rows = tx.fetchall(
                "SELECT user_id, guild_id, correct, points FROM answers "
                "WHERE session_id = %s AND question_id = %s ORDER BY response_ms, id",
                (session_id, question_id),
            )
            for user_id, guild_id, _correct, _points in rows:  # one query per answer
                tx.fetchone(
                    "SELECT display_name FROM guild_members WHERE guild_id = %s AND user_id = %s",
                    (guild_id, user_id),
                )

    async def _advance(self, session_id: int, position: int) -> Shown | None:
        with self.db.transaction() as tx:
            s = tx.fetchone(
                "SELECT status, position, question_ids FROM quiz_sessions WHERE id = %s",
                (session_id,),
            )
            if s is None or s[0] != "active":
                return None
            _status, current, ids = s
            if current == position:
                if position + 1 >= len(ids):
                    return None
                tx.execute(
                    "UPDATE quiz_sessions SET position = position + 1, question_started_at = now() "
                    "WHERE id = %s AND position = %s",
                    (session_id, position),
                )
                current = position + 1
            self._question(tx, ids[current])
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE quiz_sessions SET message_id = %s WHERE id = %s",
                (session_id * 64 + current, session_id),
            )
        return Shown(session_id, ids[current], current)

    async def finish(self, session_id: int) -> None:
        with self.db.transaction() as tx:
            ended = tx.fetchone(
                "UPDATE quiz_sessions SET status = 'finished', finished_at = now() "
                "WHERE id = %s AND status = 'active' RETURNING guild_id",
                (session_id,),
            )
            if ended is None:
                return
            players = tx.fetchall(
                "SELECT user_id, count(*), sum(points) FROM answers WHERE session_id = %s "
                "GROUP BY user_id",
                (session_id,),
            )
            if not players:
                return
            # The plan's "temporary table for each batch update".
            tx.execute(
                "CREATE TEMPORARY TABLE tmp_quiz_updates (user_id bigint, quizzes int) "
                "ON COMMIT DROP"
            )
            for user_id, _n, _p in players:  # one INSERT per row
                tx.execute(
                    "INSERT INTO tmp_quiz_updates (user_id, quizzes) VALUES (%s, 1)", (user_id,)
                )
            tx.execute(
                "UPDATE guild_members gm SET quizzes_taken = gm.quizzes_taken + t.quizzes "
                "FROM tmp_quiz_updates t WHERE gm.guild_id = %s AND gm.user_id = t.user_id",
                (ended[0],),
            )
            tx.execute("DROP TABLE tmp_quiz_updates")
            # Each answer's review card (spaced repetition), one statement per card, so
            # that reviews use up due cards as in quizbot (a simple schedule: three
            # days after a right answer, ten minutes after a wrong one).
            for user_id, question_id, correct in tx.fetchall(
                "SELECT user_id, question_id, correct FROM answers WHERE session_id = %s",
                (session_id,),
            ):
                tx.execute(
                    "INSERT INTO review_cards (user_id, question_id, due, stability, "
                    "difficulty, reps, lapses, last_review) VALUES (%s, %s, now() + "
                    "%s * interval '1 day' + interval '10 minutes', %s, 5, 1, %s, now()) "
                    "ON CONFLICT (user_id, question_id) DO UPDATE SET due = excluded.due, "
                    "stability = excluded.stability, reps = review_cards.reps + 1, "
                    "lapses = review_cards.lapses + excluded.lapses, "
                    "last_review = excluded.last_review",
                    (
                        user_id,
                        question_id,
                        3 if correct else 0,
                        4 if correct else 1,
                        0 if correct else 1,
                    ),
                )

    async def stats(self, m: Member) -> None:
        g, u = m.guild_id, m.user_id
        basic = await self.db.fetchrow(
            "SELECT points, xp, level, answered, correct, quizzes_taken, answer_streak, "
            "best_streak, daily_streak FROM guild_members WHERE guild_id = %s AND user_id = %s",
            g,
            u,
        )
        await self.db.fetchrow("SELECT points, level FROM users WHERE user_id = %s", u)
        points = basic[0] if basic else 0
        await self.db.fetchrow(
            "SELECT count(*) + 1 FROM guild_members WHERE guild_id = %s AND points > %s", g, points
        )
        await self.db.fetchrow("SELECT count(*) FROM guild_members WHERE guild_id = %s", g)
        await self.db.fetchrow(
            "SELECT count(*), avg(correct_count) FROM quiz_sessions "
            "WHERE user_id = %s AND guild_id = %s",
            u,
            g,
        )
        topics = await self.db.fetch(
            "SELECT DISTINCT topic FROM answers WHERE user_id = %s AND guild_id = %s", u, g
        )
        for (topic,) in topics:  # one query per topic
            await self.db.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE correct) FROM answers "
                "WHERE user_id = %s AND guild_id = %s AND topic = %s",
                u,
                g,
                topic,
            )
        recent = await self.db.fetch(
            "SELECT code, earned_at FROM user_achievements WHERE user_id = %s AND guild_id = %s "
            "ORDER BY earned_at DESC LIMIT 5",
            u,
            g,
        )
        for code, _earned in recent:  # one query per achievement
            await self.db.fetchrow("SELECT name, icon FROM achievements WHERE code = %s", code)

    async def leaderboard(self, m: Member, week: bool) -> None:
        g = m.guild_id
        if week:
            today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            since = today - dt.timedelta(days=today.weekday())
            top = await self.db.fetch(
                "SELECT user_id, sum(points) AS p FROM answers WHERE guild_id = %s "
                "AND answered_at >= %s GROUP BY user_id HAVING sum(points) > 0 "
                "ORDER BY p DESC, user_id LIMIT 10",
                g,
                since,
            )
        else:
            top = await self.db.fetch(
                "SELECT user_id, points FROM guild_members WHERE guild_id = %s AND points > 0 "
                "ORDER BY points DESC, user_id LIMIT 10",
                g,
            )
        for user_id, _points in top:  # one query per row for the name
            await self.db.fetchrow(
                "SELECT display_name FROM guild_members WHERE guild_id = %s AND user_id = %s",
                g,
                user_id,
            )
        mine = await self.db.fetchrow(
            "SELECT points FROM guild_members WHERE guild_id = %s AND user_id = %s", g, m.user_id
        )
        if mine is not None:
            await self.db.fetchrow(
                "SELECT count(*) + 1 FROM guild_members WHERE guild_id = %s AND points > %s",
                g,
                mine[0],
            )


def _sample(pool: list[int], count: int) -> list[int]:
    import random

    return random.sample(pool, count)
