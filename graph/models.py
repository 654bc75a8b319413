"""Choosing the chat model: the offline triage model by default, an OpenAI-compatible LLM by configuration."""

from __future__ import annotations

import os

from langchain_core.language_models import BaseChatModel

from graph.context import Context
from graph.triage_model import OFFLINE_MODEL_NAME, OfflineTriageModel

OFFLINE_NAMES = frozenset({"", "offline", "offline-triage", "rules"})


class ModelConfigError(ValueError):
    """The configured model cannot be used (for example a missing API key)."""


def is_offline(model: str) -> bool:
    return model.strip().lower() in OFFLINE_NAMES


def model_label(context: Context) -> str:
    """How reports name the model that decided."""
    return OFFLINE_MODEL_NAME if is_offline(context.model) else f"LLM {context.model}"


def load_chat_model(context: Context) -> BaseChatModel:
    """The chat model for this run; a real LLM needs OPENAI_API_KEY or OPENAI_BASE_URL."""
    if is_offline(context.model):
        return OfflineTriageModel(log_lines=context.log_lines)
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    api_key = os.environ.get("OPENAI_API_KEY") or None
    if api_key is None and base_url is None:
        raise ModelConfigError(
            f"model {context.model!r} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible "
            "server); set MODEL_NAME=offline to use the offline triage model"
        )
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=context.model,
        base_url=base_url,
        api_key=api_key or "not-needed",  # type: ignore[arg-type]
        temperature=0,
        timeout=float(os.environ.get("OPENAI_TIMEOUT_S", "60")),
        max_retries=int(os.environ.get("OPENAI_MAX_RETRIES", "3")),
    )
