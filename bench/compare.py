"""What a change to the answer path buys: two versions of the code, alternated on the
answer burst. `python -m bench.compare BASE [--new REV] [--runs N] [--scale SCALE]`.

The full benchmark's figures move with the machine (the development VMs' speed moved
by up to a factor of two within an hour), so two runs of it an hour apart cannot say
what a change of a tenth bought. This runs `bench.burst` (240 answers at once, question
after question, CPU of the process and of a local server per answer) for the two
versions in turn, each run on a fresh copy of that version's own seeded database, so
that the machine's drift falls on both alike; it reports each version's medians and in
how many of the pairs the new one was lower.

Each version is a checkout of its own: BASE (any git revision) is exported with `git
archive` into a temporary directory; the new one is the working tree, or `--new REV`.
Each seeds its database with its own migrations and dataset (the same random seed), so
a schema change is compared as it would run. Both use this environment's packages: a
change of dependencies is not compared. A revision without `bench/burst.py` (before
2026-12-07) cannot be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import fmt, markdown_table

ROOT = Path(__file__).resolve().parent.parent

# Run in a version's checkout (its own `bench` and `quizbot` on the path): the seed,
# then one burst per clone. Only functions every comparable version has.
_SEED = """
import json, sys
from bench import database, dataset
from bench.config import SCALES
from quizbot.cli import run_async
from quizbot.migrations import upgrade
server, scale = sys.argv[1], sys.argv[2]
url = run_async(database.create_database(server, f"compare_{scale}_seed"))
try:
    upgrade(url)
    run_async(dataset.seed(database.asyncpg_args(url), SCALES[scale]))
except BaseException:
    run_async(database.drop_database(url))  # nothing left behind
    raise
print("RESULT", json.dumps(url))
"""
_BURST = """
import json, sys
from bench import burst
print("RESULT", json.dumps(burst.run(sys.argv[1], int(sys.argv[2]))))
"""

MEASURES = ("cpu_us_per_answer", "server_cpu_us_per_answer", "wall_ms_per_burst")


@dataclass(frozen=True)
class Side:
    """One version: a name for the report and the checkout its code runs from."""

    name: str
    path: Path


def _child(side: Side, code: str, *args: str) -> Any:
    """Run `code` with `side`'s code first on the path; the value it printed as RESULT."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=side.path,
        env={**os.environ, "PYTHONPATH": str(side.path)},
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"{side.name}: the child process failed:\n{done.stderr[-3000:]}")


def export(revision: str, into: Path) -> Path:
    """`revision`'s files (git archive) in `into`; raises if git does not know it."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"git archive {revision}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    if not (into / "bench" / "burst.py").exists():
        raise SystemExit(f"{revision} has no bench/burst.py: it cannot be compared")
    return into


def summary(runs: dict[str, list[dict[str, Any]]], base: str, new: str) -> dict[str, Any]:
    """Medians per version and, per measure, the pairs (run i of each) where `new` was
    lower; a measure missing from a run (the server's CPU of a remote server) is
    left out of its median and of the pairs."""
    out: dict[str, Any] = {"runs": len(runs[base]), "medians": {}, "new_lower": {}}
    for name in (base, new):
        out["medians"][name] = {}
        for m in MEASURES:
            measured = [r[m] for r in runs[name] if r.get(m) is not None]
            out["medians"][name][m] = statistics.median(measured) if measured else None
    for m in MEASURES:
        pairs = [
            (b[m], n[m])
            for b, n in zip(runs[base], runs[new], strict=True)
            if b.get(m) is not None and n.get(m) is not None
        ]
        out["new_lower"][m] = [sum(n < b for b, n in pairs), len(pairs)]
    return out


def compare(
    base: Side, new: Side, *, server: str, scale: str, runs: int, echo: Any = print
) -> dict[str, Any]:
    """`runs` bursts of each version, alternated (base first on even rounds), each on
    a fresh clone of its own seed; returns every run and `summary`."""
    from bench import burst, database
    from bench.config import SCALES
    from quizbot.cli import run_async

    players = min(burst.PLAYERS, max(SCALES[scale].players))
    seeds: dict[str, str] = {}
    results: dict[str, list[dict[str, Any]]] = {base.name: [], new.name: []}
    try:
        for side in (base, new):
            echo(f"seeding {scale} with {side.name}'s code")
            seeds[side.name] = _child(side, _SEED, server, scale)
        for i in range(runs):
            for side in (base, new) if i % 2 == 0 else (new, base):
                clone = run_async(
                    database.create_database(server, "compare", template=seeds[side.name])
                )
                try:
                    result = _child(side, _BURST, clone, str(players))
                finally:
                    run_async(database.drop_database(clone))
                results[side.name].append(result)
                echo(
                    f"run {i + 1}/{runs} {side.name}: "
                    + ", ".join(f"{m} {fmt(result.get(m))}" for m in MEASURES)
                )
    finally:
        for url in seeds.values():
            run_async(database.drop_database(url))
    return {"scale": scale, "players": players, "results": results,
            "summary": summary(results, base.name, new.name)}  # fmt: skip


def render(report: dict[str, Any], base: str, new: str) -> str:
    """The summary as a Markdown table."""
    s = report["summary"]
    lower = s["new_lower"]
    rows = [[name, *(fmt(s["medians"][name][m]) for m in MEASURES)] for name in (base, new)]
    rows.append([f"{new} lower in", *(f"{lower[m][0]} of {lower[m][1]}" for m in MEASURES)])
    headers = ["version", "CPU µs per answer", "server CPU µs per answer", "wall ms per burst"]
    return (
        f"Answer bursts of {report['players']} players, scale `{report['scale']}`, "
        f"{s['runs']} alternated runs of each version; medians, and the pairs where "
        f"{new} was lower.\n\n" + markdown_table(headers, rows)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("base", help="git revision to compare against (e.g. HEAD~1, a commit)")
    parser.add_argument("--new", help="git revision of the new version (default: the working tree)")
    parser.add_argument("--runs", type=int, default=9, help="bursts of each version (default 9)")
    parser.add_argument("--scale", default="standard", choices=("smoke", "standard"),
                        help="the seeded dataset (default standard)")  # fmt: skip
    parser.add_argument("--server", help="PostgreSQL URL (default: DATABASE_URL or local)")
    parser.add_argument("--out", type=Path, help="also write every run and the summary as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    from bench.database import resolve_server

    server = resolve_server(args.server)
    with tempfile.TemporaryDirectory(prefix="quizbot-compare-") as tmp:
        base = Side(args.base, export(args.base, Path(tmp) / "base"))
        new = (
            Side(args.new, export(args.new, Path(tmp) / "new"))
            if args.new
            else Side("working tree", ROOT)
        )
        report = compare(base, new, server=server, scale=args.scale, runs=args.runs)
    print(render(report, base.name, new.name))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
