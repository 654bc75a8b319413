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
            key = self.construct_object(key_node, deep=deep)
            try:
                earlier = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
            if earlier is not None:
                lines = f"lines {earlier.start_mark.line + 1} and {key_node.start_mark.line + 1}"
                raise DuplicateKeyError(None, None, f"key {key!r} appears twice ({lines})", key_node.start_mark)
            seen[key] = key_node
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, StrictLoader.construct_mapping)


def load_yaml(text: str) -> Any:
    """Parse configuration YAML; yaml.YAMLError (incl. DuplicateKeyError) on anything malformed."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a safe loader
