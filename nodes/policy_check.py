"""The policy node: deterministic rules decide whether the model's proposal may go ahead."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from it_support_agent.incident.context import Context
from it_support_agent.incident.policy import Verdict, evaluate_restart, load_policy, operator_forbids_restart
from it_support_agent.incident.state import IncidentState
from it_support_agent.nodes.common import current_thread_id, infrastructure, proposed_by_model
from it_support_agent.tools import audit
from it_support_agent.tools.ledger import RestartLedger
from it_support_agent.tools.store import StoreError


def check_policy(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check a proposed restart (or a proposed close) against the policy, whatever the model said."""
    context = runtime.context
    decision = state.get("decision", {})
    diagnosis = state.get("diagnosis", {})
    server_id = state.get("server_id")
    if decision.get("action") == "none":
        if diagnosis.get("category") == "no_fault":
            verdict = Verdict(True, "no_fault_confirmed", "health normal and no fault in the logs")
        else:
            verdict = Verdict(
                False, "close_veto", f"the evidence shows {diagnosis.get('category', 'unknown')}, not a healthy server"
            )
    elif operator_forbids_restart(str(state.get("incident") or "")):
        verdict = Verdict(False, "operator_instruction", "the incident text asks that nothing be restarted")
    else:
        spec = infrastructure(context).fleet.get(server_id) if server_id else None
        policy = load_policy(context.policy_file)
        try:
            history = RestartLedger(context.state_path).facts(server_id or "", policy.lookback_s)
        except StoreError as exc:
            verdict = Verdict(False, "ledger_unreadable", str(exc))
        else:
            verdict = evaluate_restart(
                spec,
                diagnosis,
                history,
                time.time(),
                policy,
                context.autonomy,
                proposed_by_model=proposed_by_model(decision),
                model_blocking_lines=decision.get("blocking_lines") or [],
            )
    audit.record(
        context.state_path,
        current_thread_id(),
        "policy_verdict",
        server_id=server_id,
        proposal=decision.get("action"),
        **verdict.to_dict(),
    )
    update: dict[str, Any] = {"policy": verdict.to_dict()}
    if not verdict.allowed:
        if verdict.rule == "dry_run":
            update.update(outcome="none", would_restart=True)
        else:
            update["escalation_reason"] = (
                f"restart vetoed by policy ({verdict.rule}): {verdict.reason}"
                if (decision.get("action") == "restart")
                else f"close vetoed by policy: {verdict.reason}"
            )
    elif decision.get("action") == "none":
        update["outcome"] = "none"
    return update
