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
from it_support_agent.nodes.model.prompt_budget import MESSAGE_OVERHEAD_TOKENS, fit_prompt, message_tokens

MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class Turn:
    """What one model call gave: the reply (None when the model was unavailable), its usage, the failure."""

    response: AIMessage | None
    usage: Usage
    error: str
    prompt_cut: bool


def take_turn(
    node: str,
    bind: Callable[[], Runnable[Any, Any]],
    system: str,
    messages: Sequence[BaseMessage],
    tools: Sequence[Any],
) -> Turn:
    """Load and call the model once; any failure (configuration, timeout, retries exhausted) is returned, not
    raised, so the node can escalate with what it has."""
    prompt = fit_prompt(system, messages, tools)
    started = time.perf_counter()
    try:
        response = bind().invoke([SystemMessage(content=system), *prompt.messages])
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
    return Turn(response, usage, "", prompt.cut)


def describe_failure(exc: BaseException) -> str:
    """The exception type and the first line of its message, bounded."""
    text = redact(str(exc).splitlines()[0], known_secrets()) if str(exc) else ""
    return f"{type(exc).__name__}: {text[:MAX_ERROR_CHARS]}" if text else type(exc).__name__
