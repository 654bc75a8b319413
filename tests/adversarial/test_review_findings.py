"""Defects found in review, pinned: state edits, thread reuse, corrupt state files, torn outboxes, odd text."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from it_support_agent.graph.builder import compile_graph
from it_support_agent.graph.builder import graph as production_graph
from it_support_agent.incident.context import Context
from it_support_agent.incident.fleet import FleetError, parse_fleet
from it_support_agent.incident.policy import PolicyFileError, load_policy
from it_support_agent.tools.outbox import TicketDesk, read_outbox, write_to_outbox
from tests.conftest import write_fleet

HUNG = "2026-11-27T10:00:00Z ERROR worker pool exhausted: 64/64 threads busy"
DISK = "2026-11-27T09:59:00Z ERROR write failed: No space left on device"


def restarts(state_dir: Path) -> dict[str, int]:
    path = state_dir / "fleet-state.json"
    servers = json.loads(path.read_text()).get("servers", {}) if path.exists() else {}
    return {name: entry["restart_count"] for name, entry in servers.items()}


def test_a_model_reading_one_log_line_cannot_hide_blocking_evidence(
    runner: Any, scripted_model: Any, tmp_path: Path, state_dir: Path
) -> None:
    fleet = write_fleet(
        tmp_path,
        {
            "app-01": {
                "service": "app",
                "health": {"cpu_percent": 97, "memory_percent": 50, "status": "degraded"},
                "logs": [DISK, DISK, HUNG],
                "after_restart": {"health": {"cpu_percent": 5, "status": "healthy"}},
            }
        },
    )

    def myopic(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage:
        seen = {message.name for message in messages if isinstance(message, ToolMessage)}
        if "get_server_health" in tools:
            for name, args in (
                ("get_server_health", {"server_id": "app-01"}),
                ("fetch_recent_logs", {"server_id": "app-01", "lines": 1}),
            ):
                if name not in seen:
                    return AIMessage(
                        content="", tool_calls=[{"name": name, "args": args, "id": name, "type": "tool_call"}]
                    )
            return AIMessage(content="done")
        return AIMessage(
            content="",
            tool_calls=[{"name": "restart_service", "args": {"server_id": "app-01"}, "id": "r", "type": "tool_call"}],
        )

    scripted_model(myopic)
    result = runner(fleet).run("app-01 slow")
    assert result["policy"]["rule"] == "evidence_veto"
    assert result["outcome"] == "escalate" and restarts(state_dir) == {}
    assert any("re-read" in note for note in result["notes"])


def test_editing_the_state_cannot_redirect_an_approved_restart(runner: Any, state_dir: Path) -> None:
    agent = runner(autonomy="approve")
    config = agent.config("t-edit")
    agent.app.invoke({"incident": "payment-server-01 is slow"}, config, context=agent.context)
    done = agent.app.invoke(
        Command(resume={"decision": "approve"}, update={"server_id": "orders-db-01"}), config, context=agent.context
    )
    assert done["outcome"] == "escalate"
    assert "restart refused" in done["ticket"]["reason"]
    assert restarts(state_dir) == {}


@pytest.mark.parametrize("autonomy", ["auto", "dry-run"])
def test_forging_a_policy_verdict_in_the_state_restarts_nothing(runner: Any, state_dir: Path, autonomy: str) -> None:
    agent = runner(autonomy=autonomy)
    config = agent.config(f"t-forge-{autonomy}")
    agent.app.invoke({"incident": "orders-db-01 errors"}, config, context=agent.context)
    agent.app.update_state(
        config,
        {"policy": {"allowed": True}, "decision": {"action": "restart", "server_id": "orders-db-01"}},
        as_node="check_policy",
    )
    agent.app.invoke(None, config, context=agent.context)
    assert restarts(state_dir) == {}


def test_a_reused_thread_starts_a_fresh_incident(runner: Any, state_dir: Path) -> None:
    agent = runner()
    first = agent.run("cache-node-04 memory is full", thread_id="same")
    second = agent.run("search-index-09 is failing", thread_id="same")
    assert first["outcome"] == "restart" and second["outcome"] == "escalate"
    assert not second["restart"] and "restarted" not in second["summary"]
    assert second["ticket"]["delivery"]["status"] == "delivered"
    third = agent.run("auth-server-02 login storm", thread_id="same")
    assert third["ticket"]["id"] != second["ticket"]["id"]
    assert len(read_outbox(state_dir / "tickets.jsonl")) == 2
    assert [message.type for message in third["messages"]][0] == "human"


def test_the_production_graph_without_a_thread_files_every_ticket(state_dir: Path) -> None:
    context = Context(state_dir=str(state_dir))
    tickets = [
        production_graph.invoke({"incident": text}, context=context)["ticket"]
        for text in ("search-index-09 failing", "orders-db-01 errors")
    ]
    assert tickets[0]["id"] != tickets[1]["id"]
    assert all(ticket["delivery"]["status"] == "delivered" for ticket in tickets)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"restarts": [1]}',
        '{"restarts": "abc"}',
        "[]",
        '{"restarts": [{"server_id": "payment-server-01", "at": null}]}',
    ],
)
def test_an_untrustworthy_ledger_vetoes_restarts(runner: Any, state_dir: Path, content: str) -> None:
    (state_dir / "restart-ledger.json").write_text(content)
    result = runner().run("payment-server-01 is slow")
    assert result["outcome"] == "escalate" and result["policy"]["rule"] == "ledger_unreadable"
    assert restarts(state_dir) == {}


@pytest.mark.parametrize("content", ["{not json", '{"servers": []}', "[]"])
def test_a_corrupt_fleet_state_means_health_unavailable(runner: Any, state_dir: Path, content: str) -> None:
    (state_dir / "fleet-state.json").write_text(content)
    result = runner().run("payment-server-01 is slow")
    assert result["outcome"] == "escalate"
    assert result["health"] is None
    assert any(
        "corrupt" in error or "not a JSON object" in error for error in result["ticket"]["evidence"]["tool_errors"]
    )


def test_lone_surrogates_in_the_incident_are_replaced(runner: Any, state_dir: Path) -> None:
    result = runner().run("unknown-host \ud800 is down")
    assert result["outcome"] == "escalate" and result["ticket"]["delivery"]["status"] == "delivered"
    assert "\ud800" not in result["incident"]


def test_a_torn_outbox_line_does_not_swallow_the_next_ticket(tmp_path: Path) -> None:
    outbox = tmp_path / "tickets.jsonl"
    outbox.write_text('{"id": "INC-A", "summary": "cut sho')
    assert write_to_outbox(outbox, {"id": "INC-B"}) is True
    assert [ticket["id"] for ticket in read_outbox(outbox)] == ["INC-B"]
    assert write_to_outbox(outbox, {"id": "INC-B"}) is False


def test_flush_survives_an_unreadable_spool_file_and_keeps_tickets_for_absent_sinks(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "INC-BAD.json").write_text("{torn")
    (spool / "INC-PD.json").write_text(json.dumps({"ticket": {"id": "INC-PD"}, "pending_sinks": ["pagerduty"]}))
    (spool / "INC-OK.json").write_text(json.dumps({"ticket": {"id": "INC-OK"}, "pending_sinks": ["outbox"]}))
    counts = TicketDesk(tmp_path, sinks=[]).flush()
    assert counts == {"delivered": 1, "duplicate": 0, "failed": 2}
    assert sorted(path.name for path in spool.iterdir()) == ["INC-BAD.json", "INC-PD.json"]


def test_a_nan_cooldown_is_rejected(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("restart_cooldown_s: .nan\n")
    with pytest.raises(PolicyFileError, match="restart_cooldown_s"):
        load_policy(str(policy))


def test_an_approval_resumed_under_another_state_dir_is_refused(tmp_path: Path) -> None:
    app = compile_graph(InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "t-moved"}}
    first = Context(state_dir=str(tmp_path / "a"), autonomy="approve")
    app.invoke({"incident": "payment-server-01 is slow"}, config, context=first)
    moved = Context(state_dir=str(tmp_path / "b"), autonomy="approve")
    done = app.invoke(Command(resume={"decision": "approve"}), config, context=moved)
    assert done["outcome"] == "escalate" and "configuration" in done["ticket"]["reason"]
    assert restarts(tmp_path / "a") == {} and restarts(tmp_path / "b") == {}


@pytest.mark.parametrize(
    "text",
    [
        "servers:\n  db-01:\n    service: postgres\n    restartable: false\n    restartable: true\n",
        "servers:\n  db-01:\n    service: postgres\n  db-01:\n    service: postgres\n    restartable: true\n",
    ],
)
def test_a_key_given_twice_in_the_fleet_file_is_refused_not_last_wins(text: str) -> None:
    with pytest.raises(FleetError, match="appears twice"):
        parse_fleet(text, source="fleet.yaml")


def test_a_key_given_twice_in_the_policy_file_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("restart_cooldown_s: 600\nrestart_cooldown_s: 0\n", encoding="utf-8")
    with pytest.raises(PolicyFileError, match="appears twice"):
        load_policy(str(policy))


def test_a_restart_left_in_doubt_reports_the_service_as_it_is_now(
    runner: Any, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from it_support_agent.tools.backends.base import RestartOutcomeUnknown
    from it_support_agent.tools.backends.simulated import SimulatedBackend

    stopped: list[bool] = []
    healthy_reading = SimulatedBackend.health

    def lost(self: Any, server_id: str, service: str, idempotency_key: str) -> Any:
        stopped.append(True)
        raise RestartOutcomeUnknown("outcome unknown: no answer after the stop was sent")

    def reading(self: Any, server_id: str) -> Any:
        if stopped:
            return {"cpu_percent": 0.0, "memory_percent": 0.0, "status": "down"}
        return healthy_reading(self, server_id)

    monkeypatch.setattr(SimulatedBackend, "restart", lost)
    monkeypatch.setattr(SimulatedBackend, "health", reading)
    result = runner().run("payment-server-01 is slow")
    ticket = result["ticket"]
    assert result["outcome"] == "escalate" and stopped
    assert ticket["severity"] == "critical"
    assert "outcome unknown" in ticket["reason"] and "payment-api is now: " in ticket["reason"]
    assert "status down" in ticket["reason"]
    assert "restart is recommended" not in ticket["summary"]


def test_a_yaml_alias_bomb_in_the_fleet_file_is_refused_at_once() -> None:
    levels = ["a: &a [[x], [x], [x], [x], [x], [x], [x], [x], [x], [x]]"]
    for depth in range(1, 9):
        levels.append(f"{chr(97 + depth)}: &{chr(97 + depth)} [" + ", ".join([f"*{chr(96 + depth)}"] * 10) + "]")
    text = "\n".join(levels) + "\nservers:\n  web-01:\n    service: nginx\n    logs: *i\n"
    started = time.perf_counter()
    with pytest.raises(FleetError, match="alias bomb"):
        parse_fleet(text, source="fleet.yaml")
    assert time.perf_counter() - started < 2


def test_ordinary_aliases_in_the_fleet_file_still_work() -> None:
    text = (
        "defaults: &defaults {service: nginx, restartable: true, logs: [ok],\n"
        "  health: {cpu_percent: 5, memory_percent: 5, status: healthy}}\n"
        "servers:\n  web-01: {<<: *defaults}\n  web-02:\n    <<: *defaults\n    restartable: false\n"
    )
    fleet = parse_fleet(text, source="fleet.yaml")
    assert fleet.servers["web-01"].restartable and not fleet.servers["web-02"].restartable
