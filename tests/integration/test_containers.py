"""Containers as a real target: a real Podman engine serving the Docker API, real containers, the real CLI.

The engine runs from a private storage root with Podman's `system service` on a private unix socket, started here
and stopped by its PID. Images are built with no registry: `podman import` of a tarball holding busybox.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from it_support_agent.incident.sources import ContainerSource
from it_support_agent.tools.backends.base import BackendError
from it_support_agent.tools.backends.container import ContainerHealth, ContainerLogs
from tests.integration.helpers import require_binary
from tests.integration.services import wait_until

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/it-support-busybox:1"

# The first start of the container is a service in trouble (one core's worth of busy loop under a quarter-core limit,
# and the pool-exhausted lines an app server writes); a start after that serves calmly, unless the marker says the
# service crashes on start from then on. Each start is counted on the container's own filesystem.
WORKLOAD = r"""
starts=$(cat /starts 2>/dev/null || echo 0); starts=$((starts + 1)); echo $starts > /starts
if [ "$starts" -gt 1 ] && [ -e /crash-on-start ]; then echo "FATAL cannot bind 0.0.0.0:8080: address in use"; exit 1; fi
if [ $((starts % 2)) -eq 0 ]; then echo "INFO web started (start $starts), serving"; exec sleep 100000; fi
yes > /dev/null &
while true; do
  echo "ERROR worker pool exhausted: 200/200 threads busy, 1412 requests queued"
  echo "ERROR watchdog: worker thread blocked for 312s" >&2
  sleep 1
