"""Helpers the nodes share: the thread id, the infrastructure for a run, and the evidence in the conversation."""

from __future__ import annotations

import logging
from typing import Any

from langgraph.config import get_config

from it_support_agent.incident.context import Context
from it_support_agent.incident.records import DecisionRecord
from it_support_agent.incident.state import IncidentState
from it_support_agent.tools.infrastructure import Infrastructure, open_infrastructure
from it_support_agent.tools.results import latest_tool_result
from it_support_agent.tools.store import StoreError, open_store

log = logging.getLogger(__name__)


def current_thread_id() -> str:
    """The thread id of the running graph ('unthreaded' outside a checkpointed run)."""
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError:
        return "unthreaded"
    return str(configurable.get("thread_id") or "unthreaded")


def infrastructure(context: Context) -> Infrastructure:
    return open_infrastructure(context.fleet_path, context.state_path)


def gathered_evidence(state: IncidentState) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The newest health and log tool results in the conversation (None for a tool never called)."""
    messages = state.get("messages", [])
    return latest_tool_result(messages, "get_server_health"), latest_tool_result(messages, "fetch_recent_logs")


def proposed_by_model(decision: DecisionRecord) -> bool:
    """The decision came from an LLM's tool call (not the offline triage model, not the agent itself)."""
    return str(decision.get("by") or "").startswith("LLM ")


def restart_key(incident_id: str, server_id: str) -> str:
    """The idempotency key of an incident's restart: one per incident and server."""
    return f"{incident_id}:restart:{server_id}"


def health_figures(health: dict[str, Any] | None) -> str:
    """Health as one short phrase, e.g. 'CPU 98.5%, memory 71.0%, status degraded'."""
    if not health:
        return "health unavailable"
    cpu = health.get("cpu_percent")
    memory = health.get("memory_percent")
    parts = [
        f"CPU {cpu:.1f}%" if isinstance(cpu, int | float) else "CPU n/a",
        f"memory {memory:.1f}%" if isinstance(memory, int | float) else "memory n/a",
        f"status {health.get('status', 'unknown')}",
    ]
    return ", ".join(parts)


def index_thread(context: Context, server_id: str | None = None, outcome: str | None = None) -> None:
    """Note the incident in the store's thread index (what `list` reads); a store that cannot be written is logged,
    never a reason to stop handling the incident."""
    try:
        open_store(context.state_path).note_thread(current_thread_id(), server_id, outcome)
    except StoreError as exc:
        log.error("thread index not updated: %s", exc)


def pagerduty_event(context: Context, state: IncidentState, thread_id: str, action: str) -> None:
    """Acknowledge or resolve the PagerDuty alert that Alertmanager raised for this incident's alert group.

    Only with IT_SUPPORT_PAGERDUTY_DEDUP=alertmanager and an incident that came from an alert: the agent then joins
    the page the team already has (same dedup key) instead of raising a second one. Delivered like a ticket: a
    PagerDuty that is down leaves the event in the spool for `flush`."""
    from it_support_agent.tools import audit
    from it_support_agent.tools.outbox import TicketDesk
    from it_support_agent.tools.sinks import PAGERDUTY_EVENT, alertmanager_dedup_key, uses_alertmanager_dedup

    group = state.get("alert_group")
    if not group or not uses_alertmanager_dedup():
        return
    key = alertmanager_dedup_key(group)
    event = {
        "id": f"PD-{action}-{key[:16]}-{str(state.get('incident_id') or thread_id)[:12]}",
        "kind": PAGERDUTY_EVENT,
        "event_action": action,
        "dedup_key": key,
        "thread_id": thread_id,
    }
    delivery = TicketDesk(context.state_path).deliver(event, background=context.deliveries == "background")
    audit.record(context.state_path, thread_id, "pagerduty_event", action=action, delivery=delivery["status"])
