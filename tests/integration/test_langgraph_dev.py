"""LangGraph Studio's server: `langgraph dev` serves the graph offline; approvals interrupt and resume over the API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import free_port, require_binary, wait_for_http

REPO = Path(__file__).resolve().parents[2]
INCIDENT = "The payment-server-01 is extremely slow and timing out."


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary(str(Path(sys.executable).parent / "langgraph"), "langgraph-cli (langgraph dev)")
    port = free_port()
    env = {
        **os.environ,
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "MODEL_NAME": "offline",
    }
    log = (tmp_path_factory.mktemp("langgraph-dev") / "server.log").open("w")
    process = subprocess.Popen(
        [binary, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        ready_s = wait_for_http(f"http://127.0.0.1:{port}/ok", timeout_s=90)
        sys.stderr.write(f"\nlanggraph dev ready in {ready_s:.2f}s\n")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _run(client: Any, thread_id: str, context: dict[str, Any], **payload: Any) -> dict[str, Any]:
    result = client.runs.wait(thread_id, "it-support-agent", context=context, **payload)
    assert isinstance(result, dict)
    return result


def test_studio_graph_exposes_its_configuration(dev_server: str) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=dev_server)
    assistant = client.assistants.search(graph_id="it-support-agent")[0]
    schemas = client.assistants.get_schemas(assistant["assistant_id"])
    assert schemas["output_schema"] is not None
    input_schema, state_schema, context_schema = (
        schemas["input_schema"],
        schemas["state_schema"],
        schemas["context_schema"],
    )
    assert input_schema is not None and state_schema is not None and context_schema is not None
    assert "incident" in input_schema["properties"]
    assert {"outcome", "server_id", "diagnosis"} <= set(state_schema["properties"])
    fields = set(context_schema["properties"])
    assert {"model", "autonomy", "fleet_file", "state_dir", "interactive"} <= fields


def test_approve_over_the_api_restarts_and_reject_escalates(dev_server: str, tmp_path: Path) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=dev_server)
    context = {"autonomy": "approve", "state_dir": str(tmp_path / "state")}

    approved = client.threads.create()["thread_id"]
    started = time.monotonic()
    _run(client, approved, context, input={"incident": INCIDENT})
    state = client.threads.get_state(approved)
    assert state["next"] == ["approve"]
    request = state["interrupts"][0]["value"]
    assert request["type"] == "approve_restart"
    assert request["server_id"] == "payment-server-01" and request["service"] == "payment-api"
    assert request["thread_id"] == approved
    final = _run(client, approved, context, command={"resume": {"decision": "approve"}})
    assert final["outcome"] == "restart"
    assert final["restart"]["performed"] and final["restart"]["verified"]
    assert "restarted payment-api" in final["summary"]

    rejected = client.threads.create()["thread_id"]
    context["state_dir"] = str(tmp_path / "state-2")
    _run(client, rejected, context, input={"incident": INCIDENT})
    final = _run(client, rejected, context, command={"resume": {"decision": "reject", "comment": "change freeze"}})
    assert final["outcome"] == "escalate"
    assert final["ticket"]["operator_comment"] == "change freeze"
    assert not final.get("restart")
    sys.stderr.write(f"two approval round trips over the API in {time.monotonic() - started:.2f}s\n")


def test_studio_asks_which_server_when_the_incident_names_none(dev_server: str, tmp_path: Path) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=dev_server)
    context = {"state_dir": str(tmp_path / "state")}
    thread = client.threads.create()["thread_id"]
    _run(client, thread, context, input={"incident": "the search box stopped indexing"})
    request = client.threads.get_state(thread)["interrupts"][0]["value"]
    assert request["type"] == "choose_server" and "search-index-09" in request["candidates"]
    final = _run(client, thread, context, command={"resume": {"server_id": "search-index-09"}})
    assert final["server_id"] == "search-index-09" and final["outcome"] == "escalate"


def test_an_inbox_answers_with_a_human_response_list_and_a_chat_client_starts_with_messages(
    dev_server: str, tmp_path: Path
) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=dev_server)
    context = {"autonomy": "approve", "state_dir": str(tmp_path / "state")}
    thread = client.threads.create()["thread_id"]
    # agent-chat-ui's input: the conversation's newest human message is the incident
    _run(client, thread, context, input={"messages": [{"type": "human", "content": INCIDENT}]})
    request = client.threads.get_state(thread)["interrupts"][0]["value"]
    assert request["action_request"]["action"] == "restart_service"  # the HumanInterrupt fields Agent Inbox reads
    assert request["config"]["allow_accept"] and not request["config"]["allow_edit"]
    final = _run(client, thread, context, command={"resume": [{"type": "accept", "args": None}]})
    assert final["outcome"] == "restart" and final["restart"]["verified"]
    assert final["messages"][-1]["type"] == "ai" and final["messages"][-1]["content"] == final["summary"]

    other = client.threads.create()["thread_id"]
    context["state_dir"] = str(tmp_path / "state-2")
    _run(client, other, context, input={"messages": [{"type": "human", "content": INCIDENT}]})
    final = _run(client, other, context, command={"resume": [{"type": "response", "args": "after the sale"}]})
    assert final["outcome"] == "escalate" and final["ticket"]["operator_comment"] == "after the sale"
