"""The simulated fleet backend: servers described in a file, whose restarts persist in the state directory."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from it_support_agent.incident.fleet import Fleet, ServerState
from it_support_agent.tools.backends.base import BackendError, RestartOutcome
from it_support_agent.tools.statefile import StateFileError, locked_json, read_json

STATE_FILE = "fleet-state.json"
SHARED_STATE_VARIABLE = "IT_SUPPORT_SIMULATED_STATE"
"""A file for the simulated servers' state instead of the state directory's: several processes (replicas with
state directories of their own) then simulate one fleet, as real replicas would share the real servers."""


class SimulatedBackend:
    """Answers from the fleet file; a restart switches a server to its `after_restart` state."""

    def __init__(self, fleet: Fleet, state_dir: Path) -> None:
        self._fleet = fleet
        shared = os.environ.get(SHARED_STATE_VARIABLE, "").strip()
        self._state_path = Path(shared).expanduser() if shared else state_dir / STATE_FILE

    def _current(self, server_id: str) -> ServerState:
        spec = self._fleet.get(server_id)
        if spec is None:
            raise BackendError(f"unknown server {server_id!r}")
        try:
            servers = read_json(self._state_path).get("servers", {})
        except StateFileError as exc:
            raise BackendError(str(exc)) from None
        if not isinstance(servers, dict):
            raise BackendError(f"state file {self._state_path} is corrupt (servers is not a mapping); fix or remove it")
        entry = servers.get(server_id)
        restarted = isinstance(entry, dict) and entry.get("restarted") is True
        if restarted and spec.after_restart is not None:
            return spec.after_restart
        return spec.state

    def health(self, server_id: str) -> Mapping[str, Any]:
        return dict(self._current(server_id).health)

    def logs(self, server_id: str, lines: int) -> list[str]:
        logs = self._current(server_id).logs
        return list(logs[-lines:]) if lines > 0 else []

    def restart(self, server_id: str, service: str, idempotency_key: str) -> RestartOutcome:
        if self._fleet.get(server_id) is None:
            raise BackendError(f"unknown server {server_id!r}")
        self._current(server_id)
        with locked_json(self._state_path) as document:
            done = document.setdefault("restart_keys", {})
            if idempotency_key in done:
                return RestartOutcome.repeat(server_id, service, idempotency_key)
            _record_restart(document, server_id)
            done[idempotency_key] = {"server_id": server_id, "service": service, "at": time.time()}
        return RestartOutcome(
            server_id,
            service,
            idempotency_key,
            performed=True,
            already_done=False,
            detail=f"restarted {service} on {server_id} (simulated)",
        )

    def mark_restarted(self, server_id: str) -> None:
        """A real source restarted the server: its simulated parts switch to `after_restart` too."""
        with locked_json(self._state_path) as document:
            _record_restart(document, server_id)


def _record_restart(document: dict[str, Any], server_id: str) -> None:
    server = document.setdefault("servers", {}).setdefault(server_id, {})
    server["restarted"] = True
    server["restart_count"] = int(server.get("restart_count", 0)) + 1
    server["last_restart_at"] = time.time()
