"""The escalate node: an evidence-backed ticket for a human engineer, delivered exactly once."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Mapping
from typing import Any, cast

from langchain_core.messages import ToolMessage
from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.records import DecisionRecord
from it_support_agent.incident.state import IncidentState
from it_support_agent.incident.storms import STORM_WINDOW_S, implicated_dependency
from it_support_agent.incident.text import redact_value, strip_controls
from it_support_agent.nodes.common import current_thread_id, health_figures, infrastructure, restart_key
from it_support_agent.tools import audit
from it_support_agent.tools.infrastructure import open_infrastructure
from it_support_agent.tools.outbox import TicketDesk
from it_support_agent.tools.results import tool_result
from it_support_agent.tools.sinks import alertmanager_dedup_key, uses_alertmanager_dedup
from it_support_agent.tools.statefile import is_disk_full, release_reserve
from it_support_agent.tools.store import StoreError, open_store

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
        result = tool_result(message) if isinstance(message, ToolMessage) else None
        if result and result.get("status") != "success" and result.get("error"):
            line = f"{message.name}: {result['error']}"
            if line not in errors:
                errors.append(line)
    return errors[:5]


def model_reading(decision: DecisionRecord) -> dict[str, Any]:
    """The LLM's own reading for the ticket, marked as the model's: its hypothesis of the cause is not verified by
    the agent; each line it cited as blocking a restart was found verbatim in the evidence."""
    reading: dict[str, Any] = {}
    if decision.get("hypothesis"):
        reading["hypothesis"] = decision["hypothesis"]
    if decision.get("blocking_lines"):
        reading["blocking_lines"] = list(decision["blocking_lines"])
    if decision.get("uncited_lines"):
        reading["cited_but_not_in_the_evidence"] = list(decision["uncited_lines"])
    if not reading:
        return {}
    note = "the model's reading, not a finding: the hypothesis is unverified; blocking lines are quoted from the logs"
    return {"model_reading": {"by": decision.get("by"), "note": note, **reading}}


def new_ticket(
    incident_id: str,
    thread_id: str,
    *,
    server_id: str | None,
    severity: str,
    reason: str,
    summary: str,
    incident: str,
    **details: Any,
) -> dict[str, Any]:
    """A ticket: stable id and dedup key per incident, when, where, why, and whatever else the caller knows.

    Every text in it is redacted: it goes to the outbox, the spool, every sink and the checkpoint."""
    ticket = {
        "id": ticket_id(incident_id),
        "dedup_key": ticket_id(incident_id),
        "thread_id": thread_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "server_id": server_id,
        "severity": severity,
        "reason": reason,
        "summary": summary,
        "incident": "\n".join(
            strip_controls(line) for line in incident.encode("utf-8", "replace").decode("utf-8")[:500].splitlines()
        ),
        "evidence": {},
        "actions_taken": [],
        "restart": None,
        "operator_comment": None,
        "model": None,
        **details,
    }
    return cast(dict[str, Any], redact_value(ticket))


def file_ticket(state_dir: str, ticket: dict[str, Any], background: bool = False) -> dict[str, Any]:
    """Deliver a ticket (or spool it; `background`: queue it for the sinks) and record the escalation in the
    audit trail; the delivery report."""
    delivery = TicketDesk(state_dir).deliver(ticket, background=background)
    audit.record(
        state_dir,
        ticket["thread_id"],
        "escalation",
        ticket_id=ticket["id"],
        reason=ticket["reason"],
        delivery=delivery["status"],
    )
    return delivery


STORM_UPDATE = "ticket_update"


def in_storm(context: Context, state: IncidentState, ticket: dict[str, Any]) -> dict[str, Any]:
    """The ticket as one of a shared-dependency storm's: the first server's ticket is the storm's parent ticket
    (naming the dependency); each server that fails on it later sends an update of that ticket, listing every
    server so far and paging with the parent's key, instead of a ticket of its own. Unchanged when no declared
    dependency is implicated, after a restart, or when the store cannot say (then it is filed on its own)."""
    server_id = state.get("server_id")
    if not server_id or state.get("restart"):
        return ticket
    dependency = implicated_dependency(state.get("diagnosis", {}), infrastructure(context).fleet.get(server_id))
    if dependency is None:
        return ticket
    try:
        page_key = str(ticket.get("pagerduty_dedup_key") or ticket["id"])
        storm = open_store(context.state_path).join_storm(
            dependency, str(ticket["thread_id"]), server_id, (str(ticket["id"]), page_key), STORM_WINDOW_S
        )
    except StoreError:
        return ticket
    servers = list(storm.servers)
    if storm.position == 0:  # the parent ticket (a later incident of its server is the same ticket again)
        parent = {**ticket, "id": storm.parent_id, "dedup_key": storm.parent_id, "pagerduty_dedup_key": storm.page_key}
        return {**parent, "dependency": dependency, "affected_servers": servers}
    return {
        **ticket,
        "id": f"{storm.parent_id}-{storm.position}",
        "kind": STORM_UPDATE,
        "update_of": storm.parent_id,
        "dedup_key": storm.parent_id,
        # the parent's page; with IT_SUPPORT_PAGERDUTY_DEDUP=alertmanager, the page of its own alert group, which
        # Alertmanager raised and resolves itself (the parent's group may resolve while this one still fires)
        "pagerduty_dedup_key": ticket.get("pagerduty_dedup_key") or storm.page_key,
        "dependency": dependency,
        "affected_servers": servers,
        "summary": f"{dependency}, a dependency {len(servers)} servers share, is failing: "
        f"{', '.join(servers)} (ticket {storm.parent_id}; {server_id} joined it)",
    }


def escalate(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Build the ticket and deliver it to the outbox (or its spool when the outbox is down)."""
    context = runtime.context
    thread_id = current_thread_id()
    diagnosis = state.get("diagnosis", {})
    decision = state.get("decision", {})
    reason = escalation_reason(state)
    restart_record = state.get("restart") or {}
    summary = (
        reason  # a restart was tried and failed or is in doubt: the diagnosis' "a restart is recommended" is moot
        if restart_record.get("error")
        else decision.get("reason")
        if decision.get("action") == "escalate" and not decision.get("problem")
        else (diagnosis.get("reason") or reason)
    )
    ticket = new_ticket(
        state.get("incident_id") or thread_id,
        thread_id,
        server_id=state.get("server_id"),
        severity=severity(state),
        reason=reason,
        summary=str(summary or reason),
        incident=state.get("incident") or "",
        evidence={
            "health": state.get("health"),
            "health_summary": health_figures(state.get("health")),
            "category": diagnosis.get("category"),
            "log_lines": list(diagnosis.get("evidence", [])),
            "for_finding": list(diagnosis.get("for", [])),
            "against_finding": list(diagnosis.get("against", [])),
            "not_explained_by_finding": list(diagnosis.get("unexplained", [])),
            "tool_errors": tool_errors(state),
            **model_reading(decision),
        },
        actions_taken=[action for action in state.get("actions", []) if action.get("action") != "escalate"],
        restart=state.get("restart"),
        operator_comment=(state.get("approval") or {}).get("comment"),
        model=state.get("model"),
    )
    if state.get("alert_group") and uses_alertmanager_dedup():  # join the page Alertmanager raised for the group
        ticket["pagerduty_dedup_key"] = alertmanager_dedup_key(str(state["alert_group"]))
    ticket = in_storm(context, state, ticket)
    delivery = file_ticket(context.state_path, ticket, background=context.deliveries == "background")
    return {
        "ticket": {**ticket, "delivery": delivery},
        "outcome": "escalate",
        "escalation_reason": reason,
        "actions": [
            {
                "action": "escalate_to_engineer",
                "ticket_id": ticket["id"],
                "status": delivery["status"],
                "detail": reason,
            }
        ],
    }


