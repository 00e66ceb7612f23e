"""Wiring: the resources a quizbot process creates once and hands to whoever needs them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from quizbot.cache import QuizCache
from quizbot.config import Settings
from quizbot.db import (
    RECYCLE_AHEAD_S,
    StaggeredRecycle,
    answer_writer_generic_plans,
    create_breaker,
    create_engine,
    create_sessionmaker,
    database_url,
    finish_generic_plans,
    in_transactions,
    statements_stay_prepared,
)
from quizbot.driver import (
    ANSWER_POOL,
    MAIN_POOL,
    PRIMED,
    DriverConnections,
    NotPrimed,
    PoolName,
    statements_at_start,
)
from quizbot.migrations import upgrade
from quizbot.models import Question
from quizbot.pool_monitor import LONGEST_IDLE_FIRST, PoolMonitor
from quizbot.rank_mirror import RankMirror
from quizbot.repositories import AchievementRepository
from quizbot.resilience import BreakerState, CircuitBreaker
from quizbot.services.achievements import catalogue_rows
from quizbot.services.guild_settings import GuildSettingsService
from quizbot.services.question_bank import QuestionBankService
from quizbot.services.quiz import MESSAGE_FLUSHES, QuizService
from quizbot.services.review import ReviewService
from quizbot.services.stats import StatsService

log = logging.getLogger(__name__)

# Connections of the answer writer's pool beyond the flushes its committers may have in
# flight. The pool refresh (`App.refresh_pools`) holds one connection at a time to
# replace or prime it, so with one more than the flushes can take, a flush always finds
# another idle. Without it the refresh would have to leave the pool alone, and each
# writer connection would be replaced at a flush's checkout when due, its batch waiting
# for a new server process and for its statements' first runs.
WRITER_SPARE = 1


def prepare_database(settings: Settings) -> str:
    """Resolve the database (starting the embedded one if needed) and migrate it.

    Blocking; call before the event loop starts. Returns the database URL.
    """
    url = database_url(settings)
    upgrade(url)
    return url


@dataclass
class App:
    """One process's engine, cache and services."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Autocommit sessions for read-only units of work (no BEGIN/ROLLBACK round trips).
    read_sessionmaker: async_sessionmaker[AsyncSession]
    # Pooled connections running the hot one-statement units on the driver.
    read_connections: DriverConnections
    cache: QuizCache
    guild_settings: GuildSettingsService
    quiz: QuizService
    stats: StatsService
    bank: QuestionBankService
    review: ReviewService
    breaker: CircuitBreaker
    pool_monitor: PoolMonitor
    settings: Settings = field(default_factory=Settings)
    # The answer writer's own engine, one connection per answer or question-message
    # batch in flight (None without group commit), and its monitor.
    answer_engine: AsyncEngine | None = None
    answer_connections: DriverConnections | None = None
    answer_pool_monitor: PoolMonitor | None = None
    # Own ranks of large guilds from Redis (None without REDIS_URL).
    rank_mirror: RankMirror | None = None
    _monitor_task: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, settings: Settings, url: str, cache: QuizCache | None = None) -> App:
        """Build the services over one engine and one cache."""
        # Most units of work are one statement, so the pools' connections stay in
        # autocommit mode and the units that need a transaction ask for one.
        engine = create_engine(settings, url, autocommit=True)
        breaker = create_breaker(settings)
        sessions = create_sessionmaker(in_transactions(engine), breaker)
        reads = create_sessionmaker(engine, breaker)
        # The hottest one-statement units run on the driver, over the engine's pool: no
        # ORM session and no SQLAlchemy execution around a statement (quizbot.driver).
        statements = DriverConnections(engine, breaker)
        # Group-committed answers are written on connections of their own (one per batch
        # in flight): the hot path never queues for the pool behind reads and quiz moves.
        # The question messages' batches share them (one more per write in flight): both
        # writers' statements take their rows as arrays, which these connections plan
        # once (ANSWER_GENERIC_PLANS, `db.connect_args`). Plus WRITER_SPARE for the pool
        # refresh (`refresh_pools`).
        answer_engine = (
            create_engine(
                settings,
                url,
                pool_size=settings.answer_flushes + MESSAGE_FLUSHES + WRITER_SPARE,
                max_overflow=0,
                autocommit=True,
                generic_plans=answer_writer_generic_plans(settings),
            )
            if settings.answer_group_commit
            else None
        )
        answer_connections = (
            DriverConnections(answer_engine, breaker) if answer_engine is not None else None
        )
        cache = cache or QuizCache.from_settings(settings)
        mirror = (
            RankMirror(
                cache.redis,
                sessions,
                min_members=settings.rank_mirror_min_members,
                min_totals=settings.rank_mirror_min_totals,
                ttl_s=settings.rank_mirror_ttl_s,
                namespace=cache.backend.namespace,
            )
            if cache.redis is not None
            else None
        )
        guild_settings = GuildSettingsService(sessions, cache, reads=reads)
        quiz = QuizService(
            sessions,
            cache,
            guild_settings,
            reads=reads,
            answer_sessions=(
                create_sessionmaker(in_transactions(answer_engine), breaker)
                if answer_engine is not None
                else None
            ),
            answer_autocommit=answer_connections,
            message_statements=answer_connections,
            statements=statements,
            finish_transactions=functools.partial(
                statements.transaction, generic_plans=finish_generic_plans(settings)
            ),
            answer_group_commit=settings.answer_group_commit,
            answer_group_commit_ms=settings.answer_group_commit_ms,
            answer_batch_max=settings.answer_batch_max,
            answer_flushes=settings.answer_flushes,
            rank_mirror=mirror,
        )
        return cls(
            engine=engine,
            sessionmaker=sessions,
            read_sessionmaker=reads,
            read_connections=statements,
            cache=cache,
            guild_settings=guild_settings,
            quiz=quiz,
            stats=StatsService(
                sessions,
                cache,
                stats_single_statement=settings.stats_single_statement,
                reads=statements,
                rank_mirror=mirror,
                global_board_refresh_s=settings.global_board_refresh_s,
            ),
            bank=QuestionBankService(sessions, cache),
            review=ReviewService(reads, quiz),
            breaker=breaker,
            pool_monitor=PoolMonitor(
                engine,
                alert_utilisation=settings.db_pool_alert_utilisation,
                alert_wait_ms=settings.db_pool_alert_wait_ms,
            ),
            settings=settings,
            answer_engine=answer_engine,
            answer_connections=answer_connections,
            answer_pool_monitor=(
                PoolMonitor(
                    answer_engine,
                    name="answer writer pool",
                    # Every batch in flight holds one of its connections: a full pool
                    # is normal under load. A wait for one is not (the two committers'
                    # limits of flushes in flight and the refresh's spare add up to its
                    # size).
                    alert_utilisation=None,
                    alert_wait_ms=settings.db_pool_alert_wait_ms,
                )
                if answer_engine is not None
                else None
            ),
            rank_mirror=mirror,
        )

    @property
    def pool_monitors(self) -> list[PoolMonitor]:
        """The monitors of every pool this process has."""
        extra = [self.answer_pool_monitor] if self.answer_pool_monitor is not None else []
        return [self.pool_monitor, *extra]

    def start_monitoring(self) -> None:
        """Start the periodic pool checks and the pool refresh (`refresh_pools`), every
        DB_POOL_MONITOR_INTERVAL seconds (0 turns both off)."""
        interval = self.settings.db_pool_monitor_interval
        if interval > 0 and self._monitor_task is None:
            checks = [m.run(interval) for m in self.pool_monitors]
            checks.append(self._refresh_every(interval))
            self._monitor_task = asyncio.get_running_loop().create_task(
                _all(checks), name="pool-monitor"
            )

    async def bootstrap(self, *, seed: bool = True, warm: bool = False) -> None:
        """Upsert the achievements catalogue; load the bundled bank when no question
        exists; with `warm`, open the pools' connections (`open_pools`) and fill the
        question cache (`QuizService.warm_question_cache`): the bot does, so that its
        first quizzes read no question and its first burst opens no connection; a
        one-off command such as `quizbot import` has no use for either.

        Also starts the pool monitor (see `start_monitoring`).
        """
        if warm:
            began = time.perf_counter()
            opened = await self.open_pools()
            log.info(
                "database pools: %d connections open in %.0f ms%s",
                opened,
                (time.perf_counter() - began) * 1000,
                ", the hot statements prepared on each" if self.primes_connections else "",
            )
        self.start_monitoring()
        async with self.sessionmaker() as session, session.begin():
            await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
            empty = (await session.scalar(select(func.count()).select_from(Question))) == 0
        if seed and empty:
            log.info("first start: loading the bundled question bank")
            report = await self.bank.seed_bundled()
            log.info("loaded %d questions", report.inserted)
        if not warm:
            return
        began = time.perf_counter()
        warmed = await self.quiz.warm_question_cache()
        if warmed:
            log.info(
                "question cache: %d questions loaded in %.0f ms",
                warmed,
                (time.perf_counter() - began) * 1000,
            )

    def _pools(self) -> list[tuple[AsyncEngine, DriverConnections, PoolName]]:
        """Each engine, its driver connections and the name its statements are listed
        under (`driver.prime_at_start`)."""
        pools = [(self.engine, self.read_connections, MAIN_POOL)]
        if self.answer_engine is not None and self.answer_connections is not None:
            pools.append((self.answer_engine, self.answer_connections, ANSWER_POOL))
        return pools

    async def refresh_pools(self, ahead_s: float) -> int:
        """Renew idle connections of both pools in the background; return how many were
        primed.

        A connection due for recycling within `ahead_s` (`db.StaggeredRecycle`) is
        replaced now, and a connection that was not primed (that replacement, or one
        the pool reconnected after an error) is primed (`DriverConnections.prime`).
        Otherwise the pool replaces a connection at the checkout of the first command
        (or answer batch) after its life, and that command waits for a new server
        process, then for each statement's first run.

        The idle connections are taken in turn, longest idle first
        (`pool_monitor.LONGEST_IDLE_FIRST`: a LIFO pool would otherwise hand out the
        one just returned each time), one at a time, each put back on top, so one round
        visits each once and leaves their order as it was.

        - The engine's pool: only while a quarter of it (at least two connections)
          stays idle: the commands never wait for one, and with the refresh's own
          checkout the pool is at most three quarters used plus one, below the
          monitor's default alert (90 %, set by DB_POOL_ALERT_UTILISATION). Under
          heavier load the pool recycles at checkout, as without this.
        - The answer writer's pool: its connections number the flushes its committers
          may have in flight plus `WRITER_SPARE`, so the refresh's one checkout at a
          time never makes a batch wait, however busy the writers are.

        Nothing is done while the circuit breaker is not closed.
        """
        if self.breaker.state is not BreakerState.CLOSED:
            return 0
        primed = 0
        ahead = RECYCLE_AHEAD_S.set(ahead_s)
        longest_idle = LONGEST_IDLE_FIRST.set(True)
        try:
            for engine, connections, name in self._pools():
                size: int = engine.pool.size()  # type: ignore[attr-defined]
                reserve = max(2, math.ceil(size / 4)) if name == MAIN_POOL else WRITER_SPARE
                primed += await self._refresh_pool(engine, connections, name, reserve)
        finally:
            LONGEST_IDLE_FIRST.reset(longest_idle)
            RECYCLE_AHEAD_S.reset(ahead)
        return primed

    async def _refresh_pool(
        self, engine: AsyncEngine, connections: DriverConnections, name: PoolName, reserve: int
    ) -> int:
        """One round of `refresh_pools` over one pool, while `reserve` connections are
        idle before each checkout; how many it primed."""
        pool: Any = engine.pool
        statements = statements_at_start(name) if self.primes_connections else ()
        primed = 0
        for _ in range(pool.checkedin()):
            # SQLAlchemy 2.1 takes an idle connection without awaiting: no command can
            # take one between this check and the checkout.
            if pool.checkedin() < reserve:
                break
            async with engine.connect() as connection:
                fairy = await connection.get_raw_connection()
                if not statements or fairy.info.get(PRIMED):
                    continue
                try:
                    skipped = await connections.prime(connection, statements)
                except Exception as error:  # that connection is invalidated
                    _report_priming(name, [error])
                else:
                    _report_priming(name, [skipped])
                    primed += 1
        return primed

    async def _refresh_every(self, interval: float) -> None:
        """`refresh_pools` every `interval` seconds (until cancelled)."""
        ahead_s = recycle_ahead_s(interval, self.settings.db_pool_recycle)
        while True:
            await asyncio.sleep(interval)
            try:
                primed = await self.refresh_pools(ahead_s)
            except Exception:
                # The database went away meanwhile, say: the next round tries again.
                log.exception("could not refresh the pooled connections")
                continue
            if primed:
                log.info("pool refresh: %d connections replaced or reconnected, and primed", primed)

    @property
    def primes_connections(self) -> bool:
        """Whether `open_pools` prepares the hot statements on each connection: not
        behind PgBouncer (`DB_PGBOUNCER`), where a connection is no server process of
        its own, nor without asyncpg's statement cache (`DB_STATEMENT_CACHE_SIZE=0`),
        which would forget them."""
        return statements_stay_prepared(self.settings)

    async def open_pools(self) -> int:
        """Open every connection of the pools now, all at once, prepare the hot
        statements on each (`DriverConnections.prime`, see `primes_connections`), and
        return how many are open.

        The pools open connections as commands first need them, so the first burst
        above the load a bot has seen (a trivia night's 1,000 players after an evening
        of 300) would wait for new server processes, started while the server is
        busiest: in the benchmark, pool waits of half a second at that step. And a
        connection's first run of a statement costs several times its next ones; with
        the whole pool open, the first commands at low load would meet fresh
        connections one after the other.

        Best effort: a connection that cannot be opened now (the server's
        `max_connections`, say) is logged and left to open when needed, as before. A
        statement that cannot be prepared is logged, and prepared on first use.

        Returns:
            The connections open in the pools afterwards.
        """
        pools = self._pools()
        for engine, connections, name in pools:
            pool: Any = engine.pool
            async with contextlib.AsyncExitStack() as held:
                # Held together, so each checkout opens a connection of its own; every
                # attempt is awaited before the stack returns what was opened.
                outcomes = await asyncio.gather(
                    *(held.enter_async_context(engine.connect()) for _ in range(pool.size())),
                    return_exceptions=True,
                )
                opened = [o for o in outcomes if isinstance(o, AsyncConnection)]
                if self.primes_connections:
                    statements = statements_at_start(name)
                    primed = await asyncio.gather(
                        *(connections.prime(c, statements) for c in opened),
                        return_exceptions=True,
                    )
                    _report_priming(name, primed)
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            if failed:
                log.warning(
                    "opened %d of %d pooled connections at start (%s); the rest open when needed",
                    len(opened),
                    len(outcomes),
                    failed[0],
                )
        for monitor in self.pool_monitors:
            monitor.forget_peak()  # every connection out at once was ours, not load
        return sum(e.pool.checkedin() for e, _c, _n in pools)  # type: ignore[attr-defined]

    async def close(self) -> None:
        """Write queued answers and messages, then release the monitor, the cache and the
        pool.

        The connections are released even when writing the queue or closing the cache
        fails (the error is raised after).
        """
        try:
            await self.quiz.close()
        finally:
            try:
                if self._monitor_task is not None:
                    self._monitor_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._monitor_task
                    self._monitor_task = None
                for monitor in self.pool_monitors:
                    log.info("%s at shutdown: %s", monitor.name, monitor.status().describe())
                    monitor.remove()
                if self.rank_mirror is not None:
                    await self.rank_mirror.close()  # before its Redis client goes
                await self.cache.close()
            finally:
                if self.answer_engine is not None:
                    await self.answer_engine.dispose()
                await self.engine.dispose()


