"""What every infrastructure backend is: the small protocols it implements, its errors and a restart's outcome."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class BackendError(RuntimeError):
    """A backend could not answer (unreachable, timed out, refused)."""


class RestartOutcomeUnknown(BackendError):
    """A restart was sent but its result never came back (a timeout or lost connection after the stop): the service
    may have been restarted, may be down, or may be running still. Its idempotency key stays in flight, so no
    retry restarts it again; a human must look."""


@dataclass(frozen=True)
class RestartOutcome:
    """What a restart did: whether it ran now, or had already run under the same idempotency key."""

    server_id: str
    service: str
    idempotency_key: str
    performed: bool
    already_done: bool
    detail: str

    @classmethod
    def repeat(cls, server_id: str, service: str, idempotency_key: str) -> RestartOutcome:
        """The answer to a restart whose key already ran: nothing is done again."""
        return cls(
            server_id,
            service,
            idempotency_key,
            performed=False,
            already_done=True,
            detail=f"already restarted under key {idempotency_key}",
        )


class InfraBackend(Protocol):
    """Read health and logs of one server and restart its service."""

    def health(self, server_id: str) -> Mapping[str, Any]: ...

    def logs(self, server_id: str, lines: int) -> list[str]: ...

    def restart(self, server_id: str, service: str, idempotency_key: str) -> RestartOutcome: ...


class HealthReader(Protocol):
    """One server's health from a real source."""

    def health(self) -> Mapping[str, Any]: ...


class LogReader(Protocol):
    """One server's recent log lines from a real source."""

    def logs(self, lines: int) -> list[str]: ...


class Restarter(Protocol):
    """Restarts one server's service for real and verifies it came back; returns what it did, or raises."""

    settle_s: float

    def restart(self) -> str: ...


class SimulatedParts(InfraBackend, Protocol):
    """The simulated backend, which also follows a restart that a real source performed."""

    def mark_restarted(self, server_id: str) -> None: ...
