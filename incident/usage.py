"""Model usage per incident: calls, prompt and completion tokens, latency per node, summed across nodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage

Usage = dict[str, Any]

COUNTERS = ("model_calls", "failed_calls", "estimated_calls", "prompt_tokens", "completion_tokens", "total_tokens")
"""Figures that add up across model calls and nodes."""


def add_usage(current: Mapping[str, Any] | None, update: Mapping[str, Any] | None) -> Usage:
    """The state reducer: counters and latency add up, the largest prompt is kept, per-node figures merge."""
    current = current or {}
    if update is not None and update.get("reset"):
        return {}
    if not update:
        return dict(current)
    merged = _add_figures(current, update)
    merged["max_prompt_tokens"] = max(int(current.get("max_prompt_tokens", 0)), int(update.get("max_prompt_tokens", 0)))
    nodes = {name: dict(figures) for name, figures in (current.get("nodes") or {}).items()}
    for name, figures in (update.get("nodes") or {}).items():
        nodes[name] = _add_figures(nodes.get(name, {}), figures)
    merged["nodes"] = nodes
    return merged


def call_usage(
    node: str, response: AIMessage | None, prompt_estimate: int, completion_estimate: int, latency_s: float
) -> Usage:
    """One model call's usage: the server's token counts when it reported them, else the offline estimates."""
    reported = response.usage_metadata if response is not None else None
    failed = response is None
    if reported:
        prompt, completion, estimated = int(reported["input_tokens"]), int(reported["output_tokens"]), False
    elif failed:
        prompt, completion, estimated = 0, 0, False
    else:
        prompt, completion, estimated = prompt_estimate, completion_estimate, True
    latency_ms = round(latency_s * 1000, 1)
    figures = {
        "model_calls": 1,
        "failed_calls": int(failed),
        "estimated_calls": int(estimated),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "latency_ms": latency_ms,
    }
    return {**figures, "max_prompt_tokens": prompt, "nodes": {node: dict(figures)}}


def describe_usage(usage: Mapping[str, Any]) -> str:
    """One line for a trace, e.g. '1 model call, 812 prompt + 25 completion tokens, 412.0 ms'."""
    calls = int(usage.get("model_calls", 0))
    text = (
        f"{calls} model call{'s' if calls != 1 else ''}, {usage.get('prompt_tokens', 0)} prompt + "
        f"{usage.get('completion_tokens', 0)} completion tokens"
    )
    if usage.get("estimated_calls"):
        text += " (estimated)"
    if usage.get("failed_calls"):
        text += f", {usage['failed_calls']} failed"
    return f"{text}, {usage.get('latency_ms', 0.0)} ms"


def _add_figures(current: Mapping[str, Any], update: Mapping[str, Any]) -> Usage:
    figures: Usage = {name: int(current.get(name, 0)) + int(update.get(name, 0)) for name in COUNTERS}
    latency = float(current.get("latency_ms", 0.0)) + float(update.get("latency_ms", 0.0))
    figures["latency_ms"] = round(latency, 1)
    return figures
