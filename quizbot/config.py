"""Settings for quizbot, read once from the environment (and an optional `.env` file).

Every variable is documented in the README. An invalid value stops the program at
start with a message that names the variable (see `load_settings`).
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable."""


def normalise_database_url(url: str) -> str:
    """Return `url` with the asyncpg driver: `postgres://` and `postgresql://` are accepted.

    Raises:
        ValueError: the URL is not a PostgreSQL URL.
    """
    url = url.strip()
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(
        "must be a PostgreSQL URL starting with postgresql+asyncpg://, postgresql:// or postgres://"
    )


class Settings(BaseSettings):
    """quizbot's configuration; field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Unset means: start the embedded PostgreSQL (see quizbot.embedded_pg).
    database_url: str | None = None
    redis_url: str | None = None
    discord_token: SecretStr | None = None
    # Guild where slash commands are synced on start (fast); global sync is `quizbot sync`.
    discord_dev_guild_id: int | None = None

    # Connections kept open. Overflow connections are opened for a burst and closed
    # again when returned, so under sustained load beyond DB_POOL_SIZE every command
    # pays a new connection (TLS probe, type introspection, statements prepared anew):
    # size the pool for the load and keep the overflow for spikes.
    # 10, the trade measured on the 2-core benchmark machine at 1,000 players (26 quick
    # runs alternated on 2026-12-08, docs/performance-history.md; medians): with 40
    # the bot's loop lagged 19.6 ms at p99 and answer p99 was 122.6 ms; with 10, 7.7
    # and 52.9 ms. Below 12, /stats and quizzes' ends queue for the pool behind other
    # quizzes' ends (/stats p95 47 ms with 10, 27 with 12, 44 with 40, 200-287 with
    # 4-6); in the full run of 2026-12-08, with 10, commands waited up to 51 ms. Why
    # fewer connections shorten the loop's lag is not measured apart: fewer of the
    # server's processes running beside the bot's on the same cores, or fewer units of
    # work interleaving on the bot's loop. A database server of its own, with cores to
    # spare, may take more.
    # Several bot processes share PostgreSQL's max_connections (100 by default): keep
    # processes × (DB_POOL_SIZE + DB_MAX_OVERFLOW + ANSWER_FLUSHES + 3: the answer writer's
    # connections for question messages and its spare, app.WRITER_SPARE) below it, or put
    # PgBouncer in between.
    db_pool_size: int = Field(default=10, ge=1, le=500)
    # The pool hands out the connection returned last: the few a load needs stay warm
    # (their server processes' and the driver's caches). First in, first out sends
    # every read to the connection idle for longest: on the benchmark's data a /stats
    # took 0.47 ms back to back that way against 0.25 ms (the 2-core VM of 2026-12-07).
    db_pool_lifo: bool = True
    db_max_overflow: int = Field(default=0, ge=0, le=500)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    # A pooled connection idle for longer than this (seconds) is pinged before use and
    # replaced if dead. One used more recently has just proved alive, and skipping the
    # ping saves a round trip per unit of work; 0 pings at every checkout.
    db_ping_after_idle_s: float = Field(default=5.0, ge=0)
    db_echo: bool = False
    # asyncpg prepares every statement and keeps this many per connection.
    # Behind PgBouncer in transaction mode set DB_PGBOUNCER=true: it turns the
    # statement caches off, because a prepared statement lives on one server
    # connection and PgBouncer may hand the next transaction another.
    db_statement_cache_size: int = Field(default=500, ge=0, le=100_000)
    db_pgbouncer: bool = False
    # A statement running longer than this (seconds) is cancelled and fails, so an
    # interaction never waits on a stuck query; 0 means no limit.
    db_command_timeout: float = Field(default=60.0, ge=0)
    db_application_name: str = "quizbot"
    # Pool monitoring: a warning is logged every interval while the pool is busier
    # than this share of size + overflow, or a checkout waited longer than the
    # threshold, or one timed out. Interval 0 turns the periodic check off.
    db_pool_monitor_interval: float = Field(default=30.0, ge=0)
    db_pool_alert_utilisation: float = Field(default=0.9, gt=0, le=1)
    db_pool_alert_wait_ms: float = Field(default=100.0, ge=0)
    # Circuit breaker: after this many consecutive connection failures or pool
    # timeouts, database calls fail fast for the cool-down, then one probe goes through.
    db_breaker_failures: int = Field(default=5, ge=1, le=1000)
    db_breaker_cooldown: float = Field(default=5.0, gt=0)

    # Feature flags (the benchmark's ablation switches them by these field names).
    # Answers arriving within `answer_group_commit_ms` of each other are written
    # together in one transaction (at most `answer_batch_max` of them).
    answer_group_commit: bool = True
    answer_group_commit_ms: float = Field(default=3.0, ge=0, le=1000)
    answer_batch_max: int = Field(default=1024, ge=1, le=10_000)
    # Batches written at once, each on a connection of its own (a member's answers are
    # never in two at once, so they are written in arrival order).
    answer_flushes: int = Field(default=2, ge=1, le=16)
    # The answer writer's connections (answer batches and question messages) plan each
    # of their statements once per connection (PostgreSQL's plan_cache_mode =
    # force_generic_plan) instead of at every batch: left to choose, the server kept
    # re-planning them (`quizbot.db.connect_args`).
    answer_generic_plans: bool = True
    # A quiz's end (`QuizService.finish`) runs its statements with their generic plans
    # too (`SET LOCAL plan_cache_mode`, sent with its BEGIN): two of them take their
    # rows as arrays, and the server kept planning them at every run.
    finish_generic_plans: bool = True
    # Off: the memoized reads (question pools, settings, stats, leaderboards) go to
    # the database every time; writes still bump the invalidation generations.
    cache_enabled: bool = True
    # Off: /stats reads each part with its own query (for comparison and rollout).
    stats_single_statement: bool = True
    # With REDIS_URL: a guild's all-time points are mirrored in a Redis sorted set once a
    # member ranks this deep and its points hold RANK_MIRROR_MIN_TOTALS distinct totals,
    # so own ranks there take O(log n) instead of summing that many rows of its kept
    # histogram (quizbot.rank_mirror); a mirror is rebuilt after RANK_MIRROR_TTL_S seconds.
    rank_mirror_min_members: int = Field(default=50_000, ge=1)
    rank_mirror_min_totals: int = Field(default=5_000, ge=1)
    rank_mirror_ttl_s: int = Field(default=3600, ge=60)
    # Global boards of a window (today, this week, this month) or a topic are summed from
    # every guild's days and change with any answer anywhere: they are read again at
    # most once per this many seconds (0: after every score change, exact but costly).
    global_board_refresh_s: int = Field(default=60, ge=0, le=3600)
    # Where the embedded PostgreSQL keeps its data; default: the user data directory.
    embedded_pg_dir: str | None = None

    log_level: LogLevel = "INFO"

    # `DISCORD_TOKEN=` in a .env file or a shell means "not set", not an empty token.
    @field_validator(
        "database_url",
        "redis_url",
        "embedded_pg_dir",
        "discord_token",
        "discord_dev_guild_id",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        return None if value is None else normalise_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss:// (TLS)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def load_settings() -> Settings:
    """Read the settings, turning pydantic's errors into one message per bad variable.

    Raises:
        ConfigError: a variable has an invalid value.
    """
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            lines.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
