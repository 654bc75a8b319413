"""Alert intake: Alertmanager v4 payloads posted to `serve` become one incident thread per alert, deduplicated."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from graph.checkpoints import open_checkpointer
from graph.context import Context
from graph.serve import AlertIntake, AlertServer, serving
from tests.integration.services import binary, free_port, http_ok, running, wait_until
from tools.outbox import read_outbox

REPO = Path(__file__).resolve().parents[2]
STARTS_AT = "2026-11-27T10:00:00Z"


def alert(instance: str, name: str = "HighCPU", status: str = "firing", starts_at: str = STARTS_AT,
          **annotations: str) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": name, "instance": instance, "severity": "page"},
            "annotations": annotations or {"summary": "CPU above 95% for 5 minutes", "description": "slow"},
            "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
            "fingerprint": f"fp-{name}-{instance}"}


def payload(*alerts: dict[str, Any], group: str = '{}:{alertname="HighCPU"}') -> dict[str, Any]:
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": "firing", "receiver": "agent",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
            "alerts": list(alerts)}


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
    from graph.builder import builder

    app = builder.compile(checkpointer=open_checkpointer(state_dir))
    return dict(app.get_state({"configurable": {"thread_id": thread_id}}).values)


@pytest.fixture
def server(state_dir: Path) -> Iterator[AlertServer]:
    with serving(Context(state_dir=str(state_dir))) as running_server:
        yield running_server


def settled(server: AlertServer) -> None:
    wait_until(lambda: server.intake.pending() == 0, 60, "the intake to finish its runs")


def test_a_firing_alert_becomes_one_incident_thread_and_repeats_are_deduplicated(server: AlertServer,
                                                                               state_dir: Path) -> None:
    body = payload(alert("payment-server-01:9100"))
    status, first = post(server.url, body)
    _, repeat_while_open = post(server.url, body)
    settled(server)
    _, repeat_after_run = post(server.url, body)
    assert status == 202
    [accepted] = first["accepted"]
    assert accepted["server_id"] == "payment-server-01" and accepted["alertname"] == "HighCPU"
    assert repeat_while_open == repeat_after_run == {"accepted": [], "duplicates": [accepted["thread_id"]],
                                                     "resolved": []}
    assert threads(state_dir) == [accepted["thread_id"]]
    state = final_state(state_dir, accepted["thread_id"])
    assert state["server_id"] == "payment-server-01" and state["outcome"] == "restart"
    assert state["incident"].startswith("payment-server-01: HighCPU firing. CPU above 95% for 5 minutes")


def test_each_alert_of_a_group_gets_its_thread_resolved_ones_are_only_acknowledged(server: AlertServer,
                                                                                  state_dir: Path) -> None:
    _, both = post(server.url, payload(alert("search-index-09:9100"), alert("10.9.9.9:9100"),
                                       alert("cache-node-04:9100", status="resolved")))
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


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "body is not valid JSON"),
    (b"[]", "payload must be a JSON object"),
    ({"version": "3", "groupKey": "g", "alerts": []}, "unsupported payload version '3'"),
    ({"version": "4", "alerts": []}, "'groupKey' must be a non-empty string"),
    ({"version": "4", "groupKey": "g", "alerts": {}}, "'alerts' must be a list"),
    ({"version": "4", "groupKey": "g", "alerts": [{"status": "odd", "labels": {}}]},
     "alerts[0].status must be 'firing' or 'resolved'"),
    ({"version": "4", "groupKey": "g", "alerts": [{"status": "firing", "labels": {"a": 1}}]},
     "alerts[0].labels must be an object of strings"),
])
def test_malformed_payloads_get_400_with_a_reason(server: AlertServer, state_dir: Path, body: Any,
                                                 reason: str) -> None:
    status, answer = post(server.url, body)
    assert status == 400 and reason in answer["error"]
    assert server.intake.pending() == 0


def test_answers_before_the_incident_runs_and_reports_health(server: AlertServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    original = AlertIntake._run
    monkeypatch.setattr(AlertIntake, "_run", lambda self, task: (gate.wait(10), original(self, task)))
    status, _ = post(server.url, payload(alert("web-frontend-05:9100")))
    with urllib.request.urlopen(server.url + "/healthz", timeout=5) as response:
        health = json.load(response)
    gate.set()
    settled(server)
    assert status == 202 and health == {"status": "ok", "pending": 1}
    assert post(server.url, payload(), path="/other")[0] == 404


def test_cli_serve_end_to_end(state_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "IT_SUPPORT_STATE_DIR": str(state_dir)}
    command = [sys.executable, "-m", "graph.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: http_ok(url + "/healthz"), 60, "`it-support-agent serve` to listen")
        assert post(url, b"nope")[0] == 400
        status, answer = post(url, payload(alert("payment-server-01:9100")))
        thread_id = answer["accepted"][0]["thread_id"]
        wait_until(lambda: thread_id in threads(state_dir) and
                   final_state(state_dir, thread_id).get("outcome"), 60, "the incident to finish")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert status == 202 and process.returncode == 0, stderr.decode()
    assert final_state(state_dir, thread_id)["outcome"] == "restart"
    assert f"listening on {url}/alerts" in stderr.decode()


def test_through_a_real_alertmanager(state_dir: Path, tmp_path: Path) -> None:
    alertmanager = binary("prometheus-alertmanager", "prometheus-alertmanager")
    with serving(Context(state_dir=str(state_dir))) as server:
        config = {"route": {"receiver": "agent", "group_by": ["alertname"], "group_wait": "0s",
                            "group_interval": "1s", "repeat_interval": "1h"},
                  "receivers": [{"name": "agent", "webhook_configs": [{"url": server.url + "/alerts"}]}]}
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        port = free_port()
        am = f"http://127.0.0.1:{port}"
        command = [alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}",
                   f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
                   "--cluster.listen-address="]
        with running(command, tmp_path / "alertmanager.log", lambda: http_ok(am + "/-/ready"), 30,
                     "alertmanager to be ready"):
            fire = [{"labels": {"alertname": "HighCPU", "instance": "payment-server-01:9100"},
                     "annotations": {"summary": "CPU above 95%"}}]
            for _ in range(2):
                post(am, fire, path="/api/v2/alerts")
            [thread_id] = wait_until(lambda: threads(state_dir) or None, 30, "Alertmanager to notify the agent")
            settled(server)
    assert threads(state_dir) == [thread_id]
    assert final_state(state_dir, thread_id)["outcome"] == "restart"


def test_a_run_that_crashes_still_files_a_ticket(server: AlertServer, state_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("backend exploded")

    monkeypatch.setattr(server.intake._app, "invoke", broken)
    _, answer = post(server.url, payload(alert("payment-server-01:9100")))
    settled(server)
    tickets = read_outbox(state_dir / "tickets.jsonl")
    assert [ticket["thread_id"] for ticket in tickets] == [answer["accepted"][0]["thread_id"]]
    assert "failed while handling this alert: RuntimeError" in tickets[0]["reason"]