def file_unfinished(
    context: Context, thread_id: str, values: Mapping[str, Any], incident: str, error: BaseException
) -> dict[str, Any]:
    """A run that stopped on an error still reaches a human: what it knew, whether it acted, the service now.

    Used when a step raised, or its checkpoint or audit could not be written (a full disk, a broken store): the
    restart's idempotency key says whether a restart was started, and the service is read again. A full disk gives
    up the state directory's reserve first, so the ticket can be kept. Answers the ticket with its `delivery`
    (status "failed" when it could be written nowhere: the caller then prints it)."""
    problem = " ".join(str(error).split())[:300] or type(error).__name__
    if is_disk_full(error):
        release_reserve(context.state_path)
    server_id = values.get("server_id")
    incident_id = str(values.get("incident_id") or thread_id)
    acted, state_now = "no restart was started", ""
    if server_id:
        try:
            store = open_store(context.state_path)
            status = store.key_status(restart_key(incident_id, server_id))
            if status is None:  # backends that keep their own keys: the audit trail says whether it began
                kinds = [event.get("kind") for event in store.audit_events(thread_id)]
                status = "in_flight" if "action_intent" in kinds and "action_result" not in kinds else None
        except StoreError:
            status = "unreadable"
        acted = {
            None: "no restart was started",
            "done": f"a restart of {server_id} ran",
            "in_flight": f"a restart of {server_id} was started and its outcome was not recorded: it is unknown",
            "unreadable": f"whether a restart of {server_id} ran cannot be read from the state store",
        }.get(status, f"a restart of {server_id} is recorded as {status}")
        try:
            health: dict[str, Any] | None = dict(
                open_infrastructure(context.fleet_path, context.state_path).backend.health(server_id)
            )
        except Exception:  # noqa: BLE001 - an unreadable service is reported as such
            health = None
        state_now = f"; {server_id} is now: {health_figures(health)}" if health else f"; {server_id} now: unknown"
    ticket = new_ticket(
        f"{incident_id}:unfinished",
        thread_id,
        server_id=server_id,
        severity="critical" if "unknown" in acted or "down" in state_now else "high",
        reason=f"the agent stopped before finishing this incident: {type(error).__name__}: {problem}",
        summary=f"{acted}{state_now}. Once the cause is fixed, `it-support-agent resume {thread_id}` finishes it.",
        incident=incident or str(values.get("incident") or ""),
    )
    try:
        ticket["delivery"] = TicketDesk(context.state_path).deliver(ticket)
    except OSError as exc:  # not even the spool could take it: the caller must print it
        ticket["delivery"] = {"status": "failed", "error": f"the ticket could be written nowhere: {exc}"}
    with contextlib.suppress(Exception):
        audit.record(context.state_path, thread_id, "escalation", ticket_id=ticket["id"], reason=ticket["reason"])
    return ticket
