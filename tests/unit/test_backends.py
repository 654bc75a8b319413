"""Backends without real services: source validation, log tails, journald and systemd through stub binaries, routing,
supervisord's lost answers through a fake proxy, and the prompt budget's last resort."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from it_support_agent.graph.app.alerts import Alert, server_for, strip_port, thread_id
from it_support_agent.incident.fleet import FleetError, parse_fleet
from it_support_agent.incident.matching import ServerIndex
from it_support_agent.incident.sources import (
    FileLogSource,
    JournaldSource,
    PrometheusSource,
    SupervisordSource,
    SystemdSource,
)
from it_support_agent.nodes.model.prompt_budget import PROMPT_BUDGET_TOKENS, fit_prompt
from it_support_agent.tools.backends import supervisor
from it_support_agent.tools.backends.base import BackendError, RestartOutcomeUnknown
from it_support_agent.tools.backends.journald import JournaldLogs
from it_support_agent.tools.backends.logfiles import MAX_TAIL_BYTES, FileLogs, fair_shares, tail_file, tail_rotated
from it_support_agent.tools.backends.prometheus import _samples, auth_headers, query_timeout, render_queries
from it_support_agent.tools.backends.supervisor import SupervisordRestarter
from it_support_agent.tools.backends.systemd import SystemdRestarter
from it_support_agent.tools.incident_tools import DECISION_TOOLS
from it_support_agent.tools.infrastructure import open_infrastructure, perform_once
from it_support_agent.tools.sinks import configured_sinks, pagerduty_payload, redact_url, sink_problems, slack_payload
from it_support_agent.tools.store import open_store
from tests.conftest import write_fleet

LINES = [f"2026-11-27T10:00:{index % 60:02d}Z INFO request {index} served" for index in range(10_000)]


def fleet_text(**fields: str) -> str:
    body = "\n".join(f"    {key}: {value}" for key, value in fields.items())
    return f"servers:\n  app-01:\n    service: app\n{body}\n"


# --- the fleet file's source settings ---


def test_sources_parse_with_defaults_and_typed_settings() -> None:
    fleet = parse_fleet(
        fleet_text(
            health="{type: prometheus, url: 'http://prom:9090/', instance: 'app-01:9100', queries: {up: 'up'}}",
            logs="{type: journald, unit: app.service}",
            restart="{type: supervisord, url: 'unix:///run/supervisor.sock', username: ops, password_env: SV_PW}",
        )
    )
    sources = fleet.servers["app-01"].sources
    assert sources["health"] == PrometheusSource(url="http://prom:9090", instance="app-01:9100", queries={"up": "up"})
    assert sources["logs"] == JournaldSource(unit="app.service")
    assert sources["restart"] == SupervisordSource(
        url="unix:///run/supervisor.sock", username="ops", password_env="SV_PW"
    )
    assert fleet.servers["app-01"].state.logs == ()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"health": "{type: graphite, url: 'http://g'}"}, "health.type 'graphite' is unknown; use one of prometheus"),
        ({"health": "{type: prometheus, instance: a}"}, "health.url is required"),
        ({"health": "{type: prometheus, url: 'prom:9090', instance: a}"}, "health.url must be a http:// or https://"),
        ({"health": "{type: prometheus, url: 'http://p', instance: a, queries: {cpu: x}}"}, "unknown key 'cpu'"),
        ({"health": "{type: prometheus, url: 'http://p', instance: a, timeout_s: -1}"}, "timeout_s must be a number"),
        ({"health": "{cpu_percent: 1}", "logs": "{paths: [/var/log/a]}"}, "'logs' needs a 'type'"),
        ({"health": "{cpu_percent: 1}", "logs": "{type: file, paths: []}"}, "logs.paths must be a non-empty list"),
        ({"health": "{cpu_percent: 1}", "logs": "{type: syslog}"}, "use one of file, journald"),
        (
            {"health": "{cpu_percent: 1}", "restart": "{type: supervisord, url: 'unix://relative.sock'}"},
            "absolute socket path",
        ),
        (
            {"health": "{cpu_percent: 1}", "restart": "{type: supervisord, url: 'http://h', pasword: x}"},
            "unknown setting 'pasword'",
        ),
        ({"health": "{cpu_percent: 1}", "restart": "systemd"}, "'restart' must be a mapping with a 'type'"),
        ({"logs": "{type: journald, unit: app}"}, "missing required field 'health'"),
        (
            {"health": "{type: prometheus, url: 'http://ops:hunter2@prom:9090', instance: a}"},
            "health.url must not embed credentials (user:password@host); set health.username and health.password_env",
        ),
        (
            {"health": "{cpu_percent: 1}", "restart": "{type: supervisord, url: 'http://ops:hunter2@h:9001/RPC2'}"},
            "restart.url must not embed credentials",
        ),
        (
            {"health": "{cpu_percent: 1}", "restart": "{type: supervisord, url: 'unix://ops:hunter2@/run/s.sock'}"},
            "restart.url must not embed credentials",
        ),
    ],
)
def test_bad_sources_are_fleet_errors_naming_the_server(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(FleetError, match="server 'app-01'") as caught:
        parse_fleet(fleet_text(**fields))
    assert problem in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_prometheus_takes_basic_auth_from_settings_and_a_whole_millisecond_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = parse_fleet(
        fleet_text(health="{type: prometheus, url: 'http://p', instance: a, username: ops, password_env: PROM_PW}")
    )
    source = fleet.servers["app-01"].sources["health"]
    assert isinstance(source, PrometheusSource)
    monkeypatch.setenv("PROM_PW", "s3cret")
    assert auth_headers(source) == {"Authorization": "Basic b3BzOnMzY3JldA=="}
    assert auth_headers(PrometheusSource(url="http://p", instance="a")) == {}
    assert [query_timeout(seconds) for seconds in (5, 2.5, 0.0001, 1e6)] == ["5000ms", "2500ms", "1ms", "1000000000ms"]


def test_prometheus_queries_default_to_node_exporter_and_quote_the_instance() -> None:
    queries = render_queries(
        PrometheusSource(url="http://p", instance='we"ird:9100', queries={"up": 'up{job="app", instance="$instance"}'})
    )
    assert queries["up"] == 'up{job="app", instance="we\\"ird:9100"}'
    assert 'node_cpu_seconds_total{mode="idle", instance="we\\"ird:9100"}' in queries["cpu_percent"]
    assert "node_memory_MemAvailable_bytes" in queries["memory_percent"]


def test_prometheus_answers_are_read_strictly() -> None:
    vector = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [1, "97.5"]}, {"metric": {}, "value": [1, "NaN"]}],
        },
    }
    assert _samples(vector, "http://p") == [97.5]
    assert _samples({"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}, "http://p") == [3.0]
    with pytest.raises(BackendError, match="refused the query: parse error"):
        _samples({"status": "error", "error": "parse error"}, "http://p")


# --- log files ---


def test_a_one_gigabyte_file_costs_no_more_than_a_small_one(tmp_path: Path) -> None:
    small, big = tmp_path / "small.log", tmp_path / "big.log"
    small.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    with big.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB without writing it
        handle.seek(1 << 30)
        handle.write(small.read_bytes())
    timings = {}
    for path in (small, big):
        started = time.perf_counter()
        tail = tail_file(path, 100)
        timings[path.name] = time.perf_counter() - started
        assert tail.lines == LINES[-100:]
    assert tail_file(big, 100).bytes_read == tail_file(small, 100).bytes_read <= 64 * 1024
    assert timings["big.log"] < 0.1, timings


def test_a_file_without_enough_line_breaks_is_read_no_further_than_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "holey.log"
    with path.open("wb") as handle:
        handle.truncate(1 << 30)
        handle.seek(1 << 30)
        handle.write(b"last line\n")
    tail = tail_file(path, 50)
    assert tail.lines == ["last line"] and tail.bytes_read == MAX_TAIL_BYTES


def test_binary_bytes_crlf_and_a_missing_final_newline_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"first\r\n\xff\xfe\x00 ERROR broken \x80 bytes\n\nlast without newline")
    assert tail_file(path, 10).lines == ["first", "\ufffd\ufffd ERROR broken \ufffd bytes", "last without newline"]


def test_rotation_reads_the_previous_file_when_the_current_one_is_short(tmp_path: Path) -> None:
    current, rotated = tmp_path / "app.log", tmp_path / "app.log.1"
    rotated.write_text("\n".join(LINES[:50]) + "\n", encoding="utf-8")
    current.write_text("\n".join(LINES[50:53]) + "\n", encoding="utf-8")
    assert tail_rotated(current, 5) == LINES[48:53]
    current.unlink()  # rotated a moment ago, the new file not created yet
    assert tail_rotated(current, 2) == LINES[48:50]
    rotated.unlink()
    assert tail_rotated(current, 2) is None


def test_blank_lines_do_not_count_so_a_full_current_file_never_pulls_in_the_rotated_one(tmp_path: Path) -> None:
    current, rotated = tmp_path / "app.log", tmp_path / "app.log.1"
    current.write_text("".join(f"{line}\n\n  \n" for line in LINES[:3000]), encoding="utf-8")
    rotated.write_text("2026-11-26T03:00:00Z ERROR java.lang.OutOfMemoryError: stale\n" * 50, encoding="utf-8")
    assert tail_rotated(current, 1000) == LINES[2000:3000]
    assert tail_file(current, 100, block_bytes=1000).lines == LINES[2900:3000]


def test_a_current_file_cut_short_by_the_read_cap_never_pulls_in_the_rotated_one(tmp_path: Path) -> None:
    current, rotated = tmp_path / "app.log", tmp_path / "app.log.1"
    with current.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: a gigabyte of NUL padding, then one line
        handle.seek(1 << 30)
        handle.write(b"2026-11-27T10:00:00Z INFO current\n")
    rotated.write_text("2026-11-26T03:00:00Z ERROR stale\n" * 10, encoding="utf-8")
    assert tail_rotated(current, 5) == ["2026-11-27T10:00:00Z INFO current"]


def test_an_unreadable_file_among_several_is_skipped_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.log").write_text("a1\na2\n", encoding="utf-8")
    (tmp_path / "unreadable.log").mkdir()  # reading it fails even as root
    paths = (str(tmp_path / "unreadable.log"), str(tmp_path / "a.log"))
    with caplog.at_level(logging.WARNING, logger="it_support_agent.tools.backends.logfiles"):
        assert FileLogs(FileLogSource(paths)).logs(3) == ["a1", "a2"]
    assert "unreadable.log is a directory" in caplog.text
    with pytest.raises(BackendError, match="no readable log file .*unreadable.log is a directory"):
        FileLogs(FileLogSource((paths[0], str(tmp_path / "absent.log")))).logs(3)


def test_several_files_share_the_lines_and_missing_ones_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("a1\na2\na3\na4\n", encoding="utf-8")
    (tmp_path / "b.log").write_text("b1\n", encoding="utf-8")
    paths = tuple(str(tmp_path / name) for name in ("a.log", "b.log", "absent.log"))
    assert FileLogs(FileLogSource(paths)).logs(3) == ["a3", "a4", "b1"]
    assert fair_shares([10, 1, 10], 7) == [3, 1, 3]
    with pytest.raises(BackendError, match="no log file found"):
        FileLogs(FileLogSource((str(tmp_path / "absent.log"),))).logs(3)


# --- journald and systemd, through stub binaries (the real ones need systemd running) ---


def stub(directory: Path, name: str, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return path


def test_journald_runs_journalctl_for_the_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub(
        tmp_path,
        "journalctl",
        f'echo "$@" > {tmp_path}/argv\n'
        'echo "-- Boot 1a2b --"\necho "2026-11-27T10:00:01+0000 host app[7]: ERROR hung"\n',
        monkeypatch,
    )
    lines = JournaldLogs(JournaldSource(unit="app.service")).logs(20)
    assert lines == ["2026-11-27T10:00:01+0000 host app[7]: ERROR hung"]
    assert (tmp_path / "argv").read_text().split() == ["-u", "app.service", "-n", "20", "-o", "short-iso", "--no-pager"]


def test_journald_failures_are_backend_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub(tmp_path, "journalctl", 'echo "Failed to open journal: Permission denied" >&2\nexit 1\n', monkeypatch)
    with pytest.raises(BackendError, match="failed \\(exit 1\\): Failed to open journal"):
        JournaldLogs(JournaldSource(unit="app")).logs(5)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BackendError, match="journalctl not found"):
        JournaldLogs(JournaldSource(unit="app")).logs(5)


def test_real_journald_when_it_runs() -> None:
    if not shutil.which("journalctl") or not Path("/run/systemd/journal/socket").exists():
        pytest.skip("journald is not running here (no /run/systemd/journal/socket); covered by the stub tests")
    done = subprocess.run(["journalctl", "-n", "1", "-q", "--no-pager"], capture_output=True, timeout=10)
    if done.returncode != 0 or not done.stdout.strip():
        pytest.skip("journalctl runs but this user reads no journal entries")
    assert isinstance(JournaldLogs(JournaldSource(unit="systemd-journald.service")).logs(5), list)


SYSTEMCTL = """state={state}
if [ "$1" = restart ]; then
  [ "$2" = broken.service ] && {{ echo "Job for broken.service failed." >&2; exit 1; }}
  echo $(( $(cat $state) + 1 )) > $state; exit 0
