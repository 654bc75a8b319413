"""Which sink took which ticket lives in the state store: replicas sharing PostgreSQL send a ticket to a sink once
between them, and the records kept in deliveries.json while the store could not be used are taken into it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from it_support_agent.tools.outbox import TicketDesk
from it_support_agent.tools.sinks import configured_sinks
from it_support_agent.tools.store import open_store
from tests.integration.services import Receiver
from tests.integration.test_postgres_replicas import database  # noqa: F401 - the fixture

TICKET = {"id": "INC-SHARED", "thread_id": "t-shared", "server_id": "search-index-09", "summary": "unreachable"}


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def test_two_replicas_sharing_postgresql_send_a_ticket_to_a_sink_once(
    database: str,  # noqa: F811 - the fixture
    webhook: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IT_SUPPORT_DATABASE_URL", database)
    sinks = configured_sinks({"IT_SUPPORT_WEBHOOK_URL": webhook.url + "/hook"})
    first = TicketDesk(tmp_path / "host-a", sinks).deliver(TICKET)
    second = TicketDesk(tmp_path / "host-b", sinks).deliver(TICKET)  # another host's state directory
    assert first["sinks"]["webhook"] == "delivered"
    assert second["sinks"]["webhook"] == "duplicate"
    assert len(webhook.bodies("/hook")) == 1
    assert open_store(tmp_path / "host-b").delivered_to("INC-SHARED") == ["webhook"]
    assert not (tmp_path / "host-a" / "deliveries.json").exists()


def test_records_kept_in_a_file_while_the_store_was_unusable_are_taken_into_it(
    webhook: Receiver, state_dir: Path
) -> None:
    (state_dir / "deliveries.json").write_text(json.dumps({"tickets": {"INC-SHARED": {"webhook": 1.7e9}}}))
    sinks = configured_sinks({"IT_SUPPORT_WEBHOOK_URL": webhook.url + "/hook"})
    delivery = TicketDesk(state_dir, sinks).deliver(TICKET)
    assert delivery["sinks"]["webhook"] == "duplicate" and webhook.bodies("/hook") == []
    assert open_store(state_dir).delivered_to("INC-SHARED") == ["webhook"]
    assert (state_dir / "deliveries.json.migrated").exists() and not (state_dir / "deliveries.json").exists()
