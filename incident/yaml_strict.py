"""YAML for configuration: the safe loader (libyaml's when available) that refuses a key given twice.

PyYAML keeps the last of two equal keys silently, so a later `restartable: true` would undo `restartable: false`;
for a file that decides what may be restarted, a repeated key is an error naming both lines.
"""

from __future__ import annotations

from typing import Any

import yaml

_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice."""


class StrictLoader(_BASE):  # type: ignore[misc,valid-type]
    """The safe loader, refusing duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # `<<: *defaults` may be overridden by the keys written beside it
            key = self.construct_object(key_node, deep=deep)
            earlier = seen.get(key)
            if earlier is not None:
                lines = f"lines {earlier.start_mark.line + 1} and {key_node.start_mark.line + 1}"
                raise DuplicateKeyError(None, None, f"key {key!r} appears twice ({lines})", key_node.start_mark)
            seen[key] = key_node
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, StrictLoader.construct_mapping)


MAX_COLLECTIONS = 1_000_000
"""Mappings and lists a configuration document may hold, aliases counted each time they are used (a fleet of
50,000 servers holds about 250,000)."""


class DocumentTooLargeError(yaml.YAMLError):
    """The document expands to more collections than MAX_COLLECTIONS (an alias bomb, or a runaway file)."""


def load_yaml(text: str) -> Any:
    """Parse configuration YAML; yaml.YAMLError (incl. DuplicateKeyError) on anything malformed.

    Aliases stay allowed (`<<: *defaults` is common), but the document's expanded size is bounded: parsing keeps an
    alias shared and small, while everything that reads the document walks each use, and "billion laughs"
    nesting makes that exponential."""
    document = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a safe loader
    _bound_expansion(document)
    return document


def _bound_expansion(document: Any) -> None:
    visited = 0
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        else:
            continue
        visited += 1
        if visited > MAX_COLLECTIONS:
            raise DocumentTooLargeError(
                f"the document expands to more than {MAX_COLLECTIONS:,} mappings and lists "
                "(aliases counted at each use); an alias bomb?"
            )
