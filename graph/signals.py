"""Deterministic evidence classifier: health figures and log lines to fault categories and a restart call."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from graph.log_rules import (
    BLOCKING,
    BLOCKING_PRIORITY,
    BURST_RULES,
    LINE_PRIORITY,
    RECOVERABLE,
    RECOVERABLE_PRIORITY,
    RULES,
    UNRECOGNISED_RULE,
    Category,
    Rule,
)

__all__ = [
    "BLOCKING", "BURST_RULES", "CPU_SATURATION_PERCENT", "MEMORY_PRESSURE_PERCENT", "RECOVERABLE", "Category",
    "Diagnosis", "Signal", "classify_health", "classify_line", "classify_logs", "diagnose", "is_healthy",
]

MAX_LINE_CHARS = 2000
DETAIL_CHARS = 300
MAX_EVIDENCE = 8
SECURITY_BURST = 3
CPU_SATURATION_PERCENT = 90.0
MEMORY_PRESSURE_PERCENT = 90.0



_PHRASES: Mapping[Category, str] = MappingProxyType({
    Category.CPU_SATURATION: "high CPU",
    Category.MEMORY_PRESSURE: "memory pressure",
    Category.OOM_KILL: "out-of-memory kills",
    Category.HUNG_PROCESS: "a hung process",
    Category.DEPENDENCY_FAILURE: "dependency failures",
    Category.DISK_FULL: "a full disk",
    Category.SECURITY_EVENT: "a security event",
    Category.HARDWARE_FAULT: "hardware faults",
    Category.CONFIG_ERROR: "configuration errors",
})



# Error-level markers other than an upper-case level word: Apache [error], logfmt/JSON levels (pino 50/60),
# "error: " prefixes (sshd), Python tracebacks.
_ERROR_MARKER = re.compile(
    r"\[(?:error|crit|alert|emerg)\]|level=[\"']?(?:error|fatal|critical)\b"
    r"|\"level\"\s*:\s*(?:\"(?:error|fatal|critical)\"|[56]0\b)|error:\s|Traceback \(most recent call last\)"
)
_LOW_MARKER = re.compile(r"\[(?:info|debug|notice)\]")
_UPPER_LEVELS: frozenset[bytes] = frozenset(
    b"ERROR FATAL CRITICAL CRIT SEVERE EMERG EMERGENCY ALERT PANIC".split()
)
_LOW_LEVELS: frozenset[bytes] = frozenset(b"INFO DEBUG TRACE NOTICE".split())
_BARE_NAMES: frozenset[bytes] = frozenset({b"Exception", b"Error"})
# Lower-case tokens that make a line worth the (costlier) error-level checks, besides "error"/"exception".
_LEVEL_WORDS: frozenset[bytes] = frozenset(
    b"fatal critical crit severe emerg emergency alert panic traceback level".split()
)
_CLIENT_REQUEST = re.compile(r"\[client [0-9A-Fa-f.:]+\]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_WORD_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")
# One C-level pass over the UTF-8 bytes: ASCII letters folded to lower case, all but [a-z0-9_] to spaces.
_FOLD = bytes(
    code if code in _WORD_CHARS else code + 32 if 65 <= code <= 90 else 32 for code in range(256)
)
# The same without case folding, for level words and exception class names.
_SPLIT = bytes(code if code in _WORD_CHARS or 65 <= code <= 90 else 32 for code in range(256))


@dataclass(frozen=True)
class _Compiled:
    """A rule with its patterns compiled."""

    rule: Rule
    regex: re.Pattern[str]
    unless: re.Pattern[str] | None


def _compile_rules() -> tuple[_Compiled, ...]:
    """All rules compiled, ordered by LINE_PRIORITY (blocking before recoverable)."""
    ordered = sorted(RULES, key=lambda rule: LINE_PRIORITY.index(rule.category))
    return tuple(
        _Compiled(rule, re.compile(rule.pattern), re.compile(rule.unless) if rule.unless else None)
        for rule in ordered
    )


def _index_triggers(compiled: Sequence[_Compiled]) -> Mapping[bytes, tuple[int, ...]]:
    """Trigger word (as folded bytes) -> indices of the rules it may fire."""
    index: dict[bytes, list[int]] = {}
    for position, item in enumerate(compiled):
        for word in item.rule.words.split():
            token = word.encode("ascii")
            if not set(token) <= _WORD_CHARS:
                raise ValueError(f"trigger word {word!r} of rule {item.rule.name} can never be a token")
            index.setdefault(token, []).append(position)
    return MappingProxyType({token: tuple(positions) for token, positions in index.items()})


_COMPILED: tuple[_Compiled, ...] = _compile_rules()
_TRIGGERS: Mapping[bytes, tuple[int, ...]] = _index_triggers(_COMPILED)
_TRIGGER_WORDS: frozenset[bytes] = frozenset(_TRIGGERS)


@dataclass(frozen=True)
class Signal:
    """One piece of evidence: a category, where it came from, the quoted line or figure, and the rule."""

    category: Category
    source: Literal["health", "logs"]
    detail: str
    rule: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"category": self.category.value, "source": self.source, "detail": self.detail,
                "rule": self.rule}


@dataclass(frozen=True)
class Diagnosis:
    """The classifier's finding: primary category, restart verdict, the evidence and a plain reason."""

    category: Category
    restart_recommended: bool
    signals: tuple[Signal, ...]
    evidence: tuple[str, ...]
    reason: str

    @property
    def categories(self) -> frozenset[Category]:
        """Categories that count after thresholds; the primary category alone when none do."""
        return _counted(self.signals) or frozenset({self.category})

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable form."""
        return {
            "category": self.category.value,
            "restart_recommended": self.restart_recommended,
            "categories": sorted(category.value for category in self.categories),
            "evidence": list(self.evidence),
            "reason": self.reason,
            "signals": [signal.to_dict() for signal in self.signals],
        }


def _quote(line: str) -> str:
    """The line as evidence: stripped, control characters replaced, cut to DETAIL_CHARS with an ellipsis."""
    text = _CONTROL_CHARS.sub("\ufffd", line.strip())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _words(text: str) -> bytes:
    """The line folded to lowercase ASCII words separated by spaces (non-ASCII becomes separators)."""
    return text.encode("utf-8", "replace").translate(_FOLD)


def _match_rule(text: str, hits: Iterable[bytes]) -> Rule | None:
    """The first rule (priority order) among those triggered whose pattern matches the lowercased line."""
    low = text.lower()
    for position in sorted({position for word in hits for position in _TRIGGERS[word]}):
        item = _COMPILED[position]
        if item.regex.search(low) and not (item.unless and item.unless.search(low)):
            return item.rule
    return None


def _is_exception_name(token: bytes) -> bool:
    """A class-like name such as NullPointerException or AssertionError."""
    return token[:1].isupper() and token.endswith((b"Exception", b"Error")) and token not in _BARE_NAMES


def _is_unrecognised_error(text: str, words: bytes, tokens: Sequence[bytes]) -> bool:
    """Error-level or exception lines; Apache per-client request errors and INFO exceptions are noise."""
    if not (b"error" in words or b"exception" in words or not _LEVEL_WORDS.isdisjoint(tokens)):
        return False
    if _CLIENT_REQUEST.search(text):
        return False
    cased = text.encode("utf-8", "replace").translate(_SPLIT).split()
    if not _UPPER_LEVELS.isdisjoint(cased) or _ERROR_MARKER.search(text):
        return True
    if not any(map(_is_exception_name, cased)):
        return False
    return _LOW_LEVELS.isdisjoint(cased) and not _LOW_MARKER.search(text)


# Security and hardware lines count whatever level the software gave them (sshd and kernels log them as info).
_ANY_LEVEL = frozenset({Category.SECURITY_EVENT, Category.HARDWARE_FAULT})
_DEBUG_MARKER = re.compile(r"\[(?:debug|trace)\]")
_LOW_JSON_LEVEL = re.compile(r"\"level\"\s*:\s*(?:\"(?:debug|trace)\"|[12]0\b)|\blevel=[\"']?(?:debug|trace)\b",
                             re.IGNORECASE)


def _is_low_level(text: str) -> bool:
    """A line its software marked DEBUG/TRACE (and nothing error-level): diagnostics chatter such as "deadlock
    check: no deadlocked threads found". INFO is not enough: Hadoop and ZooKeeper report real faults at INFO."""
    cased = text[:200].encode("utf-8", "replace").translate(_SPLIT).split()
    if not _UPPER_LEVELS.isdisjoint(cased) or _ERROR_MARKER.search(text):
        return False
    return bool(_LOW_JSON_LEVEL.search(text) or _DEBUG_MARKER.search(text.lower())
                or not {b"DEBUG", b"TRACE"}.isdisjoint(cased[:12]))


