"""Interrupts inside one process: approval answers and asking the operator which server an incident is about."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langgraph.types import Command


def test_approve_mode_pauses_with_a_typed_json_request_then_restarts(runner: Any, state_dir: Path) -> None:
    agent = runner(autonomy="approve")
    config = agent.config("t-approve")
    paused = agent.app.invoke({"incident": "payment-server-01 is slow"}, config, context=agent.context)
    request = paused["__interrupt__"][0].value
    assert json.loads(json.dumps(request)) == request
    assert request["type"] == "approve_restart" and request["thread_id"] == "t-approve"
    assert any("worker pool exhausted" in line for line in request["evidence"])
    assert not (state_dir / "fleet-state.json").exists()
    done = agent.app.invoke(Command(resume={"decision": "approve"}), config, context=agent.context)
    assert done["outcome"] == "restart" and done["restart"]["verified"]


def test_unreadable_approval_answer_counts_as_rejection(runner: Any, state_dir: Path) -> None:
    agent = runner(autonomy="approve")
    config = agent.config("t-odd")
    agent.app.invoke({"incident": "payment-server-01 is slow"}, config, context=agent.context)
    done = agent.app.invoke(Command(resume={"decision": "maybe later"}), config, context=agent.context)
    assert done["outcome"] == "escalate"
    assert "operator rejected" in done["ticket"]["reason"]
    assert not (state_dir / "fleet-state.json").exists()


def test_interactive_run_asks_which_server_and_continues_with_the_choice(runner: Any) -> None:
    agent = runner(interactive="always")
    config = agent.config("t-choose")
    paused = agent.app.invoke({"incident": "the search box stopped indexing"}, config, context=agent.context)
    request = paused["__interrupt__"][0].value
    assert request["type"] == "choose_server"
    assert "search-index-09" in request["candidates"]
    done = agent.app.invoke(Command(resume={"server_id": "search-index-09"}), config, context=agent.context)
    assert done["server_id"] == "search-index-09"
    assert done["outcome"] == "escalate" and done["diagnosis"]["category"] == "dependency_failure"


def test_interactive_choice_of_an_unknown_server_is_escalated(runner: Any) -> None:
    agent = runner(interactive="always")
    config = agent.config("t-choose-bad")
    agent.app.invoke({"incident": "something is off"}, config, context=agent.context)
    done = agent.app.invoke(Command(resume={"server_id": "../../etc/passwd"}), config, context=agent.context)
    assert done["server_id"] is None and done["outcome"] == "escalate"


def test_non_interactive_run_never_asks(runner: Any) -> None:
    done = runner().run("the search box stopped indexing")
    assert "__interrupt__" not in done
    assert done["outcome"] == "escalate" and "server not identified" in done["ticket"]["reason"]


def test_an_alert_without_a_known_server_never_borrows_one_from_its_text(runner: Any, state_dir: Path) -> None:
    agent = runner()
    done = agent.app.invoke(
        {"incident": "HighLatency on 10.20.30.40: calls to payment-server-01 are slow", "alert_server": None},
        agent.config("t-alert"),
        context=agent.context,
    )
    assert done["server_id"] is None and done["outcome"] == "escalate"
    assert not (state_dir / "fleet-state.json").exists()
    named = agent.app.invoke(
        {"incident": "HighCPU firing", "alert_server": "payment-server-01"},
        agent.config("t-alert-2"),
        context=agent.context,
    )
    assert named["server_id"] == "payment-server-01"
