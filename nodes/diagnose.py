"""The diagnose node: the model gathers evidence with the read-only tools (run by a ToolNode in a loop)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.state import IncidentState
from it_support_agent.nodes.model.chat_models import load_chat_model
from it_support_agent.nodes.model.model_turn import take_turn
from it_support_agent.prompts import render
from it_support_agent.tools.incident_tools import DIAGNOSIS_TOOLS

MAX_TOOL_CALLS_PER_TURN = 4
"""A model asking for more tool calls in one turn gets the first ones run (keeps the prompt bounded)."""

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
    turn = take_turn(
        "diagnose",
        lambda: load_chat_model(runtime.context).bind_tools(DIAGNOSIS_TOOLS),
        system,
        state.get("messages", []),
        DIAGNOSIS_TOOLS,
    )
    notes = [PROMPT_CUT_NOTE] if turn.prompt_cut else []
    update: dict[str, Any] = {"diagnose_rounds": rounds, "usage": turn.usage}
    if turn.response is None:
        notes.append(f"model unavailable during diagnosis: {turn.error}")
        update.update(messages=[AIMessage(content="(model unavailable)")], model_error=turn.error)
    else:
        response, trimmed = bounded_calls(turn.response)
        notes.extend(trimmed)
        update["messages"] = [response]
    update["notes"] = [note for note in notes if note not in state.get("notes", [])]
    return update


def bounded_calls(response: AIMessage) -> tuple[AIMessage, list[str]]:
    """The model's turn with at most MAX_TOOL_CALLS_PER_TURN tool calls, and a note when some were dropped."""
    calls = response.tool_calls
    if len(calls) <= MAX_TOOL_CALLS_PER_TURN:
        return response, []
    note = f"the model asked for {len(calls)} tool calls in one turn; the first {MAX_TOOL_CALLS_PER_TURN} were run"
    return response.model_copy(update={"tool_calls": calls[:MAX_TOOL_CALLS_PER_TURN]}), [note]
