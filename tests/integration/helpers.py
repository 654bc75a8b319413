"""Helpers for tests that start real servers: free ports, readiness polling, skip-or-fail on missing binaries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_http(url: str, timeout_s: float = 60.0) -> float:
    """Poll url until it answers 2xx; return the seconds it took. Fails the test on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} was not ready after {timeout_s:.0f}s")


def require_binary(path: str | None, what: str) -> str:
    """The binary's path; skip with a reason when missing, except in CI where a missing binary is a failure."""
    if path and os.path.exists(path):
        return path
    message = f"{what} is not installed here"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI must install it: see .ci/run)")
    pytest.skip(message)


def run_cli(state_dir: Path, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process on a state directory, without the developer's model settings."""
    env = {key: value for key, value in os.environ.items() if key not in ("MODEL_NAME", "OPENAI_API_KEY")}
    env["IT_SUPPORT_STATE_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, "-m", "it_support_agent", *args],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
