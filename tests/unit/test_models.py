"""Model selection and its configuration: offline by default, ChatOpenAI by name, bad settings named."""

from __future__ import annotations

import pytest
from langchain_openai import ChatOpenAI

from it_support_agent.incident.context import Context
from it_support_agent.nodes.model.chat_models import (
    ModelConfigError,
    decide_format,
    load_chat_model,
    model_budget_s,
    model_label,
    parallel_tool_calls,
)
from it_support_agent.nodes.model.triage_model import OfflineTriageModel

SETTINGS = ("OPENAI_MAX_RETRIES", "OPENAI_TIMEOUT_S", "OPENAI_MAX_TOKENS", "OPENAI_STREAMING", "OPENAI_STREAM_USAGE")


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


def test_offline_is_the_default() -> None:
    assert isinstance(load_chat_model(Context()), OfflineTriageModel)
    assert model_label(Context()) == "offline triage model"


def test_model_name_from_the_environment_and_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_NAME", "gpt-4o")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    assert model_label(Context()) == "LLM gpt-4o"
    assert model_label(Context(model="llama3.1:8b")) == "LLM llama3.1:8b"


def test_chat_openai_is_bounded_and_speaks_chat_completions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "1")
    monkeypatch.setenv("OPENAI_TIMEOUT_S", "2.5")
    model = load_chat_model(Context(model="qwen2.5:7b"))
    assert isinstance(model, ChatOpenAI)
    assert (model.model_name, model.max_retries, model.request_timeout) == ("qwen2.5:7b", 1, 2.5)
    assert model.use_responses_api is False and model.temperature == 0
    assert model.max_tokens == 512 and model.stream_usage is True
    assert "streaming" not in model.model_fields_set  # streams only when the caller streams


def test_each_step_has_its_own_completion_cap_and_one_setting_overrides_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    context = Context(model="qwen2.5:7b")
    caps = [getattr(load_chat_model(context, step), "max_tokens", None) for step in ("diagnose", "decide")]
    assert caps == [384, 512]
    monkeypatch.setenv("OPENAI_MAX_TOKENS", "100")
    assert [getattr(load_chat_model(context, step), "max_tokens", None) for step in ("diagnose", "decide")] == [
        100,
        100,
    ]


@pytest.mark.parametrize(
    ("time_left", "timeout", "retries"),
    [(None, 60.0, 3), (500.0, 60.0, 3), (130.0, 60.0, 1), (45.0, 45.0, 0), (5.0, 5.0, 0)],
)
def test_what_is_left_of_the_time_budget_bounds_the_timeout_and_the_retries(
    monkeypatch: pytest.MonkeyPatch, time_left: float | None, timeout: float, retries: int
) -> None:
    """Attempts times their timeout never add up to more than the time left (60 s and 3 retries configured)."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    model = load_chat_model(Context(model="qwen2.5:7b"), "decide", time_left)
    assert (model.request_timeout, model.max_retries) == (timeout, retries)  # type: ignore[attr-defined]
    if time_left is not None:
        assert timeout * (retries + 1) <= time_left


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY"):
        load_chat_model(Context(model="gpt-4o"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENAI_MAX_RETRIES", "many"),
        ("OPENAI_TIMEOUT_S", "-1"),
        ("OPENAI_MAX_RETRIES", "1.5"),
        ("OPENAI_STREAMING", "maybe"),
        ("OPENAI_DECIDE_FORMAT", "xml"),
        ("IT_SUPPORT_MODEL_BUDGET_S", "soon"),
        ("OPENAI_PARALLEL_TOOL_CALLS", "sometimes"),
    ],
)
def test_bad_settings_are_errors_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv(name, value)
    with pytest.raises(ModelConfigError, match=name):
        load_chat_model(Context(model="gpt-4o"))
        decide_format()
        model_budget_s()
        parallel_tool_calls()


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("", "tools"),
        ("https://api.openai.com/v1", "tools"),
        ("http://127.0.0.1:8080/v1", "json_schema"),
        ("http://ollama.internal:11434/v1", "json_schema"),
    ],
)
def test_the_decide_form_defaults_to_a_schema_on_self_hosted_servers(
    monkeypatch: pytest.MonkeyPatch, base_url: str, expected: str
) -> None:
    monkeypatch.delenv("OPENAI_DECIDE_FORMAT", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    assert decide_format() == expected
    monkeypatch.setenv("OPENAI_DECIDE_FORMAT", "tools")
    assert decide_format() == "tools"
