"""Checkpoint storage: one SQLite file in the state directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

CHECKPOINT_FILE = "checkpoints.sqlite"


def open_checkpointer(state_dir: str | Path) -> BaseCheckpointSaver[str]:
    """The state directory's SQLite checkpointer (WAL, shared safely by the processes using that directory)."""
    path = Path(state_dir).expanduser() / CHECKPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    saver = SqliteSaver(connection)
    saver.setup()
    return saver
