"""Ticket delivery: the JSONL outbox (the default) and configured sinks, deduplicated, spooled on failure."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.sinks import Sink, configured_sinks, deliver_to_sinks

OUTBOX_FILE = "tickets.jsonl"
SPOOL_DIR = "spool"


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
    """Delivers tickets to the outbox and configured sinks, spooling any a sink did not take for `flush`."""

    def __init__(self, state_dir: str | Path, sinks: Sequence[Sink] | None = None) -> None:
        self._state_dir = Path(state_dir)
        self._spool = self._state_dir / SPOOL_DIR
        self._sinks = configured_sinks() if sinks is None else list(sinks)

    @property
    def outbox(self) -> Path:
        return outbox_path(self._state_dir)

    def deliver(self, ticket: Mapping[str, Any]) -> dict[str, Any]:
        """Deliver now, or spool; the answer says which (never raises for a sink that is down)."""
        results = self._send(ticket)
        statuses = {name: status for name, (status, _) in results.items()}
        failed = [(name, error) for name, (status, error) in results.items() if status == "failed"]
        if failed:
            self._spool_ticket(ticket)
            return {"status": "spooled", "sink": failed[0][0], "error": failed[0][1], "sinks": statuses,
                    "spool": str(self._spool / f"{ticket['id']}.json")}
        status = "delivered" if "delivered" in statuses.values() else "duplicate"
        return {"status": status, "sink": "outbox", "path": str(self.outbox), "sinks": statuses}

    def _send(self, ticket: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """The outbox first, then every sink that has not taken the ticket yet."""
        try:
            outbox = ("delivered" if write_to_outbox(self.outbox, ticket) else "duplicate", "")
        except DeliveryError as exc:
            outbox = ("failed", str(exc))
        return {"outbox": outbox, **deliver_to_sinks(self._state_dir, ticket, self._sinks)}

    def _spool_ticket(self, ticket: Mapping[str, Any]) -> None:
        self._spool.mkdir(parents=True, exist_ok=True)
        target = self._spool / f"{ticket['id']}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(ticket, sort_keys=True), encoding="utf-8")
        os.replace(temporary, target)

    def spooled(self) -> list[Path]:
        return sorted(self._spool.glob("*.json")) if self._spool.is_dir() else []

    def flush(self) -> dict[str, int]:
        """Retry every spooled ticket where it is still missing; fully delivered ones leave the spool."""
        counts = {"delivered": 0, "duplicate": 0, "failed": 0}
        for path in self.spooled():
            ticket = json.loads(path.read_text(encoding="utf-8"))
            statuses = [status for status, _ in self._send(ticket).values()]
            if "failed" in statuses:
                counts["failed"] += 1
                continue
            counts["delivered" if "delivered" in statuses else "duplicate"] += 1
            path.unlink()
        return counts
