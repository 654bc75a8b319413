"""How each server reaches its sources: the fleet's routed backend, and exactly-once restarts.

This module owns the restarts' idempotency keys (kept in the state store) and which failures free a key for a
retry (a clean BackendError) and which keep it in flight (RestartOutcomeUnknown, or a crash).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from it_support_agent.incident.fleet import (
    Fleet,
    FleetError,
    ServerSpec,
    fleet_document,
    fleet_from_document,
    parse_fleet,
    read_fleet_text,
)
from it_support_agent.incident.matching import ServerIndex
from it_support_agent.incident.sources import (
    ContainerSource,
    FileLogSource,
    JournaldSource,
    PrometheusSource,
    SupervisordSource,
    SystemdSource,
)
from it_support_agent.tools.backends.base import (
    BackendError,
    HealthReader,
    InfraBackend,
    LogReader,
    Restarter,
    RestartOutcome,
    RestartOutcomeUnknown,
    SimulatedParts,
)
from it_support_agent.tools.backends.container import ContainerHealth, ContainerLogs, ContainerRestarter
from it_support_agent.tools.backends.journald import JournaldLogs
from it_support_agent.tools.backends.logfiles import FileLogs
from it_support_agent.tools.backends.prometheus import PrometheusHealth
from it_support_agent.tools.backends.simulated import SimulatedBackend
from it_support_agent.tools.backends.supervisor import SupervisordRestarter
from it_support_agent.tools.backends.systemd import SystemdRestarter
from it_support_agent.tools.statefile import open_new
from it_support_agent.tools.store import Store, StoreError, open_store

__all__ = [
    "BackendError",
    "Infrastructure",
    "RestartOutcome",
    "RestartOutcomeUnknown",
    "RoutedBackend",
    "open_infrastructure",
    "perform_once",
]


@dataclass(frozen=True)
class Infrastructure:
    """The fleet inventory plus the backend that reaches its servers."""

    fleet: Fleet
    index: ServerIndex
    backend: InfraBackend


class RoutedBackend:
    """Sends each server's health, logs and restart to its configured source; simulated where none is set."""

    def __init__(
        self,
        simulated: SimulatedParts,
        state_dir: Path,
        health: Mapping[str, HealthReader],
        logs: Mapping[str, LogReader],
        restarts: Mapping[str, Restarter],
    ) -> None:
        self._simulated = simulated
        self._state_dir = state_dir
        self._health = dict(health)
        self._logs = dict(logs)
        self._restarts = dict(restarts)

    def health(self, server_id: str) -> Mapping[str, Any]:
        reader = self._health.get(server_id)
        return reader.health() if reader else self._simulated.health(server_id)

    def logs(self, server_id: str, lines: int) -> list[str]:
        reader = self._logs.get(server_id)
        if reader is None:
            return self._simulated.logs(server_id, lines)
        return reader.logs(lines) if lines > 0 else []

    def restart(self, server_id: str, service: str, idempotency_key: str) -> RestartOutcome:
        restarter = self._restarts.get(server_id)
        if restarter is None:
            return self._simulated.restart(server_id, service, idempotency_key)
        outcome = perform_once(open_store(self._state_dir), server_id, service, idempotency_key, restarter.restart)
        if outcome.performed:
            self._simulated.mark_restarted(server_id)
            if restarter.settle_s:
                time.sleep(restarter.settle_s)
        return outcome


FLEET_CACHE_DIR = "fleet-cache"
FLEET_CACHE_MIN_CHARS = 1024 * 1024


def perform_once(
    store: Store, server_id: str, service: str, idempotency_key: str, action: Callable[[], str]
) -> RestartOutcome:
    """Run a restart unless its key already ran.

    The key is committed as in flight before the action starts. A retry that finds it in flight (the process died
    mid-restart, or the backend raised RestartOutcomeUnknown) does not restart again: the outcome is unknown and a
    human must look. Only a clean BackendError (nothing was changed) frees the key for a retry.
    """
    try:
        previous = store.begin_key(idempotency_key, server_id, service)
    except StoreError as exc:
        raise BackendError(f"cannot record restart {idempotency_key} before acting ({exc}); not restarting") from None
    if previous is not None and previous[0] == "done":
        return RestartOutcome.repeat(server_id, service, idempotency_key)
    if previous is not None:
        raise BackendError(
            f"an earlier attempt of restart {idempotency_key} did not finish ({previous[0]}); "
            "its outcome is unknown, not restarting again"
        )
    try:
        detail = action()
    except RestartOutcomeUnknown:
        raise  # the key stays in flight: a retry must not restart what may already have been restarted
    except BackendError:
        store.settle_key(idempotency_key, None)
        raise
    store.settle_key(idempotency_key, "done", detail)
    return RestartOutcome(server_id, service, idempotency_key, performed=True, already_done=False, detail=detail)


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
    os.makedirs(state_dir, exist_ok=True)
    fleet = load_fleet_cached(fleet_file, Path(state_dir))
    return Infrastructure(
        fleet=fleet, index=ServerIndex.build(fleet.servers), backend=build_backend(fleet, Path(state_dir))
    )


