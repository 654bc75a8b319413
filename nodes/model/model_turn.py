"""One model turn for a node: prompt fitted to its budget, call timed, usage recorded, failure named."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import Runnable

from it_support_agent.incident.text import known_secrets, redact
from it_support_agent.incident.usage import Usage, call_usage
from it_support_agent.nodes.model.chat_models import model_budget_s
from it_support_agent.nodes.model.prompt_budget import MESSAGE_OVERHEAD_TOKENS, fit_prompt, message_tokens
from it_support_agent.nodes.model.text_calls import with_text_call

MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class Turn:
    """What one model call gave: the reply (None when the model was unavailable), its usage, the failure."""

    response: AIMessage | None
    usage: Usage
    error: str
    prompt_cut: bool
    note: str = ""
    """Something the reply needed to be usable, said in the report (a call written as text)."""


def model_seconds(usage: Usage | None) -> float:
    """Model time an incident has spent so far, from its usage figures."""
    return float((usage or {}).get("latency_ms", 0.0)) / 1000.0


def take_turn(
    node: str,
    bind: Callable[[float | None], Runnable[Any, Any]],
    system: str,
    messages: Sequence[BaseMessage],
    tools: Sequence[Any],
    spent_s: float = 0.0,
) -> Turn:
    """Load and call the model once; any failure (configuration, timeout, retries exhausted, the incident's model
    time budget spent) is returned, not raised, so the node can escalate with what it has.

    `bind` gets the seconds left of the budget (None: no budget) and gives the runnable to call; `spent_s` is the
    model time the incident has already spent. A call written as text is read as that call when it is exactly one
    call of the offered `tools`."""
    prompt = fit_prompt(system, messages, tools)
    try:
        budget = model_budget_s()
    except ValueError as exc:
        return Turn(None, call_usage(node, None, 0, 0, 0.0), describe_failure(exc), prompt.cut)
    time_left = budget - spent_s if budget else None
    if time_left is not None and time_left <= 0:
        reason = f"the incident's model time budget is spent ({spent_s:.0f} s of {budget:.0f} s)"
        return Turn(None, {}, reason, prompt.cut)  # no call made: nothing to count
    started = time.perf_counter()
    try:
        response = bind(time_left).invoke([SystemMessage(content=system), *prompt.messages])
    except Exception as exc:  # noqa: BLE001 - every model failure is handled the same way: escalate
        usage = call_usage(node, None, prompt.estimated_tokens, 0, time.perf_counter() - started)
        return Turn(None, usage, describe_failure(exc), prompt.cut)
    elapsed = time.perf_counter() - started
    if not isinstance(response, AIMessage):
        response = AIMessage(content=str(getattr(response, "content", "")))
    if isinstance(response.content, str) and response.content:
        # a reply is kept in the checkpoint and may be quoted: an endpoint echoing a credential must not leak it
        response.content = redact(response.content, known_secrets())
    completion = max(0, message_tokens(response) - MESSAGE_OVERHEAD_TOKENS)
    usage = call_usage(node, response, prompt.estimated_tokens, completion, elapsed)
    response, note = with_text_call(response, tools)
    return Turn(response, usage, "", prompt.cut, note)


def describe_failure(exc: BaseException) -> str:
    """The exception type and the first line of its message, bounded."""
    text = redact(str(exc).splitlines()[0], known_secrets()) if str(exc) else ""
    return f"{type(exc).__name__}: {text[:MAX_ERROR_CHARS]}" if text else type(exc).__name__
