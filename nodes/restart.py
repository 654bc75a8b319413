"""The restart node: the one remediation, performed at most once per incident, then verified."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context
from graph.policy import check_rate, load_policy
from graph.signals import is_healthy
from graph.state import IncidentState
from nodes.common import current_thread_id, health_figures, infrastructure
from tools import audit
from tools.backend import BackendError
from tools.ledger import RestartLedger


def restart_key(thread_id: str, server_id: str) -> str:
    """The idempotency key of an incident's restart: one per thread and server."""
    return f"{thread_id}:restart:{server_id}"


def restart(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Reserve the restart in the ledger (re-checking limits atomically), perform it, then re-read health."""
    context = runtime.context
    thread_id = current_thread_id()
    server_id = state.get("server_id") or ""
    infra = infrastructure(context)
    spec = infra.fleet.get(server_id)
    if spec is None:
        return {"escalation_reason": f"restart refused: {server_id!r} is not in the inventory"}
    key = restart_key(thread_id, server_id)
    policy = load_policy(context.policy_file)
    veto = RestartLedger(context.state_path).reserve(
        {"server_id": server_id, "thread_id": thread_id, "idempotency_key": key},
        lambda history, now: check_rate(server_id, history, now, policy),
    )
    if veto is not None:
        audit.record(context.state_path, thread_id, "policy_verdict", server_id=server_id, **veto.to_dict())
        return {"escalation_reason": f"restart vetoed by policy ({veto.rule}): {veto.reason}",
                "policy": veto.to_dict()}
    before = state.get("health")
    audit.record(context.state_path, thread_id, "action_intent", action="restart_service", server_id=server_id,
                 service=spec.service, idempotency_key=key)
    started = time.perf_counter()
    try:
        outcome = infra.backend.restart(server_id, spec.service, key)
    except BackendError as exc:
        audit.record(context.state_path, thread_id, "action_result", action="restart_service", status="error",
                     error=str(exc))
        return {"restart": {"idempotency_key": key, "performed": False, "error": str(exc), "verified": False},
                "escalation_reason": f"restart of {spec.service} on {server_id} failed: {exc}",
                "actions": [{"action": "restart_service", "server_id": server_id, "status": "error",
                             "detail": str(exc)}]}
    try:
        after: dict[str, Any] | None = dict(infra.backend.health(server_id))
    except BackendError:
        after = None
    verified = is_healthy(after)
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    audit.record(context.state_path, thread_id, "action_result", action="restart_service", server_id=server_id,
                 performed=outcome.performed, already_done=outcome.already_done, verified=verified,
                 duration_ms=duration_ms)
    result = {"idempotency_key": key, "service": spec.service, "performed": outcome.performed,
              "already_done": outcome.already_done, "detail": outcome.detail, "before": before, "after": after,
              "verified": verified}
    update: dict[str, Any] = {
        "restart": result,
        "actions": [
            {"action": "restart_service", "server_id": server_id, "service": spec.service,
             "status": "already_done" if outcome.already_done else "done", "detail": outcome.detail},
            {"action": "verify_health", "server_id": server_id, "status": "healthy" if verified else "unhealthy",
             "detail": health_figures(after)},
        ],
    }
    if verified:
        update["outcome"] = "restart"
    else:
        update["escalation_reason"] = (f"restart did not help: before {health_figures(before)}; "
                                       f"after {health_figures(after)}")
    return update
