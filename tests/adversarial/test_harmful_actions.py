"""Harmful actions from odd input: several servers named, "do not restart", a policy edited under an approval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import IncidentRunner


def test_an_incident_naming_several_servers_restarts_none_of_them(runner: Any) -> None:
    result = runner().run("payment-server-01 is healthy, do NOT restart it; web-frontend-05 looks slow")
    assert result["server_id"] is None and result["outcome"] == "escalate" and not result.get("restart")
    assert "several servers (payment-server-01, web-frontend-05)" in result["ticket"]["reason"]


def test_an_incident_that_says_not_to_restart_is_never_restarted(runner: Any) -> None:
    result = runner().run("payment-server-01 is the last node in the pool, do NOT restart it, page the DBA")
    assert result["server_id"] == "payment-server-01" and result["outcome"] == "escalate"
    assert not result.get("restart") and "operator_instruction" in result["ticket"]["reason"]


def test_a_policy_edited_while_an_approval_waits_is_not_obeyed_for_it(tmp_path: Path, state_dir: Path) -> None:
    from langgraph.types import Command

    policy = tmp_path / "policy.yaml"
    policy.write_text("restart_cooldown_s: 600\n", encoding="utf-8")
    runner = IncidentRunner(state_dir, autonomy="approve", policy_file=str(policy))
    config = runner.config("approval-then-edit")
    first = runner.app.invoke({"incident": "payment-server-01 is slow"}, config, context=runner.context)
    assert "__interrupt__" in first
    policy.write_text("restart_cooldown_s: 0\n", encoding="utf-8")
    result = runner.app.invoke(Command(resume={"decision": "approve"}), config, context=runner.context)
    assert result["outcome"] == "escalate" and not (result.get("restart") or {}).get("performed")
    assert "configuration" in result["escalation_reason"] and "changed" in result["escalation_reason"]


def test_terminal_escapes_and_control_bytes_in_the_incident_never_reach_the_ticket(runner: Any) -> None:
    result = runner().run("search-index-09 is failing \x1b[31mRED\x1b[0m \x1b]0;owned\x07 bell\x07 end\nsecond line")
    incident = result["ticket"]["incident"]
    assert "\x1b" not in incident and "\x07" not in incident
    assert incident.startswith("search-index-09 is failing RED") and incident.endswith("end\nsecond line")


def test_an_over_long_approval_comment_is_cut_with_a_note_not_silently() -> None:
    from it_support_agent.nodes.approve import MAX_COMMENT_CHARS, parse_answer

    answer = parse_answer({"decision": "reject", "comment": "x" * (MAX_COMMENT_CHARS + 250) + "\x1b[2J"})
    assert answer["comment"].endswith("… [cut: 250 more characters]")
    assert answer["comment"].startswith("x" * MAX_COMMENT_CHARS) and "\x1b" not in answer["comment"]


def test_audit_timestamps_never_step_back_within_one_clock(tmp_path: Path) -> None:
    from datetime import datetime

    from it_support_agent.tools.audit import make_event

    stamps = [make_event("t", "tick")["ts"] for _ in range(5000)]  # seconds and milliseconds from one clock read
    parsed = [datetime.fromisoformat(stamp.replace("Z", "+00:00")) for stamp in stamps]
    assert parsed == sorted(parsed)


def test_serves_access_log_drops_terminal_escapes_from_request_lines(caplog: Any) -> None:
    import logging

    from it_support_agent.graph.app.serve import _Handler

    handler = _Handler.__new__(_Handler)  # only its logging is exercised
    handler.client_address = ("127.0.0.1", 1)
    with caplog.at_level(logging.INFO, logger="it_support_agent.graph.app.serve"):
        handler.log_message('"%s" %s', "GET /\x1b]0;pwned\x07\x1b[2J HTTP/1.1", "404")
    (record,) = caplog.records
    assert "\x1b" not in record.getMessage() and "\x07" not in record.getMessage()
    assert "GET /" in record.getMessage() and "404" in record.getMessage()
