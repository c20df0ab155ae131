"""protokit's own settings in pyproject.toml: `[tool.protokit.lint]` (the PY rules) and
`[tool.protokit.breaking]` (the VALIDATE category), next to buf's settings in buf.yaml.

    [tool.protokit.lint]
    use = ["PY"]                             # rule IDs or the category "PY"; default ["PY"]
    except = ["PY_PACKAGE_SHADOWS_STDLIB"]   # rule IDs or categories removed from use
    ignore = ["protos/legacy"]               # project-root-relative paths; a directory covers everything below
    ignore_only = { PY_NAME_KEYWORD = ["protos/x/v1/y.proto"] }

    [tool.protokit.breaking]
    validate = true                          # validation-contract breaking changes, on by default
    except = ["VALIDATE_..."]                # VALIDATE rule IDs to turn off

Parsing is strict like buf.yaml's: unknown keys, unknown rules and wrong types are errors at the
line of the offending key (best effort; line 0 when it cannot be found).
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit.check import rules
from protokit.errors import ConfigError, Location

PYPROJECT = "pyproject.toml"
LINT_TABLE = "tool.protokit.lint"
BREAKING_TABLE = "tool.protokit.breaking"

_LINT_KEYS = frozenset({"use", "except", "ignore", "ignore_only"})
_BREAKING_KEYS = frozenset({"validate", "except"})
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]#]+?)\s*\]\]?\s*(#.*)?$")


def _covers(entry: str, path: str) -> bool:
    return entry == "." or path == entry or path.startswith(entry + "/")


@dataclass(frozen=True)
class PyLintConfig:
    """Which PY rules run and which findings are dropped. Paths are project-root-relative (display paths)."""

    use: tuple[str, ...] = ("PY",)
    except_: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    ignore_only: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # rule ID or category -> paths

    def selects(self, rule_id: str) -> bool:
        names = {rule_id, rules.BY_ID[rule_id].category}
        return bool(names & set(self.use)) and not names & set(self.except_)

    def ignores(self, rule_id: str, display_path: str) -> bool:
        if any(_covers(entry, display_path) for entry in self.ignore):
            return True
        names = {rule_id, rules.BY_ID[rule_id].category}
        return any(
            _covers(entry, display_path) for key, paths in self.ignore_only.items() if key in names for entry in paths
        )


@dataclass(frozen=True)
class BreakingExtraConfig:
    """protokit's breaking-change categories beyond buf's: VALIDATE (validation-contract changes)."""

    validate: bool = True
    except_: tuple[str, ...] = ()  # VALIDATE rule IDs or the category itself

    def selects(self, rule_id: str) -> bool:
        return self.validate and rule_id not in rules.expand(self.except_, rules.BREAKING)


def load_protokit_config(project_root: Path) -> tuple[PyLintConfig, BreakingExtraConfig]:
    """Read pyproject.toml of the project root; a missing file or table means the defaults."""
    file = project_root / PYPROJECT
    if not file.is_file():
        return PyLintConfig(), BreakingExtraConfig()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(Location(PYPROJECT), f"cannot read: {e}") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _toml_error(text, e) from e
    return _Parser(text).parse(data)


def _toml_error(text: str, error: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(error)
    line = col = 0
    if match := _TOML_POSITION.search(message):
        line, col = int(match[1]), int(match[2])
        message = message[: match.start()]
    elif match := _TOML_END.search(message):
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1  # just after the last character
        message = message[: match.start()]
    return ConfigError(Location(PYPROJECT, line, col), f"invalid TOML: {message}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def parse(self, data: dict[str, Any]) -> tuple[PyLintConfig, BreakingExtraConfig]:
        tool = data.get("tool", {})
        protokit = tool.get("protokit", {}) if isinstance(tool, dict) else {}
        if not isinstance(protokit, dict):
            raise self.error(("tool",), "protokit", "[tool.protokit] must be a table")
        lint = self.table(protokit, "lint", _LINT_KEYS)
        breaking = self.table(protokit, "breaking", _BREAKING_KEYS)
        return self.lint(lint), self.breaking(breaking)

    # --- positions

    def locate(self, tables: tuple[str, ...], needle: re.Pattern[str]) -> Location:
        """The first match of `needle` in the lines of any of `tables` (dotted names), else line 0."""
        current = ""
        for number, line in enumerate(self.lines, 1):
            header = _HEADER.match(line)
            if header:
                current = re.sub(r"[\s\"']", "", header[1])
                continue
            if current in tables and (match := needle.search(line)):
                return Location(PYPROJECT, number, match.start(1) + 1)
        return Location(PYPROJECT)

    def key_location(self, tables: tuple[str, ...], key: str) -> Location:
        return self.locate(tables, re.compile(rf"(?:^|[\s{{,.])[\"']?({re.escape(key)})[\"']?\s*="))

    def error(self, tables: tuple[str, ...], key: str, message: str) -> ConfigError:
        return ConfigError(self.key_location(tables, key), message)

    def value_error(self, tables: tuple[str, ...], key: str, value: str, message: str) -> ConfigError:
        where = self.locate(tables, re.compile(rf"[\"']({re.escape(value)})[\"']"))
        return ConfigError(where if where.line else self.key_location(tables, key), message)

    # --- tables

    def table(self, protokit: dict[str, Any], name: str, keys: frozenset[str]) -> dict[str, Any]:
        tables = ("tool.protokit", f"tool.protokit.{name}")
        value = protokit.get(name, {})
        if not isinstance(value, dict):
            raise self.error(tables[:1], name, f"[tool.protokit.{name}] must be a table")
        for key in value:
            if key not in keys:
                raise self.error(
                    tables,
                    key,
                    f'unknown key "{key}" in [tool.protokit.{name}] (expected one of {", ".join(sorted(keys))})',
                )
        return value

    def strings(self, tables: tuple[str, ...], table: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(tables, key, f"{what} must be a list of strings")
        return tuple(value)

    def rule_names(self, tables: tuple[str, ...], table: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
        names = self.strings(tables, table, key, what)
        for name in names:
            if not rules.known(name, rules.LINT):
                raise self.value_error(tables, key, name, f"{what}: {rules.unknown_message(name, rules.LINT)}")
        return names

    def paths(self, tables: tuple[str, ...], table: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
        paths = []
        for raw in self.strings(tables, table, key, what):
            normalised = posixpath.normpath(raw.replace("\\", "/"))
            if posixpath.isabs(normalised) or normalised == ".." or normalised.startswith("../"):
                raise self.value_error(
                    tables, key, raw, f'{what}: path "{raw}" must be relative to the project root and inside it'
                )
            paths.append(normalised)
        return tuple(paths)

    def lint(self, table: dict[str, Any]) -> PyLintConfig:
        tables = ("tool.protokit", LINT_TABLE, f"{LINT_TABLE}.ignore_only")
        use = self.rule_names(tables, table, "use", "lint.use") if "use" in table else ("PY",)
        except_ = self.rule_names(tables, table, "except", "lint.except") if "except" in table else ()
        ignore = self.paths(tables, table, "ignore", "lint.ignore") if "ignore" in table else ()
        ignore_only: dict[str, tuple[str, ...]] = {}
        if "ignore_only" in table:
            raw = table["ignore_only"]
            if not isinstance(raw, dict):
                raise self.error(tables, "ignore_only", "lint.ignore_only must be a table of rule ID = [paths]")
            for key in raw:
                if not rules.known(key, rules.LINT):
                    raise self.error(tables, key, f"lint.ignore_only: {rules.unknown_message(key, rules.LINT)}")
                ignore_only[key] = self.paths(tables, raw, key, f"lint.ignore_only.{key}")
        return PyLintConfig(use=use, except_=except_, ignore=ignore, ignore_only=ignore_only)

    def breaking(self, table: dict[str, Any]) -> BreakingExtraConfig:
        tables = ("tool.protokit", BREAKING_TABLE)
        validate = table.get("validate", True)
        if not isinstance(validate, bool):
            raise self.error(tables, "validate", "breaking.validate must be true or false")
        except_ = self.strings(tables, table, "except", "breaking.except") if "except" in table else ()
        for name in except_:
            if not rules.known(name, rules.BREAKING):
                # buf's own rules are configured in buf.yaml; only protokit's VALIDATE rules belong here.
                message = rules.unknown_message(name, rules.BREAKING)
                raise self.value_error(tables, "except", name, f"breaking.except: {message}")
        return BreakingExtraConfig(validate=validate, except_=except_)
