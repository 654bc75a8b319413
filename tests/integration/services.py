"""Real services for integration tests: processes started and stopped by the test, readiness polls, a receiver."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.integration.helpers import free_port, require_binary

__all__ = ["binary", "free_port", "wait_until", "running", "stop", "Receiver", "prometheus_server", "supervisord"]

T = TypeVar("T")


def binary(name: str, package: str) -> str:
    """The binary's path; otherwise skip with the reason, or fail when CI=true (CI must install it)."""
    return require_binary(shutil.which(name), f"{name} (Debian package {package})")


def wait_until(probe: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.05) -> T:
    """Poll until probe returns something other than None/False; fail naming what never happened."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except Exception:  # noqa: BLE001 - not ready yet
            value = None
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}", pytrace=False)
        time.sleep(interval_s)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)


@contextlib.contextmanager
def running(
    command: list[str], log_path: Path, ready: Callable[[], Any], timeout_s: float, what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process, wait for `ready`, yield it, then stop it (TERM, then KILL)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:

        def probe() -> Any:
            if process.poll() is not None:
                pytest.fail(f"{what} exited with {process.returncode}:\n{log_path.read_text()[-2000:]}", pytrace=False)
            return ready()

        wait_until(probe, timeout_s, what)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class Receiver:
    """A local HTTP endpoint recording every JSON body posted to it; `status` sets what it answers."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append((self.path, dict(self.headers), json.loads(body or b"null")))
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bodies(self, path: str) -> list[Any]:
        with self._lock:
            return [body for request_path, _, body in self.requests if request_path == path]


@contextlib.contextmanager
def prometheus_server(directory: Path, jobs: dict[str, list[str]]) -> Iterator[str]:
    """A real Prometheus (Debian `prometheus`) scraping `jobs` every second; yields its base URL when ready."""
    path = binary("prometheus", "prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items()
        ],
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "prometheus.yml").write_text(json.dumps(config), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    command = [
        path,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running(
        command, directory / "prometheus.log", lambda: http_ok(f"{url}/-/ready"), 30, "prometheus to be ready"
    ):
        yield url


@dataclass(frozen=True)
class Supervisord:
    """A running supervisord: its HTTP RPC URL (with credentials), unix socket URL and a client."""

    url: str
    socket_url: str
    username: str
    password: str

    def client(self) -> xmlrpc.client.ServerProxy:
        host = self.url.removeprefix("http://")
        return xmlrpc.client.ServerProxy(f"http://{self.username}:{self.password}@{host}")

    def info(self, program: str) -> dict[str, Any]:
        info: dict[str, Any] = self.client().supervisor.getProcessInfo(program)  # type: ignore[assignment]
        return dict(info)


@contextlib.contextmanager
def supervisord(directory: Path, programs: dict[str, str]) -> Iterator[Supervisord]:
    """A real supervisord (Debian `supervisor`) with an authenticated inet server and a unix socket."""
    path = binary("supervisord", "supervisor")
    port = free_port()
    socket_dir = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))  # unix socket paths must stay short
    sections = [
        f"[supervisord]\nnodaemon=true\nlogfile={directory / 'supervisord.log'}\n"
        f"pidfile={directory / 'supervisord.pid'}\nchildlogdir={directory}\n",
        f"[inet_http_server]\nport=127.0.0.1:{port}\nusername=agent\npassword=s3cret\n",
        f"[unix_http_server]\nfile={socket_dir / 'supervisor.sock'}\n",
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        *(
            f"[program:{name}]\ncommand={command}\nautostart=true\nstartsecs=0\nstopwaitsecs=5\n"
            for name, command in programs.items()
        ),
    ]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "supervisord.conf").write_text("\n".join(sections), encoding="utf-8")
    found = Supervisord(f"http://127.0.0.1:{port}/RPC2", f"unix://{socket_dir / 'supervisor.sock'}", "agent", "s3cret")

    def ready() -> bool:
        return all(found.info(name)["statename"] == "RUNNING" for name in programs)

    try:
        with running(
            [path, "-c", str(directory / "supervisord.conf")],
            directory / "supervisord.out",
            ready,
            20,
            "supervisord and its programs to run",
        ):
            try:
                yield found
            finally:
                with contextlib.suppress(Exception):  # stopping the programs first makes the exit immediate
                    found.client().supervisor.stopAllProcesses(True)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
