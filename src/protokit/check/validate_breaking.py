"""Breaking changes in the validation contract: protovalidate rules that reject what the baseline accepted.

`buf breaking` guards the wire and generated-code contracts; the rules written with protovalidate's
`buf.validate` options are a third contract. A rule change that rejects a value the baseline accepted
breaks existing clients although nothing on their side changed, so it is reported here. Loosening a
rule (a minimum lowered, a format removed, an `in` list extended) is always safe and never reported.

The rules are read from the `buf.validate.field`, `buf.validate.oneof` and `buf.validate.message`
options (extension 1159), which google.protobuf only sees as unknown fields: they are decoded with a
descriptor pool built from protovalidate's embedded validate.proto. Fields are matched by (message
full name, field number) across all files, so moving a message to another file hides nothing.

Where a rule cannot be compared exactly (a regular expression, a CEL expression, a time relative to
now) any change is treated as tightening and the message says so.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from protokit import cache, toolchain
from protokit.check import rules as registry
from protokit.findings import Finding, at_location

EXTENSION_NUMBER = 1159  # buf.validate.field / .oneof / .message

# buf.validate.Ignore
IGNORE_UNSPECIFIED = 0
IGNORE_IF_ZERO_VALUE = 1
IGNORE_ALWAYS = 3
_IGNORE_NAMES = {
    IGNORE_UNSPECIFIED: "IGNORE_UNSPECIFIED",
    IGNORE_IF_ZERO_VALUE: "IGNORE_IF_ZERO_VALUE",
    IGNORE_ALWAYS: "IGNORE_ALWAYS",
}
_IGNORE_LENIENCY = {IGNORE_UNSPECIFIED: 0, IGNORE_IF_ZERO_VALUE: 1, IGNORE_ALWAYS: 2}

# FieldRules.type cases whose values are ordered: gt/gte/lt/lte/const are compared as ranges.
_INTEGRAL_KINDS = frozenset(
    {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}
)
_REAL_KINDS = frozenset({"float", "double"})
_TIME_KINDS = frozenset({"duration", "timestamp"})  # compared in whole nanoseconds
_RANGE_KINDS = _INTEGRAL_KINDS | _REAL_KINDS | _TIME_KINDS

_FORMAT_WORDS = {
    "email": "a valid email address",
    "hostname": "a valid hostname",
    "ip": "a valid IP address",
    "ipv4": "a valid IPv4 address",
    "ipv6": "a valid IPv6 address",
    "uri": "an absolute URI",
    "uri_ref": "a URI reference",
    "address": "a valid hostname or IP address",
    "uuid": "a UUID",
    "tuuid": "a trimmed UUID (32 hex digits, no dashes)",
    "ip_with_prefixlen": "an IP address with a prefix length",
    "ipv4_with_prefixlen": "an IPv4 address with a prefix length",
    "ipv6_with_prefixlen": "an IPv6 address with a prefix length",
    "ip_prefix": "an IP prefix",
    "ipv4_prefix": "an IPv4 prefix",
    "ipv6_prefix": "an IPv6 prefix",
    "host_and_port": "a host and port",
    "ulid": "a ULID",
    "protobuf_fqn": "a fully-qualified Protobuf name",
    "protobuf_dot_fqn": "a fully-qualified Protobuf name with a leading dot",
    "well_known_regex": "a value matching a well-known regular expression",
}
# (old format, new format) pairs where every value valid for the old one is valid for the new one.
_WIDER_FORMATS = frozenset(
    {
        ("ipv4", "ip"),
        ("ipv6", "ip"),
        ("ipv4_with_prefixlen", "ip_with_prefixlen"),
        ("ipv6_with_prefixlen", "ip_with_prefixlen"),
        ("ipv4_prefix", "ip_prefix"),
        ("ipv6_prefix", "ip_prefix"),
        ("ipv4_prefix", "ipv4_with_prefixlen"),
        ("ipv6_prefix", "ipv6_with_prefixlen"),
        ("ipv4_prefix", "ip_with_prefixlen"),
        ("ipv6_prefix", "ip_with_prefixlen"),
        ("ip_prefix", "ip_with_prefixlen"),
        ("uri", "uri_ref"),
        ("hostname", "address"),
        ("ip", "address"),
        ("ipv4", "address"),
        ("ipv6", "address"),
    }
)


# -- the rule registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One set of rules in the baseline and the current image, as a rule handler sees it.

    `old` and `new` are the effective rules (an empty message when there were none, or when
    `ignore: IGNORE_ALWAYS` switched them off): buf.validate.FieldRules for scope "field",
    MessageRules for "message", OneofRules for "oneof".
    """

    scope: str  # "field", "message" or "oneof"
    subject: str  # 'Field "email" on message "user.v1.CreateUserRequest"', as messages start
    old: Message
    new: Message
    added: bool = False  # the field or oneof is new in a message that already existed
    old_ignore: int = IGNORE_UNSPECIFIED
    new_ignore: int = IGNORE_UNSPECIFIED
    enum_values: Mapping[int, str] = field(default_factory=dict)  # names of the field's enum values


