"""The report node: the concise operator-facing answer (what was seen, what was done, the ticket)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.state import IncidentState
from it_support_agent.incident.storms import STORM_WINDOW_S
from it_support_agent.nodes.common import health_figures, index_thread
from it_support_agent.nodes.model.chat_models import model_label

MAX_QUOTED_LINES = 3


def build_report(state: IncidentState, model: str) -> str:
    """Plain sentences built from the state, so the report never says more than the evidence does."""
    server_id = state.get("server_id")
    diagnosis = state.get("diagnosis", {})
    outcome = state.get("outcome")
    lines: list[str] = []
    if server_id is None:
        lines.append(f"Could not tell which server this incident is about ({state.get('escalation_reason', '')}).")
    else:
        lines.append(f"Server {server_id} (reported: {state.get('symptom', 'unspecified')}).")
        lines.append(f"Observed: {health_figures(state.get('health'))}.")
        if diagnosis:
            lines.append(f"Finding: {diagnosis.get('category', 'unknown')}: {diagnosis.get('reason', '')}")
            supporting = list(diagnosis.get("for", []))
            against = list(diagnosis.get("against", []))
            if supporting or against:
                # both sides: what points to a local fault, and what a restart would not explain
                for quoted in supporting[:MAX_QUOTED_LINES]:
                    lines.append(f"  for     > {quoted}")
                for quoted in against[:MAX_QUOTED_LINES]:
                    lines.append(f"  against > {quoted}")
            else:
                for quoted in list(diagnosis.get("evidence", []))[:MAX_QUOTED_LINES]:
                    lines.append(f"  > {quoted}")
    restart = state.get("restart") or {}
    if restart.get("performed") or restart.get("already_done"):
        verdict = "verified healthy" if restart.get("verified") else "still unhealthy"
        lines.append(
            f"Action: restarted {restart.get('service')} on {server_id}; after the restart "
            f"{health_figures(restart.get('after'))} ({verdict})."
        )
    ticket = state.get("ticket")
    if outcome == "escalate" and ticket:
        delivery = ticket.get("delivery", {}).get("status", "unknown")
        servers = ticket.get("affected_servers") or []
        if ticket.get("update_of"):
            lines.append(
                f"Shared dependency: {ticket.get('dependency')} is failing for {len(servers)} servers "
                f"({', '.join(servers)})."
            )
            filed = f"as update {ticket['id']} of ticket {ticket.get('update_of')}"
        else:
            if servers:
                lines.append(
                    f"Dependency: {ticket.get('dependency')} (declared in the fleet) is implicated; servers failing "
                    f"on it within {STORM_WINDOW_S / 60:.0f} min join this ticket."
                )
            filed = f"ticket {ticket['id']}"
        lines.append(
            f"Action: escalated to an engineer, {filed} ({ticket['severity']}, {delivery}). "
            f"Reason: {state.get('escalation_reason', '')}"
        )
    elif outcome == "none" and state.get("would_restart"):
        lines.append(
            f"Dry run: a restart of {server_id} would have been performed (policy allows it); nothing was changed."
        )
    elif outcome == "none":
        lines.append("Action: none. No fault found; no restart and no ticket.")
    elif outcome == "restart":
        lines.append("The incident is resolved by the restart; no ticket filed.")
    decision = state.get("decision", {})
    if decision.get("hypothesis"):
        lines.append(f"Model's hypothesis ({decision.get('by')}, unverified): {decision['hypothesis']}")
    for quoted in list(decision.get("blocking_lines", []))[:MAX_QUOTED_LINES]:
        lines.append(f"  the model cites as blocking a restart > {quoted}")
    for note in state.get("notes", []):
        lines.append(f"Note: {note}")
    lines.append(f"Decided by: {model}.")
    return "\n".join(lines)


def report(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write the summary the operator reads."""
    model = state.get("model") or model_label(runtime.context)
    index_thread(runtime.context, state.get("server_id"), state.get("outcome") or "none")
    summary = build_report(state, model)
    # the report as the conversation's last message too, so a chat client (agent-chat-ui) shows it as the answer
    return {"summary": summary, "model": model, "messages": [AIMessage(content=summary, name="report")]}
