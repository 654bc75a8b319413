"""The performance benchmark: incidents per second, latency, memory and checkpoint size on the offline model."""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from it_support_agent.graph.app.checkpoints import CHECKPOINT_FILE, open_checkpointer
from it_support_agent.graph.app.evaluation import percentile
from it_support_agent.incident.context import DEMO_FLEET, Context

SEED_INCIDENTS = (
    "The payment-server-01 is extremely slow and timing out.",
    "search-index-09 is failing to index new documents",
)
GROWTH_INCIDENTS = (
    SEED_INCIDENTS[0],
    "orders-db-01 is refusing writes",  # a full disk: a ticket of its own every time (no storm to join)
)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# What would send a benchmark's tickets to real people or its rows into a shared database: never inherited.
_LIVE_SETTINGS = (
    "IT_SUPPORT_DATABASE_URL",
    "IT_SUPPORT_SIMULATED_STATE",
    "IT_SUPPORT_OUTBOX",
    "IT_SUPPORT_WEBHOOK_URL",
    "IT_SUPPORT_SLACK_WEBHOOK_URL",
    "IT_SUPPORT_PAGERDUTY_ROUTING_KEY",
    "IT_SUPPORT_PAGERDUTY_URL",
)


def isolate_from_live_settings() -> list[str]:
    """Drop the settings that point at real sinks or a shared store from this (benchmark) process; their names."""
    return [name for name in _LIVE_SETTINGS if os.environ.pop(name, None) is not None]


def rss_mib() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Bench:
    """One compiled graph with SQLite checkpoints in a temporary state directory."""

    def __init__(self, directory: Path, fleet: Path = DEMO_FLEET, checkpoints: bool = True) -> None:
        from it_support_agent.graph.builder import compile_graph

        self.state_dir = directory / "state"
        policy = directory / "policy.yaml"
        policy.write_text("restart_cooldown_s: 0\nfleet_restarts_per_hour: 1000000000\n")
        self.context = Context(fleet_file=str(fleet), state_dir=str(self.state_dir), policy_file=str(policy))
        self.app = compile_graph(open_checkpointer(self.state_dir) if checkpoints else None)
        self.count = 0
        self._durability: dict[str, Any] = {"durability": "sync"} if checkpoints else {}

    def incident(self, text: str) -> float:
        """Run one incident on a new thread from the fleet as written; return its latency in ms."""
        (self.state_dir / "fleet-state.json").unlink(missing_ok=True)
        self.count += 1
        started = time.perf_counter()
        self.app.invoke(
            {"incident": text},
            {"configurable": {"thread_id": f"bench-{self.count}"}},
            context=self.context,
            **self._durability,
        )
        return (time.perf_counter() - started) * 1000

    def checkpoint_bytes(self) -> int:
        return _store_bytes(self.state_dir)


def _series(run: Callable[[str], float], incidents: int, texts: Sequence[str]) -> list[float]:
    return [run(texts[index % len(texts)]) for index in range(incidents)]


def throughput(incidents: int, workers: int) -> dict[str, Any]:
    """Sequential (workers=1) or concurrent incidents through one compiled graph."""
    with tempfile.TemporaryDirectory(prefix="itsa-bench-") as directory:
        bench = Bench(Path(directory))
        bench.incident(SEED_INCIDENTS[0])
        rss_start = rss_mib()
        rss_marks: list[float] = []
        started = time.perf_counter()
        if workers == 1:
            latencies = []
            for index in range(incidents):
                latencies.append(bench.incident(SEED_INCIDENTS[index % 2]))
                if (index + 1) % max(1, incidents // 4) == 0:
                    rss_marks.append(round(rss_mib(), 1))
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                latencies = list(pool.map(bench.incident, [SEED_INCIDENTS[i % 2] for i in range(incidents)]))
        elapsed = time.perf_counter() - started
        return {
            "incidents": incidents,
            "workers": workers,
            "incidents_per_s": round(incidents / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50), 2),
            "p95_ms": round(percentile(latencies, 95), 2),
            "rss_start_mib": round(rss_start, 1),
            "rss_marks_mib": rss_marks,
            "checkpoint_bytes_per_incident": round(bench.checkpoint_bytes() / (incidents + 1)),
        }


