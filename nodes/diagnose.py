"""The diagnose node: the model gathers evidence with the read-only tools (run by a ToolNode in a loop)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.messages.tool import ToolCall
from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.state import IncidentState
from it_support_agent.nodes.model.chat_models import is_offline, load_chat_model, parallel_tool_calls
from it_support_agent.nodes.model.model_turn import model_seconds, take_turn
from it_support_agent.prompts import render
from it_support_agent.tools.incident_tools import DIAGNOSIS_TOOLS

MAX_TOOL_CALLS_PER_TURN = 4
"""With parallel calls allowed, a model asking for more in one turn gets the first ones run (keeps the prompt
bounded); without, one call per turn."""

PROMPT_CUT_NOTE = "the diagnosis prompt was cut to fit the prompt budget"


def diagnose(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """One model turn with only get_server_health and fetch_recent_logs offered."""
    rounds = state.get("diagnose_rounds", 0) + 1
    system = render(
        "diagnose",
        policy=render("policy"),
        server_id=state.get("server_id"),
        symptom=state.get("symptom", "unspecified"),
    )
    context = runtime.context
    # one call per turn unless the server is known to handle parallel calls: small models asked for several
    # repeat the same call and cut the last one short
    try:
        parallel = is_offline(context.model) or parallel_tool_calls()
    except ValueError:
        parallel = False  # a bad setting is reported where the run starts; here it costs nothing to be careful
    options: dict[str, Any] = {} if is_offline(context.model) else {"parallel_tool_calls": parallel}
    turn = take_turn(
        "diagnose",
        lambda time_left: load_chat_model(context, "diagnose", time_left).bind_tools(DIAGNOSIS_TOOLS, **options),
        system,
        state.get("messages", []),
        DIAGNOSIS_TOOLS,
        model_seconds(state.get("usage")),
    )
    notes = [PROMPT_CUT_NOTE] if turn.prompt_cut else []
    if turn.note:
        notes.append(turn.note)
    update: dict[str, Any] = {"diagnose_rounds": rounds, "usage": turn.usage}
    if turn.response is None:
        notes.append(f"model unavailable during diagnosis: {turn.error}")
        update.update(messages=[AIMessage(content="(model unavailable)")], model_error=turn.error)
    else:
        response, trimmed = bounded_calls(turn.response, MAX_TOOL_CALLS_PER_TURN if parallel else 1)
        notes.extend(trimmed)
        update["messages"] = [response]
    update["notes"] = [note for note in notes if note not in state.get("notes", [])]
    return update


def bounded_calls(response: AIMessage, limit: int = MAX_TOOL_CALLS_PER_TURN) -> tuple[AIMessage, list[str]]:
    """The model's turn with repeated calls dropped and at most `limit` left, and a note when some were dropped."""
    calls = response.tool_calls
    unique = [call for index, call in enumerate(calls) if not _repeats(call, calls[:index])]
    if len(unique) <= limit and len(unique) == len(calls):
        return response, []
    kept = unique[:limit]
    ran = f"{len(kept)} was run" if len(kept) == 1 else f"{len(kept)} were run"
    note = f"the model asked for {len(calls)} tool calls in one turn; {ran}"
    return response.model_copy(update={"tool_calls": kept}), [note]


def _repeats(call: ToolCall, earlier: list[ToolCall]) -> bool:
    return any(call["name"] == other["name"] and call["args"] == other["args"] for other in earlier)
