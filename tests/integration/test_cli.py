"""The command line as a subprocess: JSON output, exit codes, bad input, approval and resume across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from it_support_agent.tools.outbox import read_outbox

REPO = Path(__file__).resolve().parents[2]


def cli(state_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MODEL_NAME", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FLEET_FILE", "AUTONOMY")
    }
    env["IT_SUPPORT_STATE_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, "-m", "it_support_agent", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_json(state_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = cli(state_dir, "run", *args, "--json")
    assert done.stderr == "" or "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_run_json_seed_restart(state_dir: Path) -> None:
    code, result = run_json(state_dir, "The payment-server-01 is extremely slow and timing out")
    assert code == 0
    assert result["outcome"] == "restart"
    assert result["server_id"] == "payment-server-01"
    assert [step["action"] for step in result["actions"]] == [
        "get_server_health",
        "fetch_recent_logs",
        "decide",
        "policy_check",
        "restart_service",
        "verify_health",
    ]
    assert result["ticket"] is None
    assert result["model"] == "offline triage model"
    assert result["thread_id"].startswith("inc-")
    assert (state_dir / "checkpoints.sqlite").exists()


def test_run_json_seed_escalation_and_trace(state_dir: Path) -> None:
    code, result = run_json(state_dir, "search-index-09 stopped indexing")
    assert code == 0 and result["outcome"] == "escalate"
    assert result["diagnosis"]["category"] == "dependency_failure"
    assert result["ticket"]["id"].startswith("INC-")
    trace = cli(state_dir, "run", "search-index-09 stopped indexing")
    assert trace.returncode == 0
    assert "model calls get_server_health" in trace.stdout
    assert "escalate_to_engineer" in trace.stdout


def test_restart_persists_in_state_dir_for_a_later_process(state_dir: Path) -> None:
    run_json(state_dir, "payment-server-01 slow")
    _, second = run_json(state_dir, "payment-server-01 still slow?")
    assert second["health"]["status"] == "healthy"
    assert second["outcome"] == "none"
    written = [path for path in state_dir.rglob("*") if path.is_file()]
    assert written and all(path.stat().st_mode & 0o077 == 0 for path in written), "state files are the user's only"


@pytest.mark.parametrize("incident", ["", "   ", "\n\t"])
def test_empty_incident_is_a_one_line_error(state_dir: Path, incident: str) -> None:
    done = cli(state_dir, "run", incident)
    assert done.returncode == 2
    assert done.stderr.startswith("error: the incident text is empty")
    assert "Traceback" not in done.stderr


def test_incident_from_stdin(state_dir: Path) -> None:
    done = cli(state_dir, "run", "-", "--json", stdin="web-frontend-05 seems slow")
    assert json.loads(done.stdout)["outcome"] == "none"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "fleet file not found"),
        ("servers:\n  a-1:\n    service: x\n    health: {cpu_percent: 5\n", "line"),
        (
            "servers:\n  a-1:\n    health: {cpu_percent: 5, status: healthy}\n    logs: []\n",
            "missing required field 'service'",
        ),
        ("servers:\n  a-1:\n    service: x\n    logs: []\n", "missing required field 'health'"),
        ("servers:\n  a-1:\n    service: x\n    health: {cpu_percent: high}\n", "health.cpu_percent must be a number"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_fleet_files_are_one_line_errors(
    state_dir: Path, tmp_path: Path, content: str | None, message: str
) -> None:
    fleet = tmp_path / "fleet.yaml"
    if content is not None:
        fleet.write_text(content)
    done = cli(state_dir, "run", "a-1 is slow", "--fleet", str(fleet))
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_missing_api_key_for_openai_names_the_variable(state_dir: Path) -> None:
    done = cli(state_dir, "run", "payment-server-01 slow", "--model", "gpt-4o")
    assert done.returncode == 2
    assert "OPENAI_API_KEY" in done.stderr


def test_approve_then_resume_in_a_new_process(state_dir: Path) -> None:
    code, waiting = run_json(state_dir, "payment-server-01 is slow", "--autonomy", "approve")
    assert code == 3
    assert waiting["outcome"] == "awaiting_approval"
    request = waiting["request"]
    assert request["type"] == "approve_restart" and request["server_id"] == "payment-server-01"
    assert request["service"] == "payment-api" and request["thread_id"] == waiting["thread_id"]
    assert not (state_dir / "fleet-state.json").exists()
    listing = cli(state_dir, "list")
    assert "awaiting approval" in listing.stdout
    done = cli(state_dir, "resume", waiting["thread_id"], "--approve", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "restart"
    again = cli(state_dir, "resume", waiting["thread_id"], "--approve")
    assert again.returncode == 2 and "is not waiting" in again.stderr
    fleet_state = json.loads((state_dir / "fleet-state.json").read_text())
    assert fleet_state["servers"]["payment-server-01"]["restart_count"] == 1
    shown = cli(state_dir, "show", waiting["thread_id"])
    assert "restart_service" in shown.stdout and "status: restarted" in shown.stdout


def test_reject_escalates_with_the_operator_comment(state_dir: Path) -> None:
    _, waiting = run_json(state_dir, "payment-server-01 is slow", "--autonomy", "approve")
    done = cli(state_dir, "resume", waiting["thread_id"], "--reject", "--comment", "deploy freeze", "--json")
    result = json.loads(done.stdout)
    assert result["outcome"] == "escalate"
    assert result["ticket"]["operator_comment"] == "deploy freeze"
    assert "operator rejected the restart: deploy freeze" in result["ticket"]["reason"]
    assert not (state_dir / "fleet-state.json").exists()


def test_resume_of_unknown_thread_is_a_clear_error(state_dir: Path) -> None:
    done = cli(state_dir, "resume", "inc-does-not-exist", "--approve")
    assert done.returncode == 2
    assert "unknown thread 'inc-does-not-exist'" in done.stderr


def test_audit_trail_records_the_verdict_and_the_action(state_dir: Path) -> None:
    _, result = run_json(state_dir, "payment-server-01 is slow")
    done = cli(state_dir, "audit", result["thread_id"])
    kinds = [json.loads(line)["kind"] for line in done.stdout.splitlines()]
    assert kinds == ["tool_call", "tool_call", "model_decision", "policy_verdict", "action_intent", "action_result"]
    first = json.loads(done.stdout.splitlines()[0])
    assert first["tool"] == "get_server_health" and first["status"] == "success"
    assert first["thread_id"] == result["thread_id"] and first["ts"].endswith("Z")


def test_interactive_terminal_asks_and_applies_the_answer(state_dir: Path) -> None:
    controller, terminal = os.openpty()
    env = {key: value for key, value in os.environ.items() if key not in ("MODEL_NAME", "OPENAI_API_KEY")}
    env["IT_SUPPORT_STATE_DIR"] = str(state_dir)
    os.write(controller, b"n\nnot during the sale\n")
    done = subprocess.run(
        [sys.executable, "-m", "it_support_agent", "run", "payment-server-01 is slow", "--autonomy", "approve"],
        cwd=REPO,
        env=env,
        stdin=terminal,
        capture_output=True,
        text=True,
        timeout=120,
    )
    os.close(controller)
    os.close(terminal)
    assert done.returncode == 0, done.stderr
    assert "Approve the restart?" in done.stdout
    assert "outcome: escalate" in done.stdout
    assert "operator rejected the restart: not during the sale" in done.stdout
    assert not (state_dir / "fleet-state.json").exists()


def test_a_misconfigured_sink_is_reported_and_the_ticket_still_filed(state_dir: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("IT_SUPPORT_SLACK_WEBHOOK_URL", "https://user:secret@hooks.example/services/T0/B0/XYZ")
    done = cli(state_dir, "run", "search-index-09 is failing", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: slack sink: IT_SUPPORT_SLACK_WEBHOOK_URL must not embed credentials")
    assert "secret" not in done.stderr + done.stdout
    result = json.loads(done.stdout)
    assert result["outcome"] == "escalate"
    ticket_id = result["ticket"]["id"]
    assert [ticket["id"] for ticket in read_outbox(state_dir / "tickets.jsonl")] == [ticket_id]
    spooled = json.loads((state_dir / "spool" / f"{ticket_id}.json").read_text())
    assert spooled["pending_sinks"] == ["slack"]  # delivered by `flush` once the variable is fixed
    for command in ("list", "audit"):
        assert cli(state_dir, command).returncode == 0, command


def test_which_server_question_answered_from_another_process(state_dir: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("IT_SUPPORT_INTERACTIVE", "always")
    code, waiting = run_json(state_dir, "the indexer box stopped indexing")
    assert code == 3 and waiting["request"]["type"] == "choose_server"
    assert "search-index-09" in waiting["request"]["candidates"]
    done = cli(state_dir, "resume", waiting["thread_id"], "--server", "search-index-09", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["server_id"] == "search-index-09" and result["outcome"] == "escalate"
    assert "operator chose server search-index-09" in result["notes"]


def test_output_cut_short_by_a_closed_pipe_ends_quietly(state_dir: Path) -> None:
    for number in range(3):
        run_json(state_dir, f"search-index-09 is failing, report {number}")
    env = {**os.environ, "IT_SUPPORT_STATE_DIR": str(state_dir)}
    done = subprocess.run(
        f"{sys.executable} -m it_support_agent audit | head -c 10",
        shell=True,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(done.stdout) == 10
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_resume_without_fleet_continues_under_the_fleet_the_incident_was_decided_with(
    state_dir: Path, tmp_path: Path
) -> None:
    fleet = tmp_path / "my-fleet.yaml"
    fleet.write_text((REPO / "scenarios" / "demo-fleet.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    code, waiting = run_json(state_dir, "payment-server-01 is slow", "--autonomy", "approve", "--fleet", str(fleet))
    assert code == 3
    done = cli(state_dir, "resume", waiting["thread_id"], "--approve", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "restart"


def test_prune_forgets_old_finished_incidents_and_keeps_their_audit_and_tickets(state_dir: Path) -> None:
    import sqlite3

    from it_support_agent.tools.store import open_store

    # (orders-db-01: a full disk, one ticket per incident; repeated dependency failures of one server would be one
    # storm ticket)
    old_ids = [run_json(state_dir, f"orders-db-01 is failing, report {n}")[1]["thread_id"] for n in range(2)]
    _, recent = run_json(state_dir, "orders-db-01 is failing again")
    database = state_dir / "checkpoints.sqlite"
    with sqlite3.connect(database) as connection:  # two of them happened 40 days ago
        connection.executemany(
            "UPDATE agent_threads SET created_at = created_at - 40 * 86400 WHERE thread_id = ?", [(t,) for t in old_ids]
        )
    dry = cli(state_dir, "prune", "--older-than", "30", "--dry-run", "--json")
    assert dry.returncode == 0 and sorted(json.loads(dry.stdout)["threads"]) == sorted(old_ids)
    done = cli(state_dir, "prune", "--older-than", "30", "--vacuum")
    assert done.returncode == 0 and done.stdout.startswith("forgot 2 finished incident(s) older than 30 days")
    listed = cli(state_dir, "list").stdout
    assert recent["thread_id"] in listed and not any(thread in listed for thread in old_ids)
    with sqlite3.connect(database) as connection:
        left = {row[0] for row in connection.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert left == {recent["thread_id"]}
    store = open_store(state_dir)
    assert all(list(store.audit_events(thread)) for thread in old_ids)  # the audit trail is kept
    assert len([t for t in store.tickets() if t["thread_id"] in old_ids]) == 2
    assert cli(state_dir, "prune", "--older-than", "0").returncode == 2
