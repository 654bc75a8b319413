"""The finding over one incident's evidence, closed-world: a restart only for what a local fault wholly explains.

Every line in the incident window is accounted for. A line is a fault (a rule's category), a symptom of a local
fault, a recovery, a start, noise, ordinary operation, or abnormal (error or warning level, or failure wording,
in any format). Abnormal lines that the recoverable finding does not explain block an automatic restart, so a
log format or a failure nobody wrote a rule for lands on the escalation side by construction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from it_support_agent.incident.line_roles import Role, is_shutdown, is_stall, shows_symptom
from it_support_agent.incident.log_parse import Level
from it_support_agent.incident.log_rules import (
    BLOCKING,
    BLOCKING_PRIORITY,
    CONTEXT,
    LINE_PRIORITY,
    RECOVERABLE,
    RECOVERABLE_PRIORITY,
    UNEXPLAINED_RULE,
    UNRECOGNISED_RULE,
    Category,
)
from it_support_agent.incident.records import DiagnosisRecord
from it_support_agent.incident.rulebook import BUILTIN, RuleBook
from it_support_agent.incident.signals import (
    MAX_EVIDENCE,
    SECURITY_BURST,
    LineReading,
    Signal,
    classify_health,
    figures,
    figures_normal,
    is_healthy,
    quote,
    read_line,
    status_of,
)
from it_support_agent.incident.surroundings import (
    compromise_chain,
    is_other_process,
    names_in,
    other_process_cpu,
    stuck_after_recovery,
)

__all__ = ["INCIDENT_WINDOW_S", "Diagnosis", "assess_evidence"]

INCIDENT_WINDOW_S = 1800.0
"""Default incident window: evidence older than this before the newest log line is stale."""
EVENT_SPAN_S = 2.0
"""Lines this close to an OOM kill or a deadlock dump belong to that event (the exit, the unit failing)."""
YEAR_SLACK_S = 2 * 86400.0
PERSISTENCE_S = 60.0
HALF_YEAR_S = 182 * 86400.0
MAX_ZONE_OFFSET_S = 14 * 3600.0
EVENT_GAP_S = 30.0
"""Fault lines closer together than this are one event (one OOM kill writes several kernel lines)."""
MAX_QUOTED = 6

_PHRASES: Mapping[Category, str] = MappingProxyType(
    {
        Category.CPU_SATURATION: "high CPU",
        Category.MEMORY_PRESSURE: "memory pressure",
        Category.OOM_KILL: "out-of-memory kills",
        Category.HUNG_PROCESS: "a hung process",
        Category.DEPENDENCY_FAILURE: "dependency failures",
        Category.DISK_FULL: "a full disk",
        Category.SECURITY_EVENT: "a security event",
        Category.HARDWARE_FAULT: "hardware faults",
        Category.CONFIG_ERROR: "configuration errors",
        Category.LOAD_SURGE: "load from outside the process",
        Category.RECENT_CHANGE: "a change just before the fault",
        Category.CRASH_LOOP: "a crash loop",
    }
)
# Faults a later recovery line never clears: they need a person whatever happened next.
_NEVER_CLEARED = frozenset({Category.SECURITY_EVENT, Category.HARDWARE_FAULT})
# Which findings explain which kind of symptom line.
_EXPLAINERS: Mapping[Role, frozenset[Category]] = MappingProxyType(
    {
        Role.MEMORY_SYMPTOM: frozenset({Category.MEMORY_PRESSURE, Category.OOM_KILL, Category.HUNG_PROCESS}),
        Role.SLOW_SYMPTOM: RECOVERABLE,
        # a process short of memory stalls in GC, so its threads block and its health checks fail too
        Role.THREAD_SYMPTOM: RECOVERABLE,
        Role.STALL: RECOVERABLE,
        Role.CONSEQUENCE: RECOVERABLE,
        Role.AFTERMATH: frozenset({Category.OOM_KILL, Category.HUNG_PROCESS}),
    }
)
# Local faults that end the process or stop it: their exit lines are part of them.
_DEATHS = frozenset({Category.OOM_KILL, Category.HUNG_PROCESS})
# "producer rate 48100 msg/s (normal 6000)", "+61200/min, baseline +9800/min": a rate at twice its baseline or more.
_SURGE = re.compile(
    r"\b(?:rate|rps|qps|req/s|requests?/s|requests per|msg/s|messages?/s|/min|/s|per second|traffic|connections/s)"
    r"[^\n]{0,20}?\b(?P<now>\d[\d,]*(?:\.\d+)?)[^\n\d]{0,30}?\b(?:normal|baseline|usual|typical|avg|average)\b"
    r"[\s:=~<(+]{0,4}(?P<base>\d[\d,]*(?:\.\d+)?)"
    r"|\b(?P<now2>\d[\d,]*(?:\.\d+)?)\s?(?:/min|/s|rps|qps|req/s|msg/s)[^\n\d]{0,30}?\b(?:normal|baseline|usual"
    r"|typical)\b[\s:=~<(+]{0,4}(?P<base2>\d[\d,]*(?:\.\d+)?)"
)
_VICTIM = re.compile(r"\bkilled process \d+ \(([^)\s]{1,64})\)", re.IGNORECASE)
_OOMD_VICTIM = re.compile(
    r"\bkilled /\S*?([\w@.-]+?)(?:\.service|\.scope|\.slice)? due to memory pressure", re.IGNORECASE
)
_DEATH = re.compile(
    r"killed process|oom-kill|oomkill|oom_kill|terminating due to|out of memory: kill|exited|exit code|exit status"
    r"|core dumped|aborted|fatal error|reached heap limit|javascript heap out of memory|runtime: out of memory",
    re.IGNORECASE,
)
_ANNOUNCES_BUILD = re.compile(
    r"\bversion\b|\bv\d+\.\d+|\bimage\b|\brelease\b|\bbuild\b|\bcommit\b|\brevision\b", re.IGNORECASE
)
_KILLED_PID = re.compile(r"\bkilled process (\d+)", re.IGNORECASE)
_CRASH = re.compile(
    r"\b(?:segfault|segmentation fault|core dumped|panic:|fatal error:|terminated by signal"
    r"|exited with (?:code|status) [1-9]|main process exited|unhandled exception)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Diagnosis:
    """The finding: primary category, restart verdict, the evidence on both sides and a plain reason."""

    category: Category
    restart_recommended: bool
    signals: tuple[Signal, ...]
    evidence: tuple[str, ...]
    reason: str
    supporting: tuple[str, ...] = ()
    against: tuple[str, ...] = ()
    unexplained: tuple[str, ...] = ()
    window: Mapping[str, float] = field(default_factory=dict)
    basis: str = ""
    """What a recommended restart rests on: "logs" (a line shows the fault or its symptoms in the service
    itself), "status" (its supervisor reports it down), or "figures" alone, which an operator must approve."""

    @property
    def categories(self) -> frozenset[Category]:
        """Categories that count after thresholds; the primary category alone when none do."""
        return _counted(self.signals) or frozenset({self.category})

    def to_dict(self) -> DiagnosisRecord:
        """JSON-serialisable form."""
        return {
            "category": self.category.value,
            "restart_recommended": self.restart_recommended,
            "categories": sorted(category.value for category in self.categories),
            "evidence": list(self.evidence),
            "reason": self.reason,
            "signals": [signal.to_dict() for signal in self.signals],
            "for": list(self.supporting),
            "against": list(self.against),
            "unexplained": list(self.unexplained),
            "window": dict(self.window),
            "basis": self.basis,
        }


@dataclass
class _Ledger:
    """The incident window's lines, sorted into what counts for and against a restart."""

    readings: list[LineReading]
    times: list[float | None]
    fresh: list[int]
    stale: int = 0
    recovered: int = 0


