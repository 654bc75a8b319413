"""The approval node: in `approve` mode a human answers a typed request before any restart runs."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from it_support_agent.incident.context import Context
from it_support_agent.incident.state import IncidentState
from it_support_agent.incident.text import strip_controls
from it_support_agent.nodes.common import current_thread_id, health_figures, infrastructure, pagerduty_event
from it_support_agent.tools import audit

MAX_COMMENT_CHARS = 1_000


class ApprovalRequest(TypedDict):
    """What the operator is asked (JSON-serialisable; shown by the CLI and in Studio)."""

    type: Literal["approve_restart"]
    thread_id: str
    server_id: str
    service: str
    proposed_action: str
    health: str
    finding: str
    evidence: list[str]
    why_asked: str
    """The policy's reason for asking (approve mode, or a model-proposed restart the evidence does not corroborate)."""
    model_hypothesis: str
    answer_with: dict[str, str]
    # the LangGraph HumanInterrupt fields, so Agent Inbox and agent-chat-ui can show and answer it
    action_request: dict[str, Any]
    config: dict[str, bool]
    description: str


class ApprovalAnswer(TypedDict, total=False):
    """The operator's answer: approve, or reject with an optional comment."""

    decision: Literal["approve", "reject"]
    comment: str


def parse_answer(answer: Any) -> ApprovalAnswer:
    """Read an answer strictly: only an explicit approve approves; anything else is a rejection.

    Takes `{"decision": "approve" | "reject", "comment": ...}`, or LangGraph's HumanResponse (alone or as the
    one-item list Agent Inbox sends): `accept` approves, `ignore` rejects, `response` rejects with its text as the
    comment. `edit` is refused (the action cannot be changed), so it rejects too."""
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if isinstance(answer, dict) and "type" in answer and "decision" not in answer:
        kind, args = answer.get("type"), answer.get("args")
        if kind == "accept":
            answer = {"decision": "approve"}
        elif kind == "response":
            answer = {"decision": "reject", "comment": args if isinstance(args, str) else ""}
        elif kind == "ignore":
            answer = {"decision": "reject", "comment": "ignored in the inbox"}
        else:
            answer = {"decision": "reject", "comment": f"answer type {str(kind)[:40]!r} is not accepted here"}
    if isinstance(answer, str):
        answer = {"decision": answer}
    if not isinstance(answer, dict):
        return {"decision": "reject", "comment": "unreadable answer"}
    decision = str(answer.get("decision", "")).strip().lower()
    comment = "\n".join(strip_controls(line) for line in str(answer.get("comment") or "").splitlines())
    if len(comment) > MAX_COMMENT_CHARS:  # said, never silent
        comment = f"{comment[:MAX_COMMENT_CHARS]} … [cut: {len(comment) - MAX_COMMENT_CHARS} more characters]"
    return {"decision": "approve" if decision in {"approve", "approved", "yes", "y"} else "reject", "comment": comment}


def approve(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Pause with the request; resume with an ApprovalAnswer. Nothing before interrupt() has side effects."""
    server_id = state.get("server_id") or ""
    spec = infrastructure(runtime.context).fleet.get(server_id)
    diagnosis = state.get("diagnosis", {})
    request: ApprovalRequest = {
        "type": "approve_restart",
        "thread_id": current_thread_id(),
        "server_id": server_id,
        "service": spec.service if spec else "",
        "proposed_action": f"restart {spec.service if spec else 'service'} on {server_id}",
        "health": health_figures(state.get("health")),
        "finding": f"{diagnosis.get('category', 'unknown')}: {diagnosis.get('reason', '')}",
        "evidence": list(diagnosis.get("evidence", []))[:8],
        "why_asked": str(state.get("policy", {}).get("reason", "")),
        "model_hypothesis": str(state.get("decision", {}).get("hypothesis", "")),
        "answer_with": {"decision": "approve | reject", "comment": "optional text for the ticket"},
        "action_request": {
            "action": "restart_service",
            "args": {"server_id": server_id, "service": spec.service if spec else ""},
        },
        "config": {"allow_accept": True, "allow_ignore": True, "allow_respond": True, "allow_edit": False},
        "description": "",
    }
    request["description"] = (
        f"Approve: {request['proposed_action']}?\n\nWhy you are asked: {request['why_asked']}\n\n"
        f"Health: {request['health']}\n\nFinding: {request['finding']}\n\n"
        + (f"Model's hypothesis (unverified): {request['model_hypothesis']}\n\n" if request["model_hypothesis"] else "")
        + "\n".join("- `" + line.replace("`", "'") + "`" for line in request["evidence"])  # code, never markup
        + "\n\nAccept restarts it; Respond rejects it with your text for the ticket; Ignore rejects it."
    )
    answer = parse_answer(interrupt(request))
    audit.record(
        runtime.context.state_path,
        request["thread_id"],
        "operator_answer",
        question="approve_restart",
        server_id=server_id,
        **answer,
    )
    update: dict[str, Any] = {
        "approval": {**answer, "server_id": server_id},
        "actions": [{"action": "operator_answer", "status": answer["decision"], "detail": answer.get("comment", "")}],
    }
    if answer["decision"] == "approve":
        pagerduty_event(runtime.context, state, request["thread_id"], "acknowledge")  # a human took it
    if answer["decision"] != "approve":
        comment = answer.get("comment")
        update["escalation_reason"] = "operator rejected the restart" + (f": {comment}" if comment else "")
    return update
