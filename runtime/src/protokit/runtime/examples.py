"""Example messages for generated tests: valid ones, invalid ones, built from the messages' protovalidate rules.

    request = example(pb.CreateUserRequest, username="grace")   # passes protovalidate; username as given
    bad = invalid(pb.CreateUserRequest)                         # protovalidate rejects it: one field broken
    if has_constraints(pb.GetUserRequest): ...                  # whether protovalidate checks anything on it

`example` keeps the values given and fills every other singular scalar and enum field with the first
candidate that passes the field's rules, checked with protovalidate: values the rules give (their `example`
values, const, in), a value suggested by the field's name (email: "ada@example.com", id or *_id: a fixed
uuid, *_uri: "https://example.com/a"...), then generic values (formats such as hostnames and IPs, numbers
around the rules' bounds), each also fitted to the rules' length, prefix and suffix. Booleans stay false,
and the AIP request fields whose zero value asks for the default behaviour (page_size, page_token, filter,
order_by, validate_only...) stay empty, unless a rule rejects that. Repeated, map and message fields stay
empty, and oneofs unset, unless a rule requires them (required, min_items, min_pairs, a required oneof):
then they get example elements, messages built the same way. The result is the same on every call: pass
values where a test needs them unique (two created users need two usernames).

`invalid` takes that example and breaks one constrained field (the first that can be broken, fields not
given as values first), checked with protovalidate. Both raise ValueError naming the field when they cannot
do what they promise. protovalidate is imported on first use.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from functools import cache, partial
from typing import Any, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .messages import _clone, _is_map, set_fields

__all__ = ["UUID", "example", "has_constraints", "invalid"]

M = TypeVar("M", bound=Message)
# Descriptors: the stubs type them as a union of the Python and upb classes with Optional attributes.
Descriptor = Any

# The id-like fields' example value: a fixed uuid4 (variants end in 2, 3... where distinct ones are needed).
UUID = "00000000-0000-4000-8000-000000000001"
# AIP request fields whose zero value means "the default": a filled one would change what the call does.
_DEFAULT_BEHAVIOUR = frozenset(
    {"page_size", "page_token", "skip", "filter", "order_by", "etag", "validate_only", "allow_missing", "force"}
    | {"show_deleted", "request_id"}
)
# (words in the field's name, value): the first whose word is in the name is tried first.
_BY_NAME: list[tuple[tuple[str, ...], str]] = [
    (("email", "emails"), "ada@example.com"),
    (("id", "ids", "uuid", "uuids"), UUID),
    (("uri", "url", "uris", "urls", "link", "website"), "https://example.com/a"),
    (("host", "hostname", "domain", "server"), "example.com"),
    (("ipv6",), "2001:db8::1"),
    (("ip", "ipv4"), "192.0.2.1"),
    (("username", "login", "handle", "slug"), "ada_lovelace"),
    (("password", "secret", "passphrase"), "correct horse battery staple"),
    (("phone",), "+15555550100"),
    (("title", "subject"), "An example"),
    (("description", "bio", "summary", "comment", "note", "text", "body", "message"), "An example."),
    (("name",), "Ada Lovelace"),
    (("city", "town"), "London"),
    (("locale", "language"), "en"),
    (("country", "region"), "US"),
    (("currency",), "USD"),
]
_STRINGS = [
    "example",
    "ada_lovelace",
    "Ada Lovelace",
    "a",
    "abc",
    UUID,
    UUID.replace("-", ""),
    "https://example.com",
    "/a",
    "example.com",
    "192.0.2.1",
    "2001:db8::1",
    "192.0.2.1/24",
    "192.0.2.0/24",
    "2001:db8::1/64",
    "2001:db8::/32",
    "example.com:443",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",  # a ULID
    "example.v1.Example",
    ".example.v1.Example",
    "x-example",
    "1",
    "example-example-example-example",
]
_NUMBERS = [1, 2, 10, 100, 1000, 0, -1]
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE)
_SECOND = 10**9
_JAN_2024 = 1_704_067_200 * _SECOND
_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_IGNORE_ALWAYS = 3  # buf.validate.Ignore.IGNORE_ALWAYS: the field's rules are never checked

_validator: Any = None


# --- the public functions -----------------------------------------------------------------------------


def example(message_type: type[M], **values: Any) -> M:
    """A `message_type` message that passes protovalidate, with `values` set as given (keyword: field name;
    messages, lists and dicts as the message's constructor takes them) and the other fields filled as the
    module doc says. ValueError naming the field when no candidate satisfies its rules, or naming the
    violations when the values given (or a message-level rule) make the result invalid."""
    return _example(message_type, values, ())


def invalid(message_type: type[M], **values: Any) -> M:
    """`example(message_type, **values)` with one constrained field changed so that protovalidate rejects
    it (a field not in `values` when one can be broken). ValueError when no field constraint can be broken."""
    return _invalid(message_type, values, ())


def has_constraints(message_type: type[Message]) -> bool:
    """Whether protovalidate checks anything on `message_type`: field, oneof or message rules, on it or on
    the message types of its fields (nested, repeated and map values)."""
    return _has_constraints(message_type.DESCRIPTOR, set())


# --- breaking valid messages --------------------------------------------------------------------------


def _invalid(message_type: type[M], values: dict[str, Any], breaking: tuple[str, ...]) -> M:
    valid = example(message_type, **values)
    descriptor = message_type.DESCRIPTOR
    breaking = (*breaking, descriptor.full_name)
    fields = [field for field in descriptor.fields if _constrained(field)]
    # The fields not given, then the message's oneof rules, then (the only ones left) the given fields.
    for field in (field for field in fields if field.name not in values):
        broken = _break_field(valid, field, breaking)
        if broken is not None:
            return broken
    for group in _message_oneofs(descriptor):  # required: set none of the fields; else set two
        broken = _clone(valid)
        for name in group.fields:
            broken.ClearField(name)
        try:
            for name in group.fields[:2] if not group.required else ():
                _fill(broken, descriptor.fields_by_name[name], (), force=True)
        except ValueError:
            continue
        if any(v.proto.rule_id == "message.oneof" for v in _violations(broken)):
            return broken
    for field in (field for field in fields if field.name in values):
        broken = _break_field(valid, field, breaking)
        if broken is not None:
            return broken
    raise ValueError(f"{descriptor.full_name} has no field constraint that can be broken")


def _break_field(valid: M, field: Descriptor, breaking: tuple[str, ...]) -> M | None:
    """`valid` with `field` changed so that a rule about it fails, or None if none of the changes tried does."""
    for change in _breakers(valid, field, breaking):
        broken = _clone(valid)
        try:
            change(broken)
        except (ValueError, TypeError):  # out of the field's range, or a closed enum's unknown number
            continue
        if any(_concerns(v, field) for v in _violations(broken)):
            return broken
    return None


def _constrained(field: Descriptor) -> bool:
    """Whether changing `field` alone can break a rule: its own, a nested message's, or its oneof's."""
    if _field_rules(field) is not None or field.containing_oneof is not None:
        return True
    return field.message_type is not None and _has_constraints(field.message_type, set())


# --- building valid messages --------------------------------------------------------------------------


def _example(message_type: type[M], values: dict[str, Any], building: tuple[str, ...]) -> M:
    descriptor = message_type.DESCRIPTOR
    if descriptor.full_name in building:
        chain = " -> ".join((*building, descriptor.full_name))
        raise ValueError(f"cannot build an example of {descriptor.full_name}: it requires itself ({chain})")
    building = (*building, descriptor.full_name)
    message = message_type(**values)
    groups = _groups(descriptor)
    in_group = {name for group in groups for name in group.fields}
    for field in descriptor.fields:
        if field.name not in values and field.name not in in_group:
            _fill(message, field, building)
    for group in groups:
        if not group.required or any(name in set(set_fields(message)) for name in group.fields):
            continue
        problems = []
        for name in group.fields:
            try:
                _fill(message, descriptor.fields_by_name[name], building, force=True)
                break
            except ValueError as error:
                message.ClearField(name)
                problems.append(str(error))
        else:
            raise ValueError(f"{descriptor.full_name}: no member of {group.name} can be set: {'; '.join(problems)}")
    violations = _violations(message)
    if violations:
        raise ValueError(f"example {descriptor.full_name} does not pass its rules: {_describe(violations)}")
    return message


def _fill(message: Message, field: Descriptor, building: tuple[str, ...], *, force: bool = False) -> None:
    """Fills `field` of `message` as `example` does (see the module doc), or whatever the field's kind if
    `force`: with the first candidate that passes the field's rules; ValueError if none passes."""
    rules = _field_rules(field)
    typed = _typed(rules)
    required = force or (rules is not None and rules.required)
    name = field.name
    if field.is_repeated:
        least = (typed.min_pairs if _is_map(field) else typed.min_items) if typed is not None else 0
        if required or least:
            _fill_repeated(message, field, typed, max(1, least), building)
        return
    if field.message_type is not None:
        if required:
            candidates: Iterable[Any] = _message_candidates(field.message_type, rules, building)
            _first_passing(message, field, candidates, lambda c: getattr(message, name).CopyFrom(c))
        return
    optional = not required and (name in _DEFAULT_BEHAVIOUR or field.type == FieldDescriptor.TYPE_BOOL)
    if optional and not _field_violations(message, field):
        return  # unset is valid: leave it so
    try:
        _first_passing(message, field, _scalar_candidates(field, typed), lambda c: setattr(message, name, c))
    except ValueError:
        message.ClearField(name)  # the zero value (or absence) may be what the rules allow
        if required or _field_violations(message, field):
            raise


def _first_passing(message: Message, field: Descriptor, candidates: Iterable[Any], put: Callable[[Any], None]) -> None:
    last: list[Any] = []
    for candidate in candidates:
        try:
            put(candidate)
        except (ValueError, TypeError):  # out of the field's range
            continue
        last = _field_violations(message, field)
        if not last:
            return
    raise ValueError(f"no example value for {field.full_name} satisfies its rules ({_describe(last)})")


def _fill_repeated(
    message: Message, field: Descriptor, typed: Any, count: int, building: tuple[str, ...], *, check: bool = True
) -> None:
    """`count` elements (pairs) that pass the element (key and value) rules, distinct for `unique`; with
    `check`, ValueError unless the field then passes all its rules."""

    # Fetched anew after every ClearField, which detaches the container it replaces.
    def container() -> Any:
        return getattr(message, field.name)

    def elements(element: Descriptor, rules: Any) -> Iterator[Any]:
        if element.message_type is not None:
            return iter(_message_candidates(element.message_type, rules, building))
        return _with_variants(_scalar_candidates(element, _typed(rules)), count)

    def passes(counts: Callable[[Any], bool]) -> bool:
        """No element-level violation of the field that `counts`."""
        return not any(counts(v) for v in _field_violations(message, field) if _element_level(v))

    if _is_map(field):
        entry = field.message_type
        key_rules = typed.keys if typed is not None and typed.HasField("keys") else None
        value_rules = typed.values if typed is not None and typed.HasField("values") else None
        keys = list(elements(entry.fields_by_name["key"], key_rules))
        values = list(elements(entry.fields_by_name["value"], value_rules))

        def put(pairs: list[tuple[Any, Any]]) -> bool:
            message.ClearField(field.name)
            try:
                for key, value in pairs:
                    if entry.fields_by_name["value"].message_type is not None:
                        container()[key].CopyFrom(value)
                    else:
                        container()[key] = value
            except (ValueError, TypeError):  # out of the key's or value's range
                return False
            return True

        # A value that passes with the first key, then keys that pass with that value.
        value = next((v for v in values if put([(keys[0], v)]) and passes(lambda x: not x.proto.for_key)), None)
        chosen_keys: list[Any] = []
        for key in keys if value is not None else ():
            if key not in chosen_keys and put([(key, value)]) and passes(lambda x: x.proto.for_key):
                chosen_keys.append(key)
                if len(chosen_keys) == count:
                    break
        put([(key, value) for key in chosen_keys])
    else:
        items = typed.items if typed is not None and typed.HasField("items") else None
        chosen: list[Any] = []
        for candidate in elements(field, items):
            if candidate in chosen:
                continue
            message.ClearField(field.name)
            try:
                _append(container(), field, [candidate])
            except (ValueError, TypeError):
                continue
            if passes(lambda x: True):
                chosen.append(candidate)
                if len(chosen) == count:
                    break
        message.ClearField(field.name)
        _append(container(), field, chosen)
    violations = _field_violations(message, field) if check else []
    if violations:
        raise ValueError(f"no example elements for {field.full_name} satisfy its rules ({_describe(violations)})")


def _append(container: Any, field: Descriptor, elements: list[Any]) -> None:
    if field.message_type is None:
        container.extend(elements)
    else:
        for element in elements:
            container.add().CopyFrom(element)


def _with_variants(candidates: Iterator[Any], count: int) -> Iterator[Any]:
    """The candidates, then numbered variants of them: distinct elements for a `unique` list of `count`."""
    seen = list(candidates)
    yield from seen
    for index in range(2, count + 2):
        for value in seen:
            if isinstance(value, str):
                yield UUID[:-12] + f"{index:012x}" if value == UUID else f"{value}{index}"
            elif isinstance(value, bool):
                continue
            elif isinstance(value, int | float):
                yield value + index


def _scalar_candidates(field: Descriptor, typed: Any) -> Iterator[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _string_candidates(field.name, typed)
    if kind == FieldDescriptor.TYPE_BYTES:
        return _bytes_candidates(typed)
    if kind == FieldDescriptor.TYPE_BOOL:
        return iter([*_given(typed), False, True])
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return iter([*_given(typed), *(n for n in numbers if n != 0), *(n for n in numbers if n == 0)])
    return _number_candidates(typed, kind in _FLOATS)


def _given(typed: Any) -> list[Any]:
    """The values the rules name: their examples, const, and `in`."""
    if typed is None:
        return []
    found = list(typed.example) if "example" in typed.DESCRIPTOR.fields_by_name else []
    if "const" in typed.DESCRIPTOR.fields_by_name and typed.HasField("const"):
        found.append(typed.const)
    if "in" in typed.DESCRIPTOR.fields_by_name:
        found.extend(getattr(typed, "in"))
    return found


def _string_candidates(name: str, typed: Any) -> Iterator[str]:
    words = set(name.lower().split("_"))
    by_name = [value for keys, value in _BY_NAME if words.intersection(keys)]
    seen: set[str] = set()
    for value in [*_given(typed), *by_name, *_STRINGS]:
        for candidate in (value, _fit(value, typed)):
            if candidate not in seen:
                seen.add(candidate)
                yield candidate


def _fit(value: str, typed: Any) -> str:
    """`value` with the rules' prefix, contains and suffix, padded or cut to their length bounds."""
    if typed is None:
        return value
    prefix, suffix, contains = typed.prefix, typed.suffix, typed.contains
    least = max(typed.min_len, typed.len, typed.min_bytes, typed.len_bytes)
    most = [n for n in (typed.max_len, typed.len, typed.max_bytes, typed.len_bytes) if n]
    core = value.removeprefix(prefix).removesuffix(suffix)
    if contains not in core:
        core += contains
    core = core.ljust(max(least - len(prefix) - len(suffix), 0), "x")
    if most:
        core = core[: max(min(most) - len(prefix) - len(suffix), 0)]
    return str(prefix + core + suffix)


def _bytes_candidates(typed: Any) -> Iterator[bytes]:
    fitted = []
    for base in (b"example", b"\x00"):
        if typed is not None:
            least = max(typed.min_len, typed.len)
            most = min(n for n in (typed.max_len, typed.len, 2**32) if n)
            core = base.removeprefix(typed.prefix).removesuffix(typed.suffix)
            core = (core + typed.contains).ljust(max(least - len(typed.prefix) - len(typed.suffix), 0), b"x")
            fitted.append((typed.prefix + core + typed.suffix)[:most])
    addresses = [bytes([192, 0, 2, 1]), bytes.fromhex("20010db8000000000000000000000001"), bytes(16)]
    return iter([*_given(typed), b"example", *fitted, *addresses])


def _number_candidates(typed: Any, floating: bool) -> Iterator[Any]:
    step = 1
    low = high = None
    if typed is not None:
        if typed.HasField("gte"):
            low = typed.gte
        elif typed.HasField("gt"):
            low = typed.gt + step
        if typed.HasField("lte"):
            high = typed.lte
        elif typed.HasField("lt"):
            high = typed.lt - step
    around: list[Any] = []
    for bound in (low, high):
        if bound is not None:
            around += [bound, bound + step, bound - step]
    if low is not None and high is not None:
        around.append((low + high) / 2 if floating else (low + high) // 2)
    if floating and typed is not None:  # exclusive bounds closer than 1 apart
        for bound in ("gt", "lt"):
            if typed.HasField(bound):
                around += [getattr(typed, bound) + 0.5, getattr(typed, bound) - 0.5]
    numbers = [*_given(typed), *_NUMBERS, *around]
    return iter(float(n) for n in numbers) if floating else iter(int(n) for n in numbers)


def _message_candidates(descriptor: Descriptor, rules: Any, building: tuple[str, ...]) -> Iterator[Message]:
    cls: Any = message_factory.GetMessageClass(descriptor)
    typed = _typed(rules)
    full_name = descriptor.full_name
    if full_name == "google.protobuf.Timestamp":
        for nanos in _time_candidates(typed, time.time_ns()):
            stamp = cls()
            stamp.FromNanoseconds(nanos)
            yield stamp
    elif full_name == "google.protobuf.Duration":
        for nanos in _time_candidates(typed, None):
            duration = cls()
            duration.FromNanoseconds(nanos)
            yield duration
    elif full_name in _WRAPPERS:  # the field's rules are the wrapped value's
        for value in _scalar_candidates(descriptor.fields_by_name["value"], typed):
            yield cls(value=value)
    elif full_name == "google.protobuf.FieldMask":
        for paths in ([], *([p] for p in (getattr(typed, "in") if typed is not None else ()))):
            yield cls(paths=paths)
        if typed is not None and typed.HasField("const"):
            yield cls(paths=typed.const.paths)
    elif full_name == "google.protobuf.Any" and typed is not None and getattr(typed, "in"):
        yield cls(type_url=getattr(typed, "in")[0])
    else:
        yield _example(cls, {}, building)


def _time_candidates(typed: Any, now: int | None) -> Iterator[int]:
    """Nanoseconds for a Timestamp (`now` given) or a Duration: from the rules, then plausible ones."""
    if typed is not None:
        yield from (t.ToNanoseconds() for t in _given(typed))
    if now is None:
        yield from (_SECOND, 60 * _SECOND, 3600 * _SECOND)
    else:  # a fixed time, else around now (for lt_now, gt_now, within)
        yield from (_JAN_2024, now - 60 * _SECOND, now + 600 * _SECOND, now + 60 * _SECOND)
    if typed is not None:
        for bound, offset in (("gt", _SECOND), ("gte", 0), ("lt", -_SECOND), ("lte", 0)):
            if typed.HasField(bound):
                yield getattr(typed, bound).ToNanoseconds() + offset
    yield from (1, 0)


def _breakers(valid: Message, field: Descriptor, breaking: tuple[str, ...]) -> Iterator[Callable[[Message], None]]:
    """Changes to `field` that may break its rules, most telling first; `invalid` keeps the first that does."""
    name = field.name
    typed = _typed(_field_rules(field))
    if field.is_repeated:
        yield partial(_clear, name)  # min_items, min_pairs, required
        if _is_map(field):
            key_field, value_field = (field.message_type.fields_by_name[n] for n in ("key", "value"))
            key_rules = typed.keys if typed is not None and typed.HasField("keys") else None
            value_rules = typed.values if typed is not None and typed.HasField("values") else None
            good_key = next(_scalar_candidates(key_field, _typed(key_rules)))
            if value_field.message_type is None:
                good_value = next(_scalar_candidates(value_field, _typed(value_rules)))
                bad_values: Iterable[Any] = _bad_scalars(value_field, _typed(value_rules))
            else:
                try:
                    good_value = next(_message_candidates(value_field.message_type, value_rules, ()), None)
                except ValueError:
                    good_value = None  # no valid value to pair a bad key with: only bad values are tried
                bad_values = _bad_messages(value_field.message_type, _typed(value_rules), breaking)
            for bad in _bad_scalars(key_field, _typed(key_rules)):
                yield partial(_put, name, bad, good_value)
            for bad in bad_values:
                yield partial(_put, name, good_key, bad)
            return
        if typed is not None and typed.max_items:
            yield partial(_fill_valid, field, typed, typed.max_items + 1, repeat=False)
        yield partial(_fill_valid, field, typed, 1, repeat=True)  # a duplicate, for unique
        if field.message_type is None:
            items = _typed(typed.items) if typed is not None and typed.HasField("items") else None
            for bad in _bad_scalars(field, items):
                yield partial(_extend, field, [bad])
        elif field.message_type.full_name not in breaking and has_constraints(
            message_factory.GetMessageClass(field.message_type)
        ):
            try:
                yield partial(
                    _extend, field, [_invalid(message_factory.GetMessageClass(field.message_type), {}, breaking)]
                )
            except ValueError:
                return
        return
    if field.message_type is not None:
        if valid.HasField(name):
            yield partial(_clear, name)  # required
        for bad_message in _bad_messages(field.message_type, typed, breaking):
            yield partial(_copy_into, name, bad_message)
        return
    if field.containing_oneof is not None and valid.HasField(name):
        yield partial(_clear, name)  # a required oneof
    for bad in _bad_scalars(field, typed):
        yield partial(_set, name, bad)


# The changes `_breakers` yields, bound to all but the message.
def _clear(name: str, message: Message) -> None:
    message.ClearField(name)


def _set(name: str, value: Any, message: Message) -> None:
    setattr(message, name, value)


def _copy_into(name: str, value: Message, message: Message) -> None:
    getattr(message, name).CopyFrom(value)


def _put(name: str, key: Any, value: Any, message: Message) -> None:
    if isinstance(value, Message):
        getattr(message, name)[key].CopyFrom(value)
    else:
        getattr(message, name)[key] = value


def _extend(field: Descriptor, elements: list[Any], message: Message) -> None:
    _append(getattr(message, field.name), field, elements)


def _fill_valid(field: Descriptor, typed: Any, count: int, message: Message, *, repeat: bool) -> None:
    """`count` valid elements (then the first once more, with `repeat`) in place of the field's."""
    _fill_repeated(message, field, typed, count, (), check=False)
    container = getattr(message, field.name)
    if repeat and len(container):
        _append(container, field, [container[0]])


def _bad_scalars(field: Descriptor, typed: Any) -> list[Any]:
    kind = field.type
    given = _given(typed)
    excluded = list(getattr(typed, "not_in", ())) if typed is not None else []
    if kind == FieldDescriptor.TYPE_STRING:
        lengths = _lengths(typed)
        return [
            "",
            *excluded,
            *("x" * n for n in lengths),
            "not-a-uuid",
            "no-at-sign",
            "not valid!",
            *(value + "x" for value in given),
            "x" * 10_001,
        ]
    if kind == FieldDescriptor.TYPE_BYTES:
        return [b"", *excluded, *(b"x" * n for n in _lengths(typed)), b"\xff\xfe\xfd", *(v + b"x" for v in given)]
    if kind == FieldDescriptor.TYPE_BOOL:
        return [not value for value in given] + [True, False]
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return [0, *excluded, max(numbers) + 1, *numbers]
    floating = kind in _FLOATS
    bounds: list[Any] = []
    if typed is not None:
        for bound, offset in (("gt", 0), ("gte", -1), ("lt", 0), ("lte", 1), ("const", 1)):
            if typed.HasField(bound):
                bounds.append(getattr(typed, bound) + offset)
        bounds += [max(given) + 1] if given else []
    if floating:
        return [*bounds, *excluded, math.nan, math.inf, -math.inf, 0.0, -1.0]
    low, high = _INT_RANGES[kind]
    return [int(b) for b in (*bounds, *excluded, 0, -1, low, high)]


def _lengths(typed: Any) -> list[int]:
    """Lengths just outside the bounds of string or bytes rules (only strings have the *_bytes ones)."""
    if typed is None:
        return []
    lengths = []
    for most in ("max_len", "len", "max_bytes", "len_bytes"):
        if getattr(typed, most, 0):
            lengths.append(getattr(typed, most) + 1)
    for least in ("min_len", "len", "min_bytes", "len_bytes"):
        if getattr(typed, least, 0) > 1:
            lengths.append(getattr(typed, least) - 1)
    return lengths


def _bad_messages(descriptor: Descriptor, typed: Any, breaking: tuple[str, ...]) -> Iterator[Message]:
    cls: Any = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        for nanos in (0, -_SECOND, 253_402_300_799 * _SECOND, time.time_ns() + 3600 * _SECOND, 1):
            value = cls()
            value.FromNanoseconds(nanos)
            yield value
        if typed is not None and typed.HasField("const"):
            value = cls()
            value.FromNanoseconds(typed.const.ToNanoseconds() + 1)
            yield value
    elif descriptor.full_name in _WRAPPERS:
        for bad in _bad_scalars(descriptor.fields_by_name["value"], typed):
            try:
                yield cls(value=bad)
            except (ValueError, TypeError):
                continue
    elif descriptor.full_name not in breaking and has_constraints(cls):  # not again for a recursive type
        try:
            yield _invalid(cls, {}, breaking)
        except ValueError:
            return


# --- rules and violations -----------------------------------------------------------------------------


@cache
def _extension(name: str) -> Any:
    # Generated code imports protokit-runtime's buf.validate.validate_pb2 (what registers buf.validate's
    # extensions in the default pool); a message type built another way may not have.
    importlib.import_module("buf.validate.validate_pb2")
    return descriptor_pool.Default().FindExtensionByName(f"buf.validate.{name}")


def _options(descriptor: Descriptor, extension: str) -> Any:
    options = descriptor.GetOptions()
    handle = _extension(extension)
    return options.Extensions[handle] if options.HasExtension(handle) else None


def _field_rules(field: Descriptor) -> Any:
    """The field's buf.validate.FieldRules, None without any (or when they are always ignored)."""
    rules = _options(field, "field")
    return None if rules is None or rules.ignore == _IGNORE_ALWAYS else rules


def _typed(rules: Any) -> Any:
    """The type-specific part of FieldRules (StringRules, Int32Rules...), or None."""
    kind = rules.WhichOneof("type") if rules is not None else None
    return getattr(rules, kind) if kind else None


class _Group:
    """Fields of which at most one may be set (a oneof, or a message `oneof` rule), maybe exactly one."""

    def __init__(self, name: str, fields: list[str], required: bool) -> None:
        self.name, self.fields, self.required = name, fields, required


def _groups(descriptor: Descriptor) -> list[_Group]:
    groups = _message_oneofs(descriptor)
    synthetic = _synthetic_oneofs(descriptor)
    for oneof in descriptor.oneofs:
        if oneof.name not in synthetic:
            rules = _options(oneof, "oneof")
            groups.append(_Group(f"oneof {oneof.name}", [f.name for f in oneof.fields], bool(rules and rules.required)))
    return groups


def _message_oneofs(descriptor: Descriptor) -> list[_Group]:
    rules = _options(descriptor, "message")
    if rules is None:
        return []
    return [_Group(f"the oneof rule on {', '.join(r.fields)}", list(r.fields), r.required) for r in rules.oneof]


def _synthetic_oneofs(descriptor: Descriptor) -> set[str]:
    """The oneofs proto3 `optional` fields sit in: no choice to make, each field is a plain one."""
    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)
    return {proto.oneof_decl[f.oneof_index].name for f in proto.field if f.proto3_optional}


def _has_constraints(descriptor: Descriptor, seen: set[str]) -> bool:
    if descriptor.full_name in seen:
        return False  # being checked further up
    seen.add(descriptor.full_name)
    message_rules = _options(descriptor, "message")
    if message_rules is not None and message_rules.ListFields():
        return True
    if any(_options(oneof, "oneof") is not None and _options(oneof, "oneof").required for oneof in descriptor.oneofs):
        return True
    for field in descriptor.fields:
        rules = _options(field, "field")
        if rules is not None and rules.ignore == _IGNORE_ALWAYS:
            continue  # not even its message's rules are checked
        if rules is not None and any(f.name != "ignore" for f, _ in rules.ListFields()):
            return True
        if field.message_type is not None and _has_constraints(field.message_type, seen):
            return True
    return False


def _violations(message: Message) -> list[Any]:
    global _validator
    if _validator is None:
        # Imported here: generated services need protovalidate anyway, but importing this module should not.
        import protovalidate

        _validator = protovalidate.Validator()
    return list(_validator.collect_violations(message))


def _path(violation: Any) -> list[Any]:
    path = violation.proto.field
    return list(path.elements) if path is not None else []


def _concerns(violation: Any, field: Descriptor) -> bool:
    """Whether `violation` is about `field` (or the oneof it is in)."""
    path = _path(violation)
    if not path:
        return False
    oneof = field.containing_oneof
    return path[0].field_name in (field.name, oneof.name if oneof is not None else None)


def _field_violations(message: Message, field: Descriptor) -> list[Any]:
    return [v for v in _violations(message) if _path(v) and _path(v)[0].field_name == field.name]


def _element_level(violation: Any) -> bool:
    """Whether a violation is about one element (or key) of a repeated or map field."""
    path = _path(violation)
    return bool(path) and path[0].subscript is not None


def _describe(violations: list[Any]) -> str:
    parts = []
    for violation in violations:
        path = ".".join(element.field_name for element in _path(violation))
        parts.append(f"{path}: {violation.proto.message}" if path else violation.proto.message)
    return "; ".join(parts) or "no value to try"
