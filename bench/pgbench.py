"""The server's own ceiling on this machine: `pgbench` on the benchmark's database.

Three short runs on a copy of the seeded database: the built-in select-only
script (`-S`, after `pgbench -i` adds its tables), the built-in TPC-B-like
script, and a custom script over quizbot's schema (a leaderboard read and an
answer-sized update), all with prepared statements.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.config import Scale
from bench.database import libpq_dsn
from bench.dataset import GUILD_BASE, USER_BASE


def find_pgbench() -> str | None:
    """pgbench on PATH, else in the Debian/Ubuntu PostgreSQL directories."""
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def _custom_script(scale: Scale) -> str:
    members = scale.members
    return "\n".join(
        [
            f"\\set i random(1, {members})",
            f"\\set g {GUILD_BASE} + 1 + (:i % {scale.guilds})",
            f"\\set u {USER_BASE} + :i",
            "SELECT user_id, display_name, points FROM guild_members WHERE guild_id = :g "
            "ORDER BY points DESC, user_id LIMIT 11;",
            "UPDATE guild_members SET points = points + 0, answered = answered + 0 "
            "WHERE guild_id = :g AND user_id = :u;",
            "",
        ]
    )


_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
_LAT = re.compile(r"latency average = ([0-9.]+) ms")


def _parse(output: str) -> dict[str, float | None]:
    tps = _TPS.search(output)
    lat = _LAT.search(output)
    return {
        "tps": float(tps.group(1)) if tps else None,
        "latency_avg_ms": float(lat.group(1)) if lat else None,
    }


def run(url: str, scale: Scale, seconds: int, clients: int = 8) -> dict[str, Any]:
    """Run the three scripts; returns their tps and mean latency, or why they did not run."""
    exe = find_pgbench()
    if exe is None:
        return {"skipped": "pgbench not found (install postgresql-client)"}
    dsn = libpq_dsn(url)
    results: dict[str, Any] = {
        "clients": clients,
        "threads": 2,
        "seconds": seconds,
        "runs": {},
        "script": _custom_script(scale),
    }
    init = subprocess.run(
        [exe, "-i", "-q", "-s", "1", dsn], capture_output=True, text=True, check=False
    )
    if init.returncode != 0:
        return {"skipped": f"pgbench -i failed: {init.stderr.strip()[-300:]}"}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "quizbot.sql"
        script.write_text(_custom_script(scale))
        runs = {
            "select-only (-S)": ["-S"],
            "tpcb-like": [],
            "quizbot leaderboard + update": ["-f", str(script)],
        }
        for name, extra in runs.items():
            cmd = [exe, "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds)]
            done = subprocess.run([*cmd, *extra, dsn], capture_output=True, text=True, check=False)
            entry: dict[str, Any] = _parse(done.stdout)
            shown = [Path(x).name if x == str(script) else x for x in extra]
            entry["command"] = " ".join(["pgbench", *cmd[1:], *shown, "<db>"])
            if done.returncode != 0:
                entry["error"] = done.stderr.strip()[-300:]
            results["runs"][name] = entry
    return results
