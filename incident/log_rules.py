"""The evidence vocabulary: fault categories, line roles a rule may give, and the rule-file schema with its checks.

The rules themselves are data: `incident/rules/*.yaml` (one file per product or runtime family) and the
operator's own files named by the policy's `rule_files`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from it_support_agent.incident.yaml_strict import load_yaml


class Category(StrEnum):
    """What a piece of evidence points to."""

    CPU_SATURATION = "cpu_saturation"
    MEMORY_PRESSURE = "memory_pressure"
    OOM_KILL = "oom_kill"
    HUNG_PROCESS = "hung_process"
    DEPENDENCY_FAILURE = "dependency_failure"
    DISK_FULL = "disk_full"
    SECURITY_EVENT = "security_event"
    HARDWARE_FAULT = "hardware_fault"
    CONFIG_ERROR = "config_error"
    LOAD_SURGE = "load_surge"
    RECENT_CHANGE = "recent_change"
    CRASH_LOOP = "crash_loop"
    UNKNOWN = "unknown"
    NO_FAULT = "no_fault"


RECOVERABLE: frozenset[Category] = frozenset(
    {Category.CPU_SATURATION, Category.MEMORY_PRESSURE, Category.OOM_KILL, Category.HUNG_PROCESS}
)
BLOCKING: frozenset[Category] = frozenset(
    {
        Category.DEPENDENCY_FAILURE,
        Category.DISK_FULL,
        Category.SECURITY_EVENT,
        Category.HARDWARE_FAULT,
        Category.CONFIG_ERROR,
        Category.LOAD_SURGE,
        Category.RECENT_CHANGE,
        Category.CRASH_LOOP,
    }
)
BLOCKING_PRIORITY: tuple[Category, ...] = (
    Category.SECURITY_EVENT,
    Category.HARDWARE_FAULT,
    Category.DISK_FULL,
    Category.CONFIG_ERROR,
    Category.CRASH_LOOP,
    Category.RECENT_CHANGE,
    Category.LOAD_SURGE,
    Category.DEPENDENCY_FAILURE,
)
# Context, not a fault: a change or a traffic surge vetoes a restart, but on a healthy server with nothing wrong it
# is ordinary operation (a reload, a busy hour), not a reason for a ticket.
CONTEXT: frozenset[Category] = frozenset({Category.RECENT_CHANGE, Category.LOAD_SURGE})
RECOVERABLE_PRIORITY: tuple[Category, ...] = (
    Category.OOM_KILL,
    Category.HUNG_PROCESS,
    Category.MEMORY_PRESSURE,
    Category.CPU_SATURATION,
)
LINE_PRIORITY: tuple[Category, ...] = BLOCKING_PRIORITY + RECOVERABLE_PRIORITY


UNRECOGNISED_RULE = "unrecognised_error"
UNEXPLAINED_RULE = "unexplained_abnormal"

RULES_DIR = Path(__file__).resolve().parent / "rules"
"""The built-in rule files, shipped with the package."""

ROLE_KINDS: frozenset[str] = frozenset({"consequence", "benign", "recovery"})
"""What a rule may say a line is instead of a fault: a consequence of a local fault in the service itself (its
request timeouts and 5xx answers, failed health checks, the supervisor noticing its exit), ordinary noise, or a
recovery."""
FLAGS: frozenset[str] = frozenset(
    {"burst", "weak_hang", "persistent", "any_level", "enables_restart", "first", "cpu_context"}
)
"""burst: counts only as a burst of SECURITY_BURST lines; weak_hang: a hang wording that needs corroboration;
persistent: corroborates itself when it lasts a minute; any_level: counts whatever level the line has (also
DEBUG); enables_restart: a user rule of a recoverable category, allowed to make a restart possible; first: a
role rule read before the fault rules (a probe of the service itself quotes the probe's own error); cpu_context:
another process's work holding the CPU, which blocks a restart when the only finding is high CPU."""
_NAME = re.compile(r"[a-z][a-z0-9_]{1,62}")
_WORD = re.compile(r"[a-z0-9_]+")
_RULE_KEYS = frozenset({"name", "category", "words", "pattern", "unless", "flags", "source", "examples"})


class RuleFileError(ValueError):
    """A rule file is unreadable or a rule in it is invalid; the message names the file and the rule."""


@dataclass(frozen=True)
class Rule:
    """One named pattern. It runs only when one of its trigger `words` is a token of the line; `unless` vetoes
    the match when it also occurs in the line. `kind` is a Category value or one of ROLE_KINDS."""

    kind: str
    name: str
    words: str
    pattern: str
    unless: str | None = None
    flags: frozenset[str] = frozenset()
    source: str = ""
    matches: tuple[str, ...] = ()
    non_matches: tuple[str, ...] = ()
    origin: str = "built-in"
    """built-in, or the path of the operator's rule file."""
    family: str = ""

    @property
    def category(self) -> Category:
        """The fault category (UNKNOWN for a role rule)."""
        return Category(self.kind) if self.kind in _CATEGORY_VALUES else Category.UNKNOWN

    @property
    def is_role(self) -> bool:
        return self.kind in ROLE_KINDS

    @property
    def user(self) -> bool:
        return self.origin != "built-in"

    @property
    def signal_name(self) -> str:
        """The rule's name as evidence carries it: an operator's rule is marked as theirs."""
        return f"user:{self.name}" if self.user else self.name


_CATEGORY_VALUES = frozenset(category.value for category in Category) - {Category.UNKNOWN, Category.NO_FAULT}


@dataclass(frozen=True)
class RuleFile:
    """The rules of one file, in order."""

    path: str
    family: str
    rules: tuple[Rule, ...] = field(default_factory=tuple)


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(part, str) for part in value):
        return "|".join(value)  # alternatives, one per line of the file
    raise ValueError(f"{what} must be a string or a list of strings")


