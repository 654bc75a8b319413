"""Logs from files: the last lines read backwards from the end, across rotation, tolerant of binary bytes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tools.backend import BackendError
from tools.fleet import MAX_LOG_LINE_CHARS
from tools.sources import FileLogSource

BLOCK_BYTES = 64 * 1024
MAX_TAIL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Tail:
    """The last lines of a file (oldest first) and how many bytes reading them cost."""

    lines: list[str]
    bytes_read: int


def tail_file(path: Path, count: int, *, block_bytes: int = BLOCK_BYTES,
              max_bytes: int = MAX_TAIL_BYTES) -> Tail:
    """The last `count` lines, reading blocks backwards from the end and never more than `max_bytes`.

    The cost depends on the lines wanted, not on the file size. Raises OSError when the file cannot be read.
    """
    if count <= 0:
        return Tail([], 0)
    chunks: list[bytes] = []
    newlines = 0
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        position = end
        while position > 0 and newlines <= count and end - position < max_bytes:
            size = min(block_bytes, position, max_bytes - (end - position))
            position -= size
            handle.seek(position)
            chunk = handle.read(size)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    pieces = data.split(b"\n")
    if position > 0 and newlines > count:
        pieces = pieces[1:]  # the first piece starts mid-line; a capped read keeps it as the end of a long line
    lines = [text for text in map(_decode, pieces) if text.strip()]
    return Tail(lines[-count:], len(data))


def _decode(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").replace("\x00", "").rstrip("\r")
    return text[:MAX_LOG_LINE_CHARS]


def tail_rotated(path: Path, count: int) -> list[str] | None:
    """The last lines of a log, after those of its rotated `.1` file when it has fewer; None if neither exists."""
    rotated = path.with_name(path.name + ".1")
    current = _tail_or_none(path, count)
    if current is not None and len(current) >= count:
        return current
    earlier = _tail_or_none(rotated, count - len(current or []))
    if current is None and earlier is None:
        return None
    return (earlier or []) + (current or [])


def _tail_or_none(path: Path, count: int) -> list[str] | None:
    try:
        return tail_file(path, count).lines
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
    """One server's log files; missing files are skipped unless all of them are missing."""

    def __init__(self, source: FileLogSource) -> None:
        self._paths = [Path(path).expanduser() for path in source.paths]

    def logs(self, lines: int) -> list[str]:
        tails = {path: tail_rotated(path, lines) for path in self._paths}
        found = [(path, tail) for path, tail in tails.items() if tail is not None]
        if not found:
            shown = ", ".join(str(path) for path in self._paths)
            raise BackendError(f"no log file found (looked for {shown} and their rotated .1 files)")
        shares = fair_shares([len(tail) for _, tail in found], lines)
        return [line for (_, tail), share in zip(found, shares, strict=True)
                for line in tail[len(tail) - share:]]
