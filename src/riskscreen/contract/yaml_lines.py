"""YAML read with the line of every key, so a mistake in a hand-written file names its line.

`yaml.safe_load` forgets where things were, takes the last of two equal keys silently and turns
a key such as `Ja`, `No` or `1` into whatever type it resembles (`No` is False). A mapping's keys
are an export's own words, so here every key stays the text as written, a repeated key is an
error, and each key and list item keeps its 1-based line (from the composed nodes' marks).
Values are typed as YAML types them (`true`, `12`, `null`, `2026-01-31`).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor

YamlPath = tuple[str | int, ...]


class YamlLineError(ValueError):
    """The text is not YAML or repeats a key; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class LocatedYaml:
    """The document and the line of each key or list item, by its path from the root."""

    data: object
    lines: dict[YamlPath, int]

    def line(self, path: YamlPath) -> int:
        """The line of `path`, or of its nearest ancestor that is written down (else line 1)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _build(node: yaml.Node, path: YamlPath, lines: dict[YamlPath, int]) -> object:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlLineError(_line(key_node), "a key must be a single text, not a list")
            key = str(key_node.value)
            if key in out:
                raise YamlLineError(_line(key_node), f"the key {key!r} appears twice here")
            lines[(*path, key)] = _line(key_node)
            out[key] = _build(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = _line(item)
            items.append(_build(item, (*path, i), lines))
        return items
    return SafeConstructor().construct_object(node)


def load_located(text: str) -> LocatedYaml:
    """Parse one YAML document, keeping the lines.

    Raises:
        YamlLineError: a syntax error, a repeated key, or a key that is not a plain text.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        raise YamlLineError(line, f"not valid YAML ({exc.problem or exc.context})") from exc
    except yaml.YAMLError as exc:
        raise YamlLineError(1, f"not valid YAML ({exc})") from exc
    lines: dict[YamlPath, int] = {}
    data = None if root is None else _build(root, (), lines)
    return LocatedYaml(data, lines)
