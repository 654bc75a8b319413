"""Ticket delivery: the JSONL outbox (the default) and configured sinks, deduplicated, spooled on failure.

This module owns the outbox file, the spool directory and the answer `deliver` gives; a sink that is down,
misconfigured or answers garbage never makes it raise: the ticket is spooled for `flush`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from it_support_agent.tools.sinks import PAGERDUTY_EVENT, Sink, configured_sinks, deliver_to_sinks
from it_support_agent.tools.statefile import is_disk_full, keep_reserve, open_new, open_private, release_reserve
from it_support_agent.tools.store import StoreError, open_store

log = logging.getLogger(__name__)

OUTBOX_FILE = "tickets.jsonl"
SPOOL_DIR = "spool"
TAIL_BYTES = 256 * 1024
LEASE_SLACK_S = 60.0
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 300.0


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


def write_to_outbox(path: Path, ticket: Mapping[str, Any], state_dir: Path | None = None) -> bool:
    """Keep a ticket unless one with its id was kept before, and append it to the JSONL outbox; True when new.

    The store (the state directory's, next to the outbox by default) is the dedup truth: an indexed lookup, never a
    rescan of the file. A ticket kept but not yet appended (a crash or a full disk between the two) is appended by
    the next delivery or `flush`. Raises DeliveryError."""
    ticket_id = str(ticket["id"])
    try:
        store = open_store(state_dir or path.parent)
        new = store.keep_ticket(ticket)
        if not new and store.ticket_exported(ticket_id):
            return False
        line = json.dumps(ticket, sort_keys=True, ensure_ascii=True) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND), "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            if not new and _in_tail(handle, ticket_id):  # appended before a crash, not yet marked exported
                store.mark_exported(ticket_id)
                return False
            handle.seek(0, os.SEEK_END)
            if handle.tell():
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
            handle.write(line.encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        store.mark_exported(ticket_id)
    except (OSError, ValueError, StoreError) as exc:
        raise DeliveryError(f"outbox {path} not writable: {getattr(exc, 'strerror', None) or exc}") from None
    return True


def _write_new(target: Path, text: str) -> None:
    """Write a file whole (a temporary beside it, fsynced, then renamed into place)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    try:
        with open_new(temporary) as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _in_tail(handle: Any, ticket_id: str) -> bool:
    """Whether a ticket with this id is among the outbox's last lines (a bounded read, never the whole file)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - TAIL_BYTES))
    needle = json.dumps({"id": ticket_id})[1:-1].encode("ascii")  # '"id": "..."' as json.dumps writes it
    return needle in handle.read()


class TicketDesk:
    """Delivers tickets to the outbox and configured sinks, spooling any a sink did not take for `flush`."""

    def __init__(self, state_dir: str | Path, sinks: Sequence[Sink] | None = None) -> None:
        self._state_dir = Path(state_dir)
        self._spool = self._state_dir / SPOOL_DIR
        self._sinks = configured_sinks() if sinks is None else list(sinks)

    @property
    def outbox(self) -> Path:
        return outbox_path(self._state_dir)

    def deliver(self, ticket: Mapping[str, Any], background: bool = False) -> dict[str, Any]:
        """Deliver now, or spool; the answer says which (never raises for a sink that is down).

        `background`: the outbox now, the sinks later: the ticket is spooled for every sink ("queued") and the
        caller's delivery worker sends it with `flush`, so a slow sink holds up nobody."""
        if background and self._sinks:
            return self._queue(ticket)
        results = self._send(ticket)
        statuses = {name: status for name, (status, _) in results.items()}
        failed = [(name, error) for name, (status, error) in results.items() if status == "failed"]
        if failed:
            self._spool_ticket(ticket, [name for name, _ in failed])
            return {
                "status": "spooled",
                "sink": failed[0][0],
                "error": failed[0][1],
                "sinks": statuses,
                "spool": str(self._spool / f"{ticket['id']}.json"),
            }
        status = "delivered" if "delivered" in statuses.values() else "duplicate"
        return {"status": status, "sink": "outbox", "path": str(self.outbox), "sinks": statuses}

    def _queue(self, ticket: Mapping[str, Any]) -> dict[str, Any]:
        """The outbox at once (unless the ticket is a PagerDuty event), the sinks through the spool."""
        event = ticket.get("kind") == PAGERDUTY_EVENT
        sinks = [sink.name for sink in self._sinks if not event or sink.name == "pagerduty"]
        statuses: dict[str, str] = {}
        if not event:
            status, error = self._to_outbox(ticket)
            statuses["outbox"] = status
            if status == "failed":
                sinks.append("outbox")
                log.warning("ticket %s: %s; spooled", ticket.get("id"), error)
        if not sinks:
            return {"status": "duplicate" if event else statuses["outbox"], "sink": "outbox", "sinks": statuses}
        statuses.update({name: "queued" for name in sinks if name != "outbox"})
        try:  # owed in the store: any replica's delivery worker may send it
            open_store(self._state_dir).queue_delivery(ticket, sinks)
            return {"status": "queued", "sink": sinks[0], "sinks": statuses, "queue": "store"}
        except StoreError as exc:
            log.warning("ticket %s: the delivery queue cannot be used (%s); spooled to a file", ticket.get("id"), exc)
        target = self._spool / f"{ticket['id']}.json"
        if not target.exists():
            self._spool_ticket(ticket, sinks)
        return {"status": "queued", "sink": sinks[0], "sinks": statuses, "spool": str(target)}

    def _send(self, ticket: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """The outbox first, then every sink that has not taken the ticket yet.

        A PagerDuty lifecycle event (acknowledge, resolve) is no ticket: it goes to the PagerDuty sink alone."""
        if ticket.get("kind") == PAGERDUTY_EVENT:
            return deliver_to_sinks(self._state_dir, ticket, [sink for sink in self._sinks if sink.name == "pagerduty"])
        outbox = self._to_outbox(ticket)
        try:
            sinks = deliver_to_sinks(self._state_dir, ticket, self._sinks)
        except Exception as exc:  # noqa: BLE001 - deliver_to_sinks does not raise; should it, the ticket is spooled
            problem = f"delivery failed: {type(exc).__name__}"
            sinks = {sink.name: ("failed", f"{sink.name}: {problem}") for sink in self._sinks}
        return {"outbox": outbox, **sinks}

    def _to_outbox(self, ticket: Mapping[str, Any]) -> tuple[str, str]:
        """The ticket appended to the outbox: delivered, duplicate, or failed with the reason."""
        try:
            return ("delivered" if write_to_outbox(self.outbox, ticket, self._state_dir) else "duplicate"), ""
        except DeliveryError as exc:
            return "failed", str(exc)

    def _spool_ticket(self, ticket: Mapping[str, Any], pending: list[str]) -> None:
        """Keep the ticket and the sinks that still owe it a delivery; a full disk gives up the reserve for it.

        Raises OSError only when even that fails."""
        if self._spool.is_symlink():
            raise OSError(errno.ELOOP, f"the spool {self._spool} is a symlink; nothing is written through it")
        target = self._spool / f"{ticket['id']}.json"
        text = json.dumps({"ticket": ticket, "pending_sinks": pending}, sort_keys=True, ensure_ascii=True)
        try:
            _write_new(target, text)
        except OSError as exc:
            if not (is_disk_full(exc) and release_reserve(self._state_dir)):
                raise
            _write_new(target, text)

    def spooled(self) -> list[Path]:
        return sorted(self._spool.glob("*.json")) if self._spool.is_dir() else []

    def queue_due(self) -> bool:
        """Whether a delivery in the store's queue is due."""
        try:
            return bool(open_store(self._state_dir).queued_ids(due_only=True, limit=1))
        except StoreError:
            return False

    def owed(self) -> list[dict[str, Any]]:
        """Every ticket a sink still owes a delivery: the store's queue, then the spool files."""
        owed: list[dict[str, Any]] = []
        with contextlib.suppress(StoreError):
            owed.extend(open_store(self._state_dir).owed_deliveries())
        for path in self.spooled():
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                owed.append({"id": path.stem, "pending": ["unreadable spool entry"], "reason": ""})
                continue
            ticket = entry.get("ticket", {}) if isinstance(entry, dict) else {}
            pending = entry.get("pending_sinks", []) if isinstance(entry, dict) else []
            owed.append({"id": ticket.get("id", path.stem), "pending": pending, "reason": ticket.get("reason", "")})
        return owed

    def flush(self, queue: bool = True, spool: bool = True, due_only: bool = False) -> dict[str, int]:
        """Retry every delivery owed where it is still missing: the store's queue (everything owed, or only what
        is due with `due_only`: the delivery worker's way), then the spool files; fully delivered ones leave the
        queue or the spool. "failed" counts what is still owed afterwards."""
        counts = {"delivered": 0, "duplicate": 0, "failed": 0}
        configured = {"outbox", *(sink.name for sink in self._sinks)}
        if queue:
            self._flush_queue(counts, configured, due_only)
        for path in self.spooled() if spool else []:
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                counts["failed"] += 1
                continue
            ticket = entry.get("ticket", entry) if isinstance(entry, dict) else {}
            pending = set(entry.get("pending_sinks", [])) if isinstance(entry, dict) else set()
            if not isinstance(ticket.get("id"), str) or pending - configured:
                counts["failed"] += 1
                continue
            statuses = [status for status, _ in self._send(ticket).values()]
            if "failed" in statuses:
                counts["failed"] += 1
                continue
            counts["delivered" if "delivered" in statuses else "duplicate"] += 1
            path.unlink()
        if not counts["failed"]:
            keep_reserve(self._state_dir)  # set aside again what a full disk used up
        return counts

    def _flush_queue(self, counts: dict[str, int], configured: set[str], due_only: bool) -> None:
        """Send what the store's queue owes (what is due, or everything when not `due_only`: `flush` by hand), one
        ticket at a time under its own lease; a failure is tried again later, backing off per ticket. A delivery
        that waits for an earlier one with its dedup key, or is held by another worker, counts as failed (owed)."""
        try:
            store = open_store(self._state_dir)
            owed = store.queued_ids(due_only)
        except StoreError:
            return
        lease_s = sum(sink.deadline_s for sink in self._sinks) + LEASE_SLACK_S
        for ticket_id in owed:
            try:
                claimed = store.claim_queued(ticket_id, lease_s, due_only)
            except StoreError:
                counts["failed"] += 1
                continue
            if claimed is None:
                if not due_only:
                    counts["failed"] += 1
                continue
            ticket, pending, attempts, until = claimed
            if set(pending) - configured:  # a sink no longer configured: kept until it is again
                outcome: tuple[str, str] = ("failed", f"sinks not configured: {sorted(set(pending) - configured)}")
            else:
                results = self._send(ticket)
                failed = [error for status, error in results.values() if status == "failed"]
                delivered = any(status == "delivered" for status, _ in results.values())
                outcome = ("failed", failed[0]) if failed else ("delivered" if delivered else "duplicate", "")
            counts[outcome[0]] += 1
            with contextlib.suppress(StoreError):
                retry = None if outcome[0] != "failed" else min(RETRY_MAX_S, RETRY_FIRST_S * 2**attempts)
                store.settle_queued(ticket_id, until, retry, outcome[1])
