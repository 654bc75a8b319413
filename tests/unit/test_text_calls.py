"""Calls a model wrote as text, decide answers in the schema form, and the lines a model cites."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage

from it_support_agent.nodes.decide import cited_line, schema_answer_as_call, second_reading
from it_support_agent.nodes.model.text_calls import call_in_text, with_text_call
from it_support_agent.tools.incident_tools import DECISION_TOOLS, DIAGNOSIS_TOOLS

TOOLS = [*DIAGNOSIS_TOOLS, *DECISION_TOOLS]
RESTART = {"name": "restart_service", "arguments": {"server_id": "web-01"}}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(RESTART),
        "  " + json.dumps(RESTART) + "\n",
        "```json\n" + json.dumps(RESTART, indent=2) + "\n```",
        "```\n" + json.dumps(RESTART) + "\n```",
        "<tool_call>\n" + json.dumps(RESTART) + "\n</tool_call>",
        json.dumps({"name": "restart_service", "parameters": {"server_id": "web-01"}}),
        json.dumps({"function": {"name": "restart_service", "arguments": json.dumps({"server_id": "web-01"})}}),
        json.dumps({"tool": "restart_service", "args": {"server_id": "web-01"}}),
    ],
)
def test_the_forms_small_models_write_are_read_as_the_call(text: str) -> None:
    call = call_in_text(text, TOOLS)
    assert call is not None
    assert (call["name"], call["args"]) == ("restart_service", {"server_id": "web-01"})


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("I will restart it: " + json.dumps(RESTART), "prose before the object"),
        (json.dumps(RESTART) + " and then escalate", "prose after the object"),
        (json.dumps(RESTART) + "\n" + json.dumps(RESTART), "two objects"),
        (json.dumps({"name": "delete_volume", "arguments": {"server_id": "web-01"}}), "a tool it was not offered"),
        (json.dumps({"name": "restart_service", "arguments": {}}), "a required argument missing"),
        (json.dumps({"name": "restart_service", "arguments": {"server_id": 7}}), "an argument of the wrong type"),
        (
            json.dumps({"name": "restart_service", "arguments": {"server_id": "web-01", "force": True}}),
            "an argument the tool does not take",
        ),
        (
            json.dumps({"name": "restart_service", "arguments": {"server_id": "web-01"}, "then": "rm -rf"}),
            "a key beside the call",
        ),
        (json.dumps({"name": "restart_service", "arguments": "{not json"}), "arguments that are not JSON"),
        ('{"name": "restart_service", "arguments": {"server_id": "web-01"}', "a cut-off object"),
        (json.dumps([RESTART]), "a list"),
        (json.dumps({"name": "restart_service", "arguments": {"server_id": "x" * 9_000}}), "a huge answer"),
        ("", "nothing"),
    ],
)
def test_anything_else_is_no_call(text: str, why: str) -> None:
    assert call_in_text(text, TOOLS) is None, why


def test_a_call_is_only_read_from_text_when_the_reply_has_no_call_of_its_own() -> None:
    native = AIMessage(
        content=json.dumps(RESTART), tool_calls=[{"name": "close_no_fault", "args": {"reason": "ok"}, "id": "1"}]
    )
    assert with_text_call(native, TOOLS) == (native, "")
    parsed, note = with_text_call(AIMessage(content=json.dumps(RESTART)), TOOLS)
    assert [call["name"] for call in parsed.tool_calls] == ["restart_service"] and parsed.content == ""
    assert "as text" in note
    # only the tools offered at this step count: a decision written during diagnosis is no call
    unchanged, note = with_text_call(AIMessage(content=json.dumps(RESTART)), DIAGNOSIS_TOOLS)
    assert unchanged.tool_calls == [] and note == ""


def test_a_schema_answer_becomes_the_decision_tool_call_it_names() -> None:
    answer = {
        "hypothesis": "worker pool exhausted",
        "blocking_lines": [],
        "decision": "escalate_to_engineer",
        "server_id": "web-01",
        "summary": "pool exhausted while the database refuses connections",
    }
    call = schema_answer_as_call(AIMessage(content=json.dumps(answer))).tool_calls[0]
    assert call["name"] == "escalate_to_engineer"
    assert call["args"] == {"summary": answer["summary"], "hypothesis": answer["hypothesis"], "blocking_lines": []}
    for broken in (
        {**answer, "decision": "reboot_host"},
        {key: value for key, value in answer.items() if key != "summary"},
        {**answer, "extra": 1},
        {**answer, "blocking_lines": "all of them"},
    ):
        assert schema_answer_as_call(AIMessage(content=json.dumps(broken))).tool_calls == [], broken
    assert schema_answer_as_call(AIMessage(content="restart it")).tool_calls == []


EVIDENCE = [
    "2026-11-27T10:00:01Z ERROR worker pool exhausted: 200/200 threads busy",
    "2026-11-27T10:00:02Z ERROR could not write /var/lib/app/queue.db: No space left on device",
]


@pytest.mark.parametrize(
    "cited",
    [
        EVIDENCE[1],
        "  could not write /var/lib/app/queue.db: No space left on device ",
        "`No space left on device`",
        "> " + EVIDENCE[1],
        EVIDENCE[1] + " [repeated 12x]",
        "could not write   /var/lib/app/queue.db:  No space left on device",
    ],
)
def test_a_cited_line_counts_when_the_evidence_holds_it_verbatim(cited: str) -> None:
    assert cited_line(cited, EVIDENCE) == EVIDENCE[1]


@pytest.mark.parametrize(
    "cited",
    ["ERROR", "disk is full", "No space left on device on /data", "2026-11-27T10:00:03Z ERROR disk full", "   "],
)
def test_a_misquoted_invented_or_too_short_citation_does_not(cited: str) -> None:
    assert cited_line(cited, EVIDENCE) is None


def test_the_second_reading_keeps_found_lines_and_reports_the_rest() -> None:
    reading = second_reading(
        {
            "hypothesis": "the disk \x1b[31mfilled\x1b[0m up",
            "blocking_lines": ["No space left on device", "the database is on fire", 42, EVIDENCE[1]],
        },
        EVIDENCE,
    )
    assert reading["blocking_lines"] == [EVIDENCE[1]]
    assert reading["uncited_lines"] == ["the database is on fire"]
    assert "\x1b" not in reading["hypothesis"]
    assert second_reading({"blocking_lines": "everything"}, EVIDENCE) == {}
