"""The decide node: the evidence is classified by code, then the model picks restart, escalate or close.

The model sees what the agent saw: the health figures and the log lines the code classified are sent with the
decide request, whoever read them. In LLM mode the answer may also carry the model's hypothesis of the cause and
log lines it judges to block a restart; a cited line counts only when it is in the evidence verbatim, and then it
vetoes a restart as code-made evidence does (the policy node applies it). The model can make a decision safer or
clearer, never bolder: a restart it proposes that the code does not corroborate waits for an operator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.diagnosis import Diagnosis
from it_support_agent.incident.diagnosis import assess_evidence as classify
from it_support_agent.incident.policy import load_policy
from it_support_agent.incident.records import DecisionAction, DecisionRecord
from it_support_agent.incident.rulebook import book_for
from it_support_agent.incident.state import IncidentState
from it_support_agent.incident.text import redact_lines
from it_support_agent.nodes.common import current_thread_id, gathered_evidence, infrastructure
from it_support_agent.nodes.model.chat_models import decide_format, is_offline, load_chat_model, model_label
from it_support_agent.nodes.model.model_turn import model_seconds, take_turn
from it_support_agent.nodes.model.prompt_budget import EVIDENCE_MESSAGE
from it_support_agent.nodes.model.text_calls import arguments_fit, tool_schemas
from it_support_agent.prompts import render
from it_support_agent.tools import audit
from it_support_agent.tools.backends.base import BackendError
from it_support_agent.tools.incident_tools import DECISION_TOOLS
from it_support_agent.tools.log_reduce import clean_line, reduce_logs
from it_support_agent.tools.results import evidence_in

MAX_SUMMARY_CHARS = 2_000
MAX_HYPOTHESIS_CHARS = 400
MAX_CITED_LINES = 3
MIN_CITATION_CHARS = 12
"""A shorter cited text ("ERROR") matches too much to count as pointing at a line."""
KEY_LINES = 12
EVIDENCE_LINES = 30
EVIDENCE_TOKENS = 800
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # the cause first: a small model reasons in the order it writes
        "hypothesis": {"type": "string", "maxLength": 240},
        "blocking_lines": {"type": "array", "items": {"type": "string", "maxLength": 240}, "maxItems": 3},
        "decision": {"type": "string", "enum": ["restart_service", "escalate_to_engineer", "close_no_fault"]},
        "server_id": {"type": "string", "maxLength": 120},
        "summary": {"type": "string", "maxLength": 320},
    },
    "required": ["hypothesis", "blocking_lines", "decision", "server_id", "summary"],
    "additionalProperties": False,
}
"""The decide answer in `json_schema` form: one object, bounded, so a constrained server ends it where it closes."""
DECISION_FORMAT = {"type": "json_schema", "json_schema": {"name": "decision", "schema": DECISION_SCHEMA}}
_ACTIONS: dict[str, DecisionAction] = {
    "restart_service": "restart",
    "escalate_to_engineer": "escalate",
    "close_no_fault": "none",
}


def decide(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Classify the evidence deterministically, then ask the model for exactly one decision tool call."""
    context = runtime.context
    health, lines, notes, agent_read_logs = _evidence(state, context)
    spec = infrastructure(context).fleet.get(state.get("server_id") or "")
    policy = load_policy(context.policy_file)
    finding = classify(
        health,
        _whole_lines(state, context, lines),
        policy.incident_window_s,
        spec.service if spec else None,
        book_for(policy.rule_files),
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
        asked = _ask_model(state, context, finding, health, lines, agent_read_logs)
        update.update(asked, notes=[*notes, *asked.get("notes", [])])
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


def _ask_model(
    state: IncidentState,
    context: Context,
    finding: Diagnosis,
    health: dict[str, Any] | None,
    lines: list[str],
    agent_read_logs: bool,
) -> dict[str, Any]:
    """One model turn asking for exactly one decision, with the evidence attached; its decision and usage."""
    try:
        json_form = not is_offline(context.model) and decide_format() == "json_schema"
    except ValueError as exc:
        return {"decision": _escalation(f"model unavailable: {exc}")}
    server_id = state.get("server_id")
    system = render(
        "decide",
        policy=render("policy"),
        server_id=server_id,
        finding=_reading(finding),
        answer=(
            'Reply with one JSON object and nothing else: {"hypothesis": ..., "blocking_lines": [...], "decision": '
            f'"restart_service" | "escalate_to_engineer" | "close_no_fault", "server_id": "{server_id}", '
            '"summary": ...}.'
        )
        if json_form
        else (
            f'Reply with exactly one tool call and no other text: restart_service(server_id="{server_id}"), '
            "escalate_to_engineer(summary=...) or close_no_fault(reason=...)."
        ),
    )
    messages = [*state.get("messages", []), evidence_message(health, lines, finding, agent_read_logs)]
    turn = take_turn(
        "decide",
        (lambda time_left: load_chat_model(context, "decide", time_left).bind(response_format=DECISION_FORMAT))
        if json_form
        else (
            lambda time_left: load_chat_model(context, "decide", time_left).bind_tools(
                DECISION_TOOLS, tool_choice="any"
            )
        ),
        system,
        messages,
        [] if json_form else DECISION_TOOLS,
        model_seconds(state.get("usage")),
    )
    if turn.response is None:
        return {"usage": turn.usage, "decision": _escalation(f"model unavailable: {turn.error}")}
    response = schema_answer_as_call(turn.response) if json_form else turn.response
    decision = read_decision(response, state.get("server_id"), context, lines)
    notes = [turn.note] if turn.note else []
    if decision.get("uncited_lines"):
        notes.append(
            f"the model cited {len(decision['uncited_lines'])} line(s) that are not in the evidence; they were ignored"
        )
    return {
        "usage": turn.usage,
        "decision": decision,
        "notes": [note for note in notes if note not in state.get("notes", [])],
        "messages": [
            response,
            *[
                ToolMessage(content="decision recorded", tool_call_id=call["id"] or "", name=call["name"])
                for call in response.tool_calls
            ],
        ],
    }


def evidence_message(
    health: dict[str, Any] | None, lines: Sequence[str], finding: Diagnosis, with_digest: bool = True
) -> HumanMessage:
    """The evidence the decision rests on, as data: health and the log lines that matter most, whoever read them.

    The lines the code's finding quotes come first, then, `with_digest` (the model has not seen the logs the
    agent classified), a digest of the rest (repeats collapsed, errors first)."""
    read = shown_lines(lines)
    logged = set(read)  # the finding also quotes health figures ("cpu_percent=98.5 (>= 90)"): not log lines
    chosen: list[str] = []
    for line in shown_lines([*finding.supporting, *finding.against, *finding.unexplained, *finding.evidence]):
        if line in logged and line not in chosen and len(chosen) < KEY_LINES:
            chosen.append(line)
    digest = reduce_logs(read, budget_tokens=EVIDENCE_TOKENS)["shown_lines"] if with_digest else []
    for line in digest:
        if line not in chosen and len(chosen) < EVIDENCE_LINES:
            chosen.append(line)
    document = {
        "evidence_read_by_the_agent": {
            "health": health if health else "unavailable",
            "log_lines_read": len(lines),
            "log_lines": chosen,
        }
    }
    return HumanMessage(content=json.dumps(document, ensure_ascii=False), name=EVIDENCE_MESSAGE)


def schema_answer_as_call(response: AIMessage) -> AIMessage:
    """A `json_schema` answer made the decision tool call it names (routing stays on tool calls); an answer
    that is not one such object is left without a call, which escalates."""
    try:
        answer = json.loads(str(response.content)) if isinstance(response.content, str) else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or set(answer) != set(DECISION_SCHEMA["required"]):
        return response
    tool = answer.get("decision")
    extra = {"hypothesis": answer.get("hypothesis"), "blocking_lines": answer.get("blocking_lines")}
    arguments: dict[str, Any]
    if tool == "restart_service":
        arguments = {"server_id": answer.get("server_id"), **extra}
    elif tool == "escalate_to_engineer":
        arguments = {"summary": answer.get("summary"), **extra}
    elif tool == "close_no_fault":
        arguments = {"reason": answer.get("summary"), **extra}
    else:
        return response
    if not arguments_fit(arguments, tool_schemas(DECISION_TOOLS)[str(tool)]):
        return response
    call = ToolCall(name=str(tool), args=arguments, id=f"call_schema_{response.id or 'decide'}"[:64], type="tool_call")
    return response.model_copy(update={"tool_calls": [call]})


def read_decision(
    response: AIMessage, server_id: str | None, context: Context, evidence: Sequence[str] = ()
) -> DecisionRecord:
    """Turn the model's tool calls into a decision; anything irregular becomes an escalation saying why. The
    model's hypothesis and the lines it cites as blocking a restart (checked against `evidence`) ride along."""
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
    second = second_reading(args, evidence) if not is_offline(context.model) else {}
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
            **second,
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
        **second,
    }