Handler = Callable[[Change], list[str]]


@dataclass(frozen=True)
class ValidateRule:
    """One check's handler; its category and purpose are in the registry (protokit.check.rules)."""

    id: str
    handler: Handler
    scopes: frozenset[str] = frozenset({"field"})
    checks_added: bool = False  # also runs on fields/oneofs added to an existing message


# -- helpers for handlers ----------------------------------------------------------------------


def _typed(change: Change) -> tuple[str, Any, Any] | None:
    """(type case, old type rules, new type rules), e.g. ("string", StringRules, StringRules).

    None when the current rules have no type rules, or when the type case changed (the field's type
    changed: that is buf's business).
    """
    case = change.new.WhichOneof("type")
    if case is None or change.old.WhichOneof("type") not in (None, case):
        return None
    return case, getattr(change.old, case), getattr(change.new, case)


def _has(msg: Any, name: str) -> bool:
    return name in msg.DESCRIPTOR.fields_by_name and bool(msg.HasField(name))


def _float32(value: float) -> str:
    """The shortest text that reads back as the same 32-bit float."""
    for digits in range(6, 10):
        text = f"{value:.{digits}g}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == value:
            return text
    return repr(value)


def _nanos(value: Any) -> int:
    return int(value.seconds) * 1_000_000_000 + int(value.nanos)