def load_fleet_cached(fleet_file: str, state_dir: Path) -> Fleet:
    """The fleet file, validated every time; a large one's YAML is parsed once per content and kept as JSON.

    YAML parsing is what makes a 50,000-server file slow (tens of seconds); JSON of the same data loads in well under
    a second. The cache is keyed by the file's SHA-256, so any edit is parsed (and checked strictly) again; only
    documents JSON keeps exactly (string keys, plain values) are cached."""
    text = read_fleet_text(fleet_file)
    if len(text) < FLEET_CACHE_MIN_CHARS:
        return parse_fleet(text, source=fleet_file)
    folder = state_dir / FLEET_CACHE_DIR
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    cached = folder / f"{digest}.json"
    try:
        entry = json.loads(cached.read_bytes())
        if isinstance(entry, dict) and entry.get("sha256") == digest and isinstance(entry.get("document"), dict):
            return fleet_from_document(entry["document"], source=fleet_file, text=text)
    except (OSError, ValueError, FleetError):
        pass  # absent or unusable: parse the YAML again
    document = fleet_document(text, source=fleet_file)
    fleet = fleet_from_document(document, source=fleet_file, text=text)
    if _plain(document):
        with contextlib.suppress(OSError):
            folder.mkdir(exist_ok=True)
            for old in folder.glob("*.json"):  # one entry per fleet file is plenty
                old.unlink()
            temporary = cached.with_suffix(".tmp")
            with open_new(temporary) as handle:
                handle.write(json.dumps({"sha256": digest, "document": document}, allow_nan=False).encode("utf-8"))
            os.replace(temporary, cached)
    return fleet


def _plain(document: Any) -> bool:
    """Whether JSON keeps this data exactly: string keys, and str, int, float, bool, None, lists and mappings."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return False
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif not (
            item is None or isinstance(item, str | bool | int) or (isinstance(item, float) and math.isfinite(item))
        ):
            return False
    return True


def build_backend(fleet: Fleet, state_dir: Path) -> RoutedBackend:
    """A backend for the fleet: each server's configured sources, simulated for the rest."""
    health: dict[str, HealthReader] = {}
    logs: dict[str, LogReader] = {}
    restarts: dict[str, Restarter] = {}
    for server_id, spec in fleet.servers.items():
        if "health" in spec.sources:
            health[server_id] = _health_reader(spec)
        if "logs" in spec.sources:
            logs[server_id] = _log_reader(spec)
        if "restart" in spec.sources:
            restarts[server_id] = _restarter(spec)
    return RoutedBackend(SimulatedBackend(fleet, state_dir), state_dir, health, logs, restarts)


def _health_reader(spec: ServerSpec) -> HealthReader:
    source = spec.sources["health"]
    if isinstance(source, PrometheusSource):
        return PrometheusHealth(source)
    if isinstance(source, ContainerSource):
        return ContainerHealth(source, source.container or spec.service)
    raise TypeError(f"{spec.server_id}: no health reader for {type(source).__name__}")


def _log_reader(spec: ServerSpec) -> LogReader:
    source = spec.sources["logs"]
    if isinstance(source, FileLogSource):
        return FileLogs(source)
    if isinstance(source, JournaldSource):
        return JournaldLogs(source)
    if isinstance(source, ContainerSource):
        return ContainerLogs(source, source.container or spec.service)
    raise TypeError(f"{spec.server_id}: no log reader for {type(source).__name__}")


def _restarter(spec: ServerSpec) -> Restarter:
    source = spec.sources["restart"]
    if isinstance(source, SupervisordSource):
        return SupervisordRestarter(source, process=source.process or spec.service)
    if isinstance(source, SystemdSource):
        return SystemdRestarter(source, unit=source.unit or spec.service)
    if isinstance(source, ContainerSource):
        return ContainerRestarter(source, source.container or spec.service)
    raise TypeError(f"{spec.server_id}: no restarter for {type(source).__name__}")
