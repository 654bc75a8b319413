"""Checkpoint storage: one SQLite file in the state directory."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from it_support_agent.tools.store import StoreError, database_url, open_store

CHECKPOINT_FILE = "checkpoints.sqlite"
SETUP_LOCK_KEY = 0x17_5A_90_02
SETUP_WAIT_S = 120.0


def open_checkpointer(state_dir: str | Path) -> BaseCheckpointSaver[str]:
    """The state directory's SQLite checkpointer (WAL, shared safely by the processes using that directory)."""
    open_store(state_dir)  # the agent's tables beside the checkpoints; refuses a state directory holding symlinks
    url = database_url()
    if url:  # several replicas share PostgreSQL: checkpoints there too
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        shared = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        postgres = PostgresSaver(shared)  # its own lock serialises this process's threads on the connection
        # replicas starting at once migrate once. Waiting inside pg_advisory_lock would deadlock with the
        # migration's CREATE INDEX CONCURRENTLY (it waits for every open transaction, the waiting one too), so
        # the lock is tried, and between tries this connection holds no transaction
        deadline = time.monotonic() + SETUP_WAIT_S
        while not _try_lock(shared, SETUP_LOCK_KEY):
            if time.monotonic() > deadline:
                shared.close()
                raise StoreError(
                    f"the checkpoint tables could not be set up: another process has held the setup lock for "
                    f"{SETUP_WAIT_S:.0f} s"
                )
            time.sleep(0.05)
        try:
            postgres.setup()
        finally:
            shared.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))
        return postgres
    path = Path(state_dir).expanduser() / CHECKPOINT_FILE
    connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    saver = SqliteSaver(connection)
    saver.setup()
    return saver


def forget_finished(
    checkpointer: BaseCheckpointSaver[Any], state_dir: str | Path, older_than_s: float, audit: bool
) -> list[str]:
    """Forget the finished incidents created more than `older_than_s` ago: their checkpoints and index entries (and
    audit events when `audit`); tickets, restart records and the emptied intake rows that keep a repeated alert a
    duplicate stay. The threads forgotten."""
    store = open_store(state_dir)
    threads = store.finished_before(time.time() - older_than_s)
    for thread_id in threads:
        checkpointer.delete_thread(thread_id)
    if threads:
        store.forget_threads(threads, audit=audit)
    return threads


def _try_lock(connection: Any, key: int) -> bool:
    row = connection.execute("SELECT pg_try_advisory_lock(%s) AS taken", (key,)).fetchone()
    return bool(row and row["taken"])


def unfinished_steps(snapshot: Any) -> list[str]:
    """The steps a thread still has to run ([] when it finished or waits for a human's answer).

    A step whose writes were saved but not the checkpoint after it (SIGKILL, a full disk) is not in `next`, yet
    the thread is not finished: its task is still listed, and `invoke(None, config)` runs on from it."""
    if snapshot.interrupts:
        return []
    return list(snapshot.next) or [task.name for task in snapshot.tasks]
