"""Several `serve` replicas sharing one PostgreSQL database (IT_SUPPORT_DATABASE_URL): every accepted alert runs
exactly once whichever replica took it, workers claim with SKIP LOCKED, and the restart policy holds across them.

Each test creates its own database on the local PostgreSQL (127.0.0.1:5432, trust auth) and drops it afterwards."""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests import storm
from tests.integration.services import free_port, http_ok, running, wait_until
from tests.storm import ADMIN_URL, drained

REPO = Path(__file__).resolve().parents[2]


def require_postgres() -> None:
    """Skip without the local PostgreSQL (fail when CI=true: CI starts it)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")


@pytest.fixture
def database() -> Iterator[str]:
    """A database of the test's own, dropped afterwards."""
    require_postgres()
    with storm.database() as url:
        yield url


def alert(index: int) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Load{index}"}}',
        "status": "firing",
        "receiver": "agent",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"Load{index}", "instance": "payment-server-01:9100"},
                "annotations": {"summary": "CPU above 95% for 5 minutes"},
                "startsAt": "2026-12-02T10:00:00Z",
                "fingerprint": f"fp-{index}",
            }
        ],
    }


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/alerts", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def test_three_replicas_run_each_alert_once_and_restart_the_server_once(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.setenv("IT_SUPPORT_DATABASE_URL", database)
    urls = []
    with ExitStack() as stack:
        for replica in range(3):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            state = tmp_path / f"replica-{replica}"  # each host's own files (spool, exports); the truth is shared
            command = [
                sys.executable,
                "-m",
                "it_support_agent",
                "serve",
                "--port",
                str(port),
                "--state-dir",
                str(state),
            ]
            stack.enter_context(
                running(
                    command,
                    tmp_path / f"replica-{replica}.log",
                    functools.partial(http_ok, f"{url}/healthz"),
                    90,
                    f"replica {replica}",
                )
            )
            urls.append(url)

        # the same alert posted to all three at once (Alertmanager's HA peers each notify): one run
        answers: list[dict[str, Any]] = []

        def send_first(url: str) -> None:
            answers.append(post(url, alert(0)))

        posters = [threading.Thread(target=send_first, args=(url,)) for url in urls]
        for poster in posters:
            poster.start()
        for poster in posters:
            poster.join(60)
        assert sum(len(answer["accepted"]) for answer in answers) == 1
        assert sum(len(answer["duplicates"]) + len(answer["coalesced"]) for answer in answers) == 2

        for index in range(1, 13):  # a storm for one server, spread over the replicas
            post(urls[index % 3], alert(index))

        with psycopg.connect(database, autocommit=True) as connection:
            wait_until(lambda: drained(connection), 120, "every replica's queue to drain")
            restarts = connection.execute("SELECT COUNT(*) FROM agent_restarts").fetchone()
            runs = connection.execute(
                "SELECT thread_id, COUNT(*) FROM agent_audit WHERE kind = 'alert_run_finished' GROUP BY thread_id"
            ).fetchall()
            workers = connection.execute(
                "SELECT COUNT(DISTINCT split_part(worker, ':', 2)) FROM agent_intake WHERE worker IS NOT NULL"
            ).fetchone()
            states: dict[str, int] = dict(
                connection.execute("SELECT state, COUNT(*) FROM agent_intake GROUP BY state").fetchall()
            )
    assert restarts is not None and restarts[0] == 1  # one restart of payment-server-01, whichever replica ran it
    assert runs and all(count == 1 for _, count in runs)  # no alert ran twice
    assert sum(states.values()) == 13 and set(states) <= {"done", "coalesced"}
    assert workers is not None and workers[0] >= 1
