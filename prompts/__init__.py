"""Prompt templates, one per model-driven node, with $named placeholders."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

_HERE = Path(__file__).resolve().parent


@cache
def _template(name: str) -> Template:
    return Template((_HERE / f"{name}.md").read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    """The named template with every placeholder filled (a missing value is an error, not a silent gap)."""
    return _template(name).substitute({key: str(value) for key, value in values.items()})
