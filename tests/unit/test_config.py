"""Settings: URL normalisation and messages that name the bad variable."""

from __future__ import annotations

import pytest

from quizbot.config import ConfigError, load_settings, normalise_database_url
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