fi
echo ActiveState=active; echo SubState=running; echo MainPID=$(cat $state)
"""


def test_systemd_restart_is_verified_by_a_new_main_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pid").write_text("100\n")
    stub(tmp_path, "systemctl", SYSTEMCTL.format(state=tmp_path / "pid"), monkeypatch)
    assert SystemdRestarter(SystemdSource(), unit="app.service").restart() == (
        "restarted app.service through systemd: main PID 100 -> 101, active"
    )
    with pytest.raises(BackendError, match="systemctl restart broken.service failed \\(exit 1\\): Job for"):
        SystemdRestarter(SystemdSource(), unit="broken.service").restart()


def test_a_systemctl_restart_that_times_out_is_an_unknown_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub(
        tmp_path,
        "systemctl",
        'if [ "$1" = restart ]; then sleep 5; fi\necho ActiveState=active; echo MainPID=7\n',
        monkeypatch,
    )
    with pytest.raises(RestartOutcomeUnknown, match="outcome unknown: systemctl restart app.service timed out"):
        SystemdRestarter(SystemdSource(timeout_s=0.5), unit="app.service").restart()


# --- routing and exactly-once restarts ---


def _record(calls: list[str], name: str) -> str:
    """A fake restart action: note that it ran, report done."""
    calls.append(name)
    return "done"


def test_restart_keys_are_recorded_only_after_success(tmp_path: Path) -> None:
    keys = open_store(tmp_path)
    calls: list[str] = []

    def failing() -> str:
        calls.append("failing")
        raise BackendError("refused")

    with pytest.raises(BackendError):
        perform_once(keys, "app-01", "app", "k1", failing)
    first = perform_once(keys, "app-01", "app", "k1", lambda: _record(calls, "ok"))
    second = perform_once(keys, "app-01", "app", "k1", lambda: _record(calls, "again"))
    assert calls == ["failing", "ok"]
    assert first.performed and not first.already_done
    assert second.already_done and not second.performed


def test_one_fleet_mixes_simulated_and_real_sources(tmp_path: Path, state_dir: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("2026-11-27T10:00:00Z ERROR real log line\n", encoding="utf-8")
    fleet = write_fleet(
        tmp_path,
        {
            "sim-01": {"service": "a", "health": {"cpu_percent": 10, "memory_percent": 10}, "logs": ["simulated"]},
            "mixed-01": {
                "service": "b",
                "health": {"cpu_percent": 95, "memory_percent": 10, "status": "degraded"},
                "logs": {"type": "file", "paths": [str(log)]},
            },
        },
    )
    backend = open_infrastructure(str(fleet), str(state_dir)).backend
    assert backend.logs("sim-01", 5) == ["simulated"]
    assert backend.logs("mixed-01", 5) == ["2026-11-27T10:00:00Z ERROR real log line"]
    assert backend.health("mixed-01")["cpu_percent"] == 95.0
    assert backend.restart("mixed-01", "b", "key").detail == "restarted b on mixed-01 (simulated)"


# --- alert intake and sink payloads (pure parts) ---


def test_alert_labels_name_fleet_servers() -> None:
    fleet = parse_fleet(fleet_text(health="{type: prometheus, url: 'http://p', instance: '10.0.0.5:9100'}"))
    index = ServerIndex.build(fleet.servers)
    assert strip_port("app-01:9100") == "app-01" and strip_port("[::1]:9100") == "::1" and strip_port("::1") == "::1"
    assert server_for("10.0.0.5:9100", fleet, index) == "app-01"
    assert server_for("app-01.prod.example.com:9100", fleet, index) == "app-01"
    assert server_for("10.0.0.6:9100", fleet, index) is None


def test_thread_ids_are_stable_per_alert_and_firing_episode() -> None:
    alert = Alert("firing", {"alertname": "HighCPU"}, {}, "fp1", "2026-11-27T10:00:00Z")
    assert thread_id("g", alert) == thread_id("g", alert)
    assert thread_id("g", alert) != thread_id("g", Alert("firing", {}, {}, "fp2", alert.starts_at))
    assert thread_id("g", alert) != thread_id("g", Alert("firing", {}, {}, "fp1", "2026-11-27T11:00:00Z"))


TICKET: dict[str, Any] = {
    "id": "INC-1",
    "dedup_key": "INC-1",
    "thread_id": "t",
    "server_id": "app-01",
    "severity": "high",
    "reason": "dependency down",
    "summary": "db unreachable",
    "evidence": {
        "health_summary": "CPU 10.0%",
        "category": "dependency_failure",
        "log_lines": ["ERROR ```connection refused```"],
    },
}


def test_sink_payloads_and_configuration() -> None:
    slack = slack_payload(TICKET)
    assert slack["text"] == "[HIGH] INC-1 app-01: db unreachable"
    assert "```" not in slack["blocks"][3]["text"]["text"][3:-3]
    pager = pagerduty_payload("key")(TICKET)
    assert (pager["event_action"], pager["dedup_key"], pager["payload"]["severity"]) == ("trigger", "INC-1", "error")
    assert configured_sinks({}) == []
    names = [
        sink.name
        for sink in configured_sinks(
            {"IT_SUPPORT_SLACK_WEBHOOK_URL": "http://s", "IT_SUPPORT_PAGERDUTY_ROUTING_KEY": "k"}
        )
    ]
    assert names == ["slack", "pagerduty"]


def test_sink_urls_with_credentials_or_no_scheme_are_refused_and_never_shown() -> None:
    sinks = configured_sinks(
        {
            "IT_SUPPORT_WEBHOOK_URL": "https://ops:hunter2@hooks.example.com/in",
            "IT_SUPPORT_SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/SlackSecret",
        }
    )
    assert [sink.problem for sink in sinks] == [
        "IT_SUPPORT_WEBHOOK_URL must not embed credentials (user:password@host); put the token in "
        "IT_SUPPORT_WEBHOOK_TOKEN (sent as Authorization: Bearer)",
        "IT_SUPPORT_SLACK_WEBHOOK_URL must be an http:// or https:// URL with a host",
    ]
    assert sink_problems({"IT_SUPPORT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x"}) == []
    assert redact_url("https://hooks.slack.com/services/T0/B0/SlackSecret?x=1") == "https://hooks.slack.com:443"
    assert redact_url("http://[::1]:8080/p") == "http://[::1]:8080"


def test_a_restart_whose_outcome_is_unknown_keeps_its_key_in_flight(tmp_path: Path) -> None:
    keys = open_store(tmp_path)
    calls: list[str] = []

    def lost() -> str:
        calls.append("lost")
        raise RestartOutcomeUnknown("outcome unknown: no answer after the stop was sent")

    with pytest.raises(RestartOutcomeUnknown):
        perform_once(keys, "app-01", "app", "k1", lost)
    assert keys.key_status("k1") == "in_flight"
    with pytest.raises(BackendError, match="did not finish \\(in_flight\\)"):
        perform_once(keys, "app-01", "app", "k1", lambda: _record(calls, "again"))
    assert calls == ["lost"]


class FakeSupervisor:
    """supervisor.* over a fake proxy: stopProcess times out; the states getProcessInfo reports are scripted."""

    def __init__(self, states: list[tuple[str, int]]) -> None:
        self.states = states
        self.calls: list[str] = []
        self.supervisor = self

    def getProcessInfo(self, name: str) -> dict[str, Any]:
        self.calls.append("getProcessInfo")
        state, pid = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"statename": state, "pid": pid}

    def stopProcess(self, name: str, wait: bool) -> bool:
        self.calls.append("stopProcess")
        raise TimeoutError("timed out")

    def startProcess(self, name: str, wait: bool) -> bool:
        self.calls.append("startProcess")
        return True


@pytest.mark.parametrize(
    ("states", "found", "starts"),
    [
        ([("RUNNING", 10), ("STOPPED", 0), ("RUNNING", 11)], "found STOPPED and started once: now RUNNING (PID 11)", 1),
        ([("RUNNING", 10), ("STOPPING", 10)], "it is STOPPING (PID 10), so it was not started again", 0),
    ],
)
def test_supervisord_silent_after_the_stop_is_an_unknown_outcome(
    monkeypatch: pytest.MonkeyPatch, states: list[tuple[str, int]], found: str, starts: int
) -> None:
    fake = FakeSupervisor(states)
    monkeypatch.setattr(supervisor, "server_proxy", lambda source: fake)
    monkeypatch.setattr(supervisor, "POLL_S", 0.01)
    source = SupervisordSource(url="http://127.0.0.1:9/RPC2", timeout_s=0.05)
    with pytest.raises(RestartOutcomeUnknown) as caught:
        SupervisordRestarter(source, process="app").restart()
    message = str(caught.value)
    assert message.startswith("outcome unknown: supervisord did not answer stopProcess for app after the stop")
    assert found in message and "must exceed the program's stopwaitsecs" in message
    assert fake.calls.count("startProcess") == starts


def test_when_nothing_else_can_be_cut_the_brief_incident_text_is() -> None:
    text = ("payment-server-01 " + "支付服务器非常慢并且超时" * 400)[:4000]
    brief = HumanMessage(content=json.dumps({"incident": text, "server_id": "payment-server-01"}, ensure_ascii=False))
    call = {"name": "get_server_health", "args": {"server_id": "payment-server-01"}, "id": "h1", "type": "tool_call"}
    messages = [
        brief,
        AIMessage(content="", tool_calls=[call]),
        ToolMessage(content='{"status": "success"}', tool_call_id="h1", name="get_server_health"),
        AIMessage(content="CPU高，日志显示连接池耗尽。" * 30),
    ]
    prompt = fit_prompt("system " * 2000, messages, DECISION_TOOLS)
    assert prompt.cut and prompt.estimated_tokens <= PROMPT_BUDGET_TOKENS
    kept = json.loads(str(prompt.messages[0].content))
    assert kept["server_id"] == "payment-server-01" and kept["incident"].startswith("payment-server-01 支付")


def test_a_restart_interrupted_mid_flight_is_never_repeated(tmp_path: Path) -> None:
    keys = open_store(tmp_path)
    assert keys.begin_key("k9", "app-01", "app") is None  # a process died after recording it, before settling
    calls: list[str] = []
    with pytest.raises(BackendError, match="did not finish"):
        perform_once(keys, "app-01", "app", "k9", lambda: _record(calls, "restart"))
    assert calls == []
