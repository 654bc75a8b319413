"""Alert webhook payloads: Alertmanager's (version 4) and Grafana's (version 1, the same alert shape), validated;
the server an alert names, its incident text and thread.

This module owns what a payload must look like to be taken: every field the agent uses is checked, including
that its text is valid Unicode (a JSON escape such as "\\ud800" is not), before anything of the batch is queued.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from it_support_agent.incident.fleet import Fleet
from it_support_agent.incident.matching import ServerIndex
from it_support_agent.incident.sources import PrometheusSource

DEFAULT_SERVER_LABEL = "instance"
MAX_INCIDENT_CHARS = 1_000


class PayloadError(ValueError):
    """The body is not an Alertmanager version 4 webhook payload; the message says why."""


@dataclass(frozen=True)
class Alert:
    """One alert of a group, as Alertmanager sends it."""

    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    fingerprint: str
    starts_at: str


@dataclass(frozen=True)
class AlertGroup:
    """A webhook payload: the group key and its alerts, which sender, and how many alerts it left out."""

    group_key: str
    alerts: tuple[Alert, ...]
    sender: str = "alertmanager"
    truncated: int = 0


def parse_payload(body: bytes) -> AlertGroup:
    """Validate a webhook body; raise PayloadError naming the first problem."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise PayloadError("body is not valid JSON") from None
    if not isinstance(document, dict):
        raise PayloadError("payload must be a JSON object")
    version = document.get("version")
    if version not in ("4", "1"):
        raise PayloadError(
            f'unsupported payload version {version!r}; expected an Alertmanager webhook payload (version "4") '
            'or a Grafana alerting webhook payload (version "1")'
        )
    truncated = document.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError("'truncatedAlerts' must be a whole number")
    group_key = document.get("groupKey")
    if not isinstance(group_key, str) or not group_key:
        raise PayloadError("'groupKey' must be a non-empty string")
    _encodable(group_key, "'groupKey'")
    alerts = document.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("'alerts' must be a list")
    parsed = tuple(_alert(item, index) for index, item in enumerate(alerts))
    return AlertGroup(group_key, parsed, "grafana" if version == "1" else "alertmanager", truncated)


def _alert(item: Any, index: int) -> Alert:
    where = f"alerts[{index}]"
    if not isinstance(item, dict):
        raise PayloadError(f"{where} must be an object")
    status = item.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}.status must be 'firing' or 'resolved', not {status!r}")
    labels = _strings(item.get("labels"), f"{where}.labels", required=True)
    annotations = _strings(item.get("annotations"), f"{where}.annotations", required=False)
    fingerprint = item.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    starts_at = item.get("startsAt")
    starts_at = starts_at if isinstance(starts_at, str) else ""
    _encodable(fingerprint, f"{where}.fingerprint")
    _encodable(starts_at, f"{where}.startsAt")
    return Alert(status, labels, annotations, fingerprint, starts_at)


def _strings(value: Any, where: str, *, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise PayloadError(f"{where} must be an object of strings")
    for key, item in value.items():
        _encodable(key, f"{where} key")
        _encodable(item, f"{where}.{key}")
    return {str(key): item for key, item in value.items()}


def _encodable(text: str, where: str) -> None:
    """Text the agent can store and hash: a lone surrogate (from a JSON escape like \\ud800) is refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(f"{where} is not valid Unicode text (it holds a lone surrogate such as \\ud800)") from None


def thread_id(group_key: str, alert: Alert) -> str:
    """One thread per alert of a group per firing episode: repeats share it, a re-fire after resolving does not."""
    digest = hashlib.sha256(f"{group_key}\n{alert.fingerprint}\n{alert.starts_at}".encode()).hexdigest()
    return f"alert-{digest[:20]}"


def strip_port(value: str) -> str:
    """`host:9100` -> `host`, `[::1]:9100` -> `::1`; a bare IPv6 address stays whole."""
    if value.startswith("[") and "]" in value:
        return value[1 : value.index("]")]
    host, separator, port = value.rpartition(":")
    return host if separator and port.isdigit() and ":" not in host else value


def server_for(label_value: str, fleet: Fleet, index: ServerIndex) -> str | None:
    """The fleet server an alert label names: a Prometheus `instance` setting, else the host (or its first name)."""
    for server_id, spec in fleet.servers.items():
        source = spec.sources.get("health")
        if isinstance(source, PrometheusSource) and source.instance == label_value:
            return server_id
    host = strip_port(label_value.strip())
    return index.resolve(host) or (index.resolve(host.split(".")[0]) if "." in host else None)


def incident_text(alert: Alert, server_id: str | None, label: str) -> str:
    """What the operator would have typed: the server first, then the alert name, summary and description."""
    name = alert.labels.get("alertname", "alert")
    subject = server_id or alert.labels.get(label) or "unknown server"
    details = [alert.annotations.get(key, "").strip() for key in ("summary", "description")]
    text = f"{subject}: {name} firing. " + " ".join(detail for detail in details if detail)
    return text.strip()[:MAX_INCIDENT_CHARS]


@dataclass(frozen=True)
class IncidentRequest:
    """A plain incident from a script or chat bot: `{"incident": "...", "server": "...", "id": "..."}`."""

    incident: str
    server: str | None
    key: str | None


def parse_incident_request(body: bytes) -> IncidentRequest:
    """Validate a plain incident body; PayloadError naming the first problem."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise PayloadError("body is not valid JSON") from None
    if not isinstance(document, dict):
        raise PayloadError('payload must be a JSON object like {"incident": "web-01 is slow", "server": "web-01"}')
    unknown = sorted(set(document) - {"incident", "server", "id"})
    if unknown:
        raise PayloadError(f"unknown field {unknown[0]!r}; use incident, server (optional) and id (optional)")
    incident = document.get("incident")
    if not isinstance(incident, str) or not incident.strip():
        raise PayloadError("'incident' must be a non-empty string describing the problem")
    _encodable(incident, "'incident'")
    fields: dict[str, str | None] = {}
    for name in ("server", "id"):
        value = document.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 253):
            raise PayloadError(f"'{name}' must be a non-empty string of at most 253 characters")
        if isinstance(value, str):
            _encodable(value, f"'{name}'")
        fields[name] = value.strip() if isinstance(value, str) else None
    return IncidentRequest(incident.strip()[:MAX_INCIDENT_CHARS], fields["server"], fields["id"])
