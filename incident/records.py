"""The typed records an incident's state carries: diagnosis, decision, verdict, approval, restart, ticket, actions.

Each is what one node writes and later nodes, the report, the ticket and the LangGraph API server's schemas read.
All are JSON-serialisable and `total=False`: a fresh incident starts each one empty.
"""

from __future__ import annotations

from typing import Any, Literal

# typing_extensions' TypedDict: on Python 3.11 the LangGraph API server builds JSON schemas only from it
from typing_extensions import TypedDict

DecisionAction = Literal["restart", "escalate", "none"]


class SignalRecord(TypedDict, total=False):
    """One log line that matched an evidence rule."""

    category: str
    source: str
    detail: str
    rule: str


# "for" is a keyword, so the diagnosis record is declared in the functional form.
DiagnosisRecord = TypedDict(
    "DiagnosisRecord",
    {
        "category": str,
        "restart_recommended": bool,
        "categories": list[str],
        "evidence": list[str],
        "reason": str,
        "signals": list[SignalRecord],
        "for": list[str],
        "against": list[str],
        "unexplained": list[str],
        "window": dict[str, float],
        "basis": str,
    },
    total=False,
)
"""The code-made finding: category, whether a restart may help, and the evidence on both sides."""


class DecisionRecord(TypedDict, total=False):
    """The decision the model's tool call (or the agent itself) made."""

    action: DecisionAction
    server_id: str | None
    tool: str | None
    by: str
    reason: str
    problem: str
    hypothesis: str
    """The model's own account of the cause (LLM mode), shown as the model's, never as a finding."""
    blocking_lines: list[str]
    """Log lines the model cites as blocking a restart, each found verbatim in the evidence; they veto one."""
    uncited_lines: list[str]
    """Lines the model cited that the evidence does not hold (ignored, reported)."""


class VerdictRecord(TypedDict, total=False):
    """The deterministic policy's answer to a proposed restart."""

    allowed: bool
    rule: str
    reason: str
    requires_approval: bool


class ApprovalRecord(TypedDict, total=False):
    """The operator's answer to an approval request."""

    decision: Literal["approve", "reject"]
    comment: str
    server_id: str | None


class RestartRecord(TypedDict, total=False):
    """What the restart did, with health before and after."""

    idempotency_key: str
    service: str
    performed: bool
    already_done: bool
    detail: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    verified: bool
    error: str


class ActionRecord(TypedDict, total=False):
    """One step taken, as the report and the ticket list it."""

    action: str
    server_id: str | None
    service: str
    status: str
    detail: str
    ticket_id: str


class DeliveryRecord(TypedDict, total=False):
    """Where a ticket went: the outbox, the spool, and each sink's answer."""

    status: Literal["delivered", "duplicate", "spooled", "queued"]
    sink: str
    path: str
    error: str
    spool: str
    sinks: dict[str, str]


class TicketRecord(TypedDict, total=False):
    """The escalation ticket an engineer receives."""

    id: str
    dedup_key: str
    thread_id: str
    created_at: str
    server_id: str | None
    severity: str
    reason: str
    summary: str
    incident: str
    evidence: dict[str, Any]
    actions_taken: list[ActionRecord]
    restart: RestartRecord | None
    operator_comment: str | None
    model: str | None
    delivery: DeliveryRecord
    dependency: str
    """A shared-dependency storm's: the declared dependency the evidence implicates."""
    affected_servers: list[str]
    """The storm's servers so far, in the order they failed."""
    kind: str
    """Set to "ticket_update" on a storm member's update of its parent ticket."""
    update_of: str
    """The parent ticket a storm update belongs to."""
