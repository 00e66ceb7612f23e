"""Connection pool metrics and alerts (the plan's "pool statistics" and "alerts for
pool exhaustion").

`MonitoredPool` is SQLAlchemy's asyncio queue pool with its checkout timed: a
checkout that found no idle connection and no overflow left is a *wait*, and one
that gave up is a *timeout*. Pool events count checkouts, new connections and
invalidations. `PoolMonitor.check` compares a window of these against thresholds;
`PoolMonitor.run` does it periodically and logs a warning when one is passed.

The pool hands out the connection returned last (`DB_POOL_LIFO`, the default), so
the connections a load needs stay warm and the rest stay idle. Background work that
must visit the idle ones (`App.refresh_pools`) sets `LONGEST_IDLE_FIRST` to be handed
the one idle for longest instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import queue as sqla_queue

log = logging.getLogger(__name__)

# Set while a checkout should take the connection idle for longest rather than the one
# returned last (what a LIFO pool hands out).
LONGEST_IDLE_FIRST: ContextVar[bool] = ContextVar("quizbot_longest_idle_first", default=False)


@dataclass
class PoolMetrics:
    """Counters since the pool was created (totals) and since the last check (window)."""

    checkouts: int = 0
    checkins: int = 0
    connects: int = 0
    invalidations: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    max_wait_seconds: float = 0.0
    timeouts: int = 0
    peak_checked_out: int = 0
    waiting: int = 0  # checkouts blocked right now
    # Since the last `PoolMonitor.check`.
    window_waits: int = 0
    window_wait_seconds: float = 0.0
    window_max_wait_seconds: float = 0.0
    window_timeouts: int = 0

    def record_wait(self, seconds: float, *, timed_out: bool) -> None:
        """One checkout that had to wait for a connection to come back."""
        self.waits += 1
        self.window_waits += 1
        self.wait_seconds += seconds
        self.window_wait_seconds += seconds
        self.max_wait_seconds = max(self.max_wait_seconds, seconds)
        self.window_max_wait_seconds = max(self.window_max_wait_seconds, seconds)
        if timed_out:
            self.timeouts += 1
            self.window_timeouts += 1


class MonitoredPool(AsyncAdaptedQueuePool):
    """AsyncAdaptedQueuePool that times checkouts which had to wait."""

    # Log under SQLAlchemy's pool logger (quiet unless echo_pool), not under "quizbot".
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"

    def __init__(self, *args: Any, metrics: PoolMetrics | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.metrics = metrics or PoolMetrics()

    def recreate(self) -> MonitoredPool:
        # engine.dispose() recreates the pool: keep counting into the same metrics.
        new = super().recreate()
        assert isinstance(new, MonitoredPool)
        new.metrics = self.metrics
        return new

    @property
    def capacity(self) -> int:
        """Connections the pool may hold at once (size + overflow)."""
        return self.size() + max(self._max_overflow, 0)

    def _do_get(self) -> ConnectionPoolEntry:
        if LONGEST_IDLE_FIRST.get() and self._pool.use_lifo:
            longest_idle = self._take_longest_idle()
            if longest_idle is not None:
                return longest_idle
        # Exhausted: nothing idle and no overflow left, so this checkout will block.
        exhausted = (
            self._max_overflow > -1
            and self.checkedin() == 0
            and self.overflow() >= self._max_overflow
        )
        if not exhausted:
            return super()._do_get()
        started = time.perf_counter()
        self.metrics.waiting += 1
        try:
            entry = super()._do_get()
        except sa_exc.TimeoutError:
            self.metrics.record_wait(time.perf_counter() - started, timed_out=True)
            raise
        finally:
            self.metrics.waiting -= 1
        self.metrics.record_wait(time.perf_counter() - started, timed_out=False)
        return entry

    def _take_longest_idle(self) -> ConnectionPoolEntry | None:
        """The idle connection at the bottom of the LIFO queue, the others left in their
        order; None when none is idle.

        Taken out one by one and put back without awaiting anything, so no other
        checkout or checkin runs in between.
        """
        idle: list[ConnectionPoolEntry] = []
        while True:
            try:
                idle.append(self._pool.get(block=False))
            except sqla_queue.Empty:
                break
        if not idle:
            return None
        longest = idle.pop()  # the last out of a LIFO queue went in first
        for entry in reversed(idle):
            self._pool.put(entry, block=False)
        return longest


@dataclass(frozen=True)
class PoolStatus:
    """A snapshot for reports and logs."""

    size: int
    max_overflow: int
    checked_out: int
    checked_in: int
    overflow: int
    utilisation: float
    metrics: PoolMetrics

    def describe(self) -> str:
        """One line for a log or a terminal."""
        m = self.metrics
        mean_ms = m.wait_seconds / m.waits * 1000 if m.waits else 0.0
        return (
            f"{self.checked_out}/{self.size}+{self.max_overflow} checked out "
            f"({self.utilisation:.0%}), {self.checked_in} idle, overflow {self.overflow}, "
            f"{m.waiting} waiting now; "
            f"{m.checkouts} checkouts, {m.connects} connects, {m.waits} waits "
            f"(mean {mean_ms:.1f} ms, max {m.max_wait_seconds * 1000:.1f} ms), "
            f"{m.timeouts} timeouts, peak {m.peak_checked_out}"
        )


class PoolMonitor:
    """Metrics of one engine's pool and the alert rules over them."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        name: str = "database pool",
        alert_utilisation: float | None = 0.9,
        alert_wait_ms: float = 100.0,
    ) -> None:
        """Args:
        engine: whose pool to watch.
        name: how its alerts and status lines start.
        alert_utilisation: alert when this share of the pool was checked out at once;
            None for a pool that is meant to be used in full (the answer writer's).
        alert_wait_ms: alert when a checkout waited this long for a connection.
        """
        pool = engine.sync_engine.pool
        self.engine = engine
        self.name = name
        self.metrics: PoolMetrics = (
            pool.metrics if isinstance(pool, MonitoredPool) else PoolMetrics()
        )
        self.alert_utilisation = alert_utilisation
        self.alert_wait_ms = alert_wait_ms
        self._window_peak = 0
        self._listeners: list[tuple[str, Any]] = [
            ("checkout", self._on_checkout),
            ("checkin", self._on_checkin),
            ("connect", self._on_connect),
            ("invalidate", self._on_invalidate),
        ]
        for name, fn in self._listeners:
            event.listen(engine.sync_engine, name, fn)

    def remove(self) -> None:
        """Stop listening to the pool's events."""
        for name, fn in self._listeners:
            event.remove(self.engine.sync_engine, name, fn)

    def forget_peak(self) -> None:
        """Start the peak afresh: after the start-up opened every connection at once
        (`App.open_pools`), which is no saturation to report."""
        self._window_peak = 0
        self.metrics.peak_checked_out = 0

    def _pool(self) -> Any:
        return self.engine.sync_engine.pool

    def _on_checkout(self, *_: Any) -> None:
        self.metrics.checkouts += 1
        out = self._pool().checkedout()
        self.metrics.peak_checked_out = max(self.metrics.peak_checked_out, out)
        self._window_peak = max(self._window_peak, out)

    def _on_checkin(self, *_: Any) -> None:
        self.metrics.checkins += 1

    def _on_connect(self, *_: Any) -> None:
        self.metrics.connects += 1

    def _on_invalidate(self, *_: Any) -> None:
        self.metrics.invalidations += 1

    def status(self) -> PoolStatus:
        """The pool right now."""
        pool = self._pool()
        size = pool.size()
        overflow_cap = max(getattr(pool, "_max_overflow", 0), 0)
        out = pool.checkedout()
        return PoolStatus(
            size=size,
            max_overflow=overflow_cap,
            checked_out=out,
            checked_in=pool.checkedin(),
            overflow=max(pool.overflow(), 0),
            utilisation=out / (size + overflow_cap) if size + overflow_cap else 0.0,
            metrics=self.metrics,
        )

    def check(self) -> list[str]:
        """Alerts for the window since the last check (and start a new window).

        Returns:
            One message per threshold passed; empty when the pool is healthy.
        """
        status = self.status()
        m = self.metrics
        capacity = status.size + status.max_overflow
        peak = max(self._window_peak, status.checked_out)
        alerts: list[str] = []
        limit = self.alert_utilisation
        if limit is not None and capacity and peak / capacity >= limit:
            alerts.append(
                f"pool utilisation {peak}/{capacity} ({peak / capacity:.0%}) reached the "
                f"alert threshold of {limit:.0%}: if checkouts also waited, find what "
                "holds connections, or raise DB_POOL_SIZE / DB_MAX_OVERFLOW while the "
                "database server has cores to spare"
            )
        if m.window_waits and m.window_max_wait_seconds * 1000 >= self.alert_wait_ms:
            alerts.append(
                f"{m.window_waits} checkouts waited for a connection, up to "
                f"{m.window_max_wait_seconds * 1000:.0f} ms (threshold {self.alert_wait_ms:.0f} ms)"
            )
        if m.window_timeouts:
            alerts.append(
                f"{m.window_timeouts} checkouts timed out waiting for a connection "
                "(DB_POOL_TIMEOUT): the pool is exhausted"
            )
        m.window_waits = m.window_timeouts = 0
        m.window_wait_seconds = m.window_max_wait_seconds = 0.0
        self._window_peak = status.checked_out
        return alerts

    async def run(self, interval: float) -> None:
        """Check every `interval` seconds and log each alert as a warning (until cancelled)."""
        while True:
            await asyncio.sleep(interval)
            for alert in self.check():
                log.warning("%s: %s — %s", self.name, alert, self.status().describe())
