"""Checkpoint storage: SQLite in the state directory by default, in-memory on request."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

CHECKPOINT_FILE = "checkpoints.sqlite"


def open_checkpointer(state_dir: str | Path, url: str = "") -> BaseCheckpointSaver[str]:
    """A checkpointer: `memory:` for in-process runs, `sqlite:///path` or (default) the state dir's SQLite file."""
    if url == "memory:":
        return InMemorySaver()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///")).expanduser()
    elif url:
        raise ValueError(f"unsupported checkpoint url {url!r} (use sqlite:///PATH or memory:)")
    else:
        path = Path(state_dir).expanduser() / CHECKPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    saver = SqliteSaver(connection)
    saver.setup()
    return saver
