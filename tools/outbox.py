"""Ticket delivery: the JSONL outbox (the default sink), deduplicated by ticket id, with a spool on failure."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

OUTBOX_FILE = "tickets.jsonl"
SPOOL_DIR = "spool"
Sink = Callable[[Mapping[str, Any]], None]


class DeliveryError(RuntimeError):
    """A sink could not take the ticket."""


def outbox_path(state_dir: str | Path) -> Path:
    return Path(os.environ.get("IT_SUPPORT_OUTBOX") or Path(state_dir) / OUTBOX_FILE)


def read_outbox(path: Path) -> list[dict[str, Any]]:
    """Every ticket in an outbox file (lines that do not parse are skipped)."""
    tickets: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    ticket = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(ticket, dict):
                    tickets.append(ticket)
    except FileNotFoundError:
        return []
    return tickets


def write_to_outbox(path: Path, ticket: Mapping[str, Any]) -> bool:
    """Append a ticket unless one with its id is already there; True when written. Raises DeliveryError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            for line in handle:
                if f'"id": "{ticket["id"]}"' in line:
                    return False
            handle.write(json.dumps(ticket, sort_keys=True, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise DeliveryError(f"outbox {path} not writable: {exc.strerror or exc}") from None
    return True


class TicketDesk:
    """Delivers tickets to the outbox, keeping any it cannot deliver in a spool for `flush`."""

    def __init__(self, state_dir: str | Path) -> None:
        self._state_dir = Path(state_dir)
        self._spool = self._state_dir / SPOOL_DIR

    @property
    def outbox(self) -> Path:
        return outbox_path(self._state_dir)

    def deliver(self, ticket: Mapping[str, Any]) -> dict[str, Any]:
        """Deliver now, or spool; the answer says which (never raises for a sink that is down)."""
        try:
            written = write_to_outbox(self.outbox, ticket)
        except DeliveryError as exc:
            self._spool_ticket(ticket)
            return {"status": "spooled", "sink": "outbox", "error": str(exc),
                    "spool": str(self._spool / f"{ticket['id']}.json")}
        return {"status": "delivered" if written else "duplicate", "sink": "outbox", "path": str(self.outbox)}

    def _spool_ticket(self, ticket: Mapping[str, Any]) -> None:
        self._spool.mkdir(parents=True, exist_ok=True)
        target = self._spool / f"{ticket['id']}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(ticket, sort_keys=True), encoding="utf-8")
        os.replace(temporary, target)

    def spooled(self) -> list[Path]:
        return sorted(self._spool.glob("*.json")) if self._spool.is_dir() else []

    def flush(self) -> dict[str, int]:
        """Retry every spooled ticket; delivered (or already present) ones leave the spool."""
        counts = {"delivered": 0, "duplicate": 0, "failed": 0}
        for path in self.spooled():
            ticket = json.loads(path.read_text(encoding="utf-8"))
            try:
                written = write_to_outbox(self.outbox, ticket)
            except DeliveryError:
                counts["failed"] += 1
                continue
            counts["delivered" if written else "duplicate"] += 1
            path.unlink()
        return counts
