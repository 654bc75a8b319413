"""The fleet file: parsing and validating the inventory of servers the agent may act on."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from it_support_agent.incident.sources import Source, SourceError, parse_sources
from it_support_agent.incident.yaml_strict import load_yaml

HEALTH_STATUSES = frozenset({"healthy", "degraded", "down"})
MAX_LOG_LINE_CHARS = 4_000


class FleetError(ValueError):
    """The fleet file is missing, unreadable or does not follow the schema."""


@dataclass(frozen=True)
class ServerState:
    """What a simulated server reports: its health figures and its log lines."""

    health: Mapping[str, Any]
    logs: tuple[str, ...]


@dataclass(frozen=True)
class ServerSpec:
    """One server of the inventory, as the fleet file describes it."""

    server_id: str
    service: str
    role: str = ""
    restartable: bool = True
    dependencies: tuple[str, ...] = ()
    state: ServerState = field(default_factory=lambda: ServerState({}, ()))
    after_restart: ServerState | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class Fleet:
    """The inventory: server id -> spec, plus where it came from."""

    servers: Mapping[str, ServerSpec]
    source: str = "<memory>"

    def get(self, server_id: str) -> ServerSpec | None:
        return self.servers.get(server_id)


def load_fleet(path: str | os.PathLike[str]) -> Fleet:
    """Read and validate a fleet file; raise FleetError naming the file and line on any problem."""
    return parse_fleet(read_fleet_text(path), source=str(Path(path)))


def read_fleet_text(path: str | os.PathLike[str]) -> str:
    """A fleet file's text; FleetError when it cannot be read."""
    file_path = Path(path)
    try:
        return file_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise FleetError(f"fleet file not found: {file_path}") from None
    except OSError as exc:
        raise FleetError(f"cannot read fleet file {file_path}: {exc.strerror or exc}") from None


def parse_fleet(text: str, *, source: str = "<memory>") -> Fleet:
    """Parse fleet YAML text (a mapping with a `servers` mapping) into a Fleet."""
    return fleet_from_document(fleet_document(text, source=source), source=source, text=text)


def fleet_document(text: str, *, source: str) -> Mapping[str, Any]:
    """The fleet file's YAML as plain data, checked strictly (duplicate keys, size); FleetError naming the line."""
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FleetError(f"{source}:{where.strip() or 'unknown line'}: malformed YAML: {problem}") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("servers"), Mapping):
        raise FleetError(f"{source}: expected a mapping with a 'servers' mapping at the top level")
    return document


def fleet_from_document(document: Mapping[str, Any], *, source: str, text: str = "") -> Fleet:
    """Validate a fleet document (from YAML, or from the parsed-fleet cache) into a Fleet."""
    if not isinstance(document.get("servers"), Mapping):
        raise FleetError(f"{source}: expected a mapping with a 'servers' mapping at the top level")
    return Fleet(servers=parse_servers(document["servers"], source=source, text=text), source=source)


def parse_servers(servers: Mapping[Any, Any], *, source: str, text: str = "") -> dict[str, ServerSpec]:
    """Validate the `servers` mapping (fleet files and scenario files share it)."""
    parsed: dict[str, ServerSpec] = {}
    for raw_id, entry in servers.items():
        server_id = str(raw_id)
        try:
            parsed[server_id] = _parse_server(server_id, entry)
        except FleetError as exc:
            raise FleetError(f"{source}:{_line_of(text, server_id)}: server '{server_id}': {exc}") from None
    if not parsed:
        raise FleetError(f"{source}: 'servers' is empty")
    return parsed


def _parse_server(server_id: str, entry: Any) -> ServerSpec:
    if not _is_valid_id(server_id):
        raise FleetError("server ids may only use ASCII letters, digits, '.', '_' and '-'")
    if not isinstance(entry, Mapping):
        raise FleetError("expected a mapping of fields")
    service = entry.get("service")
    if not isinstance(service, str) or not service.strip():
        raise FleetError("missing required field 'service'")
    try:
        sources = parse_sources(entry)
    except SourceError as exc:
        raise FleetError(str(exc)) from None
    state = _parse_state(entry, required="health" not in sources)
    after = entry.get("after_restart")
    if after is not None and not isinstance(after, Mapping):
        raise FleetError("'after_restart' must be a mapping with 'health' and/or 'logs'")
    after_state = None
    if after is not None:
        after_state = ServerState(
            health=_parse_health(after.get("health", state.health)),
            logs=_parse_logs(after.get("logs", list(state.logs))),
        )
    dependencies = entry.get("dependencies", []) or []
    if not isinstance(dependencies, list):
        raise FleetError("'dependencies' must be a list")
    restartable = entry.get("restartable", True)
    if not isinstance(restartable, bool):
        raise FleetError("'restartable' must be true or false")
    return ServerSpec(
        server_id=server_id,
        service=service.strip(),
        role=str(entry.get("role", "") or ""),
        restartable=restartable,
        dependencies=tuple(str(dep) for dep in dependencies),
        state=state,
        after_restart=after_state,
        sources=sources,
    )


def _parse_state(entry: Mapping[str, Any], *, required: bool) -> ServerState:
    if "health" not in entry:
        if required:
            raise FleetError("missing required field 'health'")
        return ServerState({}, ())
    health = entry["health"]
    if isinstance(health, Mapping) and "type" in health:
        health = {}
    logs = entry.get("logs", [])
    if isinstance(logs, Mapping):
        logs = []
    return ServerState(health=_parse_health(health), logs=_parse_logs(logs))


def _parse_health(health: Any) -> dict[str, Any]:
    if not isinstance(health, Mapping):
        raise FleetError("'health' must be a mapping like {cpu_percent: 12, memory_percent: 40, status: healthy}")
    parsed: dict[str, Any] = {}
    for key in ("cpu_percent", "memory_percent"):
        if key in health:
            value = health[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise FleetError(f"health.{key} must be a number")
            if not 0 <= value <= 100:
                raise FleetError(f"health.{key} must be between 0 and 100")
            parsed[key] = float(value)
    status = health.get("status", "healthy")
    if status not in HEALTH_STATUSES:
        raise FleetError(f"health.status must be one of {sorted(HEALTH_STATUSES)}")
    parsed["status"] = status
    return parsed


def _parse_logs(logs: Any) -> tuple[str, ...]:
    if logs is None:
        return ()
    if not isinstance(logs, list):
        raise FleetError("'logs' must be a list of lines")
    return tuple(str(line)[:MAX_LOG_LINE_CHARS] for line in logs)


_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,253}")


def _is_valid_id(server_id: str) -> bool:
    return _VALID_ID.fullmatch(server_id) is not None


def _line_of(text: str, server_id: str) -> str:
    """Best-effort line number of a server's key in the YAML text (for error messages)."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith((f"{server_id}:", f"'{server_id}':", f'"{server_id}":')):
            return f" line {number}"
    return ""
