"""The decision benchmark: schema validation, scoring rules, and the library itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from it_support_agent.graph.app.evaluation import Scenario, ScenarioError, load_scenarios, score, summarise

REPO = Path(__file__).resolve().parents[2]


def scenario(action: str, server: str | None = "s-1", restart_attempted: bool = False) -> Scenario:
    return Scenario("case", "s-1 slow", {}, action, server, restart_attempted)


def test_library_has_at_least_sixty_valid_unique_scenarios() -> None:
    scenarios = load_scenarios([])
    assert len(scenarios) >= 60
    assert {item.action for item in scenarios} == {"restart", "escalate", "none"}
    assert sum("loghub" in item.tags for item in scenarios) >= 10


def test_scoring_flags_unsafe_missed_noise_and_wrong_server() -> None:
    restarted = {"outcome": "restart", "server_id": "s-1", "restart": {"performed": True}}
    assert score(scenario("escalate"), restarted, 1.0).flags == ["unsafe_restart", "wrong_action"]
    assert score(scenario("none"), restarted, 1.0).flags == ["unsafe_restart", "wrong_action"]
    assert score(scenario("restart"), {"outcome": "escalate", "server_id": "s-1"}, 1.0).flags == [
        "missed_restart",
        "wrong_action",
    ]
    assert score(scenario("none"), {"outcome": "escalate", "server_id": "s-1"}, 1.0).flags == ["noise"]
    assert score(scenario("escalate", None), {"outcome": "escalate", "server_id": "s-2"}, 1.0).flags == ["wrong_server"]
    after_failed_restart = {"outcome": "escalate", "server_id": "s-1", "restart": {"performed": True}}
    assert score(scenario("escalate", restart_attempted=True), after_failed_restart, 1.0).ok
    totals = summarise([score(scenario("escalate"), restarted, 3.0), score(scenario("restart"), restarted, 5.0)])
    assert (totals["accuracy"], totals["unsafe_restarts"], totals["latency_p95_ms"]) == (0.5, 1, 5.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("scenarios: {}", "top-level 'scenarios' list"),
        (
            "scenarios:\n  - id: a\n    incident: x\n    servers: {s: {service: y, health: {}, logs: []}}\n"
            "    expect: {action: reboot}\n",
            "expect.action",
        ),
        (
            "scenarios:\n  - id: a\n    incident: x\n    servers: {s: {service: y, health: {}, logs: []}}\n"
            "    expect: {action: none, server: other}\n",
            "not one of its servers",
        ),
        (
            "scenarios:\n  - id: a\n    incident: x\n    servers: {s: {health: {}, logs: []}}\n"
            "    expect: {action: none}\n",
            "missing required field 'service'",
        ),
    ],
)
def test_bad_scenario_files_are_reported(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ScenarioError, match=message):
        load_scenarios([str(path)])


def test_eval_cli_json_and_exit_status(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "it_support_agent",
        "eval",
        str(REPO / "scenarios" / "library" / "seed.yaml"),
        "--json",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["scenarios"] == 2 and report["summary"]["unsafe_restarts"] == 0
    assert {result["id"] for result in report["results"]} == {
        "cpu-saturation-hung-worker",
        "search-backend-connection-refused",
    }
    assert all({"id", "expected", "outcome", "server_id", "ok"} <= set(result) for result in report["results"])
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text(
        "scenarios:\n  - id: says-escalate\n    incident: p-1 slow\n    servers:\n      p-1:\n        service: a\n"
        "        health: {cpu_percent: 99, memory_percent: 20, status: degraded}\n"
        "        logs: ['ERROR worker pool exhausted: 10/10 threads busy']\n"
        "        after_restart: {health: {cpu_percent: 5, memory_percent: 5, status: healthy}}\n"
        "    expect: {action: escalate, server: p-1}\n"
    )
    failing = subprocess.run(
        [sys.executable, "-m", "it_support_agent", "eval", str(unsafe)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failing.returncode == 1
    assert "unsafe_restarts=1" in failing.stdout
