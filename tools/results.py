"""Structured tool results: every tool answers with a status, never free text the next step must parse."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from langchain_core.messages import BaseMessage, ToolMessage

ResultStatus = Literal["success", "error", "no_data"]


class ToolResult(TypedDict, total=False):
    """What a tool returns to the model and to the graph (JSON-serialisable)."""

    status: ResultStatus
    tool: str
    server_id: str | None
    data: dict[str, Any]
    error: str


def success(tool: str, server_id: str | None, **data: Any) -> ToolResult:
    return {"status": "success", "tool": tool, "server_id": server_id, "data": data}


def failure(tool: str, server_id: str | None, error: str) -> ToolResult:
    return {"status": "error", "tool": tool, "server_id": server_id, "error": error}


def no_data(tool: str, server_id: str | None, error: str) -> ToolResult:
    return {"status": "no_data", "tool": tool, "server_id": server_id, "error": error}


def tool_result(message: ToolMessage) -> dict[str, Any] | None:
    """A tool message's structured result: the full artifact when present, else its JSON content."""
    if isinstance(message.artifact, dict):
        return message.artifact
    try:
        parsed = json.loads(message.content) if isinstance(message.content, str) else None
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def latest_tool_result(messages: Sequence[BaseMessage], tool_name: str) -> dict[str, Any] | None:
    """The newest result of a tool in the conversation (the full artifact when present)."""
    for message in reversed(messages):
        if isinstance(message, ToolMessage) and message.name == tool_name:
            return tool_result(message)
    return None


def evidence_in(
    health_result: Mapping[str, Any] | None, logs_result: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, list[str]]:
    """The health figures and log lines two tool results carry (None / [] for a failed or missing read).

    The one reader of evidence from tool results: the decide node and the offline model both use it."""
    health = None
    if health_result and health_result.get("status") == "success":
        found = (health_result.get("data") or {}).get("health")
        health = dict(found) if isinstance(found, Mapping) else None
    data = (logs_result or {}).get("data") or {} if (logs_result or {}).get("status") == "success" else {}
    lines = data.get("lines") or data.get("shown_lines") or []
    return health, [str(line) for line in lines]