def classify_line(line: str) -> Signal | None:
    """Signal for one log line: first matching category by priority, else unrecognised error, else None."""
    if not isinstance(line, str):
        return None
    text = line[:MAX_LINE_CHARS]
    if "\x1b" in text:
        text = _ANSI_ESCAPE.sub("", text)
    words = _words(text)
    tokens = words.split()
    hits = _TRIGGER_WORDS.intersection(tokens)
    rule = _match_rule(text, hits) if hits else None
    if rule is not None and rule.category not in _ANY_LEVEL and _is_low_level(text):
        return None
    if rule is not None:
        return Signal(rule.category, "logs", _quote(text), rule.name)
    if _is_unrecognised_error(text, words, tokens):
        return Signal(Category.UNKNOWN, "logs", _quote(text), UNRECOGNISED_RULE)
    return None


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


def _figures(health: Mapping[str, object] | None) -> tuple[float | None, float | None]:
    """(cpu_percent, memory_percent), each None when unavailable."""
    if not isinstance(health, Mapping):
        return None, None
    return _figure(health, "cpu_percent"), _figure(health, "memory_percent")


def _figures_normal(health: Mapping[str, object] | None) -> bool:
    """Both figures readable and under threshold (status aside)."""
    cpu, memory = _figures(health)
    return (cpu is not None and memory is not None
            and cpu < CPU_SATURATION_PERCENT and memory < MEMORY_PRESSURE_PERCENT)


