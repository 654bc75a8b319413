"""The durable restart ledger: every restart the agent performed, shared by all processes using a state dir."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from it_support_agent.tools.statefile import StateFileError, locked_json, read_json

LEDGER_FILE = "restart-ledger.json"
KEEP_S = 7 * 24 * 3600.0
T = TypeVar("T")


def _entries(document: Mapping[str, Any], path: Path) -> list[dict[str, Any]]:
    """The restart entries, checked: a ledger of the wrong shape must never read as 'no restarts yet'."""
    restarts = document.get("restarts", [])
    if not isinstance(restarts, list) or not all(
        isinstance(item, dict) and isinstance(item.get("at"), int | float) and not isinstance(item.get("at"), bool)
        for item in restarts
    ):
        raise StateFileError(f"restart ledger {path} has entries of the wrong shape; fix or remove it")
    return restarts


class RestartLedger:
    """Restart history in the state directory, with an atomic check-and-reserve."""

    def __init__(self, state_dir: str | Path) -> None:
        self._path = Path(state_dir) / LEDGER_FILE

    def history(self) -> list[dict[str, Any]]:
        """Every recorded restart; StateFileError when the ledger cannot be trusted."""
        return _entries(read_json(self._path), self._path)

    def reserve(
        self, entry: Mapping[str, Any], check: Callable[[Sequence[Mapping[str, Any]], float], T | None]
    ) -> T | None:
        """Under the ledger lock: run check(history, now); if it passes (None), append entry and return None.

        A reservation with an idempotency key already in the ledger passes without a second entry.
        """
        with locked_json(self._path) as document:
            restarts = _entries(document, self._path)
            document["restarts"] = restarts
            now = time.time()
            key = entry.get("idempotency_key")
            if key and any(item.get("idempotency_key") == key for item in restarts):
                return None
            veto = check(restarts, now)
            if veto is not None:
                return veto
            restarts.append({**entry, "at": now})
            document["restarts"] = [item for item in restarts if now - float(item.get("at", 0)) < KEEP_S]
        return None
