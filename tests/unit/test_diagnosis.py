"""Unit tests for graph.diagnosis: closed-world accounting, context rules, evidence age and recovery."""

from __future__ import annotations

import pytest

from it_support_agent.incident.diagnosis import INCIDENT_WINDOW_S, assess_evidence
from it_support_agent.incident.signals import Category

HOT_CPU = {"cpu_percent": 98.0, "memory_percent": 40.0, "status": "degraded"}
HOT_MEMORY = {"cpu_percent": 30.0, "memory_percent": 96.0, "status": "degraded"}
DOWN = {"cpu_percent": 2.0, "memory_percent": 20.0, "status": "down"}
DEGRADED = {"cpu_percent": 20.0, "memory_percent": 30.0, "status": "degraded"}
HEALTHY = {"cpu_percent": 20.0, "memory_percent": 30.0, "status": "healthy"}

OOM = [
    "Mar 14 09:52:37 api-03 kernel: api invoked oom-killer: gfp_mask=0x100cca, order=0, oom_score_adj=0",
    "Mar 14 09:52:37 api-03 kernel: Out of memory: Killed process 7712 (api) total-vm:9812240kB",
    "Mar 14 09:52:37 api-03 systemd[1]: api.service: Main process exited, code=killed, status=9/KILL",
    "Mar 14 09:52:37 api-03 systemd[1]: api.service: Failed with result 'oom-kill'.",
]


def test_plainly_local_faults_still_restart() -> None:
    assert assess_evidence(DOWN, OOM).restart_recommended
    assert assess_evidence(HOT_CPU, ["2026-11-27T09:58:01Z INFO api served 1200 requests"]).restart_recommended
    deadlock = [
        "Found one Java-level deadlock:",
        '"w-1": waiting to lock monitor 0x1, which is held by "w-2"',
        "Found 1 deadlock.",
    ]
    assert assess_evidence(DEGRADED, deadlock).restart_recommended


# Lines no rule was written for, in formats and wordings the rules do not name: they must block by construction.
UNSEEN_ABNORMAL = [
    "2026-11-27T09:58:02Z WARN zfs: pool tank state changed to SUSPENDED",
    "2026-11-27T09:58:02.118+0000 7f3a -1 osd.7 get_health_metrics reporting 14 slow ops",
    '{"time":"2026-11-27T09:58:02Z","severity":"ERROR","message":"replica sync aborted"}',
    "<3>Nov 27 09:58:02 host widgetd[1]: frobnication sequence lost",
    "E1127 09:58:02.000000    1 controller.go:12] quorum not reached for shard 7",
    'time=2026-11-27T09:58:02Z level=warn msg="grpc stream to collector terminated"',
    "2026-11-27 09:58:02,120 WARN [raft] leader changed from node-2 to node-5",
    "Nov 27 09:58:02 host kernel: bond0: link status definitely down for interface eth1",
]


@pytest.mark.parametrize("line", UNSEEN_ABNORMAL)
def test_an_abnormal_line_nothing_explains_blocks_a_hot_figure(line: str) -> None:
    finding = assess_evidence(HOT_CPU, ["2026-11-27T09:58:01Z INFO api served 1200 requests", line])
    assert not finding.restart_recommended, finding.reason
    assert line.strip() in finding.against


def test_unexplained_lines_are_named_in_the_reason_and_listed() -> None:
    line = "2026-11-27T09:58:02Z WARN zfs: pool tank state changed to SUSPENDED"
    finding = assess_evidence(HOT_CPU, [line])
    assert finding.unexplained == (line,)
    assert "not explained by that finding" in finding.reason
    assert finding.to_dict()["unexplained"] == [line]


