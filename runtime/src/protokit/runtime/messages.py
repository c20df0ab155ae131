"""Field operations the generated standard methods (AIP-131..135) call on request and resource messages.

    copy_fields(request, user, ["username", "email", "profile"])     # Create: request fields into the resource
    apply_mask(request.user, stored, request.update_mask.paths,       # Update with a mask (AIP-134)
               immutable=("id", "create_time", "update_time"))
    copy_fields(request.user, stored, UPDATABLE)                      # Update without one: the fields it sets
    name = resource_name("books", parent="publishers/1")              # "publishers/1/books/<uuid4>" (AIP-122)
    where = compile_filter(request.filter, pb.User)                   # List's filter (AIP-160 subset)

What a client got wrong (a mask path naming no field or an immutable one, a malformed filter, an id with
"/") raises `InvalidArgument`, which reaches the client as INVALID_ARGUMENT with a message naming the problem.
What the calling code got wrong (a field name missing from a message, fields of different types) raises
ValueError or TypeError.

Filters (`compile_filter`): `field OP value` with OP one of `= != < <= > >= :`, where field may be dotted
into singular message fields; combined with AND, OR, NOT, a `-` prefix (NOT), parentheses, and juxtaposition
(AND). As in AIP-160, OR binds tighter than AND: `a=1 b=2 OR c=3` is `a=1 AND (b=2 OR c=3)`. Values are
"double" or 'single' quoted strings, bare words (strings too), integers, floats, true/false, enum value names
and RFC 3339 times (quoted, as they hold ":") for google.protobuf.Timestamp fields. Ordering applies to
numbers, strings (by code point) and times; bools and enums take = != and `:` only. `:` means "has": on a
repeated field, contains the value; on a map, has the key; on any other field, equals the value; and
`field:*` is true when the field is set (present, non-empty, or non-zero). Not supported: wildcards inside
strings, functions, bytes fields, comparing whole messages. Unset message fields read as empty messages.
Parentheses nest at most 50 deep. Error positions count characters from 1.
"""

from __future__ import annotations

import operator
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, NamedTuple, NoReturn, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from .errors import InvalidArgument

__all__ = ["apply_mask", "compile_filter", "copy_fields", "resource_name", "set_fields"]

M = TypeVar("M", bound=Message)
# A FieldDescriptor: the stubs type descriptors as a union of the Python and upb classes, whose attributes
# (message_type, enum_type...) are all Optional; Any keeps the code readable.
Field = Any

_TIMESTAMP = "google.protobuf.Timestamp"


# --- copying fields -----------------------------------------------------------------------------------


def copy_fields(source: Message, target: Message, names: Iterable[str], *, only_set: bool = True) -> None:
    """For each name, `target`'s field of that name becomes `source`'s field of the same name: messages are
    copied, repeated and map fields replaced (not appended to). With `only_set`, fields `source` does not set
    are skipped (not present, for fields with presence; empty, for repeated and map fields; zero, for other
    scalars); without it they are cleared in `target`. Every name is checked before anything is copied."""
    fields = [_field_pair(source.DESCRIPTOR, target.DESCRIPTOR, name)[1] for name in names]
    present = _set_names(source) if only_set else None
    for field in fields:
        if present is None or field.name in present:
            _copy_field(source, target, field)


def set_fields(message: Message) -> list[str]:
    """The names of the top-level fields `message` sets (its `ListFields()`), in field-number order: the
    fields a presence-style update (no update_mask) changes."""
    return [field.name for field, _ in message.ListFields() if not field.is_extension]


def apply_mask(source: Message, target: Message, paths: Sequence[str], *, immutable: Collection[str] = ()) -> None:
    """AIP-134 update with an update_mask: for each path, `target`'s field becomes `source`'s, cleared when
    `source` does not set it. A path is a field name, dotted into singular message fields ("address.city");
    repeated and map fields are replaced whole. A single "*" means every field both messages have, except the
    immutable ones (a full replacement). A path that is malformed, names no field, goes through a repeated,
    map or scalar field, or names (or lies inside) an `immutable` field is InvalidArgument naming the path;
    all paths are checked before `target` changes. An immutable field inside a replaced field (immutable
    "metadata.create_time", path "metadata") keeps `target`'s value. No paths: nothing changes."""
    for entry in immutable:
        if not all(entry.split(".")) or _walk(target.DESCRIPTOR, target.DESCRIPTOR, entry) is not None:
            raise ValueError(f"immutable field {entry!r} is not a field path of {target.DESCRIPTOR.full_name}")
    if "*" in paths:
        if len(paths) != 1:
            raise InvalidArgument('update_mask: "*" must be the only path')
        source_names = source.DESCRIPTOR.fields_by_name
        resolved = [name for name in target.DESCRIPTOR.fields_by_name if name in source_names and name not in immutable]
        for name in resolved:
            _field_pair(source.DESCRIPTOR, target.DESCRIPTOR, name)  # same shape in both, else TypeError
    else:
        resolved = [_mask_path(source, target, path, immutable) for path in paths]
    kept = [entry for entry in immutable if any(entry.startswith(path + ".") for path in resolved)]
    saved = _clone(target) if kept else None
    for path in resolved:
        _copy_path(source, target, path)
    if saved is not None:
        for entry in kept:
            _copy_path(saved, target, entry)


