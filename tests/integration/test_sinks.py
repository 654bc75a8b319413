"""Escalation sinks against a local HTTP receiver: payload shapes, bounded retries, spool and flush exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.services import Receiver, free_port
from tools.outbox import TicketDesk, read_outbox

REPO = Path(__file__).resolve().parents[2]
INCIDENT = "search-index-09 stopped indexing"


def configure(monkeypatch: pytest.MonkeyPatch, base_url: str, attempts: int = 3) -> None:
    settings = {
        "IT_SUPPORT_WEBHOOK_URL": f"{base_url}/webhook", "IT_SUPPORT_WEBHOOK_TOKEN": "t0ken",
        "IT_SUPPORT_SLACK_WEBHOOK_URL": f"{base_url}/slack",
        "IT_SUPPORT_PAGERDUTY_ROUTING_KEY": "R0UTING", "IT_SUPPORT_PAGERDUTY_URL": f"{base_url}/pagerduty",
        "IT_SUPPORT_SINK_TIMEOUT_S": "2", "IT_SUPPORT_SINK_ATTEMPTS": str(attempts),
        "IT_SUPPORT_SINK_BACKOFF_S": "0.01",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def test_webhook_slack_and_pagerduty_payloads(runner: Any, monkeypatch: pytest.MonkeyPatch,
                                              state_dir: Path) -> None:
    with Receiver() as receiver:
        configure(monkeypatch, receiver.url)
        result = runner().run(INCIDENT)
    ticket = result["ticket"]
    assert result["outcome"] == "escalate" and ticket["delivery"]["status"] == "delivered"
    assert ticket["delivery"]["sinks"] == {"outbox": "delivered", "webhook": "delivered", "slack": "delivered",
                                           "pagerduty": "delivered"}

    [(_, headers, webhook)] = [request for request in receiver.requests if request[0] == "/webhook"]
    assert webhook["id"] == webhook["dedup_key"] == ticket["id"]
    assert webhook["severity"] == ticket["severity"] and webhook["evidence"]["category"] == "dependency_failure"
    assert headers["Idempotency-Key"] == ticket["id"] and headers["Authorization"] == "Bearer t0ken"

    [slack] = receiver.bodies("/slack")
    assert ticket["id"] in slack["text"] and "search-index-09" in slack["text"]
    assert [block["type"] for block in slack["blocks"]][:3] == ["header", "section", "section"]
    assert any("connection refused" in json.dumps(block).lower() for block in slack["blocks"])

    [pager] = receiver.bodies("/pagerduty")
    assert pager["routing_key"] == "R0UTING" and pager["event_action"] == "trigger"
    assert pager["dedup_key"] == ticket["id"]
    assert pager["payload"]["severity"] in {"critical", "error", "warning", "info"}
    assert pager["payload"]["source"] == "search-index-09" and pager["payload"]["summary"]
    assert pager["payload"]["custom_details"]["ticket_id"] == ticket["id"]
    assert [item["id"] for item in read_outbox(state_dir / "tickets.jsonl")] == [ticket["id"]]


def test_a_failing_sink_is_retried_a_bounded_number_of_times_with_a_stable_dedup_key(
        runner: Any, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    with Receiver() as receiver:
        configure(monkeypatch, receiver.url, attempts=3)
        receiver.status = 503
        result = runner().run(INCIDENT)
        keys = {body["dedup_key"] for body in receiver.bodies("/pagerduty")}
        receiver.status = 400
        TicketDesk(state_dir).flush()
    delivery = result["ticket"]["delivery"]
    assert delivery["status"] == "spooled" and "HTTP 503" in delivery["error"]
    assert len(receiver.bodies("/pagerduty")) == 3 + 1  # three tries on 503, one on 400 (not retryable)
    assert keys == {result["ticket"]["id"]}


def test_receiver_down_spools_then_cli_flush_delivers_exactly_once(
        runner: Any, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    port = free_port()
    configure(monkeypatch, f"http://127.0.0.1:{port}", attempts=2)
    result = runner().run(INCIDENT)
    ticket_id = result["ticket"]["id"]
    assert result["ticket"]["delivery"]["status"] == "spooled"
    assert result["ticket"]["delivery"]["sinks"]["outbox"] == "delivered"
    assert [path.stem for path in TicketDesk(state_dir).spooled()] == [ticket_id]

    with Receiver(port) as receiver:
        first = flush_cli(state_dir)
        second = flush_cli(state_dir)
        again = TicketDesk(state_dir).deliver(result["ticket"])
    assert first == {"delivered": 1, "duplicate": 0, "failed": 0}
    assert second == {"delivered": 0, "duplicate": 0, "failed": 0}
    assert again["status"] == "duplicate"
    assert [len(receiver.bodies(path)) for path in ("/webhook", "/slack", "/pagerduty")] == [1, 1, 1]
    assert receiver.bodies("/pagerduty")[0]["dedup_key"] == ticket_id
    assert len(read_outbox(state_dir / "tickets.jsonl")) == 1


def flush_cli(state_dir: Path) -> dict[str, int]:
    env = {**os.environ, "IT_SUPPORT_STATE_DIR": str(state_dir)}
    done = subprocess.run([sys.executable, "-m", "graph.cli", "flush", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    counts: dict[str, int] = json.loads(done.stdout)
    return counts
