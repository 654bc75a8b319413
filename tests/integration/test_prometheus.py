"""Health from a real Prometheus scraping a test exporter: restart chosen on high CPU, never blind without data."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from it_support_agent.incident.sources import PrometheusSource
from it_support_agent.tools.backends.base import BackendError
from it_support_agent.tools.backends.prometheus import PrometheusHealth, query
from it_support_agent.tools.results import latest_tool_result
from it_support_agent.tools.store import open_store
from tests.conftest import write_fleet
from tests.integration.services import free_port, prometheus_server, supervisord, wait_until

HUNG_LOGS = [
    "2026-11-27T09:57:40Z WARN app request latency p99 8421ms above SLO 800ms",
    "2026-11-27T09:58:01Z ERROR worker pool exhausted: 200/200 threads busy, 1412 requests queued",
    "2026-11-27T09:58:30Z ERROR watchdog: worker thread 'w-17' blocked for 312s",
]
MEMORY_BYTES = 16 * 1024**3


class NodeEmulator:
    """node_exporter's CPU counter and memory gauges, with the busy share and memory use the test sets."""

    def __init__(self) -> None:
        self.busy: Callable[[], float] = lambda: 0.1
        self.memory_percent = 40.0
        self.app_cpu_percent = 12.0
        self._idle_s = 10_000.0
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        with self._lock:
            now = time.monotonic()
            self._idle_s += (now - self._at) * (1.0 - self.busy())
            self._at = now
            idle = self._idle_s
        cpu = CounterMetricFamily("node_cpu_seconds", "Seconds the CPUs spent in each mode.", labels=["cpu", "mode"])
        cpu.add_metric(["0", "idle"], idle)
        yield cpu
        yield GaugeMetricFamily("node_memory_MemTotal_bytes", "Memory total.", value=MEMORY_BYTES)
        yield GaugeMetricFamily(
            "node_memory_MemAvailable_bytes", "Memory available.", value=MEMORY_BYTES * (1 - self.memory_percent / 100)
        )
        yield GaugeMetricFamily("test_app_cpu_percent", "The app's own CPU figure.", value=self.app_cpu_percent)


@pytest.fixture(scope="module")
def exporter() -> Iterator[tuple[NodeEmulator, str]]:
    registry = CollectorRegistry()
    emulator = NodeEmulator()
    registry.register(emulator)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield emulator, f"127.0.0.1:{port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def prometheus(exporter: tuple[NodeEmulator, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _, instance = exporter
    jobs = {"node": [instance], "gone": [f"127.0.0.1:{free_port()}"]}
    with prometheus_server(tmp_path_factory.mktemp("prometheus"), jobs) as url:
        source = PrometheusSource(url=url, instance=instance)
        wait_until(lambda: PrometheusHealth(source).health(), 20, "a first scrape of the exporter (two samples)")
        yield url


def health_source(url: str, instance: str, **queries: str) -> PrometheusSource:
    return PrometheusSource(url=url, instance=instance, queries=queries, timeout_s=2.0)


