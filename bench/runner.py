"""`quizbot bench`: seed a throwaway database, run every variant on its own copy, report.

Order of a run: create and migrate the seed database, seed the scale, then for
each variant clone the seed (CREATE DATABASE ... TEMPLATE) so all start from
identical data, run the variant in a child process, check integrity, drop the
clone. Then the hot queries (indexed vs unindexed), pgbench, and the reports.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import platform
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from sqlalchemy.engine import make_url

from bench import burst, database, dataset, layers, queries, report
from bench.config import BenchConfig
from bench.raw import QUIZBOT_SESSION_BASE, REPLAY_SESSION_BASE
from bench.variant import VariantSpec, run_variant


@dataclass(frozen=True)
class Ablation:
    """One measure switched off: by Settings overrides, or by dropping the hot indexes."""

    measure: str
    overrides: dict[str, Any]
    drop_indexes: bool = False

    @property
    def variant(self) -> str:
        return "quizbot-no-" + self.measure.replace(" ", "-")

    def how(self) -> str:
        if self.drop_indexes:
            return "hot indexes dropped"
        return ", ".join(f"{k.upper()}={v}" for k, v in self.overrides.items())


ABLATIONS = (
    Ablation("group commit", {"answer_group_commit": False}),
    Ablation("single-statement stats", {"stats_single_statement": False}),
    Ablation("cache", {"cache_enabled": False}),
    Ablation("statement cache", {"db_statement_cache_size": 0}),
    Ablation("answer generic plans", {"answer_generic_plans": False}),
    Ablation("lifo pool", {"db_pool_lifo": False}),
    # The pool as it was before 2026-12-08 (40): what the smaller default buys.
    Ablation("small pool", {"db_pool_size": 40}),
    Ablation("indexes", {}, drop_indexes=True),
)


GROUP_COMMIT_NOTE = (
    "Group-committed answers (ANSWER_GROUP_COMMIT, the default): the committer's background "
    "task writes every answer that arrived within ANSWER_GROUP_COMMIT_MS in one transaction of "
    "2-3 statements. Each flush is recorded once (`batches` in each stage of the JSON: batches, "
    "answers, size, statements and round trips per batch and per answer, flush time), and each "
    "answer is charged an equal share of its batch: an answer's statements = its own (e.g. a "
    "question cache miss) + the batch's statements / the answers in the batch; its round trips "
    "add the batch's BEGIN/COMMIT and pre-pings the same way, and its pool wait is the batch's "
    "whole wait. An answer's latency runs from the click to its batch's commit. The raw "
    "replay runs each batch once with quizbot's membership and statements (session ids "
    "remapped inside the arrays), in the transaction(s) quizbot used, one flush at a time "
    "(quizbot overlaps up to ANSWER_FLUSHES of them, a member's answers never in two): a "
    "batch is flushed once all its answers have arrived in the replay and the window has "
    "passed since the first; its answers are acknowledged at its commit, and the raw "
    "integrity check covers them. The replay clicks at quizbot's click times (from the stage's "
    "start; at once when the player's previous command is still running), so a batch's "
    "answers arrive together as they did in quizbot. Caveat: the replay keeps quizbot's batch "
    "membership, so where quizbot's flushes are slower than answers arrive (the top loads), "
    "its batches grow to the answers that queued during the previous flush and the replayed "
    "answers wait for the same batch-mates: raw's answer latency then includes quizbot's "
    "queueing, and the stages' batch flush times (`flush_p50_ms`, `flush_p95_ms`) are the "
    "like-for-like comparison of the same statements. With ANSWER_GROUP_COMMIT=false each "
    "answer is one command with its own statements, as every other command."
)


def missing_settings(overrides: dict[str, Any]) -> list[str]:
    """Override names that `Settings` does not have (the ablation skips those)."""
    from quizbot.config import Settings

    return sorted(k for k in overrides if k not in Settings.model_fields)


def machine_info() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _say(console: Console, message: str) -> None:
    console.print(f"[bold cyan]bench[/bold cyan] {message}")


SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "synchronous_commit",
    "fsync",
    "max_connections",
    "jit",
    "shared_preload_libraries",
)


async def _server_info(url: str) -> dict[str, Any]:
    """Version, the settings that matter here, and whether pg_stat_statements can be used."""
    conn = await asyncpg.connect(**database.asyncpg_args(url))
    try:
        version = str(await conn.fetchval("SHOW server_version"))
        rows = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings "
            "WHERE name = ANY($1::text[]) ORDER BY name",
            list(SERVER_SETTINGS),
        )
        settings = {r["name"]: r["value"] or "''" for r in rows}
        preload = settings.get("shared_preload_libraries", "")
        pss = (
            "pg_stat_statements is preloaded (not yet reported by the benchmark)."
            if "pg_stat_statements" in preload
            else "pg_stat_statements is not available: it needs "
            "`shared_preload_libraries = 'pg_stat_statements'` and a restart."
        )
        return {"postgres": version, "server_settings": settings, "pg_stat_statements": pss}
    finally:
        await conn.close()


async def _prepare_clone(
    url: str, *, drop_indexes: bool, session_base: int, legacy: bool = False
) -> None:
    """Make a clone ready for a variant: its own session id range, indexes as asked, and
    for the legacy variant none of quizbot's triggers."""
    if drop_indexes:
        await dataset.drop_hot_indexes(database.asyncpg_args(url))
    if legacy:
        await dataset.disable_kept_counts(database.asyncpg_args(url))
    conn = await asyncpg.connect(**database.asyncpg_args(url))
    try:
        await conn.execute(f"ALTER TABLE quiz_sessions ALTER COLUMN id RESTART WITH {session_base}")
    finally:
        await conn.close()