def _value_text(value: Any, kind: str, enum_values: Mapping[int, str] | None = None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return repr(value)
    if isinstance(value, float):
        text = _float32(value) if kind == "float" else repr(value)
        return text.removesuffix(".0")
    if isinstance(value, int):
        if kind == "enum" and enum_values and value in enum_values:
            return f"{enum_values[value]} ({value})"
        return str(value)
    if isinstance(value, Message):
        full_name = value.DESCRIPTOR.full_name
        if full_name == "google.protobuf.Duration":
            return f'"{_seconds_text(_nanos(value))}s"'
        if full_name == "google.protobuf.Timestamp":
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=_nanos(value) // 1000)
            return '"' + moment.isoformat().replace("+00:00", "Z") + '"'
        if full_name == "google.protobuf.FieldMask":
            return json.dumps(",".join(getattr(value, "paths")))  # noqa: B009
        return "{" + " ".join(str(value).split()) + "}"
    return str(value)


def _seconds_text(nanos: int) -> str:
    whole, frac = divmod(abs(nanos), 1_000_000_000)
    sign = "-" if nanos < 0 else ""
    return f"{sign}{whole}" + (f".{frac:09d}".rstrip("0") if frac else "")


def _value_key(value: Any) -> Any:
    """A hashable identity for a rule value (messages compare by their bytes)."""
    if isinstance(value, Message):
        return value.SerializeToString(deterministic=True)
    return value


def _values_text(values: list[Any], kind: str, enum_values: Mapping[int, str]) -> str:
    return "[" + ", ".join(_value_text(v, kind, enum_values) for v in values) + "]"


# -- the handlers ------------------------------------------------------------------------------


def _required_added(change: Change) -> list[str]:
    if not getattr(change.new, "required", False) or getattr(change.old, "required", False):
        return []
    if change.added:
        return [
            f"{change.subject} was added as required (required); clients built against the previous version "
            "never set it, so their requests are now rejected."
        ]
    return [f"{change.subject} is newly required (required); clients that leave it unset are now rejected."]


# (unit word, exact rule, minimum rule, maximum rule) per FieldRules type case.
_LENGTHS = {
    "string": (("characters", "len", "min_len", "max_len"), ("bytes", "len_bytes", "min_bytes", "max_bytes")),
    "bytes": (("bytes", "len", "min_len", "max_len"),),
}
_COUNTS = {
    "repeated": (("items", "", "min_items", "max_items"),),
    "map": (("entries", "", "min_pairs", "max_pairs"),),
}


def _limits(rules: Any, exact: str, low: str, high: str) -> tuple[float, str, float, str]:
    """(minimum, the rule that sets it, maximum, the rule that sets it); 0 and infinity when unset."""
    minimum: float = getattr(rules, low) if _has(rules, low) else 0
    maximum: float = getattr(rules, high) if _has(rules, high) else math.inf
    min_rule, max_rule = low, high
    if exact and _has(rules, exact):
        size = getattr(rules, exact)
        if size > minimum:
            minimum, min_rule = size, exact
        if size < maximum:
            maximum, max_rule = size, exact
    return minimum, min_rule, maximum, max_rule


def _size_changes(change: Change, table: Mapping[str, tuple[tuple[str, str, str, str], ...]], lower: bool) -> list[str]:
    typed = _typed(change)
    if typed is None or typed[0] not in table:
        return []
    case, old, new = typed
    out = []
    for unit, exact, low, high in table[case]:
        old_min, _, old_max, _ = _limits(old, exact, low, high)
        new_min, min_rule, new_max, max_rule = _limits(new, exact, low, high)
        length = "number of" if case in _COUNTS else "length in"
        if lower and new_min > old_min:
            what = (
                f"raises its minimum {length} {unit} from {_count(old_min)} to {_count(new_min)}"
                if old_min
                else f"newly requires at least {_count(new_min, unit)}"
            )
            fewer = f"fewer {unit}" if case in _COUNTS else "shorter values"
            out.append(f"{change.subject} {what} ({case}.{min_rule}); clients sending {fewer} are now rejected.")
        if not lower and new_max < old_max:
            what = (
                f"lowers its maximum {length} {unit} from {_count(old_max)} to {_count(new_max)}"
                if old_max != math.inf
                else f"newly allows at most {_count(new_max, unit)}"
            )
            more = f"more {unit}" if case in _COUNTS else "longer values"
            out.append(f"{change.subject} {what} ({case}.{max_rule}); clients sending {more} are now rejected.")
    return out


def _count(value: float, unit: str = "") -> str:
    """`3 characters`, `1 character`; just the number without a unit."""
    n = int(value)
    if not unit:
        return str(n)
    if n == 1:
        unit = {"entries": "entry"}.get(unit, unit.removesuffix("s"))
    return f"{n} {unit}"


def _min_len_increased(change: Change) -> list[str]:
    return _size_changes(change, _LENGTHS, lower=True)


def _max_len_decreased(change: Change) -> list[str]:
    return _size_changes(change, _LENGTHS, lower=False)


def _min_items_increased(change: Change) -> list[str]:
    return _size_changes(change, _COUNTS, lower=True)


def _max_items_decreased(change: Change) -> list[str]:
    return _size_changes(change, _COUNTS, lower=False)


def _unique_added(change: Change) -> list[str]:
    typed = _typed(change)
    if typed is None or typed[0] != "repeated" or not typed[2].unique or typed[1].unique:
        return []
    return [
        f"{change.subject} newly requires unique items (repeated.unique); clients sending duplicates are now rejected."
    ]


# Ranges: a set of accepted values is a list of intervals (low, low inclusive, high, high inclusive).
Interval = tuple[float, bool, float, bool]
_EVERYTHING: Interval = (-math.inf, True, math.inf, True)


def _bound(rules: Any, oneof: str, kind: str) -> tuple[str, float] | None:
    """The rule ("gt", 5) set in the greater_than or less_than oneof; *_now rules are not values."""
    case = rules.WhichOneof(oneof)
    if case is None or case.endswith("_now"):
        return None
    value = getattr(rules, case)
    return case, (_nanos(value) if kind in _TIME_KINDS else value)


def _nonempty(iv: Interval) -> bool:
    return iv[0] < iv[2] or (iv[0] == iv[2] and iv[1] and iv[3])


def _merge(intervals: list[Interval], integral: bool) -> list[Interval]:
    merged: list[Interval] = []
    for iv in sorted((i for i in intervals if _nonempty(i)), key=lambda i: (i[0], not i[1])):
        if merged:
            lo, lo_in, hi, hi_in = merged[-1]
            touches = iv[0] < hi or (iv[0] == hi and (iv[1] or hi_in)) or (integral and iv[0] == hi + 1)
            if touches:
                if iv[2] > hi or (iv[2] == hi and iv[3]):
                    hi, hi_in = iv[2], iv[3]
                merged[-1] = (lo, lo_in, hi, hi_in)
                continue
        merged.append(iv)
    return merged


def _accepted(rules: Any, kind: str, with_in: bool = False) -> list[Interval]:
    """The values a numeric rule set accepts, as protovalidate evaluates gt/gte/lt/lte/const (and `in`).

    With both bounds, an upper bound below the lower one means an exclusive range: values outside
    the gap are accepted (`{gt: 10, lt: 0}` accepts x < 0 or x > 10). Integers (and nanoseconds)
    are discrete, so exclusive bounds become inclusive ones: gt 4 is gte 5.
    """
    integral = kind not in _REAL_KINDS
    lower, upper = _bound(rules, "greater_than", kind), _bound(rules, "less_than", kind)

    def low(b: tuple[str, float]) -> tuple[float, bool]:
        if b[0] == "gt":
            return (b[1] + 1, True) if integral else (b[1], False)
        return b[1], True

    def high(b: tuple[str, float]) -> tuple[float, bool]:
        if b[0] == "lt":
            return (b[1] - 1, True) if integral else (b[1], False)
        return b[1], True

    if lower and upper and upper[1] < lower[1]:
        intervals = [(-math.inf, True, *high(upper)), (*low(lower), math.inf, True)]
    else:
        lo, lo_in = low(lower) if lower else (-math.inf, True)
        hi, hi_in = high(upper) if upper else (math.inf, True)
        intervals = [(lo, lo_in, hi, hi_in)]
    points = [getattr(rules, "const")] if _has(rules, "const") else []  # noqa: B009
    if with_in and "in" in rules.DESCRIPTOR.fields_by_name and len(getattr(rules, "in")):
        points = points or list(getattr(rules, "in"))
    if points:
        values = [_nanos(v) if kind in _TIME_KINDS else v for v in points]
        intervals = [(v, True, v, True) for v in values if any(_contains(iv, (v, True, v, True)) for iv in intervals)]
    return _merge(intervals, integral)


def _contains(outer: Interval, inner: Interval) -> bool:
    lo_ok = outer[0] < inner[0] or (outer[0] == inner[0] and (outer[1] or not inner[1]))
    hi_ok = outer[2] > inner[2] or (outer[2] == inner[2] and (outer[3] or not inner[3]))
    return lo_ok and hi_ok


def _range_text(rules: Any, kind: str) -> str:
    parts = []
    for name in ("const", "gt", "gte", "gt_now", "lt", "lte", "lt_now"):
        if _has(rules, name):
            parts.append(f"{name}: {_value_text(getattr(rules, name), kind)}")
    return "{" + ", ".join(parts) + "}" if parts else "any value"


def _range_narrowed(change: Change) -> list[str]:
    typed = _typed(change)
    if typed is None or typed[0] not in _RANGE_KINDS:
        return []
    kind, old, new = typed
    out = []
    # The old `in` list limits what the baseline accepted; the new one is VALIDATE_IN_NARROWED's business.
    old_set, new_set = _accepted(old, kind, with_in=True), _accepted(new, kind)
    narrowed = not all(any(_contains(n, o) for n in new_set) for o in old_set)
    for now in ("gt_now", "lt_now"):  # relative to the clock: only "newly set" is certain
        narrowed = narrowed or (_has(new, now) and not _has(old, now))
    if narrowed:
        relative = any(_has(r, now) for r in (old, new) for now in ("gt_now", "lt_now"))
        unclear = "; bounds relative to now are compared conservatively" if relative else ""
        out.append(
            f"{change.subject} narrows its accepted range from {_range_text(old, kind)} to "
            f"{_range_text(new, kind)} ({kind}{unclear}); clients sending values outside the new range "
            "are now rejected."
        )
    if kind in _REAL_KINDS and new.finite and not old.finite:
        out.append(
            f"{change.subject} newly requires finite values ({kind}.finite); clients sending infinity or NaN "
            "are now rejected."
        )
    if kind == "timestamp" and _has(new, "within"):
        new_within = _nanos(new.within)
        if not _has(old, "within") or new_within < _nanos(old.within):
            was = f" (was {_value_text(old.within, kind)})" if _has(old, "within") else ""
            out.append(
                f"{change.subject} newly requires times within {_value_text(new.within, kind)} of now"
                f"{was} (timestamp.within); clients sending times further away are now rejected."
            )
    return out


def _pattern_added(change: Change) -> list[str]:
    typed = _typed(change)
    if typed is None or typed[0] not in ("string", "bytes"):
        return []
    kind, old, new = typed
    out = []
    if _has(new, "pattern") and (not _has(old, "pattern") or old.pattern != new.pattern):
        what = (
            f"changes its pattern from {json.dumps(old.pattern)} to {json.dumps(new.pattern)}"
            if _has(old, "pattern")
            else f"newly requires values to match {json.dumps(new.pattern)}"
        )
        out.append(
            f"{change.subject} {what} ({kind}.pattern); regular expressions cannot be compared, so any new or "
            "changed pattern is treated as breaking: clients sending values it does not match are now rejected."
        )
    # Each check: (rule, words, whether the old value implies the new one).
    checks: list[tuple[str, str, Callable[[Any, Any], bool]]] = [
        ("prefix", "to start with", lambda o, n: bool(o.startswith(n))),
        ("suffix", "to end with", lambda o, n: bool(o.endswith(n))),
        ("contains", "to contain", lambda o, n: n in o),
        ("not_contains", "not to contain", lambda o, n: o in n),
    ]
    for name, words, implied in checks:
        if not _has(new, name) or not getattr(new, name):
            continue
        value = getattr(new, name)
        before = getattr(old, name) if _has(old, name) else None
        if before and implied(before, value):
            continue
        was = f" (was {_value_text(before, kind)})" if before else ""
        out.append(
            f"{change.subject} newly requires values {words} {_value_text(value, kind)}{was} ({kind}.{name}); "
            "clients sending other values are now rejected."
        )
    return out


def _in_narrowed(change: Change) -> list[str]:
    typed = _typed(change)
    if typed is None:
        return []
    kind, old, new = typed
    out = []
    if "in" in new.DESCRIPTOR.fields_by_name and len(new_in := list(getattr(new, "in"))):
        old_in = list(getattr(old, "in"))
        if not old_in:
            out.append(
                f"{change.subject} newly restricts values to {_values_text(new_in, kind, change.enum_values)} "
                f"({kind}.in); clients sending other values are now rejected."
            )
        else:
            kept = {_value_key(v) for v in new_in}
            removed = [v for v in old_in if _value_key(v) not in kept]
            if removed:
                out.append(
                    f"{change.subject} no longer accepts {_values_text(removed, kind, change.enum_values)} "
                    f"({kind}.in); clients sending them are now rejected."
                )
    # const of ordered kinds is a range (VALIDATE_RANGE_NARROWED); of the others it is a one-value `in`.
    if kind not in _RANGE_KINDS and _has(new, "const"):
        new_const = getattr(new, "const")  # noqa: B009
        if not _has(old, "const") or _value_key(old.const) != _value_key(new_const):
            was = f" (was {_value_text(old.const, kind, change.enum_values)})" if _has(old, "const") else ""
            out.append(
                f"{change.subject} newly requires the constant value "
                f"{_value_text(new_const, kind, change.enum_values)}{was} ({kind}.const); clients sending "
                "other values are now rejected."
            )
    return out


def _not_in_extended(change: Change) -> list[str]:
    typed = _typed(change)
    if typed is None or "not_in" not in typed[2].DESCRIPTOR.fields_by_name:
        return []
    kind, old, new = typed
    before = {_value_key(v) for v in old.not_in}
    added = [v for v in new.not_in if _value_key(v) not in before]
    if not added:
        return []
    return [
        f"{change.subject} newly rejects {_values_text(added, kind, change.enum_values)} ({kind}.not_in); "
        "clients sending them are now rejected."
    ]


def _format(rules: Any) -> tuple[str, Any] | None:
    """The active well-known format: ("email", True), ("well_known_regex", 1); None when off."""
    if "well_known" not in rules.DESCRIPTOR.oneofs_by_name:
        return None
    case = rules.WhichOneof("well_known")
    if case is None or not getattr(rules, case):  # `email: false` checks nothing
        return None
    return case, getattr(rules, case)


def _format_words(kind: str, fmt: tuple[str, Any], rules: Any) -> str:
    name, value = fmt
    if name == "well_known_regex":
        enum = rules.DESCRIPTOR.fields_by_name[name].enum_type
        return f"a value matching {enum.values_by_number[value].name if value in enum.values_by_number else value}"
    words = _FORMAT_WORDS.get(name, f"a valid {name}")
    return f"{words} as bytes" if kind == "bytes" else words


def _format_added(change: Change) -> list[str]:
    typed = _typed(change)
    if typed is None or typed[0] not in ("string", "bytes"):
        return []
    kind, old, new = typed
    new_fmt, old_fmt = _format(new), _format(old)
    if new_fmt is None:
        return []
    if old_fmt == new_fmt:
        if new_fmt[0] == "well_known_regex" and kind == "string":
            # strict (default true) also rejects what the header grammar's lenient form allows.
            old_strict = old.strict if _has(old, "strict") else True
            new_strict = new.strict if _has(new, "strict") else True
            if new_strict and not old_strict:
                return [
                    f"{change.subject} newly validates {_format_words(kind, new_fmt, new)} strictly "
                    f"({kind}.strict); clients sending values only the lenient form accepts are now rejected."
                ]
        return []
    if old_fmt is not None and (old_fmt[0], new_fmt[0]) in _WIDER_FORMATS:
        return []
    instead = f" instead of {_format_words(kind, old_fmt, old)}" if old_fmt else ""
    return [
        f"{change.subject} newly requires {_format_words(kind, new_fmt, new)}{instead} ({kind}.{new_fmt[0]}); "
        "clients sending other values are now rejected."
    ]


def _defined_only_added(change: Change) -> list[str]:
    typed = _typed(change)
    if typed is None or typed[0] != "enum" or not typed[2].defined_only or typed[1].defined_only:
        return []
    return [
        f"{change.subject} newly accepts only defined enum values (enum.defined_only); clients sending "
        "unknown numbers are now rejected."
    ]


def _has_constraints(rules: Message) -> bool:
    """Whether a rule message checks anything (`ignore` and `example` values check nothing)."""
    for fd, value in rules.ListFields():
        if fd.name in ("ignore", "example"):
            continue
        if (
            fd.type == FieldDescriptor.TYPE_MESSAGE
            and not fd.is_repeated
            and fd.message_type is not None
            and fd.message_type.full_name.startswith("buf.validate.")
        ):
            if _has_constraints(value):
                return True
            continue
        return True
    return False


def _ignore_narrowed(change: Change) -> list[str]:
    before, after = _IGNORE_LENIENCY.get(change.old_ignore, 0), _IGNORE_LENIENCY.get(change.new_ignore, 0)
    if after >= before or not _has_constraints(change.new):
        return []
    old_name, new_name = _IGNORE_NAMES.get(change.old_ignore, "?"), _IGNORE_NAMES.get(change.new_ignore, "?")
    if change.old_ignore == IGNORE_ALWAYS:
        what = "no longer ignores its rules"
        effect = "all of its rules now apply and clients sending values they reject are now rejected"
    else:
        what = "no longer skips its rules for empty (zero) values"
        effect = "clients sending an empty value that breaks its rules are now rejected"
    return [f"{change.subject} {what} (ignore was {old_name}, now {new_name}); {effect}."]


def _cel_expressions(rules: Any) -> dict[str, str]:
    """CEL expression -> how to name it (its id when it has one)."""
    found = {text: json.dumps(text) for text in rules.cel_expression}
    for rule in rules.cel:
        found.setdefault(rule.expression, f"{json.dumps(rule.id)} ({rule.expression})" if rule.id else rule.expression)
    return found


def _cel_added(change: Change) -> list[str]:
    old = _cel_expressions(change.old)
    return [
        f"{change.subject} adds the CEL rule {label}; CEL expressions cannot be compared, so any new or changed "
        "expression is treated as breaking: clients sending values it rejects now fail validation."
        for text, label in _cel_expressions(change.new).items()
        if text not in old
    ]


def _message_oneof_added(change: Change) -> list[str]:
    before = [(frozenset(r.fields), bool(r.required)) for r in getattr(change.old, "oneof")]  # noqa: B009
    out = []
    for rule in getattr(change.new, "oneof"):  # noqa: B009
        fields = frozenset(rule.fields)
        names = ", ".join(f'"{f}"' for f in rule.fields)
        at_most_one = len(fields) <= 1 or any(fields <= old for old, _ in before)
        at_least_one = not rule.required or any(old <= fields and required for old, required in before)
        if not at_most_one:
            out.append(
                f"{change.subject} newly allows at most one of {names} to be set (buf.validate.message oneof); "
                "clients setting several of them are now rejected."
            )
        elif not at_least_one:
            out.append(
                f"{change.subject} newly requires one of {names} to be set (buf.validate.message oneof, "
                "required); clients that set none of them are now rejected."
            )
    return out


def _oneof_required_added(change: Change) -> list[str]:
    if not getattr(change.new, "required", False) or getattr(change.old, "required", False):
        return []
    added = " was added and" if change.added else ""
    return [
        f"{change.subject}{added} newly requires one of its fields to be set (buf.validate.oneof.required); "
        "clients that set none of them are now rejected."
    ]


RULES: tuple[ValidateRule, ...] = (
    ValidateRule("VALIDATE_REQUIRED_ADDED", _required_added, checks_added=True),
    ValidateRule("VALIDATE_MIN_LEN_INCREASED", _min_len_increased),
    ValidateRule("VALIDATE_MAX_LEN_DECREASED", _max_len_decreased),
    ValidateRule("VALIDATE_MIN_ITEMS_INCREASED", _min_items_increased),
    ValidateRule("VALIDATE_MAX_ITEMS_DECREASED", _max_items_decreased),
    ValidateRule("VALIDATE_UNIQUE_ADDED", _unique_added),
    ValidateRule("VALIDATE_RANGE_NARROWED", _range_narrowed),
    ValidateRule("VALIDATE_PATTERN_ADDED", _pattern_added),
    ValidateRule("VALIDATE_IN_NARROWED", _in_narrowed),
    ValidateRule("VALIDATE_NOT_IN_EXTENDED", _not_in_extended),
    ValidateRule("VALIDATE_FORMAT_ADDED", _format_added),
    ValidateRule("VALIDATE_DEFINED_ONLY_ADDED", _defined_only_added),
    ValidateRule("VALIDATE_IGNORE_NARROWED", _ignore_narrowed),
    ValidateRule("VALIDATE_CEL_ADDED", _cel_added, scopes=frozenset({"field", "message"})),
    ValidateRule("VALIDATE_MESSAGE_ONEOF_ADDED", _message_oneof_added, scopes=frozenset({"message"})),
    ValidateRule(
        "VALIDATE_ONEOF_REQUIRED_ADDED", _oneof_required_added, scopes=frozenset({"oneof"}), checks_added=True
    ),
)


# -- reading the images ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Schema:
    """validate.proto's descriptors: option classes that know extension 1159 and its rule messages."""

    field_options: type[Message]
    message_options: type[Message]
    oneof_options: type[Message]
    field_ext: Any
    message_ext: Any
    oneof_ext: Any
    field_rules: type[Message]
    message_rules: type[Message]
    oneof_rules: type[Message]


@functools.cache
def _schema() -> _Schema:
    data = toolchain.validate_descriptor_set(cache.cache_dir()).read_bytes()
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        pool.Add(file)  # dependencies come first in the set

    def cls(name: str) -> type[Message]:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

    return _Schema(
        field_options=cls("google.protobuf.FieldOptions"),
        message_options=cls("google.protobuf.MessageOptions"),
        oneof_options=cls("google.protobuf.OneofOptions"),
        field_ext=pool.FindExtensionByName("buf.validate.field"),
        message_ext=pool.FindExtensionByName("buf.validate.message"),
        oneof_ext=pool.FindExtensionByName("buf.validate.oneof"),
        field_rules=cls("buf.validate.FieldRules"),
        message_rules=cls("buf.validate.MessageRules"),
        oneof_rules=cls("buf.validate.OneofRules"),
    )


def _decode(options: Message, options_cls: type[Message], ext: Any, rules_cls: type[Message]) -> Message:
    """The rules in an options message; an empty rules message when there are none."""
    decoded: Any = options_cls.FromString(options.SerializeToString())
    if decoded.HasExtension(ext):
        rules: Message = decoded.Extensions[ext]
        return rules
    return rules_cls()


def _effective(rules: Any) -> tuple[Any, int]:
    """(the rules that apply, the ignore setting): IGNORE_ALWAYS switches all of them off."""
    ignore = int(rules.ignore) if "ignore" in rules.DESCRIPTOR.fields_by_name else IGNORE_UNSPECIFIED
    effective = type(rules)()
    if ignore != IGNORE_ALWAYS:
        effective.CopyFrom(rules)
        if "ignore" in rules.DESCRIPTOR.fields_by_name:
            effective.ClearField("ignore")
    return effective, ignore


def _messages(
    files: Collection[descriptor_pb2.FileDescriptorProto],
) -> Iterator[tuple[descriptor_pb2.FileDescriptorProto, str, descriptor_pb2.DescriptorProto, tuple[int, ...]]]:
    """(file, full name, message, SourceCodeInfo path) of every message, nested ones included."""

    def walk(
        file: descriptor_pb2.FileDescriptorProto,
        prefix: str,
        messages: Any,
        path: tuple[int, ...],
        tag: int,
    ) -> Iterator[tuple[descriptor_pb2.FileDescriptorProto, str, descriptor_pb2.DescriptorProto, tuple[int, ...]]]:
        for i, msg in enumerate(messages):
            name = f"{prefix}.{msg.name}" if prefix else msg.name
            msg_path = (*path, tag, i)
            yield file, name, msg, msg_path
            yield from walk(file, name, msg.nested_type, msg_path, 3)

    for file in files:
        yield from walk(file, file.package, file.message_type, (), 4)


def _enums(files: Collection[descriptor_pb2.FileDescriptorProto]) -> dict[str, dict[int, str]]:
    """Enum full name (with a leading dot, as type_name has it) -> value number -> value name."""
    found: dict[str, dict[int, str]] = {}

    def add(prefix: str, enums: Any) -> None:
        for enum in enums:
            values: dict[int, str] = {}
            for v in enum.value:
                values.setdefault(v.number, v.name)
            found[f"{prefix}.{enum.name}"] = values

    for file in files:
        add(f".{file.package}" if file.package else "", file.enum_type)
    for _, name, msg, _ in _messages(files):
        add(f".{name}", msg.enum_type)
    return found


def _field_changes(
    subject: str,
    old_raw: Any,
    new_raw: Any,
    enum_values: Mapping[int, str],
    value_enum_values: Mapping[int, str],
    added: bool,
) -> list[Change]:
    """The field's own change, then those of repeated items and map keys and values."""
    old, old_ignore = _effective(old_raw)
    new, new_ignore = _effective(new_raw)
    changes = [Change("field", subject, old, new, added, old_ignore, new_ignore, enum_values)]
    if added:
        return changes
    case = new.WhichOneof("type")
    if old.WhichOneof("type") not in (None, case):
        return changes
    parts = {
        "repeated": (("items", "each item", enum_values),),
        "map": (("keys", "each map key", {}), ("values", "each map value", value_enum_values)),
    }
    for attr, label, names in parts.get(case or "", ()):
        old_sub, new_sub = getattr(getattr(old, case), attr), getattr(getattr(new, case), attr)
        if old_sub.ByteSize() or new_sub.ByteSize():
            changes += _field_changes(f"{subject} ({label})", old_sub, new_sub, names, {}, added=False)
    return changes


def _run(rules: list[ValidateRule], change: Change) -> Iterator[tuple[ValidateRule, str]]:
    for rule in rules:
        if change.scope in rule.scopes and (rule.checks_added or not change.added):
            for text in rule.handler(change):
                yield rule, text


def compare(
    baseline: bytes,
    current: bytes,
    files: Collection[str],
    display: Callable[[str], str],
    disabled: Collection[str] = (),
) -> list[Finding]:
    """Validation rules of `current` that reject what `baseline` accepted, in the files named `files`.

    `baseline` and `current` are images (serialized FileDescriptorSets with source info); `display`
    maps an image file name to the path users see; `disabled` holds rule IDs (or the category) to skip.
    Findings sit on the current declaration (field, oneof or message) and come back sorted.
    """
    schema = _schema()
    old_image = descriptor_pb2.FileDescriptorSet.FromString(baseline)
    new_image = descriptor_pb2.FileDescriptorSet.FromString(current)
    old_messages = {name: msg for _, name, msg, _ in _messages(old_image.file)}
    enums = _enums(new_image.file)
    nested_types = {f".{name}": msg for _, name, msg, _ in _messages(new_image.file)}
    off = registry.expand(disabled, registry.BREAKING)
    rules = [r for r in RULES if r.id not in off]
    wanted = set(files)
    checked = [f for f in new_image.file if f.name in wanted]

    findings: list[Finding] = []
    spans: dict[str, dict[tuple[int, ...], list[int]]] = {}
    for file, name, msg, msg_path in _messages(checked):
        old_msg = old_messages.get(name)
        if old_msg is None:
            continue  # a new message breaks no existing client
        if file.name not in spans:
            spans[file.name] = {}
            for loc in file.source_code_info.location:
                spans[file.name].setdefault(tuple(loc.path), list(loc.span))
        path = display(file.name)

        def report(change: Change, at: tuple[int, ...], file: str = file.name, path: str = path) -> None:
            span = spans[file].get(at)
            findings.extend(at_location(path, span, rule.id, text) for rule, text in _run(rules, change))

        old_fields = {f.number: f for f in old_msg.field}
        for i, fd in enumerate(msg.field):
            old_fd = old_fields.get(fd.number)
            new_rules = _decode(fd.options, schema.field_options, schema.field_ext, schema.field_rules)
            old_rules = (
                _decode(old_fd.options, schema.field_options, schema.field_ext, schema.field_rules)
                if old_fd is not None
                else schema.field_rules()
            )
            enum_values = enums.get(fd.type_name, {}) if fd.type == fd.TYPE_ENUM else {}
            value_enum_values: Mapping[int, str] = {}
            entry = nested_types.get(fd.type_name) if fd.type == fd.TYPE_MESSAGE else None
            if entry is not None and entry.options.map_entry:
                value = next((f for f in entry.field if f.number == 2), None)
                if value is not None and value.type == value.TYPE_ENUM:
                    value_enum_values = enums.get(value.type_name, {})
            subject = f'Field "{fd.name}" on message "{name}"'
            for change in _field_changes(
                subject, old_rules, new_rules, enum_values, value_enum_values, added=old_fd is None
            ):
                report(change, (*msg_path, 2, i))

        old_oneofs = {o.name: o for o in old_msg.oneof_decl}
        for k, oneof in enumerate(msg.oneof_decl):
            old_oneof = old_oneofs.get(oneof.name)
            new_o = _decode(oneof.options, schema.oneof_options, schema.oneof_ext, schema.oneof_rules)
            old_o = (
                _decode(old_oneof.options, schema.oneof_options, schema.oneof_ext, schema.oneof_rules)
                if old_oneof is not None
                else schema.oneof_rules()
            )
            subject = f'Oneof "{oneof.name}" on message "{name}"'
            report(Change("oneof", subject, old_o, new_o, added=old_oneof is None), (*msg_path, 8, k))

        new_m = _decode(msg.options, schema.message_options, schema.message_ext, schema.message_rules)
        old_m = _decode(old_msg.options, schema.message_options, schema.message_ext, schema.message_rules)
        report(Change("message", f'Message "{name}"', old_m, new_m), msg_path)
    return sorted(findings)
