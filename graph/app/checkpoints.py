"""Checkpoint storage: one SQLite file in the state directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from it_support_agent.tools.store import open_store

CHECKPOINT_FILE = "checkpoints.sqlite"


def open_checkpointer(state_dir: str | Path) -> BaseCheckpointSaver[str]:
    """The state directory's SQLite checkpointer (WAL, shared safely by the processes using that directory)."""
    open_store(state_dir)  # the agent's tables beside the checkpoints; refuses a state directory holding symlinks
    path = Path(state_dir).expanduser() / CHECKPOINT_FILE
    connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    saver = SqliteSaver(connection)
    saver.setup()
    return saver


def unfinished_steps(snapshot: Any) -> list[str]:
    """The steps a thread still has to run ([] when it finished or waits for a human's answer).

    A step whose writes were saved but not the checkpoint after it (SIGKILL, a full disk) is not in `next`, yet
    the thread is not finished: its task is still listed, and `invoke(None, config)` runs on from it."""
    if snapshot.interrupts:
        return []
    return list(snapshot.next) or [task.name for task in snapshot.tasks]