def test_symptoms_are_explained_by_a_local_finding_and_consequences_only_by_one_the_logs_show() -> None:
    gc = "2026-11-27T09:58:02Z WARN [gc] old gen did not shrink after 6 full collections"
    assert assess_evidence(HOT_MEMORY, [gc]).restart_recommended
    # a process short of memory stalls in GC, so its health checks fail: the figure explains the check
    health_check = "2026-11-27T09:58:02Z WARN consul: Check is now critical: check=service:api"
    assert assess_evidence(HOT_MEMORY, [health_check]).restart_recommended
    stuck = "2026-11-27T09:58:02Z WARN thread pricing-3 RUNNABLE for 300s without returning"
    assert assess_evidence(HOT_CPU, [stuck]).restart_recommended
    # the service answering 5xx beside a hot figure alone may be somebody else's doing: unexplained
    errors = "2026-11-27T09:58:03Z ERROR request failed method=GET path=/api/orders status=503"
    assert not assess_evidence(HOT_CPU, [errors]).restart_recommended
    # ... but the same answers beside an OOM the logs show are that fault's consequence
    oom = "2026-11-27T09:58:01Z ERROR java.lang.OutOfMemoryError: Java heap space"
    finding = assess_evidence(HOT_MEMORY, [oom, errors])
    assert finding.restart_recommended and finding.basis == "logs"


@pytest.mark.parametrize(
    ("line", "category"),
    [
        (
            "Nov 27 09:58:02 edge kernel: TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.",
            Category.LOAD_SURGE,
        ),
        (
            '2026/11/27 09:58:02 [error] 1#1: *9 limiting requests, excess: 20.4 by zone "api", client: 10.1.2.3',
            Category.LOAD_SURGE,
        ),
        ("2026-11-27T09:58:02Z INFO producer rate 48100 msg/s (normal 6000)", Category.LOAD_SURGE),
        ("2026-11-27T09:50:00Z INFO deploy: api v4.18.0 rolled out by ci-pipeline", Category.RECENT_CHANGE),
        ("2026-11-27T09:50:00Z INFO Refresh keys changed: [pricing.rules.engine]", Category.RECENT_CHANGE),
        (
            "Nov 27 09:50:00 host systemd[1]: api.service: Scheduled restart job, restart counter is at 4.",
            Category.CRASH_LOOP,
        ),
    ],
)
def test_context_vetoes_a_restart(line: str, category: Category) -> None:
    finding = assess_evidence(HOT_CPU, [line, "2026-11-27T09:58:30Z INFO api served 1200 requests"])
    assert not finding.restart_recommended
    assert category in finding.categories


def test_a_rate_near_its_baseline_is_not_a_surge() -> None:
    line = "2026-11-27T09:58:02Z INFO producer rate 6100 msg/s (normal 6000)"
    assert assess_evidence(HOT_CPU, [line]).restart_recommended


def test_two_oom_kills_in_the_window_are_a_crash_loop_but_one_kill_is_not() -> None:
    second = [line.replace("09:52:37", "09:58:40").replace("7712", "7790") for line in OOM]
    finding = assess_evidence(DOWN, OOM + second)
    assert Category.CRASH_LOOP in finding.categories and not finding.restart_recommended
    assert assess_evidence(DOWN, OOM).category is Category.OOM_KILL


def test_a_start_inside_the_window_before_the_fault_vetoes() -> None:
    lines = ["2026-11-27T09:40:00Z INFO api starting version=2.14.0", "2026-11-27T09:41:00Z INFO listening on :8080"]
    finding = assess_evidence(HOT_MEMORY, lines)
    assert Category.RECENT_CHANGE in finding.categories and not finding.restart_recommended


def test_work_starting_inside_the_process_is_not_a_start() -> None:
    assert assess_evidence(HOT_CPU, ["2026-11-27T09:58:00Z INFO report job 4411 started"]).restart_recommended


def test_stale_evidence_neither_justifies_nor_vetoes() -> None:
    old_error = "2026-11-26T09:00:00Z ERROR db pool: connection refused (orders-db)"
    fresh = ["2026-11-27T09:57:00Z INFO api served 1200 requests"]
    # yesterday's dependency error does not veto today's hot CPU with clean logs
    assert assess_evidence(HOT_CPU, [old_error, *fresh]).restart_recommended
    # and an OOM from three days ago on a healthy server is no reason to act
    old_oom = "2026-11-24T09:00:00Z kernel: Out of memory: Killed process 12 (api)"
    assert assess_evidence(HEALTHY, [old_oom, *fresh]).category is Category.NO_FAULT
    # the window is a policy setting
    assert not assess_evidence(HOT_CPU, [old_error, *fresh], window_s=2 * 86400).restart_recommended
    assert INCIDENT_WINDOW_S == 1800