def _security_counts(signals: Sequence[Signal], burst: frozenset[str]) -> bool:
    """A burst of auth failures, or any single explicit alert."""
    security = [signal for signal in signals if signal.category is Category.SECURITY_EVENT]
    bursts = sum(1 for signal in security if signal.rule in burst)
    return bursts >= SECURITY_BURST or any(signal.rule not in burst for signal in security)


def _counted(signals: Sequence[Signal], burst: frozenset[str] = BUILTIN.flags["burst"]) -> frozenset[Category]:
    """Categories that count: blocking from logs (security needs a burst), recoverable from health or logs."""
    counted = {signal.category for signal in signals} & (RECOVERABLE | BLOCKING)
    if Category.SECURITY_EVENT in counted and not _security_counts(signals, burst):
        counted.discard(Category.SECURITY_EVENT)
    return frozenset(counted)


def _read(lines: Sequence[str], book: RuleBook) -> tuple[list[LineReading], list[float | None]]:
    """Every line read; each line's time is its own stamp, or the last stamp before it (stack traces and
    continuation lines belong to the line that started them). Year-less stamps take the log's own year."""
    readings = [read_line(line, 2000, book) for line in lines]
    years = [
        reading.parsed.timestamp
        for reading in readings
        if reading.parsed.timestamp is not None and not reading.parsed.yearless
    ]
    if years and any(reading.parsed.yearless for reading in readings):
        newest = max(years)
        year = time.gmtime(newest).tm_year
        readings = [
            _yearless_in(line, year, newest, book) if reading.parsed.yearless else reading
            for line, reading in zip(lines, readings, strict=True)
        ]
    times: list[float | None] = []
    last: float | None = None
    years_on = 0  # New Years passed so far in a year-less log: "Dec 31 23:59" then "Jan 1 00:00"
    for line, reading in zip(lines, readings, strict=True):
        stamp = reading.parsed.timestamp
        if stamp is not None and reading.parsed.yearless:
            year = time.gmtime(stamp).tm_year
            later = read_line(line, year + years_on, book).parsed.timestamp if years_on else stamp
            if later is not None and last is not None and later < last - HALF_YEAR_S:
                years_on += 1
                later = read_line(line, year + years_on, book).parsed.timestamp
            stamp = later
        if stamp is not None:
            last = stamp
        times.append(last)
    return readings, times


