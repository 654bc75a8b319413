"""Finding which server of the inventory an incident or a tool argument names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+")
_SEPARATORS = re.compile(r"[\s_]+")
MAX_WORDS_PER_ID = 8


def normalise_server_id(value: str) -> str | None:
    """Canonical form of a server id argument, or None when it cannot be one (non-ASCII, shell or path syntax)."""
    candidate = _SEPARATORS.sub("-", value.strip().lower())
    if not candidate or len(candidate) > 253 or not candidate.isascii():
        return None
    if not all(char.isalnum() or char in ".-" for char in candidate) or ".." in candidate:
        return None
    return candidate


def _compact(value: str) -> str:
    return "".join(_WORD.findall(value.lower()))


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
