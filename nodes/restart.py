"""The restart node: the one remediation, re-checked against fresh evidence, performed at most once, verified."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.diagnosis import assess_evidence
from it_support_agent.incident.policy import RestartFacts, Verdict, evaluate_restart, load_policy
from it_support_agent.incident.rulebook import book_for
from it_support_agent.incident.signals import is_healthy
from it_support_agent.incident.state import IncidentState
from it_support_agent.nodes.common import (
    current_thread_id,
    health_figures,
    infrastructure,
    pagerduty_event,
    proposed_by_model,
    restart_key,
)
from it_support_agent.tools import audit
from it_support_agent.tools.backends.base import BackendError
from it_support_agent.tools.infrastructure import Infrastructure
from it_support_agent.tools.ledger import RestartLedger
from it_support_agent.tools.store import StoreError


def _mandate_problem(state: IncidentState, context: Context) -> str:
    """Why this state does not authorise a restart ('' when it does): the graph's own decisions, not edits."""
    server_id = state.get("server_id")
    if state.get("decision", {}).get("action") != "restart" or state.get("decision", {}).get("server_id") != server_id:
        return "no restart decision for this server"
    if not state.get("policy", {}).get("allowed"):
        return "the policy did not allow a restart"
    if context.autonomy == "dry-run":
        return "dry-run mode never restarts"
    if (context.autonomy == "approve" or state.get("policy", {}).get("requires_approval")) and not _approved(state):
        return "no operator approval for this server"
    if state.get("settings") and state.get("settings") != context.settings():
        return "the configuration (fleet, state directory or policy) changed since the decision"
    return ""


def _approved(state: IncidentState) -> bool:
    approval = state.get("approval") or {}
    return approval.get("decision") == "approve" and approval.get("server_id") == state.get("server_id")


def _fresh_evidence(infra: Infrastructure, server_id: str, lines: int) -> tuple[dict[str, Any] | None, list[str]]:
    """Health and logs read again right before acting: an approval may have waited while things changed."""
    try:
        health: dict[str, Any] | None = dict(infra.backend.health(server_id))
    except BackendError:
        health = None
    try:
        logs = infra.backend.logs(server_id, lines)
    except BackendError:
        logs = []
    return health, logs


def restart(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Re-run every policy rule on fresh evidence under the ledger lock, restart, then re-read health."""
    context = runtime.context
    thread_id = current_thread_id()
    server_id = state.get("server_id") or ""
    infra = infrastructure(context)
    spec = infra.fleet.get(server_id)
    problem = _mandate_problem(state, context)
    if spec is None or problem:
        reason = problem or f"{server_id!r} is not in the inventory"
        audit.record(
            context.state_path,
            thread_id,
            "policy_verdict",
            server_id=server_id,
            allowed=False,
            rule="restart_mandate",
            reason=reason,
        )
        return {"escalation_reason": f"restart refused: {reason}"}
    health, logs = _fresh_evidence(infra, server_id, context.log_lines)
    policy = load_policy(context.policy_file)
    fresh = assess_evidence(health, logs, policy.incident_window_s, spec.service, book_for(policy.rule_files)).to_dict()
    key = restart_key(state.get("incident_id") or thread_id, server_id)

    decision = state.get("decision", {})

    def still_allowed(history: RestartFacts, now: float) -> Verdict | None:
        verdict = evaluate_restart(
            spec,
            fresh,
            history,
            now,
            policy,
            context.autonomy,
            proposed_by_model=proposed_by_model(decision),
            model_blocking_lines=decision.get("blocking_lines") or [],
        )
        if verdict.allowed and verdict.requires_approval and not _approved(state):
            # the evidence changed while nobody was asked: what was corroborated now needs a person
            return Verdict(False, "approval_required", f"{verdict.reason}; no operator approved it")
        return None if verdict.allowed else verdict

    try:
        veto = RestartLedger(context.state_path).reserve(
            {"server_id": server_id, "thread_id": thread_id, "idempotency_key": key}, still_allowed, policy.lookback_s
        )
    except StoreError as exc:
        veto = Verdict(False, "ledger_unreadable", str(exc))
    if veto is not None:
        audit.record(context.state_path, thread_id, "policy_verdict", server_id=server_id, **veto.to_dict())
        return {
            "escalation_reason": f"restart vetoed by policy at action time ({veto.rule}): {veto.reason}",
            "policy": veto.to_dict(),
            "diagnosis": fresh,
            "health": health,
        }
    return _perform(state, context, infra, spec.service, key, thread_id)


def _perform(
    state: IncidentState, context: Context, infra: Infrastructure, service: str, key: str, thread_id: str
) -> dict[str, Any]:
    server_id = state.get("server_id") or ""
    before = state.get("health")
    audited = audit.record(
        context.state_path,
        thread_id,
        "action_intent",
        action="restart_service",
        server_id=server_id,
        service=service,
        idempotency_key=key,
    )
    if not audited:  # fail closed: no restart the audit trail cannot show
        reason = "the audit trail cannot be written (disk full or unwritable state store); nothing was restarted"
        return {
            "restart": {"idempotency_key": key, "performed": False, "error": reason, "verified": False},
            "escalation_reason": f"restart refused: {reason}",
        }
    pagerduty_event(context, state, thread_id, "acknowledge")  # the agent is acting on the page
    started = time.perf_counter()
    try:
        outcome = infra.backend.restart(server_id, service, key)
    except BackendError as exc:
        audit.record(
            context.state_path, thread_id, "action_result", action="restart_service", status="error", error=str(exc)
        )
        # What the service is doing now matters more than what the evidence said before: a restart whose outcome is
        # unknown may have left it stopped.
        try:
            now: dict[str, Any] | None = dict(infra.backend.health(server_id))
        except BackendError:
            now = None
        state_now = f"{service} is now: {health_figures(now)}" if now else f"the state of {service} now is unknown"
        return {
            "restart": {"idempotency_key": key, "performed": False, "error": str(exc), "verified": False, "after": now},
            "health": now,
            "escalation_reason": f"restart of {service} on {server_id} failed: {exc}; {state_now}",
            "actions": [{"action": "restart_service", "server_id": server_id, "status": "error", "detail": str(exc)}],
        }
    try:
        after: dict[str, Any] | None = dict(infra.backend.health(server_id))
    except BackendError:
        after = None
    verified = is_healthy(after)
    if verified:
        pagerduty_event(context, state, thread_id, "resolve")
    audit.record(
        context.state_path,
        thread_id,
        "action_result",
        action="restart_service",
        server_id=server_id,
        performed=outcome.performed,
        already_done=outcome.already_done,
        verified=verified,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    result = {
        "idempotency_key": key,
        "service": service,
        "performed": outcome.performed,
        "already_done": outcome.already_done,
        "detail": outcome.detail,
        "before": before,
        "after": after,
        "verified": verified,
    }
    update: dict[str, Any] = {
        "restart": result,
        "actions": [
            {
                "action": "restart_service",
                "server_id": server_id,
                "service": service,
                "status": "already_done" if outcome.already_done else "done",
                "detail": outcome.detail,
            },
            {
                "action": "verify_health",
                "server_id": server_id,
                "status": "healthy" if verified else "unhealthy",
                "detail": health_figures(after),
            },
        ],
    }
    if verified:
        update["outcome"] = "restart"
    else:
        update["escalation_reason"] = (
            f"restart did not help: before {health_figures(before)}; after {health_figures(after)}"
        )
    return update