def _yearless_in(line: str, year: int, newest: float, book: RuleBook) -> LineReading:
    """A year-less line read in the log's year, or the year before when that would put it in the future
    ("Dec 31 23:58" beside "2027-01-01T00:02Z")."""
    reading = read_line(line, year, book)
    stamp = reading.parsed.timestamp
    return read_line(line, year - 1, book) if stamp is not None and stamp > newest + YEAR_SLACK_S else reading


def _window(readings: list[LineReading], times: list[float | None], window_s: float) -> _Ledger:
    """Lines inside the incident window (the window_s before the newest stamped line); unstamped logs are all in.
    Security and hardware evidence never goes stale: an intrusion or a failing disk needs a person however old.
    When zone-less stamps (some host's local time) sit beside zoned ones, their offset is unknown: the window
    widens by the largest offset there is, so no fresh line is taken for an old one."""
    stamped = [stamp for stamp in times if stamp is not None]
    newest = max(stamped) if stamped else None
    kinds = {reading.parsed.zoned for reading in readings if reading.parsed.timestamp is not None}
    if len(kinds) > 1:
        window_s += MAX_ZONE_OFFSET_S
    fresh: list[int] = []
    stale = 0
    for index, stamp in enumerate(times):
        signal = readings[index].signal
        if (
            newest is None
            or stamp is None
            or stamp >= newest - window_s
            or (signal is not None and signal.category in _NEVER_CLEARED)
        ):
            fresh.append(index)
        elif signal is not None or readings[index].role is not Role.PLAIN:
            stale += 1
    return _Ledger(readings, times, fresh, stale=stale)


def _clear_recovered(ledger: _Ledger, healthy_now: bool) -> None:
    """On a server healthy now, what came before the last recovery (or start) line is over; whatever the health,
    a lone dependency failure followed by a recovery line is a retry that worked."""
    marks = [index for index in ledger.fresh if ledger.readings[index].role in (Role.RECOVERY, Role.STARTUP)]
    if not marks:
        return
    recoveries = [index for index in marks if ledger.readings[index].role is Role.RECOVERY]
    failures = [index for index in ledger.fresh if _category(ledger, index) is Category.DEPENDENCY_FAILURE]
    lone_retry = (
        failures[0]
        if len(failures) == 1
        and any(index > failures[0] and _related(ledger, failures[0], index) for index in recoveries)
        else None
    )
    keep: list[int] = []
    for index in ledger.fresh:
        reading = ledger.readings[index]
        lasting = reading.signal is not None and reading.signal.category in _NEVER_CLEARED
        over = not lasting and ((healthy_now and index < marks[-1]) or index == lone_retry)
        if not over:
            keep.append(index)
        elif reading.signal is not None or reading.role is not Role.PLAIN:
            ledger.recovered += 1
    ledger.fresh = keep


