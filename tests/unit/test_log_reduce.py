"""Log reduction: repeats collapsed with a count, errors then warnings first, the rest sampled, a hard budget."""

from __future__ import annotations

import json
from typing import Any

import pytest

from it_support_agent.tools.log_reduce import DEFAULT_BUDGET_TOKENS, clean_line, estimate_tokens, reduce_logs
from tests.prompt_sizes import server_logs


def shown_cost(digest: dict[str, Any]) -> int:
    """What the shown lines cost as the model receives them (a JSON list), by the same estimate."""
    return estimate_tokens(json.dumps(digest["shown_lines"], ensure_ascii=False))


def test_identical_lines_apart_from_numbers_collapse_with_a_count() -> None:
    lines = [
        f"2026-11-27T10:00:{second:02d}Z ERROR connection refused: db-01:5432 (attempt {second})"
        for second in range(40)
    ]
    digest = reduce_logs(lines)
    assert digest["shown_lines"] == [lines[0] + " [repeated 40x]"]
    assert (digest["total_lines"], digest["distinct_lines"], digest["omitted_lines"]) == (40, 1, 0)


def test_errors_then_warnings_are_kept_before_routine_lines_when_the_budget_is_tight() -> None:
    routine = [f"INFO request {word} served" for word in ("alpha", "beta", "gamma", "delta", "omega", "sigma")]
    lines = [*routine, "WARN queue depth high", *routine, "ERROR worker pool exhausted", *routine]
    digest = reduce_logs(lines, budget_tokens=16)
    assert digest["shown_lines"] == ["WARN queue depth high", "ERROR worker pool exhausted"]
    assert digest["omitted_lines"] == len(lines) - 2


def test_routine_lines_are_sampled_across_the_whole_period() -> None:
    lines = [
        f"INFO job {'abcdefghijklmnopqrstuvwxyz'[index % 26]}{'zyxwvutsrqponmlkjihgfedcba'[index // 26]} done"
        for index in range(26 * 26)
    ]
    shown = reduce_logs(lines, budget_tokens=60)["shown_lines"]
    positions = [lines.index(line) for line in shown]
    assert positions == sorted(positions)  # shown in time order
    assert positions[0] < len(lines) // 4 and positions[-1] > 3 * len(lines) // 4


@pytest.mark.parametrize("count", [10, 1_000, 100_000])
def test_the_digest_stays_within_its_budget_at_any_size(count: int) -> None:
    digest = reduce_logs(server_logs(count))
    assert digest["estimated_tokens"] <= DEFAULT_BUDGET_TOKENS
    assert shown_cost(digest) <= DEFAULT_BUDGET_TOKENS
    assert digest["total_lines"] == count + 1
    assert digest["omitted_lines"] + sum(_count(line) for line in digest["shown_lines"]) == count + 1
    assert any("worker pool exhausted" in line for line in digest["shown_lines"])


def test_hostile_lines_are_cleaned_and_bounded() -> None:
    line = clean_line("ERROR \x1b[31mred\x00\x07 " + "x" * 10_000)
    assert "\x1b" not in line and "\x00" not in line
    assert len(line) == 300


def test_the_estimate_does_not_undercount_non_english_text() -> None:
    assert estimate_tokens("a" * 400) == 100
    assert estimate_tokens("障害" * 100) == 200


def _count(line: str) -> int:
    return int(line.rsplit("[repeated ", 1)[1].rstrip("x]")) if line.endswith("x]") else 1
