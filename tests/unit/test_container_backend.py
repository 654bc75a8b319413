"""The container backend's pure parts: the fleet entry's validation, the log stream's frames, CPU and memory."""

from __future__ import annotations

from typing import Any

import pytest

from it_support_agent.incident.fleet import FleetError, parse_fleet
from it_support_agent.incident.sources import ContainerSource, SourceError, parse_source
from it_support_agent.tools.backends.container import cpu_percent, demultiplex, describe_state, memory_percent


def frame(stream: int, text: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(text).to_bytes(4, "big") + text


def test_a_multiplexed_log_stream_is_joined_and_a_tty_stream_kept_as_it_is() -> None:
    body = frame(1, b"2026-12-02T13:00:52Z out line\n") + frame(2, b"2026-12-02T13:00:53Z err line\n")
    assert demultiplex(body) == b"2026-12-02T13:00:52Z out line\n2026-12-02T13:00:53Z err line\n"
    assert demultiplex(b"2026-12-02T13:00:52Z raw tty line\n") == b"2026-12-02T13:00:52Z raw tty line\n"
    assert demultiplex(frame(1, b"cut short")[:12]) == b"cut "  # a torn last frame keeps what arrived


def stats(total_ns: float, system_ns: float, cpus: int = 2, **memory: Any) -> dict[str, Any]:
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": total_ns}, "system_cpu_usage": system_ns, "online_cpus": cpus},
        "memory_stats": memory,
    }


def test_cpu_is_measured_against_the_containers_cpu_limit_or_else_the_host() -> None:
    first, second = stats(0, 0), stats(0.25e9, 2e9)  # a quarter of a core used while 2 cores ran 1 s
    assert cpu_percent(first, second, {"NanoCpus": 250_000_000}) == 100.0
    assert cpu_percent(first, second, {"CpuQuota": 50_000, "CpuPeriod": 100_000}) == 50.0
    assert cpu_percent(first, second, {}) == 12.5  # no limit: the host's two cores
    assert cpu_percent(second, first, {}) == 0.0  # counters went back (a restart between samples)


def test_memory_leaves_out_reclaimable_page_cache() -> None:
    sample = stats(0, 0, usage=80 * 2**20, limit=100 * 2**20, stats={"inactive_file": 30 * 2**20})
    assert memory_percent(sample) == 50.0
    assert memory_percent(stats(0, 0, usage=10)) == 0.0  # no limit reported: no figure invented


def test_states_are_described_for_the_ticket() -> None:
    state = {"Status": "exited", "Running": False, "ExitCode": 137, "OOMKilled": True}
    assert describe_state("web", state) == "container web is exited (exit code 137, OOM-killed)"
    assert describe_state("web", {"Status": "running", "Running": True}) == "container web is running"


def test_a_fleet_entry_for_a_container_is_validated() -> None:
    source = parse_source("restart", {"type": "container", "url": "unix:///run/podman/podman.sock", "container": "web"})
    assert source == ContainerSource(url="unix:///run/podman/podman.sock", container="web")
    bad: list[tuple[dict[str, Any], str]] = [
        ({"type": "container", "url": "unix://run/docker.sock"}, "absolute socket path"),
        ({"type": "container", "url": "https://u:p@engine:2376"}, "must not embed credentials"),
        ({"type": "container", "url": "http://engine:2375", "tls_ca": "/ca.pem"}, "need an https:// url"),
        ({"type": "container", "url": "https://engine:2376", "tls_cert": "/c.pem"}, "tls_cert and tls_key go together"),
        ({"type": "container", "url": "unix:///s.sock", "api_version": "1.41"}, "must look like v1.41"),
        ({"type": "container", "url": "unix:///s.sock", "stop_timeout": 3}, "unknown setting 'stop_timeout'"),
    ]
    for settings, problem in bad:
        with pytest.raises(SourceError, match=problem):
            parse_source("health", settings)
    with pytest.raises(FleetError, match="server 'web-1'.*logs.type 'docker' is unknown"):
        parse_fleet(
            "servers:\n  web-1:\n    service: web\n    health: {type: container, url: 'unix:///s'}\n"
            "    logs: {type: docker, url: 'unix:///s'}\n"
        )
