"""The start cooldown charges only the starts that happened."""

from __future__ import annotations

import pytest
from discord import app_commands

from quizbot.bot.cooldowns import StartCooldown


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_started_quizzes_count() -> None:
    clock = Clock()
    cooldown = StartCooldown(10, clock)
    cooldown.check(1)  # never started: free
    cooldown.check(1)  # checking is not starting
    cooldown.started(1)
    clock.now += 4
    with pytest.raises(app_commands.CommandOnCooldown) as refused:
        cooldown.check(1)
    assert refused.value.retry_after == pytest.approx(6)
    cooldown.check(2)  # per member
    clock.now += 6
    cooldown.check(1)


def test_old_entries_are_forgotten() -> None:
    clock = Clock()
    cooldown = StartCooldown(10, clock)
    for user in range(1000):
        cooldown.started(user)
    clock.now += 11
    cooldown.started(5000)
    assert len(cooldown._last) == 1


def test_a_start_in_flight_holds_the_members_slot() -> None:
    # Two starts by one member at the same instant (two channels): the second is refused
    # while the first runs, not let through because the first has not been charged yet.
    clock = Clock()
    cooldown = StartCooldown(10, clock)
    with cooldown.starting(1):
        with pytest.raises(app_commands.CommandOnCooldown):
            cooldown.check(1)
        with pytest.raises(app_commands.CommandOnCooldown), cooldown.starting(1):
            pass
        cooldown.check(2)  # per member
    # It succeeded: charged.
    with pytest.raises(app_commands.CommandOnCooldown):
        cooldown.check(1)


def test_a_failed_start_releases_the_slot_uncharged() -> None:
    clock = Clock()
    cooldown = StartCooldown(10, clock)
    with pytest.raises(ValueError), cooldown.starting(1):
        raise ValueError("no questions match")
    cooldown.check(1)  # free again at once
    with cooldown.starting(1):
        pass
