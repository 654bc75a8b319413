"""Per-server sources in the fleet file: which backend reads a server's health or logs or restarts it.

This module owns the parsing and validation of the `health`, `logs` and `restart` mappings, including the rule
that credentials live in `username` / `password_env` (or `password`), never inside a URL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

QUERY_KEYS = ("cpu_percent", "memory_percent", "up")
SOURCE_TYPES = {
    "health": ("prometheus", "container"),
    "logs": ("file", "journald", "container"),
    "restart": ("supervisord", "systemd", "container"),
}


class SourceError(ValueError):
    """A source mapping names an unknown type or misses or mistypes a setting."""


@dataclass(frozen=True)
class PrometheusSource:
    """Health from Prometheus: PromQL queries with `$instance` replaced by the server's instance label."""

    url: str
    instance: str
    queries: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    username: str = ""
    password: str = ""
    password_env: str = ""


@dataclass(frozen=True)
class FileLogSource:
    """Logs from files on this machine, read from the end (each file may have a rotated `.1` sibling)."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class JournaldSource:
    """Logs of a systemd unit from the local journal."""

    unit: str
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SupervisordSource:
    """Restarts through supervisord's XML-RPC API over HTTP or a unix socket."""

    url: str
    process: str = ""
    username: str = ""
    password: str = ""
    password_env: str = ""
    timeout_s: float = 30.0
    settle_s: float = 0.0


@dataclass(frozen=True)
class SystemdSource:
    """Restarts through `systemctl restart UNIT` on this machine."""

    unit: str = ""
    timeout_s: float = 60.0
    settle_s: float = 0.0


@dataclass(frozen=True)
class ContainerSource:
    """A container on a Docker-API engine (Docker, or Podman's `system service`): stats, log stream, restart.

    `url` is the engine: unix:///var/run/docker.sock (or Podman's socket), http://host:2375, or https://host:2376
    with `tls_ca` (and `tls_cert` / `tls_key` for client certificates)."""

    url: str
    container: str = ""
    api_version: str = "v1.41"
    timeout_s: float = 10.0
    sample_s: float = 1.0
    stop_timeout_s: float = 10.0
    settle_s: float = 2.0
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""


HealthSource = PrometheusSource | ContainerSource
LogSource = FileLogSource | JournaldSource | ContainerSource
RestartSource = SupervisordSource | SystemdSource | ContainerSource
Source = PrometheusSource | FileLogSource | JournaldSource | SupervisordSource | SystemdSource | ContainerSource


def parse_sources(entry: Mapping[str, Any]) -> dict[str, Source]:
    """The `health`, `logs` and `restart` sources of a server entry (inline simulated data is none)."""
    sources: dict[str, Source] = {}
    for kind in SOURCE_TYPES:
        value = entry.get(kind)
        if kind == "restart" and value is not None and not isinstance(value, Mapping):
            raise SourceError("'restart' must be a mapping with a 'type', e.g. {type: supervisord, url: ...}")
        if not isinstance(value, Mapping) or (kind == "health" and "type" not in value):
            continue
        sources[kind] = parse_source(kind, value)
    return sources


def parse_source(kind: str, settings: Mapping[str, Any]) -> Source:
    """One source mapping, validated: a known `type` for its kind and that type's settings."""
    kind_types = SOURCE_TYPES[kind]
    source_type = settings.get("type")
    if source_type is None:
        raise SourceError(f"'{kind}' needs a 'type' (one of {', '.join(kind_types)})")
    if source_type not in kind_types:
        raise SourceError(f"{kind}.type {source_type!r} is unknown; use one of {', '.join(kind_types)}")
    reader = _Settings(kind, settings)
    source = _PARSERS[source_type](reader)
    reader.reject_unknown()
    return source


def _prometheus(settings: _Settings) -> PrometheusSource:
    url = settings.url("url", ("http", "https"))
    queries = settings.mapping("queries")
    unknown = sorted(set(queries) - set(QUERY_KEYS))
    if unknown:
        raise SourceError(f"health.queries has unknown key {unknown[0]!r}; use {', '.join(QUERY_KEYS)}")
    for key, query in queries.items():
        if not isinstance(query, str) or not query.strip():
            raise SourceError(f"health.queries.{key} must be a PromQL expression")
    return PrometheusSource(
        url=url.rstrip("/"),
        instance=settings.text("instance", required=True),
        queries=dict(queries),
        timeout_s=settings.seconds("timeout_s", 5.0),
        username=settings.text("username"),
        password=settings.text("password"),
        password_env=settings.text("password_env"),
    )


def _file(settings: _Settings) -> FileLogSource:
    paths = settings.raw("paths")
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or not all(isinstance(path, str) and path for path in paths):
        raise SourceError("logs.paths must be a non-empty list of file paths")
    return FileLogSource(paths=tuple(paths))