def _fleet_file(directory: Path, servers: int, log_lines: int) -> Path:
    base = yaml.safe_load(DEMO_FLEET.read_text())["servers"]
    fleet: dict[str, Any] = dict(base)
    payment = dict(base["payment-server-01"])
    filler = [
        f"2026-11-27T09:{i // 60 % 60:02d}:{i % 60:02d}Z INFO request {i} served in {i % 97}ms"
        for i in range(max(0, log_lines - len(payment["logs"])))
    ]
    payment["logs"] = filler + list(payment["logs"])
    fleet["payment-server-01"] = payment
    for index in range(max(0, servers - len(fleet))):
        fleet[f"app-{index:05d}"] = {
            "service": "app",
            "health": {"cpu_percent": 10, "memory_percent": 20, "status": "healthy"},
            "logs": [],
        }
    path = directory / f"fleet-{servers}-{log_lines}.yaml"
    path.write_text(yaml.dump({"servers": fleet}, Dumper=_DUMPER))
    return path


def scaling(parameter: str, values: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    """p50 latency of the seed restart incident as log lines or fleet size grow (fleet load excluded)."""
    rows = []
    for value in values:
        with tempfile.TemporaryDirectory(prefix="itsa-bench-") as directory:
            servers, lines = (value, 5) if parameter == "servers" else (10, value)
            bench = Bench(Path(directory), _fleet_file(Path(directory), servers, lines))
            load_started = time.perf_counter()
            bench.incident(SEED_INCIDENTS[0])
            first_ms = (time.perf_counter() - load_started) * 1000
            latencies = _series(bench.incident, repeats, SEED_INCIDENTS[:1])
            rows.append(
                {
                    parameter: value,
                    "p50_ms": round(statistics.median(latencies), 2),
                    "first_incident_ms": round(first_ms, 1),
                }
            )
    return rows


def _sample(bench: Bench, incidents: int) -> dict[str, float]:
    """p50 and CPU per incident over `incidents` incidents, half restarts, half escalations that file a ticket."""
    cpu_started = time.process_time()
    latencies = _series(bench.incident, incidents, GROWTH_INCIDENTS)
    return {
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "cpu_ms_per_incident": round((time.process_time() - cpu_started) * 1000 / incidents, 2),
    }


ListCommand = Callable[[Sequence[str]], int]


def _time_list(state_dir: Path, command: ListCommand) -> dict[str, float]:
    """`it-support-agent list --json` on the store: in this process (the command's own work) and as a new process
    (what an operator waits for, interpreter start and imports included)."""
    import contextlib
    import io
    import subprocess

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as listed:
        command(["list", "--state-dir", str(state_dir), "--json"])
    in_process_s = time.perf_counter() - started
    rows = len(json.loads(listed.getvalue()))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "it_support_agent", "list", "--state-dir", str(state_dir), "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return {"rows": rows, "in_process_s": round(in_process_s, 3), "command_s": round(time.perf_counter() - started, 3)}


def growth(marks: Sequence[int], sample: int, cli: ListCommand, list_at: int = 10_000) -> dict[str, Any]:
    """Per-incident p50 and CPU as the same store fills with history, `list` (the CLI's `main`) at `list_at`
    incidents, and what the checkpoints cost against the same graph with no checkpointer (the agent's own tables
    are written either way)."""
    rows: list[dict[str, Any]] = []
    listing: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="itsa-growth-") as directory:  # warm the process up elsewhere first
        warm = Bench(Path(directory))
        _series(warm.incident, sample, GROWTH_INCIDENTS)
    with tempfile.TemporaryDirectory(prefix="itsa-growth-") as directory:
        bench = Bench(Path(directory))
        for mark in sorted(marks):
            fill_started = time.perf_counter()
            while bench.count < mark:
                bench.incident(GROWTH_INCIDENTS[bench.count % 2])
            filled_s = time.perf_counter() - fill_started
            if not listing and bench.count >= list_at:
                listing = {"incidents": bench.count, **_time_list(bench.state_dir, cli)}
            rows.append(
                {
                    "history": bench.count,
                    **_sample(bench, sample),
                    "store_bytes_per_incident": round(_store_bytes(bench.state_dir) / max(1, bench.count)),
                    "fill_s": round(filled_s, 1),
                }
            )
        if not listing:
            listing = {"incidents": bench.count, **_time_list(bench.state_dir, cli)}
    return {
        "sample": sample,
        "rows": rows,
        "list": listing,
        "no_checkpointer": _sample_new_store(sample, checkpoints=False),
        "sqlite_checkpointer": _sample_new_store(sample, checkpoints=True),
    }


