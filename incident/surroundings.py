"""Evidence read across lines about what surrounds the service: another process holding the CPU, a compromise
chain, a client still failing on a dependency that has recovered."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from it_support_agent.incident.line_roles import Role
from it_support_agent.incident.log_rules import Category
from it_support_agent.incident.signals import SECURITY_BURST, LineReading, Signal, quote

__all__ = [
    "RUNTIMES",
    "compromise_chain",
    "is_other_process",
    "names_in",
    "other_process_cpu",
    "stuck_after_recovery",
]

OTHER_CPU_PERCENT = 50.0
"""A named process other than the service at this share of the CPU or more is the figure's cause."""
# Process names a service commonly runs as, whatever the service is called.
RUNTIMES = frozenset(
    {
        "java",
        "node",
        "nodejs",
        "python",
        "python3",
        "ruby",
        "php",
        "php-fpm",
        "dotnet",
        "gunicorn",
        "uwsgi",
        "celery",
        "beam.smp",
        "erl",
        "mono",
        "w3wp",
        "perl",
        "puma",
        "sidekiq",
        "unicorn",
        "deno",
        "bun",
    }
)
# "MsMpEng.exe (PID 3108) 81.4%", "pid=3108 comm=xmrig cpu=97%", a top row "3108 root 20 0 ... 97.3 1.2 ... name"
_PROCESS_CPU = re.compile(
    r"(?P<name>[A-Za-z][\w.+-]{1,63}?)(?:\.exe)?\s*\((?:pid[: ]?\s*)?\d+\)[:=,]?\s*(?P<pct>\d{1,3}(?:\.\d+)?)\s?%"
    r"|\bcomm=(?P<name2>[\w.+-]{1,63})\b[^\n]{0,40}?\bcpu=(?P<pct2>\d{1,3}(?:\.\d+)?)\s?%"
    r"|^\s*\d+\s+\S+\s+-?\d+\s+-?\d+\s+\S+\s+\S+\s+\S+\s+[A-Z]\s+(?P<pct3>\d{1,3}(?:\.\d+)?)\s+\d+(?:\.\d+)?\s+"
    r"\S+\s+(?P<name3>[\w.+/-]{1,63})\s*$",
    re.IGNORECASE,
)
_FAILED_FROM = re.compile(
    r"\b(?:failed (?:password|publickey|none|keyboard-interactive(?:/pam)?) for (?:invalid user )?\S+"
    r"|invalid user \S+|authentication failure[^\n]{0,80}?rhost=)\s*(?:from )?(?P<ip>\d{1,3}(?:\.\d{1,3}){3})",
    re.IGNORECASE,
)
_ACCEPTED_FROM = re.compile(
    r"\baccepted (?:password|publickey|keyboard-interactive(?:/pam)?) for \S+ from (?P<ip>\d{1,3}(?:\.\d{1,3}){3})",
    re.IGNORECASE,
)
_NAME_TOKEN = re.compile(r"\b[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)+\b|\b[a-z]+\d+\b|\b\d{1,3}(?:\.\d{1,3}){3}\b")


def names_in(message: str) -> set[str]:
    """The hosts, services and addresses a message names ("cache-01", "filer01", "10.0.0.5")."""
    return set(_NAME_TOKEN.findall(message.lower()))


def is_other_process(name: str, service: str | None) -> bool:
    """A process name that is neither the service (by a word of its name) nor a runtime it could run in."""
    name = name.lower().removesuffix(".exe").rsplit("/", 1)[-1]
    if service is None or name in RUNTIMES or name.rstrip("0123456789.") in RUNTIMES:
        return False
    words = [word for word in re.split(r"[^a-z0-9]+", service.lower()) if len(word) >= 3]
    parts = [part for part in re.split(r"[^a-z0-9]+", name) if len(part) >= 3]
    return not any(part.startswith(word) or word.startswith(part) for part in parts for word in words)


def other_process_cpu(readings: Sequence[LineReading], indices: Sequence[int], service: str | None) -> list[Signal]:
    """A line naming another process as the top CPU consumer: the figure is that process's, not the service's."""
    for index in indices:
        raw = readings[index].parsed.raw
        match = _PROCESS_CPU.search(raw)
        if match is None:
            continue
        name = match["name"] or match["name2"] or match["name3"] or ""
        percent = float(match["pct"] or match["pct2"] or match["pct3"] or 0)
        if percent >= OTHER_CPU_PERCENT and is_other_process(name, service):
            return [Signal(Category.LOAD_SURGE, "logs", quote(raw), "other_process_cpu")]
    return []


def compromise_chain(readings: Sequence[LineReading]) -> list[Signal]:
    """Failed logins from an address, then a successful login from it, at any age: a security event."""
    failures: dict[str, int] = {}
    for reading in readings:
        raw = reading.parsed.raw
        if (failed := _FAILED_FROM.search(raw)) is not None:
            failures[failed["ip"]] = failures.get(failed["ip"], 0) + 1
        elif (accepted := _ACCEPTED_FROM.search(raw)) is not None and failures.get(accepted["ip"], 0) >= SECURITY_BURST:
            return [Signal(Category.SECURITY_EVENT, "logs", quote(raw), "login_after_failures")]
    return []


def _names(reading: LineReading) -> set[str]:
    return names_in(reading.parsed.message)


def stuck_after_recovery(readings: list[LineReading], fresh: list[int]) -> list[int]:
    """A dependency that failed and recovered while the service still fails afterwards: the client is stuck (on a
    connection, an old address, a dead task). When the service says only a restart recovers it, or every later
    failure names a target the recovery line does not (the old primary, the cached address), the failures before
    the recovery are over and those after it are the client's own hang: their readings are replaced in `readings`
    by hang signals. Returns the fresh lines no longer counted."""
    failures = [index for index in fresh if _category(readings[index]) is Category.DEPENDENCY_FAILURE]
    recoveries = [index for index in fresh if readings[index].role is Role.RECOVERY]
    if not failures or not recoveries:
        return []
    for recovery in reversed(recoveries):
        before = [index for index in failures if index < recovery]
        after = [index for index in failures if index > recovery]
        if not before:
            continue
        told = any(
            index > recovery and (signal := readings[index].signal) is not None and signal.rule == "needs_restart"
            for index in fresh
        )
        old = set().union(*(_names(readings[index]) for index in before))
        new = _names(readings[recovery])
        stale_target = (
            bool(after)
            and bool(new)
            and all(_names(readings[index]) & old and not _names(readings[index]) & new for index in after)
        )
        if not (told or stale_target):
            continue
        for index in after:
            reading = readings[index]
            signal = Signal(Category.HUNG_PROCESS, "logs", quote(reading.parsed.raw), "stuck_after_recovery")
            readings[index] = replace(reading, signal=signal)
        return before
    return []


def _category(reading: LineReading) -> Category | None:
    return reading.signal.category if reading.signal is not None else None