def _related(ledger: _Ledger, failure: int, recovery: int) -> bool:
    """Whether a recovery line names what failed (a host, a service, an address): "reconnected to cache-01" does
    not end "nfs: server filer01 not responding"."""

    def names(index: int) -> set[str]:
        return names_in(ledger.readings[index].parsed.message)

    return bool(names(failure) & names(recovery))


def _category(ledger: _Ledger, index: int) -> Category | None:
    signal = ledger.readings[index].signal
    return signal.category if signal is not None else None


def _events(ledger: _Ledger, indices: Sequence[int]) -> int:
    """How many separate events some fault lines are: distinct killed pids, else clusters in time."""
    pids = {match.group(1) for index in indices if (match := _KILLED_PID.search(ledger.readings[index].parsed.raw))}
    # only lines with their own stamp: a stack trace's unstamped lines are part of the event that printed them
    stamps = sorted(stamp for index in indices if (stamp := ledger.readings[index].parsed.timestamp) is not None)
    clusters = 0
    previous: float | None = None
    for stamp in stamps:
        if previous is None or stamp - previous > EVENT_GAP_S:
            clusters += 1
        previous = stamp
    return max(len(pids), clusters, 1 if indices else 0)


def _crash_loop(ledger: _Ledger, healthy_now: bool, hot: bool) -> list[Signal]:
    """Crash loops the lines show together: several OOM kills or crashes in the window, or a fault, a start and
    a fault again (the service was restarted already and failed again)."""
    found: list[Signal] = []
    # deaths only: a JVM throwing OutOfMemoryError in two request threads is one sick process, not a loop
    ooms = [
        index
        for index in ledger.fresh
        if _category(ledger, index) is Category.OOM_KILL and _DEATH.search(ledger.readings[index].parsed.raw)
    ]
    if _events(ledger, ooms) >= 2:
        found.append(
            Signal(
                Category.CRASH_LOOP,
                "logs",
                f"{_events(ledger, ooms)} out-of-memory kills in the incident window",
                "repeated_oom",
            )
        )
    crashes = [index for index in ledger.fresh if _CRASH.search(ledger.readings[index].parsed.message)]
    if _events(ledger, crashes) >= 2:
        found.append(
            Signal(
                Category.CRASH_LOOP,
                "logs",
                f"{_events(ledger, crashes)} crashes in the incident window",
                "repeated_crash",
            )
        )
    faults = [
        index
        for index in ledger.fresh
        if _category(ledger, index) in RECOVERABLE or _CRASH.search(ledger.readings[index].parsed.message)
    ]
    starts = [index for index in ledger.fresh if ledger.readings[index].role is Role.STARTUP]
    if faults and any(faults[0] < start < faults[-1] for start in starts):
        found.append(
            Signal(
                Category.CRASH_LOOP,
                "logs",
                "the service started again and failed again in the incident window",
                "fault_after_restart",
            )
        )
    elif faults and not healthy_now and any(start > faults[0] for start in starts):
        found.append(
            Signal(
                Category.CRASH_LOOP,
                "logs",
                "the service was restarted after the fault and is still unhealthy",
                "restarted_after_fault",
            )
        )
    elif (announced := [start for start in starts if _announced(ledger, start)]) and (
        (faults or hot) and (not faults or announced[0] < faults[0])
    ):
        # the service started inside the window announcing a build, and is faulty already: maybe a deploy, and a
        # restart would replay it
        start = announced[0]
        found.append(
            Signal(Category.RECENT_CHANGE, "logs", quote(ledger.readings[start].parsed.raw), "started_before_fault")
        )
    for index in ledger.fresh:
        surge = _SURGE.search(ledger.readings[index].parsed.message.lower())
        if surge and _number(surge["now"] or surge["now2"]) >= 2 * max(_number(surge["base"] or surge["base2"]), 1e-9):
            found.append(
                Signal(Category.LOAD_SURGE, "logs", quote(ledger.readings[index].parsed.raw), "rate_above_baseline")
            )
            break
    return found


