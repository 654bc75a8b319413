"""Evidence classification: one log line or one health reading to a signal (a fault category and its rule)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal

from it_support_agent.incident.line_roles import (
    ZERO_COUNT,
    Role,
    is_client_gone,
    is_outbound,
    is_plain_recovery,
    line_role,
    split_metric_names,
)
from it_support_agent.incident.log_parse import Level, ParsedLine, parse_line
from it_support_agent.incident.log_rules import (
    BLOCKING,
    RECOVERABLE,
    UNEXPLAINED_RULE,
    UNRECOGNISED_RULE,
    Category,
    Rule,
)
from it_support_agent.incident.records import SignalRecord
from it_support_agent.incident.rulebook import BUILTIN, RuleBook, tokens_of
from it_support_agent.incident.text import clean_line

__all__ = [
    "BLOCKING",
    "CPU_SATURATION_PERCENT",
    "MEMORY_PRESSURE_PERCENT",
    "RECOVERABLE",
    "Category",
    "LineReading",
    "Signal",
    "classify_health",
    "classify_line",
    "classify_logs",
    "is_healthy",
    "read_line",
]

MAX_LINE_CHARS = 2000
DETAIL_CHARS = 300
MAX_EVIDENCE = 8
SECURITY_BURST = 3
CPU_SATURATION_PERCENT = 90.0
MEMORY_PRESSURE_PERCENT = 90.0


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


@dataclass(frozen=True)
class Signal:
    """One piece of evidence: a category, where it came from, the quoted line or figure, and the rule."""

    category: Category
    source: Literal["health", "logs"]
    detail: str
    rule: str

    def to_dict(self) -> SignalRecord:
        """JSON-ready form."""
        return {"category": self.category.value, "source": self.source, "detail": self.detail, "rule": self.rule}


def quote(line: str) -> str:
    """The line as evidence: stripped, control characters replaced, cut to DETAIL_CHARS with an ellipsis."""
    return clean_line(line, DETAIL_CHARS)


_INJECTION = next(item for item in BUILTIN.faults if item.rule.name == "prompt_injection")
"""Instructions aimed at a model: hostile wherever they sit in a line, so this rule is applied to the whole line
before any other reading."""
_ERROR_WORDS = re.compile(r"\bTraceback \(most recent call last\)|\b[A-Z]\w*(?:Exception|Error)\b(?<!\bError)")
_ROLE_OF_KIND = MappingProxyType({"benign": Role.NOISE, "recovery": Role.RECOVERY, "consequence": Role.CONSEQUENCE})


@dataclass(frozen=True)
class LineReading:
    """One line as the accounting sees it: parsed, the fault rule it matched (if any), and its role otherwise."""

    parsed: ParsedLine
    signal: Signal | None
    role: Role


@functools.lru_cache(maxsize=4_096)  # a pure function: one incident reads its lines three times
def read_line(line: str, yearless_year: int = 2000, book: RuleBook = BUILTIN) -> LineReading:
    """Parse a line and classify its message part: a fault rule by priority, else its role (abnormal lines get
    an UNKNOWN signal, so nothing abnormal goes unaccounted)."""
    text = line[:MAX_LINE_CHARS] if isinstance(line, str) else ""
    if "\x1b" in text:
        text = _ANSI_ESCAPE.sub("", text)
    parsed = parse_line(text, yearless_year)
    message = ZERO_COUNT.sub(" ", parsed.message)  # "0 errors", "failed=0" count nothing
    parsed = replace(parsed, message=message)
    low = message.lower()
    if _INJECTION.regex.search(text.lower()):
        # instructions aimed at a model are hostile wherever they sit in the line
        return LineReading(parsed, Signal(Category.SECURITY_EVENT, "logs", quote(text), "prompt_injection"), Role.PLAIN)
    if is_client_gone(low):
        return LineReading(parsed, None, Role.NOISE)
    tokens = tokens_of(message)
    rule = book.fault(message, tokens)
    if rule is None and "_" in message:
        rule = book.fault(split_metric_names(message))  # stats names such as upstream_rq_pending_overflow: 48213
    forced = None
    if rule is None or (rule.category not in RECOVERABLE and "any_level" not in rule.flags):
        # a probe of the service itself quotes the probe's own error ("connection refused", "deadline exceeded")
        forced = book.role(message, tokens, first=True)
        if forced is not None and forced.kind == "consequence" and is_outbound(low):
            forced = None
        rule = None if forced is not None else rule
    any_level = rule is not None and "any_level" in rule.flags
    if rule is not None and not any_level and parsed.level < Level.ERROR and is_plain_recovery(low):
        return LineReading(parsed, None, Role.RECOVERY)  # "watermark no longer exceeded", "reconnected"
    if rule is not None and (any_level or parsed.level is not Level.DEBUG):
        return LineReading(parsed, Signal(rule.category, "logs", quote(text), rule.signal_name), Role.PLAIN)
    role = line_role(parsed)
    kind = forced or (book.role(message, tokens) if parsed.level is not Level.DEBUG else None)
    if kind is not None:
        role = _role_by_rule(kind.kind, role, forced=forced is not None, outbound=is_outbound(low))
    # error level, or no level at all and an exception or traceback: worth a ticket even on a healthy server
    error_level = parsed.level >= Level.ERROR or (parsed.level is Level.UNSET and bool(_ERROR_WORDS.search(text)))
    if role in (Role.ABNORMAL, Role.CONSEQUENCE) or (role is Role.AFTERMATH and error_level):
        # a crash report's lines are abnormal too; the accounting clears them when a local death explains them
        name = UNRECOGNISED_RULE if error_level else UNEXPLAINED_RULE
        return LineReading(parsed, Signal(Category.UNKNOWN, "logs", quote(text), name), role)
    return LineReading(parsed, None, role)


_SYMPTOM_ROLES = frozenset({Role.MEMORY_SYMPTOM, Role.SLOW_SYMPTOM, Role.THREAD_SYMPTOM, Role.STALL})


def _role_by_rule(kind: str, role: Role, *, forced: bool, outbound: bool) -> Role:
    """The role a role rule gives a line: noise and recovery over anything but a start; a consequence over an
    abnormal line or a death's aftermath (a symptom keeps its own explainers), and over any line when the rule
    outranked a fault rule; never for a line about a call to someone else."""
    if kind == "benign":
        return role if role is Role.STARTUP else Role.NOISE
    if kind == "recovery":
        return role if role is Role.NOISE else Role.RECOVERY
    if outbound or role in (Role.RECOVERY, Role.STARTUP, Role.NOISE) or (role in _SYMPTOM_ROLES and not forced):
        return role
    if role in (Role.ABNORMAL, Role.AFTERMATH) or forced:
        return Role.CONSEQUENCE
    return role


def explain_line(line: str, book: RuleBook = BUILTIN) -> dict[str, str]:
    """What one line is, for `rules explain`: its role or rule, category, level and the rule's origin."""
    reading = read_line(line, 2000, book)
    signal = reading.signal
    name = signal.rule if signal is not None else ""
    rule = book.rule(name.removeprefix("user:")) if name else None
    if rule is None and reading.role in (Role.NOISE, Role.RECOVERY, Role.CONSEQUENCE):
        rule = book.role(reading.parsed.message)
    return {
        "role": reading.role.value,
        "category": signal.category.value if signal is not None else "",
        "rule": rule.name if rule is not None else name,
        "family": rule.family if rule is not None else "",
        "origin": rule.origin if rule is not None else "",
        "source": rule.source if rule is not None else "",
        "level": reading.parsed.level.name.lower(),
        "message": reading.parsed.message[:200],
    }


