"""Logs from files: the last lines read backwards from the end, across rotation, tolerant of binary bytes.

This module owns tailing a file cheaply (cost set by the lines wanted, not the file size), continuing into the
rotated `.1` sibling only when the current file holds too few lines, and sharing the lines between several files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from it_support_agent.incident.fleet import MAX_LOG_LINE_CHARS
from it_support_agent.incident.sources import FileLogSource
from it_support_agent.tools.backends.base import BackendError

BLOCK_BYTES = 64 * 1024
MAX_TAIL_BYTES = 8 * 1024 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tail:
    """The last lines of a file (oldest first), how many bytes reading them cost, and whether the read went back
    to the start of the file (only then may older lines come from the rotated file)."""

    lines: list[str]
    bytes_read: int
    reached_start: bool = False


def tail_file(path: Path, count: int, *, block_bytes: int = BLOCK_BYTES, max_bytes: int = MAX_TAIL_BYTES) -> Tail:
    """The last `count` non-blank lines, reading blocks backwards from the end and never more than `max_bytes`.

    Blank lines are neither returned nor counted. Raises OSError when the file cannot be read.
    """
    if count <= 0:
        return Tail([], 0)
    newest_first: list[str] = []
    partial: list[bytes] = []  # the bytes before the earliest line break seen so far, newest block first
    read = 0
    with path.open("rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        while position > 0 and len(newest_first) < count and read < max_bytes:
            size = min(block_bytes, position, max_bytes - read)
            position -= size
            handle.seek(position)
            block = handle.read(size)
            read += len(block)
            if b"\n" not in block:
                partial.append(block)
                continue
            head, *complete = block.split(b"\n")
            complete[-1] += b"".join(reversed(partial))
            partial = [head]
            newest_first.extend(_kept(reversed(complete)))
    if len(newest_first) < count:
        # At the start of the file the first line is whole; a capped read keeps it as the end of a long line.
        newest_first.extend(_kept([b"".join(reversed(partial))]))
    return Tail(newest_first[:count][::-1], read, reached_start=position == 0)


def _kept(pieces: Iterable[bytes]) -> list[str]:
    """Decoded lines, blank ones dropped."""
    return [text for text in map(_decode, pieces) if text.strip()]


def _decode(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").replace("\x00", "").rstrip("\r")
    return text[:MAX_LOG_LINE_CHARS]


def tail_rotated(path: Path, count: int) -> list[str] | None:
    """The last lines of a log, after those of its rotated `.1` file when the current one, read to its start,
    has fewer; None if neither exists. A current file cut short by the read cap never pulls in older lines."""
    current = _tail_or_none(path, count)
    if current is not None and (len(current.lines) >= count or not current.reached_start):
        return current.lines
    rotated = path.with_name(path.name + ".1")
    earlier = _tail_or_none(rotated, count - len(current.lines if current else []))
    if current is None and earlier is None:
        return None
    return (earlier.lines if earlier else []) + (current.lines if current else [])


def _tail_or_none(path: Path, count: int) -> Tail | None:
    try:
        return tail_file(path, count)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise BackendError(f"log path {path} is a directory, not a file") from None
    except OSError as exc:
        raise BackendError(f"cannot read log file {path}: {exc.strerror or exc}") from None


def fair_shares(available: list[int], total: int) -> list[int]:
    """Split `total` lines between files evenly (short files leave more to others)."""
    shares = [0] * len(available)
    remaining = total
    while remaining > 0:
        open_files = [index for index, size in enumerate(available) if shares[index] < size]
        if not open_files:
            break
        each = max(1, remaining // len(open_files))
        for index in open_files:
            given = min(each, available[index] - shares[index], remaining)
            shares[index] += given
            remaining -= given
    return shares


class FileLogs:
    """One server's log files; missing or unreadable files are skipped unless none of them can be read."""

    def __init__(self, source: FileLogSource) -> None:
        self._paths = [Path(path).expanduser() for path in source.paths]

    def logs(self, lines: int) -> list[str]:
        found: list[list[str]] = []
        problems: list[str] = []
        for path in self._paths:
            try:
                tail = tail_rotated(path, lines)
            except BackendError as exc:
                problems.append(str(exc))
                continue
            if tail is not None:
                found.append(tail)
        if not found:
            raise BackendError(self._nothing_read(problems))
        for problem in problems:
            log.warning("skipped a log file of %s: %s", ", ".join(map(str, self._paths)), problem)
        shares = fair_shares([len(tail) for tail in found], lines)
        return [line for tail, share in zip(found, shares, strict=True) for line in tail[len(tail) - share :]]

    def _nothing_read(self, problems: list[str]) -> str:
        shown = ", ".join(str(path) for path in self._paths)
        if problems:
            return f"no readable log file ({'; '.join(problems)}; looked for {shown} and their rotated .1 files)"
        return f"no log file found (looked for {shown} and their rotated .1 files)"
