"""The points roll-ups as the tests check them (per day and topic, per week and month):
their rows, and the same sums computed from the answers in Python (an independent
reference)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quizbot import models

DayKey = tuple[int, dt.date, int, str]
Days = dict[DayKey, tuple[int, int, int]]


async def daily_points(session: AsyncSession, guilds: Sequence[int]) -> Days:
    """The roll-up's (points, answers, correct answers) by (guild, day, member, topic)."""
    d = models.MemberDailyPoints
    # Columns, not entities: the identity map would keep the values of an earlier read.
    rows = await session.execute(
        select(d.guild_id, d.day, d.user_id, d.topic, d.points, d.answers, d.correct).where(
            d.guild_id.in_(guilds)
        )
    )
    return {(g, day, u, t): (points, n, right) for g, day, u, t, points, n, right in rows}


async def answer_sums(session: AsyncSession, guilds: Sequence[int]) -> Days:
    """The same sums from the answers themselves, the UTC day computed in Python."""
    rows = await session.execute(
        select(
            models.Answer.guild_id,
            models.Answer.answered_at,
            models.Answer.user_id,
            models.Answer.topic,
            models.Answer.points,
            models.Answer.correct,
        ).where(models.Answer.guild_id.in_(guilds))
    )
    sums: Days = {}
    for guild, at, user, topic, points, correct in rows:
        key = (guild, at.astimezone(dt.UTC).date(), user, topic)
        total, count, right = sums.get(key, (0, 0, 0))
        sums[key] = (total + points, count + 1, right + correct)
    return sums


PeriodKey = tuple[int, str, dt.date, int]  # (guild, "week" or "month", first day, member)
Periods = dict[PeriodKey, int]


async def period_points(session: AsyncSession, guilds: Sequence[int]) -> Periods:
    """The members' kept points by (guild, period, first day, member)."""
    w = models.MemberPeriodPoints
    rows = await session.execute(
        select(w.guild_id, w.period, w.starts, w.user_id, w.points).where(w.guild_id.in_(guilds))
    )
    return {(g, period, starts, u): points for g, period, starts, u, points in rows}


async def answer_period_sums(session: AsyncSession, guilds: Sequence[int]) -> Periods:
    """The same from the answers, the ISO week and the month of their UTC day computed in
    Python; windows without points have no row."""
    sums: Periods = {}
    days = await answer_sums(session, guilds)
    for (guild, day, user, _topic), (points, _n, _right) in days.items():
        week = day - dt.timedelta(days=day.weekday())
        for key in ((guild, "week", week, user), (guild, "month", day.replace(day=1), user)):
            sums[key] = sums.get(key, 0) + points
    return {key: points for key, points in sums.items() if points > 0}


async def roll_ups(session: AsyncSession, guilds: Sequence[int]) -> tuple[Days, Periods]:
    """Both roll-ups as stored: per day and topic, and per week and month."""
    return await daily_points(session, guilds), await period_points(session, guilds)


async def answer_roll_ups(session: AsyncSession, guilds: Sequence[int]) -> tuple[Days, Periods]:
    """Both roll-ups as the answers give them."""
    return await answer_sums(session, guilds), await answer_period_sums(session, guilds)
