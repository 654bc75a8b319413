"""Shared fixtures: a private state directory per test, fleets written on the fly, a scripted chat model."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from it_support_agent.graph.builder import compile_graph
from it_support_agent.incident.context import Context

REPO = Path(__file__).resolve().parent.parent
DEMO_FLEET = REPO / "scenarios" / "demo-fleet.yaml"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env, state directory or API keys."""
    for name in (
        "MODEL_NAME",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "FLEET_FILE",
        "IT_SUPPORT_STATE_DIR",
        "AUTONOMY",
        "POLICY_FILE",
        "IT_SUPPORT_OUTBOX",
        "IT_SUPPORT_INTERACTIVE",
        "IT_SUPPORT_WEBHOOK_URL",
        "IT_SUPPORT_WEBHOOK_TOKEN",
        "IT_SUPPORT_INTAKE_TOKEN",
        "IT_SUPPORT_SLACK_WEBHOOK_URL",
        "IT_SUPPORT_PAGERDUTY_ROUTING_KEY",
        "IT_SUPPORT_PAGERDUTY_URL",
        "OPENAI_STREAMING",
        "OPENAI_MAX_RETRIES",
        "OPENAI_TIMEOUT_S",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def write_fleet(directory: Path, servers: dict[str, Any]) -> Path:
    path = directory / f"fleet-{uuid.uuid4().hex[:6]}.yaml"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump({"servers": servers}, Dumper=dumper, sort_keys=False), encoding="utf-8")
    return path


class IncidentRunner:
    """Runs incidents through the builder compiled with an in-memory checkpointer, like a library user would."""

    def __init__(self, state_dir: Path, fleet: Path = DEMO_FLEET, **context: Any) -> None:
        self.app = compile_graph(InMemorySaver())
        self.context = Context(fleet_file=str(fleet), state_dir=str(state_dir), **context)

    def run(self, incident: str, thread_id: str | None = None) -> dict[str, Any]:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id or uuid.uuid4().hex}}
        return dict(self.app.invoke({"incident": incident}, config, context=self.context))

    def config(self, thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}


@pytest.fixture
def runner(state_dir: Path) -> Callable[..., IncidentRunner]:
    def make(fleet: Path = DEMO_FLEET, **context: Any) -> IncidentRunner:
        return IncidentRunner(state_dir, fleet, **context)

    return make


Script = Callable[[tuple[str, ...], Sequence[BaseMessage]], AIMessage]


class ScriptedModel(BaseChatModel):
    """A chat model whose answers a test scripts: script(bound tool names, messages) -> AIMessage."""

    script: Any
    bound_tools: tuple[str, ...] = ()
    calls: list[tuple[str, ...]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        names = tuple(getattr(item, "name", "") for item in tools)
        self.calls.append(names)
        return self.model_copy(update={"bound_tools": names})

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.script(self.bound_tools, messages))])


@pytest.fixture
def scripted_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Script], ScriptedModel]]:
    """Replace the configured model in the diagnose and decide nodes with a scripted one."""

    def install(script: Script) -> ScriptedModel:
        model = ScriptedModel(script=script, calls=[])
        monkeypatch.setattr("it_support_agent.nodes.diagnose.load_chat_model", lambda context, *_: model)
        monkeypatch.setattr("it_support_agent.nodes.decide.load_chat_model", lambda context, *_: model)
        return model

    yield install


_FOLDER_MARKERS = ("unit", "graph", "integration", "adversarial")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder, so the suite can be run (and timed) by kind."""
    for item in items:
        folder = item.path.parent.name
        if folder in _FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))
