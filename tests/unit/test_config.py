"""Settings: URL normalisation and messages that name the bad variable."""

from __future__ import annotations

import pytest

from quizbot.cli import main
from quizbot.config import ConfigError, get_settings, load_settings, normalise_database_url
from quizbot.db import connect_args


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@h:5432/db",
        "postgresql://u:p@h:5432/db",
        "postgresql+asyncpg://u:p@h:5432/db",
    ],
)
def test_every_postgres_scheme_becomes_asyncpg(url: str) -> None:
    assert normalise_database_url(url) == "postgresql+asyncpg://u:p@h:5432/db"


def test_a_sqlite_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///quiz.db")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings()


def test_invalid_pool_size_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "lots")
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "DB_POOL_SIZE" in str(err.value) and "LOG_LEVEL" in str(err.value)


def test_empty_database_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "  ")
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token")
    settings = load_settings()
    assert settings.database_url is None
    assert "secret-token" not in repr(settings)


def test_pgbouncer_mode_turns_statement_caches_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PGBOUNCER", "true")
    args = connect_args(load_settings())
    assert args["statement_cache_size"] == 0 and args["prepared_statement_cache_size"] == 0
    names = {args["prepared_statement_name_func"]() for _ in range(3)}
    assert len(names) == 3


def test_empty_discord_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "")
    monkeypatch.setenv("DISCORD_DEV_GUILD_ID", " ")
    settings = load_settings()
    assert settings.discord_token is None
    assert settings.discord_dev_guild_id is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:1/quizbot",  # nothing listens on port 1
        "postgresql://postgres@127.0.0.1:5432/quizbot_no_such_database",
        "postgresql://postgres@no-such-host.invalid/quizbot",
    ],
)
def test_connection_failures_become_one_line(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong DATABASE_URL is a message naming the problem, not a traceback."""
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "cannot use the database" in err and "DATABASE_URL" in err
    assert "Traceback" not in err