def _status(health: Mapping[str, object]) -> str:
    """The reported status, normalised and cut short; empty when missing."""
    status = health.get("status")
    return _quote(status.lower())[:40] if isinstance(status, str) else ""


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
    cpu, memory = _figures(health)
    checks = (
        ("cpu_percent", cpu, CPU_SATURATION_PERCENT, Category.CPU_SATURATION, "cpu_high"),
        ("memory_percent", memory, MEMORY_PRESSURE_PERCENT, Category.MEMORY_PRESSURE, "memory_high"),
    )
    for key, value, threshold, category, rule in checks:
        if value is not None and value >= threshold:
            detail = f"{key}={_format_number(value)} (>= {_format_number(threshold)})"
            signals.append(Signal(category, "health", detail, rule))
    status = _status(health)
    if status and status != "healthy":
        signals.append(Signal(Category.UNKNOWN, "health", f"status={status}", f"status_{_slug(status)}"))
    return signals


def is_healthy(health: Mapping[str, object] | None) -> bool:
    """Status healthy and both figures readable and under threshold; anything missing is not healthy."""
    return isinstance(health, Mapping) and _status(health) == "healthy" and _figures_normal(health)


def _security_counts(signals: Sequence[Signal]) -> bool:
    """A burst of auth failures, or any single explicit alert."""
    security = [signal for signal in signals if signal.category is Category.SECURITY_EVENT]
    bursts = sum(1 for signal in security if signal.rule in BURST_RULES)
    return bursts >= SECURITY_BURST or any(signal.rule not in BURST_RULES for signal in security)


def _counted(signals: Sequence[Signal]) -> frozenset[Category]:
    """Categories that count: blocking from logs (security needs a burst), recoverable from health or logs."""
    counted = {signal.category for signal in signals} & (RECOVERABLE | BLOCKING)
    if Category.SECURITY_EVENT in counted and not _security_counts(signals):
        counted.discard(Category.SECURITY_EVENT)
    return frozenset(counted)


def _primary(counted: frozenset[Category], healthy: bool, has_unknown: bool) -> Category:
    """Blocking by priority, else recoverable by priority, else unknown, else no fault."""
    for category in LINE_PRIORITY:
        if category in counted:
            return category
    return Category.UNKNOWN if has_unknown or not healthy else Category.NO_FAULT


def _evidence(signals: Sequence[Signal], order: Sequence[Category]) -> tuple[str, ...]:
    """Up to MAX_EVIDENCE distinct details: the first of each category (in order), then the rest in order."""
    grouped = [[signal.detail for signal in signals if signal.category is category] for category in order]
    picked: list[str] = []
    for details in [group[:1] for group in grouped] + grouped:
        for detail in details:
            if detail not in picked and len(picked) < MAX_EVIDENCE:
                picked.append(detail)
    return tuple(picked)


def _labels(signals: Sequence[Signal], category: Category) -> str:
    """What was seen for a category: health figures as such, log rules by name; at most three."""
    labels: list[str] = []
    for signal in signals:
        label = signal.detail.split(" ")[0] if signal.source == "health" else signal.rule.replace("_", " ")
        if signal.category is category and label not in labels:
            labels.append(label)
    return ", ".join(labels[:3])


