"""Which imports buf counts as unused: the facts behind its IMPORT_USED rule.

buf's compiler marks an import used when a symbol reference of the file resolves to a symbol defined
in it: field, extension and RPC types, extendees, and the extension names of custom options. A
symbol from a file imported only transitively marks the first direct import (public ones first)
that brings it in. Public imports always count as used. protoc's own unused-import warnings differ
(they also count the options' google.protobuf.*Options types, enum values and types inside option
values, and every import a symbol is visible through), so protokit computes buf's answer from the
descriptors it already has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.message import Message

_OPTION_EXTENDEE = ".google.protobuf.{}"


def unused_dependencies(files: Mapping[str, FileDescriptorProto], names: Iterable[str]) -> dict[str, list[int]]:
    """For each of `names` (files of the image `files`) with unused imports: the indexes into its
    `dependency` list that buf reports as unused."""
    symbols: _SymbolIndex | None = None
    unused = {}
    for name in names:
        file = files[name]
        public = set(file.public_dependency)
        remaining = {i for i in range(len(file.dependency)) if i not in public}
        if not remaining:
            continue
        symbols = symbols or _SymbolIndex(files)
        seen = {name}
        for defined in _referenced_files(file, symbols):
            if defined not in seen:
                seen.add(defined)
                remaining.discard(_cause(files, file, defined))
                if not remaining:
                    break  # the usual case, found long before the end of the file
        if remaining:
            unused[name] = sorted(remaining)
    return unused


class _SymbolIndex:
    """Where the types and extensions of the image are defined. Types are indexed by their top-level
    name (a nested type lives where its outermost message does), extensions on first use: walking
    every nested declaration of a large image costs more than all the lookups."""

    def __init__(self, files: Mapping[str, FileDescriptorProto]) -> None:
        self._files = files
        self._top: dict[str, str] = {}
        self._extensions: dict[tuple[str, int], str] | None = None
        for file in files.values():
            prefix = f".{file.package}." if file.package else "."
            for name in (*(m.name for m in file.message_type), *(e.name for e in file.enum_type)):
                self._top[prefix + name] = file.name

    def type_file(self, reference: str) -> str | None:
        """The file defining a fully-qualified type name (".pkg.Outer.Inner")."""
        name = reference
        while name:
            if name in self._top:
                return self._top[name]
            name = name.rpartition(".")[0]
        return None

    def extension_file(self, extendee: str, number: int) -> str | None:
        if self._extensions is None:
            self._extensions = {}
            for file in self._files.values():
                for ext in _all_extensions(file):
                    self._extensions[(ext.extendee, ext.number)] = file.name
        return self._extensions.get((extendee, number))


def _messages(file: FileDescriptorProto) -> Iterator[descriptor_pb2.DescriptorProto]:
    """Every message of the file, nested ones included."""
    stack = list(file.message_type)
    while stack:
        message = stack.pop()
        stack.extend(message.nested_type)
        yield message


def _all_extensions(file: FileDescriptorProto) -> Iterator[descriptor_pb2.FieldDescriptorProto]:
    yield from file.extension
    for message in _messages(file):
        yield from message.extension


def _cause(files: Mapping[str, FileDescriptorProto], file: FileDescriptorProto, defined: str) -> int:
    """The index of the direct import credited with `defined` (-1: none)."""
    deps = list(file.dependency)
    if defined in deps:
        return deps.index(defined)
    public = set(file.public_dependency)
    for i in sorted(range(len(deps)), key=lambda i: i not in public):  # public imports first, as buf
        if defined in _closure(files, deps[i]):
            return i
    return -1


def _closure(files: Mapping[str, FileDescriptorProto], name: str) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen or current not in files:
            continue
        seen.add(current)
        stack.extend(files[current].dependency)
    return seen


def _referenced_files(file: FileDescriptorProto, symbols: _SymbolIndex) -> Iterator[str]:
    """The files defining what `file` refers to, lazily: types first, then custom options."""
    for reference in _type_references(file):
        if reference and (defined := symbols.type_file(reference)) is not None:
            yield defined
    for options_type, number in _custom_options(file):
        if (defined := symbols.extension_file(_OPTION_EXTENDEE.format(options_type), number)) is not None:
            yield defined


def _type_references(file: FileDescriptorProto) -> Iterator[str]:
    """Type names the file refers to, in declaration order (imports are mostly used early on)."""
    queue = list(file.message_type)
    for message in queue:  # grows as it goes: nested messages come after the top-level ones
        queue.extend(message.nested_type)
        for field in message.field:
            if field.type_name:
                yield field.type_name
        for ext in message.extension:
            yield from (ext.extendee, ext.type_name)
    for ext in file.extension:
        yield from (ext.extendee, ext.type_name)
    for service in file.service:
        for method in service.method:
            yield from (method.input_type, method.output_type)


def _options(file: FileDescriptorProto) -> Iterator[Message]:
    """Every options message the file sets."""
    yield file.options
    for enum in _enums(file):
        yield enum.options
        yield from (value.options for value in enum.value)
    for service in file.service:
        yield service.options
        yield from (method.options for method in service.method)
    yield from (ext.options for ext in file.extension)
    for message in _messages(file):
        yield message.options
        yield from (field.options for field in (*message.field, *message.extension))
        yield from (oneof.options for oneof in message.oneof_decl)
        yield from (r.options for r in message.extension_range)


def _enums(file: FileDescriptorProto) -> Iterator[descriptor_pb2.EnumDescriptorProto]:
    yield from file.enum_type
    for message in _messages(file):
        yield from message.enum_type


def _custom_options(file: FileDescriptorProto) -> Iterator[tuple[str, int]]:
    """(options type, field number) of every custom option set, and of custom features."""
    for options in _options(file):
        if options.ByteSize() == 0:
            continue
        yield from _extension_numbers(options)
        for field, value in options.ListFields():
            if field.name == "features":  # custom features are extensions of FeatureSet
                yield from _extension_numbers(value)


def _extension_numbers(message: Message) -> Iterator[tuple[str, int]]:
    """Field numbers set on `message` that are not its own fields: custom options (extensions), found in
    the wire bytes, whether or not this process has their extensions registered."""
    own = {f.number for f in message.DESCRIPTOR.fields}
    for number in _wire_field_numbers(message.SerializeToString()):
        if number not in own:
            yield message.DESCRIPTOR.name, number


def _wire_field_numbers(data: bytes) -> set[int]:
    numbers, i = set(), 0
    while i < len(data):
        key, i = _varint(data, i)
        numbers.add(key >> 3)
        wire = key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            length, i = _varint(data, i)
            i += length
        elif wire == 5:
            i += 4
        else:  # groups: never in options protoc writes; stop rather than misread
            break
    return numbers


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i
