"""The audit trail fails closed: no restart it cannot record, and a damaged entry never hides the others."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from it_support_agent.tools.store import open_store
from tests.integration.helpers import run_cli as cli

REPO = Path(__file__).resolve().parents[2]


def test_no_restart_runs_when_the_audit_trail_cannot_be_written(state_dir: Path) -> None:
    open_store(state_dir)
    with sqlite3.connect(state_dir / "checkpoints.sqlite") as connection:  # every audit insert now fails
        connection.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON agent_audit BEGIN SELECT RAISE(FAIL, 'disk I/O error'); END"
        )
    done = cli(state_dir, "run", "payment-server-01 is extremely slow", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "escalate"
    assert "restart refused: the audit trail cannot be written" in result["ticket"]["reason"]
    assert "audit event action_intent of" in done.stderr and "not written" in done.stderr
    assert not (state_dir / "fleet-state.json").exists()  # nothing was restarted


def test_a_damaged_audit_entry_is_shown_and_the_rest_still_listed(state_dir: Path) -> None:
    assert cli(state_dir, "run", "search-index-09 is failing").returncode == 0
    with sqlite3.connect(state_dir / "checkpoints.sqlite") as connection:
        total = connection.execute("SELECT COUNT(*) FROM agent_audit").fetchone()[0]
        connection.execute("UPDATE agent_audit SET event = X'7b22ff' WHERE id = 2")  # '{"' and a byte not UTF-8
    done = cli(state_dir, "audit", "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(events) == total and events[1]["kind"] == "unreadable_event"
