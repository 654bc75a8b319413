"""Exactly once: a process SIGKILLed around the restart, resumed from its SQLite checkpoint, restarts once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from it_support_agent.tools.store import open_store

REPO = Path(__file__).resolve().parents[2]

# Runs the real CLI in a child process whose simulated backend kills the process (SIGKILL) at the chosen
# moment of the restart: "before" the backend acts, or "after" it acted but before the checkpoint is written.
CRASHING_RUN = """
import os, signal, sys
from it_support_agent.tools.backends.simulated import SimulatedBackend
moment = sys.argv[1]
original = SimulatedBackend.restart
def restart(self, server_id, service, idempotency_key):
    if moment == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    outcome = original(self, server_id, service, idempotency_key)
    os.kill(os.getpid(), signal.SIGKILL)
    return outcome
SimulatedBackend.restart = restart
from it_support_agent.graph.app.cli import main
sys.exit(main(["run", "payment-server-01 is extremely slow", "--thread-id", "inc-crash", "--json"]))
"""


def environment(state_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("MODEL_NAME", "OPENAI_API_KEY")}
    env["IT_SUPPORT_STATE_DIR"] = str(state_dir)
    return env


@pytest.mark.parametrize("moment", ["before", "after"])
def test_sigkill_at_the_restart_step_then_resume_restarts_exactly_once(state_dir: Path, moment: str) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, moment],
        cwd=REPO,
        env=environment(state_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == -signal.SIGKILL
    fleet_state = state_dir / "fleet-state.json"
    restarts_before_resume = (
        json.loads(fleet_state.read_text())["servers"]["payment-server-01"]["restart_count"]
        if fleet_state.exists()
        else 0
    )
    assert restarts_before_resume == (1 if moment == "after" else 0)

    resumed = subprocess.run(
        [sys.executable, "-m", "it_support_agent", "resume", "inc-crash", "--json"],
        cwd=REPO,
        env=environment(state_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["outcome"] == "restart"
    restart_step = next(step for step in result["actions"] if step["action"] == "restart_service")
    assert restart_step["status"] == ("already_done" if moment == "after" else "done")
    assert json.loads(fleet_state.read_text())["servers"]["payment-server-01"]["restart_count"] == 1
    assert len(open_store(state_dir).restart_history()) == 1

    again = subprocess.run(
        [sys.executable, "-m", "it_support_agent", "resume", "inc-crash"],
        cwd=REPO,
        env=environment(state_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2 and "not waiting" in again.stderr