def _describe(signals: Sequence[Signal], categories: Sequence[Category]) -> str:
    """'dependency failures (connection refused) and high CPU (cpu_percent=98.5)' style text."""
    parts = [f"{_PHRASES[category]} ({_labels(signals, category)})" for category in categories]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _sources(signals: Sequence[Signal], categories: Sequence[Category]) -> str:
    """'Logs show', 'Health figures show' or 'Health figures and logs show', from where the evidence came."""
    sources = {signal.source for signal in signals if signal.category in categories}
    if sources == {"health"}:
        return "Health figures show"
    return "Health figures and logs show" if "health" in sources else "Logs show"


def _unknown_text(health: Mapping[str, object] | None, signals: Sequence[Signal]) -> str:
    """Why something looks wrong: health unavailable, bad status, unreadable figures, error lines."""
    reasons: list[str] = []
    if not isinstance(health, Mapping):
        reasons.append("health figures are unavailable")
    else:
        status = _status(health)
        if status != "healthy":
            reasons.append(f"status is {status}" if status else "status is not reported")
        if None in _figures(health):
            reasons.append("CPU/memory figures are missing or unreadable")
    errors = sum(1 for signal in signals if signal.rule == UNRECOGNISED_RULE)
    if errors:
        reasons.append(f"{errors} unrecognised error line{'s' if errors != 1 else ''} in the logs")
    return "; ".join(reasons)


def _reason(primary: Category, counted: frozenset[Category], signals: Sequence[Signal],
            health: Mapping[str, object] | None) -> str:
    """One plain sentence for the operator."""
    blocking = [category for category in BLOCKING_PRIORITY if category in counted]
    recoverable = [category for category in RECOVERABLE_PRIORITY if category in counted]
    if blocking:
        context = (f"alongside {_describe(signals, recoverable)}" if recoverable
                   else "while CPU and memory are normal" if _figures_normal(health)
                   else "with no sign of a local recoverable fault")
        return (f"{_sources(signals, blocking)} {_describe(signals, blocking)} {context}; "
                "a restart would not help.")
    if recoverable:
        found = (f"{_sources(signals, recoverable)} {_describe(signals, recoverable)} "
                 "with no sign of an external cause")
        if not isinstance(health, Mapping):
            return f"{found}, but health figures are unavailable; escalate rather than restart blind."
        return f"{found}; a restart is recommended."
    if primary is Category.UNKNOWN:
        return (f"Something is wrong ({_unknown_text(health, signals)}) but there is no recognised cause; "
                "escalate.")
    return "Health figures are normal and the logs show nothing alarming; no fault found."


_RECOVERED = re.compile(r"\b(?:succeeded|recovered|reconnected|restored|re-?established|back online)\b",
                        re.IGNORECASE)


def _transient_dependency(lines: Sequence[str], signals: Sequence[Signal]) -> bool:
    """A single dependency failure followed by a line saying it recovered (a retry that worked) is noise."""
    failures = [signal for signal in signals if signal.category is Category.DEPENDENCY_FAILURE]
    if len(failures) != 1:
        return False
    texts = [line for line in lines if isinstance(line, str)]
    for position, line in enumerate(texts):
        if _quote(line[:MAX_LINE_CHARS]) == failures[0].detail:
            return any(_RECOVERED.search(later) for later in texts[position + 1:])
    return False


def diagnose(health: Mapping[str, object] | None, lines: Sequence[str]) -> Diagnosis:
    """Classify health and logs, apply the counting thresholds and decide restart vs escalate."""
    health = health if isinstance(health, Mapping) else None
    if isinstance(lines, str):
        lines = lines.splitlines()
    signals = tuple(classify_health(health) + classify_logs(lines or ()))
    counted = _counted(signals)
    if Category.DEPENDENCY_FAILURE in counted and _transient_dependency(lines or (), signals):
        counted = counted - {Category.DEPENDENCY_FAILURE}
    has_unknown = any(signal.category is Category.UNKNOWN for signal in signals)
    primary = _primary(counted, is_healthy(health), has_unknown)
    restart = health is not None and bool(counted & RECOVERABLE) and not counted & BLOCKING
    order = [category for category in LINE_PRIORITY if category in counted] + [Category.UNKNOWN]
    return Diagnosis(
        category=primary,
        restart_recommended=restart,
        signals=signals,
        evidence=_evidence([signal for signal in signals if signal.category in order], order),
        reason=_reason(primary, counted, signals, health),
    )
