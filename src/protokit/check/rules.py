"""protokit's own rules in one registry, as buf keeps its own: ID, category, the command that runs
them, and a one-sentence purpose.

The handlers live beside what they read (pyrules: PY lint rules over descriptors; validate_breaking:
VALIDATE breaking rules over image pairs), keyed by these IDs. Configuration checks, `except` by
category, typo suggestions, SARIF rule metadata and `--list-rules` all read this list.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

LINT = "lint"
BREAKING = "breaking"
PY = "PY"
VALIDATE = "VALIDATE"


@dataclass(frozen=True)
class RuleSpec:
    id: str
    category: str
    command: str  # LINT or BREAKING
    purpose: str


RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "PY_FILE_NAME_IMPORTABLE",
        PY,
        LINT,
        "Every directory of a .proto file must be a valid, non-keyword Python identifier and its base name "
        'must give a valid x_pb2 module name, none containing "-" or "." (protoc silently turns "-" into "_" '
        'and "." into "/"), so the generated module is importable under the file\'s own name.',
    ),
    RuleSpec(
        "PY_PACKAGE_KEYWORD",
        PY,
        LINT,
        "No segment of the proto package may be a Python keyword (keyword.kwlist), since the package is the "
        "directory of the generated modules and their import statements.",
    ),
    RuleSpec(
        "PY_NAME_KEYWORD",
        PY,
        LINT,
        "Messages, enums, enum values, fields, extensions, services and RPCs must not be named after a Python"
        " keyword (keyword.kwlist, mypy-protobuf's PYTHON_RESERVED): the generated attribute cannot be "
        "spelled, mypy-protobuf drops or renames it (_r_), and a keyword RPC makes x_pb2_grpc.py a "
        "SyntaxError.",
    ),
    RuleSpec(
        "PY_NAME_SHADOWS_GENERATED",
        PY,
        LINT,
        "Top-level messages, enums, top-level enum values and extensions (globals of the generated x_pb2 "
        'module) must not be named DESCRIPTOR or sys, nor start with "_" or "Global___", the names the '
        "protobuf runtime and mypy-protobuf define in that module.",
    ),
    RuleSpec(
        "PY_ENUM_VALUE_SHADOWS_WRAPPER",
        PY,
        LINT,
        "Enum values must not be named Name, Value, keys, values, items, DESCRIPTOR, _enum_type or "
        "__dunder__, attributes of protobuf's EnumTypeWrapper that hide the value (mypy-protobuf's "
        "PROTO_ENUM_RESERVED and more).",
    ),
    RuleSpec(
        "PY_MODULE_COLLISION",
        PY,
        LINT,
        'No two files may generate the same Python module (protoc maps "-" to "_" and "." to "/", so '
        "a/foo-bar.proto and a/foo_bar.proto both become a/foo_bar_pb2.py).",
    ),
    RuleSpec(
        "PY_PACKAGE_SHADOWS_STDLIB",
        PY,
        LINT,
        "The first segment of the proto package (and the first directory of the file) must not be a top-level"
        " standard-library module such as json, email or test, which the generated top-level package would "
        "shadow.",
    ),
    RuleSpec(
        "PY_PACKAGE_SHADOWS_DEPENDENCY",
        PY,
        LINT,
        "The first segment of the proto package must not be a regular top-level package of an installed "
        "distribution (grpc, yaml, ...): Python imports that package, never the generated directory of the "
        "same name.",
    ),
    RuleSpec(
        "PY_NAME_SHADOWS_MESSAGE_API",
        PY,
        LINT,
        "Fields, nested messages and enums, and values of nested enums must not be named after an attribute "
        "of protobuf's Message class (ListFields, Clear, HasField, DESCRIPTOR, ...), which they hide or "
        "which hides them.",
    ),
    RuleSpec(
        "VALIDATE_REQUIRED_ADDED",
        VALIDATE,
        BREAKING,
        "A field is newly required, or a required field was added to an existing message.",
    ),
    RuleSpec(
        "VALIDATE_MIN_LEN_INCREASED",
        VALIDATE,
        BREAKING,
        "A string or bytes minimum length (min_len, min_bytes, len, len_bytes) is raised or newly set.",
    ),
    RuleSpec(
        "VALIDATE_MAX_LEN_DECREASED",
        VALIDATE,
        BREAKING,
        "A string or bytes maximum length (max_len, max_bytes, len, len_bytes) is lowered or newly set.",
    ),
    RuleSpec(
        "VALIDATE_MIN_ITEMS_INCREASED",
        VALIDATE,
        BREAKING,
        "A repeated field's min_items or a map's min_pairs is raised or newly set.",
    ),
    RuleSpec(
        "VALIDATE_MAX_ITEMS_DECREASED",
        VALIDATE,
        BREAKING,
        "A repeated field's max_items or a map's max_pairs is lowered or newly set.",
    ),
    RuleSpec(
        "VALIDATE_UNIQUE_ADDED",
        VALIDATE,
        BREAKING,
        "A repeated field newly requires unique items.",
    ),
    RuleSpec(
        "VALIDATE_RANGE_NARROWED",
        VALIDATE,
        BREAKING,
        "A numeric, duration or timestamp range (gt, gte, lt, lte, const, finite, within, *_now) rejects "
        "values it accepted.",
    ),
    RuleSpec(
        "VALIDATE_PATTERN_ADDED",
        VALIDATE,
        BREAKING,
        "A string or bytes pattern is newly set or changed, or a prefix, suffix, contains or not_contains "
        "rule is newly set or tightened.",
    ),
    RuleSpec(
        "VALIDATE_IN_NARROWED",
        VALIDATE,
        BREAKING,
        "An `in` list is newly set or loses a value, or a non-numeric `const` is newly set or changed.",
    ),
    RuleSpec(
        "VALIDATE_NOT_IN_EXTENDED",
        VALIDATE,
        BREAKING,
        "A `not_in` list gains a value.",
    ),
    RuleSpec(
        "VALIDATE_FORMAT_ADDED",
        VALIDATE,
        BREAKING,
        "A well-known string or bytes format (email, hostname, uuid, ...) is newly set or replaced by one "
        "that is not wider.",
    ),
    RuleSpec(
        "VALIDATE_DEFINED_ONLY_ADDED",
        VALIDATE,
        BREAKING,
        "An enum field newly accepts only defined values.",
    ),
    RuleSpec(
        "VALIDATE_IGNORE_NARROWED",
        VALIDATE,
        BREAKING,
        "A field's rules are ignored in fewer cases (IGNORE_ALWAYS or IGNORE_IF_ZERO_VALUE removed).",
    ),
    RuleSpec(
        "VALIDATE_CEL_ADDED",
        VALIDATE,
        BREAKING,
        "A field or message CEL rule is newly added or changed (CEL cannot be compared).",
    ),
    RuleSpec(
        "VALIDATE_MESSAGE_ONEOF_ADDED",
        VALIDATE,
        BREAKING,
        "A (buf.validate.message).oneof rule newly limits fields to at most one, or newly requires one.",
    ),
    RuleSpec(
        "VALIDATE_ONEOF_REQUIRED_ADDED",
        VALIDATE,
        BREAKING,
        "A oneof is newly required, or a required oneof was added to an existing message.",
    ),
)

BY_ID = {rule.id: rule for rule in RULES}


def of(command: str) -> tuple[RuleSpec, ...]:
    return tuple(rule for rule in RULES if rule.command == command)


def categories(command: str) -> frozenset[str]:
    return frozenset(rule.category for rule in of(command))


def known(name: str, command: str) -> bool:
    """Whether `name` is a rule ID or a category of `command`'s own rules."""
    return name in categories(command) or (name in BY_ID and BY_ID[name].command == command)


def expand(names: Iterable[str], command: str) -> frozenset[str]:
    """The rule IDs that `names` (IDs and categories) stand for."""
    wanted = set(names)
    return frozenset(rule.id for rule in of(command) if rule.id in wanted or rule.category in wanted)


def unknown_message(name: str, command: str) -> str:
    """buf's words for a name it does not know, plus the nearest known name when one is close."""
    names = [*(rule.id for rule in of(command)), *sorted(categories(command))]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    return f'"{name}" is not a known rule or category ID{hint} (see `protokit {command} --list-rules`)'
