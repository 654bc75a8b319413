"""The durable restart ledger: every restart the agent performed, shared by all processes using a state store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from it_support_agent.incident.policy import RestartFacts
from it_support_agent.tools.store import open_store

T = TypeVar("T")


class RestartLedger:
    """Restart history in the state store, with an atomic check-and-reserve (one transaction)."""

    def __init__(self, state_dir: str | Path) -> None:
        self._store = open_store(state_dir)

    def facts(self, server_id: str, lookback_s: float) -> RestartFacts:
        """What the rate rules need (indexed queries, whatever the history's length); StoreError when the store
        cannot be read."""
        return RestartFacts(*self._store.restart_facts(server_id, lookback_s))

    def reserve(
        self,
        entry: Mapping[str, Any],
        check: Callable[[RestartFacts, float], T | None],
        lookback_s: float,
    ) -> T | None:
        """Atomically run check(the facts for entry's server, now); if it passes (None), record entry and return
        None.

        A reservation with an idempotency key already in the ledger passes without a second entry.
        """
        return self._store.reserve_restart(
            entry, lambda last, count, now: check(RestartFacts(last, count), now), lookback_s
        )
