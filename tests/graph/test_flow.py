"""The whole graph on the offline model: seed incidents, routing, verification, policy and modes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from it_support_agent.tools.outbox import read_outbox
from tests.conftest import write_fleet

PAYMENT = "The payment-server-01 is extremely slow and timing out."
SEARCH = "search-index-09 is failing to index new documents"


def tool_call(name: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{name}", "type": "tool_call"}])


def honest_diagnosis(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage | None:
    """Gather health then logs for payment-server-01, like a well-behaved model."""
    if "get_server_health" not in tools:
        return None
    seen = {message.name for message in messages if isinstance(message, ToolMessage)}
    if "get_server_health" not in seen:
        return tool_call("get_server_health", server_id="payment-server-01")
    if "fetch_recent_logs" not in seen:
        return tool_call("fetch_recent_logs", server_id="payment-server-01", lines=50)
    return AIMessage(content="gathered")


def test_seed_payment_server_is_restarted_and_verified(runner: Any, state_dir: Path) -> None:
    result = runner().run(PAYMENT)
    assert result["server_id"] == "payment-server-01"
    assert result["outcome"] == "restart"
    assert result["restart"]["performed"] and result["restart"]["verified"]
    assert result["restart"]["after"]["status"] == "healthy"
    assert any("worker pool exhausted" in line for line in result["diagnosis"]["evidence"])
    assert result.get("ticket") is None
    assert "restarted payment-api" in result["summary"]
    assert "offline triage model" in result["summary"]
    assert read_outbox(state_dir / "tickets.jsonl") == []


def test_seed_search_index_is_escalated_with_the_dependency_evidence(runner: Any, state_dir: Path) -> None:
    result = runner().run(SEARCH)
    assert result["outcome"] == "escalate"
    assert result["diagnosis"]["category"] == "dependency_failure"
    assert not result.get("restart")
    ticket = result["ticket"]
    assert ticket["server_id"] == "search-index-09"
    assert any("connection refused" in line.lower() for line in ticket["evidence"]["log_lines"])
    assert ticket["evidence"]["health"]["cpu_percent"] == 12.0
    outbox = read_outbox(state_dir / "tickets.jsonl")
    assert [entry["id"] for entry in outbox] == [ticket["id"]]
    assert ticket["id"] in result["summary"]


@pytest.mark.parametrize(
    ("server", "outcome", "category"),
    [
        ("auth-server-02", "escalate", "security_event"),
        ("orders-db-01", "escalate", "disk_full"),
        ("cache-node-04", "restart", "memory_pressure"),
        ("web-frontend-05", "none", "no_fault"),
        ("inventory-api-07", "escalate", "config_error"),
        ("db-node-03", "escalate", "hardware_fault"),
        ("report-worker-06", "restart", "oom_kill"),
    ],
)
def test_demo_fleet_outcomes(runner: Any, server: str, outcome: str, category: str) -> None:
    result = runner().run(f"{server} is acting up")
    assert (result["outcome"], result["diagnosis"]["category"]) == (outcome, category)


def test_restart_that_does_not_help_is_escalated_with_before_and_after(runner: Any, state_dir: Path) -> None:
    result = runner().run("queue-broker-03 is stuck")
    assert result["restart"]["performed"] is True
    assert result["restart"]["verified"] is False
    assert result["outcome"] == "escalate"
    assert result["ticket"]["reason"].startswith("restart did not help: before CPU 99.1%")
    assert "after CPU 99.1%" in result["ticket"]["reason"]
    assert result["ticket"]["actions_taken"][0]["action"] == "restart_service"


@pytest.mark.parametrize("incident", ["the thing is broken again", "db-node-99 is slow", "   "])
def test_unidentified_server_is_escalated_not_an_error(runner: Any, incident: str) -> None:
    result = runner().run(incident)
    assert result["server_id"] is None
    assert result["outcome"] == "escalate"
    assert "server not identified" in result["ticket"]["reason"] or "empty incident" in result["ticket"]["reason"]


@pytest.mark.parametrize(
    "text",
    [
        "Payment-Server-01 slow",
        "payment server 01 slow",
        "PAYMENT_SERVER_01 is slow",
        "the payment server 01 box is crawling",
    ],
)
def test_loose_server_names_are_matched(runner: Any, text: str) -> None:
    assert runner().run(text)["server_id"] == "payment-server-01"


def malformed(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage:
    return honest_diagnosis(tools, messages) or AIMessage(
        content="",
        invalid_tool_calls=[
            {
                "name": "restart_service",
                "args": '{"server_id": "payment-ser',
                "id": "bad",
                "error": "invalid JSON",
                "type": "invalid_tool_call",
            }
        ],
    )


def no_call(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage:
    return honest_diagnosis(tools, messages) or AIMessage(content="I think a restart would help.")


def wrong_server(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage:
    return honest_diagnosis(tools, messages) or tool_call("restart_service", server_id="db-node-03")


def unknown_tool(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage:
    return honest_diagnosis(tools, messages) or tool_call("delete_deployment", deployment="payment-api")


def missing_argument(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage:
    return honest_diagnosis(tools, messages) or tool_call("restart_service")


def conflicting(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage:
    if (first := honest_diagnosis(tools, messages)) is not None:
        return first
    return AIMessage(
        content="",
        tool_calls=[
            {"name": "restart_service", "args": {"server_id": "payment-server-01"}, "id": "a", "type": "tool_call"},
            {"name": "escalate_to_engineer", "args": {"summary": "x"}, "id": "b", "type": "tool_call"},
        ],
    )


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (malformed, "malformed"),
        (no_call, "no decision"),
        (wrong_server, "not the incident's server"),
        (unknown_tool, "not offered"),
        (missing_argument, "not the incident's server"),
        (conflicting, "conflicting"),
    ],
)
def test_irregular_decisions_route_to_escalate_never_restart(
    runner: Any, scripted_model: Any, state_dir: Path, script: Any, reason: str
) -> None:
    scripted_model(script)
    result = runner().run(PAYMENT)
    assert result["outcome"] == "escalate"
    assert not result.get("restart")
    assert reason in result["ticket"]["reason"]
    assert not (state_dir / "fleet-state.json").exists()


def test_model_restart_without_evidence_is_vetoed_by_policy(runner: Any, scripted_model: Any) -> None:
    def restart_anyway(tools: tuple[str, ...], messages: Sequence[BaseMessage]) -> AIMessage:
        if "get_server_health" in tools:
            return AIMessage(content="skip")
        return tool_call("restart_service", server_id="search-index-09")

    scripted_model(restart_anyway)
    result = runner().run(SEARCH)
    assert result["outcome"] == "escalate"
    assert result["policy"]["rule"] == "evidence_veto"
    assert "dependency_failure" in result["ticket"]["reason"]
    assert any("model did not read" in note for note in result["notes"])


def test_decide_offers_exactly_the_decision_tools(runner: Any, scripted_model: Any) -> None:
    model = scripted_model(
        lambda tools, messages: (
            honest_diagnosis(tools, messages) or tool_call("escalate_to_engineer", summary="looks deep")
        )
    )
    result = runner().run(PAYMENT)
    assert model.calls[0] == ("get_server_health", "fetch_recent_logs")
    assert model.calls[-1] == ("restart_service", "escalate_to_engineer", "close_no_fault")
    assert result["ticket"]["summary"] == "looks deep"


def test_not_restartable_server_is_never_restarted(runner: Any, tmp_path: Path) -> None:
    fleet = write_fleet(
        tmp_path,
        {
            "core-db-01": {
                "service": "postgresql",
                "restartable": False,
                "health": {"cpu_percent": 99.0, "memory_percent": 50.0, "status": "degraded"},
                "logs": ["2026-11-27T10:00:00Z ERROR worker pool exhausted: 64/64 threads busy"],
            }
        },
    )
    result = runner(fleet).run("core-db-01 slow")
    assert result["outcome"] == "escalate"
    assert result["policy"]["rule"] == "not_restartable"


def test_a_second_incident_after_a_good_restart_finds_the_server_healthy(runner: Any, state_dir: Path) -> None:
    first = runner().run(PAYMENT)
    second = runner().run("payment-server-01 slow again")
    assert first["outcome"] == "restart"
    assert second["outcome"] == "none" and second["health"]["status"] == "healthy"
    fleet_state = json.loads((state_dir / "fleet-state.json").read_text())
    assert fleet_state["servers"]["payment-server-01"]["restart_count"] == 1


def test_dry_run_restarts_nothing_and_says_what_it_would_do(runner: Any, state_dir: Path) -> None:
    result = runner(autonomy="dry-run").run(PAYMENT)
    assert result["outcome"] == "none"
    assert result["would_restart"] is True
    assert not result.get("restart")
    assert "would have been performed" in result["summary"]
    assert not (state_dir / "fleet-state.json").exists()


def test_a_typed_name_with_a_typo_is_matched_and_said_so(runner: Any) -> None:
    result = runner().run("pyament-server-01 is extremely slow")
    assert result["server_id"] == "payment-server-01"
    assert "taken as payment-server-01" in result["summary"]


def test_a_name_close_to_two_servers_is_never_guessed(runner: Any, tmp_path: Path) -> None:
    fleet = write_fleet(
        tmp_path,
        {
            "memcached-01-ams": {
                "service": "memcached",
                "health": {"cpu_percent": 20, "memory_percent": 97, "status": "degraded"},
                "logs": [],
            },
            "memcached-01-fra": {
                "service": "memcached",
                "health": {"cpu_percent": 20, "memory_percent": 96, "status": "degraded"},
                "logs": [],
            },
        },
    )
    result = runner(fleet).run("memcached-01 at 97% memory, please restart it")
    assert result["server_id"] is None and result["outcome"] == "escalate"
    assert "memcached-01-ams, memcached-01-fra" in result["ticket"]["reason"]


def test_the_report_and_ticket_show_the_evidence_for_and_against(runner: Any, tmp_path: Path) -> None:
    fleet = write_fleet(
        tmp_path,
        {
            "api-01": {
                "service": "api",
                "health": {"cpu_percent": 99, "memory_percent": 40, "status": "degraded"},
                "logs": [
                    "2026-11-27T09:58:01Z WARN api process cpu 99% over last 60s",
                    "2026-11-27T09:58:02Z WARN zfs: pool tank state changed to SUSPENDED",
                ],
            }
        },
    )
    result = runner(fleet).run("api-01 is slow")
    assert result["outcome"] == "escalate" and not result.get("restart")
    assert "for     > 2026-11-27T09:58:01Z WARN api process cpu 99%" in result["summary"]
    assert "against > 2026-11-27T09:58:02Z WARN zfs" in result["summary"]
    evidence = result["ticket"]["evidence"]
    zfs = "2026-11-27T09:58:02Z WARN zfs: pool tank state changed to SUSPENDED"
    assert evidence["not_explained_by_finding"] == [zfs]
    assert "not explained by that finding" in result["ticket"]["reason"]
