"""The `quizbot` command: `quizbot --help` lists the subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.logging import RichHandler

from quizbot.config import ConfigError, Settings, get_settings
from quizbot.db import database_url
from quizbot.embedded_pg import EmbeddedPostgresError
from quizbot.errors import QuizbotError

console = Console(stderr=True)
log = logging.getLogger("quizbot")

Handler = Callable[[argparse.Namespace, Settings], int]


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
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `quizbot` console script."""
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
