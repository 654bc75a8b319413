"""The small protocol every infrastructure backend implements, and how one is chosen for a fleet."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from graph.matching import ServerIndex
from tools.fleet import Fleet, load_fleet


class BackendError(RuntimeError):
    """A backend could not answer (unreachable, timed out, refused)."""


@dataclass(frozen=True)
class RestartOutcome:
    """What a restart did: whether it ran now, or had already run under the same idempotency key."""

    server_id: str
    service: str
    idempotency_key: str
    performed: bool
    already_done: bool
    detail: str


class InfraBackend(Protocol):
    """Read health and logs of one server and restart its service."""

    def health(self, server_id: str) -> Mapping[str, Any]: ...

    def logs(self, server_id: str, lines: int) -> list[str]: ...

    def restart(self, server_id: str, service: str, idempotency_key: str) -> RestartOutcome: ...


@dataclass(frozen=True)
class Infrastructure:
    """The fleet inventory plus the backend that reaches its servers."""

    fleet: Fleet
    index: ServerIndex
    backend: InfraBackend


def open_infrastructure(fleet_file: str, state_dir: str) -> Infrastructure:
    """The infrastructure for a fleet file and state directory (cached while the file is unchanged)."""
    path = Path(fleet_file).expanduser().resolve()
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = (0, 0)
    return _open_cached(str(path), stamp, str(Path(state_dir).expanduser()))


@functools.lru_cache(maxsize=16)
def _open_cached(fleet_file: str, stamp: tuple[int, int], state_dir: str) -> Infrastructure:
    from tools.simulated import SimulatedBackend

    fleet = load_fleet(fleet_file)
    os.makedirs(state_dir, exist_ok=True)
    return Infrastructure(
        fleet=fleet,
        index=ServerIndex.build(fleet.servers),
        backend=SimulatedBackend(fleet, Path(state_dir)),
    )
