"""The per-day points roll-up as the tests check it: its rows, and the same sums
computed from the answers in Python (an independent reference)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quizbot import models

DayKey = tuple[int, dt.date, int, str]
Days = dict[DayKey, tuple[int, int]]


async def daily_points(session: AsyncSession, guilds: Sequence[int]) -> Days:
    """The roll-up's (points, answers) by (guild, day, member, topic)."""
    d = models.MemberDailyPoints
    # Columns, not entities: the identity map would keep the values of an earlier read.
    rows = await session.execute(
        select(d.guild_id, d.day, d.user_id, d.topic, d.points, d.answers).where(
            d.guild_id.in_(guilds)
        )
    )
    return {(g, day, u, t): (points, n) for g, day, u, t, points, n in rows}


async def answer_sums(session: AsyncSession, guilds: Sequence[int]) -> Days:
    """The same sums from the answers themselves, the UTC day computed in Python."""
    rows = await session.execute(
        select(
            models.Answer.guild_id,
            models.Answer.answered_at,
            models.Answer.user_id,
            models.Answer.topic,
            models.Answer.points,
        ).where(models.Answer.guild_id.in_(guilds))
    )
    sums: Days = {}
    for guild, at, user, topic, points in rows:
        key = (guild, at.astimezone(dt.UTC).date(), user, topic)
        total, count = sums.get(key, (0, 0))
        sums[key] = (total + points, count + 1)
    return sums
