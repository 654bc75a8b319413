"""The tools the model sees: two read-only diagnosis tools and the two decision tools."""

from __future__ import annotations

import json
import time
from typing import Any

from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime

from it_support_agent.incident.context import Context
from it_support_agent.incident.text import redact_lines
from it_support_agent.tools import audit
from it_support_agent.tools.backends.base import BackendError
from it_support_agent.tools.infrastructure import open_infrastructure
from it_support_agent.tools.log_reduce import clean_line, reduce_logs
from it_support_agent.tools.results import ToolResult, failure, no_data, success

MAX_LOG_LINES = 1_000
DEFAULT_LOG_LINES = 100


def _as_content(result: ToolResult) -> str:
    return json.dumps(result, ensure_ascii=False, sort_keys=True)


def _audited(
    runtime: ToolRuntime[Context],
    arguments: dict[str, Any],
    result: ToolResult,
    started: float,
    shown: ToolResult | None = None,
) -> tuple[str, ToolResult]:
    """Record the call in the audit trail, then answer with the JSON content and the full result."""
    thread_id = str((runtime.config or {}).get("configurable", {}).get("thread_id", "unthreaded"))
    audit.record(
        runtime.context.state_path,
        thread_id,
        "tool_call",
        tool=result.get("tool"),
        arguments={key: clean_line(str(value))[:120] for key, value in arguments.items()},
        status=result.get("status"),
        error=result.get("error"),
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return _as_content(shown or result), result


def _incident_server(argument: str, runtime: ToolRuntime[Context], resolved: str | None) -> tuple[str, str]:
    """The resolved server id, or an error: unknown ids and servers other than the incident's are refused."""
    if resolved is None:
        return "", f"unknown server id {clean_line(str(argument))[:80]!r}"
    incident_server = (runtime.state or {}).get("server_id") if isinstance(runtime.state, dict) else None
    if incident_server and resolved != incident_server:
        return "", f"this incident concerns {incident_server}; the tools only read that server"
    return resolved, ""


@tool(response_format="content_and_artifact")
def get_server_health(server_id: str, runtime: ToolRuntime[Context]) -> tuple[str, ToolResult]:
    """Read a server's current health: CPU percent, memory percent and status (healthy, degraded or down)."""
    started = time.perf_counter()
    context = runtime.context
    infra = open_infrastructure(context.fleet_path, context.state_path)
    resolved, problem = _incident_server(server_id, runtime, infra.index.resolve(server_id))
    if problem:
        result = failure("get_server_health", None, problem)
    else:
        try:
            result = success("get_server_health", resolved, health=dict(infra.backend.health(resolved)))
        except BackendError as exc:
            result = no_data("get_server_health", resolved, f"health unavailable: {exc}")
    return _audited(runtime, {"server_id": server_id}, result, started)


@tool(response_format="content_and_artifact")
def fetch_recent_logs(
    server_id: str,
    runtime: ToolRuntime[Context],
    lines: int = DEFAULT_LOG_LINES,
) -> tuple[str, ToolResult]:
    """Fetch the most recent log lines of a server's service (repeats collapsed, errors first)."""
    started = time.perf_counter()
    context = runtime.context
    infra = open_infrastructure(context.fleet_path, context.state_path)
    arguments = {"server_id": server_id, "lines": lines}
    resolved, problem = _incident_server(server_id, runtime, infra.index.resolve(server_id))
    if problem:
        return _audited(runtime, arguments, failure("fetch_recent_logs", None, problem), started)
    count = max(1, min(int(lines) if isinstance(lines, int) else DEFAULT_LOG_LINES, MAX_LOG_LINES))
    try:
        raw = redact_lines(infra.backend.logs(resolved, count))
    except BackendError as exc:
        return _audited(runtime, arguments, no_data("fetch_recent_logs", resolved, f"logs unavailable: {exc}"), started)
    digest = reduce_logs(raw, budget_tokens=context.log_budget_tokens)
    shown = success("fetch_recent_logs", resolved, **digest)
    full = success(
        "fetch_recent_logs", resolved, lines=[clean_line(line) for line in raw], requested_lines=count, **digest
    )
    return _audited(runtime, arguments, full, started, shown=shown)


# Every decision tool takes the model's reading as two optional arguments: `hypothesis`, the likely cause in one
# sentence, and `blocking_lines`, log lines copied verbatim that speak against a restart (a cited line found in the
# evidence vetoes a restart). The tools only record the call: the graph routes on it.


@tool
def restart_service(server_id: str, hypothesis: str = "", blocking_lines: list[str] | None = None) -> str:
    """Restart the service of the incident's server. Only for a local recoverable fault (CPU or memory
    saturation, hung process, OOM) with no sign of a deeper cause; a safety policy checks it before it runs."""
    return "restart requested"


@tool
def escalate_to_engineer(summary: str, hypothesis: str = "", blocking_lines: list[str] | None = None) -> str:
    """Escalate the incident to a human engineer with a short evidence-backed summary of what was found."""
    return "escalation requested"


@tool
def close_no_fault(reason: str, hypothesis: str = "", blocking_lines: list[str] | None = None) -> str:
    """Close the incident with no action because health is normal and the logs show no fault."""
    return "close requested"


DIAGNOSIS_TOOLS = [get_server_health, fetch_recent_logs]
DECISION_TOOLS = [restart_service, escalate_to_engineer, close_no_fault]
