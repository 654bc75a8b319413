"""Scripted model behaviours for the fake OpenAI server, written as functions of the recorded request."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.fake_openai import FakeOpenAI, Reply, calls, text, tool_call

Request = dict[str, Any]
_ESCALATE = ("connection refused", "unavailable", "no space", "invalid config", "failed password")
_RESTART = ("exhausted", "blocked for", "oom", "out of memory", "gc overhead")


def offered(request: Request) -> list[str]:
    """Names of the tools a request offers the model."""
    return [item["function"]["name"] for item in request.get("tools", [])]


def brief(request: Request) -> dict[str, Any]:
    """The incident brief (the first user message, JSON made by the interpret node)."""
    for message in request["messages"]:
        if message.get("role") == "user":
            parsed = json.loads(message["content"])
            return parsed if isinstance(parsed, dict) else {}
    return {}


def called(request: Request) -> list[str]:
    """Tool names the model has called so far in the conversation."""
    return [
        call["function"]["name"]
        for message in request["messages"]
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or []
    ]


def tool_answers(request: Request) -> str:
    """Everything the tools answered so far, as one text."""
    return "\n".join(str(message.get("content")) for message in request["messages"] if message.get("role") == "tool")


def system_prompt(request: Request) -> str:
    return str(request["messages"][0]["content"]) if request["messages"][0].get("role") == "system" else ""


def is_diagnosis(request: Request) -> bool:
    return "get_server_health" in offered(request)


def decide_requests(server: FakeOpenAI) -> list[Request]:
    """The requests a fake server got at the decide step."""
    return [request for request in server.requests if not is_diagnosis(request)]


def gather(request: Request, lines: int = 1_000) -> Reply | None:
    """Diagnosis like a careful engineer: health, then logs, then a short summary; None at the decide step."""
    if not is_diagnosis(request):
        return None
    server = brief(request).get("server_id")
    done = called(request)
    if "get_server_health" not in done:
        return calls(tool_call("get_server_health", {"server_id": server}))
    if "fetch_recent_logs" not in done:
        return calls(tool_call("fetch_recent_logs", {"server_id": server, "lines": lines}))
    return text("CPU and memory figures and the recent log lines are gathered.")


def sensible(request: Request) -> Reply:
    """A well-behaved model: restarts a hung or saturated service, escalates a deeper cause, else closes."""
    first = gather(request)
    if first is not None:
        return first
    server = brief(request).get("server_id")
    evidence = tool_answers(request).lower()
    if any(word in evidence for word in _ESCALATE):
        return calls(tool_call("escalate_to_engineer", {"summary": "dependency or deeper fault in the logs"}))
    if any(word in evidence for word in _RESTART):
        return calls(tool_call("restart_service", {"server_id": server}))
    return calls(tool_call("close_no_fault", {"reason": "health normal, logs clean"}))


def deciding(decision: Reply) -> Callable[[Request], Reply]:
    """Gathers evidence sensibly, then answers the decide step with the given reply."""
    return lambda request: gather(request) or decision


def obeying_the_logs(request: Request) -> Reply:
    """A gullible model: restarts whatever server a log line tells it to restart."""
    first = gather(request)
    if first is not None:
        return first
    match = re.search(r"restart ([a-z0-9-]+)", tool_answers(request), re.IGNORECASE)
    target = match.group(1) if match else brief(request).get("server_id")
    return calls(tool_call("restart_service", {"server_id": target}))


def greedy(request: Request) -> Reply:
    """A model that asks for everything, every round: six parallel maximal log reads plus health."""
    if not is_diagnosis(request):
        return sensible(request)
    server = brief(request).get("server_id")
    reads = [tool_call("fetch_recent_logs", {"server_id": server, "lines": 1_000}) for _ in range(6)]
    return calls(tool_call("get_server_health", {"server_id": server}), *reads, content="x" * 5_000)
