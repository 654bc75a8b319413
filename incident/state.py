"""The incident state every node reads and updates (typed, JSON-serialisable)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

# typing_extensions' TypedDict: on Python 3.11 the LangGraph API server builds JSON schemas only from it
from typing_extensions import TypedDict

from it_support_agent.incident.records import (
    ActionRecord,
    ApprovalRecord,
    DecisionRecord,
    DiagnosisRecord,
    RestartRecord,
    TicketRecord,
    VerdictRecord,
)
from it_support_agent.incident.usage import add_usage

Outcome = Literal["restart", "escalate", "none", "awaiting_approval"]


def extend_or_reset(left: list[Any] | None, right: list[Any] | dict[str, list[Any]] | None) -> list[Any]:
    """Append updates; {"replace": [...]} starts the list afresh (a new incident on a reused thread)."""
    if isinstance(right, dict):
        return list(right.get("replace", []))
    return [*(left or []), *(right or [])]


class IncidentInput(TypedDict):
    """What a caller provides: the operator's incident text (and, for alerts, the server their label names)."""

    incident: NotRequired[str]
    alert_server: NotRequired[str | None]
    alert_group: NotRequired[str]  # the Alertmanager group key of the alert it came from
    messages: NotRequired[list[AnyMessage]]  # a chat client's input: the newest human message is the incident


class IncidentState(TypedDict, total=False):
    """Everything known about one incident, one thread per incident."""

    incident: str
    alert_server: str | None
    alert_group: str
    incident_id: str
    settings: dict[str, str]
    notes: Annotated[list[str], extend_or_reset]
    server_id: str | None
    symptom: str
    messages: Annotated[list[AnyMessage], add_messages]
    diagnose_rounds: int
    health: dict[str, Any] | None
    diagnosis: DiagnosisRecord
    decision: DecisionRecord
    policy: VerdictRecord
    approval: ApprovalRecord
    restart: RestartRecord | None
    ticket: TicketRecord | None
    escalation_reason: str
    actions: Annotated[list[ActionRecord], extend_or_reset]
    outcome: Outcome | None
    would_restart: bool
    summary: str
    model: str
    model_error: str
    usage: Annotated[dict[str, Any], add_usage]
