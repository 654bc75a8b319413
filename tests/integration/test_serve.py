"""Alert intake: Alertmanager v4 payloads posted to `serve` become one incident thread per alert, deduplicated."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from it_support_agent.graph.app.alerts import Alert, AlertGroup, parse_payload
from it_support_agent.graph.app.checkpoints import open_checkpointer
from it_support_agent.graph.app.serve import AlertIntake, AlertServer, _Handler, serving
from it_support_agent.incident.context import Context
from it_support_agent.tools import audit
from it_support_agent.tools.outbox import TicketDesk, read_outbox
from it_support_agent.tools.store import IntakeItem, open_store
from tests.integration.services import binary, free_port, http_ok, running, wait_until

REPO = Path(__file__).resolve().parents[2]
STARTS_AT = "2026-11-27T10:00:00Z"


def alert(
    instance: str, name: str = "HighCPU", status: str = "firing", starts_at: str = STARTS_AT, **annotations: str
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "instance": instance, "severity": "page"},
        "annotations": annotations or {"summary": "CPU above 95% for 5 minutes", "description": "slow"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": f"fp-{name}-{instance}",
    }


def payload(*alerts: dict[str, Any], group: str = '{}:{alertname="HighCPU"}') -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "agent",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": list(alerts),
    }


def post(url: str, body: Any, path: str = "/alerts") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def threads(state_dir: Path) -> list[str]:
    with sqlite3.connect(state_dir / "checkpoints.sqlite") as connection:
        return sorted(row[0] for row in connection.execute("SELECT DISTINCT thread_id FROM checkpoints"))


def final_state(state_dir: Path, thread_id: str) -> dict[str, Any]:
    from it_support_agent.graph.builder import compile_graph

    app = compile_graph(open_checkpointer(state_dir))
    return dict(app.get_state({"configurable": {"thread_id": thread_id}}).values)


@pytest.fixture
def server(state_dir: Path) -> Iterator[AlertServer]:
    with serving(Context(state_dir=str(state_dir))) as running_server:
        yield running_server


def settled(server: AlertServer) -> None:
    wait_until(lambda: server.intake.pending() == 0, 60, "the intake to finish its runs")


def test_a_firing_alert_becomes_one_incident_thread_and_repeats_are_deduplicated(
    server: AlertServer, state_dir: Path
) -> None:
    body = payload(alert("payment-server-01:9100"))
    status, first = post(server.url, body)
    _, repeat_while_open = post(server.url, body)
    settled(server)
    _, repeat_after_run = post(server.url, body)
    assert status == 202
    [accepted] = first["accepted"]
    assert accepted["server_id"] == "payment-server-01" and accepted["alertname"] == "HighCPU"
    assert (
        repeat_while_open
        == repeat_after_run
        == {"accepted": [], "duplicates": [accepted["thread_id"]], "resolved": [], "coalesced": []}
    )
    assert threads(state_dir) == [accepted["thread_id"]]
    state = final_state(state_dir, accepted["thread_id"])
    assert state["server_id"] == "payment-server-01" and state["outcome"] == "restart"
    assert state["incident"].startswith("payment-server-01: HighCPU firing. CPU above 95% for 5 minutes")


def test_each_alert_of_a_group_gets_its_thread_resolved_ones_are_only_acknowledged(
    server: AlertServer, state_dir: Path
) -> None:
    _, both = post(
        server.url,
        payload(alert("search-index-09:9100"), alert("10.9.9.9:9100"), alert("cache-node-04:9100", status="resolved")),
    )
    settled(server)
    by_server = {item["server_id"]: item["thread_id"] for item in both["accepted"]}
    assert set(by_server) == {"search-index-09", None} and len(both["resolved"]) == 1
    assert threads(state_dir) == sorted(by_server.values())
    assert final_state(state_dir, by_server["search-index-09"])["outcome"] == "escalate"
    unknown = final_state(state_dir, by_server[None])
    assert unknown["outcome"] == "escalate" and "server not identified" in unknown["escalation_reason"]

    _, refired = post(server.url, payload(alert("search-index-09:9100", starts_at="2026-11-27T11:00:00Z")))
    settled(server)
    assert refired["accepted"][0]["thread_id"] not in by_server.values()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[]", "payload must be a JSON object"),
        ({"version": "3", "groupKey": "g", "alerts": []}, "unsupported payload version '3'"),
        ({"version": "4", "alerts": []}, "'groupKey' must be a non-empty string"),
        ({"version": "4", "groupKey": "g", "alerts": {}}, "'alerts' must be a list"),
        (
            {"version": "4", "groupKey": "g", "alerts": [{"status": "odd", "labels": {}}]},
            "alerts[0].status must be 'firing' or 'resolved'",
        ),
        (
            {"version": "4", "groupKey": "g", "alerts": [{"status": "firing", "labels": {"a": 1}}]},
            "alerts[0].labels must be an object of strings",
        ),
    ],
)
def test_malformed_payloads_get_400_with_a_reason(server: AlertServer, state_dir: Path, body: Any, reason: str) -> None:
    status, answer = post(server.url, body)
    assert status == 400 and reason in answer["error"]
    assert server.intake.pending() == 0


def test_answers_before_the_incident_runs_and_reports_health(
    server: AlertServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    original = AlertIntake._run
    monkeypatch.setattr(AlertIntake, "_run", lambda self, task: (gate.wait(10), original(self, task))[1])
    status, _ = post(server.url, payload(alert("web-frontend-05:9100")))
    with urllib.request.urlopen(server.url + "/healthz", timeout=5) as response:
        health = json.load(response)
    gate.set()
    settled(server)
    assert status == 202 and health == {"status": "ok", "pending": 1, "worker_alive": True}
    assert post(server.url, payload(), path="/other")[0] == 404


def test_cli_serve_end_to_end(state_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "IT_SUPPORT_STATE_DIR": str(state_dir)}
    command = [sys.executable, "-m", "it_support_agent", "serve", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: http_ok(url + "/healthz"), 60, "`it-support-agent serve` to listen")
        assert post(url, b"nope")[0] == 400
        status, answer = post(url, payload(alert("payment-server-01:9100")))
        thread_id = answer["accepted"][0]["thread_id"]
        wait_until(
            lambda: thread_id in threads(state_dir) and final_state(state_dir, thread_id).get("outcome"),
            60,
            "the incident to finish",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert status == 202 and process.returncode == 0, stderr.decode()
    assert final_state(state_dir, thread_id)["outcome"] == "restart"
    assert f"listening on {url}/alerts" in stderr.decode()


def test_through_a_real_alertmanager(state_dir: Path, tmp_path: Path) -> None:
    alertmanager = binary("prometheus-alertmanager", "prometheus-alertmanager")
    with serving(Context(state_dir=str(state_dir))) as server:
        config = {
            "route": {
                "receiver": "agent",
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "agent", "webhook_configs": [{"url": server.url + "/alerts"}]}],
        }
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        port = free_port()
        am = f"http://127.0.0.1:{port}"
        command = [
            alertmanager,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        with running(
            command, tmp_path / "alertmanager.log", lambda: http_ok(am + "/-/ready"), 30, "alertmanager to be ready"
        ):
            fire = [
                {
                    "labels": {"alertname": "HighCPU", "instance": "payment-server-01:9100"},
                    "annotations": {"summary": "CPU above 95%"},
                }
            ]
            for _ in range(2):
                post(am, fire, path="/api/v2/alerts")
            [thread_id] = wait_until(lambda: threads(state_dir) or None, 30, "Alertmanager to notify the agent")
            settled(server)
    assert threads(state_dir) == [thread_id]
    assert final_state(state_dir, thread_id)["outcome"] == "restart"


def test_a_run_that_crashes_still_files_a_ticket(
    server: AlertServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("backend exploded")

    monkeypatch.setattr(server.intake._app, "invoke", broken)
    _, answer = post(server.url, payload(alert("payment-server-01:9100")))
    settled(server)
    tickets = read_outbox(state_dir / "tickets.jsonl")
    assert [ticket["thread_id"] for ticket in tickets] == [answer["accepted"][0]["thread_id"]]
    assert "the agent stopped before finishing this incident: RuntimeError: backend exploded" in tickets[0]["reason"]


def test_an_unmatched_label_is_never_replaced_by_a_server_named_in_the_text(
    server: AlertServer, state_dir: Path
) -> None:
    body = payload(
        alert(
            "10.20.30.40:9100",
            name="CheckoutLatency",
            summary="checkout p99 high",
            description="calls to payment-server-01 are slow",
        )
    )
    _, answer = post(server.url, body)
    settled(server)
    [accepted] = answer["accepted"]
    state = final_state(state_dir, accepted["thread_id"])
    assert accepted["server_id"] is None and state["server_id"] is None
    assert state["outcome"] == "escalate" and "server not identified" in state["escalation_reason"]
    assert not state["restart"] and "payment-server-01" in state["incident"]


def test_the_worker_survives_a_crashing_run_and_a_failing_fallback_ticket(
    server: AlertServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("backend exploded")

    def undeliverable(self: Any, ticket: Any) -> Any:
        raise http.client.BadStatusLine("garbage")

    with monkeypatch.context() as patch:
        patch.setattr(server.intake._app, "invoke", broken)
        patch.setattr(TicketDesk, "deliver", undeliverable)
        _, crashed = post(server.url, payload(alert("payment-server-01:9100")))
        settled(server)
    assert server.intake.alive()
    stages = [
        event.get("stage")
        for event in audit.events(state_dir, crashed["accepted"][0]["thread_id"])
        if event["kind"] == "intake_error"
    ]
    assert stages == ["run", "fallback_ticket"]
    _, later = post(server.url, payload(alert("web-frontend-05:9100")))
    settled(server)
    assert final_state(state_dir, later["accepted"][0]["thread_id"])["outcome"] == "none"


def test_healthz_and_intake_answer_503_when_the_workers_are_gone(server: AlertServer) -> None:
    server.intake._stopping.set()  # the workers end, as if they had died
    for worker in server.intake._workers:
        worker.join(10)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.url + "/healthz", timeout=5)
    assert caught.value.code == 503
    assert json.loads(caught.value.read())["worker_alive"] is False
    assert post(server.url, payload(alert("web-frontend-05:9100")))[0] == 503


def test_stop_waits_for_the_running_incident_and_keeps_the_queued_ones_for_the_next_start(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release, ran = threading.Event(), threading.Event(), []

    def slow(self: AlertIntake, item: IntakeItem) -> str:
        ran.append(item.alertname)
        started.set()
        release.wait(10)
        ran.append(f"{item.alertname} done")
        return "escalate"

    monkeypatch.setattr(AlertIntake, "_run", slow)
    intake = AlertIntake(Context(state_dir=str(state_dir)), workers=1)
    intake.start()
    alerts = tuple(
        Alert("firing", {"alertname": f"A{index}", "instance": f"10.0.0.{index}"}, {}, f"fp{index}", STARTS_AT)
        for index in range(3)
    )
    intake.submit(AlertGroup("g", alerts))
    assert started.wait(10)
    stopper = threading.Thread(target=intake.stop)
    stopper.start()
    stopper.join(0.3)
    assert stopper.is_alive()  # still waiting for A0
    release.set()
    stopper.join(10)
    assert not stopper.is_alive() and ran == ["A0", "A0 done"]
    assert open_store(state_dir).intake_counts() == {"done": 1, "queued": 2}
    assert not [event for event in audit.events(state_dir) if event["kind"] == "alert_dropped"]

    again = AlertIntake(Context(state_dir=str(state_dir)), workers=1)
    again.start()
    wait_until(lambda: again.pending() == 0, 30, "the queued alerts to run after the restart")
    again.stop()
    assert ran[2:] == ["A1", "A1 done", "A2", "A2 done"]
    assert open_store(state_dir).intake_counts() == {"done": 3}


def test_alerts_for_a_server_with_a_running_incident_join_it_and_resolved_alerts_cancel_queued_runs(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(self: AlertIntake, item: IntakeItem) -> str:
        started.set()
        release.wait(10)
        return "escalate"

    monkeypatch.setattr(AlertIntake, "_run", slow)
    intake = AlertIntake(Context(state_dir=str(state_dir)), workers=1)
    intake.start()
    try:
        first = intake.submit(payload_group(alert("payment-server-01:9100", name="HighCPU")))
        assert started.wait(10)
        sibling = intake.submit(payload_group(alert("payment-server-01:9100", name="HighLatency")))
        queued = intake.submit(payload_group(alert("10.1.1.1:9100", name="Unknown")))
        resolved = intake.submit(payload_group(alert("10.1.1.1:9100", name="Unknown", status="resolved")))
        release.set()
        wait_until(lambda: intake.pending() == 0, 30, "the runs to end")
    finally:
        release.set()
        intake.stop()
    [accepted] = first["accepted"]
    assert sibling["accepted"] == [] and sibling["coalesced"][0]["into"] == accepted["thread_id"]
    assert resolved["resolved"] == [queued["accepted"][0]["thread_id"]]
    states = {row["alertname"]: row["state"] for row in open_store(state_dir).intake_rows()}
    assert states == {"HighCPU": "done", "HighLatency": "coalesced", "Unknown": "cancelled"}


def payload_group(*alerts: dict[str, Any]) -> AlertGroup:
    return parse_payload(json.dumps(payload(*alerts)).encode())


def raw_request(server: AlertServer, request: bytes, wait_s: float = 5.0) -> bytes:
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=wait_s) as connection:
        connection.sendall(request)
        return connection.recv(4096).split(b"\r\n")[0]


def test_a_client_that_stalls_mid_body_gets_408_and_frees_its_thread(
    server: AlertServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Handler, "timeout", 0.3)
    started = time.monotonic()
    status_line = raw_request(server, b"POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    assert status_line.endswith(b"408 Request Timeout") and time.monotonic() - started < 3


def test_a_client_trickling_its_request_is_cut_off_at_the_deadline(
    server: AlertServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Handler, "timeout", 0.5)  # per read, and for the whole request
    host, port = server.server_address[:2]
    started = time.monotonic()
    with socket.create_connection((str(host), port), timeout=5) as connection:
        connection.sendall(b"POST /alerts HTTP/1.1\r\n")
        with pytest.raises(OSError):  # a byte every 0.2 s never trips the per-read timeout, only the deadline
            for _ in range(100):
                connection.sendall(b"X-Slow: a\r\n")
                time.sleep(0.2)
                if connection.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                    raise ConnectionResetError("closed by the server")
    assert time.monotonic() - started < 3


def test_a_content_length_that_is_not_ascii_digits_is_400(server: AlertServer) -> None:
    assert raw_request(server, b"POST /alerts HTTP/1.0\r\nContent-Length: \xb2\r\n\r\n{}").endswith(b"400 Bad Request")


def test_a_lone_surrogate_anywhere_in_a_batch_is_400_and_queues_nothing(server: AlertServer, state_dir: Path) -> None:
    good = alert("web-frontend-05:9100")
    bad = {**alert("payment-server-01:9100"), "fingerprint": "\ud800"}
    status, answer = post(server.url, json.dumps(payload(good, bad)).encode())
    assert status == 400 and answer["error"].startswith("alerts[1].fingerprint is not valid Unicode text")
    assert server.intake.pending() == 0 and not list(audit.events(state_dir))


def test_serve_with_credentials_in_a_sink_url_warns_and_still_files_tickets(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "it_support_agent", "serve", "--port", str(port), "--state-dir", str(state_dir)]
    monkeypatch.setenv("IT_SUPPORT_WEBHOOK_URL", "https://ops:hunter2@hooks.example.com/in")
    with running(command, log, lambda: http_ok(f"{url}/healthz"), 60, "serve"):
        status, answer = post(url, payload(alert("search-index-09:9100", "IndexerDown")))
        assert status == 202 and answer["accepted"], answer
        thread_id = answer["accepted"][0]["thread_id"]
        ticket = wait_until(lambda: read_outbox(state_dir / "tickets.jsonl")[0], 60, "the ticket in the outbox")
        assert ticket["thread_id"] == thread_id
        # owed to the webhook in the store's delivery queue (written after the outbox line: wait for it too)
        owed = wait_until(lambda: TicketDesk(state_dir).owed(), 60, "the delivery owed to the webhook")
        assert [(entry["id"], entry["pending"]) for entry in owed] == [(ticket["id"], ["webhook"])]
        assert not TicketDesk(state_dir).spooled()
    text = log.read_text()
    assert "warning: webhook sink: IT_SUPPORT_WEBHOOK_URL must not embed credentials" in text
    assert "hunter2" not in text


def test_with_an_intake_token_only_authorized_posts_are_taken(
    server: AlertServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    monkeypatch.setenv("IT_SUPPORT_INTAKE_TOKEN", "s3cret-intake-token")
    body = json.dumps(payload(alert("10.7.7.7:9100"))).encode()

    def status(authorization: str | None) -> int:
        request = urllib.request.Request(server.url + "/alerts", data=body, method="POST")
        if authorization:
            request.add_header("Authorization", authorization)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    basic = base64.b64encode(b"alertmanager:s3cret-intake-token").decode()
    wrong = base64.b64encode(b"alertmanager:guess").decode()
    assert [status(None), status("Bearer guess"), status(f"Basic {wrong}"), status("Token s3cret-intake-token")] == [
        401,
        401,
        401,
        401,
    ]
    assert open_store(state_dir).intake_rows() == []  # nothing unauthorized was taken
    assert status("Bearer s3cret-intake-token") == 202
    assert status(f"Basic {basic}") == 202  # the same alert again: acknowledged as a duplicate
    assert len(open_store(state_dir).intake_rows()) == 1


class _Hook:
    """A webhook receiver that hangs (never answers in time) until told to answer."""

    def __init__(self) -> None:
        self.answering = threading.Event()
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not hook.answering.wait(30):
                    return
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.answering.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_hanging_sink_does_not_hold_up_a_restart_and_its_ticket_follows_later(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker; an escalation whose webhook hangs, then an alert for a recoverable server: the restart starts
    within a second of its alert, and the ticket reaches the webhook once it answers, exactly once."""
    hook = _Hook()
    monkeypatch.setenv("IT_SUPPORT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("IT_SUPPORT_SINK_TIMEOUT_S", "2")
    monkeypatch.setenv("IT_SUPPORT_SINK_ATTEMPTS", "1")
    try:
        with serving(Context(state_dir=str(state_dir)), workers=1) as running_server:
            _, escalated = post(running_server.url, payload(alert("search-index-09:9100")))
            posted = time.time()
            _, restarted = post(running_server.url, payload(alert("payment-server-01:9100")))
            wait_until(lambda: running_server.intake.pending() == 0, 30, "both runs to finish")
            [search] = escalated["accepted"]
            [payment] = restarted["accepted"]
            intent = next(
                event for event in audit.events(state_dir, payment["thread_id"]) if event["kind"] == "action_intent"
            )
            delay = datetime.fromisoformat(intent["ts"].replace("Z", "+00:00")).timestamp() - posted
            assert delay < 1.0, delay
            ticket = final_state(state_dir, search["thread_id"])["ticket"]
            assert ticket["delivery"]["status"] == "queued" and ticket["delivery"]["sinks"]["webhook"] == "queued"
            assert [entry["id"] for entry in read_outbox(state_dir / "tickets.jsonl")] == [ticket["id"]]
            hook.answering.set()
            wait_until(lambda: not TicketDesk(state_dir).owed(), 40, "the queued ticket to be delivered")
            wait_until(lambda: len(hook.received) >= 1, 10, "the webhook to receive the ticket")
            time.sleep(1)
            assert [body.get("id") or body.get("ticket", {}).get("id") for body in hook.received] == [ticket["id"]]
    finally:
        hook.close()
