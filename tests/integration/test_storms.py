"""A shared-dependency storm through `serve`'s intake: servers failing on one declared dependency give one parent
ticket and its updates, page once (PagerDuty groups the updates under the parent's dedup key), and the page is
resolved only when the last of their alerts resolves.

Expected before running, from PagerDuty's Events API v2 (a trigger with an open alert's dedup key adds to that
alert; a resolve closes it): three triggers with the parent ticket's key, no resolve while any server still
fails, then one resolve with that key. A server failing on another dependency files its own ticket and page."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from it_support_agent.graph.app.serve import AlertIntake
from it_support_agent.incident.context import DEMO_FLEET, Context
from tests.conftest import write_fleet
from tests.integration.services import Receiver, wait_until
from tests.integration.test_pagerduty_lifecycle import ROUTING_KEY, events, group

INDEXERS = ("search-index-09", "search-index-10", "search-index-11")


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with Receiver() as receiver:
        monkeypatch.setenv("IT_SUPPORT_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        monkeypatch.setenv("IT_SUPPORT_PAGERDUTY_URL", receiver.url + "/v2/enqueue")
        yield receiver


def storm_fleet(directory: Path) -> Path:
    servers = yaml.safe_load(DEMO_FLEET.read_text())["servers"]
    indexer = servers["search-index-09"]
    for name in INDEXERS[1:]:
        servers[name] = copy.deepcopy(indexer)
    other = copy.deepcopy(indexer)
    other["dependencies"] = ["search-backend-03"]
    other["logs"] = [line.replace("search-backend-02", "search-backend-03") for line in other["logs"]]
    servers["search-index-20"] = other
    return write_fleet(directory, servers)


def tickets(state_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state_dir / "tickets.jsonl").read_text().splitlines()]


def test_servers_failing_on_one_dependency_page_once_and_resolve_with_the_last(
    pagerduty: Receiver, state_dir: Path, tmp_path: Path
) -> None:
    intake = AlertIntake(Context(fleet_file=str(storm_fleet(tmp_path)), state_dir=str(state_dir)), workers=2)
    intake.start()
    try:
        firing = [group(f"{name}:9100", f"IndexerDown-{name}") for name in (*INDEXERS, "search-index-20")]
        for alert_group in firing:
            assert len(intake.submit(alert_group)["accepted"]) == 1
        wait_until(lambda: intake.pending() == 0 and len(pagerduty.requests) == 4 or None, 60, "four triggers")
        for name in INDEXERS[:2]:
            intake.submit(group(f"{name}:9100", f"IndexerDown-{name}", status="resolved"))
        intake.submit(group("search-index-20:9100", "IndexerDown-search-index-20", status="resolved"))
        wait_until(lambda: len(pagerduty.requests) == 5 or None, 30, "the other dependency's resolve")
        intake.submit(group(f"{INDEXERS[2]}:9100", f"IndexerDown-{INDEXERS[2]}", status="resolved"))
        wait_until(lambda: len(pagerduty.requests) == 6 or None, 30, "the storm's resolve")
    finally:
        intake.stop()

    exported = tickets(state_dir)
    filed = [ticket for ticket in exported if ticket.get("kind") != "ticket_resolved"]
    notices = [ticket["resolves"] for ticket in exported if ticket.get("kind") == "ticket_resolved"]
    storm = [ticket for ticket in filed if ticket.get("dependency") == "search-backend-02"]
    parents = [ticket for ticket in storm if ticket.get("kind") != "ticket_update"]
    updates = [ticket for ticket in storm if ticket.get("kind") == "ticket_update"]
    assert len(parents) == 1 and len(updates) == 2, [(t["id"], t.get("kind")) for t in filed]
    parent = parents[0]
    assert {update["update_of"] for update in updates} == {parent["id"]}
    assert sorted(len(update["affected_servers"]) for update in updates) == [2, 3]
    assert set(max(updates, key=lambda u: len(u["affected_servers"]))["affected_servers"]) == set(INDEXERS)
    own = [ticket for ticket in filed if ticket.get("server_id") == "search-index-20"]
    assert len(own) == 1 and own[0]["dependency"] == "search-backend-03" and own[0].get("kind") is None
    assert sorted(notices) == sorted([parent["id"], own[0]["id"]])  # the storm's once, with its last server

    sent = events(pagerduty)
    storm_key = parent["pagerduty_dedup_key"]
    assert storm_key == parent["id"] and {update["pagerduty_dedup_key"] for update in updates} == {storm_key}
    storm_events = [event for event in sent if event["dedup_key"] == storm_key]
    assert [event["event_action"] for event in storm_events] == ["trigger", "trigger", "trigger", "resolve"]
    assert sent[-1] == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": storm_key}
    other_key = own[0]["id"]
    assert [event["event_action"] for event in sent if event["dedup_key"] == other_key] == ["trigger", "resolve"]


def test_serve_with_retain_days_forgets_old_finished_incidents_and_keeps_their_tickets(state_dir: Path) -> None:
    import sqlite3

    from it_support_agent.tools.store import open_store

    context = Context(state_dir=str(state_dir))
    intake = AlertIntake(context, workers=1)
    intake.start()
    try:
        old = intake.submit(group("orders-db-01:9100", "DiskFull"))["accepted"][0]["thread_id"]
        recent = intake.submit(group("search-index-09:9100", "IndexerDown"))["accepted"][0]["thread_id"]
        wait_until(lambda: intake.pending() == 0 or None, 60, "both runs")
    finally:
        intake.stop()
    with sqlite3.connect(state_dir / "checkpoints.sqlite") as connection:  # the first happened 40 days ago
        connection.execute("UPDATE agent_threads SET created_at = created_at - 40 * 86400 WHERE thread_id = ?", (old,))
    store = open_store(state_dir)
    kept = AlertIntake(context, workers=1, retain_days=30)
    kept.start()
    try:
        wait_until(lambda: [row[0] for row in store.threads()] == [recent] or None, 30, "the old incident forgotten")
    finally:
        kept.stop()
    with sqlite3.connect(state_dir / "checkpoints.sqlite") as connection:
        threads = {row[0] for row in connection.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert threads == {recent}
    assert [ticket["thread_id"] for ticket in store.tickets(old)] == [old]  # its ticket stays
    assert list(store.audit_events(old))  # and its audit trail (--retain-audit would forget it)


def test_a_resolved_alert_tells_the_webhook_and_slack_that_its_ticket_resolved(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Receiver() as receiver:
        monkeypatch.setenv("IT_SUPPORT_WEBHOOK_URL", receiver.url + "/hook")
        monkeypatch.setenv("IT_SUPPORT_SLACK_WEBHOOK_URL", receiver.url + "/slack")
        intake = AlertIntake(Context(state_dir=str(state_dir)), workers=1)
        intake.start()
        try:
            intake.submit(group("orders-db-01:9100", "DiskFull"))
            wait_until(lambda: len(receiver.bodies("/hook")) == 1 or None, 60, "the ticket at the webhook")
            intake.submit(group("orders-db-01:9100", "DiskFull", status="resolved"))
            wait_until(lambda: len(receiver.bodies("/slack")) == 2 or None, 30, "the notice in Slack")
            wait_until(lambda: len(receiver.bodies("/hook")) == 2 or None, 30, "the notice at the webhook")
        finally:
            intake.stop()
    ticket, notice = receiver.bodies("/hook")
    assert notice["kind"] == "ticket_resolved" and notice["resolves"] == ticket["id"]
    assert notice["dedup_key"] == ticket["dedup_key"] and notice["server_id"] == "orders-db-01"
    assert receiver.bodies("/slack")[1]["text"].startswith(f"[RESOLVED] {ticket['id']}: resolved: the alert behind")


def test_an_alert_that_resolves_while_its_run_is_in_progress_resolves_the_ticket_it_files(state_dir: Path) -> None:
    intake = AlertIntake(Context(state_dir=str(state_dir)), workers=1)  # not started: this test is the worker
    firing = group("orders-db-01:9100", "DiskFull")
    [accepted] = intake.submit(firing)["accepted"]
    item = intake._store.claim("test-worker")
    assert item is not None and item.thread_id == accepted["thread_id"]
    answer = intake.submit(group("orders-db-01:9100", "DiskFull", status="resolved"))  # while it "runs"
    assert answer["resolved"] == [item.thread_id]
    outcome = intake._run(item)
    intake._finish(item, outcome)
    assert outcome == "escalate"
    exported = tickets(state_dir)
    assert [ticket.get("kind") for ticket in exported] == [None, "ticket_resolved"]
    assert exported[1]["resolves"] == exported[0]["id"]


def test_flush_by_hand_sends_what_is_backing_off_and_reports_what_stays_owed(state_dir: Path) -> None:
    from it_support_agent.tools.outbox import TicketDesk
    from it_support_agent.tools.sinks import configured_sinks
    from it_support_agent.tools.store import open_store

    with Receiver() as receiver:
        sinks = configured_sinks({"IT_SUPPORT_WEBHOOK_URL": receiver.url + "/hook", "IT_SUPPORT_SINK_ATTEMPTS": "1"})
        desk = TicketDesk(state_dir, sinks)
        receiver.status = 503
        for number in range(60):  # more than any one batch
            assert (
                desk.deliver({"id": f"INC-{number:02d}", "dedup_key": f"INC-{number:02d}"}, background=True)["status"]
                == "queued"
            )
        assert desk.flush(spool=False, due_only=True)["failed"] == 60  # all tried once, now backing off
        assert desk.flush(spool=False, due_only=True) == {"delivered": 0, "duplicate": 0, "failed": 0}  # none due
        receiver.status = 200
        assert desk.flush() == {"delivered": 60, "duplicate": 0, "failed": 0}  # by hand: everything owed
    assert open_store(state_dir).owed_deliveries() == []
    assert len(receiver.bodies("/hook")) == 60 + 60
