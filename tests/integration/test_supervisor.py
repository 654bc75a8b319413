"""Restarts through a real supervisord: the PID changes once, a repeated idempotency key never restarts again, and a
stop that outlasts the RPC timeout is an unknown outcome that keeps its key."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from it_support_agent.incident.sources import SupervisordSource
from it_support_agent.tools.backends.base import BackendError, RestartOutcomeUnknown
from it_support_agent.tools.backends.supervisor import SupervisordRestarter
from it_support_agent.tools.infrastructure import open_infrastructure, perform_once
from it_support_agent.tools.store import open_store
from tests.conftest import write_fleet
from tests.integration.services import Supervisord, supervisord

SLEEPER = f'{sys.executable} -c "import time; time.sleep(1e6)"'
# Takes 1.2 s to stop on SIGTERM: longer than the RPC timeout the test gives, shorter than stopwaitsecs.
SLOW_TO_STOP = (
    f'{sys.executable} -c "import signal, sys, time; '
    f'signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1.2), sys.exit(0))); time.sleep(1e6)"'
)
HOT = {"cpu_percent": 98.0, "memory_percent": 50.0, "status": "degraded"}
HUNG_LOGS = ["2026-11-27T09:58:01Z ERROR worker pool exhausted: 200/200 threads busy, 1412 requests queued"]


@pytest.fixture(scope="module")
def sv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisord]:
    with supervisord(
        tmp_path_factory.mktemp("supervisord"), {"worker": SLEEPER, "other": SLEEPER, "slow-stop": SLOW_TO_STOP}
    ) as running:
        yield running


def worker_fleet(directory: Path, sv: Supervisord, *, recovers: bool = True, **restart: Any) -> Path:
    """A simulated hot server whose restart is real: supervisord's `worker` program."""
    server: dict[str, Any] = {
        "service": "worker",
        "health": HOT,
        "logs": HUNG_LOGS,
        "restart": {"type": "supervisord", "url": sv.url, "username": sv.username, "password": sv.password, **restart},
    }
    if recovers:
        server["after_restart"] = {"health": {"cpu_percent": 20.0, "memory_percent": 40.0, "status": "healthy"}}
    return write_fleet(directory, {"worker-01": server})


def test_agent_restarts_the_supervised_process_and_its_pid_changes(
    sv: Supervisord, runner: Any, tmp_path: Path, state_dir: Path
) -> None:
    before = sv.info("worker")
    other_before = sv.info("other")["pid"]
    result = runner(worker_fleet(tmp_path, sv)).run("worker-01 is hanging", thread_id="inc-sv-1")
    after = sv.info("worker")
    assert result["outcome"] == "restart", result.get("escalation_reason")
    assert result["restart"]["performed"] and result["restart"]["verified"]
    assert after["pid"] != before["pid"] and after["statename"] == "RUNNING"
    assert f"PID {before['pid']} -> {after['pid']}" in result["restart"]["detail"]
    assert sv.info("other")["pid"] == other_before

    infra = open_infrastructure(str(worker_fleet(tmp_path, sv)), str(state_dir))
    again = infra.backend.restart("worker-01", "worker", result["restart"]["idempotency_key"])
    assert again.already_done and not again.performed
    assert sv.info("worker")["pid"] == after["pid"]


def test_a_second_alert_on_the_same_thread_is_a_crash_loop_not_a_second_restart(
    sv: Supervisord, runner: Any, tmp_path: Path, state_dir: Path
) -> None:
    agent = runner(worker_fleet(tmp_path, sv, recovers=False))
    first = agent.run("worker-01 is hanging", thread_id="inc-sv-2")
    pid_after_first = sv.info("worker")["pid"]
    second = agent.run("worker-01 is still hanging", thread_id="inc-sv-2")
    assert first["restart"]["performed"] and "restart did not help" in first["escalation_reason"]
    assert not second["restart"] and second["policy"]["rule"] == "cooldown"
    assert sv.info("worker")["pid"] == pid_after_first


def test_restart_over_the_unix_socket(sv: Supervisord) -> None:
    before = sv.info("worker")["pid"]
    detail = SupervisordRestarter(SupervisordSource(url=sv.socket_url), process="worker").restart()
    after = sv.info("worker")
    assert after["pid"] != before and after["statename"] == "RUNNING"
    assert detail.endswith(f"PID {before} -> {after['pid']}, RUNNING")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"password": "wrong"}, "401 Unauthorized (check username and password)"),
        ({"process": "no-such-program"}, "supervisord has no process named 'no-such-program'"),
    ],
)
def test_refused_restarts_are_backend_errors(sv: Supervisord, settings: dict[str, str], problem: str) -> None:
    source = SupervisordSource(
        **{
            "url": sv.url,
            "username": sv.username,
            "password": sv.password,  # type: ignore[arg-type]
            **settings,
        }
    )
    with pytest.raises(BackendError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        SupervisordRestarter(source, process=source.process or "worker").restart()


def test_a_failed_restart_escalates_and_records_no_key(
    sv: Supervisord, runner: Any, tmp_path: Path, state_dir: Path
) -> None:
    result = runner(worker_fleet(tmp_path, sv, password="wrong")).run("worker-01 is hanging")
    assert result["outcome"] == "escalate"
    assert "restart of worker on worker-01 failed" in result["escalation_reason"]
    assert "401" in result["escalation_reason"]
    assert open_store(state_dir).key_status(result["restart"]["idempotency_key"]) is None  # a retry may try again


def test_a_stop_outlasting_the_timeout_is_an_unknown_outcome_the_process_is_started_once_and_the_key_kept(
    sv: Supervisord, tmp_path: Path
) -> None:
    before = sv.info("slow-stop")["pid"]
    source = SupervisordSource(url=sv.url, username=sv.username, password=sv.password, timeout_s=1.0)
    keys = open_store(tmp_path)
    with pytest.raises(RestartOutcomeUnknown) as caught:
        perform_once(
            keys, "slow-01", "slow-stop", "t:restart:slow-01", SupervisordRestarter(source, process="slow-stop").restart
        )
    after = sv.info("slow-stop")
    message = str(caught.value)
    assert message.startswith("outcome unknown: supervisord did not answer stopProcess for slow-stop")
    assert f"found STOPPED and started once: now RUNNING (PID {after['pid']})" in message
    assert "restart.timeout_s (1 s) must exceed the program's stopwaitsecs" in message
    assert after["statename"] == "RUNNING" and after["pid"] != before
    assert keys.key_status("t:restart:slow-01") == "in_flight"
    with pytest.raises(BackendError, match="did not finish"):
        perform_once(
            keys, "slow-01", "slow-stop", "t:restart:slow-01", SupervisordRestarter(source, process="slow-stop").restart
        )
    assert sv.info("slow-stop")["pid"] == after["pid"]
