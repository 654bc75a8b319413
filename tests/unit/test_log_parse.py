"""Unit tests for graph.log_parse: a line's own timestamp, its level in every common style, its message part."""

from __future__ import annotations

import calendar

import pytest

from it_support_agent.incident.log_parse import Level, parse_line


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float:
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


STAMPS: list[tuple[str, float, bool]] = [
    ("2026-11-27T09:12:44Z INFO ok", _epoch(2026, 11, 27, 9, 12, 44), False),
    ("2026-11-27T10:12:44+01:00 INFO ok", _epoch(2026, 11, 27, 9, 12, 44), False),
    ("2026-11-27 09:12:44,120 INFO [main] ok", _epoch(2026, 11, 27, 9, 12, 44) + 0.12, False),
    ("2026/11/27 09:12:44 [error] 12#12: boom", _epoch(2026, 11, 27, 9, 12, 44), False),
    ("2026-04-11  3:12:09 0 [Note] InnoDB: ok", _epoch(2026, 4, 11, 3, 12, 9), False),
    ("[Wed Oct 11 14:32:52 2026] [core:error] [pid 1] AH00037", _epoch(2026, 10, 11, 14, 32, 52), False),
    ('10.0.0.1 - - [10/Oct/2026:13:55:36 -0700] "GET / HTTP/1.1" 200 5', _epoch(2026, 10, 10, 20, 55, 36), False),
    ("1234:M 14 Mar 2026 09:04:48.000 # WARNING overcommit", _epoch(2026, 3, 14, 9, 4, 48), False),
    ("11/27/2026 9:12:44 PM Error Application Error 1000", _epoch(2026, 11, 27, 21, 12, 44), False),
    ("1764582000 ERROR thing", 1764582000.0, False),
    ("1764582000123 ERROR thing", 1764582000.123, False),
    ('{"ts":1764582000,"level":"warn","msg":"slow"}', 1764582000.0, False),
    ('{"time":"2026-11-27T09:12:44Z","severity":"ERROR","message":"x"}', _epoch(2026, 11, 27, 9, 12, 44), False),
    ("Mar 14 09:04:48 host kernel: Out of memory", _epoch(2000, 3, 14, 9, 4, 48), True),
    ("E0314 09:04:48.000000    1 pod.go:12] boom", _epoch(2000, 3, 14, 9, 4, 48), True),
    ("081109 203615 148 INFO dfs.DataNode: ok", _epoch(2008, 11, 9, 20, 36, 15), False),
]


@pytest.mark.parametrize(("line", "expected", "yearless"), STAMPS)
def test_timestamps_are_read_from_the_line_itself(line: str, expected: float, yearless: bool) -> None:
    parsed = parse_line(line)
    assert parsed.timestamp == pytest.approx(expected, abs=0.01)
    assert parsed.yearless is yearless


def test_yearless_stamps_take_the_year_given() -> None:
    assert parse_line("Mar 14 09:04:48 host app: x", 2026).timestamp == _epoch(2026, 3, 14, 9, 4, 48)


def test_lines_without_a_stamp_have_none() -> None:
    for line in ("at com.acme.Foo.bar(Foo.java:12)", "", "no time here", "2026-13-45T99:99:99Z nonsense"):
        assert parse_line(line).timestamp is None


LEVELS: list[tuple[str, Level]] = [
    ("2026-11-27T09:12:44Z ERROR x", Level.ERROR),
    ("2026-11-27T09:12:44Z ERR x", Level.ERROR),
    ("2026-11-27T09:12:44Z WRN x", Level.WARNING),
    ("[Wed Oct 11 14:32:52 2026] [core:error] [pid 1] x", Level.ERROR),
    ("2026/11/27 09:12:44 [warn] 1#1: x", Level.WARNING),
    ("<3>Mar 14 09:04:48 host app: x", Level.ERROR),
    ("<4>Mar 14 09:04:48 host app: x", Level.WARNING),
    ("<6>Mar 14 09:04:48 host app: x", Level.INFO),
    ("E0314 09:04:48.123456    1 pod.go:12] x", Level.ERROR),
    ("W0314 09:04:48.123456    1 pod.go:12] x", Level.WARNING),
    ("I0314 09:04:48.123456    1 pod.go:12] x", Level.INFO),
    ("fail: Microsoft.AspNetCore.Server.Kestrel[13] x", Level.ERROR),
    ("warn: Microsoft.AspNetCore.Server.Kestrel[22] x", Level.WARNING),
    ("2026-11-27 09:12:44.120 UTC [123] FATAL:  remaining connection slots are reserved", Level.ERROR),
    ("[2026-05-02 18:40:12,008: WARNING/MainProcess] x", Level.WARNING),
    ("1234:M 14 Mar 2026 09:04:48.123 # WARNING x", Level.WARNING),
    ("1234:M 14 Mar 2026 09:04:48.123 * Ready to accept connections", Level.INFO),
    ("time=2026-11-27T09:12:44Z level=error msg=x", Level.ERROR),
    ('{"level":"warn","msg":"x"}', Level.WARNING),
    ('{"level":50,"msg":"x"}', Level.ERROR),
    ('{"severity":"ERROR","message":"x"}', Level.ERROR),
    ("2026-11-27T09:12:44Z DEBUG x", Level.DEBUG),
    ("plain text with no level", Level.UNSET),
]


@pytest.mark.parametrize(("line", "level"), LEVELS)
def test_levels_are_read_in_every_style(line: str, level: Level) -> None:
    assert parse_line(line).level is level


def test_the_message_part_drops_request_lines_query_strings_and_quoted_user_text() -> None:
    access = parse_line('10.0.0.1 - - [10/Oct/2026:13:55:36 -0700] "GET /search?q=connection+refused HTTP/1.1" 200 5')
    assert "refused" not in access.message
    quoted = parse_line('2026-11-27T09:12:44Z INFO user searched for "database down" in the help centre')
    assert "down" not in quoted.message and "help centre" in quoted.message
    subject = parse_line("2026-11-27T09:12:44Z INFO ticket #4411 subject='Disk full on my laptop' created")
    assert "full" not in subject.message and "created" in subject.message


def test_message_fields_and_identifiers_are_kept() -> None:
    logfmt = parse_line('level=error msg="reconcile failed" query="disk full" err="connection refused"')
    assert "reconcile failed" in logfmt.message and "connection refused" in logfmt.message
    assert "disk full" not in logfmt.message
    assert "'oom-kill'" in parse_line("systemd[1]: app.service: Failed with result 'oom-kill'.").message
    klog = parse_line('E0314 09:04:48.123456    1 kubelet.go:12] "Error syncing pod" err="failed to start"')
    assert "Error syncing pod" in klog.message


def test_json_outcome_fields_are_evidence_but_request_fields_are_not() -> None:
    line = '{"level":"info","msg":"","DownstreamStatus":429,"RequestPath":"/api/errors/export","state":"degraded"}'
    parsed = parse_line(line)
    assert "status=429" in parsed.message and "state=degraded" in parsed.message
    assert "errors" not in parsed.message


def test_access_log_status_is_kept_as_the_outcome() -> None:
    parsed = parse_line('10.0.0.1 - - [10/Oct/2026:13:55:36 -0700] "GET /x HTTP/1.1" 503 512')
    assert "status=503" in parsed.message


@pytest.mark.parametrize("line", ["", "{", "{}", '{"msg": {"nested": 1}}', "[" * 5000, "\x00\xff" * 100, '{"a":' * 50])
def test_any_string_parses_without_raising(line: str) -> None:
    parse_line(line)
