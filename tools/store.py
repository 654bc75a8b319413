"""The state store: one transactional SQLite database in the state directory for everything that must survive.

The graph's checkpoints and the agent's own tables share the file (`checkpoints.sqlite`, WAL): the alert intake
queue, the restart ledger and the restarts' idempotency keys, the audit trail, and an index of incident threads.
Every change is a short transaction, so a SIGKILL loses at most the transaction in flight and never leaves half
of one; there are no whole-file rewrites and every lookup is indexed, so the cost of one incident does not grow
with history. Several processes on one host share the database safely (SQLite locking, busy timeout).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from it_support_agent.tools.statefile import keep_reserve, symlinks_inside

STORE_FILE = "checkpoints.sqlite"
BUSY_TIMEOUT_S = 30.0
KEEP_KEYS_S = 30 * 24 * 3600.0
KEEP_RESTARTS_S = 7 * 24 * 3600.0
KEEP_DELIVERIES_S = 30 * 24 * 3600.0
HOUR_S = 3600.0
T = TypeVar("T")

IntakeState = Literal["queued", "running", "done", "cancelled", "coalesced", "stalled"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_intake (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id TEXT NOT NULL UNIQUE,
    server_id TEXT,
    alertname TEXT NOT NULL DEFAULT '',
    incident TEXT NOT NULL,
    state TEXT NOT NULL,
    parent TEXT,
    worker TEXT,
    accepted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS agent_intake_state ON agent_intake (state, id);
CREATE INDEX IF NOT EXISTS agent_intake_server ON agent_intake (server_id, state);
CREATE TABLE IF NOT EXISTS agent_restart_keys (
    key TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    service TEXT NOT NULL,
    at REAL NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS agent_restarts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT UNIQUE,
    server_id TEXT NOT NULL,
    at REAL NOT NULL,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_restarts_at ON agent_restarts (at);
CREATE INDEX IF NOT EXISTS agent_restarts_server ON agent_restarts (server_id, at);
CREATE TABLE IF NOT EXISTS agent_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_audit_thread ON agent_audit (thread_id, id);
CREATE TABLE IF NOT EXISTS agent_threads (
    thread_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    server_id TEXT,
    outcome TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_threads_created ON agent_threads (created_at);
CREATE TABLE IF NOT EXISTS agent_tickets (
    id TEXT PRIMARY KEY,
    thread_id TEXT,
    created_at REAL NOT NULL,
    exported INTEGER NOT NULL DEFAULT 0,
    ticket TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_tickets_thread ON agent_tickets (thread_id);
CREATE TABLE IF NOT EXISTS agent_deliveries (
    ticket_id TEXT NOT NULL,
    sink TEXT NOT NULL,
    state TEXT NOT NULL,
    until REAL NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (ticket_id, sink)
);
CREATE INDEX IF NOT EXISTS agent_deliveries_at ON agent_deliveries (at);
CREATE TABLE IF NOT EXISTS agent_delivery_queue (
    ticket_id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    ticket TEXT NOT NULL,
    pending TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    claimed_until REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS agent_delivery_queue_due ON agent_delivery_queue (next_at);
CREATE INDEX IF NOT EXISTS agent_delivery_queue_order ON agent_delivery_queue (dedup_key, queued_at);
CREATE TABLE IF NOT EXISTS agent_storms (
    parent_id TEXT PRIMARY KEY,
    dependency TEXT NOT NULL,
    page_key TEXT NOT NULL,
    opened_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_storms_dependency ON agent_storms (dependency, updated_at);
CREATE TABLE IF NOT EXISTS agent_storm_members (
    thread_id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    server_id TEXT NOT NULL,
    joined_at REAL NOT NULL,
    resolved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS agent_storm_members_parent ON agent_storm_members (parent_id, position);
"""


class StoreError(RuntimeError):
    """The store cannot be read or written (disk full, a corrupt or foreign database, permissions)."""


@dataclass(frozen=True)
class StormMembership:
    """Where one escalation stands in a shared-dependency storm."""

    parent_id: str
    position: int
    """0 for the server whose ticket is the parent ticket; 1, 2, ... for the servers that joined it."""
    servers: tuple[str, ...]
    """Every server of the storm so far, in the order they joined."""
    page_key: str
    """The dedup key the parent ticket pages with: every update joins that page."""


@dataclass(frozen=True)
class IntakeItem:
    """One accepted alert's incident run, as queued."""

    thread_id: str
    server_id: str | None
    alertname: str
    incident: str
    state: IntakeState