def _journald(settings: _Settings) -> JournaldSource:
    return JournaldSource(unit=settings.text("unit", required=True), timeout_s=settings.seconds("timeout_s", 10.0))


def _supervisord(settings: _Settings) -> SupervisordSource:
    url = settings.url("url", ("http", "https", "unix"))
    if url.startswith("unix:") and (urlsplit(url).netloc or not urlsplit(url).path.startswith("/")):
        raise SourceError("restart.url must name an absolute socket path, e.g. unix:///run/supervisor.sock")
    return SupervisordSource(
        url=url,
        process=settings.text("process"),
        username=settings.text("username"),
        password=settings.text("password"),
        password_env=settings.text("password_env"),
        timeout_s=settings.seconds("timeout_s", 30.0),
        settle_s=settings.seconds("settle_s", 0.0),
    )


def _systemd(settings: _Settings) -> SystemdSource:
    return SystemdSource(
        unit=settings.text("unit"),
        timeout_s=settings.seconds("timeout_s", 60.0),
        settle_s=settings.seconds("settle_s", 0.0),
    )


def _container(settings: _Settings) -> ContainerSource:
    url = settings.url("url", ("unix", "http", "https"))
    if url.startswith("unix:") and (urlsplit(url).netloc or not urlsplit(url).path.startswith("/")):
        raise SourceError(f"{settings.kind}.url must name an absolute socket path, e.g. unix:///var/run/docker.sock")
    version = settings.text("api_version") or "v1.41"
    if not (version.startswith("v") and version[1:].replace(".", "", 1).isdigit()):
        raise SourceError(f"{settings.kind}.api_version must look like v1.41")
    source = ContainerSource(
        url=url,
        container=settings.text("container"),
        api_version=version,
        timeout_s=settings.seconds("timeout_s", 10.0),
        sample_s=settings.seconds("sample_s", 1.0),
        stop_timeout_s=settings.seconds("stop_timeout_s", 10.0),
        settle_s=settings.seconds("settle_s", 2.0),
        tls_ca=settings.text("tls_ca"),
        tls_cert=settings.text("tls_cert"),
        tls_key=settings.text("tls_key"),
    )
    if (source.tls_ca or source.tls_cert or source.tls_key) and not url.startswith("https:"):
        raise SourceError(f"{settings.kind}.tls_ca, tls_cert and tls_key need an https:// url")
    if bool(source.tls_cert) != bool(source.tls_key):
        raise SourceError(f"{settings.kind}.tls_cert and tls_key go together")
    return source


_PARSERS: Mapping[str, Callable[[_Settings], Source]] = {
    "prometheus": _prometheus,
    "file": _file,
    "journald": _journald,
    "supervisord": _supervisord,
    "systemd": _systemd,
    "container": _container,
}


class _Settings:
    """Typed reads of one source mapping that remember which keys were used (the rest are typos)."""

    def __init__(self, kind: str, settings: Mapping[str, Any]) -> None:
        self.kind = kind
        self._kind = kind
        self._settings = settings
        self._used = {"type"}

    def raw(self, key: str) -> Any:
        self._used.add(key)
        return self._settings.get(key)

    def text(self, key: str, *, required: bool = False) -> str:
        value = self.raw(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise SourceError(
                f"{self._kind}.{key} is required" if value is None else f"{self._kind}.{key} must be a non-empty string"
            )
        return str(value).strip()

    def url(self, key: str, schemes: tuple[str, ...]) -> str:
        url = self.text(key, required=True)
        try:
            parts = urlsplit(url)
        except ValueError:
            raise SourceError(f"{self._kind}.{key} is not a valid URL") from None
        if "@" in parts.netloc:
            raise SourceError(
                f"{self._kind}.{key} must not embed credentials (user:password@host); set "
                f"{self._kind}.username and {self._kind}.password_env (the name of an environment "
                f"variable holding the password) or {self._kind}.password instead"
            )
        if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "unix"):
            raise SourceError(
                f"{self._kind}.{key} must be a {' or '.join(s + '://' for s in schemes)} URL, not {url!r}"
            )
        return url

    def seconds(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value) or value < 0:
            raise SourceError(f"{self._kind}.{key} must be a number of seconds")
        return float(value)

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.raw(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise SourceError(f"{self._kind}.{key} must be a mapping")
        return value

    def reject_unknown(self) -> None:
        unknown = sorted(str(key) for key in self._settings if key not in self._used)
        if unknown:
            raise SourceError(
                f"{self._kind} has unknown setting {unknown[0]!r} for type {self._settings.get('type')!r}"
            )
