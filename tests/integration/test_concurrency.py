"""Atomic writes under real concurrency: several connections, committed transactions."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from quizbot import models
from quizbot.repositories import AchievementRepository, MemberDelta, MemberRepository

WORKERS = 8
ROUNDS = 25
GUILD = 7_000_000_000_000_001
PLAYERS = [7_000_000_000_000_100 + i for i in range(4)]


@pytest.fixture
async def players(committed: Callable[[], AsyncSession]) -> AsyncIterator[list[int]]:
    """A committed guild with members; deleted afterwards."""
    async with committed() as s, s.begin():
        repo = MemberRepository(session=s)
        for user_id in PLAYERS:
            await repo.ensure(
                guild_id=GUILD, user_id=user_id, display_name=f"p{user_id}", guild_name="race"
            )
        s.add(models.Achievement(code="race_once", name="Once", description="Once only"))
    yield PLAYERS
    async with committed() as s, s.begin():
        await s.execute(delete(models.User).where(models.User.user_id.in_(PLAYERS)))
        await s.execute(delete(models.Guild).where(models.Guild.guild_id == GUILD))
        await s.execute(delete(models.Achievement).where(models.Achievement.code == "race_once"))


async def _totals(committed: Callable[[], AsyncSession]) -> dict[int, tuple[int, int]]:
    async with committed() as s:
        rows = await s.execute(
            select(models.GuildMember.user_id, models.GuildMember.points, models.User.points)
            .join(models.User, models.User.user_id == models.GuildMember.user_id)
            .where(models.GuildMember.guild_id == GUILD)
        )
        return {u: (gp, up) for u, gp, up in rows}


async def test_concurrent_increments_lose_no_point(
    players: list[int], committed: Callable[[], AsyncSession]
) -> None:
    target = players[0]

    async def worker() -> None:
        for _ in range(ROUNDS):
            async with committed() as s, s.begin():
                await MemberRepository(session=s).add_points(
                    guild_id=GUILD, user_id=target, points=3, xp=1
                )
                await asyncio.sleep(0)  # let the other transactions interleave

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    assert (await _totals(committed))[target][0] == WORKERS * ROUNDS * 3


async def test_concurrent_batch_awards_with_repeats_lose_nothing(
    players: list[int], committed: Callable[[], AsyncSession]
) -> None:
    rng = random.Random(7)
    batches = [
        [MemberDelta(rng.choice(players), points=rng.randint(1, 9)) for _ in range(20)]
        for _ in range(WORKERS * 4)
    ]
    expected: dict[int, int] = dict.fromkeys(players, 0)
    for batch in batches:
        for d in batch:
            expected[d.user_id] += d.points

    async def apply(batch: list[MemberDelta]) -> None:
        async with committed() as s, s.begin():
            await MemberRepository(session=s).award_batch(guild_id=GUILD, deltas=batch)

    await asyncio.gather(*(apply(b) for b in batches))
    totals = await _totals(committed)
    assert {u: gp for u, (gp, _) in totals.items()} == expected
    assert {u: up for u, (_, up) in totals.items()} == expected


async def test_concurrent_awards_of_one_achievement_happen_once(
    players: list[int], committed: Callable[[], AsyncSession]
) -> None:
    async def award() -> list[str]:
        async with committed() as s, s.begin():
            return await AchievementRepository(session=s).award(
                user_id=players[1], guild_id=GUILD, codes=["race_once"]
            )

    results = await asyncio.gather(*(award() for _ in range(WORKERS)))
    assert sum(len(r) for r in results) == 1
    async with committed() as s:
        held = await s.scalars(
            select(models.UserAchievement).where(models.UserAchievement.user_id == players[1])
        )
        assert len(held.all()) == 1
