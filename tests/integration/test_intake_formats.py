"""Formats on-call tools already speak: Grafana's alert webhook, a plain JSON incident, truncated groups,
LangGraph's HumanInterrupt / HumanResponse for approvals, and `{"messages": [...]}` from a chat client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from it_support_agent.graph.app.serve import AlertServer, serving
from it_support_agent.graph.builder import compile_graph
from it_support_agent.incident.context import Context
from it_support_agent.tools import audit
from it_support_agent.tools.outbox import read_outbox
from tests.integration.services import wait_until


def post(url: str, body: Any, path: str) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def server(state_dir: Path) -> Iterator[AlertServer]:
    with serving(Context(state_dir=str(state_dir))) as running_server:
        yield running_server


def settled(server: AlertServer) -> None:
    wait_until(lambda: server.intake.pending() == 0, 60, "the intake to finish its runs")


def outcome(server: AlertServer, thread_id: str) -> Any:
    return server.intake._app.get_state({"configurable": {"thread_id": thread_id}}).values.get("outcome")


# Grafana's alerting webhook (contact point type "webhook"): version "1", Alertmanager's alert shape plus Grafana's
# own fields (orgId, state, title, message, values, dashboardURL ...), as Grafana documents it.
GRAFANA = {
    "receiver": "agent",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighCPU", "instance": "payment-server-01:9100", "grafana_folder": "ops"},
            "annotations": {"summary": "CPU above 95% for 5 minutes"},
            "startsAt": "2026-12-02T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://grafana.local/alerting/grafana/abc/view",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "http://grafana.local/alerting/silence/new",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 98.5},
            "valueString": "[ var='B' labels={instance=payment-server-01:9100} value=98.5 ]",
        }
    ],
    "groupLabels": {"alertname": "HighCPU"},
    "commonLabels": {"alertname": "HighCPU"},
    "commonAnnotations": {},
    "externalURL": "http://grafana.local/",
    "version": "1",
    "groupKey": '{}:{alertname="HighCPU"}',
    "truncatedAlerts": 2,
    "title": "[FIRING:1] HighCPU (ops)",
    "state": "alerting",
    "message": "**Firing**\n\nValue: B=98.5",
}


def test_a_grafana_webhook_is_taken_like_alertmanagers_and_truncated_alerts_are_reported(
    server: AlertServer, state_dir: Path
) -> None:
    status, answer = post(server.url, GRAFANA, "/alerts")
    assert status == 202, answer
    assert answer["truncated"] == 2  # the sender's max_alerts left two out: said, not ignored
    (accepted,) = answer["accepted"]
    assert accepted["server_id"] == "payment-server-01"
    settled(server)
    assert outcome(server, accepted["thread_id"]) == "restart"
    kinds = [event["kind"] for event in audit.events(state_dir)]
    assert "alerts_truncated" in kinds
    status, _ = post(server.url, {**GRAFANA, "version": "2"}, "/alerts")
    assert status == 400


def test_a_plain_json_incident_runs_and_its_id_makes_retries_one_incident(server: AlertServer, state_dir: Path) -> None:
    body = {
        "incident": "the indexer stopped indexing, search results are stale",
        "server": "search-index-09",
        "id": "chat-42",
    }
    status, answer = post(server.url, body, "/incidents")
    assert status == 202, answer
    (accepted,) = answer["accepted"]
    again_status, again = post(server.url, body, "/incidents")
    assert again_status == 202 and again["duplicates"] == [accepted["thread_id"]]
    settled(server)
    assert outcome(server, accepted["thread_id"]) == "escalate"
    assert [ticket["thread_id"] for ticket in read_outbox(state_dir / "tickets.jsonl")] == [accepted["thread_id"]]

    status, answer = post(server.url, {"incident": "payment-server-01 is extremely slow"}, "/incidents")
    assert status == 202 and answer["accepted"][0]["server_id"] is None  # no server given: the text is read
    settled(server)
    assert outcome(server, answer["accepted"][0]["thread_id"]) == "restart"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"incident": ""}, "'incident' must be a non-empty string"),
        ({"incident": "x", "server": "no-such-server"}, "unknown server 'no-such-server'"),
        ({"incident": "x", "severity": "high"}, "unknown field 'severity'"),
        (b"[1]", "payload must be a JSON object"),
    ],
)
def test_bad_plain_incidents_get_400_with_the_reason(server: AlertServer, body: Any, problem: str) -> None:
    status, answer = post(server.url, body, "/incidents")
    assert status == 400 and problem in answer["error"]
    assert server.intake.pending() == 0


def graph_and_context(state_dir: Path) -> tuple[Any, Context]:
    return compile_graph(InMemorySaver()), Context(state_dir=str(state_dir), autonomy="approve")


def test_the_approval_is_a_human_interrupt_and_human_responses_answer_it(state_dir: Path) -> None:
    app, context = graph_and_context(state_dir)
    config = {"configurable": {"thread_id": "inbox-accept"}}
    paused = app.invoke({"incident": "payment-server-01 is extremely slow"}, config, context=context)
    request = paused["__interrupt__"][0].value
    assert request["type"] == "approve_restart"  # today's typed fields are kept
    assert request["action_request"] == {
        "action": "restart_service",
        "args": {"server_id": "payment-server-01", "service": "payment-api"},
    }
    assert request["config"] == {"allow_accept": True, "allow_ignore": True, "allow_respond": True, "allow_edit": False}
    assert request["description"].startswith("Approve: restart payment-api on payment-server-01?")
    done = app.invoke(Command(resume=[{"type": "accept", "args": None}]), config, context=context)
    assert done["outcome"] == "restart"


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ([{"type": "response", "args": "not during the sale"}], "operator rejected the restart: not during the sale"),
        ([{"type": "ignore", "args": None}], "operator rejected the restart: ignored in the inbox"),
        ([{"type": "edit", "args": {"action": "restart_service", "args": {"server_id": "payments-db-01"}}}], "'edit'"),
        ({"decision": "reject", "comment": "later"}, "operator rejected the restart: later"),
    ],
)
def test_every_answer_other_than_accept_or_approve_rejects(state_dir: Path, response: Any, reason: str) -> None:
    app, context = graph_and_context(state_dir)
    config = {"configurable": {"thread_id": "inbox-other"}}
    app.invoke({"incident": "payment-server-01 is extremely slow"}, config, context=context)
    done = app.invoke(Command(resume=response), config, context=context)
    assert done["outcome"] == "escalate" and reason in done["escalation_reason"]
    assert not (state_dir / "fleet-state.json").exists()  # nothing restarted


def test_a_chat_clients_messages_are_the_incident_and_the_report_is_its_answer(state_dir: Path) -> None:
    app: Any = compile_graph(InMemorySaver())
    context = Context(state_dir=str(state_dir))
    config = {"configurable": {"thread_id": "chat"}}
    first = app.invoke(
        {"messages": [{"role": "user", "content": "payment-server-01 is extremely slow"}]}, config, context=context
    )
    assert first["server_id"] == "payment-server-01" and first["outcome"] == "restart"
    assert first["messages"][-1].type == "ai" and first["messages"][-1].content == first["summary"]
    second = app.invoke(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "search-index-09 is failing"}]}]},
        config,
        context=context,
    )
    assert second["server_id"] == "search-index-09" and second["outcome"] == "escalate"  # a new incident