def _examples(entry: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    examples = entry.get("examples", {}) or {}
    if not isinstance(examples, Mapping) or set(examples) - {"match", "no_match"}:
        raise ValueError("examples must be a mapping with 'match' and 'no_match' lists")
    lists = []
    for key in ("match", "no_match"):
        items = examples.get(key, []) or []
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(f"examples.{key} must be a list of lines")
        lists.append(tuple(items))
    return lists[0], lists[1]


def parse_rule(entry: Any, *, origin: str, family: str) -> Rule:
    """One rule entry checked: known keys and category, a name, compiling patterns, known flags, and for an
    operator's rule of a recoverable category the enables_restart flag."""
    if not isinstance(entry, Mapping):
        raise ValueError("a rule must be a mapping")
    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    kind = entry.get("category")
    if kind not in _CATEGORY_VALUES and kind not in ROLE_KINDS:
        raise ValueError(f"unknown category {kind!r} (one of {', '.join(sorted(_CATEGORY_VALUES | ROLE_KINDS))})")
    words = entry.get("words", "")
    if not isinstance(words, str) or not words.split():
        raise ValueError("words must name at least one trigger word")
    bad = [word for word in words.split() if not _WORD.fullmatch(word)]
    if bad:
        raise ValueError(f"trigger words must be lowercase letters, digits or '_': {bad[:3]}")
    pattern = _text(entry.get("pattern"), "pattern")
    unless = entry.get("unless")
    unless_text = None if unless is None else _text(unless, "unless")
    for label, text in (("pattern", pattern), ("unless", unless_text)):
        if text is None:
            continue
        try:
            re.compile(text)
        except re.error as exc:
            raise ValueError(f"{label} does not compile: {exc}") from None
    flags = entry.get("flags", []) or []
    if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
        raise ValueError("flags must be a list")
    if set(flags) - FLAGS:
        raise ValueError(f"unknown flags {sorted(set(flags) - FLAGS)} (known: {', '.join(sorted(FLAGS))})")
    user = origin != "built-in"
    recoverable = kind in _CATEGORY_VALUES and Category(kind) in RECOVERABLE
    if user and recoverable and "enables_restart" not in flags:
        raise ValueError(f"category {kind} can make a restart possible: mark the rule enables_restart")
    source = entry.get("source", "")
    if not isinstance(source, str):
        raise ValueError("source must be text")
    matches, non_matches = _examples(entry)
    return Rule(
        kind=str(kind),
        name=str(entry["name"]),
        words=words,
        pattern=pattern,
        unless=unless_text,
        flags=frozenset(flags),
        source=source,
        matches=matches,
        non_matches=non_matches,
        origin=origin,
        family=family,
    )


def parse_rule_file(text: str, *, path: str, origin: str) -> RuleFile:
    """A rule file's text checked rule by rule; the first problem is one line naming the file and the rule."""
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleFileError(f"{path}: malformed YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
        raise RuleFileError(f"{path}: expected a mapping with a 'rules' list")
    family = str(document.get("family") or Path(path).stem)
    rules: list[Rule] = []
    seen: set[str] = set()
    for number, entry in enumerate(document["rules"], start=1):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        label = f"rule {name!r}" if isinstance(name, str) else f"rule #{number}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise RuleFileError(f"{path}: {label}: name must be lowercase letters, digits and '_' (2-63)")
        if name in seen:
            raise RuleFileError(f"{path}: {label}: the name is used twice")
        seen.add(name)
        try:
            rules.append(parse_rule(entry, origin=origin, family=family))
        except ValueError as exc:
            raise RuleFileError(f"{path}: {label}: {exc}") from None
    return RuleFile(path=path, family=family, rules=tuple(rules))


def read_rule_file(path: str | Path, *, origin: str | None = None) -> RuleFile:
    """A rule file from disk (an operator's unless origin is given)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"cannot read rule file {path}: {exc}") from None
    return parse_rule_file(text, path=str(path), origin=origin or str(path))


def builtin_rule_files() -> tuple[RuleFile, ...]:
    """Every built-in rule file, in name order."""
    return tuple(read_rule_file(path, origin="built-in") for path in sorted(RULES_DIR.glob("*.yaml")))


def combined(files: Sequence[RuleFile]) -> tuple[Rule, ...]:
    """The rules of several files; a name used twice (across files) is refused."""
    rules: list[Rule] = []
    where: dict[str, str] = {}
    for rule_file in files:
        for rule in rule_file.rules:
            if rule.name in where:
                raise RuleFileError(
                    f"{rule_file.path}: rule {rule.name!r}: the name is already used in {where[rule.name]}"
                )
            where[rule.name] = rule_file.path
            rules.append(rule)
    return tuple(rules)
