"""Small JSON documents in the state directory, updated atomically under an exclusive lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


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
def file_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive lock that guards a state file (its `.lock` beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_private(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def locked_json(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the document for editing; on normal exit write it back atomically, all under the file's lock."""
    with file_lock(path):
        document = read_json(path)
        yield document
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open_new(temporary) as handle:
            handle.write(json.dumps(document, sort_keys=True).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


def open_private(path: Path, flags: int) -> int:
    """os.open that never follows a symlink (ELOOP instead) and creates files for the user alone (0600)."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def open_new(path: Path) -> BinaryIO:
    """A fresh file for writing at path (anything there before, a symlink included, is removed first)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb")


def symlinks_inside(state_dir: Path) -> list[str]:
    """Entries of the state directory (and its spool) that are symlinks: the agent never writes through them.

    A link there could send tickets, the audit trail or the store anywhere the agent's user may write."""
    found: list[str] = []
    for folder in (state_dir, state_dir / "spool"):
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        found += [f"{entry.path} -> {os.readlink(entry.path)}" for entry in entries if entry.is_symlink()]
    return found


RESERVE_FILE = "reserve"
RESERVE_BYTES = 512 * 1024


def keep_reserve(state_dir: str | Path) -> None:
    """Set aside a little space in the state directory (best effort), released when the disk is full.

    With the disk full, the ticket about what the agent did must still be written: releasing the reserve makes room
    for it (the store's pages, the outbox line, the spool file)."""
    path = Path(state_dir) / RESERVE_FILE
    if path.exists():
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return  # another process made it, or the directory is read-only: nothing to set aside
    try:
        os.posix_fallocate(descriptor, 0, RESERVE_BYTES)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)  # a partial reserve would be released as if it were whole
    finally:
        os.close(descriptor)


def release_reserve(state_dir: str | Path) -> bool:
    """Free the reserve; True when there was one."""
    try:
        os.unlink(Path(state_dir) / RESERVE_FILE)
    except OSError:
        return False
    return True


def is_disk_full(error: BaseException) -> bool:
    """Whether an error (OSError, sqlite3 or the store's) says the disk or the database is full."""
    errno_value = getattr(error, "errno", None)
    return errno_value == errno.ENOSPC or "disk is full" in str(error) or "No space left" in str(error)


@contextlib.contextmanager
def thread_lock(state_dir: str | Path, thread_id: str) -> Iterator[None]:
    """Hold one thread's lock (waiting for it) across processes: two answers to one approval run one at a time.

    One byte of `threads.lock`, chosen by the thread id, is locked with fcntl; the kernel releases it when the
    process dies, so a killed holder never leaves it stuck."""
    path = Path(state_dir) / "threads.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    offset = int.from_bytes(hashlib.sha256(thread_id.encode("utf-8")).digest()[:4], "big")
    descriptor = open_private(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX, 1, offset)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
