"""Three `serve` replicas sharing one PostgreSQL database take a burst of 2,000 alerts (tests/storm.py): repeats,
resolved alerts, 20 alerts at once for one recoverable server, a storm of indexers failing on one dependency.

Expected, from how the agent is meant to behave (written before the first run): every alert answered 2xx, nothing
left queued, running or stalled, no run finished twice, each recoverable server that ran restarted exactly once,
no crash-loop ticket, one parent ticket for search-backend-02. The database is the test's own, dropped after."""

from __future__ import annotations

from tests.integration.test_postgres_replicas import require_postgres
from tests.storm import DEPENDENCY, RECOVERABLE, describe, run_storm


def test_three_replicas_take_a_storm_of_2000_alerts_without_loss_repeats_or_noise() -> None:
    require_postgres()

    result = run_storm(3, 2000)

    print(describe(result))
    assert result.problems() == []
    assert result.answered_2xx == 2000 and sum(result.answers.values()) == 2000
    assert result.answers["coalesced"] >= 19  # the 20 at once for one server: one run, 19 joined it
    assert set(result.restarts_per_server) <= set(RECOVERABLE)
    assert result.storm_parent_tickets == 1 and result.storm_updates >= 1, DEPENDENCY