def example_failures(book: RuleBook, rules: Sequence[Rule]) -> list[str]:
    """Every example of the rules, one line per failure (a rule with no `match` example fails too). A `match` line
    must match the rule's own pattern and be read by the whole book as the rule's kind (a fault of that category,
    or for a consequence, a consequence or a symptom): no rule of another kind may shadow it. A `no_match` line
    must not match the rule's own pattern."""
    compiled = {item.rule.name: item for item in (*book.faults, *book.roles)}
    failures: list[str] = []
    for rule in rules:
        where = f"{rule.origin if rule.user else 'built-in ' + rule.family}: rule {rule.name}"
        item = compiled.get(rule.name)
        if item is None:
            failures.append(f"{where}: not in the rule book")
            continue
        if not rule.matches:
            failures.append(f"{where}: no example line that must match")
        for line in rule.matches:
            reading = read_line(line, 2000, book)
            low = reading.parsed.message.lower()
            if not (item.hits(low) or item.hits(split_metric_names(low))):
                failures.append(f"{where}: {line[:80]!r} should match, but the pattern does not")
            elif _kind_of(reading) not in _KINDS_FOR.get(rule.kind, {rule.kind}):
                failures.append(f"{where}: {line[:80]!r} should be read as {rule.kind}, not {_kind_of(reading)}")
        for line in rule.non_matches:
            low = read_line(line, 2000, book).parsed.message.lower()
            if item.hits(low):
                failures.append(f"{where}: {line[:80]!r} must not match, but does")
    return failures


