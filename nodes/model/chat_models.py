"""Choosing the chat model: the offline triage model by default, an OpenAI-compatible LLM by configuration."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel

from it_support_agent.incident.context import Context
from it_support_agent.incident.policy import load_policy
from it_support_agent.nodes.model.triage_model import OFFLINE_MODEL_NAME, OfflineTriageModel

OFFLINE_NAMES = frozenset({"", "offline", "offline-triage", "rules"})
DEFAULT_TIMEOUT_S = 60.0
"""Per HTTP attempt; a local model on a CPU may need more (OPENAI_TIMEOUT_S)."""
DEFAULT_MAX_RETRIES = 3
"""Retries on 408/409/429/5xx, timeouts and connection errors, with exponential back-off (0.5 s doubling, at
most 8 s, or the server's Retry-After); then the node escalates as "model unavailable"."""
STEP_MAX_TOKENS = {"diagnose": 384, "decide": 512}
"""Completion cap per call and step, so a looping local model cannot run up cost or time: a diagnosis turn is a
tool call or three sentences, a decision one small JSON object. OPENAI_MAX_TOKENS sets one cap for every step
(0 = no cap)."""
DEFAULT_MAX_TOKENS = max(STEP_MAX_TOKENS.values())
DEFAULT_BUDGET_S = 240.0
"""Model time one incident may spend in all (IT_SUPPORT_MODEL_BUDGET_S): past it the agent stops asking the model
and escalates with what it has, instead of waiting out timeouts and retries on a slow server."""
DECIDE_FORMATS = ("tools", "json_schema")


class ModelConfigError(ValueError):
    """The configured model cannot be used (for example a missing API key)."""


def is_offline(model: str) -> bool:
    return model.strip().lower() in OFFLINE_NAMES


def model_label(context: Context) -> str:
    """How reports name the model that decided."""
    return OFFLINE_MODEL_NAME if is_offline(context.model) else f"LLM {context.model}"


def load_chat_model(context: Context, step: str = "", time_left_s: float | None = None) -> BaseChatModel:
    """The chat model for this run and step; a real LLM needs OPENAI_API_KEY or OPENAI_BASE_URL.

    `time_left_s`, what remains of the incident's model time budget, bounds the attempt timeout and the number of
    retries, so timeouts and retries together cannot run past it."""
    if is_offline(context.model):
        return OfflineTriageModel(
            log_lines=context.log_lines, incident_window_s=load_policy(context.policy_file).incident_window_s
        )
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    api_key = os.environ.get("OPENAI_API_KEY") or None
    if api_key is None and base_url is None:
        raise ModelConfigError(
            f"model {context.model!r} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible "
            "server); set MODEL_NAME=offline to use the offline triage model"
        )
    from langchain_openai import ChatOpenAI

    max_tokens = _env_int("OPENAI_MAX_TOKENS", STEP_MAX_TOKENS.get(step, DEFAULT_MAX_TOKENS))
    timeout = _env_float("OPENAI_TIMEOUT_S", DEFAULT_TIMEOUT_S)
    retries = _env_int("OPENAI_MAX_RETRIES", DEFAULT_MAX_RETRIES)
    if time_left_s is not None:
        timeout = min(timeout, time_left_s) if timeout else time_left_s
        retries = max(0, min(retries, int(time_left_s // max(timeout, 0.001)) - 1))
    streaming = _env_flag("OPENAI_STREAMING")
    # unset: stream only when the caller streams (LangGraph's "messages" mode, as Studio uses); true: always
    options: dict[str, Any] = {} if streaming is None else {"streaming": streaming}
    return ChatOpenAI(
        model=context.model.strip(),
        base_url=base_url,
        api_key=api_key or "not-needed",  # type: ignore[arg-type]
        temperature=0,
        timeout=timeout or None,
        max_retries=retries,
        max_tokens=max_tokens or None,  # type: ignore[call-arg]
        stream_usage=_env_flag("OPENAI_STREAM_USAGE") is not False,
        use_responses_api=False,
        **options,
    )


def model_budget_s() -> float:
    """The model time one incident may spend (IT_SUPPORT_MODEL_BUDGET_S, seconds; 0 = no budget)."""
    return _env_float("IT_SUPPORT_MODEL_BUDGET_S", DEFAULT_BUDGET_S)


def decide_format() -> str:
    """How the decide step asks for its answer (OPENAI_DECIDE_FORMAT): `tools`, the decision tools with a call
    required (OpenAI's native form), or `json_schema`, one JSON object constrained by a schema through
    `response_format` (OpenAI, vLLM, Ollama and llama.cpp's server; a small local model keeps to it, and its
    answer ends when the object does). Either way the answer becomes one decision tool call."""
    raw = os.environ.get("OPENAI_DECIDE_FORMAT", "").strip().lower() or default_decide_format()
    if raw not in DECIDE_FORMATS:
        raise ModelConfigError(f"OPENAI_DECIDE_FORMAT must be one of {', '.join(DECIDE_FORMATS)}, not {raw!r}")
    return raw


def default_decide_format() -> str:
    """`json_schema` for a self-hosted server (OPENAI_BASE_URL set to anything but OpenAI's own API), `tools` for
    OpenAI: with a call required, llama.cpp's server lets a small model write text first and withholds the end of
    the answer until a call appears, so the answer runs to the completion cap; a schema-constrained one cannot."""
    base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    if not base_url or (urlsplit(base_url).hostname or "").endswith("api.openai.com"):
        return "tools"
    return "json_schema"


def parallel_tool_calls() -> bool:
    """Whether the server may answer one diagnosis turn with several tool calls (OPENAI_PARALLEL_TOOL_CALLS)."""
    return _env_flag("OPENAI_PARALLEL_TOOL_CALLS") is True


def _env_float(name: str, default: float) -> float:
    """A non-negative number from the environment; a bad value is an error naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ModelConfigError(f"{name} must be a number, not {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ModelConfigError(f"{name} must be a finite number >= 0, not {raw!r}")
    return value


def _env_int(name: str, default: int) -> int:
    value = _env_float(name, default)
    if value != int(value):
        raise ModelConfigError(f"{name} must be a whole number, not {value}")
    return int(value)


def _env_flag(name: str) -> bool | None:
    """A yes/no setting from the environment; None when unset."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ModelConfigError(f"{name} must be true or false, not {raw!r}")
