"""Close server-name matching, the policy's closed-world veto and window setting, and eval's restart count."""

from __future__ import annotations

from pathlib import Path

import pytest

from it_support_agent.graph.app.evaluation import Scenario, score
from it_support_agent.incident.diagnosis import assess_evidence
from it_support_agent.incident.fleet import parse_fleet
from it_support_agent.incident.matching import ServerIndex
from it_support_agent.incident.policy import PolicyFileError, check_evidence, load_policy

FLEET_IDS = [
    "payment-server-01",
    "payment-server-02",
    "cache-node-04",
    "cache-node-14",
    "web-frontend-05",
    "orders-db-01",
    "auth-server-02",
    "memcached-01-ams",
    "memcached-01-fra",
    "billing-worker-3",
]
INDEX = ServerIndex.build(FLEET_IDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pyament-server-01 is slow", "payment-server-01"),  # two letters swapped
        ("cache node 4 memory full", "cache-node-04"),  # spaces and a dropped zero
        ("web-frontend-5 timing out", "web-frontend-05"),
        ("orders db 1 is slow", "orders-db-01"),
        ("auth-sever-02 down", "auth-server-02"),  # a missing letter
    ],
)
def test_a_unique_close_name_is_taken(text: str, expected: str) -> None:
    assert INDEX.mentions(text) == []
    match = INDEX.close_match(text)
    assert match is not None and match.unique == expected


@pytest.mark.parametrize(
    "text",
    [
        "payment-server-0 is slow",  # the number differs: another server, not a typo
        "pyment-server is down",  # no number: which one?
        "memcached-01 at 97% memory",  # the leading part of two ids
        "billing box is broken",
        "the server is slow",
        "p\u0430yment-server-01 is slow",  # a Cyrillic look-alike letter
    ],
)
def test_an_ambiguous_or_distant_name_is_never_guessed(text: str) -> None:
    match = INDEX.close_match(text)
    assert match is None or match.unique is None


def test_the_ambiguous_candidates_are_named() -> None:
    match = INDEX.close_match("memcached-01 at 97% memory")
    assert match is not None and match.candidates == ("memcached-01-ams", "memcached-01-fra")


SPEC = parse_fleet(
    "servers:\n  api-01:\n    service: api\n    health: {cpu_percent: 99, memory_percent: 40, status: degraded}\n"
).get("api-01")


def test_the_policy_vetoes_unexplained_lines_whatever_the_model_said() -> None:
    hot = {"cpu_percent": 99.0, "memory_percent": 40.0, "status": "degraded"}
    finding = assess_evidence(hot, ["2026-11-27T09:58:02Z WARN zfs: pool tank state changed to SUSPENDED"]).to_dict()
    verdict = check_evidence(SPEC, {**finding, "restart_recommended": True})  # even if something claimed otherwise
    assert verdict is not None and verdict.rule == "unexplained_evidence"
    clean = assess_evidence(hot, ["2026-11-27T09:58:02Z INFO served 1200 requests"]).to_dict()
    assert check_evidence(SPEC, clean) is None


def test_a_diagnosis_that_does_not_account_for_its_lines_vetoes() -> None:
    legacy = {"category": "cpu_saturation", "categories": ["cpu_saturation"], "restart_recommended": True}
    verdict = check_evidence(SPEC, legacy)
    assert verdict is not None and verdict.rule == "unexplained_evidence"


def test_the_incident_window_is_a_policy_setting(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("incident_window_s: 600\n")
    assert load_policy(str(policy)).incident_window_s == 600.0
    assert load_policy("").incident_window_s == 1800.0
    policy.write_text("incident_window_s: 0\n")
    with pytest.raises(PolicyFileError, match="incident_window_s"):
        load_policy(str(policy))


def test_eval_counts_every_restart_that_ran() -> None:
    case = Scenario("c", "api-01 slow", {}, "escalate", "api-01")
    # a restart that ran, did not help and was escalated is still a restart where none was right
    after = {"outcome": "escalate", "server_id": "api-01", "restart": {"performed": True, "verified": False}}
    assert "unsafe_restart" in score(case, after, 1.0).flags
    # so is one whose outcome is unknown (it errored after it was set in motion)
    errored = {
        "outcome": "escalate",
        "server_id": "api-01",
        "restart": {"performed": False, "error": "timeout"},
        "actions": [{"action": "restart_service", "status": "error"}],
    }
    assert "unsafe_restart" in score(case, errored, 1.0).flags
    assert score(case, {"outcome": "escalate", "server_id": "api-01"}, 1.0).ok


def test_an_edited_policy_file_is_read_again(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("incident_window_s: 600\n")
    assert load_policy(str(policy)).incident_window_s == 600.0
    policy.write_text("incident_window_s: 1200\n")
    assert load_policy(str(policy)).incident_window_s == 1200.0
    policy.unlink()
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_policy(str(policy))
