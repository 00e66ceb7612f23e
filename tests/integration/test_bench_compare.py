"""`python -m bench.compare`: two versions of the code alternated on the answer burst,
each on fresh copies of its own seeded database. No timing is asserted: only that each
version ran its bursts in alternating order, the figures came back, and no database of
the comparison is left behind."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

pytest.importorskip("psutil")

from bench import compare
from quizbot.cli import run_async
from quizbot.db_admin import asyncpg_args
from tests.database import server_url


def _left_over() -> list[str]:
    async def names() -> list[str]:
        conn = await asyncpg.connect(**asyncpg_args(server_url()))
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'quizbot_bench_compare%'"
            )
        finally:
            await conn.close()
        return [r["datname"] for r in rows]

    result: list[str] = run_async(names())
    return result


def test_a_revision_and_the_working_tree_alternate_on_copies_of_their_own_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "compare.json"
    args = ["HEAD", "--runs", "2", "--scale", "smoke", "--server", server_url()]
    assert compare.main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    runs = [line.split(":")[0] for line in printed.splitlines() if line.startswith("run ")]
    # The base first in even rounds, the new version first in odd ones.
    assert runs == ["run 1/2 HEAD", "run 1/2 working tree", "run 2/2 working tree", "run 2/2 HEAD"]
    assert "| working tree lower in |" in printed
    report = json.loads(out.read_text())
    for name in ("HEAD", "working tree"):
        assert len(report["results"][name]) == 2
        for result in report["results"][name]:
            assert result["players"] == report["players"] == 20  # the smoke scale's most
            assert result["cpu_us_per_answer"] > 0 and result["wall_ms_per_burst"] > 0
    assert report["summary"]["new_lower"]["wall_ms_per_burst"][1] == 2
    assert _left_over() == []  # the seeds and every copy dropped


def test_an_unknown_revision_is_refused_with_git_s_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="git archive no-such-revision"):
        compare.export("no-such-revision", tmp_path / "x")
