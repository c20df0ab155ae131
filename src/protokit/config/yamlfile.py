"""YAML loading that remembers where every key and value was, for `file:line:col` errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from protokit.errors import ConfigError, Location

# libyaml's loader when PyYAML has it: same nodes and marks, several times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Node:
    """A YAML value with its position; mappings keep the position of each key too."""

    value: Any
    where: Location
    key_where: dict[str, Location]


def _convert(node: yaml.Node, path: str) -> Node:
    where = Location(path, node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        keys: dict[str, Location] = {}
        for k, v in node.value:
            key = str(k.value)
            key_at = Location(path, k.start_mark.line + 1, k.start_mark.column + 1)
            if key in keys:
                # YAML forbids it, and buf refuses it; PyYAML would keep the last value silently.
                raise ConfigError(key_at, f'mapping key "{key}" already defined at line {keys[key].line}')
            keys[key] = key_at
            out[key] = _convert(v, path)
        return Node(out, where, keys)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(v, path) for v in node.value], where, {})
    # Scalars: let PyYAML's resolver turn "true"/"1" into bool/int as YAML says.
    return Node(yaml.safe_load(yaml.serialize(node)), where, {})


def load(file: Path, display: str) -> Node:
    """Parse `file`; syntax errors become ConfigError at the line and column PyYAML reports."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(Location(display), f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(Location(display), "not UTF-8 text") from exc
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError:
        _raise_syntax_error(text, display)
    if root is None:
        raise ConfigError(Location(display), "file is empty")
    return _convert(root, display)


def _raise_syntax_error(text: str, display: str) -> NoReturn:
    """Re-parse with the pure-Python loader: its messages name the culprit (a tab, say), libyaml's do not."""
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ConfigError(Location(display, line, col), f"invalid YAML: {exc.problem}") from exc
    raise ConfigError(Location(display), "invalid YAML")


def mapping(node: Node, what: str, allowed: frozenset[str]) -> dict[str, Node]:
    """Require a mapping whose keys are all in `allowed` (buf rejects unknown keys too)."""
    if not isinstance(node.value, dict):
        raise ConfigError(node.where, f"{what} must be a mapping")
    for key in node.value:
        if key not in allowed:
            raise ConfigError(node.key_where[key], f'unknown key "{key}" in {what}')
    value: dict[str, Node] = node.value
    return value


def string(node: Node, what: str) -> str:
    if not isinstance(node.value, str) or not node.value:
        raise ConfigError(node.where, f"{what} must be a non-empty string")
    return node.value


def string_list(node: Node, what: str) -> list[str]:
    """A string or a list of strings (buf accepts both for `opt`, `use`, ...)."""
    if isinstance(node.value, str):
        return [node.value]
    if not isinstance(node.value, list):
        raise ConfigError(node.where, f"{what} must be a string or a list of strings")
    return [string(item, what) for item in node.value]


def boolean(node: Node, what: str) -> bool:
    if not isinstance(node.value, bool):
        raise ConfigError(node.where, f"{what} must be true or false")
    return node.value
