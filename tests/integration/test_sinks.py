"""Escalation sinks against a local HTTP receiver: payload shapes, bounded retries, spool and flush exactly once;
against bare sockets: malformed and trickled answers, redirects, and URLs whose secrets must not show."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from it_support_agent.tools.outbox import TicketDesk, read_outbox
from it_support_agent.tools.sinks import Sink, configured_sinks, webhook_payload
from it_support_agent.tools.store import open_store
from tests.integration.services import Receiver, free_port

REPO = Path(__file__).resolve().parents[2]
INCIDENT = "search-index-09 stopped indexing"


def configure(monkeypatch: pytest.MonkeyPatch, base_url: str, attempts: int = 3) -> None:
    settings = {
        "IT_SUPPORT_WEBHOOK_URL": f"{base_url}/webhook",
        "IT_SUPPORT_WEBHOOK_TOKEN": "t0ken",
        "IT_SUPPORT_SLACK_WEBHOOK_URL": f"{base_url}/slack",
        "IT_SUPPORT_PAGERDUTY_ROUTING_KEY": "R0UTING",
        "IT_SUPPORT_PAGERDUTY_URL": f"{base_url}/pagerduty",
        "IT_SUPPORT_SINK_TIMEOUT_S": "2",
        "IT_SUPPORT_SINK_ATTEMPTS": str(attempts),
        "IT_SUPPORT_SINK_BACKOFF_S": "0.01",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def test_webhook_slack_and_pagerduty_payloads(runner: Any, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    with Receiver() as receiver:
        configure(monkeypatch, receiver.url)
        result = runner().run(INCIDENT)
    ticket = result["ticket"]
    assert result["outcome"] == "escalate" and ticket["delivery"]["status"] == "delivered"
    assert ticket["delivery"]["sinks"] == {
        "outbox": "delivered",
        "webhook": "delivered",
        "slack": "delivered",
        "pagerduty": "delivered",
    }

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
    runner: Any, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
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
    runner: Any, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
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
    done = subprocess.run(
        [sys.executable, "-m", "it_support_agent", "flush", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    counts: dict[str, int] = json.loads(done.stdout)
    return counts


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A bare TCP endpoint that reads a request and lets `answer` reply however badly; yields its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection, contextlib.suppress(OSError):
                connection.recv(65536)
                answer(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def garbage(connection: socket.socket) -> None:
    connection.sendall(b"garbage\r\n\r\n")


def trickle(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
    for byte in b"ok" * 20:
        time.sleep(0.2)
        connection.sendall(bytes([byte]))


def sink(name: str, url: str, **settings: Any) -> Sink:
    return Sink(name, url, webhook_payload, **{"attempts": 1, "timeout_s": 2.0, "backoff_s": 0.01, **settings})


def test_a_malformed_answer_spools_and_the_sinks_that_took_the_ticket_stay_recorded(state_dir: Path) -> None:
    ticket = {"id": "INC-GARBAGE", "summary": "db down"}
    with Receiver() as receiver, raw_server(garbage) as bad:
        desk = TicketDesk(state_dir, [sink("webhook", receiver.url + "/webhook"), sink("slack", bad + "/slack")])
        first = desk.deliver(ticket)
        second = desk.deliver(ticket)
    assert first["status"] == second["status"] == "spooled"
    assert first["sinks"] == {"outbox": "delivered", "webhook": "delivered", "slack": "failed"}
    assert "malformed HTTP answer (BadStatusLine" in first["error"]
    assert second["sinks"]["webhook"] == "duplicate"
    assert len(receiver.bodies("/webhook")) == 1
    assert [path.stem for path in TicketDesk(state_dir).spooled()] == ["INC-GARBAGE"]


def test_a_sink_failing_in_an_unexpected_way_spools_instead_of_raising(state_dir: Path) -> None:
    def broken(ticket: Mapping[str, Any]) -> dict[str, Any]:
        raise KeyError("no such field")

    delivery = TicketDesk(state_dir, [Sink("webhook", "http://127.0.0.1:9/", broken)]).deliver({"id": "INC-ODD"})
    assert delivery["status"] == "spooled" and "unexpected KeyError" in delivery["error"]


def test_redirects_are_refused_and_the_token_never_follows_them(state_dir: Path) -> None:
    with Receiver() as elsewhere:

        def redirect(connection: socket.socket) -> None:
            connection.sendall(
                f"HTTP/1.1 302 Found\r\nLocation: {elsewhere.url}/login\r\nContent-Length: 0\r\n\r\n".encode()
            )

        with raw_server(redirect) as hook:
            sinks = configured_sinks(
                {
                    "IT_SUPPORT_WEBHOOK_URL": hook + "/hook",
                    "IT_SUPPORT_WEBHOOK_TOKEN": "T0KEN",
                    "IT_SUPPORT_SINK_ATTEMPTS": "3",
                }
            )
            delivery = TicketDesk(state_dir, sinks).deliver({"id": "INC-REDIRECT"})
    assert delivery["status"] == "spooled" and delivery["sinks"]["webhook"] == "failed"
    assert "HTTP 302: redirect refused" in delivery["error"]
    assert elsewhere.requests == []
    assert open_store(state_dir).delivered_to("INC-REDIRECT") == []


def test_a_trickled_answer_is_cut_at_the_deadline_without_holding_up_other_tickets(state_dir: Path) -> None:
    slow = sink("webhook", "", timeout_s=0.5, attempts=2, backoff_s=0.1)
    assert slow.deadline_s == pytest.approx(1.1)
    timings: dict[str, float] = {}
    with Receiver() as receiver, raw_server(trickle) as dripping:

        def deliver_slow() -> None:
            started = time.monotonic()
            timings["status"] = (
                TicketDesk(state_dir, [dataclasses.replace(slow, url=dripping)]).deliver({"id": "INC-SLOW"})["status"]
                == "spooled"
            )
            timings["slow"] = time.monotonic() - started

        thread = threading.Thread(target=deliver_slow)
        thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        other = TicketDesk(state_dir, [sink("webhook", receiver.url + "/webhook")]).deliver({"id": "INC-OTHER"})
        timings["other"] = time.monotonic() - started
        thread.join(10)
    assert other["status"] == "delivered" and timings["other"] < 0.5
    assert timings["status"] and timings["slow"] < 1.1 + 0.5


def test_a_misconfigured_sink_sends_nothing_and_its_secret_path_never_shows(state_dir: Path) -> None:
    secret = "/services/T0001/B0001/SlackSecretToken123"
    port = free_port()  # nothing listens there: the connection error must still leave the path out
    errors = []
    for number, url in enumerate((f"hooks.slack.com{secret}", f"http://127.0.0.1:{port}{secret}")):
        sinks = configured_sinks({"IT_SUPPORT_SLACK_WEBHOOK_URL": url, "IT_SUPPORT_SINK_ATTEMPTS": "1"})
        delivery = TicketDesk(state_dir, sinks).deliver({"id": f"INC-SECRET-{number}"})
        assert delivery["status"] == "spooled" and delivery["sinks"]["slack"] == "failed"
        assert "SlackSecretToken123" not in json.dumps(delivery)
        errors.append(delivery["error"])
    assert "IT_SUPPORT_SLACK_WEBHOOK_URL must be an http:// or https:// URL with a host" in errors[0]
    assert errors[1].startswith(f"slack (http://127.0.0.1:{port}) did not take ticket INC-SECRET-1")