def _mask_path(source: Message, target: Message, path: str, immutable: Collection[str]) -> str:
    if not path or any(not part for part in path.split(".")):
        raise InvalidArgument(f"update_mask: invalid path {path!r}")
    for entry in immutable:
        if path == entry or path.startswith(entry + "."):
            raise InvalidArgument(f"update_mask: {path!r} cannot be changed ({entry!r} is immutable)")
    problem = _walk(source.DESCRIPTOR, target.DESCRIPTOR, path)
    if problem is not None:
        raise InvalidArgument(f"update_mask: path {path!r}: {problem}")
    return path


def _walk(source: Any, target: Any, path: str) -> str | None:
    """What keeps the (well-formed) `path` from naming a field of both descriptors through singular message
    fields, or None. A field of different types in the two is the calling code's mistake: TypeError."""
    parts = path.split(".")
    for index, name in enumerate(parts):
        for descriptor in (source, target):
            if name not in descriptor.fields_by_name:
                return f"{descriptor.full_name} has no field {name!r}"
        _, field = _field_pair(source, target, name)
        if index < len(parts) - 1:
            if field.message_type is None or field.is_repeated:
                kind = "a map" if _is_map(field) else "repeated" if field.is_repeated else "not a message"
                return f"{name!r} is {kind}: a path cannot go inside it"
            source, target = source.fields_by_name[name].message_type, field.message_type
    return None


def _copy_path(source: Message, target: Message, path: str) -> None:
    *parents, leaf = path.split(".")
    from_: Message | None = source
    for name in parents:
        from_ = getattr(from_, name) if from_ is not None and from_.HasField(name) else None
    if from_ is None or leaf not in _set_names(from_):
        # Clearing: only where the target has the parents; a missing parent already reads as cleared.
        for name in parents:
            if not target.HasField(name):
                return
            target = getattr(target, name)
        target.ClearField(leaf)
        return
    for name in parents:
        target = getattr(target, name)
    _copy_field(from_, target, target.DESCRIPTOR.fields_by_name[leaf])


def _copy_field(source: Message, target: Message, field: Field) -> None:
    """`target`'s `field` becomes `source`'s field of that name (checked to be of the same shape)."""
    name = field.name
    value = getattr(source, name)
    if field.is_repeated:
        target.ClearField(name)
        destination = getattr(target, name)
        if not _is_map(field):
            destination.extend(value)  # copies messages
        elif field.message_type.fields_by_name["value"].message_type is not None:
            for key, item in value.items():
                destination[key].CopyFrom(item)
        else:
            destination.update(value)
    elif field.has_presence and not source.HasField(name):
        target.ClearField(name)
    elif field.message_type is not None:
        getattr(target, name).CopyFrom(value)
    else:
        setattr(target, name, value)


def _field_pair(source: Any, target: Any, name: str) -> tuple[Field, Field]:
    pair = source.fields_by_name.get(name), target.fields_by_name.get(name)
    for descriptor, field in zip((source, target), pair, strict=True):
        if field is None:
            raise ValueError(f"{descriptor.full_name} has no field {name!r}")
    from_, to = pair
    if _shape(from_) != _shape(to):
        raise TypeError(f"{source.full_name}.{name} and {target.full_name}.{name} are of different types")
    return from_, to


def _shape(field: Field) -> tuple[object, ...]:
    named = field.message_type or field.enum_type
    if _is_map(field):
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return ("map", _shape(key), _shape(value))
    return (field.cpp_type, field.is_repeated, named.full_name if named is not None else None)


def _is_map(field: Field) -> bool:
    return field.message_type is not None and field.is_repeated and field.message_type.GetOptions().map_entry


def _set_names(message: Message) -> set[str]:
    return {field.name for field, _ in message.ListFields()}


def _clone(message: M) -> M:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


# --- resource names -----------------------------------------------------------------------------------


