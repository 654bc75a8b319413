"""Containers through the Docker Engine API (Docker, or Podman's compatible `system service`).

This module owns the engine transport (a unix socket, TCP or TLS, a timeout on every call, one clear BackendError
for each way it fails) and the three parts of a container server: health from two stats samples and the
container's state, logs from its log stream, and a restart verified by a new start time that stays running.
A restart request that was sent but never answered is RestartOutcomeUnknown, never retried.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from it_support_agent.incident.signals import CPU_SATURATION_PERCENT, MEMORY_PRESSURE_PERCENT
from it_support_agent.incident.sources import ContainerSource
from it_support_agent.tools.backends.base import BackendError, RestartOutcomeUnknown

POLL_S = 0.2
MAX_LOG_BYTES = 8 * 1024 * 1024


class _Unreachable(BackendError):
    """The request never reached the engine (no socket, connection refused, permission denied)."""


class _NoAnswer(BackendError):
    """The engine may have received the request, but no answer came (timeout, connection lost)."""


class Engine:
    """One container on one engine: requests with timeouts, errors named by what the operator must fix."""

    def __init__(self, source: ContainerSource, container: str) -> None:
        self.source = source
        self.container = container
        self._where = _redacted(source.url)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        return self.request("GET", path, params)

    def request(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, timeout_s: float | None = None
    ) -> httpx.Response:
        name = quote(self.container, safe="")
        url = f"/{self.source.api_version}/containers/{name}{path}"
        try:
            with self._client(timeout_s or self.source.timeout_s) as client:
                response = client.request(method, url, params=params)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise _Unreachable(f"container engine at {self._where} did not accept a connection in time") from None
            raise _NoAnswer(f"no answer from the container engine at {self._where} within the timeout") from None
        except httpx.ConnectError as exc:
            raise _Unreachable(self._unreachable(exc)) from None
        except (httpx.HTTPError, OSError) as exc:
            raise _NoAnswer(f"the container engine at {self._where} broke off: {type(exc).__name__}") from None
        if response.status_code == 404:
            raise BackendError(f"no container {self.container!r} on the engine at {self._where}")
        if response.status_code >= 400:
            raise BackendError(
                f"the container engine at {self._where} answered {response.status_code} for {self.container}: "
                f"{_message(response)}"
            )
        return response

    def inspect(self) -> dict[str, Any]:
        document = _json(self.get("/json"), "inspect")
        if not isinstance(document.get("State"), dict):
            raise BackendError(f"the container engine at {self._where} gave no state for {self.container}")
        return document

    def _client(self, timeout_s: float) -> httpx.Client:
        parts = urlsplit(self.source.url)
        timeout = httpx.Timeout(timeout_s)
        if parts.scheme == "unix":
            transport = httpx.HTTPTransport(uds=unquote(parts.path))
            return httpx.Client(transport=transport, base_url="http://engine", timeout=timeout, trust_env=False)
        verify: ssl.SSLContext | bool = True
        if parts.scheme == "https":
            verify = ssl.create_default_context(cafile=self.source.tls_ca or None)
            if self.source.tls_cert:
                verify.load_cert_chain(self.source.tls_cert, self.source.tls_key)
        base = f"{parts.scheme}://{parts.netloc}"
        return httpx.Client(base_url=base, timeout=timeout, verify=verify, trust_env=False)

    def _unreachable(self, exc: Exception) -> str:
        text = str(exc)
        if "Permission denied" in text or "[Errno 13]" in text:
            return (
                f"permission denied on the container engine socket {self._where}: run the agent as a user that may "
                "use it (the docker group, or a rootless Podman socket of the agent's own user)"
            )
        if "No such file" in text or "[Errno 2]" in text:
            return f"container engine socket {self._where} does not exist: is the engine running?"
        return f"container engine unreachable at {self._where}: {text or type(exc).__name__}"


class ContainerHealth:
    """CPU (over `sample_s`, against the container's CPU limit), memory against its limit, and its state."""

    def __init__(self, source: ContainerSource, container: str) -> None:
        self._engine = Engine(source, container)

    def health(self) -> dict[str, Any]:
        engine = self._engine
        document = engine.inspect()
        state = document["State"]
        if not state.get("Running") or state.get("Paused") or state.get("Restarting"):
            return {
                "cpu_percent": 0.0,
                "memory_percent": 0.0,
                "status": "down",
                "source": "container",
                "detail": describe_state(engine.container, state),
            }
        first, started = _json(engine.get("/stats", {"stream": "false"}), "stats"), time.monotonic()
        time.sleep(max(0.0, engine.source.sample_s - (time.monotonic() - started)))
        second = _json(engine.get("/stats", {"stream": "false"}), "stats")
        cpu = cpu_percent(first, second, document.get("HostConfig") or {})
        memory = memory_percent(second)
        check = str((state.get("Health") or {}).get("Status") or "")
        saturated = cpu >= CPU_SATURATION_PERCENT or memory >= MEMORY_PRESSURE_PERCENT
        return {
            "cpu_percent": round(cpu, 1),
            "memory_percent": round(memory, 1),
            "status": "degraded" if saturated or check == "unhealthy" else "healthy",
            "source": "container",
            **({"health_check": check} if check else {}),
        }


class ContainerLogs:
    """The newest lines of the container's stdout and stderr, each with the engine's timestamp."""

    def __init__(self, source: ContainerSource, container: str) -> None:
        self._engine = Engine(source, container)

    def logs(self, lines: int) -> list[str]:
        params = {"stdout": "true", "stderr": "true", "timestamps": "true", "tail": str(max(1, lines))}
        body = self._engine.get("/logs", params).content[-MAX_LOG_BYTES:]
        text = demultiplex(body).decode("utf-8", errors="replace")
        return [line for line in text.splitlines() if line.strip()][-lines:]


class ContainerRestarter:
    """POST /containers/NAME/restart, then verified: running under a new start time, and still so after settle_s."""

    settle_s = 0.0  # it settles itself, before it answers

    def __init__(self, source: ContainerSource, container: str) -> None:
        self._engine = Engine(source, container)
        self._source = source

    def restart(self) -> str:
        engine, name = self._engine, self._engine.container
        before = engine.inspect()["State"]
        try:
            engine.request(
                "POST",
                "/restart",
                {"t": str(int(self._source.stop_timeout_s))},
                timeout_s=self._source.stop_timeout_s + self._source.timeout_s,
            )
        except _NoAnswer as exc:  # sent, maybe acted on: never sent again
            raise RestartOutcomeUnknown(
                f"outcome unknown: the engine did not answer the restart of container {name} ({exc}); "
                f"{self._now()}. Not retrying; check the container"
            ) from None
        after = self._settled(str(before.get("StartedAt") or ""))
        return (
            f"restarted container {name} through the engine API: started {before.get('StartedAt')} -> "
            f"{after.get('StartedAt')}, running"
        )

    def _settled(self, started_before: str) -> dict[str, Any]:
        """The state once the container runs under a new start time and has kept running for settle_s."""
        deadline = time.monotonic() + self._source.timeout_s + self._source.settle_s
        state = self._engine.inspect()["State"]
        while time.monotonic() < deadline and not (state.get("Running") and state.get("StartedAt") != started_before):
            time.sleep(POLL_S)
            state = self._engine.inspect()["State"]
        if state.get("Running") and state.get("StartedAt") != started_before:
            time.sleep(self._source.settle_s)
            state = self._engine.inspect()["State"]
        if not state.get("Running") or state.get("Restarting"):
            raise BackendError(f"{describe_state(self._engine.container, state)} after the restart")
        if state.get("StartedAt") == started_before:
            raise BackendError(f"container {self._engine.container} kept its start time: not restarted")
        return dict(state)

    def _now(self) -> str:
        try:
            return f"it is now {describe_state(self._engine.container, self._engine.inspect()['State'])}"
        except BackendError as problem:
            return f"checking on it afterwards failed too ({problem})"


def describe_state(container: str, state: Mapping[str, Any]) -> str:
    """'container web is exited (exit code 1, OOM-killed)' and the like."""
    status = str(state.get("Status") or ("running" if state.get("Running") else "not running"))
    details = []
    if status in ("exited", "dead") or not state.get("Running"):
        details.append(f"exit code {state.get('ExitCode')}")
    if state.get("OOMKilled"):
        details.append("OOM-killed")
    if state.get("Error"):
        details.append(str(state["Error"])[:200])
    return f"container {container} is {status}" + (f" ({', '.join(details)})" if details else "")


def cpu_percent(first: Mapping[str, Any], second: Mapping[str, Any], host_config: Mapping[str, Any]) -> float:
    """CPU use between two stats samples as a percent of what the container may use (its limit, else the host)."""
    used = _number(second, "cpu_stats", "cpu_usage", "total_usage") - _number(
        first, "cpu_stats", "cpu_usage", "total_usage"
    )
    system = _number(second, "cpu_stats", "system_cpu_usage") - _number(first, "cpu_stats", "system_cpu_usage")
    online = _number(second, "cpu_stats", "online_cpus") or 1.0
    if system <= 0 or used < 0:
        return 0.0
    cpus_used = used / system * online
    capacity = online
    if host_config.get("NanoCpus"):
        capacity = float(host_config["NanoCpus"]) / 1e9
    elif host_config.get("CpuQuota") and host_config.get("CpuPeriod"):
        capacity = float(host_config["CpuQuota"]) / float(host_config["CpuPeriod"])
    return min(100.0, cpus_used / capacity * 100.0) if capacity > 0 else 0.0


def memory_percent(sample: Mapping[str, Any]) -> float:
    """Memory in use (page cache that can be dropped left out) as a percent of the container's limit."""
    usage = _number(sample, "memory_stats", "usage")
    stats = (sample.get("memory_stats") or {}).get("stats") or {}
    cache = float(stats.get("inactive_file") or stats.get("total_inactive_file") or stats.get("cache") or 0)
    limit = _number(sample, "memory_stats", "limit")
    return min(100.0, max(0.0, usage - cache) / limit * 100.0) if limit > 0 else 0.0


def demultiplex(body: bytes) -> bytes:
    """The text of a log stream: frames of an 8-byte header (stream, 0, 0, 0, size) each, or raw for a TTY."""
    if len(body) < 8 or body[0] not in (0, 1, 2) or body[1:4] != b"\0\0\0":
        return body
    chunks, offset = [], 0
    while offset + 8 <= len(body):
        size = int.from_bytes(body[offset + 4 : offset + 8], "big")
        chunks.append(body[offset + 8 : offset + 8 + size])
        offset += 8 + size
    return b"".join(chunks)


def _number(document: Mapping[str, Any], *keys: str) -> float:
    value: Any = document
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        raise BackendError(f"the container engine's {what} answer is not JSON") from None
    if not isinstance(document, dict):
        raise BackendError(f"the container engine's {what} answer is not a JSON object")
    return document


def _message(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text[:200] or "no message"
    return str(document.get("message") if isinstance(document, dict) else document)[:200]


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return (
        f"{parts.scheme}://{parts.path}"
        if parts.scheme == "unix"
        else f"{parts.scheme}://{parts.hostname}:{parts.port}"
    )