done
"""


@dataclass
class Engine:
    socket: Path
    podman: list[str]
    env: dict[str, str]
    service: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.service.poll() is None:
            os.killpg(self.service.pid, signal.SIGTERM)
            try:
                self.service.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.service.pid, signal.SIGKILL)
                self.service.wait(10)

    def inspected_start(self, name: str) -> str:
        """The start time as the podman command reads it (no API service needed)."""
        done = subprocess.run(
            [*self.podman, "inspect", "--format", "{{.State.StartedAt}}", name],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout.strip()

    def run(self, name: str, *extra: str) -> None:
        subprocess.run(
            [*self.podman, "run", "-d", "--name", name, "--cpus", "0.25", "--memory", "256m", *extra, IMAGE]
            + ["/bin/sh", "-c", WORKLOAD],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def remove(self, name: str) -> None:
        subprocess.run([*self.podman, "rm", "-f", "-t", "0", name], env=self.env, capture_output=True, timeout=60)

    def started_at(self, name: str) -> str:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://engine") as client:
            return str(client.get(f"/v1.41/containers/{name}/json").json()["State"]["StartedAt"])


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    podman = require_binary(shutil.which("podman"), "podman (Debian packages podman, runc)")
    require_binary(shutil.which("runc"), "runc (Debian package runc)")
    busybox = require_binary(shutil.which("busybox"), "busybox (Debian package busybox-static)")
    home = tmp_path_factory.mktemp("podman")
    (home / "containers.conf").write_text("[containers]\ndefault_ulimits = []\n")
    env = {**os.environ, "CONTAINERS_CONF": str(home / "containers.conf")}
    command = [podman, "--runtime", "runc", "--root", str(home / "root"), "--runroot", str(home / "run")]
    rootfs = home / "rootfs" / "bin"
    rootfs.mkdir(parents=True)
    shutil.copy(busybox, rootfs / "busybox")
    for applet in ("sh", "sleep", "yes", "cat", "echo", "touch"):
        (rootfs / applet).symlink_to("busybox")
    subprocess.run(["tar", "-C", str(home / "rootfs"), "-cf", str(home / "image.tar"), "."], check=True)
    imported = subprocess.run(
        [*command, "import", str(home / "image.tar"), IMAGE], env=env, capture_output=True, text=True, timeout=120
    )
    if imported.returncode != 0:
        problem = f"podman cannot import an image here: {imported.stderr.strip()[-500:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    socket = home / "podman.sock"
    log = (home / "service.log").open("wb")
    service = subprocess.Popen(
        [*command, "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: socket.exists() and _ping(socket), 30, "the podman API service")
        engine = Engine(socket, command, env, service)
        yield engine
    finally:
        Engine(socket, command, env, service).stop()
        log.close()
        subprocess.run([*command, "rm", "-af", "-t", "0"], env=env, capture_output=True, timeout=120, check=False)


@pytest.fixture
def container(engine: Engine) -> Iterator[str]:
    """A fresh container name; the container is removed after the test (its busy loop would slow the next)."""
    name = f"web-{uuid.uuid4().hex[:6]}"
    yield name
    engine.remove(name)


def _ping(socket: Path) -> bool:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://engine", timeout=2) as client:
        return client.get("/_ping").status_code == 200


def _four(lines: list[str]) -> list[str] | None:
    return lines if len(lines) == 4 else None


def fleet(tmp_path: Path, socket: Path, servers: dict[str, str]) -> Path:
    """A fleet whose servers are containers: server id -> container name."""
    source = {"type": "container", "url": f"unix://{socket}", "sample_s": 0.5, "stop_timeout_s": 1, "settle_s": 1.5}
    document: dict[str, Any] = {"servers": {}}
    for server_id, container in servers.items():
        part = {**source, "container": container}
        document["servers"][server_id] = {
            "service": "web",
            "role": "web frontend",
            "restartable": True,
            "health": part,
            "logs": part,
            "restart": part,
        }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def run(state_dir: Path, fleet_file: Path, incident: str) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key not in ("MODEL_NAME", "OPENAI_API_KEY")}
    done = subprocess.run(
        [sys.executable, "-m", "it_support_agent", "run", incident, "--fleet", str(fleet_file), "--json"],
        cwd=REPO,
        env={**env, "IT_SUPPORT_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_container_in_trouble_is_read_restarted_verified_and_not_restarted_again_in_the_cooldown(
    engine: Engine, container: str, tmp_path: Path, state_dir: Path
) -> None:
    name = container
    engine.run(name)
    fleet_file = fleet(tmp_path, engine.socket, {"web-container-01": name})
    source = ContainerSource(url=f"unix://{engine.socket}", sample_s=0.5)
    wait_until(lambda: ContainerHealth(source, name).health()["cpu_percent"] >= 90 or None, 30, "the busy loop")
    lines = wait_until(lambda: _four(ContainerLogs(source, name).logs(4)), 30, "four log lines")
    assert any("ERROR worker pool exhausted" in line for line in lines)  # stdout
    assert any("ERROR watchdog: worker thread blocked" in line for line in lines)  # stderr
    assert all(line[:4].isdigit() and "T" in line.split(" ", 1)[0] for line in lines)  # the engine's timestamps
    started = engine.started_at(name)

    result = run(state_dir, fleet_file, "web-container-01 is extremely slow and timing out")
    assert result["outcome"] == "restart", result
    assert "(verified healthy)" in result["summary"], result["summary"]
    assert engine.started_at(name) != started  # the engine started it again
    restarted = engine.started_at(name)

    subprocess.run([*engine.podman, "restart", "-t", "0", name], env=engine.env, check=True, timeout=60)
    wait_until(lambda: ContainerHealth(source, name).health()["cpu_percent"] >= 90 or None, 30, "trouble again")
    again = engine.started_at(name)
    assert again != restarted
    second = run(state_dir, fleet_file, "web-container-01 is slow again")
    assert second["outcome"] == "escalate"  # within the cooldown: a human looks, no second restart
    assert "cooldown" in json.dumps(second).lower()
    assert engine.started_at(name) == again


def test_a_container_that_exits_on_start_after_the_restart_is_escalated_as_down(
    engine: Engine, container: str, tmp_path: Path, state_dir: Path
) -> None:
    name = container
    engine.run(name)
    subprocess.run([*engine.podman, "exec", name, "touch", "/crash-on-start"], env=engine.env, check=True, timeout=60)
    fleet_file = fleet(tmp_path, engine.socket, {"web-container-02": name})
    source = ContainerSource(url=f"unix://{engine.socket}", sample_s=0.5)
    wait_until(lambda: ContainerHealth(source, name).health()["cpu_percent"] >= 90 or None, 30, "the busy loop")

    result = run(state_dir, fleet_file, "web-container-02 is extremely slow and timing out")
    assert result["outcome"] == "escalate"
    ticket = result["ticket"]
    assert ticket["severity"] == "critical", ticket
    assert f"container {name} is exited (exit code 1)" in ticket["reason"]
    assert "status down" in ticket["reason"]


def test_an_unknown_container_and_a_missing_socket_are_clear_errors(engine: Engine, tmp_path: Path) -> None:
    source = ContainerSource(url=f"unix://{engine.socket}", sample_s=0.1)
    with pytest.raises(BackendError, match="no container 'absent-container' on the engine at unix://"):
        ContainerHealth(source, "absent-container").health()
    missing = ContainerSource(url=f"unix://{tmp_path / 'none.sock'}")
    with pytest.raises(BackendError, match="socket .*none.sock does not exist: is the engine running"):
        ContainerLogs(missing, "web").logs(10)


def test_with_the_engine_stopped_health_is_unavailable_and_nothing_is_restarted(
    engine: Engine, container: str, tmp_path: Path, state_dir: Path
) -> None:
    """Last in this module: it stops the engine's API service (the containers keep running under conmon)."""
    name = container
    engine.run(name)
    fleet_file = fleet(tmp_path, engine.socket, {"web-container-03": name})
    started = engine.inspected_start(name)
    engine.stop()
    result = run(state_dir, fleet_file, "web-container-03 is extremely slow and timing out")
    assert result["outcome"] == "escalate"
    text = json.dumps(result)
    assert "health unavailable" in text and "is the engine running" in text
    assert engine.inspected_start(name) == started