def _sample_new_store(sample: int, checkpoints: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="itsa-growth-") as directory:
        bench = Bench(Path(directory), checkpoints=checkpoints)
        bench.incident(GROWTH_INCIDENTS[0])
        return _sample(bench, sample)


def _store_bytes(state_dir: Path) -> int:
    return sum(path.stat().st_size for path in state_dir.glob(CHECKPOINT_FILE + "*"))


def render_growth(figures: dict[str, Any]) -> list[str]:
    """The growth figures as lines for the terminal."""
    lines = [
        f"per incident over {figures['sample']} incidents (half restarts, half escalations filing a ticket each), "
        "as the same store fills:"
    ]
    base = figures["rows"][0]
    for row in figures["rows"]:
        lines.append(
            f"  after {row['history']:>6,} incidents: p50 {row['p50_ms']} ms ({row['p50_ms'] / base['p50_ms']:.2f}x), "
            f"p95 {row['p95_ms']} ms, CPU {row['cpu_ms_per_incident']} ms "
            f"({row['cpu_ms_per_incident'] / base['cpu_ms_per_incident']:.2f}x), "
            f"store {row['store_bytes_per_incident']:,} bytes/incident"
        )
    listing = figures["list"]
    lines.append(
        f"list at {listing['incidents']:,} incidents ({listing['rows']:,} rows): {listing['in_process_s']} s in "
        f"process, {listing['command_s']} s as a command (interpreter start and imports included)"
    )
    bare, checked = figures["no_checkpointer"], figures["sqlite_checkpointer"]
    lines.append(
        f"checkpoints cost: p50 {checked['p50_ms']} ms with SQLite checkpoints vs {bare['p50_ms']} ms with none "
        f"(+{checked['p50_ms'] - bare['p50_ms']:.2f} ms), CPU {checked['cpu_ms_per_incident']} vs "
        f"{bare['cpu_ms_per_incident']} ms per incident"
    )
    return lines


def run_benchmark(incidents: int = 1000, concurrency: int = 4, repeats: int = 20) -> dict[str, Any]:
    """Every figure the benchmark prints."""
    return {
        "machine": {"cpus": os.cpu_count(), "python": ".".join(map(str, sys.version_info[:3]))},
        "sequential": throughput(incidents, 1),
        "concurrent": throughput(max(incidents // 4, 1), concurrency),
        "log_lines": scaling("log_lines", (10, 1_000, 10_000, 100_000), repeats),
        "fleet_size": scaling("servers", (10, 100, 1_000, 10_000), repeats),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def render(figures: dict[str, Any]) -> list[str]:
    """The figures as lines for the terminal."""
    lines = [f"machine: {figures['machine']['cpus']} CPUs, Python {figures['machine']['python']}"]
    for name in ("sequential", "concurrent"):
        row = figures[name]
        lines.append(
            f"{name:<10} {row['incidents']} incidents, {row['workers']} worker(s): "
            f"{row['incidents_per_s']} incidents/s, p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, "
            f"checkpoint {row['checkpoint_bytes_per_incident']:,} bytes/incident"
        )
    sequential = figures["sequential"]
    lines.append(
        f"RSS over the sequential run: start {sequential['rss_start_mib']} MiB, "
        f"at each quarter {sequential['rss_marks_mib']} MiB; peak {figures['peak_rss_mib']} MiB"
    )
    for key, label in (("log_lines", "log lines"), ("fleet_size", "servers")):
        column = "log_lines" if key == "log_lines" else "servers"
        lines.append(
            f"latency vs {label}: "
            + ", ".join(
                f"{row[column]:,} -> p50 {row['p50_ms']} ms (first {row['first_incident_ms']} ms)"
                for row in figures[key]
            )
        )
    return lines