def test_security_evidence_never_goes_stale() -> None:
    burst = [
        f"2026-11-20T09:00:0{n}Z sshd[1]: Failed password for root from 203.0.113.9 port 4{n} ssh2" for n in range(5)
    ]
    finding = assess_evidence(HEALTHY, [*burst, "2026-11-27T09:57:00Z INFO sshd: Server listening on 0.0.0.0 port 22."])
    assert finding.category is Category.SECURITY_EVENT


def test_faults_followed_by_recovery_on_a_healthy_server_are_over() -> None:
    lines = [
        "2026-11-27T09:50:00Z WARN replication lag on db-02 exceeded 30s (lag=41s)",
        "2026-11-27T09:52:00Z INFO replication lag no longer exceeded (lag=0.4s)",
    ]
    assert assess_evidence(HEALTHY, lines).category is Category.NO_FAULT
    refused = "2026-11-27T09:50:00Z ERROR db pool: connection refused (orders-db)"
    back = "2026-11-27T09:52:00Z INFO db pool: connection to orders-db re-established"
    assert assess_evidence(HEALTHY, [refused, refused.replace("09:50", "09:51"), back]).category is Category.NO_FAULT
    # a failure after the recovery line is current
    assert assess_evidence(HEALTHY, [back, refused.replace("09:50", "09:53")]).category is Category.DEPENDENCY_FAILURE


def test_words_out_of_place_are_not_evidence() -> None:
    lines = [
        '10.0.0.1 - - [27/Nov/2026:09:58:00 +0000] "GET /search?q=connection+refused+oom HTTP/1.1" 200 512',
        "2026/11/27 09:58:01 [info] 1#1: *5 client prematurely closed connection, client: 10.0.0.1",
        "2026-11-27T09:58:02Z INFO ticket #4411 subject='Disk full on my laptop' created",
        "2026-11-27T09:58:03Z INFO connection to orders-db re-established",
    ]
    assert assess_evidence(HEALTHY, lines).category is Category.NO_FAULT
    assert assess_evidence(HOT_CPU, lines).restart_recommended


def test_a_hang_wording_needs_corroboration() -> None:
    heartbeat = "2026-11-27T09:58:02Z WARNING watchdog: no heartbeat received for 120s from worker thread sync-3"
    assert not assess_evidence(DEGRADED, [heartbeat]).restart_recommended
    stalled = "2026-11-27T09:58:30Z INFO sync: synced 0 batches in last 5m"
    assert assess_evidence(DEGRADED, [heartbeat, stalled]).restart_recommended


def test_a_healthy_server_is_never_restarted() -> None:
    assert not assess_evidence(HEALTHY, ["2026-11-27T09:58:02Z warn: event loop blocked for 612ms"]).restart_recommended


def test_crash_report_lines_are_part_of_the_death_that_wrote_them() -> None:
    lines = [
        "2026-11-27 09:28:02.771 ERROR 1 --- [exec-9] o.a.c.c.C.[dispatcherServlet] : Servlet.service() "
        "threw exception",
        "java.lang.OutOfMemoryError: Java heap space",
        "\tat com.acme.Report.render(Report.java:88)",
    ]
    assert assess_evidence(HOT_MEMORY, lines).restart_recommended
    alone = ["2026-11-27 09:28:02.771 ERROR 1 --- [exec-9] c.a.Report : render threw exception"]
    assert not assess_evidence(HOT_MEMORY, alone).restart_recommended


def test_both_sides_are_reported() -> None:
    refused = "2026-11-27T09:58:02Z ERROR db pool: connection refused (orders-db)"
    finding = assess_evidence(HOT_CPU, ["2026-11-27T09:58:01Z WARN process cpu 99% over last 60s", refused])
    assert finding.supporting and refused in finding.against
    assert set(finding.to_dict()) >= {"for", "against", "unexplained", "window"}


def test_a_year_less_log_that_runs_over_new_year_keeps_its_order() -> None:
    refused = "Dec 31 23:58:44 api-03 app[1]: ERROR db pool: connection refused (orders-db)"
    served = "Jan  1 00:02:01 api-03 app[1]: INFO served 1200 requests"
    assert assess_evidence(HOT_CPU, [refused, served]).category is Category.DEPENDENCY_FAILURE
    # two days before the newest line, the same error is stale
    older = refused.replace("Dec 31", "Dec 30")
    assert assess_evidence(HOT_CPU, [older, served]).restart_recommended
