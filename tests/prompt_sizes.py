"""Prompt size per model call and per incident at 10, 1,000 and 100,000 log lines, measured on the fake server.

Run it with `python -m tests.prompt_sizes` (prints one line per log size); tests/integration/test_llm.py pins it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import IncidentRunner
from tests.fake_openai import FakeOpenAI, Responder, prompt_chars
from tests.llm_scripts import sensible

LOG_COUNTS = (10, 1_000, 100_000)
MODEL = "fake-gpt"
INCIDENT = "The payment-server-01 is extremely slow and timing out."
_WORDS = (
    "charge",
    "refund",
    "ledger",
    "token",
    "session",
    "invoice",
    "payout",
    "webhook",
    "capture",
    "void",
    "settle",
    "dispute",
    "card",
    "wallet",
    "batch",
    "queue",
    "cursor",
    "lock",
    "socket",
    "thread",
    "cache",
    "schema",
    "index",
    "shard",
    "replica",
    "quorum",
    "lease",
    "epoch",
    "nonce",
    "digest",
    "cipher",
)


@dataclass(frozen=True)
class Measurement:
    """What one incident's model calls cost, from the server's side and from the agent's own estimate."""

    log_lines: int
    outcome: str
    model_calls: int
    largest_request_tokens: int
    """The largest request's messages and tool definitions as JSON, at four characters per token."""
    reported_prompt_tokens: int
    """Summed over the incident, as the server reported them."""
    estimated_max_prompt_tokens: int
    """The agent's own offline estimate of its largest prompt."""


def server_logs(count: int) -> list[str]:
    """A busy payment service: routine requests, warnings, and many distinct error lines, ending in a hung
    worker pool."""
    lines: list[str] = []
    for index in range(count):
        stamp = f"2026-11-27T{8 + index // 360_000 % 2:02d}:{index // 6_000 % 60:02d}:{index // 100 % 60:02d}Z"
        first, second = _WORDS[index % len(_WORDS)], _WORDS[index * 7 % len(_WORDS)]
        if index % 10 == 3:
            lines.append(
                f"{stamp} ERROR {first}-{second} handler failed: {_WORDS[index * 3 % len(_WORDS)]} "
                f"rejected by {second} backend"
            )
        elif index % 10 == 7:
            lines.append(f"{stamp} WARN payment-api request latency p99 {800 + index % 9000}ms above SLO 800ms")
        else:
            lines.append(f"{stamp} INFO payment-api request POST /v1/{first}s 200 {index % 300}ms")
    lines.append("2026-11-27T09:58:01Z ERROR worker pool exhausted: 200/200 threads busy, 1412 requests queued")
    return lines


def write_fleet(directory: Path, log_lines: int) -> Path:
    """A one-server fleet file (written as JSON, which YAML reads, because it is fast for 100,000 lines)."""
    path = directory / f"fleet-{log_lines}.yaml"
    servers = {
        "payment-server-01": {
            "service": "payment-api",
            "health": {"cpu_percent": 98.5, "memory_percent": 71.0, "status": "degraded"},
            "logs": server_logs(log_lines),
            "after_restart": {
                "health": {"cpu_percent": 21.0, "memory_percent": 40.0, "status": "healthy"},
                "logs": ["2026-11-27T10:01:02Z INFO payment-api started"],
            },
        }
    }
    path.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    return path


@contextmanager
def openai_environment(base_url: str, **extra: str) -> Iterator[None]:
    """Environment pointing ChatOpenAI at the fake server (fast retries), restored afterwards."""
    values = {
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "test",
        "MODEL_NAME": MODEL,
        "OPENAI_MAX_RETRIES": "2",
        "OPENAI_TIMEOUT_S": "5",
        "OPENAI_DECIDE_FORMAT": "tools",  # the fake server plays OpenAI's own API: native tool calls
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **extra,
    }
    cleared = (
        "OPENAI_STREAMING",
        "OPENAI_STREAM_USAGE",
        "OPENAI_MAX_TOKENS",
        "OPENAI_PARALLEL_TOOL_CALLS",
        "IT_SUPPORT_MODEL_BUDGET_S",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "LANGSMITH_TRACING",
        "LANGCHAIN_TRACING_V2",
    )
    saved = {name: os.environ.get(name) for name in (*values, *cleared)}
    os.environ.update(values)
    for name in cleared:
        if name not in values:
            os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure(
    log_lines: int,
    workdir: Path,
    responder: Responder = sensible,
    incident: str = INCIDENT,
) -> tuple[Measurement, FakeOpenAI, dict[str, Any]]:
    """Run one incident against the fake server; the measurement, the server (its requests) and the result."""
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    fleet = write_fleet(run_dir, log_lines)
    state_dir = run_dir / "state"
    state_dir.mkdir()
    server = FakeOpenAI(responder).start()
    try:
        with openai_environment(server.base_url):
            result = IncidentRunner(state_dir, fleet).run(incident)
    finally:
        server.stop()
    usage = result.get("usage") or {}
    measurement = Measurement(
        log_lines=log_lines,
        outcome=str(result.get("outcome")),
        model_calls=int(usage.get("model_calls", 0)),
        largest_request_tokens=max(prompt_chars(request) for request in server.requests) // 4,
        reported_prompt_tokens=int(usage.get("prompt_tokens", 0)),
        estimated_max_prompt_tokens=int(usage.get("max_prompt_tokens", 0)),
    )
    return measurement, server, result


def main() -> None:
    from it_support_agent.nodes.model.prompt_budget import PROMPT_BUDGET_TOKENS

    print(f"prompt budget per model call: {PROMPT_BUDGET_TOKENS} tokens (offline estimate)")
    print(
        f"{'log lines':>10} {'outcome':>8} {'calls':>5} {'largest request':>16} {'agent estimate':>15} "
        f"{'incident prompt tokens':>23}"
    )
    with tempfile.TemporaryDirectory() as directory:
        for count in LOG_COUNTS:
            row, _, _ = measure(count, Path(directory))
            print(
                f"{row.log_lines:>10,} {row.outcome:>8} {row.model_calls:>5} {row.largest_request_tokens:>16,} "
                f"{row.estimated_max_prompt_tokens:>15,} {row.reported_prompt_tokens:>23,}"
            )


if __name__ == "__main__":
    main()
