"""Small JSON documents in the state directory, updated atomically under an exclusive lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class StateFileError(ValueError):
    """A state file exists but cannot be trusted (corrupt JSON or the wrong shape)."""


def read_json(path: Path) -> dict[str, Any]:
    """The document at path, or an empty one when it does not exist yet; StateFileError when unreadable."""
    try:
        with path.open(encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateFileError(f"state file {path} is corrupt ({exc}); fix or remove it") from None
    if not isinstance(document, dict):
        raise StateFileError(f"state file {path} is not a JSON object; fix or remove it")
    return document


@contextlib.contextmanager
def locked_json(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the document for editing; on normal exit write it back atomically, all under a file lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            document = read_json(path)
            yield document
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with temporary.open("w", encoding="utf-8") as handle:
                json.dump(document, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
