"""The prompt budget: every model call's prompt is fitted under a fixed token estimate before it is sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from it_support_agent.tools.log_reduce import estimate_tokens

PROMPT_BUDGET_TOKENS = 5_000
"""Ceiling for one model call's whole prompt (system text, tool schemas, conversation), estimated offline."""

MAX_BRIEF_CHARS = 6_000
"""The incident brief (already cut to 4,000 characters of incident text by interpret) after JSON escaping."""

MAX_MODEL_TEXT_CHARS = 1_000
"""What the model itself wrote in an earlier turn, as quoted back to it."""

MAX_CALL_ARGS_CHARS = 500
"""Tool-call arguments the model wrote in an earlier turn (the tools take a server id and a line count)."""

MIN_CUT_CHARS = 400
MIN_BRIEF_INCIDENT_CHARS = 200
"""A brief's incident text is never cut below this (the server name and the gist stay)."""
MESSAGE_OVERHEAD_TOKENS = 4
CUT_MARK = " …[cut to fit the prompt budget]"
SUPERSEDED = '{"status": "superseded", "note": "a newer result of this tool follows; read that one"}'
NOT_RUN = '{"status": "error", "error": "not run: the agent ran no more diagnosis tools for this call"}'


@dataclass(frozen=True)
class Prompt:
    """The messages to send after fitting, their estimated size, and whether anything had to be cut."""

    messages: list[BaseMessage]
    estimated_tokens: int
    cut: bool


def tool_schema_tokens(tools: Sequence[Any]) -> int:
    """Estimated size of the tool definitions sent with a call."""
    return estimate_tokens(json.dumps([convert_to_openai_tool(item) for item in tools], ensure_ascii=False))


def message_tokens(message: BaseMessage) -> int:
    """Estimated size of one message as the model receives it (text plus any tool calls)."""
    content = message.content
    # as sent: JSON-escaped, so text full of quotes, backslashes or control bytes is not underestimated
    text = json.dumps(content, ensure_ascii=False)
    calls = ""
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = json.dumps(
            [[call["name"], call["args"], call["id"]] for call in message.tool_calls], ensure_ascii=False
        )
    return estimate_tokens(text) + estimate_tokens(calls) + MESSAGE_OVERHEAD_TOKENS


def fit_prompt(
    system: str, messages: Sequence[BaseMessage], tools: Sequence[Any], budget_tokens: int = PROMPT_BUDGET_TOKENS
) -> Prompt:
    """The conversation made well-formed and bounded: every tool call answered, only the newest successful
    result of each tool in full, long texts cut; then, if still over budget, the largest message halved, and
    once nothing else can be cut, the incident text inside the brief. Only when the system text and tool schemas
    alone (plus briefs cut to MIN_BRIEF_INCIDENT_CHARS) exceed the budget does the estimate stay above it."""
    answered = _answered(_supersede(messages))
    fitted = [_fit_message(message) for message in answered]
    cut = any(after is not before for after, before in zip(fitted, answered, strict=True))
    fixed = estimate_tokens(system) + MESSAGE_OVERHEAD_TOKENS + tool_schema_tokens(tools)
    sizes = [message_tokens(message) for message in fitted]
    while fixed + sum(sizes) > budget_tokens:
        cuttable = [position for position, message in enumerate(fitted) if _cuttable(message)]
        briefs = [position for position, message in enumerate(fitted) if _brief_cuttable(message)]
        if not cuttable and not briefs:
            break
        index = max(cuttable or briefs, key=lambda position: sizes[position])
        fitted[index] = _halve(fitted[index]) if cuttable else _halve_brief(fitted[index])
        sizes[index] = message_tokens(fitted[index])
        cut = True
    return Prompt(fitted, fixed + sum(sizes), cut)


