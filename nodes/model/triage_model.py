"""The offline triage model: a LangChain chat model that emits the tool calls an LLM would, by rules."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from it_support_agent.incident.diagnosis import INCIDENT_WINDOW_S, assess_evidence
from it_support_agent.tools.results import evidence_in, latest_tool_result

OFFLINE_MODEL_NAME = "offline triage model"


def incident_brief(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """The structured brief the interpret node put first in the conversation (built by code, not by users)."""
    for message in messages:
        if isinstance(message, HumanMessage) and isinstance(message.content, str):
            try:
                brief = json.loads(message.content)
            except json.JSONDecodeError:
                continue
            if isinstance(brief, dict) and "server_id" in brief:
                return brief
    return {}


class OfflineTriageModel(BaseChatModel):
    """Deterministic stand-in for an LLM: gathers health then logs, then decides from the classified evidence."""

    bound_tools: tuple[str, ...] = ()
    log_lines: int = 100
    incident_window_s: float = INCIDENT_WINDOW_S

    @property
    def _llm_type(self) -> str:
        return "offline-triage"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        names = tuple(getattr(item, "name", None) or getattr(item, "__name__", "") for item in tools)
        return self.model_copy(update={"bound_tools": names})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if "restart_service" in self.bound_tools:
            message = self._decide(messages)
        elif "get_server_health" in self.bound_tools:
            message = self._gather(messages)
        else:
            message = AIMessage(content="No tools are available; nothing to do.")
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _gather(self, messages: Sequence[BaseMessage]) -> AIMessage:
        server_id = incident_brief(messages).get("server_id")
        if not server_id:
            return AIMessage(content="No server identified; nothing to diagnose.")
        if latest_tool_result(messages, "get_server_health") is None:
            return _call("get_server_health", {"server_id": server_id})
        if latest_tool_result(messages, "fetch_recent_logs") is None:
            return _call("fetch_recent_logs", {"server_id": server_id, "lines": self.log_lines})
        return AIMessage(content="Health and recent logs gathered.")

    def _decide(self, messages: Sequence[BaseMessage]) -> AIMessage:
        server_id = incident_brief(messages).get("server_id")
        health, lines = evidence_in(
            latest_tool_result(messages, "get_server_health"), latest_tool_result(messages, "fetch_recent_logs")
        )
        finding = assess_evidence(health, lines, self.incident_window_s)
        if finding.restart_recommended and server_id:
            return _call("restart_service", {"server_id": server_id})
        if finding.category.value == "no_fault" and "close_no_fault" in self.bound_tools:
            return _call("close_no_fault", {"reason": finding.reason})
        evidence = "; ".join(finding.evidence[:4])
        summary = f"{finding.reason} Evidence: {evidence}" if evidence else finding.reason
        return _call("escalate_to_engineer", {"summary": summary})


def _call(name: str, args: dict[str, Any]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}],
    )
