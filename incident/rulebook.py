"""The rule book: the built-in and the operator's rules compiled once, with their trigger index and flags."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from it_support_agent.incident.log_rules import (
    FLAGS,
    LINE_PRIORITY,
    Rule,
    RuleFile,
    RuleFileError,
    builtin_rule_files,
    combined,
    read_rule_file,
)

__all__ = ["BUILTIN", "RuleBook", "RuleFileError", "book_for", "tokens_of"]

_WORD_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")
# One C-level pass over the UTF-8 bytes: ASCII letters folded to lower case, all but [a-z0-9_] to spaces.
_FOLD = bytes(code if code in _WORD_CHARS else code + 32 if 65 <= code <= 90 else 32 for code in range(256))


def words_of(text: str) -> bytes:
    """The text folded to lowercase ASCII words separated by spaces (non-ASCII becomes separators)."""
    return text.encode("utf-8", "replace").translate(_FOLD)


@dataclass(frozen=True)
class Compiled:
    """A rule with its patterns compiled."""

    rule: Rule
    regex: re.Pattern[str]
    unless: re.Pattern[str] | None

    def hits(self, low: str) -> bool:
        """Whether the rule matches a lowercased text."""
        return bool(self.regex.search(low)) and not (self.unless is not None and self.unless.search(low))


def _index(compiled: Sequence[Compiled]) -> Mapping[bytes, tuple[int, ...]]:
    index: dict[bytes, list[int]] = {}
    for position, item in enumerate(compiled):
        for word in item.rule.words.split():
            index.setdefault(word.encode("ascii"), []).append(position)
    return MappingProxyType({token: tuple(positions) for token, positions in index.items()})


@dataclass(frozen=True, eq=False)
class RuleBook:
    """Fault rules by priority (blocking before recoverable, file order within a category) and role rules, each
    runnable only when one of its trigger words is a token of the line. Hashed by identity: a book is built once."""

    files: tuple[RuleFile, ...]
    faults: tuple[Compiled, ...]
    roles: tuple[Compiled, ...]
    fault_triggers: Mapping[bytes, tuple[int, ...]]
    role_triggers: Mapping[bytes, tuple[int, ...]]

    @classmethod
    def build(cls, files: Sequence[RuleFile]) -> RuleBook:
        rules = combined(files)
        compiled = [
            Compiled(rule, re.compile(rule.pattern), re.compile(rule.unless) if rule.unless else None) for rule in rules
        ]
        faults = tuple(
            sorted(
                (item for item in compiled if not item.rule.is_role),
                key=lambda item: LINE_PRIORITY.index(item.rule.category),
            )
        )
        roles = tuple(item for item in compiled if item.rule.is_role)
        return cls(tuple(files), faults, roles, _index(faults), _index(roles))

    @functools.cached_property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(item.rule for item in (*self.faults, *self.roles))

    @functools.cached_property
    def flags(self) -> Mapping[str, frozenset[str]]:
        """Flag -> the fault rules carrying it, by the names signals carry (burst, weak_hang, persistent, ...)."""
        return MappingProxyType(
            {
                flag: frozenset(item.rule.signal_name for item in self.faults if flag in item.rule.flags)
                for flag in FLAGS
            }
        )

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def fault(self, message: str, tokens: frozenset[bytes] | None = None) -> Rule | None:
        """The first fault rule (priority order) among those triggered whose pattern matches the message; `tokens`
        are the message's words when the caller has them already (`tokens_of`)."""
        return _first(self.faults, self.fault_triggers, message, tokens)

    def role(self, message: str, tokens: frozenset[bytes] | None = None, *, first: bool = False) -> Rule | None:
        """The first role rule (file order) among those triggered that matches the message; with `first`, only
        the rules read before the fault rules."""
        if first:
            return _first(self.early_roles, self.early_triggers, message, tokens)
        return _first(self.roles, self.role_triggers, message, tokens)

    @functools.cached_property
    def early_roles(self) -> tuple[Compiled, ...]:
        return tuple(item for item in self.roles if "first" in item.rule.flags)

    @functools.cached_property
    def early_triggers(self) -> Mapping[bytes, tuple[int, ...]]:
        return _index(self.early_roles)


def tokens_of(message: str) -> frozenset[bytes]:
    """The message's words as the trigger index holds them."""
    return frozenset(words_of(message).split())


def _first(
    compiled: Sequence[Compiled],
    triggers: Mapping[bytes, tuple[int, ...]],
    message: str,
    tokens: frozenset[bytes] | None,
) -> Rule | None:
    hits = (tokens if tokens is not None else tokens_of(message)).intersection(triggers)
    if not hits:
        return None
    low = message.lower()
    for position in sorted({position for word in hits for position in triggers[word]}):
        if compiled[position].hits(low):
            return compiled[position].rule
    return None


BUILTIN: RuleBook = RuleBook.build(builtin_rule_files())
"""The rules shipped with the package."""


def book_for(paths: Iterable[str]) -> RuleBook:
    """The built-in rules and an operator's rule files (cached while the files are unchanged)."""
    names = tuple(str(Path(path).expanduser()) for path in paths)
    if not names:
        return BUILTIN
    stamps = []
    for name in names:
        try:
            stat = Path(name).stat()
        except OSError as exc:
            raise RuleFileError(f"cannot read rule file {name}: {exc}") from None
        stamps.append((name, stat.st_mtime_ns, stat.st_size))
    return _book(tuple(stamps))


@functools.lru_cache(maxsize=8)
def _book(stamps: tuple[tuple[str, int, int], ...]) -> RuleBook:
    return RuleBook.build([*BUILTIN.files, *(read_rule_file(name) for name, _, _ in stamps)])
