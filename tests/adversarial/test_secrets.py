"""No secret in any byte the agent writes: state directory (checkpoints, audit, outbox, spool), stdout, tickets.

Secrets reach the agent two ways: in log lines (a connection string with its password, a bearer token) and from
a model endpoint that echoes the request's credentials in its error. Both are masked before anything is kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from it_support_agent.graph.app.cli import main
from it_support_agent.incident.text import MASK, clean_line, known_secrets, redact, redact_value
from it_support_agent.tools.store import open_store
from tests.conftest import write_fleet
from tests.fake_openai import FakeOpenAI, failure
from tests.prompt_sizes import openai_environment

DB_PASSWORD = "Tr0ub4dor-and-3"
API_KEY = "sk-proj-Zx81bQvLmN0pQrStUvWxYz12"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvbmNhbGwifQ.c2lnbmF0dXJlLXZhbHVl"


def _leaky_fleet(directory: Path) -> Path:
    lines = [
        f"2026-11-27T09:58:01Z ERROR cannot reach postgresql://payments:{DB_PASSWORD}@db-07:5432/ledger: timeout",
        f"2026-11-27T09:58:02Z WARN retrying with header Authorization: Bearer {BEARER}",
        "2026-11-27T09:58:03Z ERROR worker pool exhausted: 200/200 threads busy, 1412 requests queued",
    ]
    server = {
        "service": "payment-api",
        "restartable": True,
        "health": {"cpu_percent": 97.0, "memory_percent": 60.0, "status": "degraded"},
        "logs": lines,
    }
    return write_fleet(directory, {"payment-server-01": server})


def _every_byte(state_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(state_dir.rglob("*")) if path.is_file())


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("dial postgres://app:hunter22@db:5432/x failed", "postgres://app:"),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization:"),
        ('{"password": "correct-horse"}', '"password": "'),
        ("retry with api_key=AbC123xyz789 now", "api_key="),
        ("AWS key AKIAABCDEFGHIJKLMNOP rejected", "AWS key"),
        ("post to https://hooks.slack.com/services/T0/B0/xyzzy failed", "hooks.slack.com/services/"),
    ],
)
def test_credentials_are_masked_by_shape(text: str, kept: str) -> None:
    masked = redact(text)
    assert MASK in masked and kept in masked
    secret_part = {
        0: "hunter22",
        1: "abcdefghijklmnop",
        2: "correct-horse",
        3: "AbC123xyz789",
        4: "AKIAABCDEFGHIJKLMNOP",
        5: "xyzzy",
    }
    assert not any(value in masked for value in secret_part.values())


@pytest.mark.parametrize(
    "text",
    [
        "prompt_tokens=1234 completion_tokens=56",
        "password authentication failed for user app",
        "author: Jane Doe",
        "token bucket refilled",
        "GET /api/v1/orders 200 12ms",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_the_environments_secret_values_are_masked_wherever_they_appear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IT_SUPPORT_WEBHOOK_TOKEN", "plain-words-token-value")
    monkeypatch.setenv("HOME_DIRECTORY_NAME", "plain-words-not-secret")
    secrets = known_secrets()
    assert "plain-words-token-value" in secrets and "plain-words-not-secret" not in secrets
    record = redact_value({"reason": "echo plain-words-token-value", "nested": ["x plain-words-token-value"], "n": 3})
    assert record == {"reason": f"echo {MASK}", "nested": [f"x {MASK}"], "n": 3}


def test_quoted_lines_lose_terminal_escapes_and_control_bytes() -> None:
    line = clean_line("ERROR \x1b[31mred\x1b[0m \x1b]0;title\x07bell\x00 done")
    assert line == "ERROR red bell\ufffd done"


def test_log_secrets_reach_no_file_and_no_output(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = _leaky_fleet(tmp_path)
    code = main(["run", "payment-server-01 is slow", "--fleet", str(fleet), "--state-dir", str(state_dir), "--json"])
    out = capsys.readouterr()
    assert code == 0
    result = json.loads(out.out)
    assert result["outcome"] == "escalate"  # an unreachable database is not a local fault
    written = _every_byte(state_dir) + out.out.encode() + out.err.encode()
    assert list(open_store(state_dir).audit_events())
    assert list(state_dir.glob("checkpoints.sqlite*"))
    for secret in (DB_PASSWORD, BEARER):
        assert secret.encode() not in written
    ticket_text = json.dumps(result)
    assert "postgresql://payments:" in ticket_text and MASK in ticket_text  # the evidence is kept, the secret not


def test_an_endpoint_echoing_the_api_key_leaks_it_nowhere(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = _leaky_fleet(tmp_path)
    server = FakeOpenAI(lambda request: failure(401, f"Incorrect API key provided: {os.environ['OPENAI_API_KEY']}"))
    server.start()
    try:
        with openai_environment(server.base_url, OPENAI_API_KEY=API_KEY, OPENAI_MAX_RETRIES="0"):
            code = main(["run", "payment-server-01 is slow", "--fleet", str(fleet), "--state-dir", str(state_dir)])
    finally:
        server.stop()
    out = capsys.readouterr()
    assert code == 0
    assert server.requests, "the model endpoint was called"
    assert "model unavailable" in out.out
    written = _every_byte(state_dir) + out.out.encode() + out.err.encode()
    assert API_KEY.encode() not in written
    assert MASK.encode() in written


def test_untrusted_text_cannot_mention_a_channel_or_disguise_a_link_in_slack() -> None:
    from it_support_agent.tools.sinks import slack_payload

    hostile = "ERROR <!channel> deploy now: <https://evil.example|click here> & <@U123>"
    ticket = {
        "id": "INC-1",
        "thread_id": "t",
        "server_id": "web-01",
        "severity": "high",
        "reason": hostile,
        "summary": hostile,
        "evidence": {"log_lines": [hostile], "category": "<!here>"},
    }
    message = json.dumps(slack_payload(ticket))
    assert "<!channel>" not in message and "<!here>" not in message and "<https://evil" not in message
    assert "<@U123>" not in message
    assert "&lt;!channel&gt;" in message and "&amp;" in message