def _supersede(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Older successful results of a tool replaced by a stub: the newest one says everything they said."""
    newest: dict[str, int] = {}
    for position, message in enumerate(messages):
        if isinstance(message, ToolMessage) and _succeeded(message):
            newest[message.name or ""] = position
    return [
        message.model_copy(update={"content": SUPERSEDED}) if _is_older_success(message, position, newest) else message
        for position, message in enumerate(messages)
    ]


def _is_older_success(message: BaseMessage, position: int, newest: dict[str, int]) -> bool:
    if not isinstance(message, ToolMessage) or not _succeeded(message):
        return False
    return newest.get(message.name or "") != position


def _answered(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Tool calls as the API requires them: each answered by a tool message, malformed calls and orphan
    answers dropped (a model turn cut off by the round limit would otherwise make the server reject it)."""
    result: list[BaseMessage] = []
    pending: list[ToolCall] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            match = next((call for call in pending if call["id"] == message.tool_call_id), None)
            if match is not None:
                pending.remove(match)
                result.append(message)
            continue
        result.extend(_stubs(pending))
        pending = []
        if isinstance(message, AIMessage):
            message = _plain_ai(message)
            pending = list(message.tool_calls)
        result.append(message)
    result.extend(_stubs(pending))
    return result


def _plain_ai(message: AIMessage) -> AIMessage:
    """An earlier model turn as quoted back: its text and well-formed tool calls only."""
    calls = [_bounded_args(call) for call in message.tool_calls if call.get("id")]
    text = message.content
    if message.invalid_tool_calls:
        text = f"{text}\n(a malformed tool call was ignored)".strip() if isinstance(text, str) else text
    return AIMessage(content=text, tool_calls=calls, id=message.id, name=message.name)


def _bounded_args(call: ToolCall) -> ToolCall:
    if len(json.dumps(call["args"], ensure_ascii=False)) <= MAX_CALL_ARGS_CHARS:
        return call
    return {**call, "args": {"omitted": f"arguments over {MAX_CALL_ARGS_CHARS} characters"}}


def _stubs(calls: Sequence[ToolCall]) -> list[ToolMessage]:
    return [ToolMessage(content=NOT_RUN, tool_call_id=call["id"], name=call["name"]) for call in calls]


def _fit_message(message: BaseMessage) -> BaseMessage:
    if not isinstance(message.content, str):
        return message
    if (
        isinstance(message, HumanMessage)
        and len(message.content) > MAX_BRIEF_CHARS
        and message.name != EVIDENCE_MESSAGE
    ):
        return message.model_copy(update={"content": _fit_brief(message.content)})
    if isinstance(message, AIMessage) and len(message.content) > MAX_MODEL_TEXT_CHARS:
        return message.model_copy(update={"content": message.content[:MAX_MODEL_TEXT_CHARS] + CUT_MARK})
    return message


def _fit_brief(content: str) -> str:
    """The brief's incident text shortened until the whole brief fits (the brief stays valid JSON)."""
    try:
        brief = json.loads(content)
    except json.JSONDecodeError:
        brief = None
    if not isinstance(brief, dict) or not isinstance(brief.get("incident"), str):
        return content[:MAX_BRIEF_CHARS] + CUT_MARK
    text = brief["incident"]
    encoded = content
    while len(encoded) > MAX_BRIEF_CHARS and text:
        keep = min(len(text) - 1, len(text) * MAX_BRIEF_CHARS // len(encoded) - len(CUT_MARK))
        text = text[: max(0, keep)]
        encoded = json.dumps({**brief, "incident": text + CUT_MARK}, ensure_ascii=False)
    return encoded


def _succeeded(message: ToolMessage) -> bool:
    artifact = message.artifact
    if isinstance(artifact, dict):
        return artifact.get("status") == "success"
    return isinstance(message.content, str) and '"status": "success"' in message.content


EVIDENCE_MESSAGE = "decide_evidence"
"""The name of the message carrying the decide step's evidence: JSON whose log line list may be halved."""


def _cuttable(message: BaseMessage) -> bool:
    if message.name == EVIDENCE_MESSAGE:
        return len(_evidence_lines(message)) > 1
    return (
        isinstance(message.content, str)
        and len(message.content) > MIN_CUT_CHARS
        and not (isinstance(message, HumanMessage) and message.content.startswith("{"))
    )


def _evidence_lines(message: BaseMessage) -> list[Any]:
    try:
        document = json.loads(message.content) if isinstance(message.content, str) else None
    except json.JSONDecodeError:
        return []
    inner = document.get("evidence_read_by_the_agent") if isinstance(document, dict) else None
    lines = inner.get("log_lines") if isinstance(inner, dict) else None
    return lines if isinstance(lines, list) else []


def _brief_incident(message: BaseMessage) -> tuple[dict[str, Any], str] | None:
    """A JSON brief and its incident text (without an earlier cut mark), or None for other messages."""
    if not isinstance(message, HumanMessage) or not isinstance(message.content, str):
        return None
    try:
        brief = json.loads(message.content)
    except json.JSONDecodeError:
        return None
    if not isinstance(brief, dict) or not isinstance(brief.get("incident"), str):
        return None
    return brief, brief["incident"].removesuffix(CUT_MARK)


def _brief_cuttable(message: BaseMessage) -> bool:
    found = _brief_incident(message)
    return found is not None and len(found[1]) > MIN_BRIEF_INCIDENT_CHARS


def _halve_brief(message: BaseMessage) -> BaseMessage:
    """The brief with its incident text halved (never below MIN_BRIEF_INCIDENT_CHARS); still valid JSON."""
    found = _brief_incident(message)
    if found is None:
        return message
    brief, text = found
    kept = text[: max(MIN_BRIEF_INCIDENT_CHARS, len(text) // 2)]
    return message.model_copy(
        update={"content": json.dumps({**brief, "incident": kept + CUT_MARK}, ensure_ascii=False)}
    )


def _halve(message: BaseMessage) -> BaseMessage:
    if message.name == EVIDENCE_MESSAGE:  # the first lines are the ones the finding quotes: keep those
        document = json.loads(str(message.content))
        lines = document["evidence_read_by_the_agent"]["log_lines"]
        document["evidence_read_by_the_agent"]["log_lines"] = lines[: len(lines) // 2]
        document["evidence_read_by_the_agent"]["log_lines_cut"] = True
        return message.model_copy(update={"content": json.dumps(document, ensure_ascii=False)})
    text = message.content if isinstance(message.content, str) else ""
    return message.model_copy(update={"content": text[: len(text) // 2] + CUT_MARK})
