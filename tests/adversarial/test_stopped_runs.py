"""Runs that stop half way (a full disk, SIGKILL, a failing step, a broken store) still reach a human, and finish.

The disk-full test fills a real (tmpfs) filesystem right after the restart ran, so the checkpoint write fails the way
it does on a full disk: SQLite's "database or disk is full".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from it_support_agent.graph.app.alerts import Alert, AlertGroup
from it_support_agent.graph.app.serve import AlertIntake
from it_support_agent.incident.context import Context
from it_support_agent.tools.outbox import read_outbox
from it_support_agent.tools.store import open_store
from tests.integration.services import wait_until

REPO = Path(__file__).resolve().parents[2]

# After the real (simulated-fleet) restart, the restarted service's output fills the disk.
FILL_AFTER_RESTART = """
import errno, sys
from pathlib import Path
from it_support_agent.tools.backends.simulated import SimulatedBackend
filler = Path(sys.argv[1])
original = SimulatedBackend.restart
def restart(self, server_id, service, idempotency_key):
    outcome = original(self, server_id, service, idempotency_key)
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return outcome
SimulatedBackend.restart = restart
from it_support_agent.graph.app.cli import main
sys.exit(main(["run", "payment-server-01 is extremely slow", "--thread-id", "inc-disk", "--json"]))
"""

# SIGKILL right after the first checkpoint (the input) is written: no node has run.
KILL_AFTER_INPUT = """
import os, signal, sys
from langgraph.checkpoint.sqlite import SqliteSaver
original = SqliteSaver.put
def put(self, *args, **kwargs):
    saved = original(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return saved
SqliteSaver.put = put
from it_support_agent.graph.app.cli import main
sys.exit(main(["run", "payment-server-01 is extremely slow", "--thread-id", "inc-kill"]))
"""


def cli(state_dir: Path, *args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("MODEL_NAME", "OPENAI_API_KEY")}
    env["IT_SUPPORT_STATE_DIR"] = str(state_dir)
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "it_support_agent", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def restarts(state_dir: Path) -> int:
    path = state_dir / "fleet-state.json"
    if not path.exists():
        return 0
    return int(json.loads(path.read_text())["servers"]["payment-server-01"]["restart_count"])


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB filesystem (tmpfs), mounted for the test and unmounted after it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)], check=False)
    if done.returncode != 0 or shutil.disk_usage(mount).total > 16 * 1024 * 1024:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot mount a small tmpfs to fill (the CI machine runs as root and can)")
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_after_the_restart_still_files_a_ticket_and_resume_finishes_it(small_disk: Path) -> None:
    state_dir, filler = small_disk / "state", small_disk / "filler"
    crashed = cli(state_dir, str(filler), script=FILL_AFTER_RESTART)

    # the checkpoint after the restart could not be written: one clear line, exit 1, and a ticket kept anyway
    assert crashed.returncode == 1, crashed.stderr
    assert "Traceback" not in crashed.stderr
    errors = [line for line in crashed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "thread inc-disk stopped" in errors[0] and "disk is full" in errors[0]
    assert "`it-support-agent resume inc-disk` finishes it" in errors[0]
    answer = json.loads(crashed.stdout)
    ticket = answer["ticket"]
    assert answer["outcome"] == "error" and ticket["severity"] == "critical"
    assert ticket["summary"].startswith("a restart of payment-server-01 was started and its outcome was not recorded")
    assert "payment-server-01 is now: CPU" in ticket["summary"]  # read again after the failure
    kept = read_outbox(state_dir / "tickets.jsonl") + [
        json.loads(path.read_text())["ticket"] for path in (state_dir / "spool").glob("*.json")
    ]
    assert ticket["id"] in [item["id"] for item in kept]  # the reserve made room for it
    assert not (state_dir / "reserve").exists()
    assert restarts(state_dir) == 1

    filler.unlink()  # the operator frees the disk
    assert "unfinished" in cli(state_dir, "list").stdout
    resumed = cli(state_dir, "resume", "inc-disk", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["outcome"] == "restart"  # the restart already ran: verified, not repeated
    assert restarts(state_dir) == 1
    assert "restarted" in cli(state_dir, "list").stdout
    assert (state_dir / "reserve").exists()  # set aside again for the next full disk


def test_a_run_killed_right_after_its_input_checkpoint_is_finished_by_resume(state_dir: Path) -> None:
    killed = cli(state_dir, script=KILL_AFTER_INPUT)
    assert killed.returncode == -signal.SIGKILL
    listed = cli(state_dir, "list")
    assert "inc-kill" in listed.stdout and "unfinished" in listed.stdout
    assert "`it-support-agent resume ID` continues one" in listed.stdout
    refused = cli(state_dir, "resume", "inc-kill", "--approve")
    assert refused.returncode == 2 and "is not waiting for an answer: it stopped before" in refused.stderr
    resumed = cli(state_dir, "resume", "inc-kill", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["outcome"] == "restart"
    assert restarts(state_dir) == 1
    assert "restarted" in cli(state_dir, "list").stdout


def test_a_corrupt_state_store_gives_one_line_and_the_incident_still_reaches_a_human(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "checkpoints.sqlite").write_bytes(b"this is not a database\n" * 100)
    done = cli(state_dir, "run", "search-index-09 is failing", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: thread ") and "file is not a database" in errors[0]
    ticket = json.loads(done.stdout)["ticket"]
    spooled = json.loads((state_dir / "spool" / f"{ticket['id']}.json").read_text())
    assert spooled["ticket"]["incident"] == "search-index-09 is failing"
    assert spooled["pending_sinks"] == ["outbox"]  # the outbox's dedup record is the store: kept for `flush`
    for command in ("list", "audit"):
        read = cli(state_dir, command)
        assert read.returncode == 1 and read.stderr.startswith("error: the state store cannot be used: ")
        assert "Traceback" not in read.stderr


def _group(alert_name: str) -> AlertGroup:
    labels = {"alertname": alert_name, "instance": "payment-server-01:9100"}
    alert = Alert("firing", labels, {}, "fp", "2026-12-01T10:00:00Z")
    return AlertGroup("g-" + uuid.uuid4().hex[:6], (alert,))


def test_serve_continues_a_run_that_stopped_on_an_error_instead_of_counting_its_alert_as_a_duplicate(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    original, failures = SqliteSaver.put, threading.Event()

    def put(self: Any, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        if metadata.get("step") == 2 and not failures.is_set():  # after the first nodes ran
            failures.set()
            raise OSError(28, "No space left on device")
        return original(self, config, checkpoint, metadata, new_versions)

    monkeypatch.setattr(SqliteSaver, "put", put)
    intake = AlertIntake(Context(state_dir=str(state_dir)), workers=1)
    intake.start()
    group = _group("HighCPU")
    thread_id = intake.submit(group)["accepted"][0]["thread_id"]
    wait_until(lambda: open_store(state_dir).intake_counts().get("stalled") == 1, 30, "the run to stop on the error")
    tickets = read_outbox(state_dir / "tickets.jsonl")
    assert [ticket["thread_id"] for ticket in tickets] == [thread_id]
    assert "No space left on device" in tickets[0]["reason"]

    again = intake.submit(group)  # Alertmanager sends the alert again: the run continues, not "duplicate"
    assert again["duplicates"] == [] and again["accepted"][0]["thread_id"] == thread_id
    wait_until(lambda: open_store(state_dir).intake_counts() == {"done": 1}, 30, "the run to finish")
    intake.stop()
    snapshot = intake._app.get_state({"configurable": {"thread_id": thread_id}})
    assert not snapshot.next and snapshot.values["outcome"] == "restart"


def test_serve_on_start_continues_runs_that_stopped_on_an_error(state_dir: Path) -> None:
    store = open_store(state_dir)
    intake = AlertIntake(Context(state_dir=str(state_dir)), workers=1)
    item = intake._item(_group("HighCPU"), _group("HighCPU").alerts[0], *_fleet_and_index(intake))
    store.enqueue(item)
    assert store.claim("gone:1:x:0") is not None
    store.stall(item.thread_id)
    intake.start()
    wait_until(lambda: store.intake_counts() == {"done": 1}, 30, "the stalled run to be continued at start")
    intake.stop()
    assert intake._app.get_state({"configurable": {"thread_id": item.thread_id}}).values["outcome"] == "restart"


def _fleet_and_index(intake: AlertIntake) -> tuple[Any, Any]:
    from it_support_agent.tools.infrastructure import open_infrastructure

    infra = open_infrastructure(intake._context.fleet_path, intake._context.state_path)
    return infra.fleet, infra.index


def test_two_approvals_given_at_once_restart_once_and_the_second_is_told_why(state_dir: Path) -> None:
    waiting = cli(state_dir, "run", "payment-server-01 is extremely slow", "--autonomy", "approve", "--json")
    assert waiting.returncode == 3, waiting.stderr
    thread_id = json.loads(waiting.stdout)["thread_id"]
    env = {key: value for key, value in os.environ.items() if key not in ("MODEL_NAME", "OPENAI_API_KEY")}
    env["IT_SUPPORT_STATE_DIR"] = str(state_dir)
    command = [sys.executable, "-m", "it_support_agent", "resume", thread_id, "--approve", "--json"]
    answers = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = sorted((process.wait(60), *process.communicate()) for process in answers)
    (first, out, _), (second, _, err) = results
    assert first == 0 and json.loads(out)["outcome"] == "restart"
    assert second == 2 and "is not waiting for an answer (outcome: restart)" in err
    assert restarts(state_dir) == 1
    intents = [event for event in open_store(state_dir).audit_events(thread_id) if event["kind"] == "action_intent"]
    assert len(intents) == 1


def test_a_read_only_state_directory_gives_one_line_and_the_ticket_on_stdout(small_disk: Path) -> None:
    state_dir = small_disk / "state"
    assert cli(state_dir, "run", "search-index-09 is failing").returncode == 0  # a store that worked before
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        done = cli(state_dir, "run", "payment-server-01 is extremely slow", "--json")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "read-only" in errors[0] and "printed" in errors[0], done.stderr
    ticket = json.loads(done.stdout)["ticket"]  # written nowhere, so it is on stdout for the caller to keep
    assert ticket["incident"] == "payment-server-01 is extremely slow" and ticket["delivery"]["status"] == "failed"
    assert restarts(state_dir) == 0  # nothing restarted on a store that cannot record it