def resource_name(collection: str, parent: str = "", id: str = "") -> str:
    """The AIP-122 name `{parent}/{collection}/{id}`, or `{collection}/{id}` without a parent. An empty id
    becomes a new `str(uuid.uuid4())`; an id holding "/" is InvalidArgument (it would name another resource)."""
    if "/" in id:
        raise InvalidArgument(f"invalid id {id!r}: an id must not contain '/'")
    name = f"{collection}/{id or uuid.uuid4()}"
    return f"{parent}/{name}" if parent else name


# --- filters (AIP-160 subset) -------------------------------------------------------------------------

Predicate = Callable[[Message], bool]


class _Token(NamedTuple):
    kind: str  # "(", ")", "cmp", "string", "word", "AND", "OR", "NOT", "end"
    text: str  # a string's value unquoted and unescaped; otherwise the text as written
    position: int  # 1-based


_TOKENS = re.compile(
    r"""(?P<space>\s+)|(?P<paren>[()])|(?P<cmp><=|>=|!=|=|<|>|:)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<word>[^\s()<>=!:"']+)""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_MAX_DEPTH = 50
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    ":": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_INTEGERS = {
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
}
_FLOATS = {FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE}


def compile_filter(expression: str, message_type: type[M]) -> Callable[[M], bool]:
    """A predicate for the AIP-160 filter `expression` on `message_type` messages (see the module doc for
    the subset); an empty or blank expression matches everything. An unknown field, a value of the wrong type
    for its field, or a syntax error is InvalidArgument naming the problem and its position. The predicate is
    pure: no I/O, safe to call from any thread."""
    tokens = _tokenize(expression)
    if tokens[0].kind == "end":
        return lambda message: True
    parser = _Parser(tokens, message_type.DESCRIPTOR)
    predicate = parser.expression()
    if parser.peek.kind != "end":
        parser.fail(f"unexpected {parser.peek.text!r}", parser.peek)
    return predicate


def _fail(problem: str, position: int) -> InvalidArgument:
    return InvalidArgument(f"invalid filter at position {position}: {problem}")


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(expression):
        match = _TOKENS.match(expression, index)
        if match is None:
            char = expression[index]
            problem = "unterminated string" if char in "\"'" else f"unexpected character {char!r}"
            raise _fail(problem, index + 1)
        kind, text = match.lastgroup or "", match.group()
        if kind == "string":
            text = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), text[1:-1], flags=re.DOTALL)
        elif kind == "paren" or (kind == "word" and text in ("AND", "OR", "NOT")):
            kind = text
        if kind != "space":
            tokens.append(_Token(kind, text, index + 1))
        index = match.end()
    tokens.append(_Token("end", "end of filter", len(expression) + 1))
    return tokens


class _Parser:
    """Recursive descent over AIP-160's grammar: expression = sequence {AND sequence}; sequence = factor
    {factor}; factor = term {OR term}; term = [NOT | -] simple; simple = ( expression ) | field OP value."""

    def __init__(self, tokens: list[_Token], descriptor: Any) -> None:
        self.tokens = tokens
        self.index = 0
        self.descriptor = descriptor
        self.depth = 0  # of parentheses

    @property
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, problem: str, token: _Token) -> NoReturn:
        raise _fail(problem, token.position)

    def expression(self) -> Predicate:
        parts = [self.sequence()]
        while self.peek.kind == "AND":
            self.take()
            parts.append(self.sequence())
        return _all(parts)

    def sequence(self) -> Predicate:
        parts = [self.factor()]
        while self.peek.kind not in ("end", ")", "AND"):
            parts.append(self.factor())
        return _all(parts)

    def factor(self) -> Predicate:
        parts = [self.term()]
        while self.peek.kind == "OR":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else lambda m: any(p(m) for p in parts)

    def term(self) -> Predicate:
        token = self.peek
        negate = token.kind == "NOT" or (token.kind == "word" and token.text.startswith("-"))
        if token.kind == "NOT" or (negate and token.text == "-"):
            self.take()
        elif negate:  # "-field...": the rest of the word is the field
            self.tokens[self.index] = _Token("word", token.text[1:], token.position + 1)
        simple = self.simple()
        return (lambda m: not simple(m)) if negate else simple

    def simple(self) -> Predicate:
        token = self.take()
        if token.kind == "(":
            self.depth += 1
            if self.depth > _MAX_DEPTH:  # a client's input must not exhaust the interpreter's stack
                self.fail(f"parentheses nested deeper than {_MAX_DEPTH}", token)
            inner = self.expression()
            self.depth -= 1
            if self.peek.kind != ")":
                self.fail(f"expected ')' to close the '(' at position {token.position}", self.peek)
            self.take()
            return inner
        if token.kind != "word":
            self.fail(f"expected a field name, got {token.text!r}", token)
        path = self.field_path(token)
        comparator = self.take()
        if comparator.kind != "cmp":
            self.fail(f"expected a comparator (= != < <= > >= :) after {token.text!r}", comparator)
        value = self.take()
        if value.kind not in ("string", "word"):
            self.fail(f"expected a value after {comparator.text!r}", value)
        return _restriction(token.text, path, comparator, value)

    def field_path(self, token: _Token) -> list[Field]:
        descriptor = self.descriptor
        path: list[Field] = []
        offset = 0
        for name in token.text.split("."):
            if descriptor is None:  # the previous name is not a singular message field
                problem = f"{path[-1].name!r} is not a message field, so it has no field {name!r}"
                raise _fail(f"invalid field {token.text!r}: {problem}", token.position + offset)
            field = descriptor.fields_by_name.get(name)
            if field is None:
                problem = f"unknown field {token.text!r}"
                if path:
                    problem += f" ({descriptor.full_name} has no field {name!r})"
                raise _fail(problem, token.position + offset)
            path.append(field)
            singular_message = field.message_type is not None and not field.is_repeated
            descriptor = field.message_type if singular_message else None
            offset += len(name) + 1
        return path


def _all(parts: list[Predicate]) -> Predicate:
    return parts[0] if len(parts) == 1 else lambda m: all(p(m) for p in parts)


def _restriction(name: str, path: list[Field], comparator: _Token, value: _Token) -> Predicate:
    *parents, leaf = path
    op = comparator.text

    def parent(message: Message) -> Message | None:
        for field in parents:
            if not message.HasField(field.name):
                return None
            message = getattr(message, field.name)
        return message

    def read(message: Message) -> Any:
        for field in path:
            message = getattr(message, field.name)  # unset messages read as empty ones
        return message

    if op == ":" and value.kind == "word" and value.text == "*":

        def present(message: Message) -> bool:
            holder = parent(message)
            return holder is not None and leaf.name in _set_names(holder)

        return present
    if leaf.is_repeated:
        if op != ":":
            raise _fail(f"field {name!r} is {'a map' if _is_map(leaf) else 'repeated'}: use ':'", comparator.position)
        if _is_map(leaf):
            key = _literal(name, leaf.message_type.fields_by_name["key"], value)
            return lambda m: key in read(m)
        element, convert = _literal(name, leaf, value), _reader(leaf)
        return lambda m: any(convert(item) == element for item in read(m))
    wanted, convert = _literal(name, leaf, value), _reader(leaf)
    ordered = leaf.cpp_type not in (FieldDescriptor.CPPTYPE_BOOL, FieldDescriptor.CPPTYPE_ENUM)
    if not ordered and op not in ("=", "!=", ":"):
        raise _fail(f"{op!r} does not apply to field {name!r} (use = or !=)", comparator.position)
    compare = _COMPARE[op]
    return lambda m: bool(compare(convert(read(m)), wanted))


def _reader(field: Field) -> Callable[[Any], Any]:
    if field.message_type is not None:  # a Timestamp, as _literal checked
        return lambda stamp: stamp.ToNanoseconds()
    return lambda value: value


def _literal(name: str, field: Field, token: _Token) -> Any:
    """`token` as a value of `field`'s type; InvalidArgument if it is not one."""
    text, word = token.text, token.kind == "word"
    cpp = field.cpp_type
    expected = ""
    if field.message_type is not None:
        if field.message_type.full_name != _TIMESTAMP:
            raise _fail(f"field {name!r} is a message: compare one of its fields", token.position)
        stamp = Timestamp()
        try:
            stamp.FromJsonString(text)
            return stamp.ToNanoseconds()
        except ValueError:
            expected = 'an RFC 3339 time in quotes, like "2024-01-31T12:00:00Z"'
    elif cpp == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            raise _fail(f"field {name!r} is bytes, which filters do not support", token.position)
        return text
    elif cpp == FieldDescriptor.CPPTYPE_BOOL:
        if word and text in ("true", "false"):
            return text == "true"
        expected = "true or false"
    elif cpp in _INTEGERS:
        if word and _INTEGER.fullmatch(text):
            return int(text)
        expected = "an integer"
    elif cpp in _FLOATS:
        if word and _FLOAT.fullmatch(text):
            return float(text)
        expected = "a number"
    elif cpp == FieldDescriptor.CPPTYPE_ENUM:
        value = field.enum_type.values_by_name.get(text)
        if value is not None:
            return value.number
        names = ", ".join(v.name for v in field.enum_type.values)
        expected = f"one of {names}"
    shown = repr(text) if word else f"the string {text!r}"
    raise _fail(f"field {name!r} expects {expected}, got {shown}", token.position)
