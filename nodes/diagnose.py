"""The diagnose node: the model gathers evidence with the read-only tools (run by a ToolNode in a loop)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, SystemMessage
from langgraph.runtime import Runtime

from graph.context import Context
from graph.models import load_chat_model
from graph.state import IncidentState
from prompts import render
from tools.incident_tools import DIAGNOSIS_TOOLS


def diagnose(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """One model turn with get_server_health and fetch_recent_logs offered."""
    rounds = state.get("diagnose_rounds", 0) + 1
    system = SystemMessage(content=render("diagnose", policy=render("policy"), server_id=state.get("server_id"),
                                          symptom=state.get("symptom", "unspecified")))
    try:
        model = load_chat_model(runtime.context).bind_tools(DIAGNOSIS_TOOLS)
        response = model.invoke([system, *state.get("messages", [])])
    except Exception as exc:  # noqa: BLE001 - any model failure ends diagnosis; decide escalates with the reason
        return {"diagnose_rounds": rounds, "notes": [f"model unavailable during diagnosis: {_describe(exc)}"],
                "messages": [AIMessage(content="(model unavailable)")], "model_error": _describe(exc)}
    return {"diagnose_rounds": rounds, "messages": [response]}


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