_KINDS_FOR = MappingProxyType(
    {
        # a consequence read as a local fault itself, or as a symptom, is explained the same way or better
        "consequence": frozenset({"consequence", "memory_symptom", "slow_symptom", "thread_symptom", "stall"})
        | frozenset(category.value for category in RECOVERABLE),
        "benign": frozenset({"noise"}),
        "recovery": frozenset({"recovery"}),
    }
)


def _kind_of(reading: LineReading) -> str:
    """A reading as a rule kind: the fault category of its signal, else its role."""
    if reading.signal is not None and reading.signal.category is not Category.UNKNOWN:
        return reading.signal.category.value
    return reading.role.value


def classify_line(line: str) -> Signal | None:
    """Signal for one log line: first matching fault rule by priority, else an abnormal line as UNKNOWN, else
    None (ordinary operation, symptoms, recoveries, starts and noise carry no signal of their own)."""
    if not isinstance(line, str):
        return None
    return read_line(line).signal


def classify_logs(lines: Iterable[str]) -> list[Signal]:
    """One signal per line that matched something, in log order."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    return [signal for signal in map(classify_line, lines) if signal is not None]


def _figure(health: Mapping[str, object], key: str) -> float | None:
    """A percentage figure as a finite non-negative float; None when missing or unreadable."""
    value = health.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().removesuffix("%"))
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def figures(health: Mapping[str, object] | None) -> tuple[float | None, float | None]:
    """(cpu_percent, memory_percent), each None when unavailable."""
    if not isinstance(health, Mapping):
        return None, None
    return _figure(health, "cpu_percent"), _figure(health, "memory_percent")


def figures_normal(health: Mapping[str, object] | None) -> bool:
    """Both figures readable and under threshold (status aside)."""
    cpu, memory = figures(health)
    return cpu is not None and memory is not None and cpu < CPU_SATURATION_PERCENT and memory < MEMORY_PRESSURE_PERCENT


def status_of(health: Mapping[str, object]) -> str:
    """The reported status, normalised and cut short; empty when missing."""
    status = health.get("status")
    return quote(status.lower())[:40] if isinstance(status, str) else ""


def _slug(text: str) -> str:
    """A rule-name-safe form of a status word."""
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "other"


def _format_number(value: float) -> str:
    """98.5 stays 98.5, 71.0 becomes 71."""
    return f"{value:g}"


def classify_health(health: Mapping[str, object] | None) -> list[Signal]:
    """Signals from health figures: CPU/memory at or over threshold, and a non-healthy status (as UNKNOWN)."""
    if not isinstance(health, Mapping):
        return []
    signals: list[Signal] = []
    cpu, memory = figures(health)
    checks = (
        ("cpu_percent", cpu, CPU_SATURATION_PERCENT, Category.CPU_SATURATION, "cpu_high"),
        ("memory_percent", memory, MEMORY_PRESSURE_PERCENT, Category.MEMORY_PRESSURE, "memory_high"),
    )
    for key, value, threshold, category, rule in checks:
        if value is not None and value >= threshold:
            detail = f"{key}={_format_number(value)} (>= {_format_number(threshold)})"
            signals.append(Signal(category, "health", detail, rule))
    status = status_of(health)
    if status and status != "healthy":
        signals.append(Signal(Category.UNKNOWN, "health", f"status={status}", f"status_{_slug(status)}"))
    return signals


def is_healthy(health: Mapping[str, object] | None) -> bool:
    """Status healthy and both figures readable and under threshold; anything missing is not healthy."""
    return isinstance(health, Mapping) and status_of(health) == "healthy" and figures_normal(health)
