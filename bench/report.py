"""Turning a run's results into the claims table, Markdown, JSON, a plot and terminal tables.

Every figure here is computed from the run's results; nothing is typed in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.config import P95_LIMIT_MS, served

HEADLINE_COMMANDS = ("answer", "stats", "leaderboard")


# -- helpers ------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    """A figure for a table: "–" for none, thousands grouped from 1,000 on."""
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _change(reduction: float | None) -> str:
    if reduction is None:
        return "–"
    if reduction >= 0:
        return f"{reduction:.1f} % lower"
    return f"{-reduction:.1f} % higher"


def _faster(pct: float) -> str:
    return f"{pct:.1f} % faster" if pct >= 0 else f"{-pct:.1f} % slower"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of already formatted cells."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def variant(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    for v in results["variants"]:
        if v["name"] == name:
            return v  # type: ignore[no-any-return]
    return None


def stage_at(v: dict[str, Any], players: int) -> dict[str, Any] | None:
    for s in v["stages"]:
        if s["players"] == players:
            return s  # type: ignore[no-any-return]
    return None


def common_top_stage(a: dict[str, Any], b: dict[str, Any]) -> int | None:
    """The largest load both variants ran."""
    both = {s["players"] for s in a["stages"]} & {s["players"] for s in b["stages"]}
    return max(both) if both else None


def _loads_with(v: dict[str, Any], command: str) -> set[int]:
    """The loads at which variant `v` completed `command` at least once."""
    return {s["players"] for s in v["stages"] if _cmd(s, command, "p95_ms") is not None}


def common_command_stage(a: dict[str, Any], b: dict[str, Any], command: str) -> int | None:
    """The largest load at which both variants completed `command` at least once."""
    both = _loads_with(a, command) & _loads_with(b, command)
    return max(both) if both else None


def unsaturated_common_stage(a: dict[str, Any], b: dict[str, Any], command: str) -> int | None:
    """The largest load at which both variants completed `command` and `b` served its
    load (`served`: every command's p95 under P95_LIMIT_MS, none failed): past that, a
    baseline's times are its own queue, not its statements'."""
    loads = {s["players"] for s in b["stages"] if served(s)}
    both = _loads_with(a, command) & _loads_with(b, command) & loads
    return max(both) if both else None


def all_stages(v: dict[str, Any]) -> list[dict[str, Any]]:
    """The ramp's stages, then the capacity stages past it (quizbot and legacy only).

    Everything measured "at a load" or "in the worst stage" reads the ramp's stages
    alone (`v["stages"]`), so the targets are judged at the scale's loads; the
    capacity, the plot and the per-stage tables read these.
    """
    return [*v["stages"], *v.get("capacity_stages", [])]


def labelled_stages(v: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """`all_stages(v)`, each with its load as the tables show it."""
    return [(str(s["players"]), s) for s in v["stages"]] + [
        (f"{s['players']} (capacity)", s) for s in v.get("capacity_stages", [])
    ]


def capacity(v: dict[str, Any]) -> tuple[int | None, bool]:
    """Largest players served (every command's p95 under 500 ms, none failed); True when
    it is the top stage run (the real limit may be higher)."""
    stages = all_stages(v)
    ok = [s["players"] for s in stages if served(s)]
    if not ok:
        return None, False
    best = max(ok)
    top = max(s["players"] for s in stages)
    return best, best == top and v.get("gave_up_at") is None


def _cmd(stage: dict[str, Any] | None, command: str, key: str) -> float | None:
    if stage is None:
        return None
    c = stage["commands"].get(command)
    return None if c is None or not c["count"] else float(c[key])


def _round_trips(stage: dict[str, Any] | None, command: str) -> float | None:
    if stage is None:
        return None
    c = stage["commands"].get(command)
    if c is None or not c["count"]:
        return None
    if "round_trips_mean" in c:
        return float(c["round_trips_mean"])
    return float(c["statements_mean"] + c.get("pings_mean", 0.0))


def _reduction(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or old <= 0:
        return None
    return 100 * (1 - new / old)


def _verdict(ok: bool | None, detail: str = "") -> str:
    if ok is None:
        return "not measured"
    return ("**met**" if ok else "**missed**") + (f" ({detail})" if detail else "")


# -- the claims -----------------------------------------------------------------


def _own_rank_claim(own: dict[str, Any], scale: str) -> tuple[str, str]:
    """(measured, verdict) of the own-rank target: the mirror where measured, else SQL."""
    positions = own["positions"]

    def p95s(kind: str) -> str:
        return ", ".join(
            f"{label} {fmt(p[kind]['p95_ms'], 2)} ms" for label, p in positions.items() if kind in p
        )

    measured = f"{own['guild_members']:,} ranked members; counted in SQL: {p95s('counted')}"
    mirrored = [p["mirrored"]["p95_ms"] for p in positions.values() if "mirrored" in p]
    if mirrored:
        measured += f"; Redis mirror: {p95s('mirrored')}"
    worst = max(mirrored) if mirrored else max(p["counted"]["p95_ms"] for p in positions.values())
    agree = all(p.get("agree", True) for p in positions.values())
    if not agree:
        return measured, "**missed** (the mirror disagreed with the count)"
    if scale != "large":
        return measured, f"{'≤' if worst <= 20 else '>'} 20 ms (target is for large scale)"
    return measured, _verdict(worst <= 20)


def claims(results: dict[str, Any]) -> list[dict[str, str]]:
    """The plan's promises and the issue's targets, each with what this run measured."""
    rows: list[dict[str, str]] = []
    qb = variant(results, "quizbot")
    legacy = variant(results, "legacy")
    raw = variant(results, "raw")
    scale = results["config"]["scale"]["name"]

    def add(claim: str, plan: str, target: str, measured: str, verdict: str) -> None:
        rows.append(
            {
                "claim": claim,
                "plan": plan,
                "target": target,
                "measured": measured,
                "verdict": verdict,
            }
        )

    if qb and legacy:
        for command in ("answer", "start", "review", "stats", "leaderboard", "leaderboard_week"):
            load = common_command_stage(qb, legacy, command)
            sq, sl = stage_at(qb, load or -1), stage_at(legacy, load or -1)
            old, new = _cmd(sl, command, "p95_ms"), _cmd(sq, command, "p95_ms")
            red = _reduction(old, new)
            if load is None:
                add(
                    f"p95 `{command}` (legacy → quizbot)",
                    "50–70 % lower",
                    "≥ 90 % lower",
                    "no load at which both variants completed it",
                    _verdict(None),
                )
                continue
            add(
                f"p95 `{command}` at {load} players (legacy → quizbot)",
                "50–70 % lower",
                "≥ 90 % lower",
                f"{fmt(old)} → {fmt(new)} ms ({_change(red)})",
                _verdict(None if red is None else red >= 90),
            )
        for command in ("stats", "leaderboard", "answer", "start", "review", "finish"):
            load = common_command_stage(qb, legacy, command)
            sq, sl = stage_at(qb, load or -1), stage_at(legacy, load or -1)
            old, new = _round_trips(sl, command), _round_trips(sq, command)
            red = _reduction(old, new)
            target = "≥ 80 % fewer" if command == "stats" else "(no target)"
            fewer = None if red is None or command != "stats" else red >= 80
            add(
                f"round trips per `{command}` (legacy → quizbot, {load} players)",
                "80 % fewer",
                target,
                f"{fmt(old, 2)} → {fmt(new, 2)} ({_change(red).replace('lower', 'fewer')})",
                _verdict(fewer) if command == "stats" else "–",
            )
        caps = {}
        for v in (legacy, qb, raw):
            if v is not None:
                caps[v["name"]] = capacity(v)
        cq, cq_open = caps.get("quizbot", (None, False))
        cl = caps.get("legacy", (None, False))[0]
        ratio = cq / cl if cq and cl else None
        # Only quizbot and legacy run the capacity stages past the ramp.
        ramp_only = " (ramp only)" if results["config"]["scale"].get("capacity_players") else ""
        measured = ", ".join(
            f"{n}: {'≥ ' if open_ else ''}{c if c is not None else 'none'}"
            + (ramp_only if n == "raw" else "")
            for n, (c, open_) in caps.items()
        )
        if ratio is not None:
            measured += f"; ratio {'≥ ' if cq_open else ''}{ratio:.1f}×"
        ok: bool | None = None
        if ratio is not None:
            # A lower bound below 10x decides nothing: the ramp stopped before quizbot did.
            ok = True if ratio >= 10 else (None if cq_open else False)
        add(
            "concurrent players served with p95 < 500 ms",
            "3–5× more",
            "≥ 10× legacy",
            measured,
            _verdict(ok, "quizbot never exceeded the limit: bounded by the stages run")
            if cq_open
            else _verdict(ok),
        )
    hot = results.get("hot_queries")
    if hot and hot.get("comparison"):
        for row in hot["comparison"]:
            versus = "indexed vs unindexed"
            if row.get("unindexed_statement"):  # quizbot replaced the statement itself
                versus = f"{row['indexed_statement']} vs {row['unindexed_statement']}, unindexed"
            add(
                f"hot query `{row['query']}`, {versus} ({hot['scale']} scale)",
                "90 % faster",
                "≥ 99 % faster at large scale",
                f"{fmt(row['unindexed_ms'], 2)} → {fmt(row['indexed_ms'], 2)} ms "
                f"({_faster(row['faster_pct'])}, {row['speedup']:.1f}×)",
                _verdict(row["faster_pct"] >= 99)
                if hot["scale"] == "large"
                else f"{'≥' if row['faster_pct'] >= 99 else '<'} 99 % (target is for large scale)",
            )
    own = (hot or {}).get("own_rank")
    if own and own["positions"]:
        add(
            "own rank p95 wherever the member stands",
            "–",
            "≤ 20 ms at 1,000,000 members",
            *_own_rank_claim(own, hot["scale"] if hot else scale),
        )
    for v in (legacy, qb):
        if v is None or not v["stages"]:
            continue
        lag_max = max(s["process"]["loop_lag_max_ms"] for s in v["stages"])
        lag_p99 = max(s["process"]["loop_lag_p99_ms"] for s in v["stages"])
        ok = lag_max <= 100 and lag_p99 <= 10 if v["name"] == "quizbot" else None
        add(
            f"event-loop stall under load ({v['name']})",
            "near-zero freezes",
            "p99 ≤ 10 ms, max ≤ 100 ms" if v["name"] == "quizbot" else "(baseline)",
            f"worst stage: p99 {fmt(lag_p99)} ms, max {fmt(lag_max)} ms",
            _verdict(ok) if v["name"] == "quizbot" else "–",
        )
    if qb and qb["stages"]:
        flood = qb.get("flood")
        if flood is not None:
            thr = _cmd(flood, "answer", "throughput") or 0.0
            others = ", ".join(
                f"{v['name']} {fmt(_cmd(v['flood'], 'answer', 'throughput'))}/s"
                # The replay clicks on the traced run's clock: no rate of its own.
                + (" (at most quizbot-traced's, whose clicks it replays)" if v is raw else "")
                for v in (legacy, raw)
                if v is not None and v.get("flood")
            )
            measured = (
                f"{fmt(thr)}/s ({fmt(flood['all']['throughput'])} commands/s) with "
                f"{flood['players']} players in channel quizzes, no think time"
                + (f"; {others}" if others else "")
            )
        else:
            best = max(qb["stages"], key=lambda s: _cmd(s, "answer", "throughput") or 0.0)
            thr = _cmd(best, "answer", "throughput") or 0.0
            measured = f"{fmt(thr)}/s at {best['players']} players (think-time load)"
        add(
            "answers per second, one process",
            "–",
            "≥ 5,000/s sustained",
            measured,
            _verdict(thr >= 5000, "" if thr >= 5000 else f"{5000 - thr:,.0f}/s short"),
        )
        s1000 = stage_at(qb, 1000)
        p99 = _cmd(s1000, "answer", "p99_ms")
        add(
            "answer p99 at 1,000 players",
            "–",
            "≤ 50 ms",
            "no 1,000-player stage" if p99 is None else f"{fmt(p99)} ms",
            _verdict(None if p99 is None else p99 <= 50),
        )
        stats_p95 = max((_cmd(s, "stats", "p95_ms") or 0.0) for s in qb["stages"])
        # The highest load at which stats ran (at the top load a stage may end first).
        stats_stage = next(
            (s for s in reversed(qb["stages"]) if _cmd(s, "stats", "statements_mean") is not None),
            qb["stages"][-1],
        )
        rt = _round_trips(stats_stage, "stats")
        add(
            "stats: statements and p95",
            "one CTE query",
            "1 statement; p95 ≤ 5 ms at standard",
            f"{fmt(_cmd(stats_stage, 'stats', 'statements_mean'), 2)} statements, "
            f"{fmt(rt, 2)} round trips (with BEGIN/COMMIT and pre-ping) per call at "
            f"{stats_stage['players']} players; worst-stage p95 "
            f"{fmt(stats_p95)} ms ({scale})",
            _verdict(stats_p95 <= 5 if scale == "standard" else None),
        )
        # Before the capacity stages (reports before 2026-12-08: the whole run's).
        rss = (qb.get("scale_totals") or qb["process_totals"])["peak_rss_mb"]
        add(
            "peak RSS of the bot process",
            "–",
            "≤ 200 MB (standard, 1,000 players)",
            f"{fmt(rss)} MB ({scale}, up to {qb['stages'][-1]['players']} players)",
            _verdict(rss <= 200 if scale == "standard" else None),
        )
    if qb and raw:
        for command in HEADLINE_COMMANDS:
            # At a load the replay itself cannot serve, the ratio would compare quizbot
            # with the replay's queue (seen on 2026-12-07: 0.05x for answers).
            load = unsaturated_common_stage(qb, raw, command)
            sq, sr = stage_at(qb, load or -1), stage_at(raw, load or -1)
            a, b = _cmd(sq, command, "p50_ms"), _cmd(sr, command, "p50_ms")
            ratio = a / b if a is not None and b else None
            add(
                f"`{command}` vs raw asyncpg, same statements, p50 at {load} players "
                "(the largest load the raw replay served with p95 < 500 ms)",
                "–",
                "≤ 1.5× raw",
                f"{fmt(a, 2)} vs {fmt(b, 2)} ms ({fmt(ratio, 2)}×)",
                _verdict(None if ratio is None else ratio <= 1.5),
            )
    return rows


# -- markdown ---------------------------------------------------------------------


def _command_cells(c: dict[str, Any]) -> list[str]:
    """A command's count, errors, rate, latencies and statements: the cells the report's
    per-stage tables and the terminal's summary share."""
    return [
        str(c["count"]),
        str(c["errors"]),
        fmt(c["throughput"]),
        fmt(c["p50_ms"]),
        fmt(c["p95_ms"]),
        fmt(c["p99_ms"]),
        fmt(c["max_ms"]),
        fmt(c["statements_mean"], 2),
    ]


def _stage_tables(v: dict[str, Any]) -> str:
    rows = []
    for players, s in labelled_stages(v):
        for name, c in s["commands"].items():
            rows.append(
                [
                    players,
                    name,
                    *_command_cells(c),
                    fmt(c.get("tx_mean", 0.0), 2),
                    fmt(c.get("pings_mean", 0.0), 2),
                    fmt(c["pool_wait_mean_ms"], 2),
                    fmt(c["pool_wait_max_ms"], 1),
                    fmt(c.get("held_mean_ms", 0.0), 2),
                ]
            )
    return markdown_table(
        [
            "players",
            "command",
            "n",
            "errors",
            "per s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "statements",
            "BEGIN/COMMIT",
            "pre-pings",
            "pool wait ms (mean)",
            "pool wait ms (max)",
            "connection held ms (mean)",
        ],
        rows,
    )


def _process_table(results: dict[str, Any]) -> str:
    rows = []
    for v in results["variants"]:
        for players, s in labelled_stages(v):
            p = s["process"]
            rows.append(
                [
                    v["name"],
                    players,
                    fmt(s["seconds"]),
                    fmt(s["all"]["throughput"]),
                    fmt(s["all"]["p95_ms"]),
                    fmt(p["loop_lag_p99_ms"]),
                    fmt(p["loop_lag_max_ms"]),
                    fmt(p["cpu_s"]),
                    f"{100 * p['cpu_share']:.0f} %",
                    _server_share(p),
                    fmt(p["rss_peak_mb"]),
                    _probe(p),
                ]
            )
    return markdown_table(
        [
            "variant",
            "players",
            "stage s",
            "commands/s",
            "p95 ms (all)",
            "loop lag p99 ms",
            "loop lag max ms",
            "CPU s",
            "CPU",
            "server CPU",
            "RSS peak MB",
            "speed probe ms",
        ],
        rows,
    )


def _server_share(process: dict[str, Any]) -> str:
    # None: a server on another machine, or a run from before 2026-12-07 17:56.
    share = process.get("server_cpu_share")
    return "–" if share is None else f"{100 * share:.0f} %"


def _probe(process: dict[str, Any]) -> str:
    # None: a stage without a sample, or a run from before 2026-12-07 16:00. Runs of
    # 1558c9b (16:04, 16:26) stored under this key the mean of two probes at the
    # stage's edges instead of the sampler's median.
    probe = process.get("probe_ms")
    return "–" if probe is None else fmt(probe, 2)


def answer_burst_section(burst: dict[str, Any] | None) -> list[str]:
    """The report's lines for `bench.burst` (none when it did not run)."""
    if not burst:
        return []
    return [
        "## An answer burst, measured alone",
        "",
        f"The members of one channel quiz, {burst['players']:,} of them, answer its question "
        "at once through `QuizService.answer`, as the cog calls it (group-committed), "
        "question after question, in a process of its own with nothing else running "
        "(`bench/burst.py`). CPU is that process's per answer, the simulated players' "
        "calls included but not the reveals and moves between the bursts. Server CPU is "
        "every process of the PostgreSQL server during the bursts after the first, summed, "
        "per answer of those bursts (the reveals and moves left out), when the server runs "
        "on this machine (– when it was not measured): with nothing else running, what the "
        "answers cost it. The first burst, whose answers create the players' rows, is "
        "shown apart; the other figures are medians over the bursts after it.",
        "",
        markdown_table(
            [
                "bursts",
                "CPU µs per answer",
                "server CPU µs per answer",
                "wall ms per burst",
                "batches per burst",
                "first burst: CPU µs per answer",
                "first burst: wall ms",
            ],
            [
                [
                    str(burst["bursts"]),
                    fmt(burst["cpu_us_per_answer"]),
                    # .get: runs from before 2026-12-07 21:00 did not measure the server.
                    fmt(burst.get("server_cpu_us_per_answer")),
                    fmt(burst["wall_ms_per_burst"]),
                    fmt(burst["batches_per_burst"], 2),
                    fmt(burst["first_cpu_us_per_answer"]),
                    fmt(burst["first_wall_ms"]),
                ]
            ],
        ),
        "",
    ]


def _per_answer_us(stage: dict[str, Any], key: str) -> float | None:
    """CPU seconds of the stage under `process[key]` (every command) per answer, in µs."""
    answers = _cmd(stage, "answer", "count")
    seconds = stage["process"].get(key)
    if not answers or seconds is None:
        return None
    return float(seconds) * 1e6 / answers


def cpu_ceiling(flood: dict[str, Any], cpus: int) -> tuple[float, float, float] | None:
    """A flood's CPU per answer, the variant's process and the server's (µs), and the
    answers per second `cpus` cores allow at that cost; None without the server's CPU."""
    bot, server = _per_answer_us(flood, "cpu_s"), _per_answer_us(flood, "server_cpu_s")
    if bot is None or server is None or min(bot, server) < 0 or bot + server <= 0 or cpus <= 0:
        return None
    return bot, server, cpus * 1e6 / (bot + server)


def flood_ceiling_line(name: str, flood: dict[str, Any], cpus: int) -> str | None:
    """The report's line on what the cores allow at a variant's flood's CPU per answer."""
    found = cpu_ceiling(flood, cpus)
    if found is None:
        return None
    bot, server, ceiling = found
    reached = _cmd(flood, "answer", "throughput") or 0.0
    return (
        f"- {name}: {fmt(bot)} + {fmt(server)} = {fmt(bot + server)} µs of CPU per "
        f"answer; {cpus} cores at that cost allow at most {fmt(ceiling)} answers/s, and "
        f"the flood reached {fmt(reached)} ({100 * reached / ceiling:.0f} %)."
    )


def _legacy_table(results: dict[str, Any]) -> str | None:
    qb, legacy = variant(results, "quizbot"), variant(results, "legacy")
    if not qb or not legacy:
        return None
    rows = []
    for s in legacy["stages"]:
        q = stage_at(qb, s["players"])
        if q is None:
            continue
        for command in s["commands"]:
            old, new = _cmd(s, command, "p95_ms"), _cmd(q, command, "p95_ms")
            rows.append(
                [
                    str(s["players"]),
                    command,
                    fmt(old),
                    fmt(new),
                    _change(_reduction(old, new)),
                    fmt(_round_trips(s, command), 2),
                    fmt(_round_trips(q, command), 2),
                ]
            )
    return markdown_table(
        [
            "players",
            "command",
            "legacy p95 ms",
            "quizbot p95 ms",
            "p95 change",
            "legacy round trips",
            "quizbot round trips",
        ],
        rows,
    )


def _raw_table(results: dict[str, Any]) -> str | None:
    qb, raw = variant(results, "quizbot"), variant(results, "raw")
    if not qb or not raw:
        return None
    rows = []
    for s in qb["stages"]:
        r = stage_at(raw, s["players"])
        for command in s["commands"]:
            a50, b50 = _cmd(s, command, "p50_ms"), _cmd(r, command, "p50_ms")
            a95, b95 = _cmd(s, command, "p95_ms"), _cmd(r, command, "p95_ms")
            rows.append(
                [
                    str(s["players"]),
                    command,
                    fmt(a50, 2),
                    fmt(b50, 2),
                    fmt(a50 / b50 if a50 is not None and b50 else None, 2),
                    fmt(a95, 2),
                    fmt(b95, 2),
                    fmt(_cmd(s, command, "statements_mean"), 2),
                ]
            )
    return markdown_table(
        [
            "players",
            "command",
            "quizbot p50",
            "raw p50",
            "ratio",
            "quizbot p95",
            "raw p95",
            "statements",
        ],
        rows,
    )


def ablation_rows(results: dict[str, Any]) -> list[list[str]]:
    qb = variant(results, "quizbot")
    rows: list[list[str]] = []
    if qb is None:
        return rows
    for ab in results.get("ablations", []):
        v = variant(results, ab["variant"])
        if ab.get("skipped"):
            rows.append([ab["measure"], "skipped: " + ab["skipped"]] + ["–"] * 7)
            continue
        if v is None:
            continue
        load = common_top_stage(qb, v)
        sq, sv = stage_at(qb, load or -1), stage_at(v, load or -1)

        def pair(command: str, key: str, digits: int = 1, sv: Any = sv, sq: Any = sq) -> str:
            return f"{fmt(_cmd(sv, command, key), digits)} / {fmt(_cmd(sq, command, key), digits)}"

        cap_v, open_v = capacity(v)
        lag = max((s["process"]["loop_lag_max_ms"] for s in v["stages"]), default=None)
        rows.append(
            [
                ab["measure"],
                ab["how"],
                str(load),
                pair("answer", "p95_ms"),
                pair("answer", "throughput"),
                pair("stats", "p95_ms"),
                pair("leaderboard", "p95_ms"),
                pair("stats", "statements_mean", 2),
                f"{'≥ ' if open_v else ''}{cap_v}; lag max {fmt(lag)} ms",
            ]
        )
    return rows


def _integrity_and_process(results: dict[str, Any]) -> list[str]:
    out: list[str] = ["", "## Integrity", ""]
    rows = []
    for v in results["variants"]:
        i = v["integrity"]
        rows.append(
            [
                v["name"],
                ("passed" if i["passed"] else "**FAILED** " + json.dumps(i["failures"]))
                + (
                    f" ({i['session_counts_differ']} quiz counters differ: replay order)"
                    if not i["checked_acks"] and i.get("session_counts_differ")
                    else ""
                ),
                str(i.get("acknowledged", "–")) if i["checked_acks"] else "not tracked (replay)",
                str(i.get("unacknowledged_rows", "–")),
                str(i["answers_in_database"]),
            ]
        )
    out.append(
        markdown_table(
            [
                "variant",
                "check",
                "acknowledged answers",
                "rows written but not acknowledged",
                "answers in db",
            ],
            rows,
        )
    )
    out += [
        "",
        "Checked: every acknowledged answer is in the database exactly once with the "
        "acknowledged points; no answer is stored twice; every member's points equal the sum "
        "of their answers' points; every user's points equal the sum over their guilds; every "
        "quiz's answer count equals its answers; every member's points, answers and correct "
        "answers of each UTC day and topic (member_daily_points), and points of each week "
        "and month "
        "(member_period_points), equal their answers', and every guild's kept board size "
        "(guilds.ranked_members) equals its members with points, and its kept histogram "
        "(guild_points_histogram) its members per number of points (not for legacy, which "
        "keeps none of these).",
        "",
        "## Process: event loop, CPU, memory",
        "",
        "The speed probe: the median, over the stage, of a process of its own that times "
        "a fixed piece of pure Python every quarter of a second (the fastest of three "
        "runs, in ms; lower is faster; `bench.metrics.SpeedSampler`). It shows how fast "
        "the machine was while the stage ran: the development VMs share their hosts, and "
        "at equal code their speed has moved by a factor of up to two within a run. "
        "CPU is the variant's process over the stage, as a share of one core; server "
        "CPU is every process of the PostgreSQL server over the same time, when it runs "
        "on this machine (`bench.metrics.ServerCpu`; – when it runs elsewhere).",
        "",
        _process_table(results),
        "",
    ]
    return out


def _capacity_stages_text(scale: dict[str, Any]) -> str:
    loads = scale.get("capacity_players") or ()
    if not loads:
        return ""
    return (
        f" After the flood, quizbot and legacy go on to {', '.join(str(p) for p in loads)} "
        f"players, one stage after another while the last served its load (every "
        f'command\'s p95 under {P95_LIMIT_MS:.0f} ms, none failed), marked "capacity" in '
        "the tables: the capacity claim and the plot read them; every other figure reads "
        "the ramp's stages (and the peak RSS is taken before them). The other variants' "
        "capacities are the ramp's only."
    )


def markdown(results: dict[str, Any], plot_name: str | None) -> str:
    cfg = results["config"]
    scale = cfg["scale"]
    m = results["machine"]
    out = [
        f"# quizbot benchmark: scale `{scale['name']}`",
        "",
        f"Run {results['started']} → {results['finished']} ({fmt(results['seconds'])} s), "
        f"command: `{results['command']}`.",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gb']:.1f} GiB RAM, "
        f"PostgreSQL {m['postgres']}, Python {m['python']}. Load average at start "
        f"{m['loadavg_start']}, at end {m.get('loadavg_end', '–')}. "
        "**Caveat:** other work shared these CPUs during the run, so the figures are noisy; "
        "compare variants within one run, not across runs.",
        "",
        "Server settings: "
        + ", ".join(f"`{k}` {v}" for k, v in m.get("server_settings", {}).items())
        + ". "
        + m.get("pg_stat_statements", ""),
        "",
        f"Dataset: {results['seed']['guilds']} guilds, {results['seed']['members']:,} members, "
        f"{results['seed']['questions']:,} questions, {results['seed']['past_sessions']:,} past "
        f"quizzes, {results['seed']['past_answers']:,} past answers "
        f"(seeded in {fmt(results['seed']['seconds'])} s).",
        "",
        f"Load: stages of {', '.join(str(p) for p in scale['players'])} players, "
        f"{scale['stage_seconds']} s each (quizzes under way are finished); think time "
        f"{scale['think_ms']} ms ±50 %; {scale['questions_per_quiz']} questions per quiz; half "
        f"of the players in channel quizzes of {scale['burst_size']} members who all answer "
        "each question within a burst window (1 s, or 2× the think time if shorter), the "
        "other half solo (every third of their quizzes a `/review` of their due questions). "
        "Latency counts from the click, so time waiting for a blocked event "
        "loop is included. Before the first stage an unrecorded warm-up (up to 3 s at the "
        "first stage's load) fills pools and caches as in a running bot. A variant stops "
        f"ramping when a stage's p95 over all commands exceeds {cfg['give_up_p95_s']} s."
        + _capacity_stages_text(scale),
        "",
    ]
    if results.get("only_queries"):
        # Only the hot queries ran: no load, no variants.
        out = [line for line in out if not line.startswith("Load: ")]
    if plot_name:
        out += [f"![p95 latency against concurrent players]({plot_name})", ""]
    out += ["## Claims of the plan and targets of issue 5", ""]
    out.append(
        markdown_table(
            ["claim", "plan says", "target", "measured", "verdict"],
            [
                [r["claim"], r["plan"], r["target"], r["measured"], r["verdict"]]
                for r in results["claims"]
            ],
        )
    )
    if results["variants"]:
        out += _integrity_and_process(results)
    else:
        out.append("")
    flood_rows = []
    for v in results["variants"]:
        f = v.get("flood")
        if not f:
            continue
        flood_rows.append(
            [
                v["name"],
                str(f["players"]),
                fmt(_cmd(f, "answer", "throughput")),
                fmt(f["all"]["throughput"]),
                fmt(_cmd(f, "answer", "p50_ms")),
                fmt(_cmd(f, "answer", "p95_ms")),
                fmt(_cmd(f, "answer", "p99_ms")),
                fmt(_cmd(f, "answer", "pool_wait_mean_ms"), 2),
                fmt(f["process"]["loop_lag_max_ms"]),
                f"{100 * f['process']['cpu_share']:.0f} %",
                fmt(_per_answer_us(f, "cpu_s")),
                _server_share(f["process"]),
                fmt(_per_answer_us(f, "server_cpu_s")),
                _probe(f["process"]),
                str(f["all"]["errors"]),
            ]
        )
    if flood_rows:
        out += [
            "## Sustained answer rate: the answer flood",
            "",
            "After the ramp, one stage with no think time in which every player is in a "
            "channel quiz of `flood_group` members (a trivia night): all of them answer "
            "each question at once, then the game reveals the answers and moves on, and after each "
            "quiz one member looks at the stats and the host at the board. CPU per answer is "
            "the variant's process CPU over the stage (every command, the simulated players "
            "included) divided by its answers; the server's is its processes' CPU over the "
            "stage (when it runs on this machine) divided by the same answers. The speed "
            "probe: see the process table above (lower is faster).",
            "",
            markdown_table(
                [
                    "variant",
                    "players",
                    "answers/s",
                    "commands/s",
                    "answer p50 ms",
                    "answer p95 ms",
                    "answer p99 ms",
                    "answer pool wait ms",
                    "loop lag max ms",
                    "CPU",
                    "CPU µs per answer",
                    "server CPU",
                    "server CPU µs per answer",
                    "speed probe ms",
                    "errors",
                ],
                flood_rows,
            ),
            "",
        ]
        cpus = int(results.get("machine", {}).get("cpus") or 0)
        ceilings = [
            line
            for v in results["variants"]
            if v.get("flood") and (line := flood_ceiling_line(v["name"], v["flood"], cpus))
        ]
        if ceilings:
            out += [
                "The CPU an answer costs, the variant's process and the server's together, "
                "bounds the rate the machine's cores can sustain whoever waits for whom "
                "(other processes' CPU, the speed probe's included, left out):",
                "",
                *ceilings,
                "",
            ]
    legacy_table = _legacy_table(results)
    if legacy_table:
        out += [
            "## legacy vs quizbot at each load",
            "",
            "Round trips are statements plus transaction control (BEGIN, COMMIT, ROLLBACK) "
            "plus quizbot's pool pre-pings.",
            "",
            legacy_table,
            "",
        ]
    raw_table = _raw_table(results)
    if raw_table:
        out += [
            "## quizbot vs raw asyncpg (the same statements, replayed)",
            "",
            "The raw replay sends each command's captured statements as quizbot did (alone "
            "in autocommit, or in the same transactions) on a bare asyncpg pool with the same "
            "players and think times; no ORM, services, cache logic or pool pre-ping, and no "
            "reset query when a connection returns to the pool (quizbot sends none; the "
            "replay paid one per command until 2026-12-07). The answer and question-message "
            "batches are written on connections of their own with the server settings of "
            "quizbot's answer writer, which writes both (one plan per statement, "
            "ANSWER_GENERIC_PLANS). Commands "
            "served from quizbot's cache have no statements to replay. The statements come "
            "from the `quizbot-traced` run (the same workload and seed, recording every "
            "statement); the `quizbot` column is the run that records nothing, so the "
            "recording's cost is in neither column.",
            "",
            raw_table,
            "",
        ]
    layer_rows = results.get("statement_layers")
    if layer_rows:
        out += [
            "## One statement, layer by layer",
            "",
            "Where the difference to the raw replay goes: one indexed one-row read that "
            "every `/leaderboard` makes (a member's points, by key), called "
            f"{layer_rows[0]['calls']:,} times one after the other on the seeded database, in the "
            "benchmark's own process (`bench/layers.py`). CPU is the process's CPU time per "
            "call; the database's work is in the wall time only.",
            "",
            markdown_table(
                ["layer", "CPU µs per call", "wall µs per call"],
                [[r["layer"], fmt(r["cpu_us"]), fmt(r["wall_us"])] for r in layer_rows],
            ),
            "",
        ]
    out += answer_burst_section(results.get("answer_burst"))
    ab_rows = ablation_rows(results)
    if ab_rows:
        out += [
            "## Ablation: quizbot with one measure switched off",
            "",
            "Each cell is *measure off* / *quizbot* at the largest load both ran.",
            "",
            markdown_table(
                [
                    "measure switched off",
                    "how",
                    "players",
                    "answer p95 ms",
                    "answers/s",
                    "stats p95 ms",
                    "leaderboard p95 ms",
                    "stats statements",
                    "capacity in the ramp (p95 < 500 ms)",
                ],
                ab_rows,
            ),
            "",
        ]
    hot = results.get("hot_queries")
    if hot:
        out += [f"## Hot queries, indexed vs unindexed ({hot['scale']} scale)", ""]
        out.append(
            markdown_table(
                [
                    "query",
                    "indexed ms (median)",
                    "unindexed ms (median)",
                    "server ms indexed",
                    "server ms unindexed",
                    "faster",
                ],
                [
                    [
                        r["query"],
                        fmt(r["indexed_ms"], 2),
                        fmt(r["unindexed_ms"], 2),
                        fmt(r["indexed_server_ms"], 2),
                        fmt(r["unindexed_server_ms"], 2),
                        f"{_faster(r['faster_pct'])} ({r['speedup']:.1f}×)",
                    ]
                    for r in hot["comparison"]
                ],
            )
        )
        out += [
            "",
            f"Client-side medians of {hot.get('repeats', '?')} runs after a warm-up; server ms "
            "is `Execution Time` of one `EXPLAIN (ANALYZE, BUFFERS)`. The plans are in "
            f"`{hot.get('explain_file', 'the JSON')}`.",
            "",
        ]
        for r in hot["comparison"]:
            if r.get("unindexed_statement"):
                out.append(
                    f"- `{r['query']}`: the indexed column times {r['indexed_statement']}; "
                    f"the unindexed column times the statement quizbot used "
                    f"{r['unindexed_statement']}, on the copy without hot indexes. The "
                    "speed-up is what the new design buys over the old one."
                )
        for note in hot.get("notes", []):
            out.append(f"- {note}")
        own = hot.get("own_rank")
        if own and own["positions"]:
            out += ["", f"## Own rank wherever the member stands ({hot['scale']} scale)", ""]
            out.append(
                f"`/leaderboard` for members at the top, middle and bottom of a guild of "
                f"{own['guild_members']:,} ranked members, with its page already cached: "
                "the own-rank part; and `/stats` (uncached), which holds the same rank and the "
                "board's size. *Counted*: quizbot without a mirror (since 2026-12-07 the "
                "rank is summed from the guild's kept histogram of points, "
                "`guild_points_histogram`; before, an index-only count of the rows ahead; "
                "the board's size is kept in `guilds.ranked_members` since 2026-12-06, "
                "counted before). *Mirror*: quizbot with `REDIS_URL` once the "
                "guild is mirrored (the member's row by key, then `ZCOUNT`)."
                + (
                    f" Building the mirror took {own['mirror']['build_s']:.1f} s."
                    if own.get("mirror")
                    else ""
                )
            )
            out += [
                "",
                markdown_table(
                    [
                        "position",
                        "rank",
                        "own rank p50 / p95 ms, counted",
                        "own rank p50 / p95 ms, mirror",
                        "/stats p50 / p95 ms, counted",
                        "/stats p50 / p95 ms, mirror",
                        "same rank",
                    ],
                    [
                        [
                            label,
                            f"{p['rank']:,}",
                            *(
                                f"{fmt(p[k]['median_ms'], 2)} / {fmt(p[k]['p95_ms'], 2)}"
                                if k in p
                                else "–"
                                for k in ("counted", "mirrored", "stats_counted", "stats_mirrored")
                            ),
                            ("yes" if p["agree"] else "**no**") if "agree" in p else "–",
                        ]
                        for label, p in own["positions"].items()
                    ],
                ),
                "",
            ]
            for note in own.get("notes", []):
                out.append(f"- {note}")
    pg = results.get("pgbench")
    if pg:
        out += ["## pgbench on the same server and data", ""]
        if pg.get("skipped"):
            out.append(f"Skipped: {pg['skipped']}")
        else:
            out.append(
                markdown_table(
                    ["script", "tps", "latency avg ms", "command"],
                    [
                        [
                            name,
                            fmt(r.get("tps")),
                            fmt(r.get("latency_avg_ms"), 3),
                            f"`{r['command']}`",
                        ]
                        for name, r in pg["runs"].items()
                    ],
                )
            )
            out += ["", "`quizbot.sql`:", "", "```", pg["script"].rstrip(), "```"]
        out.append("")
    if results["variants"]:
        out += ["## Per variant, per stage and command", ""]
    for v in results["variants"]:
        title = f"### {v['name']}"
        out += [title, ""]
        if v.get("note"):
            out += [v["note"], ""]
        if v.get("overrides_skipped"):
            out += [f"Settings not present (skipped): {', '.join(v['overrides_skipped'])}.", ""]
        if v.get("gave_up_at"):
            out += [f"Stopped ramping after {v['gave_up_at']} players (p95 over the limit).", ""]
        if v.get("trace_mb"):
            out += [
                f"This variant kept the trace for the raw replay in memory "
                f"({v['trace_mb']:.1f} MB pickled), which its RSS includes.",
                "",
            ]
        if v.get("background_statements"):
            out += [
                f"Statements outside any command (background tasks): {v['background_statements']}.",
                "",
            ]
        kinds: dict[str, int] = {}
        for s in [*all_stages(v), *([v["flood"]] if v.get("flood") else [])]:
            for c in s["commands"].values():
                for kind, n in c.get("error_kinds", {}).items():
                    kinds[kind] = kinds.get(kind, 0) + n
        if kinds:
            out += [
                "Errors (not included in the latency figures): "
                + ", ".join(f"{k} × {n}" for k, n in sorted(kinds.items()))
                + ". A `TimeoutError` is the pool's checkout timeout (`DB_POOL_TIMEOUT`).",
                "",
            ]
        out += [_stage_tables(v), ""]
    for note in results.get("notes", []):
        out.append(f"- {note}")
    return "\n".join(out).rstrip() + "\n"


# -- plot, files, terminal ------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    # More variants than the default cycle's ten colours: one colour each from a
    # larger map, and the ablations dashed, so no two lines look alike.
    tab20 = plt.get_cmap("tab20")
    # tab20 pairs a strong colour with a pale one: the strong ten first.
    colours = [tab20(k) for k in (*range(0, tab20.N, 2), *range(1, tab20.N, 2))]
    ablations = {ab["variant"] for ab in results.get("ablations", [])}
    for ax, (title, key) in zip(axes, (("all commands", None), ("answer", "answer")), strict=True):
        for i, v in enumerate(results["variants"]):
            xs, ys = [], []
            for s in all_stages(v):
                value = s["all"]["p95_ms"] if key is None else _cmd(s, key, "p95_ms")
                if value is not None:
                    xs.append(s["players"])
                    ys.append(value)
            if xs:
                ablation = v["name"] in ablations
                ax.plot(
                    xs,
                    ys,
                    marker="o",
                    markersize=3 if ablation else 5,
                    linestyle="--" if ablation else "-",
                    linewidth=1 if ablation else 2,
                    color=colours[i % len(colours)],
                    label=v["name"],
                )
        ax.axhline(P95_LIMIT_MS, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("concurrent players")
        ax.set_ylabel("p95 latency (ms)")
        ax.set_title(f"p95 latency, {title}")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize="small")
    fig.suptitle(f"quizbot bench, scale {results['config']['scale']['name']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write JSON, Markdown, the plot and the query plans; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{results['config']['scale']['name']}"
    if results.get("only_queries"):
        stem += "-queries"
    paths = {
        "json": out_dir / f"{stem}.json",
        "markdown": out_dir / f"{stem}.md",
        "plot": out_dir / f"{stem}.png",
        "explain": out_dir / f"{stem}-explain.txt",
    }
    hot = results.get("hot_queries")
    if hot:
        blocks = []
        for label in ("indexed", "unindexed"):
            for name, q in hot[label]["queries"].items():
                what = f"{label}: {q['statement']}" if "statement" in q else label
                blocks.append(f"=== {name} ({what}) ===\n{q['plan']}\n")
        paths["explain"].write_text("\n".join(blocks))
        hot["explain_file"] = paths["explain"].name
    else:
        paths.pop("explain")
    if results["variants"]:
        plot(results, paths["plot"])
        plot_name: str | None = paths["plot"].name
    else:
        paths.pop("plot")
        plot_name = None
    paths["markdown"].write_text(markdown(results, plot_name))
    paths["json"].write_text(json.dumps(results, indent=1, default=str))
    return paths


def terminal(results: dict[str, Any], console: Any) -> None:
    """Rich tables: each variant at its top stage, and the claims."""
    from rich.table import Table

    table = Table(title="per command at the top of each variant's ramp")
    for h in (
        "variant",
        "players",
        "command",
        "n",
        "err",
        "per s",
        "p50",
        "p95",
        "p99",
        "max",
        "stmts",
        "pool wait",
    ):
        table.add_column(h, justify="right" if h not in ("variant", "command") else "left")
    for v in results["variants"]:
        if not v["stages"]:
            continue
        s = v["stages"][-1]
        for name, c in s["commands"].items():
            table.add_row(
                v["name"],
                str(s["players"]),
                name,
                *_command_cells(c),
                fmt(c["pool_wait_mean_ms"], 2),
            )
    if results["variants"]:
        console.print(table)
    claims_table = Table(title="claims")
    for h in ("claim", "target", "measured", "verdict"):
        claims_table.add_column(h)
    for r in results["claims"]:
        claims_table.add_row(r["claim"], r["target"], r["measured"], r["verdict"].replace("**", ""))
    console.print(claims_table)


def main(argv: list[str] | None = None) -> int:
    """Re-render a run's Markdown, plot and claims from its JSON: `python -m bench.report FILE`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m bench.report bench/results/bench-SCALE.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    results = json.loads(path.read_text())
    results["claims"] = claims(results)
    for name, written in write(results, path.parent).items():
        print(f"wrote {name}: {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
