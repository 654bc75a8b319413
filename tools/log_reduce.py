"""Reducing log lines to a bounded, model-sized digest: repeats collapsed, errors first, the rest sampled."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from it_support_agent.incident.text import clean_line as _clean_line

MAX_LINE_CHARS = 300
DEFAULT_BUDGET_TOKENS = 1_200
_VOLATILE = re.compile(r"\d+|0x[0-9a-f]+", re.IGNORECASE)
_ERROR = re.compile(
    r"\b(?:error|err|fatal|critical|crit|panic|emerg|alert|severe|exception|fail(?:ed|ure)?|refused|"
    r"timed? ?out|killed|denied|unreachable)\b",
    re.IGNORECASE,
)
_WARNING = re.compile(r"\bwarn(?:ing)?\b", re.IGNORECASE)


def estimate_tokens(text: str) -> int:
    """Offline token estimate, no tokenizer: about four ASCII characters per token (English, log text), and
    one token per other character (CJK, symbols), so that non-English text is not underestimated."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    return (ascii_chars + 3) // 4 + (len(text) - ascii_chars)


def clean_line(line: str) -> str:
    """A log line made safe to quote: control bytes replaced, cut to a bounded length."""
    return _clean_line(line, MAX_LINE_CHARS)


def reduce_logs(lines: Sequence[str], budget_tokens: int = DEFAULT_BUDGET_TOKENS) -> dict[str, Any]:
    """Digest of lines that fits the token budget; says how many lines it saw and left out."""
    groups: dict[str, list[Any]] = {}
    for position, raw in enumerate(lines):
        line = clean_line(raw)
        if not line:
            continue
        key = _VOLATILE.sub("#", line)
        group = groups.get(key)
        if group is None:
            groups[key] = [position, line, 1]
        else:
            group[2] += 1
    entries = sorted(groups.values(), key=lambda group: group[0])
    chosen: list[list[Any]] = []
    used = 0
    for entry in _by_priority(entries):
        cost = line_tokens(_render(entry))
        if used + cost > budget_tokens:
            continue
        chosen.append(entry)
        used += cost
    chosen.sort(key=lambda entry: entry[0])
    kept = sum(entry[2] for entry in chosen)
    return {
        "total_lines": len(lines),
        "shown_lines": [_render(entry) for entry in chosen],
        "distinct_lines": len(entries),
        "omitted_lines": len(lines) - kept,
        "estimated_tokens": used,
    }


def line_tokens(line: str) -> int:
    """What one shown line costs in the prompt: the line as a JSON string plus its separator."""
    return estimate_tokens(json.dumps(line, ensure_ascii=False)) + 1


def _by_priority(entries: list[list[Any]]) -> list[list[Any]]:
    """Error lines, then warnings, then the rest; each group starts with its first line (the onset) and then
    samples evenly over time, newest first."""
    groups: tuple[list[list[Any]], ...] = ([], [], [])
    for entry in entries:
        groups[_severity(entry[1])].append(entry)
    ordered: list[list[Any]] = []
    for group in groups:
        if group:
            ordered.append(group[0])
            ordered.extend(_spread(group[1:]))
    return ordered


def _severity(line: str) -> int:
    if _ERROR.search(line):
        return 0
    return 1 if _WARNING.search(line) else 2


def _render(entry: list[Any]) -> str:
    return entry[1] if entry[2] == 1 else f"{entry[1]} [repeated {entry[2]}x]"


def _spread(entries: list[list[Any]]) -> list[list[Any]]:
    """Entries reordered so that any prefix is an even sample over time (newest first among equals)."""
    if len(entries) <= 2:
        return list(reversed(entries))
    order: list[list[Any]] = []
    seen: set[int] = set()
    step = len(entries)
    while step >= 1 and len(order) < len(entries):
        for index in range(len(entries) - 1, -1, -step):
            if index not in seen:
                seen.add(index)
                order.append(entries[index])
        step //= 2
    return order
