"""The append-only audit trail: one JSON line per tool call, decision, verdict, action and answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from it_support_agent.incident.text import redact_value

AUDIT_FILE = "audit.jsonl"


def record(state_dir: str | Path, thread_id: str, kind: str, **fields: Any) -> None:
    """Append one event, flushed to disk, so a crash loses at most the line in flight."""
    path = Path(state_dir) / AUDIT_FILE
    event = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
        "thread_id": thread_id,
        "kind": kind,
        **redact_value(fields),
    }
    line = json.dumps(event, sort_keys=True, ensure_ascii=True, default=str) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
    except OSError:
        return


def events(state_dir: str | Path, thread_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Audit events in order, optionally for one thread."""
    path = Path(state_dir) / AUDIT_FILE
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if thread_id is None or event.get("thread_id") == thread_id:
                yield event
