"""Finding which server of the inventory an incident or a tool argument names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+")
_SEPARATORS = re.compile(r"[\s_]+")
_DIGITS = re.compile(r"\d+")
MAX_WORDS_PER_ID = 8
MIN_FUZZY_LETTERS = 5
"""Names with fewer letters than this are never matched loosely ("db" is not "dc")."""


_ID_CHARS = re.compile(r"[a-z0-9.-]+")


def normalise_server_id(value: str) -> str | None:
    """Canonical form of a server id argument, or None when it cannot be one (non-ASCII, shell or path syntax)."""
    candidate = _SEPARATORS.sub("-", value.strip().lower())
    if not candidate or len(candidate) > 253 or not candidate.isascii():
        return None
    if _ID_CHARS.fullmatch(candidate) is None or ".." in candidate:
        return None
    return candidate


def _compact(value: str) -> str:
    return "".join(_WORD.findall(value.lower()))


def _shape(compact: str) -> tuple[str, tuple[int, ...]]:
    """A compact name as (letters with '#' for each number, the numbers): 'cachenode04' -> ('cachenode#', (4,))."""
    return _DIGITS.sub("#", compact), tuple(int(number) for number in _DIGITS.findall(compact))


def _edit_distance(left: str, right: str, limit: int) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours), capped at limit + 1."""
    if abs(len(left) - len(right)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(right) + 1))
    for row, left_char in enumerate(left, start=1):
        current = [row] + [0] * len(right)
        for column, right_char in enumerate(right, start=1):
            cost = 0 if left_char == right_char else 1
            current[column] = min(previous[column] + 1, current[column - 1] + 1, previous[column - 1] + cost)
            if row > 1 and column > 1 and left_char == right[column - 2] and left[row - 2] == right_char:
                current[column] = min(current[column], previous2[column - 2] + 1)
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


@dataclass(frozen=True)
class CloseMatch:
    """A server named loosely: the words as typed, and every inventory id equally close to them."""

    typed: str
    candidates: tuple[str, ...]

    @property
    def unique(self) -> str | None:
        return self.candidates[0] if len(self.candidates) == 1 else None


@dataclass(frozen=True)
class ServerIndex:
    """Lookup tables over the inventory ids, built once per fleet."""

    by_normalised: dict[str, str]
    by_compact: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, server_ids: Iterable[str]) -> ServerIndex:
        by_normalised: dict[str, str] = {}
        by_compact: dict[str, list[str]] = {}
        for server_id in server_ids:
            normalised = normalise_server_id(server_id)
            if normalised is not None:
                by_normalised[normalised] = server_id
            by_compact.setdefault(_compact(server_id), []).append(server_id)
        return cls(by_normalised, {key: tuple(ids) for key, ids in by_compact.items()})

    def resolve(self, argument: str) -> str | None:
        """The inventory id an argument names exactly (after normalisation), else None."""
        normalised = normalise_server_id(argument)
        return None if normalised is None else self.by_normalised.get(normalised)

    def close_match(self, text: str) -> CloseMatch | None:
        """The inventory ids closest to a name in free text that names none exactly: numbers must be equal
        (leading zeros aside: 'cache node 4' is cache-node-04), letters may be one edit away (two for long
        names). Several ids equally close are all returned, so the caller can ask rather than guess."""
        # a word written partly in another script is a look-alike, never a typo
        ascii_text = " ".join(token for token in text.lower().split() if token.isascii())
        words = _WORD.findall(ascii_text)
        shapes = {server_id: _shape(compact) for compact, ids in self.by_compact.items() for server_id in ids}
        best: dict[str, tuple[int, str]] = {}
        for start in range(len(words)):
            joined = ""
            for length in range(1, min(MAX_WORDS_PER_ID, len(words) - start) + 1):
                joined += words[start + length - 1]
                letters, numbers = _shape(joined)
                typed = " ".join(words[start : start + length])
                for server_id in self._extensions(words[start : start + length]):
                    # the typed name is a whole leading part of an id ("memcached-01" of memcached-01-ams)
                    if server_id not in best or best[server_id][0] > 1:
                        best[server_id] = (1, typed)
                for server_id, (id_letters, id_numbers) in shapes.items():
                    if numbers != id_numbers or len(id_letters.replace("#", "")) < MIN_FUZZY_LETTERS:
                        continue
                    limit = 1 if len(id_letters) < 16 else 2
                    distance = _edit_distance(letters, id_letters, limit)
                    if distance <= limit and (server_id not in best or distance < best[server_id][0]):
                        best[server_id] = (distance, typed)
        if not best:
            return None
        closest = min(distance for distance, _ in best.values())
        tied = sorted(server_id for server_id, (distance, _) in best.items() if distance == closest)
        return CloseMatch(typed=best[tied[0]][1], candidates=tuple(tied))

    def _extensions(self, typed: list[str]) -> list[str]:
        """Inventory ids whose leading words are exactly the typed words, with more words after them."""
        if not typed or not any(word.isdigit() for word in typed):
            return []
        found: list[str] = []
        for ids in self.by_compact.values():
            for server_id in ids:
                parts = _WORD.findall(server_id.lower())
                if len(parts) > len(typed) and parts[: len(typed)] == typed:
                    found.append(server_id)
        return found

    def mentions(self, text: str) -> list[str]:
        """Inventory ids named in free text, in order of first mention, tolerant of case and separators.

        Only ASCII words count, so a look-alike written with other scripts never matches.
        """
        words = _WORD.findall(text.lower())
        found: list[str] = []
        position = 0
        while position < len(words):
            match_length, match = 0, None
            joined = ""
            for length in range(1, min(MAX_WORDS_PER_ID, len(words) - position) + 1):
                joined += words[position + length - 1]
                ids = self.by_compact.get(joined)
                if ids is not None and len(ids) == 1:
                    match_length, match = length, ids[0]
            if match is not None:
                if match not in found:
                    found.append(match)
                position += match_length
            else:
                position += 1
        return found