def second_reading(args: dict[str, Any], evidence: Sequence[str]) -> DecisionRecord:
    """The model's hypothesis and its cited blocking lines, split into those found verbatim in the evidence and
    those not found (a model may misquote or invent a line: only a line that is there can veto)."""
    record: DecisionRecord = {}
    hypothesis = args.get("hypothesis")
    if isinstance(hypothesis, str) and clean_line(hypothesis):
        record["hypothesis"] = clean_line(hypothesis)[:MAX_HYPOTHESIS_CHARS]
    cited = args.get("blocking_lines")
    found: list[str] = []
    missing: list[str] = []
    for text in cited[:MAX_CITED_LINES] if isinstance(cited, list) else []:
        if not isinstance(text, str) or not text.strip():
            continue
        line = cited_line(text, evidence)
        if line is not None:
            if line not in found:
                found.append(line)
        else:
            missing.append(clean_line(text)[:200])
    if found:
        record["blocking_lines"] = found
    if missing:
        record["uncited_lines"] = missing
    return record


_SPACE = re.compile(r"\s+")
_QUOTES = "\"'`> -*"
_REPEATED = re.compile(r"\s*\[repeated \d+x\]$")


def cited_line(text: str, evidence: Sequence[str]) -> str | None:
    """The evidence line a citation quotes verbatim (white space aside; the whole line or at least
    MIN_CITATION_CHARS of it), or None."""
    quoted = _SPACE.sub(" ", text).strip().strip(_QUOTES).strip()
    quoted = _REPEATED.sub("", quoted)  # the digest's repeat count is not log text
    if len(quoted) < MIN_CITATION_CHARS:
        return None
    for line in shown_lines(evidence):
        if quoted in _SPACE.sub(" ", line):
            return line
    return None


