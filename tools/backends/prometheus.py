"""Health from Prometheus: CPU, memory and up of one instance through PromQL over the HTTP API.

This module owns the queries, the HTTP call (timeout, optional basic auth) and the reading of answers; anything
that goes wrong on the way is a BackendError, which the agent reports as "health unavailable".
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from string import Template
from typing import Any

from it_support_agent.incident.signals import CPU_SATURATION_PERCENT, MEMORY_PRESSURE_PERCENT
from it_support_agent.incident.sources import PrometheusSource
from it_support_agent.tools.backends.base import BackendError

# node_exporter metrics; `$instance` becomes the server's instance label. irate reacts within two scrapes, so
# the health read right after a restart reflects the restart.
DEFAULT_QUERIES: Mapping[str, str] = {
    "cpu_percent": '100 * (1 - avg(irate(node_cpu_seconds_total{mode="idle", instance="$instance"}[1m])))',
    "memory_percent": (
        '100 * (1 - sum(node_memory_MemAvailable_bytes{instance="$instance"})'
        ' / sum(node_memory_MemTotal_bytes{instance="$instance"}))'
    ),
    "up": 'min(up{instance="$instance"})',
}


def promql_string(value: str) -> str:
    """A value made safe inside a double-quoted PromQL string literal."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_queries(source: PrometheusSource) -> dict[str, str]:
    """The queries of a source: node_exporter defaults, overridden per server, with the instance filled in."""
    instance = promql_string(source.instance)
    return {
        key: Template(query).safe_substitute(instance=instance)
        for key, query in {**DEFAULT_QUERIES, **source.queries}.items()
    }


class PrometheusHealth:
    """Reads one server's health from Prometheus; unreachable, down or no data raises BackendError."""

    def __init__(self, source: PrometheusSource) -> None:
        self._source = source
        self._queries = render_queries(source)
        self._headers = auth_headers(source)

    def health(self) -> dict[str, Any]:
        up = self._value("up")
        if up < 1:
            raise BackendError(
                f"scrape target {self._source.instance} is down in Prometheus (up={up:g}); no current figures"
            )
        cpu = self._value("cpu_percent")
        memory = self._value("memory_percent")
        saturated = cpu >= CPU_SATURATION_PERCENT or memory >= MEMORY_PRESSURE_PERCENT
        return {
            "cpu_percent": round(cpu, 1),
            "memory_percent": round(memory, 1),
            "status": "degraded" if saturated else "healthy",
            "source": "prometheus",
        }

    def _value(self, key: str) -> float:
        """One figure: the largest sample the query returns (the smallest for `up`)."""
        samples = query(self._source.url, self._queries[key], self._source.timeout_s, self._headers)
        if not samples:
            raise BackendError(
                f"no data from Prometheus for {key} of {self._source.instance} (query: {self._queries[key]})"
            )
        return min(samples) if key == "up" else max(samples)


def auth_headers(source: PrometheusSource) -> dict[str, str]:
    """Basic auth from `username` and `password_env` (or `password`); none without a username."""
    if not source.username:
        return {}
    password = os.environ.get(source.password_env, "") if source.password_env else source.password
    token = base64.b64encode(f"{source.username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def query_timeout(timeout_s: float) -> str:
    """The `timeout` argument for Prometheus: whole milliseconds (it rejects `1e+06s` and `2.5s` is fragile)."""
    return f"{max(1, round(timeout_s * 1000))}ms"


def query(base_url: str, promql: str, timeout_s: float, headers: Mapping[str, str] | None = None) -> list[float]:
    """Evaluate an instant query; the finite sample values (vector or scalar result). Raises BackendError."""
    arguments = urllib.parse.urlencode({"query": promql, "timeout": query_timeout(timeout_s)})
    request = urllib.request.Request(f"{base_url}/api/v1/query?{arguments}")
    for name, value in (headers or {}).items():
        request.add_unredirected_header(name, value)  # credentials never follow a redirect elsewhere
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            document = json.load(response)
    except urllib.error.HTTPError as exc:
        raise BackendError(f"Prometheus at {base_url} answered HTTP {exc.code}: {_error_text(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendError(f"Prometheus unreachable at {base_url}: {reason}") from None
    except ValueError:
        raise BackendError(f"Prometheus at {base_url} answered something that is not JSON") from None
    except http.client.HTTPException as exc:
        raise BackendError(f"Prometheus at {base_url} gave a broken HTTP answer: {type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 - whatever else happens, health is unavailable, not a crash
        raise BackendError(f"Prometheus query at {base_url} failed: {type(exc).__name__}: {exc}") from None
    return _samples(document, base_url)


def _samples(document: Any, base_url: str) -> list[float]:
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        raise BackendError(f"Prometheus at {base_url} refused the query: {error or 'unexpected answer'}")
    data = document.get("data")
    if not isinstance(data, dict):
        raise BackendError(f"Prometheus at {base_url} answered without a data object")
    result = data.get("result")
    points: list[Any]
    if data.get("resultType") == "scalar":
        points = [result]
    elif data.get("resultType") == "vector" and isinstance(result, list):
        points = [item.get("value") for item in result if isinstance(item, dict)]
    else:
        raise BackendError(f"Prometheus query gave a {data.get('resultType')!r} result; expected a vector")
    values = []
    for point in points:
        try:
            number = float(point[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if math.isfinite(number):
            values.append(number)
    return values


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError, http.client.HTTPException):
        return exc.reason or "error"
    return str(body.get("error") or exc.reason) if isinstance(body, dict) else str(exc.reason)
