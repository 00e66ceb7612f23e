"""Levels from XP: one formula, in Python for display and in SQL for atomic updates."""

from __future__ import annotations

import math

from sqlalchemy import ColumnElement, Integer, cast, func

# Level n starts at XP_PER_LEVEL_UNIT * (n - 1)²: 50 XP for level 2, 200 for 3, 4,050 for 10.
XP_PER_LEVEL_UNIT = 50


# `level_for_xp` spelled in SQL for statements written as text; format with xp=<expression>.
LEVEL_SQL = f"(floor(sqrt(greatest({{xp}}, 0) / {XP_PER_LEVEL_UNIT}))::int + 1)"


def level_for_xp(xp: int) -> int:
    """The level reached with `xp` experience points (1 at 0 XP)."""
    return math.isqrt(max(xp, 0) // XP_PER_LEVEL_UNIT) + 1


def xp_for_level(level: int) -> int:
    """Experience points needed to reach `level`."""
    return XP_PER_LEVEL_UNIT * (max(level, 1) - 1) ** 2


def level_sql(xp: ColumnElement[int]) -> ColumnElement[int]:
    """`level_for_xp` as SQL, for `SET level = ...` in the same statement that adds XP."""
    return cast(func.floor(func.sqrt(func.greatest(xp, 0) / XP_PER_LEVEL_UNIT)), Integer) + 1