def _in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    # A fresh process per variant (and for the burst): its own loop, CPU time, peak RSS
    # and garbage-collector settings.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


class Runner:
    """One `quizbot bench` run."""

    def __init__(self, config: BenchConfig, console: Console, command: str = "") -> None:
        self.config = config
        self.console = console
        self.command = command or "quizbot bench"
        self.server = database.resolve_server(config.server_url)
        self.notes: list[str] = []

    def _loop(self, coro: Any) -> Any:
        from quizbot.cli import run_async

        return run_async(coro)

    def _seed(self) -> tuple[str, dataset.SeedReport]:
        from quizbot.migrations import upgrade

        cfg = self.config
        base = self._loop(database.create_database(self.server, f"{cfg.scale.name}_seed"))
        _say(self.console, f"seeding {cfg.scale.name} into {make_url(base).database}")
        upgrade(base)
        from rich.progress import Progress

        with Progress(console=self.console, transient=True, disable=not cfg.progress) as bar:
            task = bar.add_task("seeding", total=None)

            def progress(step: str, done: int, total: int) -> None:
                bar.update(task, description=f"seeding: {step}", completed=done, total=total)

            seeded = self._loop(
                dataset.seed(database.asyncpg_args(base), cfg.scale, progress=progress)
            )
        _say(
            self.console,
            f"seeded {seeded.members:,} members, {seeded.past_answers:,} answers "
            f"in {seeded.seconds:.1f} s",
        )
        return base, seeded

    def _clone(
        self, base: str, label: str, *, drop_indexes: bool, session_base: int, legacy: bool = False
    ) -> str:
        url: str = self._loop(database.create_database(self.server, label, template=base))
        self._loop(
            _prepare_clone(url, drop_indexes=drop_indexes, session_base=session_base, legacy=legacy)
        )
        return url

    def _drop(self, url: str) -> None:
        if not self.config.keep_databases:
            self._loop(database.drop_database(url))

    def _variant(
        self,
        base: str,
        name: str,
        kind: str,
        *,
        overrides: dict[str, Any] | None = None,
        drop_indexes: bool = False,
        trace_path: str | None = None,
        note: str = "",
        scale: Any = None,
        profile_path: str | None = None,
        capacity: bool = False,
    ) -> dict[str, Any]:
        cfg = self.config
        base_id = REPLAY_SESSION_BASE if kind == "raw" else QUIZBOT_SESSION_BASE
        url = self._clone(
            base, kind, drop_indexes=drop_indexes, session_base=base_id, legacy=kind == "legacy"
        )
        _say(self.console, f"variant [bold]{name}[/bold]")
        spec = VariantSpec(
            name=name,
            kind=kind,
            url=url,
            scale=scale or cfg.scale,
            seed=cfg.seed,
            give_up_p95_s=cfg.give_up_p95_s,
            overrides=overrides or {},
            trace_path=trace_path,
            progress=cfg.progress,
            pool_size=cfg.pool_size,
            max_overflow=cfg.max_overflow,
            note=note,
            profile_path=profile_path,
            flood_players=0 if profile_path else min(cfg.flood_players, max(cfg.scale.players)),
            capacity_players=cfg.scale.capacity_players if capacity else (),
        )
        try:
            result = _in_child(run_variant, spec)
        finally:
            self._drop(url)
        ran = report.all_stages(result)
        top = ran[-1] if ran else None
        status = "[green]integrity ok[/green]"
        if not result["integrity"]["passed"]:
            status = f"[red bold]INTEGRITY FAILED {result['integrity']['failures']}[/red bold]"
        if top:
            _say(
                self.console,
                f"  {name}: up to {top['players']} players, p95 {top['all']['p95_ms']:.1f} ms, "
                f"{top['all']['throughput']:.0f} commands/s; {status}",
            )
        return result

    def _answer_burst(self, base: str) -> dict[str, Any] | None:
        """`bench.burst` on a clone of its own (it writes answers), in a process of its
        own; None, with a note, when it fails: the run's other results still count."""
        cfg = self.config
        players = min(burst.PLAYERS, max(cfg.scale.players))
        _say(self.console, f"an answer burst of {players} players, measured alone")
        url = self._clone(base, "burst", drop_indexes=False, session_base=QUIZBOT_SESSION_BASE)
        try:
            return _in_child(burst.run, url, players)
        except Exception as error:
            self.notes.append(f"The answer burst (`bench/burst.py`) failed: {error!r}.")
            _say(self.console, f"answer burst failed: {error!r}")
            return None
        finally:
            self._drop(url)

    def _hot_queries(self, base: str) -> dict[str, Any]:
        cfg = self.config
        # At the large scale an unindexed run takes 0.1-0.6 s, and a median of 3 runs
        # is at the mercy of one slow run.
        repeats = {"smoke": 5, "standard": 10}.get(cfg.scale.name, 15)
        _say(self.console, "hot queries: indexed vs unindexed (EXPLAIN ANALYZE)")
        unindexed_url = self._clone(
            base, "noindex", drop_indexes=True, session_base=QUIZBOT_SESSION_BASE
        )
        try:
            indexed = self._loop(queries.measure(base, cfg.scale, repeats))
            unindexed = self._loop(queries.measure(unindexed_url, cfg.scale, repeats, before=True))
        finally:
            self._drop(unindexed_url)
        _say(self.console, "own rank at the top, middle and bottom: counted, and mirrored")
        own = self._loop(queries.own_rank(base, cfg.scale, max(repeats, 10), cfg.redis_url))
        return {
            "own_rank": own,
            "scale": cfg.scale.name,
            "repeats": repeats,
            "indexed": indexed,
            "unindexed": unindexed,
            "comparison": queries.compare(indexed, unindexed),
            "notes": indexed["notes"],
            "dropped_indexes": list(dataset.HOT_INDEXES),
        }

    def _profile(self, base: str) -> str:
        """quizbot under cProfile at the top load, for a short stage; returns the report path."""
        cfg = self.config
        top = cfg.scale.players[-1]
        scale = replace(cfg.scale, players=(top,), stage_seconds=min(cfg.scale.stage_seconds, 10))
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        path = cfg.out_dir / f"bench-{cfg.scale.name}-profile.txt"
        self._variant(
            base,
            "quizbot-profiled",
            "quizbot",
            scale=scale,
            profile_path=str(path),
            note="quizbot under cProfile (slower); only the profile is kept.",
        )
        return str(path)

    def run(
        self, *, only_queries: bool = False, ablation: bool = True, profile: bool = False
    ) -> int:
        """Run everything the config asks for; returns the exit status (1: integrity failed)."""
        cfg = self.config
        began = time.perf_counter()
        started = dt.datetime.now(dt.UTC)
        machine = machine_info()
        machine.update(self._loop(_server_info(self.server)))
        base, seeded = self._seed()
        variants: list[dict[str, Any]] = []
        ablations: list[dict[str, Any]] = []
        hot: dict[str, Any] | None = None
        pg: dict[str, Any] | None = None
        statement_layers: list[dict[str, Any]] | None = None
        answer_burst: dict[str, Any] | None = None
        try:
            with tempfile.TemporaryDirectory(prefix="quizbot-bench-") as tmp:
                trace = str(Path(tmp) / "quizbot-trace.pickle")
                wanted = set(cfg.variants)
                if not only_queries:
                    if "quizbot" in wanted and "raw" in wanted:
                        # Recording every statement with its parameters for the replay
                        # costs quizbot CPU and memory: this run records, and the measured
                        # `quizbot` run below does not.
                        variants.append(
                            self._variant(
                                base,
                                "quizbot-traced",
                                "quizbot",
                                trace_path=trace,
                                note="quizbot as below, recording every statement and its "
                                "parameters for the raw replay (the recording's cost "
                                "included).",
                            )
                        )
                    if "quizbot" in wanted:
                        variants.append(
                            self._variant(
                                base,
                                "quizbot",
                                "quizbot",
                                note="quizbot's services as the cogs call them, default settings.",
                                capacity=True,
                            )
                        )
                    if "raw" in wanted and "quizbot" in wanted:
                        variants.append(
                            self._variant(
                                base,
                                "raw",
                                "raw",
                                trace_path=trace,
                                note="the statements of the quizbot-traced run replayed on a "
                                "bare asyncpg pool (no reset query at release).",
                            )
                        )
                    if "legacy" in wanted:
                        variants.append(
                            self._variant(
                                base,
                                "legacy",
                                "legacy",
                                drop_indexes=True,
                                note="bench/legacy.py: psycopg2 ThreadedConnectionPool(1, 10) "
                                "called on the event loop, N+1 reads, a temporary table per "
                                "batch update, no hot indexes, no cache, none of quizbot's "
                                "triggers.",
                                capacity=True,
                            )
                        )
                    if ablation and "quizbot" in wanted:
                        for ab in ABLATIONS:
                            skipped = missing_settings(ab.overrides)
                            entry = {
                                "measure": ab.measure,
                                "variant": ab.variant,
                                "how": ab.how(),
                                "overrides": {k: repr(v) for k, v in ab.overrides.items()},
                            }
                            if skipped:
                                entry["skipped"] = f"Settings has no field {', '.join(skipped)} yet"
                                _say(self.console, f"ablation {ab.measure}: {entry['skipped']}")
                            else:
                                variants.append(
                                    self._variant(
                                        base,
                                        ab.variant,
                                        "quizbot",
                                        overrides=ab.overrides,
                                        drop_indexes=ab.drop_indexes,
                                        note=f"quizbot with {ab.measure} switched off "
                                        f"({ab.how()}).",
                                    )
                                )
                            ablations.append(entry)
                if any(v["kind"] in ("quizbot", "raw") for v in variants):
                    self.notes.append(GROUP_COMMIT_NOTE)
                if profile and not only_queries:
                    self.notes.append(
                        "cProfile of quizbot at the top load (a separate, slower run): "
                        f"`{Path(self._profile(base)).name}`."
                    )
                if "quizbot" in wanted and not only_queries:
                    answer_burst = self._answer_burst(base)
                if "raw" in wanted and not only_queries:
                    _say(self.console, "one statement through each layer")
                    statement_layers = self._loop(layers.measure(base, cfg.scale))
                if cfg.explain:
                    hot = self._hot_queries(base)
                if "pgbench" in wanted and not only_queries:
                    from bench import pgbench

                    _say(self.console, "pgbench")
                    url = self._clone(
                        base, "pgbench", drop_indexes=False, session_base=QUIZBOT_SESSION_BASE
                    )
                    try:
                        pg = pgbench.run(url, cfg.scale, cfg.pgbench_seconds)
                    finally:
                        self._drop(url)
        finally:
            if not cfg.keep_databases:
                self._drop(base)
            else:
                _say(self.console, f"kept the seed database {base}")
        machine["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        results: dict[str, Any] = {
            "command": self.command,
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - began,
            "only_queries": only_queries,
            "config": {
                **{k: v for k, v in asdict(cfg).items() if k not in ("scale", "out_dir")},
                "scale": asdict(cfg.scale),
                "out_dir": str(cfg.out_dir),
                "server_url": None,  # never written out: may hold a password
            },
            "machine": machine,
            "seed": asdict(seeded),
            "variants": variants,
            "ablations": ablations,
            "hot_queries": hot,
            "statement_layers": statement_layers,
            "answer_burst": answer_burst,
            "pgbench": pg,
            "notes": self.notes,
        }
        results["claims"] = report.claims(results)
        paths = report.write(results, cfg.out_dir)
        report.terminal(results, self.console)
        for kind, path in paths.items():
            _say(self.console, f"wrote {kind}: {path}")
        failed = [v["name"] for v in variants if not v["integrity"]["passed"]]
        if failed:
            self.console.print(
                f"[red bold]INTEGRITY CHECK FAILED[/red bold] for {', '.join(failed)}: "
                "acknowledged answers or totals disagree with the database (see the report)."
            )
            return 1
        if variants:
            _say(self.console, "[green]integrity check passed for every variant[/green]")
        return 0


def run(
    config: BenchConfig,
    *,
    only_queries: bool = False,
    ablation: bool | None = None,
    console: Console | None = None,
    command: str = "",
    profile: bool = False,
) -> int:
    """Run the benchmark; ablations default to on except at the smoke scale."""
    if ablation is None:
        ablation = config.scale.name != "smoke"
    console = console or Console(stderr=True)
    return Runner(config, console, command).run(
        only_queries=only_queries, ablation=ablation, profile=profile
    )
