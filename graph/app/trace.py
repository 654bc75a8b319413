"""Rendering a run for people (one line per step) and for programs (one JSON object)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from langchain_core.messages import AIMessage, ToolMessage

from it_support_agent.incident.text import known_secrets, redact, redact_value
from it_support_agent.incident.usage import describe_usage
from it_support_agent.nodes.common import health_figures
from it_support_agent.tools.results import tool_result

WIDTH = 13


def _tool_result(message: ToolMessage) -> dict[str, Any]:
    return tool_result(message) or {}


def describe_tool_result(message: ToolMessage) -> str:
    """One line for a tool result."""
    result = _tool_result(message)
    status = result.get("status", "?")
    if status != "success":
        return f"{message.name}: {status}: {result.get('error', message.content)}"
    data = result.get("data", {})
    if message.name == "get_server_health":
        return f"{message.name}: {health_figures(data.get('health'))}"
    if message.name == "fetch_recent_logs":
        return (
            f"{message.name}: {data.get('total_lines', 0)} lines, {len(data.get('shown_lines', []))} shown, "
            f"{data.get('omitted_lines', 0)} omitted"
        )
    return f"{message.name}: {status}"


def _format_call(call: Mapping[str, Any]) -> str:
    args = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)[:80]}" for key, value in call["args"].items())
    return f"{call['name']}({args})"


def _short(text: object, limit: int = 160) -> str:
    """One trace line's worth of a long text (the report and --json keep it whole)."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def trace_lines(node: str, update: Mapping[str, Any] | None) -> list[str]:
    """Readable lines for one node's state update (secrets masked)."""
    lines = _trace_lines(node, update)
    secrets = known_secrets()
    return [redact(line, secrets) for line in lines]


def _trace_lines(node: str, update: Mapping[str, Any] | None) -> list[str]:
    if not update:
        return []
    label = f"{node:<{WIDTH}}"
    lines: list[str] = []
    if node == "interpret":
        lines.append(f"{label}server={update.get('server_id')} symptom={update.get('symptom')!r}")
    for message in update.get("messages", []) or []:
        if isinstance(message, AIMessage) and node == "diagnose":
            lines.extend(f"{label}model calls {_format_call(call)}" for call in message.tool_calls)
        elif isinstance(message, ToolMessage) and node == "tools":
            lines.append(f"{label}{describe_tool_result(message)}")
    if node in ("diagnose", "decide") and update.get("usage"):
        lines.append(f"{label}usage: {describe_usage(update['usage'])}")
    if node == "decide":
        diagnosis = update.get("diagnosis", {})
        decision = update.get("decision", {})
        lines.append(
            f"{label}evidence: {diagnosis.get('category')} "
            f"({'restart recommended' if diagnosis.get('restart_recommended') else 'no restart'})"
        )
        lines.append(
            f"{label}decision: {decision.get('action')} by {decision.get('by')}: {_short(decision.get('reason'))}"
        )
    if node == "check_policy":
        verdict = update.get("policy", {})
        lines.append(
            f"{label}{'allowed' if verdict.get('allowed') else 'vetoed'} [{verdict.get('rule')}]: "
            f"{verdict.get('reason')}"
        )
    if node in ("restart", "escalate", "approve"):
        lines.extend(
            f"{label}{action.get('action')}: {action.get('status')} {_short(action.get('detail'))}".rstrip()
            for action in update.get("actions", []) or []
        )
        if node == "restart" and update.get("escalation_reason"):
            lines.append(f"{label}{update['escalation_reason']}")
    return lines


def timeline(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every step in order: tool calls with their status, the decision, the policy verdict, the actions."""
    steps: list[dict[str, Any]] = []
    results = {
        message.tool_call_id: message for message in values.get("messages", []) if isinstance(message, ToolMessage)
    }
    for message in values.get("messages", []):
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call["name"] in ("get_server_health", "fetch_recent_logs"):
                    result = results.get(call["id"] or "")
                    status = _tool_result(result).get("status", "no result") if result else "not run"
                    steps.append({"action": call["name"], "args": call["args"], "status": status})
    decision = values.get("decision")
    if decision:
        steps.append(
            {
                "action": "decide",
                "decision": decision.get("action"),
                "tool": decision.get("tool"),
                "by": decision.get("by"),
            }
        )
    verdict = values.get("policy")
    if verdict:
        steps.append({"action": "policy_check", "allowed": verdict.get("allowed"), "rule": verdict.get("rule")})
    steps.extend(values.get("actions", []))
    return steps


def result_object(thread_id: str, values: Mapping[str, Any], interrupts: list[Any]) -> dict[str, Any]:
    """The --json document for a run."""
    return cast(dict[str, Any], redact_value(_result(thread_id, values, interrupts)))


def _result(thread_id: str, values: Mapping[str, Any], interrupts: list[Any]) -> dict[str, Any]:
    diagnosis = values.get("diagnosis", {})
    awaiting = bool(interrupts)
    return {
        "thread_id": thread_id,
        "server_id": values.get("server_id"),
        "outcome": "awaiting_approval" if awaiting else values.get("outcome"),
        "actions": timeline(values),
        "diagnosis": {
            "category": diagnosis.get("category"),
            "evidence": diagnosis.get("evidence", []),
            "reason": diagnosis.get("reason"),
            "restart_recommended": diagnosis.get("restart_recommended"),
        },
        "health": values.get("health"),
        "policy": values.get("policy"),
        "summary": values.get("summary"),
        "ticket": values.get("ticket"),
        "would_restart": bool(values.get("would_restart")),
        "request": interrupts[0] if awaiting else None,
        "notes": values.get("notes", []),
        "model": values.get("model"),
        "usage": values.get("usage") or {},
    }
