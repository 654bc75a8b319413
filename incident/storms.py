"""Shared-dependency storms: several servers failing on the same dependency are one problem, filed once.

A server's escalation belongs to a storm when its finding is a dependency failure and the evidence names one of
the dependencies the fleet file declares for it (the fleet is trusted configuration; log text only picks among
the names it declares). A server with one declared dependency and a dependency failure whose lines name none is
counted against that one. Anything ambiguous (two declared dependencies named) is filed on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from it_support_agent.incident.fleet import ServerSpec

STORM_WINDOW_S = 1800.0
"""A storm stays open while a member joined it within this many seconds."""


def implicated_dependency(diagnosis: Mapping[str, Any], spec: ServerSpec | None) -> str | None:
    """The declared dependency a dependency-failure finding points at, or None."""
    if spec is None or not spec.dependencies or diagnosis.get("category") != "dependency_failure":
        return None
    lines = [str(line) for line in _lines(diagnosis)]
    named = [dependency for dependency in spec.dependencies if any(_names(line, dependency) for line in lines)]
    if len(set(named)) == 1:
        return named[0]
    if not named and len(spec.dependencies) == 1:
        return spec.dependencies[0]
    return None


def _lines(diagnosis: Mapping[str, Any]) -> Iterable[object]:
    yield from diagnosis.get("evidence", []) or []
    yield from diagnosis.get("for", []) or []


def _names(line: str, dependency: str) -> bool:
    """Whether a line names the dependency as a whole word (so `db-1` is not found in `db-10`)."""
    return re.search(rf"(?<![\w.-]){re.escape(dependency)}(?![\w-])", line, re.IGNORECASE) is not None
