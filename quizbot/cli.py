"""The `quizbot` command: `quizbot --help` lists the subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import warnings
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from rich.console import Console
from rich.logging import RichHandler
from sqlalchemy.exc import DBAPIError

from quizbot.config import ConfigError, Settings, get_settings
from quizbot.db import database_url
from quizbot.embedded_pg import EmbeddedPostgresError
from quizbot.errors import QuizbotError

console = Console(stderr=True)
log = logging.getLogger("quizbot")

Handler = Callable[[argparse.Namespace, Settings], int]
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop where available (Linux, macOS), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def _with_app(
    settings: Settings, url: str, work: Callable[[Any], Coroutine[Any, Any, T]]
) -> T:
    from quizbot.app import App

    app = App.create(settings, url)
    try:
        await app.bootstrap()
        return await work(app)
    finally:
        await app.close()


# asyncpg's errors that mean "could not connect as configured", not a bug of ours.
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


def connection_problem(exc: BaseException) -> str | None:
    """One line on why the database could not be reached, or None if `exc` is another error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _CONNECT_ERRORS):
            hint = "check DATABASE_URL (or unset it to use the embedded PostgreSQL)"
            return f"{seen} — {hint}"
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=True)],
    )
    # pgserver and alembic are chatty at INFO; their warnings still show.
    for noisy in ("pgserver", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Upgrade the database to the latest revision."""
    from quizbot.migrations import upgrade

    url = database_url(settings)
    upgrade(url, args.revision)
    console.print(f"[green]database migrated to {args.revision}[/green]")
    return 0


def _filters(args: argparse.Namespace) -> Any:
    from quizbot.services.quiz import QuizFilters

    return QuizFilters(
        topic=args.topic, category=args.category, difficulty=args.difficulty, count=args.questions
    )


def cmd_play(args: argparse.Namespace, settings: Settings) -> int:
    """Play a quiz in the terminal."""
    from quizbot.app import prepare_database
    from quizbot.terminal import play

    filters = _filters(args)
    url = prepare_database(settings)

    async def work(app: Any) -> int:
        await play(app.quiz, app.stats, filters)
        return 0

    return run_async(_with_app(settings, url, work))


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    """Play the questions due for review (spaced repetition) in the terminal."""
    from quizbot.app import prepare_database
    from quizbot.services.quiz import QuizFilters
    from quizbot.terminal import play

    url = prepare_database(settings)

    async def work(app: Any) -> int:
        await play(app.quiz, app.stats, QuizFilters(count=args.questions), review=app.review)
        return 0

    return run_async(_with_app(settings, url, work))


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    """What `make run` does: the bot when DISCORD_TOKEN is set, else a terminal quiz."""
    if settings.discord_token is None:
        console.print(
            "[dim]DISCORD_TOKEN is not set: starting a quiz in the terminal "
            "(set it to run the Discord bot).[/dim]"
        )
        return cmd_play(args, settings)
    return cmd_run(args, settings)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the Discord bot."""
    if settings.discord_token is None:
        console.print("[red]DISCORD_TOKEN is not set[/red]: see the README's Discord section.")
        return 2
    from quizbot.app import prepare_database
    from quizbot.bot.runner import run_bot

    url = prepare_database(settings)
    return run_async(run_bot(settings, url))


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Publish slash commands globally (or to one guild with --guild)."""
    if settings.discord_token is None:
        console.print("[red]DISCORD_TOKEN is not set[/red]: see the README's Discord section.")
        return 2
    from quizbot.app import prepare_database
    from quizbot.bot.runner import sync_commands

    url = prepare_database(settings)
    return run_async(sync_commands(settings, url, args.guild))


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    """Load the bundled question bank (idempotent)."""
    from rich.progress import Progress

    from quizbot.app import prepare_database

    url = prepare_database(settings)

    async def work(app: Any) -> int:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("seeding", total=None)
            report = await app.bank.seed_bundled(
                progress=lambda done, total: progress.update(task, completed=done, total=total)
            )
        console.print(
            f"[green]{report.inserted} questions added[/green], "
            f"{report.skipped_duplicates} already present"
        )
        return 0

    return run_async(_with_app(settings, url, work))


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import questions from a file (all or nothing)."""
    from rich.progress import Progress

    from quizbot.app import prepare_database
    from quizbot.services.question_formats import MAX_IMPORT_BYTES

    path = Path(args.file)
    if not path.is_file():
        console.print(f"[red]error:[/red] no such file: {path}")
        return 1
    if path.stat().st_size > MAX_IMPORT_BYTES:
        console.print(
            f"[red]error:[/red] {path} is larger than {MAX_IMPORT_BYTES // 1024 // 1024} MiB"
        )
        return 1
    data = path.read_bytes()
    url = prepare_database(settings)

    async def work(app: Any) -> int:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"importing {path.name}", total=None)
            report = await app.bank.import_file(
                data,
                filename=path.name,
                guild_id=args.guild,
                fmt=args.format,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        console.print(
            f"[green]imported {report.inserted} questions[/green] from {path.name} "
            f"({report.fmt}); {report.skipped_duplicates} duplicates skipped"
        )
        return 0

    return run_async(_with_app(settings, url, work))


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Export a question bank."""
    from quizbot.app import prepare_database

    url = prepare_database(settings)

    async def work(app: Any) -> bytes:
        data: bytes = await app.bank.export(guild_id=args.guild, fmt=args.format)
        return data

    data = run_async(_with_app(settings, url, work))
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(args.output).write_bytes(data)
        console.print(f"[green]wrote {args.output}[/green]")
    return 0


def cmd_db_report(args: argparse.Namespace, settings: Settings) -> int:
    """Pool settings, server connections and the top statements (pg_stat_statements)."""
    from quizbot.db import create_engine
    from quizbot.db_report import collect, render

    url = database_url(settings)

    async def work() -> None:
        engine = create_engine(settings, url)
        try:
            async with engine.connect() as conn:
                render(await collect(conn, settings, top=args.top), console)
        finally:
            await engine.dispose()

    run_async(work())
    return 0


def _import_bench() -> bool:
    """Make the `bench` package (next to `quizbot/` in a source checkout) importable."""
    import importlib.util

    from quizbot.migrations import PROJECT_ROOT

    if importlib.util.find_spec("bench") is None and (PROJECT_ROOT / "bench").is_dir():
        sys.path.insert(0, str(PROJECT_ROOT))
    return importlib.util.find_spec("bench") is not None


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run the load benchmark on throwaway databases (see docs/performance.md)."""
    if not _import_bench():
        console.print(
            "[red]error:[/red] the benchmark lives in the source checkout's bench/ directory; "
            "run it from a clone with `pip install -e '.[bench]'`."
        )
        return 2
    try:
        from bench import runner
        from bench.config import SCALES, VARIANTS, BenchConfig
    except ImportError as exc:
        console.print(
            f"[red]error:[/red] {exc}: install the bench extra: pip install -e '.[bench]'"
        )
        return 2
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        console.print(f"[red]error:[/red] unknown variant(s) {', '.join(unknown)}")
        return 2
    players = tuple(int(p) for p in args.players.split(",")) if args.players else None
    config = BenchConfig(
        scale=SCALES[args.scale],
        variants=variants,
        out_dir=Path(args.out),
        server_url=args.server,
        redis_url=args.redis or settings.redis_url or "redis://127.0.0.1:6379/0",
        keep_databases=args.keep,
        progress=not args.no_progress,
        seed=args.seed,
        pgbench_seconds=args.pgbench_seconds,
        explain=not args.no_explain,
        give_up_p95_s=args.give_up_p95,
    ).with_overrides(players=players, duration=args.duration, think_ms=args.think_ms)
    command = "quizbot bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 1 else "quizbot bench"
    return runner.run(
        config,
        only_queries=args.only_queries,
        ablation=args.ablation,
        console=console,
        command=command.strip(),
        profile=args.profile,
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The argument parser and the handler of each subcommand."""
    parser = argparse.ArgumentParser(
        prog="quizbot",
        description="quizbot: an educational quiz bot for Discord, and its tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers: dict[str, Handler] = {}

    migrate = sub.add_parser("migrate", help="upgrade the database schema (alembic upgrade)")
    migrate.add_argument("revision", nargs="?", default="head", help="target (default: head)")
    handlers["migrate"] = cmd_migrate

    def quiz_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--topic", help="e.g. Physics (default: any)")
        p.add_argument("--category", help="e.g. Mechanics (default: any)")
        p.add_argument("--difficulty", default="mixed", choices=["easy", "medium", "hard", "mixed"])
        p.add_argument("--questions", type=int, default=10, help="1 to 50 (default 10)")

    play_p = sub.add_parser("play", help="play a quiz in the terminal (answers may be piped)")
    quiz_options(play_p)
    handlers["play"] = cmd_play

    review_p = sub.add_parser(
        "review", help="play the questions due for review (spaced repetition) in the terminal"
    )
    review_p.add_argument("--questions", type=int, default=10, help="at most, 1 to 50 (default 10)")
    handlers["review"] = cmd_review

    start_p = sub.add_parser(
        "start", help="migrate, seed on first use, then the bot (DISCORD_TOKEN) or `play`"
    )
    quiz_options(start_p)
    handlers["start"] = cmd_start

    sub.add_parser("run", help="run the Discord bot (needs DISCORD_TOKEN)")
    handlers["run"] = cmd_run

    sync_p = sub.add_parser("sync", help="publish the slash commands (globally, or --guild ID)")
    sync_p.add_argument("--guild", type=int, help="one guild only (instant)")
    handlers["sync"] = cmd_sync

    sub.add_parser("seed", help="load the bundled question bank (idempotent)")
    handlers["seed"] = cmd_seed

    import_p = sub.add_parser("import", help="import questions: our JSON/YAML/CSV, OpenTDB, Red")
    import_p.add_argument("file")
    import_p.add_argument("--guild", type=int, help="a server's own bank (default: shared)")
    import_p.add_argument(
        "--format",
        choices=["quizbot-json", "quizbot-yaml", "quizbot-csv", "opentdb", "red-trivia"],
        help="default: detected from the file",
    )
    handlers["import"] = cmd_import

    export_p = sub.add_parser("export", help="export a question bank")
    export_p.add_argument("--guild", type=int, help="a server's own bank (default: shared)")
    export_p.add_argument(
        "--format", default="quizbot-json", choices=["quizbot-json", "quizbot-yaml", "quizbot-csv"]
    )
    export_p.add_argument("-o", "--output", default="-", help="file (default: stdout)")
    handlers["export"] = cmd_export

    report_p = sub.add_parser(
        "db-report", help="pool settings, connections and top statements (pg_stat_statements)"
    )
    report_p.add_argument("--top", type=int, default=10, help="statements per table (default 10)")
    handlers["db-report"] = cmd_db_report

    bench_p = sub.add_parser(
        "bench", help="load benchmark: quizbot vs legacy vs raw asyncpg vs pgbench, with reports"
    )
    bench_p.add_argument(
        "--scale", default="smoke", choices=["smoke", "standard", "large"], help="default smoke"
    )
    bench_p.add_argument(
        "--variants",
        default="quizbot,raw,legacy,pgbench",
        help="comma-separated subset of quizbot,raw,legacy,pgbench (default: all)",
    )
    bench_p.add_argument(
        "--players",
        help="concurrency stages, e.g. 10,100,1000 (default: scale's, then its capacity "
        "stages; given, exactly these)",
    )
    bench_p.add_argument("--duration", type=float, help="seconds per stage (default: scale's)")
    bench_p.add_argument("--think-ms", type=float, help="mean think time (default: scale's)")
    bench_p.add_argument("--out", default="bench/results", help="report directory")
    bench_p.add_argument(
        "--server", help="PostgreSQL URL to create databases on (default: DATABASE_URL or local)"
    )
    bench_p.add_argument(
        "--redis",
        help="Redis for measuring the rank mirror (default: REDIS_URL, else 127.0.0.1:6379); "
        "skipped with a note when none answers",
    )
    ablation = bench_p.add_mutually_exclusive_group()
    ablation.add_argument(
        "--ablation",
        dest="ablation",
        action="store_true",
        default=None,
        help="also run quizbot with one measure off at a time (default except at smoke scale)",
    )
    ablation.add_argument("--no-ablation", dest="ablation", action="store_false")
    bench_p.add_argument(
        "--only-queries",
        action="store_true",
        help="only seed and compare the hot queries indexed vs unindexed (EXPLAIN ANALYZE)",
    )
    bench_p.add_argument("--no-explain", action="store_true", help="skip the hot-query comparison")
    bench_p.add_argument(
        "--profile", action="store_true", help="also profile quizbot (cProfile) at the top load"
    )
    bench_p.add_argument(
        "--give-up-p95",
        type=float,
        default=5.0,
        help="stop ramping a variant once a stage's p95 exceeds this many seconds (default 5)",
    )
    bench_p.add_argument("--pgbench-seconds", type=int, default=5, help="per pgbench run")
    bench_p.add_argument("--seed", type=int, default=42, help="random seed of the players")
    bench_p.add_argument("--keep", action="store_true", help="keep the databases it creates")
    bench_p.add_argument("--no-progress", action="store_true", help="no progress bars")
    handlers["bench"] = cmd_bench
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `quizbot` console script."""
    # pgserver asks platformdirs for a runtime directory, which warns on machines
    # without XDG_RUNTIME_DIR (containers, CI) and then works anyway.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = get_settings()
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    _setup_logging(settings.log_level)
    try:
        return handlers[args.command](args, settings)
    except (QuizbotError, EmbeddedPostgresError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    except (DBAPIError, OSError) as exc:
        problem = connection_problem(exc)
        if problem is None:
            raise
        log.debug("database connection failed", exc_info=exc)
        console.print(f"[red]error:[/red] cannot use the database: {problem}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
