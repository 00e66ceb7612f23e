"""The comparison's summary and table (`bench.compare`), from made-up runs."""

from __future__ import annotations

from bench.compare import render, summary


def _run(cpu: float, server: float | None, wall: float) -> dict[str, float | None]:
    return {"cpu_us_per_answer": cpu, "server_cpu_us_per_answer": server, "wall_ms_per_burst": wall}


def test_medians_and_the_pairs_where_the_new_version_was_lower() -> None:
    runs = {
        "base": [_run(100, 200, 50), _run(110, 220, 60), _run(120, 240, 70)],
        "new": [_run(105, 180, 45), _run(100, 230, 55), _run(130, 210, 80)],
    }
    s = summary(runs, "base", "new")
    assert s["runs"] == 3
    assert s["medians"]["base"] == {
        "cpu_us_per_answer": 110,
        "server_cpu_us_per_answer": 220,
        "wall_ms_per_burst": 60,
    }
    assert s["medians"]["new"]["server_cpu_us_per_answer"] == 210
    assert s["new_lower"] == {
        "cpu_us_per_answer": [1, 3],
        "server_cpu_us_per_answer": [2, 3],
        "wall_ms_per_burst": [2, 3],
    }


def test_a_server_not_measured_is_left_out_not_counted_as_zero() -> None:
    runs = {"base": [_run(100, None, 50), _run(100, 200, 50)], "new": [_run(90, 150, 40)] * 2}
    s = summary(runs, "base", "new")
    assert s["medians"]["base"]["server_cpu_us_per_answer"] == 200
    assert s["new_lower"]["server_cpu_us_per_answer"] == [1, 1]
    table = render({"players": 240, "scale": "standard", "summary": s}, "base", "new")
    assert "| base | 100.0 | 200.0 | 50.0 |" in table
    assert "| new lower in | 2 of 2 | 1 of 1 | 2 of 2 |" in table
    none = {"base": [_run(100, None, 50)], "new": [_run(90, None, 40)]}
    assert "| base | 100.0 | – | 50.0 |" in render(
        {"players": 20, "scale": "smoke", "summary": summary(none, "base", "new")}, "base", "new"
    )
