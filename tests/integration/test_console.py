"""The operator console in a real headless Chromium (Debian's `chromium`, driven by Playwright).

`serve` runs in-process on 127.0.0.1 with an intake token and approval mode; alerts arrive through POST /alerts and
the page shows them without a reload. Screenshots of each page are saved in the test's output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from it_support_agent.graph.app.serve import AlertServer, serving
from it_support_agent.incident.context import Context
from tests.integration.helpers import require_binary

TOKEN = "console-test-token-4f1c"


def alert(instance: str, name: str) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "agent",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "instance": instance},
                "annotations": {"summary": "CPU above 95% for 5 minutes"},
                "startsAt": "2026-12-02T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": f"fp-{name}-{instance}",
            }
        ],
    }


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def console(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertServer]:
    monkeypatch.setenv("IT_SUPPORT_INTAKE_TOKEN", TOKEN)
    with serving(Context(state_dir=str(state_dir), autonomy="approve")) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_binary(shutil.which("chromium"), "chromium (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - installed by the dev extra
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed")
        pytest.skip("playwright is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def test_an_operator_approves_one_restart_and_rejects_another_in_the_browser(
    console: AlertServer, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{console.url}/console")
    assert page.url.endswith("/console/login")  # no session: no incidents, no actions
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert "wrong token" in page.content()
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{console.url}/console")
    page.screenshot(path=str(tmp_path / "1-empty.png"), full_page=True)

    bearer = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    first = json.dumps(alert("payment-server-01:9100", "HighCPU")).encode()
    assert post(f"{console.url}/alerts", first, bearer) == 202
    row = page.locator("tr[data-status='awaiting approval']")
    row.wait_for()  # appeared without a reload
    page.screenshot(path=str(tmp_path / "2-awaiting.png"), full_page=True)
    row.locator("a").click()
    page.wait_for_selector("form.approval")
    page.screenshot(path=str(tmp_path / "3-incident-waiting.png"), full_page=True)
    page.fill("form.approval input[name=comment]", "approved from the console, <b>on call</b>")
    page.click("form.approval button[value=approve]")
    page.wait_for_selector("#status:text-is('restarted')")  # the page reloads itself until it settles
    assert "(verified healthy)" in page.inner_text("#restart")
    page.screenshot(path=str(tmp_path / "4-restarted.png"), full_page=True)

    second = json.dumps(alert("cache-node-04:9100", "HighMemory")).encode()
    assert post(f"{console.url}/alerts", second, bearer) == 202
    page.goto(f"{console.url}/console?status=awaiting+approval")
    row = page.locator("tr[data-status='awaiting approval']")
    row.wait_for()
    row.locator("a").click()
    page.fill("form.approval input[name=comment]", "not during the sale")
    page.click("form.approval button[value=reject]")
    page.wait_for_selector("#status:text-is('escalated')")  # the page reloads itself until it settles
    ticket = page.inner_text("#ticket")
    assert ticket.startswith("INC-") and "operator rejected the restart: not during the sale" in ticket
    page.screenshot(path=str(tmp_path / "5-rejected.png"), full_page=True)

    page.goto(f"{console.url}/console")
    statuses = page.locator("td.status").all_inner_texts()
    assert sorted(statuses) == ["escalated", "restarted"]
    page.screenshot(path=str(tmp_path / "6-list.png"), full_page=True)
    assert all((tmp_path / name).stat().st_size > 5_000 for name in ("2-awaiting.png", "4-restarted.png", "6-list.png"))


def test_no_answer_without_the_session_and_the_forms_csrf_token(console: AlertServer, state_dir: Path) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"thread=x&decision=approve&csrf=nothing"
    assert post(f"{console.url}/console/approve", body, form) == 401  # no session cookie
    from it_support_agent.graph.app.console import SESSION_COOKIE, session_value

    cookie = {**form, "Cookie": f"{SESSION_COOKIE}={session_value(TOKEN)}"}
    assert post(f"{console.url}/console/approve", body, cookie) == 403  # a cross-site form cannot know the token
    forged = {**form, "Cookie": f"{SESSION_COOKIE}={session_value('another-token')}"}
    assert post(f"{console.url}/console/approve", body, forged) == 401
    request = urllib.request.Request(f"{console.url}/console/rows")
    with pytest.raises(urllib.error.HTTPError):  # redirected to the login page, which urllib does not follow on 303
        urllib.request.build_opener(_NoRedirect).open(request, timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_the_console_command_serves_pages_and_takes_no_alerts(state_dir: Path, tmp_path: Path) -> None:
    import sys

    from tests.integration.services import free_port, http_ok, running

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "it_support_agent", "console", "--port", str(port), "--state-dir", str(state_dir)]
    with running(command, tmp_path / "console.log", lambda: http_ok(f"{url}/healthz"), 60, "console"):
        with urllib.request.urlopen(f"{url}/console", timeout=10) as response:  # no token set: read-only
            assert "No incidents." in response.read().decode()
        assert post(f"{url}/alerts", json.dumps(alert("payment-server-01:9100", "HighCPU")).encode(), {}) == 404


def test_a_which_server_question_from_the_cli_is_answered_in_the_console(state_dir: Path) -> None:
    from it_support_agent.graph.app.checkpoints import open_checkpointer
    from it_support_agent.graph.app.console import Console
    from it_support_agent.graph.builder import compile_graph
    from tests.integration.services import wait_until

    app: Any = compile_graph(open_checkpointer(state_dir))
    asking = Context(state_dir=str(state_dir), interactive="always")
    config: Any = {"configurable": {"thread_id": "which-one"}}
    app.invoke({"incident": "the indexer box stopped indexing"}, config, context=asking)
    console = Console(Context(state_dir=str(state_dir)), app, TOKEN)
    (row,) = console.incidents()
    assert row["status"] == "asks which server" and "search-index-09" in row["request"]["candidates"]
    assert "<select name='server'>" in console.rows_fragment()
    assert console.answer("which-one", {"server_id": "search-index-09"}) == ""
    wait_until(lambda: app.get_state(config).values.get("outcome"), 60, "the answered incident to finish")
    values = app.get_state(config).values
    assert values["server_id"] == "search-index-09" and values["outcome"] == "escalate"
    assert console.answer("which-one", {"server_id": "x"}) == "incident which-one is not waiting for an answer"