def _announced(ledger: _Ledger, start: int) -> bool:
    """A start that may be a deploy: it announces a build, or the service was stopped just before it."""
    if _ANNOUNCES_BUILD.search(ledger.readings[start].parsed.raw):
        return True
    return any(is_shutdown(ledger.readings[index].parsed.raw) for index in ledger.fresh if index < start)


def _number(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def _firm_times(ledger: _Ledger) -> list[float]:
    """When the process died of an OOM kill (the event whose exit lines follow it within seconds). A hang is not an
    instant: a line written beside a stuck-thread report may well be its cause, so it is not grouped with it."""
    return [
        stamp
        for index in ledger.fresh
        if (signal := ledger.readings[index].signal) is not None
        and signal.category is Category.OOM_KILL
        and (stamp := ledger.times[index]) is not None
    ]


def _same_event(stamp: float | None, firm: Sequence[float]) -> bool:
    """A line written within EVENT_SPAN_S of a firm finding is part of that event (one crash, many lines)."""
    return stamp is not None and any(0 <= stamp - moment <= EVENT_SPAN_S for moment in firm)


def _other_victim(signal: Signal, service: str | None) -> bool:
    """An OOM kill whose victim is named (a kernel kill, a systemd-oomd kill of a unit) and is neither the
    service nor a runtime it could run in."""
    victim = _VICTIM.search(signal.detail) or _OOMD_VICTIM.search(signal.detail)
    return victim is not None and is_other_process(victim.group(1), service)


def _account(
    ledger: _Ledger,
    health_signals: Sequence[Signal],
    healthy_now: bool,
    service: str | None = None,
    book: RuleBook = BUILTIN,
    status_healthy: bool = False,
) -> tuple[list[Signal], list[str], list[str], bool]:
    """The counted signals, the lines for the finding, the abnormal lines nothing explains, and whether any of
    those is error-level (worth a ticket even on a healthy server)."""
    fresh = [(index, ledger.readings[index]) for index in ledger.fresh]
    log_signals = [(index, reading.signal) for index, reading in fresh if reading.signal is not None]
    weak = book.flags["weak_hang"]
    firm = [signal for _, signal in log_signals if signal.category in RECOVERABLE and signal.rule not in weak]
    stalled = any(is_stall(reading.parsed.message.lower()) for _, reading in fresh)
    hot = [signal for signal in health_signals if signal.category in RECOVERABLE]
    # A process-local limit that persists (descriptors exhausted, defunct children piling up, for a minute or
    # more) corroborates itself: it is not a blip, and it is the process's own by definition.
    persistent = {
        rule
        for rule in book.flags["persistent"]
        if len(stamps := [ledger.times[index] for index, signal in log_signals if signal.rule == rule]) >= 2
        and None not in stamps
        and max(s for s in stamps if s is not None) - min(s for s in stamps if s is not None) >= PERSISTENCE_S
    }
    counted: list[Signal] = list(health_signals)
    unexplained: list[str] = []
    alarming: list[str] = []  # error-level lines nothing explains: a ticket even on a healthy server
    cpu_context = book.flags["cpu_context"]
    for index, signal in log_signals:
        reading = ledger.readings[index]
        if signal.rule in cpu_context and firm:
            continue  # a scheduled job beside a fault the logs show is ordinary operation
        if signal.category is Category.OOM_KILL and _other_victim(signal, service):
            # the kernel killed another process: the host is short of memory, the service is not the cause
            signal = Signal(Category.UNKNOWN, "logs", signal.detail, "oom_kill_other_process")
        elif signal.rule in weak and not (firm or stalled or hot or signal.rule in persistent):
            signal = Signal(Category.UNKNOWN, "logs", signal.detail, f"{signal.rule}_uncorroborated")
        elif signal.category in RECOVERABLE and (healthy_now or status_healthy):
            # a healthy server needs no restart; its log-only finding is for a person to read
            signal = Signal(Category.UNKNOWN, "logs", signal.detail, f"{signal.rule}_while_healthy")
        if signal.category is Category.UNKNOWN:
            unexplained.append(signal.detail)
            if (
                signal.rule == UNRECOGNISED_RULE
                or signal.rule.startswith("oom_kill")
                or reading.parsed.level >= Level.ERROR
            ):
                alarming.append(signal.detail)
        counted.append(signal)
    counted.extend(_crash_loop(ledger, healthy_now, bool(hot)))
    counted.extend(other_process_cpu(ledger.readings, ledger.fresh, service))
    counted.extend(compromise_chain(ledger.readings))
    findings = {signal.category for signal in counted} & RECOVERABLE
    # what the service's own consequences (its 5xx, failed probes, replaced workers) need: a fault its logs show;
    # a hot figure alone may as well be somebody else's doing
    logged = {signal.category for signal in counted if signal.source == "logs"} & RECOVERABLE
    deaths = _firm_times(ledger)
    explains_death = bool(findings & _DEATHS)
    supporting = [signal.detail for signal in counted if signal.category in RECOVERABLE]
    for index, reading in fresh:
        if reading.signal is not None and reading.signal.category is not Category.UNKNOWN:
            continue
        causes = logged if reading.role is Role.CONSEQUENCE else findings
        explained = bool(_EXPLAINERS.get(reading.role, frozenset()) & causes) or (
            explains_death and (reading.role is Role.AFTERMATH or _same_event(ledger.times[index], deaths))
        )
        if explained:
            supporting.append(_detail(reading))
            if reading.signal is not None:  # an abnormal line that is part of the finding's own event
                counted.remove(reading.signal)
                unexplained.remove(reading.signal.detail)
                if reading.signal.detail in alarming:
                    alarming.remove(reading.signal.detail)
        elif reading.signal is None and reading.role in _EXPLAINERS:
            unexplained.append(_detail(reading))
            counted.append(Signal(Category.UNKNOWN, "logs", _detail(reading), UNEXPLAINED_RULE))
            if reading.parsed.level >= Level.ERROR:
                alarming.append(_detail(reading))
    return counted, supporting, unexplained, bool(alarming) or (not healthy_now and bool(unexplained))


def _detail(reading: LineReading) -> str:
    return quote(reading.parsed.raw)


def _primary(counted: frozenset[Category], healthy: bool, alarming: bool) -> Category:
    """Blocking by priority, else recoverable by priority, else unknown, else no fault."""
    for category in LINE_PRIORITY:
        if category in counted:
            return category
    return Category.UNKNOWN if alarming or not healthy else Category.NO_FAULT


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


def _unknown_text(health: Mapping[str, object] | None, unexplained: int) -> str:
    """Why something looks wrong: health unavailable, bad status, unreadable figures, unexplained lines."""
    reasons: list[str] = []
    if not isinstance(health, Mapping):
        reasons.append("health figures are unavailable")
    else:
        status = status_of(health)
        if status != "healthy":
            reasons.append(f"status is {status}" if status else "status is not reported")
        if None in figures(health):
            reasons.append("CPU/memory figures are missing or unreadable")
    if unexplained:
        reasons.append(f"{unexplained} abnormal log line{'s' if unexplained != 1 else ''} no rule explains")
    return "; ".join(reasons)


def _reason(
    primary: Category,
    counted: frozenset[Category],
    signals: Sequence[Signal],
    health: Mapping[str, object] | None,
    unexplained: int,
) -> str:
    """One plain sentence for the operator."""
    blocking = [category for category in BLOCKING_PRIORITY if category in counted]
    recoverable = [category for category in RECOVERABLE_PRIORITY if category in counted]
    if blocking:
        context = (
            f"alongside {_describe(signals, recoverable)}"
            if recoverable
            else "while CPU and memory are normal"
            if figures_normal(health)
            else "with no sign of a local recoverable fault"
        )
        return f"{_sources(signals, blocking)} {_describe(signals, blocking)} {context}; a restart would not help."
    if recoverable:
        found = f"{_sources(signals, recoverable)} {_describe(signals, recoverable)}"
        if unexplained:
            return (
                f"{found}, but {unexplained} abnormal log line{'s are' if unexplained != 1 else ' is'} not "
                "explained by that finding; escalate rather than restart."
            )
        if not isinstance(health, Mapping):
            return (
                f"{found} with no sign of an external cause, but health figures are unavailable; escalate "
                "rather than restart blind."
            )
        return f"{found} with no sign of an external cause; a restart is recommended."
    if primary is Category.UNKNOWN:
        return f"Something is wrong ({_unknown_text(health, unexplained)}) but there is no recognised cause; escalate."
    return "Health figures are normal and the logs show nothing alarming; no fault found."


def assess_evidence(
    health: Mapping[str, object] | None,
    lines: Sequence[str],
    window_s: float = INCIDENT_WINDOW_S,
    service: str | None = None,
    book: RuleBook = BUILTIN,
) -> Diagnosis:
    """Account for every line in the incident window and decide restart vs escalate vs no fault. With the
    service's name, an OOM kill of some other process is not the service's fault."""
    health = health if isinstance(health, Mapping) else None
    if isinstance(lines, str):
        lines = lines.splitlines()
    texts = [line for line in lines or () if isinstance(line, str)]
    readings, times = _read(texts, book)
    ledger = _window(readings, times, window_s)
    healthy_now = is_healthy(health)
    status_healthy = health is not None and status_of(health) == "healthy"
    _clear_recovered(ledger, healthy_now)
    over = set(stuck_after_recovery(ledger.readings, ledger.fresh))
    ledger.fresh = [index for index in ledger.fresh if index not in over]
    ledger.recovered += len(over)
    health_signals = classify_health(health)
    # On a healthy server, warning-level lines nothing explains are worth a note, not a ticket.
    signals, supporting, unexplained, alarming = _account(
        ledger, health_signals, healthy_now, service, book, status_healthy
    )
    counted = _counted(signals, book.flags["burst"])
    if healthy_now and not counted - CONTEXT:
        counted = frozenset()
    elif status_healthy and not unexplained and not counted & BLOCKING - CONTEXT:
        # the service says it is healthy and no line shows a fault: a figure alone (a database or a cache sized to
        # fill its host, a busy hour) is how it runs, not a reason to act
        counted = frozenset()
    primary = _primary(counted, healthy_now, alarming)
    restart = (
        health is not None
        and not status_healthy
        and bool(counted & RECOVERABLE)
        and not counted & BLOCKING
        and not unexplained
    )
    figures_only = {signal.detail for signal in health_signals}
    shown_in_logs = any(detail not in figures_only for detail in supporting) or any(
        shows_symptom(ledger.readings[index].parsed.message.lower()) for index in ledger.fresh
    )
    basis = "logs" if shown_in_logs else "status" if _down(health) else "figures"
    order = [category for category in LINE_PRIORITY if category in counted] + [Category.UNKNOWN]
    against = [signal.detail for signal in signals if signal.category in counted & BLOCKING]
    window: dict[str, float] = {
        "window_s": window_s,
        "lines": len(texts),
        "in_window": len(ledger.fresh),
        "stale_signals": ledger.stale,
        "recovered_signals": ledger.recovered,
    }
    return Diagnosis(
        category=primary,
        restart_recommended=restart,
        signals=tuple(signals),
        evidence=_evidence([signal for signal in signals if signal.category in order], order),
        reason=_reason(primary, counted, signals, health, len(unexplained)),
        supporting=tuple(dict.fromkeys(supporting))[:MAX_QUOTED],
        against=tuple(dict.fromkeys(against + unexplained))[:MAX_QUOTED],
        unexplained=tuple(dict.fromkeys(unexplained))[:MAX_QUOTED],
        window=window,
        basis=basis if restart else "",
    )


def _down(health: Mapping[str, object] | None) -> bool:
    """The service's own supervisor reports it down or failed."""
    return health is not None and status_of(health) in ("down", "failed")
