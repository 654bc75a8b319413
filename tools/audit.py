"""The append-only audit trail: one event per tool call, decision, verdict, action and answer, in the state store."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from it_support_agent.incident.text import redact_value
from it_support_agent.tools.store import StoreError, open_store

log = logging.getLogger(__name__)


def record(state_dir: str | Path, thread_id: str, kind: str, **fields: Any) -> bool:
    """Append one event, committed before this returns (secrets masked).

    Answers False when the trail cannot be written (disk full, unwritable store): the failure is logged, and a
    caller about to act (the restart node) must not act unaudited."""
    event = make_event(thread_id, kind, **fields)
    try:
        open_store(state_dir).append_audit(thread_id, kind, event)
    except StoreError as exc:
        log.error("audit event %s of %s not written: %s", kind, thread_id, exc)
        return False
    return True


def make_event(thread_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    """One audit event as stored: UTC time from one clock read, thread, kind, the fields with secrets masked."""
    now = time.time()
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
        "thread_id": thread_id,
        "kind": kind,
        **redact_value(fields),
    }


def events(state_dir: str | Path, thread_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Audit events in order, optionally for one thread."""
    yield from open_store(state_dir).audit_events(thread_id)
