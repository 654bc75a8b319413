"""The interpret node: which server the incident is about, and which symptom."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from langchain_core.messages import HumanMessage, RemoveMessage
from langgraph.config import get_config
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from it_support_agent.incident.context import Context
from it_support_agent.incident.state import IncidentState
from it_support_agent.nodes.common import current_thread_id, index_thread, infrastructure
from it_support_agent.tools import audit

MAX_INCIDENT_CHARS = 4_000
MAX_CANDIDATES = 50
_SYMPTOMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("down or unreachable", re.compile(r"\b(down|unreachable|not responding|offline|dead|crash\w*)\b", re.I)),
    ("slow or timing out", re.compile(r"\b(slow|sluggish|lag\w*|tim(e|ed|ing)[ -]?outs?|latency|hang\w*)\b", re.I)),
    ("high CPU", re.compile(r"\b(cpu|load)\b", re.I)),
    ("memory", re.compile(r"\b(memory|ram|oom|leak\w*|swap\w*)\b", re.I)),
    ("disk", re.compile(r"\b(disk|storage|space|inode\w*)\b", re.I)),
    ("errors", re.compile(r"\b(errors?|5\d\d|exceptions?|fail\w*)\b", re.I)),
    ("security", re.compile(r"\b(login|ssh|brute|attack|intrusion|auth\w*)\b", re.I)),
)


def classify_symptom(text: str) -> str:
    """A short label for what the operator reports."""
    for label, pattern in _SYMPTOMS:
        if pattern.search(text):
            return label
    return "unspecified"


# Every per-incident field starts afresh, so a thread reused for a new incident carries nothing over.
FRESH_INCIDENT: dict[str, Any] = {
    "actions": {"replace": []},
    "usage": {"reset": True},
    "diagnose_rounds": 0,
    "health": None,
    "diagnosis": {},
    "decision": {},
    "policy": {},
    "approval": {},
    "restart": {},
    "ticket": None,
    "escalation_reason": "",
    "outcome": None,
    "would_restart": False,
    "summary": "",
    "model_error": "",
}


def clean_text(raw: object) -> str:
    """Incident text as safe, encodable text: NULs and lone surrogates replaced."""
    text = raw if isinstance(raw, str) else ""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ").strip()


BRIEF_NAME = "incident_brief"


def chat_incident(messages: list[Any]) -> str | None:
    """The incident a chat client sent as `{"messages": [...]}` (agent-chat-ui): the newest human message's text.

    None when the newest message is not a person's (a run started with `{"incident": ...}` on a fresh thread, or
    one reusing a thread, whose last message is the agent's own)."""
    if not messages:
        return None
    last = messages[-1]
    if not isinstance(last, HumanMessage) or last.name == BRIEF_NAME:
        return None
    if isinstance(last.content, str):
        return last.content
    parts = [part.get("text", "") if isinstance(part, dict) else str(part) for part in last.content]
    return " ".join(part for part in parts if isinstance(part, str))


def asks_operator(context: Context) -> bool:
    """Whether a person can answer a question now: 'always', or 'auto' under the LangGraph API server (Studio)."""
    if context.interactive != "auto":
        return context.interactive == "always"
    try:
        return bool(get_config().get("configurable", {}).get("graph_id"))
    except RuntimeError:
        return False


def interpret(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Match the incident against the fleet; ask the operator when interactive and nothing matches."""
    chat = chat_incident(state.get("messages") or [])
    text = clean_text(chat if chat is not None else state.get("incident"))
    index_thread(runtime.context)
    notes: list[str] = []
    if len(text) > MAX_INCIDENT_CHARS:
        notes.append(f"incident text cut from {len(text):,} to {MAX_INCIDENT_CHARS:,} characters")
        text = text[:MAX_INCIDENT_CHARS]
    infra = infrastructure(runtime.context)
    if "alert_server" in state:
        # An alert names its server in a label; its free text (descriptions naming other hosts) is never searched.
        label = state.get("alert_server")
        mentioned = [resolved] if label and (resolved := infra.index.resolve(str(label))) else []
    else:
        mentioned = infra.index.mentions(text)
    close = infra.index.close_match(text) if not mentioned and "alert_server" not in state else None
    if close is not None and close.unique:
        # one close candidate: taken, and said so in the trace and the report
        mentioned = [close.unique]
        notes.append(f"incident names {close.typed!r}, taken as {close.unique} (the only close match)")
    elif close is not None:
        notes.append(
            f"incident names {close.typed!r}, which is equally close to {', '.join(close.candidates[:5])}; not guessing"
        )
    several = mentioned if len(mentioned) > 1 else []
    # several servers named ("a is fine, do not touch it; b is slow"): which one is meant is for a person to say
    server_id = mentioned[0] if len(mentioned) == 1 else None
    if several:
        notes.append(f"incident names several servers ({', '.join(several[:5])}); not choosing one")
    if server_id is None and asks_operator(runtime.context) and text:
        candidates = (
            several
            or (list(close.candidates) if close is not None else None)
            or sorted(infra.fleet.servers)[:MAX_CANDIDATES]
        )
        answer = interrupt(
            {
                "type": "choose_server",
                "thread_id": current_thread_id(),
                "incident": text,
                "candidates": candidates,
                "question": "Which server is this incident about? Answer with a server id.",
            }
        )
        choice = answer.get("server_id") if isinstance(answer, dict) else answer
        audit.record(
            runtime.context.state_path,
            current_thread_id(),
            "operator_answer",
            question="choose_server",
            answer=str(choice)[:120],
        )
        server_id = infra.index.resolve(str(choice)) if choice else None
        notes.append(f"operator chose server {server_id}" if server_id else "operator gave no known server")
    symptom = classify_symptom(text)
    brief = {"incident": text, "server_id": server_id, "symptom": symptom}
    update: dict[str, Any] = {
        **FRESH_INCIDENT,
        "incident_id": uuid.uuid4().hex,
        "settings": runtime.context.settings(),
        "incident": text,
        "server_id": server_id,
        "symptom": symptom,
        "notes": {"replace": notes},
        "messages": [
            RemoveMessage(id=REMOVE_ALL_MESSAGES),
            HumanMessage(content=json.dumps(brief, ensure_ascii=False), name=BRIEF_NAME),
        ],
    }
    if server_id is None:
        update["escalation_reason"] = (
            f"server not identified: the incident names several servers ({', '.join(several[:5])})"
            if several
            else f"server not identified: {close.typed!r} is equally close to {', '.join(close.candidates[:5])}"
            if close is not None and not close.unique
            else "server not identified: the incident names no server of the inventory"
            if text
            else "empty incident: nothing to identify"
        )
    return update
