"""The decide node: the evidence is classified by code, then the model picks restart, escalate or close."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.diagnosis import Diagnosis
from it_support_agent.incident.diagnosis import assess_evidence as classify
from it_support_agent.incident.policy import load_policy
from it_support_agent.incident.records import DecisionAction, DecisionRecord
from it_support_agent.incident.state import IncidentState
from it_support_agent.nodes.common import current_thread_id, gathered_evidence, infrastructure
from it_support_agent.nodes.model.chat_models import load_chat_model, model_label
from it_support_agent.nodes.model.model_turn import take_turn
from it_support_agent.prompts import render
from it_support_agent.tools import audit
from it_support_agent.tools.backends.base import BackendError
from it_support_agent.tools.incident_tools import DECISION_TOOLS
from it_support_agent.tools.log_reduce import clean_line
from it_support_agent.tools.results import evidence_in

MAX_SUMMARY_CHARS = 2_000
_ACTIONS: dict[str, DecisionAction] = {
    "restart_service": "restart",
    "escalate_to_engineer": "escalate",
    "close_no_fault": "none",
}


def decide(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Classify the evidence deterministically, then ask the model for exactly one decision tool call."""
    context = runtime.context
    health, lines, notes = _evidence(state, context)
    spec = infrastructure(context).fleet.get(state.get("server_id") or "")
    finding = classify(
        health, lines, load_policy(context.policy_file).incident_window_s, spec.service if spec else None
    )
    update: dict[str, Any] = {
        "health": health,
        "diagnosis": finding.to_dict(),
        "notes": notes,
        "model": model_label(context),
    }
    if state.get("model_error"):
        update["decision"] = _escalation(f"model unavailable: {state['model_error']}")
    else:
        update.update(_ask_model(state, context, finding))
    decision = update["decision"]
    audit.record(
        context.state_path,
        current_thread_id(),
        "model_decision",
        server_id=state.get("server_id"),
        action=decision["action"],
        tool=decision.get("tool"),
        by=decision.get("by"),
        reason=decision.get("reason"),
    )
    return update


def _ask_model(state: IncidentState, context: Context, finding: Diagnosis) -> dict[str, Any]:
    """One model turn with the decision tools offered and a tool call required; its decision and usage."""
    system = render("decide", policy=render("policy"), server_id=state.get("server_id"), finding=_reading(finding))
    turn = take_turn(
        "decide",
        lambda: load_chat_model(context).bind_tools(DECISION_TOOLS, tool_choice="any"),
        system,
        state.get("messages", []),
        DECISION_TOOLS,
    )
    if turn.response is None:
        return {"usage": turn.usage, "decision": _escalation(f"model unavailable: {turn.error}")}
    response = turn.response
    return {
        "usage": turn.usage,
        "decision": read_decision(response, state.get("server_id"), context),
        "messages": [
            response,
            *[
                ToolMessage(content="decision recorded", tool_call_id=call["id"] or "", name=call["name"])
                for call in response.tool_calls
            ],
        ],
    }


def read_decision(response: AIMessage, server_id: str | None, context: Context) -> DecisionRecord:
    """Turn the model's tool calls into a decision; anything irregular becomes an escalation saying why."""
    calls = response.tool_calls
    if response.response_metadata.get("finish_reason") == "length":
        # checked first: a streamed answer's arguments are parsed leniently, so a cut-off call can look complete
        return _escalation("the model's answer was cut short (completion token limit); its tool call is incomplete")
    if response.invalid_tool_calls:
        return _escalation("the model's tool call was malformed (arguments were not valid JSON)")
    if not calls:
        return _escalation("the model made no decision (no tool call)")
    unknown = [call["name"] for call in calls if call["name"] not in _ACTIONS]
    if unknown:
        shown_name = clean_line(unknown[0])[:60]
        return _escalation(f"the model called a tool it was not offered: {shown_name}")
    actions = {_ACTIONS[call["name"]] for call in calls}
    if len(actions) > 1:
        return _escalation("the model asked for conflicting decisions")
    call = calls[0]
    action = _ACTIONS[call["name"]]
    args = call.get("args") or {}
    if action == "restart":
        requested = args.get("server_id")
        if not isinstance(requested, str) or _resolve(requested, context) != server_id or server_id is None:
            shown = clean_line(str(requested))[:80]
            return _escalation(f"the model asked to restart {shown!r}, not the incident's server {server_id}")
        return {
            "action": "restart",
            "server_id": server_id,
            "tool": call["name"],
            "by": model_label(context),
            "reason": "the model chose a restart",
        }
    text_field = "summary" if action == "escalate" else "reason"
    text = args.get(text_field)
    text = clean_line(text)[:MAX_SUMMARY_CHARS] if isinstance(text, str) else ""
    return {
        "action": action,
        "server_id": server_id,
        "tool": call["name"],
        "by": model_label(context),
        "reason": text or ("the model escalated" if action == "escalate" else "the model found no fault"),
    }


def _reading(finding: Diagnosis) -> str:
    """The code-made reading of the evidence, as the decide prompt states it."""
    verdict = "a restart may help" if finding.restart_recommended else "a restart is not expected to help"
    return f"{finding.category.value} ({verdict}). {finding.reason}"


def _escalation(reason: str) -> DecisionRecord:
    return {"action": "escalate", "tool": None, "by": "agent", "reason": reason, "problem": reason}


def _resolve(server_id: str, context: Context) -> str | None:
    return infrastructure(context).index.resolve(server_id)


def _evidence(state: IncidentState, context: Context) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """Health and log lines from the tools the model called; read directly when the model skipped a tool."""
    server_id = state.get("server_id")
    health_result, logs_result = gathered_evidence(state)
    notes: list[str] = []
    backend = infrastructure(context).backend
    if (health_result is None or health_result.get("server_id") != server_id) and server_id:
        notes.append("health read by the agent: the model did not read it")
        try:
            health_result = {"status": "success", "data": {"health": dict(backend.health(server_id))}}
        except BackendError as exc:
            health_result = {"status": "no_data", "error": str(exc)}
    requested = (logs_result or {}).get("data", {}).get("requested_lines")
    if (
        logs_result is not None
        and logs_result.get("status") == "success"
        and (not isinstance(requested, int) or requested < context.log_lines)
    ):
        # The model chose how many lines to read; the evidence rules never depend on that choice.
        notes.append(f"logs re-read by the agent: the model read fewer than {context.log_lines} lines")
        logs_result = None
    if (logs_result is None or logs_result.get("server_id") != server_id) and server_id:
        if not notes or not notes[-1].startswith("logs re-read"):
            notes.append("logs read by the agent: the model did not read them")
        try:
            logs_result = {"status": "success", "data": {"lines": backend.logs(server_id, context.log_lines)}}
        except BackendError as exc:
            logs_result = {"status": "no_data", "error": str(exc)}
    health, lines = evidence_in(health_result, logs_result)
    return health, lines, notes