def shown_lines(lines: Sequence[str]) -> list[str]:
    """Log lines as the model may be shown them: secrets redacted, control bytes replaced, length bounded."""
    return [clean_line(line) for line in redact_lines(list(lines))]


def _reading(finding: Diagnosis) -> str:
    """The code-made reading of the evidence, as the decide prompt states it."""
    verdict = "a restart may help" if finding.restart_recommended else "a restart is not expected to help"
    return f"{finding.category.value} ({verdict}). {finding.reason}"


def _escalation(reason: str) -> DecisionRecord:
    return {"action": "escalate", "tool": None, "by": "agent", "reason": reason, "problem": reason}


def _resolve(server_id: str, context: Context) -> str | None:
    return infrastructure(context).index.resolve(server_id)


def _whole_lines(state: IncidentState, context: Context, lines: list[str]) -> list[str]:
    """The lines the evidence rules read: the tool's lines are cut for the model, so when one was cut the logs
    are read again whole (redacted), since a cut line may hide the words that block a restart."""
    server_id = state.get("server_id")
    if not server_id or not any(line.endswith("\u2026") for line in lines):
        return lines
    try:
        return redact_lines(infrastructure(context).backend.logs(server_id, max(context.log_lines, len(lines))))
    except BackendError:
        return lines


def _evidence(state: IncidentState, context: Context) -> tuple[dict[str, Any] | None, list[str], list[str], bool]:
    """Health and log lines from the tools the model called; read directly when the model skipped a tool. Also the
    notes saying so, and whether the agent read the logs itself (then the model has not seen them)."""
    server_id = state.get("server_id")
    health_result, logs_result = gathered_evidence(state)
    notes: list[str] = []
    agent_read_logs = False
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
        logs_result, agent_read_logs = None, True
    if (logs_result is None or logs_result.get("server_id") != server_id) and server_id:
        if not agent_read_logs:
            notes.append("logs read by the agent: the model did not read them")
        agent_read_logs = True
        try:
            logs_result = {"status": "success", "data": {"lines": backend.logs(server_id, context.log_lines)}}
        except BackendError as exc:
            logs_result = {"status": "no_data", "error": str(exc)}
    health, lines = evidence_in(health_result, logs_result)
    return health, lines, notes, agent_read_logs
