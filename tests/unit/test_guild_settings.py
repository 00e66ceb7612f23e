"""Stored guild settings as the answer path reads them (the column as text)."""

from __future__ import annotations

import json

from quizbot.services.guild_settings import GuildSettings, stored_settings_text


def test_the_text_of_stored_settings_means_what_the_settings_do() -> None:
    raw = {"timer": 45, "channels": [7], "timezone": "Europe/Paris"}
    settings = stored_settings_text(json.dumps(raw))
    assert settings == GuildSettings.from_json(raw)
    assert stored_settings_text(None) == GuildSettings()
    # Settings an older version wrote that no longer validate: defaults keep it playable.
    assert stored_settings_text(json.dumps({"timer": 5})) == GuildSettings()


def test_one_parsed_value_serves_every_read_of_the_same_text() -> None:
    text = json.dumps({"timer": 60})
    assert stored_settings_text(text) is stored_settings_text(text)
    changed = stored_settings_text(json.dumps({"timer": 90}))  # /quizconfig changed it
    assert changed.timer == 90