def settle(source: PrometheusSource, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Poll until Prometheus has scraped the values the test set."""
    return wait_until(lambda: (lambda h: h if check(h) else None)(PrometheusHealth(source).health()), 10, what)


def fleet_servers(url: str, instance: str, log_file: Path, **extra: Any) -> dict[str, Any]:
    log_file.write_text("\n".join(HUNG_LOGS) + "\n", encoding="utf-8")
    return {
        "app-server-01": {
            "service": "app",
            "health": {"type": "prometheus", "url": url, "instance": instance, "timeout_s": 2},
            "logs": {"type": "file", "paths": [str(log_file)]},
            **extra,
        }
    }


def test_default_node_exporter_queries_read_cpu_memory_and_status(
    prometheus: str, exporter: tuple[NodeEmulator, str]
) -> None:
    emulator, instance = exporter
    emulator.busy, emulator.memory_percent = (lambda: 0.25), 40.0
    health = settle(health_source(prometheus, instance), lambda h: abs(h["cpu_percent"] - 25) < 3, "CPU 25%")
    assert health["memory_percent"] == 40.0
    assert health["status"] == "healthy" and health["source"] == "prometheus"


def test_per_server_query_override(prometheus: str, exporter: tuple[NodeEmulator, str]) -> None:
    emulator, instance = exporter
    emulator.app_cpu_percent = 93.0
    source = health_source(prometheus, instance, cpu_percent='max(test_app_cpu_percent{instance="$instance"})')
    health = settle(source, lambda h: h["cpu_percent"] == 93.0, "the overridden CPU query")
    assert health["status"] == "degraded"


def test_target_down_and_unknown_instance_are_backend_errors(prometheus: str) -> None:
    gone = wait_until(lambda: instance_label(prometheus, 'up{job="gone"} == 0'), 10, "the dead target's up=0")
    with pytest.raises(BackendError, match=r"is down in Prometheus \(up=0\)"):
        PrometheusHealth(health_source(prometheus, gone)).health()
    with pytest.raises(BackendError, match="no data from Prometheus for up of nowhere:9100"):
        PrometheusHealth(health_source(prometheus, "nowhere:9100")).health()


def instance_label(url: str, promql: str) -> str | None:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}") as response:
        series = json.load(response)["data"]["result"]
    return str(series[0]["metric"]["instance"]) if series else None


def test_high_cpu_and_hung_process_logs_choose_restart(
    prometheus: str, exporter: tuple[NodeEmulator, str], runner: Any, tmp_path: Path
) -> None:
    emulator, instance = exporter
    emulator.busy, emulator.memory_percent = (lambda: 0.97), 45.0
    settle(health_source(prometheus, instance), lambda h: h["cpu_percent"] > 94, "CPU 97%")
    fleet = write_fleet(tmp_path, fleet_servers(prometheus, instance, tmp_path / "app.log"))
    result = runner(fleet).run("app-server-01 is slow and timing out")
    assert result["health"]["source"] == "prometheus" and result["health"]["cpu_percent"] > 94
    assert result["diagnosis"]["restart_recommended"] is True
    assert result["decision"]["action"] == "restart"
    assert result["restart"]["performed"] is True
    # The (simulated) restart cannot lower the exporter's CPU: verification reads Prometheus and escalates.
    assert result["outcome"] == "escalate"
    assert "restart did not help" in result["escalation_reason"]


def test_unknown_instance_escalates_health_unavailable_and_never_restarts(
    prometheus: str, runner: Any, tmp_path: Path, state_dir: Path
) -> None:
    fleet = write_fleet(tmp_path, fleet_servers(prometheus, "nowhere:9100", tmp_path / "app.log"))
    result = runner(fleet).run("app-server-01 is slow and timing out")
    assert_escalated_blind(result, state_dir, "no data from Prometheus")


def test_prometheus_stopped_escalates_health_unavailable(tmp_path: Path, runner: Any, state_dir: Path) -> None:
    with prometheus_server(tmp_path / "short-lived", {}) as url:
        assert query(url, "vector(1)", 2.0) == [1.0]
    fleet = write_fleet(tmp_path, fleet_servers(url, "app-server-01:9100", tmp_path / "app.log"))
    result = runner(fleet).run("app-server-01 is slow and timing out")
    assert_escalated_blind(result, state_dir, "Prometheus unreachable")


def assert_escalated_blind(result: dict[str, Any], state_dir: Path, cause: str) -> None:
    """Hung-process logs alone never trigger a restart: without health figures a human looks."""
    health_call = latest_tool_result(result["messages"], "get_server_health")
    assert health_call is not None and health_call["status"] == "no_data"
    assert health_call["error"].startswith("health unavailable") and cause in health_call["error"]
    assert result["health"] is None
    assert result["diagnosis"]["restart_recommended"] is False
    assert "health figures are unavailable" in result["diagnosis"]["reason"]
    assert result["outcome"] == "escalate" and result["ticket"]["evidence"]["health_summary"] == "health unavailable"
    assert any(cause in error for error in result["ticket"]["evidence"]["tool_errors"])
    assert not any(step.get("action") == "restart_service" for step in result["actions"])
    assert open_store(state_dir).restart_history() == []


def test_full_stack_restart_through_supervisord_verified_by_prometheus(
    prometheus: str, exporter: tuple[NodeEmulator, str], runner: Any, tmp_path: Path
) -> None:
    emulator, instance = exporter
    with supervisord(tmp_path / "sv", {"app": f'{sys.executable} -c "import time; time.sleep(1e6)"'}) as sv:
        hung_pid = sv.info("app")["pid"]
        emulator.busy = lambda: 0.97 if sv.info("app")["pid"] == hung_pid else 0.05
        settle(health_source(prometheus, instance), lambda h: h["cpu_percent"] > 94, "CPU 97% before the restart")
        restart = {
            "type": "supervisord",
            "url": sv.url,
            "username": sv.username,
            "password": sv.password,
            "settle_s": 2.0,
        }
        fleet = write_fleet(tmp_path, fleet_servers(prometheus, instance, tmp_path / "app.log", restart=restart))
        result = runner(fleet).run("app-server-01 is slow and timing out")
        after = sv.info("app")
        emulator.busy = lambda: 0.1
    assert result["outcome"] == "restart", result.get("escalation_reason")
    assert result["restart"]["verified"] is True and result["restart"]["after"]["cpu_percent"] < 20
    assert after["pid"] != hung_pid and after["statename"] == "RUNNING"
    assert f"PID {hung_pid} -> {after['pid']}" in result["restart"]["detail"]


def test_fractional_and_large_timeouts_are_accepted_by_prometheus(prometheus: str) -> None:
    for timeout_s in (2.5, 0.75, 1e6):
        assert query(prometheus, "vector(1)", timeout_s) == [1.0]


@pytest.mark.parametrize(
    "answer",
    [
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"status":"succ',
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 37\r\n\r\n" + json.dumps({"status": "success", "data": [1, 2]}).encode(),
    ],
)
def test_a_broken_answer_is_health_unavailable_not_a_crash(answer: bytes) -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(BackendError, match="Prometheus"):
            query(f"http://127.0.0.1:{listener.getsockname()[1]}", "up", 2.0)
    finally:
        thread.join(5)
        listener.close()
