"""The incident flow: interpret -> diagnose (tools loop) -> decide -> policy -> restart | escalate -> report."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AIMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.state import IncidentInput, IncidentState
from it_support_agent.nodes.approve import approve
from it_support_agent.nodes.decide import decide
from it_support_agent.nodes.diagnose import diagnose
from it_support_agent.nodes.escalate import escalate
from it_support_agent.nodes.interpret import interpret
from it_support_agent.nodes.policy_check import check_policy
from it_support_agent.nodes.report import report
from it_support_agent.nodes.restart import restart
from it_support_agent.tools.incident_tools import DIAGNOSIS_TOOLS


class RoutingError(RuntimeError):
    """A router met a state it has no edge for (a bug, never a silent default)."""


def route_after_interpret(state: IncidentState) -> Literal["diagnose", "escalate"]:
    """A known server goes to diagnosis; an unidentified one straight to a human."""
    return "diagnose" if state.get("server_id") else "escalate"


def route_after_diagnose(state: IncidentState, runtime: Runtime[Context]) -> Literal["tools", "decide"]:
    """Loop through the tools while the model keeps calling them, within the round limit."""
    last = state.get("messages", [])[-1] if state.get("messages") else None
    wants_tools = isinstance(last, AIMessage) and bool(last.tool_calls)
    if wants_tools and state.get("diagnose_rounds", 0) < runtime.context.max_diagnose_rounds:
        return "tools"
    return "decide"


def route_after_decide(state: IncidentState) -> Literal["check_policy", "escalate"]:
    """The model's decision tool call picks the branch; restarts and closes must pass the policy."""
    action = state.get("decision", {}).get("action")
    if action in ("restart", "none"):
        return "check_policy"
    if action == "escalate":
        return "escalate"
    raise RoutingError(f"unexpected decision {action!r}")


def route_after_policy(state: IncidentState) -> Literal["approve", "restart", "escalate", "report"]:
    """Only an allowed restart goes on; a vetoed one becomes an escalation."""
    verdict = state.get("policy", {})
    action = state.get("decision", {}).get("action")
    if not verdict.get("allowed"):
        return "report" if verdict.get("rule") == "dry_run" else "escalate"
    if action == "none":
        return "report"
    if action == "restart":
        return "approve" if verdict.get("requires_approval") else "restart"
    raise RoutingError(f"unexpected decision after policy {action!r}")


def route_after_approve(state: IncidentState) -> Literal["restart", "escalate"]:
    return "restart" if state.get("approval", {}).get("decision") == "approve" else "escalate"


def route_after_restart(state: IncidentState) -> Literal["report", "escalate"]:
    """A verified restart is done; a failed or unhelpful one goes to a human."""
    return "report" if state.get("outcome") == "restart" else "escalate"


builder = StateGraph(IncidentState, input_schema=IncidentInput, context_schema=Context)
builder.add_node("interpret", interpret)
builder.add_node("diagnose", diagnose)
builder.add_node("tools", ToolNode(DIAGNOSIS_TOOLS))
builder.add_node("decide", decide)
builder.add_node("check_policy", check_policy)
builder.add_node("approve", approve)
builder.add_node("restart", restart)
builder.add_node("escalate", escalate)
builder.add_node("report", report)

builder.add_edge(START, "interpret")
builder.add_conditional_edges("interpret", route_after_interpret)
builder.add_conditional_edges("diagnose", route_after_diagnose)
builder.add_edge("tools", "diagnose")
builder.add_conditional_edges("decide", route_after_decide)
builder.add_conditional_edges("check_policy", route_after_policy)
builder.add_conditional_edges("approve", route_after_approve)
builder.add_conditional_edges("restart", route_after_restart)
builder.add_edge("escalate", "report")
builder.add_edge("report", END)

GRAPH_NAME = "it-support-agent"


def compile_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The flow compiled under its name, with the caller's checkpointer (none for the LangGraph API server)."""
    return builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)


graph = compile_graph()
