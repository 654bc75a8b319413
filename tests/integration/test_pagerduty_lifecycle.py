"""PagerDuty's lifecycle against a local receiver that checks every event against the Events API v2 shape:
trigger with a console link, acknowledge when a human approves or the agent acts, resolve when the restart verifies
or the alert resolves; and Alertmanager's own dedup key for the group on request."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from it_support_agent.graph.app.alerts import Alert, AlertGroup
from it_support_agent.graph.app.serve import AlertIntake
from it_support_agent.incident.context import Context
from tests.integration.services import Receiver, wait_until

ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEFGHIJKL"  # 32 characters, as PagerDuty's integration keys
TOP_LEVEL = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}


def check_events_v2(event: dict[str, Any]) -> None:
    """The PagerDuty Events API v2 request body's rules (https://developer.pagerduty.com/api-reference/)."""
    assert set(event) <= TOP_LEVEL, set(event) - TOP_LEVEL
    assert event["routing_key"] == ROUTING_KEY and len(event["routing_key"]) == 32
    assert event["event_action"] in ("trigger", "acknowledge", "resolve")
    assert isinstance(event["dedup_key"], str) and 0 < len(event["dedup_key"]) <= 255
    if event["event_action"] != "trigger":
        assert set(event) == {"routing_key", "event_action", "dedup_key"}
        return
    payload = event["payload"]
    assert isinstance(payload["summary"], str) and 0 < len(payload["summary"]) <= 1024
    assert isinstance(payload["source"], str) and payload["source"]
    assert payload["severity"] in ("critical", "error", "warning", "info")
    for link in event.get("links", []):
        assert set(link) <= {"href", "text"} and link["href"].startswith("http")


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with Receiver() as receiver:
        monkeypatch.setenv("IT_SUPPORT_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        monkeypatch.setenv("IT_SUPPORT_PAGERDUTY_URL", receiver.url + "/v2/enqueue")
        monkeypatch.setenv("IT_SUPPORT_PAGERDUTY_DEDUP", "alertmanager")
        monkeypatch.setenv("IT_SUPPORT_CONSOLE_URL", "http://ops-console.internal:9095")
        yield receiver


def group(instance: str, name: str, status: str = "firing") -> AlertGroup:
    alert = Alert(
        status, {"alertname": name, "instance": instance}, {"summary": "firing"}, f"fp-{name}", "2026-12-02T10:00:00Z"
    )
    return AlertGroup(f'{{}}:{{alertname="{name}"}}', (alert,))


def events(receiver: Receiver) -> list[dict[str, Any]]:
    bodies = [body for _, _, body in receiver.requests]
    for body in bodies:
        check_events_v2(body)
    return bodies


def test_an_approved_restart_acknowledges_then_resolves_the_page_alertmanager_raised(
    pagerduty: Receiver, state_dir: Path
) -> None:
    intake = AlertIntake(Context(state_dir=str(state_dir), autonomy="approve"), workers=1)
    intake.start()
    try:
        firing = group("payment-server-01:9100", "HighCPU")
        thread_id = intake.submit(firing)["accepted"][0]["thread_id"]
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        wait_until(lambda: intake._app.get_state(config).interrupts or None, 30, "the approval request")
        app: Any = intake._app
        result = app.invoke(Command(resume={"decision": "approve"}), config, context=intake._context)
        # serve sends events from its delivery worker, after the run: wait for them
        wait_until(lambda: len(pagerduty.requests) >= 2 or None, 30, "the acknowledge and the resolve")
    finally:
        intake.stop()
    assert result["outcome"] == "restart" and result["restart"]["verified"]
    key = hashlib.sha256(firing.group_key.encode()).hexdigest()  # what Alertmanager's PagerDuty notifier sends
    sent = events(pagerduty)
    assert [(event["event_action"], event["dedup_key"]) for event in sent] == [("acknowledge", key), ("resolve", key)]


def test_an_escalation_triggers_with_a_console_link_and_the_resolved_alert_resolves_it(
    pagerduty: Receiver, state_dir: Path
) -> None:
    intake = AlertIntake(Context(state_dir=str(state_dir)), workers=1)
    intake.start()
    try:
        firing = group("search-index-09:9100", "IndexerDown")
        thread_id = intake.submit(firing)["accepted"][0]["thread_id"]
        wait_until(lambda: intake.pending() == 0 and pagerduty.requests or None, 30, "the trigger")
        intake.submit(group("search-index-09:9100", "IndexerDown", status="resolved"))
        wait_until(lambda: len(pagerduty.requests) == 2 or None, 30, "the resolve")
    finally:
        intake.stop()
    trigger, resolve = events(pagerduty)
    key = hashlib.sha256(firing.group_key.encode()).hexdigest()
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == key
    assert trigger["links"] == [
        {
            "href": f"http://ops-console.internal:9095/console/incident/{thread_id}",
            "text": "the incident in the it-support-agent console",
        }
    ]
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}
