"""Which declared dependency a dependency-failure finding implicates, and the store's storm membership."""

from __future__ import annotations

from pathlib import Path

from it_support_agent.incident.fleet import ServerSpec
from it_support_agent.incident.storms import implicated_dependency
from it_support_agent.tools.store import Store

REFUSED = "ERROR connect to search-backend-02:9200 failed: Connection refused"


def spec(*dependencies: str) -> ServerSpec:
    return ServerSpec("search-index-09", "search-indexer", dependencies=dependencies)


def finding(*lines: str, category: str = "dependency_failure") -> dict[str, object]:
    return {"category": category, "evidence": list(lines)}


def test_the_declared_dependency_the_lines_name_is_implicated() -> None:
    assert implicated_dependency(finding(REFUSED), spec("payments-db", "search-backend-02")) == "search-backend-02"


def test_a_lone_declared_dependency_is_implicated_by_a_dependency_failure_naming_no_host() -> None:
    assert (
        implicated_dependency(finding("ERROR upstream unavailable"), spec("search-backend-02")) == "search-backend-02"
    )


def test_nothing_is_implicated_when_two_declared_dependencies_are_named_or_none_of_several() -> None:
    both = finding(REFUSED, "ERROR payments-db: connection reset")
    assert implicated_dependency(both, spec("payments-db", "search-backend-02")) is None
    assert (
        implicated_dependency(finding("ERROR upstream unavailable"), spec("payments-db", "search-backend-02")) is None
    )


def test_only_a_dependency_failure_on_a_declared_dependency_counts() -> None:
    assert implicated_dependency(finding(REFUSED, category="resource_exhaustion"), spec("search-backend-02")) is None
    assert implicated_dependency(finding(REFUSED), spec()) is None
    assert implicated_dependency(finding(REFUSED), None) is None


def test_a_dependency_is_named_as_a_whole_word() -> None:
    line = "ERROR connect to db-10:5432 failed: Connection refused"
    assert implicated_dependency(finding(line), spec("db-1", "db-10")) == "db-10"
    assert implicated_dependency(finding(line), spec("db-1", "cache")) is None


def test_members_join_the_open_storm_in_order_and_a_rerun_keeps_its_place(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    first = store.join_storm("search-backend-02", "t1", "search-index-09", ("INC-1", "page-1"), 1800)
    second = store.join_storm("search-backend-02", "t2", "search-index-10", ("INC-2", "page-2"), 1800)
    other = store.join_storm("payments-db", "t3", "payment-server-01", ("INC-3", "INC-3"), 1800)
    again = store.join_storm("search-backend-02", "t1", "search-index-09", ("INC-9", "page-9"), 1800)
    assert (first.parent_id, first.position, first.servers) == ("INC-1", 0, ("search-index-09",))
    assert (second.parent_id, second.position, second.page_key) == ("INC-1", 1, "page-1")
    assert second.servers == ("search-index-09", "search-index-10")
    assert (other.parent_id, other.position) == ("INC-3", 0)
    assert again == first
    repeat = store.join_storm("search-backend-02", "t4", "search-index-10", ("INC-4", "INC-4"), 1800)
    assert (repeat.parent_id, repeat.position, repeat.servers) == ("INC-1", 1, second.servers)
    assert store.leave_storm("t1") == ("INC-1", 2)
    assert store.leave_storm("t2") == ("INC-1", 1)
    assert store.leave_storm("t4") == ("INC-1", 0)
    assert store.leave_storm("t-none") is None


def test_a_storm_no_one_joined_within_the_window_is_closed(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    store.join_storm("search-backend-02", "t1", "search-index-09", ("INC-1", "INC-1"), 1800)
    late = store.join_storm("search-backend-02", "t2", "search-index-10", ("INC-2", "INC-2"), 0)
    assert (late.parent_id, late.position) == ("INC-2", 0)


def test_a_storm_whose_members_all_resolved_is_closed(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    store.join_storm("db-1", "t1", "web-1", ("INC-1", "INC-1"), 1800)
    store.join_storm("db-1", "t2", "web-2", ("INC-2", "INC-2"), 1800)
    assert store.leave_storm("t1") == ("INC-1", 1) and store.leave_storm("t2") == ("INC-1", 0)
    again = store.join_storm("db-1", "t3", "web-1", ("INC-3", "INC-3"), 1800)
    assert (again.parent_id, again.position, again.servers) == ("INC-3", 0, ("web-1",))


def test_deliveries_sharing_a_dedup_key_leave_the_queue_in_the_order_they_were_queued(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    store.queue_delivery({"id": "INC-1", "dedup_key": "INC-1"}, ["webhook"])
    store.queue_delivery({"id": "INC-1-resolved", "dedup_key": "INC-1"}, ["webhook"])
    store.queue_delivery({"id": "INC-2", "dedup_key": "INC-2"}, ["webhook"])
    assert store.queued_ids(due_only=True) == ["INC-1", "INC-1-resolved", "INC-2"]
    assert store.claim_queued("INC-1-resolved", 60) is None  # the ticket it resolves is still owed
    first = store.claim_queued("INC-1", 60)
    assert first is not None and store.claim_queued("INC-1", 60) is None  # held by its lease
    assert store.claim_queued("INC-2", 60) is not None  # another key does not wait
    store.settle_queued("INC-1", first[3] + 1, None)  # not this worker's lease: left alone
    assert "INC-1" in store.queued_ids(due_only=False)
    store.settle_queued("INC-1", first[3], None)
    assert store.claim_queued("INC-1-resolved", 60) is not None


def test_a_delivery_backing_off_is_not_due_but_is_still_owed(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    store.queue_delivery({"id": "INC-1", "dedup_key": "INC-1"}, ["webhook"])
    claimed = store.claim_queued("INC-1", 60)
    assert claimed is not None
    store.settle_queued("INC-1", claimed[3], 300.0, "HTTP 503")
    assert store.queued_ids(due_only=True) == [] and store.queued_ids(due_only=False) == ["INC-1"]
    assert store.claim_queued("INC-1", 60) is None and store.claim_queued("INC-1", 60, due_only=False) is not None
    assert store.owed_deliveries()[0]["attempts"] == 1 and store.owed_deliveries()[0]["error"] == "HTTP 503"


def test_a_sink_claim_is_released_only_by_the_delivery_that_holds_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    assert store.claim_delivery("INC-1", "webhook", until=1e12) is None
    assert store.claim_delivery("INC-1", "webhook", until=1e12) == "sending"
    store.settle_delivery("INC-1", "webhook", delivered=False, until=5.0)  # someone else's: left alone
    assert store.claim_delivery("INC-1", "webhook", until=1e12) == "sending"
    store.settle_delivery("INC-1", "webhook", delivered=True, until=1e12)
    assert store.claim_delivery("INC-1", "webhook", until=1e12) == "delivered"


def test_a_forgotten_incident_leaves_a_tombstone_so_its_alert_repeated_is_a_duplicate(tmp_path: Path) -> None:
    from it_support_agent.tools.store import IntakeItem

    store = Store(tmp_path / "store.sqlite")
    item = IntakeItem("alert-1", "web-1", "HighCPU", "web-1: HighCPU firing", "queued")
    assert store.enqueue(item) == ("accepted", None)
    claimed = store.claim("w")
    assert claimed is not None
    store.finish("alert-1", "escalate")
    store.forget_threads(["alert-1"])
    assert store.enqueue(item) == ("duplicate", None)
    assert [row["state"] for row in store.intake_rows()] == ["done"]