def recycle_ahead_s(interval: float, recycle_s: float) -> float:
    """How long before its due time the pool refresh replaces a connection: up to the
    refresh after next (`interval` apart), so that a refresh that finds the pool busy
    gets a second chance; but never as much as half of the shortest life
    (`StaggeredRecycle`), or a new connection would be due again at once."""
    ahead = 2 * interval
    if recycle_s > 0:
        ahead = min(ahead, StaggeredRecycle.RECYCLE_SPREAD * recycle_s / 2)
    return ahead


def _report_priming(pool: PoolName, outcomes: list[list[NotPrimed] | BaseException]) -> None:
    """Log what `DriverConnections.prime` could not do on a pool's connections, each
    statement and error once."""
    broken = [o for o in outcomes if isinstance(o, BaseException)]
    if broken:
        log.warning(
            "could not prime %d of %d connections of the %s pool (%s); they prepare their "
            "statements on first use",
            len(broken),
            len(outcomes),
            pool,
            broken[0],
        )
    skipped = Counter(s for o in outcomes if not isinstance(o, BaseException) for s in o)
    for statement, connections in skipped.items():
        log.warning(
            "could not prepare a statement at start on %d of %d connections of the %s "
            "pool (%s); it is prepared on first use: %s",
            connections,
            len(outcomes),
            pool,
            statement.error,
            statement.sql,
        )


async def _all(checks: list[Coroutine[Any, Any, None]]) -> None:
    """Run the checks together until cancelled (cancelling this cancels them all)."""
    await asyncio.gather(*checks)