class Store:
    """The state directory's database. One connection per thread; every method is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        links = symlinks_inside(path.parent)
        if links:
            raise StoreError(f"the state directory holds a symlink ({links[0]}); remove it, nothing is written through")
        if not os.access(path.parent, os.W_OK) or os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            raise StoreError(f"the state directory {path.parent} is read-only: nothing can be recorded there")
        try:
            self._connection().executescript(_SCHEMA)  # idempotent; executescript commits on its own
        except sqlite3.Error as exc:
            raise StoreError(f"state store {self.path}: {exc}") from None
        self._migrate_json_files()
        keep_reserve(path.parent)

    # --- plumbing -------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")  # WAL: a process crash loses no commit
            except sqlite3.Error as exc:
                raise StoreError(f"state store {self.path}: {exc}") from None
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: writers queue for the lock, so check-then-write steps are atomic."""
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"state store {self.path}: {exc}") from None
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"state store {self.path}: {exc}") from None
            raise

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._connection().execute(sql, parameters))
        except sqlite3.Error as exc:
            raise StoreError(f"state store {self.path}: {exc}") from None

    # --- audit trail ----------------------------------------------------------------------------------------

    def append_audit(self, thread_id: str, kind: str, event: Mapping[str, Any]) -> None:
        with self._transaction() as connection:
            _insert_audit(connection, thread_id, kind, event)

    def audit_events(self, thread_id: str | None = None) -> Iterator[dict[str, Any]]:
        if thread_id is None:
            rows = self._read("SELECT event FROM agent_audit ORDER BY id")
        else:
            rows = self._read("SELECT event FROM agent_audit WHERE thread_id = ? ORDER BY id", (thread_id,))
        for (event,) in rows:
            try:
                parsed = json.loads(event)
            except (TypeError, ValueError):
                parsed = None
            # a damaged row is shown as such, never skipped and never the end of the listing
            yield parsed if isinstance(parsed, dict) else {"kind": "unreadable_event", "raw": repr(event)[:500]}

    # --- restart ledger -------------------------------------------------------------------------------------

    def restart_history(self, since_s: float = KEEP_RESTARTS_S) -> list[dict[str, Any]]:
        """Restarts of the last `since_s` seconds (the policy looks back an hour at most), oldest first."""
        rows = self._read("SELECT entry, at FROM agent_restarts WHERE at >= ? ORDER BY at", (time.time() - since_s,))
        return [{**json.loads(entry), "at": at} for entry, at in rows]

    def restart_facts(self, server_id: str, lookback_s: float) -> tuple[float | None, int]:
        """(this server's last restart within `lookback_s`, the fleet's restarts in the last hour): two indexed
        queries, whatever the ledger holds."""
        return self._facts(lambda sql, parameters: self._read(sql, parameters)[0], server_id, lookback_s, time.time())

    @staticmethod
    def _facts(
        one: Callable[[str, Sequence[Any]], Sequence[Any]], server_id: str, lookback_s: float, now: float
    ) -> tuple[float | None, int]:
        since = now - min(lookback_s, KEEP_RESTARTS_S)
        (last,) = one("SELECT MAX(at) FROM agent_restarts WHERE server_id = ? AND at >= ?", (server_id, since))
        (count,) = one("SELECT COUNT(*) FROM agent_restarts WHERE at >= ?", (now - HOUR_S,))
        return (float(last) if last is not None else None), int(count)

    def reserve_restart(
        self,
        entry: Mapping[str, Any],
        check: Callable[[float | None, int, float], T | None],
        lookback_s: float = KEEP_RESTARTS_S,
    ) -> T | None:
        """Atomically: run check(this server's last restart within `lookback_s`, the fleet's restarts in the last
        hour, now); if it passes (None), record the restart and return None.

        A reservation whose idempotency key is already recorded passes without a second entry."""
        with self._transaction() as connection:
            key = entry.get("idempotency_key")
            if key and connection.execute("SELECT 1 FROM agent_restarts WHERE idempotency_key = ?", (key,)).fetchone():
                return None
            now = time.time()
            last, count = self._facts(
                lambda sql, parameters: connection.execute(sql, parameters).fetchone(),
                str(entry.get("server_id", "")),
                lookback_s,
                now,
            )
            veto = check(last, count, now)
            if veto is not None:
                return veto
            connection.execute(
                "INSERT INTO agent_restarts (idempotency_key, server_id, at, entry) VALUES (?, ?, ?, ?)",
                (key, str(entry.get("server_id", "")), now, json.dumps(dict(entry), sort_keys=True, default=str)),
            )
            connection.execute("DELETE FROM agent_restarts WHERE at < ?", (now - KEEP_RESTARTS_S,))
        return None

    # --- idempotency keys of restarts -----------------------------------------------------------------------

    def begin_key(self, key: str, server_id: str, service: str) -> tuple[str, str] | None:
        """Record a restart key as in flight; or, when the key exists already, its (status, detail) unchanged."""
        with self._transaction() as connection:
            row = connection.execute("SELECT status, detail FROM agent_restart_keys WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return str(row[0]), str(row[1])
            now = time.time()
            connection.execute(
                "INSERT INTO agent_restart_keys (key, server_id, service, at, status) VALUES (?, ?, ?, ?, 'in_flight')",
                (key, server_id, service, now),
            )
            connection.execute("DELETE FROM agent_restart_keys WHERE at < ?", (now - KEEP_KEYS_S,))
        return None

    def settle_key(self, key: str, status: str | None, detail: str = "") -> None:
        """Mark a key done, or forget it (status None) after a clean failure, so a retry may try again."""
        with self._transaction() as connection:
            if status is None:
                connection.execute("DELETE FROM agent_restart_keys WHERE key = ?", (key,))
            else:
                connection.execute(
                    "UPDATE agent_restart_keys SET status = ?, detail = ? WHERE key = ?", (status, detail, key)
                )

    def key_status(self, key: str) -> str | None:
        rows = self._read("SELECT status FROM agent_restart_keys WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    # --- tickets ---------------------------------------------------------------------------------------------

    def keep_ticket(self, ticket: Mapping[str, Any]) -> bool:
        """Keep a ticket (the dedup truth, by id); False when one with its id was kept before."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO agent_tickets (id, thread_id, created_at, ticket) VALUES (?, ?, ?, ?)",
                (
                    str(ticket["id"]),
                    ticket.get("thread_id"),
                    time.time(),
                    json.dumps(dict(ticket), sort_keys=True, ensure_ascii=True, default=str),
                ),
            )
            return cursor.rowcount == 1

    def ticket_exported(self, ticket_id: str) -> bool:
        rows = self._read("SELECT exported FROM agent_tickets WHERE id = ?", (ticket_id,))
        return bool(rows and rows[0][0])

    def mark_exported(self, ticket_id: str) -> None:
        with self._transaction() as connection:
            connection.execute("UPDATE agent_tickets SET exported = 1 WHERE id = ?", (ticket_id,))

    def tickets(self, thread_id: str | None = None) -> list[dict[str, Any]]:
        """Every ticket kept, or one thread's (an indexed lookup: no scan of the table)."""
        if thread_id is None:
            rows = self._read("SELECT ticket FROM agent_tickets ORDER BY created_at")
        else:
            rows = self._read("SELECT ticket FROM agent_tickets WHERE thread_id = ? ORDER BY created_at", (thread_id,))
        return [json.loads(ticket) for (ticket,) in rows]

    # --- which sink took which ticket ------------------------------------------------------------------------

    def claim_delivery(self, ticket_id: str, sink: str, until: float) -> str | None:
        """Claim sending a ticket to a sink until `until` (epoch seconds): None when claimed, "delivered" when the
        sink has it, "sending" when another delivery holds a claim that has not expired."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT state, until FROM agent_deliveries WHERE ticket_id = ? AND sink = ?", (ticket_id, sink)
            ).fetchone()
            now = time.time()
            if row is not None and row[0] == "delivered":
                return "delivered"
            if row is not None and float(row[1]) >= now:
                return "sending"
            connection.execute(
                "INSERT INTO agent_deliveries (ticket_id, sink, state, until, at) VALUES (?, ?, 'sending', ?, ?) "
                "ON CONFLICT (ticket_id, sink) DO UPDATE SET state = 'sending', until = excluded.until, "
                "at = excluded.at",
                (ticket_id, sink, until, now),
            )
        return None

    def settle_delivery(self, ticket_id: str, sink: str, delivered: bool, until: float) -> None:
        """Release this delivery's claim (the one ending at `until`; a claim that expired and was taken over is
        left alone); when the sink took the ticket, record that (kept 30 days, for dedup)."""
        now = time.time()
        with self._transaction() as connection:
            if delivered:
                connection.execute(
                    "UPDATE agent_deliveries SET state = 'delivered', until = 0, at = ? "
                    "WHERE ticket_id = ? AND sink = ?",
                    (now, ticket_id, sink),
                )
                connection.execute("DELETE FROM agent_deliveries WHERE at < ?", (now - KEEP_DELIVERIES_S,))
            else:
                connection.execute(
                    "DELETE FROM agent_deliveries WHERE ticket_id = ? AND sink = ? AND state = 'sending' AND until = ?",
                    (ticket_id, sink, until),
                )

    def record_deliveries(self, records: Mapping[str, Mapping[str, float]]) -> None:
        """Import {ticket_id: {sink: when}} recorded elsewhere (a deliveries.json) as delivered."""
        with self._transaction() as connection:
            for ticket_id, sinks in records.items():
                for sink, at in sinks.items():
                    connection.execute(
                        "INSERT INTO agent_deliveries (ticket_id, sink, state, until, at) VALUES (?, ?, 'delivered', "
                        "0, ?) ON CONFLICT (ticket_id, sink) DO UPDATE SET state = 'delivered', until = 0",
                        (str(ticket_id), str(sink), float(at)),
                    )

    def delivered_to(self, ticket_id: str) -> list[str]:
        rows = self._read(
            "SELECT sink FROM agent_deliveries WHERE ticket_id = ? AND state = 'delivered' ORDER BY sink", (ticket_id,)
        )
        return [str(row[0]) for row in rows]

    # --- deliveries owed: the queue the delivery workers of every replica take from -----------------------------

    def queue_delivery(self, ticket: Mapping[str, Any], pending: Sequence[str]) -> None:
        """Owe a ticket's delivery to `pending` sinks (once: a ticket queued already stays as it is). What shares its
        dedup key is sent in the order it was queued (a ticket before its update, both before its resolution)."""
        now = time.time()
        with self._transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO agent_delivery_queue "
                "(ticket_id, dedup_key, ticket, pending, queued_at, next_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    str(ticket["id"]),
                    str(ticket.get("dedup_key") or ""),
                    json.dumps(dict(ticket), sort_keys=True, ensure_ascii=True, default=str),
                    json.dumps(list(pending)),
                    now,
                    now,
                ),
            )

    def queued_ids(self, due_only: bool, limit: int = 1000) -> list[str]:
        """The deliveries owed (only those due, unless not `due_only`), oldest first."""
        now = time.time()
        rows = self._read(
            "SELECT ticket_id FROM agent_delivery_queue WHERE next_at <= ? ORDER BY queued_at, ticket_id LIMIT ?",
            (now if due_only else 1e18, limit),
        )
        return [str(row[0]) for row in rows]

    def claim_queued(
        self, ticket_id: str, lease_s: float, due_only: bool = True
    ) -> tuple[dict[str, Any], list[str], int, float] | None:
        """Hold one owed delivery for `lease_s` (a worker that dies lets the lease run out and another takes it):
        (ticket, pending sinks, attempts so far, the lease's end, which settles it), or None when it is gone, held,
        not due, or waits for one queued before it with the same dedup key."""
        now = time.time()
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT ticket, pending, attempts, next_at, claimed_until, dedup_key, queued_at "
                "FROM agent_delivery_queue WHERE ticket_id = ?",
                (ticket_id,),
            ).fetchone()
            if row is None or float(row[4]) >= now or (due_only and float(row[3]) > now):
                return None
            if (
                row[5]
                and connection.execute(
                    "SELECT 1 FROM agent_delivery_queue WHERE dedup_key = ? AND ticket_id <> ? AND "
                    "(queued_at < ? OR (queued_at = ? AND ticket_id < ?)) LIMIT 1",
                    (row[5], ticket_id, row[6], row[6], ticket_id),
                ).fetchone()
            ):
                return None
            until = now + lease_s
            connection.execute(
                "UPDATE agent_delivery_queue SET claimed_until = ? WHERE ticket_id = ?", (until, ticket_id)
            )
        return json.loads(row[0]), list(json.loads(row[1])), int(row[2]), until

    def settle_queued(self, ticket_id: str, until: float, retry_in_s: float | None, error: str = "") -> None:
        """An owed delivery this worker holds (the lease ending at `until`) done (retry_in_s None: it leaves the
        queue) or to be tried again in `retry_in_s` seconds. A lease that ran out and was taken over is left alone."""
        with self._transaction() as connection:
            if retry_in_s is None:
                connection.execute(
                    "DELETE FROM agent_delivery_queue WHERE ticket_id = ? AND claimed_until = ?", (ticket_id, until)
                )
            else:
                connection.execute(
                    "UPDATE agent_delivery_queue SET attempts = attempts + 1, next_at = ?, claimed_until = 0, "
                    "error = ? WHERE ticket_id = ? AND claimed_until = ?",
                    (time.time() + retry_in_s, error[:500], ticket_id, until),
                )

    def owed_deliveries(self) -> list[dict[str, Any]]:
        """Every delivery still owed: id, pending sinks, attempts, the last error, the ticket's reason."""
        rows = self._read(
            "SELECT ticket_id, ticket, pending, attempts, error FROM agent_delivery_queue ORDER BY next_at"
        )
        owed = []
        for ticket_id, ticket, pending, attempts, error in rows:
            reason = json.loads(ticket).get("reason", "")
            owed.append(
                {
                    "id": ticket_id,
                    "pending": json.loads(pending),
                    "attempts": attempts,
                    "error": error,
                    "reason": reason,
                }
            )
        return owed

    # --- shared-dependency storms ---------------------------------------------------------------------------

    def join_storm(
        self, dependency: str, thread_id: str, server_id: str, parent: tuple[str, str], window_s: float
    ) -> StormMembership:
        """Join the open storm on `dependency` (one a member joined within `window_s` and whose members have not
        all resolved), or open one whose parent ticket and page key are `parent`. A thread that joined before keeps
        its place (a re-run files nothing new), and a new incident of a server the storm lists takes that server's
        place (its update is the one sent already)."""
        parent_id, page_key = parent
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT parent_id, position FROM agent_storm_members WHERE thread_id = ?", (thread_id,)
            ).fetchone()
            now = time.time()
            if row is None:
                open_storm = connection.execute(  # open: joined within the window, and not every member resolved
                    "SELECT parent_id FROM agent_storms WHERE dependency = ? AND updated_at >= ? AND EXISTS ("
                    "SELECT 1 FROM agent_storm_members WHERE agent_storm_members.parent_id = agent_storms.parent_id "
                    "AND resolved = 0) ORDER BY opened_at DESC LIMIT 1",
                    (dependency, now - window_s),
                ).fetchone()
                if open_storm is None:
                    connection.execute(
                        "INSERT INTO agent_storms (parent_id, dependency, page_key, opened_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (parent_id, dependency, page_key, now, now),
                    )
                    position = 0
                else:
                    parent_id = str(open_storm[0])
                    known = connection.execute(  # a server already listed: its new incident adds nothing new
                        "SELECT MIN(position) FROM agent_storm_members WHERE parent_id = ? AND server_id = ?",
                        (parent_id, server_id),
                    ).fetchone()
                    counted = connection.execute(
                        "SELECT COALESCE(MAX(position) + 1, 0) FROM agent_storm_members WHERE parent_id = ?",
                        (parent_id,),
                    ).fetchone()
                    position = int(known[0]) if known and known[0] is not None else int(counted[0])
                    connection.execute("UPDATE agent_storms SET updated_at = ? WHERE parent_id = ?", (now, parent_id))
                connection.execute(
                    "INSERT INTO agent_storm_members (thread_id, parent_id, position, server_id, joined_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (thread_id, parent_id, position, server_id, now),
                )
            else:
                parent_id, position = str(row[0]), int(row[1])
            members = connection.execute(
                "SELECT server_id FROM agent_storm_members WHERE parent_id = ? AND position <= ? ORDER BY position",
                (parent_id, position),
            ).fetchall()
            key = connection.execute("SELECT page_key FROM agent_storms WHERE parent_id = ?", (parent_id,)).fetchone()
        servers = tuple(dict.fromkeys(str(server) for (server,) in members))
        return StormMembership(parent_id, position, servers, str(key[0]))

    def leave_storm(self, thread_id: str) -> tuple[str, int] | None:
        """A member's alert resolved: (its parent ticket, how many members are still failing), or None when the
        thread is in no storm."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT parent_id FROM agent_storm_members WHERE thread_id = ?", (thread_id,)
            ).fetchone()
            if row is None:
                return None
            connection.execute("UPDATE agent_storm_members SET resolved = 1 WHERE thread_id = ?", (thread_id,))
            left = connection.execute(
                "SELECT COUNT(*) FROM agent_storm_members WHERE parent_id = ? AND resolved = 0", (row[0],)
            ).fetchone()
        return str(row[0]), int(left[0])

    def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT ticket FROM agent_tickets WHERE id = ?", (ticket_id,))
        return json.loads(rows[0][0]) if rows else None

    # --- the index of incident threads ----------------------------------------------------------------------

    def note_thread(self, thread_id: str, server_id: str | None = None, outcome: str | None = None) -> None:
        """Record a thread in the index (its creation time is kept from the first note)."""
        now = time.time()
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO agent_threads (thread_id, created_at, server_id, outcome, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO UPDATE SET "
                "server_id = COALESCE(excluded.server_id, agent_threads.server_id), outcome = excluded.outcome, "
                "updated_at = excluded.updated_at",
                (thread_id, now, server_id, outcome, now),
            )

    def threads(self) -> list[tuple[str, float, str | None, str | None]]:
        """Every indexed thread: (thread_id, created_at, server_id, outcome), oldest first."""
        rows = self._read("SELECT thread_id, created_at, server_id, outcome FROM agent_threads ORDER BY created_at")
        return [(str(a), float(b), c, d) for a, b, c, d in rows]

    def finished_before(self, cutoff: float) -> list[str]:
        """Threads that finished (an outcome recorded) and were created before `cutoff` (epoch seconds)."""
        rows = self._read(
            "SELECT thread_id FROM agent_threads WHERE created_at < ? AND outcome IS NOT NULL ORDER BY created_at",
            (cutoff,),
        )
        return [str(row[0]) for row in rows]

    def forget_threads(self, thread_ids: Sequence[str], audit: bool = False) -> None:
        """Drop threads from the index (and their audit events when asked), in one transaction.

        Tickets stay (they are the delivery dedup truth), restart records (the policy's history), storm memberships
        (a storm resolves with its last alert) and the intake rows, emptied (what makes a repeat a duplicate)."""
        with self._transaction() as connection:
            for thread_id in thread_ids:
                connection.execute("DELETE FROM agent_threads WHERE thread_id = ?", (thread_id,))
                # the intake row stays, emptied, as a tombstone: a repeat of an alert still firing is a duplicate,
                # not a new incident with a new ticket and a new restart key
                connection.execute(
                    "UPDATE agent_intake SET incident = '' WHERE thread_id = ? AND state IN ('done', 'cancelled')",
                    (thread_id,),
                )
                if audit:
                    connection.execute("DELETE FROM agent_audit WHERE thread_id = ?", (thread_id,))

    # --- the alert intake queue -----------------------------------------------------------------------------

    def enqueue(
        self, item: IntakeItem, event: Callable[[str, str | None], Mapping[str, Any]] | None = None
    ) -> tuple[str, str | None]:
        """Commit one firing alert's run before anyone is told it was accepted, with its audit event
        (`event(verdict, parent)`) in the same transaction: a worker that claims the run finds the event.

        Answers ("accepted", None), ("duplicate", None) for a thread already queued, run or done, or
        ("coalesced", thread) when an incident for the same server is queued or running: the new alert joins it
        instead of racing it (sibling runs would read each other's restart as a crash loop)."""
        now = time.time()
        with self._transaction() as connection:
            row = connection.execute("SELECT state FROM agent_intake WHERE thread_id = ?", (item.thread_id,)).fetchone()
            if row is not None and row[0] == "stalled":  # the alert again, for a run that stopped on an error
                connection.execute("UPDATE agent_intake SET state = 'queued' WHERE thread_id = ?", (item.thread_id,))
                return "accepted", None
            if row is not None:
                return "duplicate", None
            parent = None
            if item.server_id:
                row = connection.execute(
                    "SELECT thread_id FROM agent_intake WHERE server_id = ? AND state IN ('queued', 'running') "
                    "ORDER BY id LIMIT 1",
                    (item.server_id,),
                ).fetchone()
                parent = str(row[0]) if row else None
            state = "coalesced" if parent else "queued"
            connection.execute(
                "INSERT INTO agent_intake (thread_id, server_id, alertname, incident, state, parent, accepted_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (item.thread_id, item.server_id, item.alertname, item.incident, state, parent, now),
            )
            if event is not None:
                audited = event("coalesced" if parent else "accepted", parent)
                _insert_audit(connection, item.thread_id, str(audited.get("kind", "")), audited)
        return ("coalesced", parent) if parent else ("accepted", None)

    def claim(self, worker: str) -> IntakeItem | None:
        """The oldest queued run, now marked running by this worker; None when nothing is queued."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT thread_id, server_id, alertname, incident FROM agent_intake WHERE state = 'queued' "
                "ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE agent_intake SET state = 'running', worker = ?, started_at = ? WHERE thread_id = ?",
                (worker, time.time(), row[0]),
            )
        return IntakeItem(str(row[0]), row[1], str(row[2]), str(row[3]), "running")

    def finish(self, thread_id: str, outcome: str, event: Mapping[str, Any] | None = None) -> None:
        """Mark a run done, with its audit event in the same transaction (both or neither survive a crash)."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE agent_intake SET state = 'done', outcome = ?, finished_at = ? WHERE thread_id = ?",
                (outcome, time.time(), thread_id),
            )
            if event is not None:
                _insert_audit(connection, thread_id, str(event.get("kind", "")), event)

    def stall(self, thread_id: str, event: Mapping[str, Any] | None = None) -> None:
        """A run that stopped on an error with work left: queued again by the next start or the alert's next send."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE agent_intake SET state = 'stalled', outcome = 'error', finished_at = ? WHERE thread_id = ?",
                (time.time(), thread_id),
            )
            if event is not None:
                _insert_audit(connection, thread_id, str(event.get("kind", "")), event)

    def requeue_stalled(self) -> int:
        """Every stalled run queued again (a start of `serve`): it continues from its checkpoint. How many."""
        with self._transaction() as connection:
            return connection.execute("UPDATE agent_intake SET state = 'queued' WHERE state = 'stalled'").rowcount

    def cancel(self, thread_id: str) -> str | None:
        """A resolved alert: its run is cancelled if it has not started. Answers the run's state before."""
        with self._transaction() as connection:
            row = connection.execute("SELECT state FROM agent_intake WHERE thread_id = ?", (thread_id,)).fetchone()
            if row is None:
                return None
            if row[0] in ("queued", "coalesced", "stalled"):
                connection.execute(
                    "UPDATE agent_intake SET state = 'cancelled', finished_at = ?, outcome = 'resolved' "
                    "WHERE thread_id = ?",
                    (time.time(), thread_id),
                )
            return str(row[0])

    def requeue_abandoned(self, worker_alive: Callable[[str], bool]) -> int:
        """Runs marked running by a worker that is gone (its process was killed) are queued again; their
        checkpoints let the next run continue where they stopped. Answers how many."""
        with self._transaction() as connection:
            rows = connection.execute("SELECT thread_id, worker FROM agent_intake WHERE state = 'running'").fetchall()
            abandoned = [thread_id for thread_id, worker in rows if not worker_alive(str(worker or ""))]
            for thread_id in abandoned:
                connection.execute("UPDATE agent_intake SET state = 'queued' WHERE thread_id = ?", (thread_id,))
        return len(abandoned)

    def intake_counts(self) -> dict[str, int]:
        rows = self._read("SELECT state, COUNT(*) FROM agent_intake GROUP BY state")
        return {str(state): int(count) for state, count in rows}

    def intake_rows(self) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT thread_id, server_id, alertname, state, parent, outcome, accepted_at, started_at, finished_at "
            "FROM agent_intake ORDER BY id"
        )
        names = (
            "thread_id",
            "server_id",
            "alertname",
            "state",
            "parent",
            "outcome",
            "accepted_at",
            "started_at",
            "finished_at",
        )
        return [dict(zip(names, row, strict=True)) for row in rows]

    # --- migration of the JSON files earlier versions kept ------------------------------------------------

    def _migrate_json_files(self) -> None:
        """Import restart-ledger.json and restart-keys.json once, then rename them *.migrated."""
        directory = self.path.parent
        ledger, keys = directory / "restart-ledger.json", directory / "restart-keys.json"
        for path in (ledger, keys):
            if not path.exists():
                continue
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise StoreError(f"cannot migrate {path} into the state store ({exc}); fix or remove it") from None
            if not isinstance(document, dict):
                raise StoreError(f"cannot migrate {path} into the state store: not a JSON object; fix or remove it")
            restarts = document.get("restarts", [])
            if path == ledger and not (
                isinstance(restarts, list)
                and all(
                    isinstance(entry, dict)
                    and isinstance(entry.get("at"), int | float)
                    and not isinstance(entry.get("at"), bool)
                    for entry in restarts
                )
            ):
                raise StoreError(f"cannot migrate {path} into the state store: entries of the wrong shape; fix it")
            with self._transaction() as connection:
                if path == ledger:
                    for entry in restarts:
                        if isinstance(entry, dict):
                            connection.execute(
                                "INSERT OR IGNORE INTO agent_restarts (idempotency_key, server_id, at, entry) "
                                "VALUES (?, ?, ?, ?)",
                                (
                                    entry.get("idempotency_key"),
                                    str(entry.get("server_id", "")),
                                    float(entry["at"]),
                                    json.dumps(entry, sort_keys=True, default=str),
                                ),
                            )
                else:
                    for key, entry in (document.get("keys") or {}).items():
                        if isinstance(entry, dict):
                            connection.execute(
                                "INSERT OR IGNORE INTO agent_restart_keys (key, server_id, service, at, status, "
                                "detail) VALUES (?, ?, ?, ?, ?, ?)",
                                (
                                    key,
                                    str(entry.get("server_id", "")),
                                    str(entry.get("service", "")),
                                    float(entry.get("at", time.time())),
                                    str(entry.get("status", "done")),
                                    str(entry.get("detail", "")),
                                ),
                            )
            os.replace(path, path.with_name(path.name + ".migrated"))


def _insert_audit(connection: Any, thread_id: str, kind: str, event: Mapping[str, Any]) -> None:
    """One audit row, inside the caller's transaction."""
    connection.execute(
        "INSERT INTO agent_audit (thread_id, kind, event) VALUES (?, ?, ?)",
        (thread_id, kind, json.dumps(dict(event), sort_keys=True, ensure_ascii=True, default=str)),
    )


DATABASE_VARIABLE = "IT_SUPPORT_DATABASE_URL"
_LOCK_KEY = 0x17_5A_90_01  # the advisory lock that makes check-then-write steps atomic across replicas


class _PostgresConnection:
    """A psycopg connection speaking the store's SQLite-flavoured SQL: `?` placeholders, INSERT OR IGNORE."""

    def __init__(self, connection: Any) -> None:
        self.raw = connection

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        if sql.startswith("INSERT OR IGNORE INTO"):
            sql = "INSERT INTO" + sql[len("INSERT OR IGNORE INTO") :] + " ON CONFLICT DO NOTHING"
        return self.raw.execute(sql.replace("?", "%s"), tuple(parameters))


class PostgresStore(Store):
    """The same store on PostgreSQL, shared by several processes or hosts (IT_SUPPORT_DATABASE_URL).

    Every write transaction takes one transaction-scoped advisory lock, so the checks the restart policy and the
    exactly-once keys rely on hold across replicas as they do under SQLite's single writer; workers claim queued
    alerts with SELECT ... FOR UPDATE SKIP LOCKED, never waiting on each other."""

    def __init__(self, url: str, state_dir: Path) -> None:
        import psycopg

        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self._url = url
        self.path = state_dir / STORE_FILE
        self._local = threading.local()
        state_dir.mkdir(parents=True, exist_ok=True)
        schema = _SCHEMA.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY").replace(
            " REAL", " DOUBLE PRECISION"
        )
        with self._transaction() as connection:
            for statement in (part.strip() for part in schema.split(";")):
                if statement:
                    connection.execute(statement)
        self._migrate_json_files()
        keep_reserve(state_dir)

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            import psycopg

            try:
                raw = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise StoreError(f"state store {_safe_url(self._url)}: {' '.join(str(exc).split())}") from None
            connection = _PostgresConnection(raw)
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def _transaction(self, locked: bool = True) -> Iterator[Any]:
        connection = self._connection()
        try:
            connection.raw.execute("BEGIN")
            if locked:
                connection.raw.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        except self._errors as exc:
            raise StoreError(f"state store {_safe_url(self._url)}: {' '.join(str(exc).split())}") from None
        try:
            yield connection
            connection.raw.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(*self._errors):
                connection.raw.execute("ROLLBACK")
            if isinstance(exc, self._errors):
                raise StoreError(f"state store {_safe_url(self._url)}: {' '.join(str(exc).split())}") from None
            raise

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._connection().execute(sql, parameters).fetchall())
        except self._errors as exc:
            raise StoreError(f"state store {_safe_url(self._url)}: {' '.join(str(exc).split())}") from None

    def claim(self, worker: str) -> IntakeItem | None:
        """The oldest queued run no other worker holds, now running here (FOR UPDATE SKIP LOCKED)."""
        with self._transaction(locked=False) as connection:
            row = connection.execute(
                "UPDATE agent_intake SET state = 'running', worker = ?, started_at = ? WHERE id = ("
                "SELECT id FROM agent_intake WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING thread_id, server_id, alertname, incident",
                (worker, time.time()),
            ).fetchone()
        if row is None:
            return None
        return IntakeItem(str(row[0]), row[1], str(row[2]), str(row[3]), "running")


def _safe_url(url: str) -> str:
    """A database URL without its password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def database_url() -> str:
    return os.environ.get(DATABASE_VARIABLE, "").strip()


def open_store(state_dir: str | Path) -> Store:
    """The store of a state directory (one per directory and process): SQLite in it, or the PostgreSQL database
    IT_SUPPORT_DATABASE_URL names (the directory then keeps only the local files: spool, exports, reserve)."""
    return _open(str(Path(state_dir).expanduser().resolve()), database_url())


@functools.lru_cache(maxsize=32)
def _open(state_dir: str, url: str) -> Store:
    if url:
        return PostgresStore(url, Path(state_dir))
    return Store(Path(state_dir) / STORE_FILE)
