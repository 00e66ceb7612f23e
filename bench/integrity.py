"""The end-of-run check: nothing acknowledged lost, nothing counted twice, totals agree."""

from __future__ import annotations

from typing import Any

import asyncpg

from bench.workload import Ack


async def check(
    conn_args: dict[str, Any],
    acks: list[Ack] | None,
    *,
    replay: bool = False,
    daily_points: bool = True,
) -> dict[str, Any]:
    """Compare the acknowledged answers and every member's totals with the database.

    Args:
        conn_args: asyncpg.connect keyword arguments of the variant's database.
        acks: the answers the variant acknowledged (None: only check the totals).
        replay: the raw replay's database. Statements of background tasks (a group-commit
            flusher) replay as their own sequence, so a batch may meet a quiz at another
            position than it did in quizbot: per-quiz answer counts are then reported,
            not failed. Points must still add up.
        daily_points: the variant keeps quizbot's per-day roll-up (member_daily_points),
            the members' week and month sums (member_period_points) and the guilds'
            board sizes (guilds.ranked_members, kept by triggers), so they must equal
            the answers' sums and the members, as must the guilds' histograms of points
            (guild_points_histogram, kept by triggers too); the legacy design keeps none of them
            (their differences are then reported, not failed).

    Returns:
        The counts of each kind of failure and `passed`.
    """
    conn = await asyncpg.connect(**conn_args)
    try:
        result: dict[str, Any] = {}
        if acks is not None:
            await conn.execute(
                "CREATE TEMPORARY TABLE bench_acks (session_id bigint, question_id bigint, "
                "user_id bigint, points int)"
            )
            await conn.copy_records_to_table(
                "bench_acks",
                records=[(a.session_id, a.question_id, a.user_id, a.points) for a in acks],
            )
            row = await conn.fetchrow(
                """
                SELECT
                  (SELECT count(*) FROM bench_acks) AS acknowledged,
                  (SELECT count(*) FROM (SELECT 1 FROM bench_acks
                     GROUP BY session_id, question_id, user_id HAVING count(*) > 1) d)
                    AS acknowledged_twice,
                  (SELECT count(*) FROM bench_acks k WHERE NOT EXISTS (
                     SELECT 1 FROM answers a WHERE a.session_id = k.session_id
                       AND a.question_id = k.question_id AND a.user_id = k.user_id)) AS missing,
                  (SELECT count(*) FROM bench_acks k JOIN answers a
                     ON a.session_id = k.session_id AND a.question_id = k.question_id
                    AND a.user_id = k.user_id WHERE a.points <> k.points) AS points_differ,
                  (SELECT count(*) FROM answers a
                     WHERE a.session_id IN (SELECT DISTINCT session_id FROM bench_acks)
                       AND NOT EXISTS (SELECT 1 FROM bench_acks k
                         WHERE a.session_id = k.session_id AND a.question_id = k.question_id
                           AND a.user_id = k.user_id)) AS unacknowledged_rows
                """
            )
            assert row is not None
            result.update(dict(row))
        totals = await conn.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM (SELECT 1 FROM answers
                 GROUP BY session_id, question_id, user_id HAVING count(*) > 1) d)
                AS duplicate_answers,
              (SELECT count(*) FROM guild_members gm LEFT JOIN (
                 SELECT guild_id, user_id, sum(points) AS p FROM answers GROUP BY 1, 2) a
                 ON a.guild_id = gm.guild_id AND a.user_id = gm.user_id
               WHERE gm.points <> coalesce(a.p, 0)) AS member_points_differ,
              (SELECT count(*) FROM (SELECT guild_id, user_id FROM answers
                 EXCEPT SELECT guild_id, user_id FROM guild_members) x) AS answers_without_member,
              (SELECT count(*) FROM users u LEFT JOIN (
                 SELECT user_id, sum(points) AS p FROM guild_members GROUP BY 1) m
                 ON m.user_id = u.user_id
               WHERE u.points <> coalesce(m.p, 0)) AS user_points_differ,
              (SELECT count(*) FROM quiz_sessions s LEFT JOIN (
                 SELECT session_id, count(*) AS n FROM answers GROUP BY 1) a
                 ON a.session_id = s.id
               WHERE s.answered_count <> coalesce(a.n, 0)) AS session_counts_differ,
              (SELECT count(*) FROM (
                 SELECT guild_id, CAST(timezone('UTC', answered_at) AS date) AS day, user_id,
                        topic, sum(points) AS points, count(*) AS answers,
                        count(*) FILTER (WHERE correct) AS correct
                 FROM answers GROUP BY 1, 2, 3, 4) a
                 FULL JOIN member_daily_points d USING (guild_id, day, user_id, topic)
               WHERE a.points IS DISTINCT FROM d.points
                  OR a.answers IS DISTINCT FROM d.answers
                  OR a.correct IS DISTINCT FROM d.correct) AS daily_points_differ,
              (SELECT count(*) FROM (
                 SELECT guild_id, k.period,
                        CAST(date_trunc(k.period, timezone('UTC', answered_at)) AS date)
                          AS starts,
                        user_id, sum(points) AS points
                 FROM answers CROSS JOIN (VALUES ('week'), ('month')) AS k(period)
                 GROUP BY 1, 2, 3, 4 HAVING sum(points) > 0) a
                 FULL JOIN member_period_points w USING (guild_id, period, starts, user_id)
               WHERE a.points IS DISTINCT FROM w.points) AS period_points_differ,
              (SELECT count(*) FROM guilds g
               WHERE g.ranked_members <> (SELECT count(*) FROM guild_members m
                                          WHERE m.guild_id = g.guild_id AND m.points > 0)
              ) AS board_sizes_differ,
              (SELECT count(*) FROM (
                 SELECT guild_id, points, count(*) AS members FROM guild_members
                 WHERE points > 0 GROUP BY guild_id, points) m
                 FULL JOIN guild_points_histogram h USING (guild_id, points)
               WHERE m.members IS DISTINCT FROM h.members) AS histograms_differ,
              (SELECT count(*) FROM answers) AS answers_in_database
            """
        )
        assert totals is not None
        result.update(dict(totals))
        failures = [
            "acknowledged_twice",
            "missing",
            "points_differ",
            "duplicate_answers",
            "member_points_differ",
            "answers_without_member",
            "user_points_differ",
        ]
        if not replay:
            failures.append("session_counts_differ")
        if daily_points:
            # guilds.ranked_members and guild_points_histogram are kept by quizbot's
            # triggers, which legacy lacks too.
            failures += [
                "daily_points_differ",
                "period_points_differ",
                "board_sizes_differ",
                "histograms_differ",
            ]
        result = {k: int(v) for k, v in result.items()}
        result["failures"] = {k: result[k] for k in failures if result.get(k)}
        result["passed"] = not result["failures"]
        result["checked_acks"] = acks is not None
        return result
    finally:
        await conn.close()
