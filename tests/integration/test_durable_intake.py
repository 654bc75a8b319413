"""Nothing accepted is lost: `serve` killed (SIGKILL) or stopped (SIGTERM) in the middle of a burst of alerts.

A real `serve` process takes batches of Alertmanager webhooks; it is killed part way, started again, and the rest
of the burst is sent (as Alertmanager would re-send what it got no answer for). Every alert that was answered 202
runs to its end exactly once, the recoverable server is restarted once, and every escalation files one ticket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from it_support_agent.tools import audit
from it_support_agent.tools.outbox import read_outbox
from it_support_agent.tools.store import open_store
from tests.integration.services import free_port, http_ok, wait_until

REPO = Path(__file__).resolve().parents[2]
BATCH = 10


def _alerts(count: int) -> list[dict[str, Any]]:
    """A burst: mostly servers outside the fleet (escalated), 20 alerts about one recoverable server, repeats."""
    alerts = []
    for index in range(count):
        if index % 50 == 7:
            instance, name = "payment-server-01:9100", f"PaymentSlow{index}"
        else:
            instance, name = f"10.{index // 250}.{index % 250}.9:9100", "HostDown"
        alerts.append(
            {
                "status": "firing",
                "labels": {"alertname": name, "instance": instance},
                "annotations": {"summary": "slow and timing out"},
                "startsAt": "2026-11-27T10:00:00Z",
                "fingerprint": f"fp-{index}",
            }
        )
    return alerts


def _post(url: str, alerts: list[dict[str, Any]], group: int) -> dict[str, Any] | None:
    body = {"version": "4", "groupKey": f"g{group}", "status": "firing", "receiver": "agent", "alerts": alerts}
    request = urllib.request.Request(url + "/alerts", data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read())) if response.status == 202 else None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


class Burst:
    """Sends the batches in order from a thread; remembers what was acknowledged and where it stopped."""

    def __init__(self, url: str, batches: list[list[dict[str, Any]]], start: int = 0) -> None:
        self.url, self.batches, self.next = url, batches, start
        self.acknowledged: list[str] = []
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        while self.next < len(self.batches):
            answer = _post(self.url, self.batches[self.next], self.next)
            if answer is None:
                return  # no answer: the process is gone; the batch is sent again after the restart
            self.acknowledged += [item["thread_id"] for item in answer["accepted"] + answer["coalesced"]]
            self.next += 1


def _serve(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IT_SUPPORT_STATE_DIR": str(state_dir)}
    command = [sys.executable, "-m", "it_support_agent", "serve", "--port", str(port), "--workers", "2"]
    with (state_dir / "serve.log").open("ab") as log:  # a file, not a pipe nobody reads: a full pipe blocks serve
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "serve to listen")
    return process


def _wait_or_dump(process: subprocess.Popen[bytes], state_dir: Path) -> None:
    """Wait for serve to exit; if it does not, have it print its threads' stacks and fail with them."""
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(2)
        process.kill()
        process.wait()
        log = (state_dir / "serve.log").read_text(encoding="utf-8", errors="replace")
        pytest.fail("serve did not exit; its threads:\n" + log[-12000:])


def _burst_across_a_stop(state_dir: Path, count: int, stop_after: int, how: signal.Signals) -> list[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    batches = [_alerts(count)[start : start + BATCH] for start in range(0, count, BATCH)]
    process = _serve(state_dir, port)
    try:
        first = Burst(url, batches)
        first.thread.start()
        wait_until(lambda: len(first.acknowledged) >= stop_after, 120, f"{stop_after} alerts to be acknowledged")
        process.send_signal(how)
        _wait_or_dump(process, state_dir)
        first.thread.join(30)
        assert not first.thread.is_alive()
        assert first.next < len(batches), "the stop came after the burst had ended"
        left = open_store(state_dir).intake_counts()
        assert left.get("queued", 0) + left.get("running", 0) > 0, "the stop came after the work had ended"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    process = _serve(state_dir, port)
    try:
        rest = Burst(url, batches, start=first.next)
        rest.thread.start()
        rest.thread.join(300)
        assert rest.next == len(batches)
        store = open_store(state_dir)
        wait_until(
            lambda: store.intake_counts().get("queued", 0) + store.intake_counts().get("running", 0) == 0,
            300,
            "every accepted alert to run",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _wait_or_dump(process, state_dir)
    assert process.returncode == 0
    return first.acknowledged + rest.acknowledged


def _assert_each_accepted_alert_ran_once(state_dir: Path, acknowledged: list[str]) -> None:
    store = open_store(state_dir)
    rows = {row["thread_id"]: row for row in store.intake_rows()}
    assert set(acknowledged) <= set(rows)
    assert {rows[thread]["state"] for thread in acknowledged} <= {"done", "coalesced"}
    ran = [thread for thread in acknowledged if rows[thread]["state"] == "done"]
    finished = Counter(event["thread_id"] for event in audit.events(state_dir) if event["kind"] == "alert_run_finished")
    assert all(finished[thread] == 1 for thread in ran), [t for t in ran if finished[t] != 1][:5]
    assert sum(finished.values()) == len(rows) - sum(row["state"] == "coalesced" for row in rows.values())
    restarts = [entry for entry in store.restart_history() if entry["server_id"] == "payment-server-01"]
    assert len(restarts) == 1
    escalated = [thread for thread in ran if rows[thread]["outcome"] == "escalate"]
    kept = Counter(ticket["thread_id"] for ticket in store.tickets())
    exported = Counter(ticket["thread_id"] for ticket in read_outbox(state_dir / "tickets.jsonl"))
    assert all(kept[thread] == 1 for thread in escalated)
    assert all(exported[thread] == 1 for thread in escalated), [t for t in escalated if exported[t] != 1][:5]


@pytest.mark.parametrize(("how", "count", "stop_after"), [(signal.SIGKILL, 1000, 300), (signal.SIGTERM, 1000, 300)])
def test_every_accepted_alert_runs_exactly_once_across_a_stop(
    state_dir: Path, how: signal.Signals, count: int, stop_after: int
) -> None:
    acknowledged = _burst_across_a_stop(state_dir, count, stop_after, how)
    assert len(set(acknowledged)) == len(acknowledged) >= count - BATCH  # at most the batch in flight was a repeat
    _assert_each_accepted_alert_ran_once(state_dir, acknowledged)
