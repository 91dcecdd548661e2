"""Reading YAML while remembering the line of every mapping, key and list item.

The compiler reports each problem with its file and line, so the loader keeps
line numbers beside the values: mappings become :class:`LineDict` and lists
:class:`LineList`, plain ``dict``/``list`` subclasses with a ``line`` and the
line of each key or item. Duplicate keys are recorded instead of silently
overwritten.
"""

from __future__ import annotations

from typing import Any

import yaml


class LineDict(dict[str, Any]):
    """A YAML mapping with the line it starts on and the line of each key."""

    line: int
    key_lines: dict[str, int]
    duplicate_keys: list[tuple[str, int]]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A YAML sequence with the line it starts on and the line of each item."""

    line: int
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that builds LineDict and LineList."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.duplicate_keys = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key_text = str(key)
        line = key_node.start_mark.line + 1
        if key_text in result:
            result.duplicate_keys.append((key_text, line))
        result[key_text] = loader.construct_object(value_node, deep=True)
        result.key_lines[key_text] = line
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: str) -> Any:
    """Parse YAML text into LineDict/LineList/scalars; raises yaml.YAMLError with a mark."""
    return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
