"""An alert storm on `serve` replicas sharing one PostgreSQL database: the burst, the replicas, the checks, figures.

`python -m tests.storm --replicas 1,2,3 --alerts 2000` prints, for each replica count, the throughput and every
check below; `tests/integration/test_storm_replicas.py` runs it with three replicas and asserts the checks.

The fleet: 20 recoverable servers (the demo's saturated payment API, healthy after a restart), 10 indexers that
declare the dependency search-backend-02 and cannot reach it, 60 healthy web servers. The replicas simulate one
fleet (IT_SUPPORT_SIMULATED_STATE), as real replicas share the real servers. The burst (seeded, the same every run):
20 distinct alerts at once for one recoverable server, then new alerts for random servers, repeats of alerts sent
before (Alertmanager's re-sends) and resolved notifications for alerts sent before, spread over the replicas.

What must hold, from how the agent is meant to behave: every alert answered 2xx; nothing left queued, running or
stalled; each run finished once; each recoverable server restarted exactly once (its later alerts find it healthy,
and the shared cooldown forbids a second restart); no ticket that reads a sibling's restart as a crash loop; the
indexers' escalations one parent ticket naming search-backend-02 (its updates are no new tickets).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RECOVERABLE = tuple(f"app-cpu-{index:02d}" for index in range(20))
INDEXERS = tuple(f"search-index-{index:02d}" for index in range(10, 20))
HEALTHY = tuple(f"web-{index:02d}" for index in range(60))
DEPENDENCY = "search-backend-02"
FLEET_LIMIT = 50


def storm_fleet(directory: Path) -> Path:
    demo = yaml.safe_load((REPO / "scenarios" / "demo-fleet.yaml").read_text())["servers"]
    servers: dict[str, Any] = {}
    for name in RECOVERABLE:
        servers[name] = copy.deepcopy(demo["payment-server-01"])
    for name in INDEXERS:
        servers[name] = copy.deepcopy(demo["search-index-09"])
    for name in HEALTHY:
        servers[name] = copy.deepcopy(demo["web-frontend-05"])
    path = directory / "storm-fleet.yaml"
    path.write_text(yaml.safe_dump({"servers": servers}, sort_keys=False))
    return path


def _group(server: str, name: str, status: str, starts_at: str) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}", instance="{server}:9100"}}',
        "status": status,
        "receiver": "agent",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "instance": f"{server}:9100"},
                "annotations": {"summary": f"{name} on {server}"},
                "startsAt": starts_at,
                "fingerprint": f"fp-{server}-{name}",
            }
        ],
    }


def burst(alerts: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the 20 alerts sent at once, the rest in order): new alerts, repeats and resolved notifications."""
    rng = random.Random(seed)
    starts_at = "2026-12-03T10:00:00Z"
    at_once = [_group(RECOVERABLE[0], f"Saturation{index}", "firing", starts_at) for index in range(20)]
    sent: list[dict[str, Any]] = list(at_once)
    rest: list[dict[str, Any]] = []
    servers = RECOVERABLE + INDEXERS + HEALTHY
    for index in range(alerts - len(at_once)):
        roll = rng.random()
        if roll < 0.6 or len(sent) < 50:
            body = _group(rng.choice(servers), f"Alert{index}", "firing", starts_at)
            sent.append(body)
        elif roll < 0.85:
            body = rng.choice(sent)  # Alertmanager sends the group again (repeat_interval, a peer, a retry)
        else:
            fired = rng.choice(sent)
            body = copy.deepcopy(fired)
            body["status"] = "resolved"
            body["alerts"][0]["status"] = "resolved"
        rest.append(body)
    return at_once, rest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A database of its own on the local PostgreSQL, dropped afterwards."""
    import psycopg

    name = f"itsa_storm_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def replicas(count: int, url: str, directory: Path, fleet: Path, workers: int) -> Iterator[list[str]]:
    """`count` serve processes on free 127.0.0.1 ports, each with its own state directory; stopped by PID.

    The policy is the default one but for the fleet-wide limit, raised above the 20 recoverable servers (at the
    default 5 an hour, the rest would be escalated as "fleet_rate", as they should)."""
    policy = directory / "policy.yaml"
    policy.write_text(f"fleet_restarts_per_hour: {FLEET_LIMIT}\n")
    environment = {
        **os.environ,
        "IT_SUPPORT_DATABASE_URL": url,
        "IT_SUPPORT_SIMULATED_STATE": str(directory / "simulated-fleet.json"),
        "PYTHONPATH": str(REPO),
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for replica in range(count):
            port = free_port()
            state = directory / f"replica-{replica}"
            command = [sys.executable, "-m", "it_support_agent", "serve", "--port", str(port), "--state-dir"]
            command += [str(state), "--fleet", str(fleet), "--workers", str(workers), "--policy", str(policy)]
            with (directory / f"replica-{replica}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for url_, process in zip(urls, processes, strict=True):
            _wait(lambda u=url_, p=process: _healthy(u, p, directory), 90, f"{url_} to answer /healthz")
        yield urls
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _healthy(url: str, process: subprocess.Popen[bytes], directory: Path) -> bool:
    if process.poll() is not None:
        logs = "\n".join(path.read_text()[-1500:] for path in sorted(directory.glob("replica-*.log")))
        raise RuntimeError(f"serve at {url} exited with {process.returncode}:\n{logs}")
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait(probe: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.1)


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url + "/alerts", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return int(response.status), dict(json.loads(response.read()))


@dataclass
class StormResult:
    replicas: int
    alerts: int
    answered_2xx: int
    seconds: float
    runs: int
    intake: dict[str, int]
    runs_finished_twice: int
    restarts_per_server: dict[str, int]
    crash_loop_tickets: int
    storm_parent_tickets: int
    storm_updates: int
    tickets: int
    ran_on: frozenset[str] = frozenset()
    """Servers with at least one finished run."""
    ticket_reasons: dict[str, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)

    @property
    def alerts_per_s(self) -> float:
        return self.alerts / self.seconds

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds

    def problems(self) -> list[str]:
        """Every check that failed, as a sentence (none when the storm was handled as it should be)."""
        found = []
        if self.answered_2xx != self.alerts:
            found.append(f"{self.alerts - self.answered_2xx} alert(s) not answered 2xx")
        left = {state: count for state, count in self.intake.items() if state in ("queued", "running", "stalled")}
        if left:
            found.append(f"work left in the intake: {left}")
        if self.runs_finished_twice:
            found.append(f"{self.runs_finished_twice} run(s) finished twice")
        wrong = {server: n for server, n in self.restarts_per_server.items() if n != 1}
        missing = [server for server in RECOVERABLE if server in self.ran_on and server not in self.restarts_per_server]
        if wrong or missing:
            found.append(f"restarts per recoverable server not exactly one: {wrong}, never restarted: {missing}")
        if self.crash_loop_tickets:
            found.append(f"{self.crash_loop_tickets} ticket(s) read a sibling's restart as a crash loop")
        if self.storm_parent_tickets != 1:
            found.append(f"{self.storm_parent_tickets} parent tickets for {DEPENDENCY}, not one")
        return found


def run_storm(replica_count: int, alerts: int, workers: int = 2, senders: int = 8) -> StormResult:
    """Start the replicas on a new database, send the burst, wait until every queue drained, read the store."""
    import psycopg

    at_once, rest = burst(alerts)
    with tempfile.TemporaryDirectory(prefix="itsa-storm-") as temporary, database() as url:
        directory = Path(temporary)
        fleet = storm_fleet(directory)
        with replicas(replica_count, url, directory, fleet, workers) as urls:
            answers: dict[str, int] = {"accepted": 0, "duplicates": 0, "coalesced": 0, "resolved": 0}
            statuses: list[int] = []
            lock = threading.Lock()

            def send(numbered: tuple[int, dict[str, Any]]) -> None:
                index, body = numbered
                status, answer = post(urls[index % len(urls)], body)
                with lock:
                    statuses.append(status)
                    for key in answers:
                        answers[key] += len(answer.get(key, []))

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=len(at_once)) as pool:  # 20 at once, over every replica
                list(pool.map(send, enumerate(at_once)))
            with ThreadPoolExecutor(max_workers=senders) as pool:
                list(pool.map(send, enumerate(rest)))
            with psycopg.connect(url, autocommit=True) as connection:
                _wait(lambda: drained(connection), 600, "every replica's queue to drain")
                seconds = time.perf_counter() - started
                return _read_result(connection, replica_count, alerts, statuses, seconds, answers)


def drained(connection: Any) -> bool:
    """Whether no replica has an alert queued or running (a psycopg connection to the shared database)."""
    row = connection.execute("SELECT COUNT(*) FROM agent_intake WHERE state IN ('queued', 'running')").fetchone()
    return row is not None and row[0] == 0


def _read_result(
    connection: Any, replica_count: int, alerts: int, statuses: Sequence[int], seconds: float, answers: dict[str, int]
) -> StormResult:
    intake = dict(connection.execute("SELECT state, COUNT(*) FROM agent_intake GROUP BY state").fetchall())
    finished = connection.execute(
        "SELECT thread_id, COUNT(*) FROM agent_audit WHERE kind = 'alert_run_finished' GROUP BY thread_id"
    ).fetchall()
    restarts = dict(connection.execute("SELECT server_id, COUNT(*) FROM agent_restarts GROUP BY server_id").fetchall())
    ran_on = {row[0] for row in connection.execute("SELECT DISTINCT server_id FROM agent_intake WHERE state = 'done'")}
    tickets = [json.loads(row[0]) for row in connection.execute("SELECT ticket FROM agent_tickets").fetchall()]
    storm = [ticket for ticket in tickets if ticket.get("dependency") == DEPENDENCY]
    updates = [ticket for ticket in storm if ticket.get("kind") == "ticket_update"]
    looping = [
        ticket for ticket in tickets if "crash loop" in str(ticket.get("reason", "")) + str(ticket.get("summary", ""))
    ]
    return StormResult(
        replicas=replica_count,
        alerts=alerts,
        answered_2xx=sum(1 for status in statuses if 200 <= status < 300),
        seconds=seconds,
        runs=len(finished),
        intake={str(state): int(count) for state, count in intake.items()},
        runs_finished_twice=sum(1 for _, count in finished if count > 1),
        restarts_per_server={str(server): int(count) for server, count in restarts.items()},
        crash_loop_tickets=len(looping),
        storm_parent_tickets=len(storm) - len(updates),
        storm_updates=len(updates),
        tickets=len(tickets) - len(updates),
        ran_on=frozenset(str(server) for server in ran_on if server),
        ticket_reasons=dict(
            Counter(f"{t.get('server_id', '')[:6]}: {str(t.get('reason', ''))[:60]}" for t in tickets if t not in storm)
        ),
        answers=answers,
    )


def describe(result: StormResult) -> str:
    problems = result.problems()
    return (
        f"{result.replicas} replica(s): {result.alerts} alerts in {result.seconds:.1f} s = "
        f"{result.alerts_per_s:.1f} alerts/s, {result.runs} incident runs = {result.runs_per_s:.1f} runs/s; "
        f"answers {result.answers}; intake {result.intake}; restarts {sum(result.restarts_per_server.values())} "
        f"on {len(result.restarts_per_server)} servers; tickets {result.tickets} (parent tickets for "
        f"{DEPENDENCY}: {result.storm_parent_tickets}, its updates {result.storm_updates}); "
        + ("all checks hold" if not problems else "FAILED: " + "; ".join(problems))
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.storm", description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2,3", help="replica counts to run, comma-separated")
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="workers per replica")
    args = parser.parse_args(argv)
    failed = False
    for count in (int(part) for part in args.replicas.split(",")):
        result = run_storm(count, args.alerts, args.workers)
        print(describe(result), flush=True)
        for reason, number in sorted(result.ticket_reasons.items(), key=lambda item: -item[1]):
            print(f"  {number:>4} ticket(s) {reason}")
        failed = failed or bool(result.problems())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
