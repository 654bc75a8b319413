"""Fitting a conversation to the prompt budget, and adding up model usage across nodes."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from it_support_agent.incident.usage import add_usage, call_usage
from it_support_agent.nodes.model.prompt_budget import CUT_MARK, MAX_BRIEF_CHARS, NOT_RUN, SUPERSEDED, fit_prompt
from it_support_agent.tools.incident_tools import DIAGNOSIS_TOOLS

BRIEF = HumanMessage(
    content=json.dumps(
        {"incident": "payment-server-01 slow", "server_id": "payment-server-01", "symptom": "slow or timing out"}
    )
)


def call(name: str, call_id: str) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": {"server_id": "payment-server-01"}, "id": call_id, "type": "tool_call"}],
    )


def result(name: str, call_id: str, payload: str = "x") -> ToolMessage:
    artifact = {"status": "success", "data": {"payload": payload}}
    return ToolMessage(content=json.dumps(artifact), tool_call_id=call_id, name=name, artifact=artifact)


def fitted(messages: list[BaseMessage], budget: int = 5_000) -> list[BaseMessage]:
    return fit_prompt("system text", messages, DIAGNOSIS_TOOLS, budget).messages


def test_only_the_newest_successful_result_of_a_tool_is_sent_in_full() -> None:
    messages = fitted(
        [
            BRIEF,
            call("fetch_recent_logs", "a"),
            result("fetch_recent_logs", "a", "old"),
            call("fetch_recent_logs", "b"),
            result("fetch_recent_logs", "b", "new"),
        ]
    )
    assert [message.content for message in messages if isinstance(message, ToolMessage)] == [
        SUPERSEDED,
        json.dumps({"status": "success", "data": {"payload": "new"}}),
    ]


def test_unanswered_tool_calls_get_an_answer_and_malformed_ones_are_dropped() -> None:
    malformed = AIMessage(
        content="",
        invalid_tool_calls=[
            {"name": "get_server_health", "args": "{", "id": "bad", "error": "json", "type": "invalid_tool_call"}
        ],
    )
    messages = fitted(
        [BRIEF, call("get_server_health", "a"), malformed, ToolMessage(content="orphan", tool_call_id="zzz")]
    )
    assert [type(message).__name__ for message in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert messages[2].content == NOT_RUN
    assert isinstance(messages[3], AIMessage) and not messages[3].invalid_tool_calls
    assert "malformed tool call was ignored" in str(messages[3].content)


def test_a_long_brief_is_shortened_and_stays_valid_json() -> None:
    long_brief = HumanMessage(content=json.dumps({"incident": '"\\' * 4_000, "server_id": "payment-server-01"}))
    prompt = fit_prompt("system", [long_brief], DIAGNOSIS_TOOLS)
    brief = json.loads(str(prompt.messages[0].content))
    assert brief["server_id"] == "payment-server-01"
    assert brief["incident"].endswith(CUT_MARK)
    assert MAX_BRIEF_CHARS // 2 < len(str(prompt.messages[0].content)) <= MAX_BRIEF_CHARS
    assert prompt.cut


def test_over_budget_the_largest_message_is_cut_until_the_prompt_fits() -> None:
    big = [call("fetch_recent_logs", "a"), result("fetch_recent_logs", "a", "y" * 40_000)]
    prompt = fit_prompt("system", [BRIEF, *big], DIAGNOSIS_TOOLS, budget_tokens=3_000)
    assert prompt.estimated_tokens <= 3_000
    assert prompt.cut and str(prompt.messages[-1].content).endswith(CUT_MARK)
    assert prompt.messages[0] is BRIEF


def test_the_brief_is_never_halved_other_messages_are_cut_instead() -> None:
    brief = HumanMessage(content=json.dumps({"incident": "slow " * 1_100, "server_id": "payment-server-01"}))
    big = [call("fetch_recent_logs", "a"), result("fetch_recent_logs", "a", "y" * 4_000)]
    prompt = fit_prompt("system", [brief, *big], DIAGNOSIS_TOOLS, budget_tokens=2_400)
    assert prompt.estimated_tokens <= 2_400
    assert prompt.messages[0] is brief and str(prompt.messages[-1].content).endswith(CUT_MARK)


def test_runaway_tool_call_arguments_are_not_quoted_back() -> None:
    runaway = AIMessage(
        content="",
        tool_calls=[{"name": "get_server_health", "args": {"server_id": "x" * 20_000}, "id": "a", "type": "tool_call"}],
    )
    messages = fitted([BRIEF, runaway, result("get_server_health", "a")])
    assert isinstance(messages[1], AIMessage)
    assert messages[1].tool_calls[0]["args"] == {"omitted": "arguments over 500 characters"}
    assert messages[1].tool_calls[0]["id"] == "a"


def test_a_prompt_within_budget_is_sent_unchanged() -> None:
    messages = [BRIEF, call("get_server_health", "a"), result("get_server_health", "a")]
    prompt = fit_prompt("system", messages, DIAGNOSIS_TOOLS)
    assert not prompt.cut
    assert [message.content for message in prompt.messages] == [message.content for message in messages]


def test_usage_adds_up_across_calls_and_nodes() -> None:
    reported = AIMessage(content="", usage_metadata={"input_tokens": 900, "output_tokens": 20, "total_tokens": 920})
    first = call_usage("diagnose", reported, prompt_estimate=850, completion_estimate=15, latency_s=0.25)
    second = call_usage(
        "diagnose", AIMessage(content="ok"), prompt_estimate=1_100, completion_estimate=5, latency_s=0.1
    )
    failed = call_usage("decide", None, prompt_estimate=1_200, completion_estimate=0, latency_s=2.0)
    total = add_usage(add_usage(add_usage({}, first), second), failed)
    assert (total["model_calls"], total["estimated_calls"], total["failed_calls"]) == (3, 1, 1)
    assert (total["prompt_tokens"], total["completion_tokens"], total["total_tokens"]) == (2_000, 25, 2_025)
    assert total["max_prompt_tokens"] == 1_100
    assert total["latency_ms"] == 2_350.0
    assert total["nodes"]["diagnose"]["model_calls"] == 2 and total["nodes"]["decide"]["failed_calls"] == 1
    assert first["nodes"]["diagnose"]["model_calls"] == 1  # the reducer does not mutate its inputs
