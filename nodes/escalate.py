"""The escalate node: an evidence-backed ticket for a human engineer, delivered exactly once."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from langchain_core.messages import ToolMessage
from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import IncidentState
from nodes.common import current_thread_id, health_figures
from tools import audit
from tools.outbox import TicketDesk

_CRITICAL = {"security_event", "hardware_fault"}
_HIGH = {"dependency_failure", "disk_full", "config_error"}


def ticket_id(incident_id: str) -> str:
    """A stable ticket id per incident, which doubles as the delivery dedup key."""
    return "INC-" + hashlib.sha256(incident_id.encode()).hexdigest()[:10].upper()


def severity(state: IncidentState) -> str:
    category = state.get("diagnosis", {}).get("category", "")
    status = (state.get("health") or {}).get("status")
    if category in _CRITICAL or status == "down":
        return "critical"
    if category in _HIGH or status == "degraded" or state.get("restart"):
        return "high"
    return "medium"


def escalation_reason(state: IncidentState) -> str:
    """Why this incident reached a human, most specific first."""
    decision = state.get("decision", {})
    if state.get("escalation_reason"):
        return str(state["escalation_reason"])
    if decision.get("action") == "escalate":
        return str(decision.get("problem") or decision.get("reason") or "the model chose to escalate")
    return "escalated"


def tool_errors(state: IncidentState) -> list[str]:
    """What the read-only tools could not get (e.g. 'health unavailable: Prometheus unreachable')."""
    errors: list[str] = []
    for message in state.get("messages", []):
        if isinstance(message, ToolMessage) and isinstance(message.artifact, dict):
            error = message.artifact.get("error")
            if message.artifact.get("status") != "success" and error and error not in errors:
                errors.append(f"{message.name}: {error}")
    return errors[:5]


def escalate(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Build the ticket and deliver it to the outbox (or its spool when the outbox is down)."""
    context = runtime.context
    thread_id = current_thread_id()
    diagnosis = state.get("diagnosis", {})
    decision = state.get("decision", {})
    reason = escalation_reason(state)
    summary = decision.get("reason") if decision.get("action") == "escalate" and not decision.get("problem") else (
        diagnosis.get("reason") or reason)
    incident_id = state.get("incident_id") or thread_id
    ticket = {
        "id": ticket_id(incident_id),
        "dedup_key": ticket_id(incident_id),
        "thread_id": thread_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "server_id": state.get("server_id"),
        "severity": severity(state),
        "reason": reason,
        "summary": summary,
        "incident": (state.get("incident") or "")[:500],
        "evidence": {
            "health": state.get("health"),
            "health_summary": health_figures(state.get("health")),
            "category": diagnosis.get("category"),
            "log_lines": list(diagnosis.get("evidence", [])),
            "tool_errors": tool_errors(state),
        },
        "actions_taken": [action for action in state.get("actions", []) if action.get("action") != "escalate"],
        "restart": state.get("restart"),
        "operator_comment": (state.get("approval") or {}).get("comment"),
        "model": state.get("model"),
    }
    delivery = TicketDesk(context.state_path).deliver(ticket)
    audit.record(context.state_path, thread_id, "escalation", ticket_id=ticket["id"], reason=reason,
                 delivery=delivery["status"])
    return {
        "ticket": {**ticket, "delivery": delivery},
        "outcome": "escalate",
        "escalation_reason": reason,
        "actions": [{"action": "escalate_to_engineer", "ticket_id": ticket["id"], "status": delivery["status"],
                     "detail": reason}],
    }
