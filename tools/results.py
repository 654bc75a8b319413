"""Structured tool results: every tool answers with a status, never free text the next step must parse."""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict

from langchain_core.messages import ToolMessage

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
