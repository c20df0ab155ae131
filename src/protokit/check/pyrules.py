"""protokit's own lint rules for Python targets: what `buf lint` cannot know about Python.

Written like buf's rule registry: every rule's spec (ID, category "PY", purpose) is in protokit.check.rules,
and its check here is a pure function over the descriptors of the files being linted that yields
findings at the offending element's source location.

The conditions are those of the generators protokit runs: protoc's Python generator (module
names), the protobuf Python runtime (module globals, EnumTypeWrapper), grpcio-tools' gRPC
generator and mypy-protobuf (its PYTHON_RESERVED and PROTO_ENUM_RESERVED sets, `import sys`,
`_`-prefixed aliases and `Global___` type aliases).
"""

from __future__ import annotations

import keyword
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from google.protobuf.descriptor_pb2 import DescriptorProto, EnumDescriptorProto, FileDescriptorProto

from protokit.findings import Finding, at_location
from protokit.pynames import ALWAYS_REGULAR, installed_kind, installed_module

if TYPE_CHECKING:
    from protokit.config.pyproject_config import PyLintConfig

# SourceCodeInfo paths (field numbers of descriptor.proto).
_PACKAGE = (2,)
_SYNTAX = (12,)
_EDITION = (14,)

# mypy-protobuf 5.x's PYTHON_RESERVED is exactly keyword.kwlist (soft keywords such as `match`
# are valid attribute names and need no mangling).
_KEYWORDS = frozenset(keyword.kwlist)

# Attributes of google.protobuf's EnumTypeWrapper: an enum value with one of these names is
# shadowed (`Color.Name` is the method). The first five are mypy-protobuf's PROTO_ENUM_RESERVED.
_ENUM_WRAPPER_ATTRS = frozenset({"Name", "Value", "keys", "values", "items", "DESCRIPTOR", "_enum_type"})

# Module-level names of generated x_pb2.py / x_pb2.pyi that a top-level message, enum, enum value or
# extension (all module globals) would overwrite: the runtime's DESCRIPTOR, and the `import sys`
# mypy-protobuf adds for its version checks. Names starting with "_" (the runtime's _descriptor,
# _builder, _globals, _FOO descriptors; mypy-protobuf's _builtins, _typing, _Foo enum helpers) and
# "Global___" (mypy-protobuf's type aliases) are the generators' namespace.
_GENERATED_GLOBALS = frozenset({"DESCRIPTOR", "sys"})
_GENERATED_PREFIXES = ("_", "Global___")

# Public attributes of google.protobuf.message.Message (upb and pure-Python alike): a field, nested
# type or nested enum value of that name becomes an attribute of the message class or instance and
# hides the method (msg.ListFields() is then the field's value, Outer.Clear the method, not the value).
_MESSAGE_API = frozenset(
    {
        "ByteSize", "Clear", "ClearExtension", "ClearField", "CopyFrom", "DESCRIPTOR", "DiscardUnknownFields",
        "Extensions", "FindInitializationErrors", "FromString", "HasExtension", "HasField", "IsInitialized",
        "ListFields", "MergeFrom", "MergeFromString", "ParseFromString", "RegisterExtension",
        "SerializePartialToString", "SerializeToString", "SetInParent", "UnknownFields", "WhichOneof",
    }
)  # fmt: skip

# Top-level stdlib modules. sys.stdlib_module_names excludes the `test` package, and lacks on newer
# Pythons the modules removed since 3.11 (the oldest Python protokit supports).
_STDLIB = (
    frozenset(sys.stdlib_module_names)
    | {"test"}
    | {"asynchat", "asyncore", "distutils", "imp", "smtpd"}  # removed in 3.12
    | {"aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap", "msilib", "nis"}
    | {"nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib"}  # 3.13
)


@dataclass(frozen=True)
class LintContext:
    files: tuple[FileDescriptorProto, ...]  # the files being linted (not their imports), with source_code_info
    display: Callable[[str], str]  # image file name ("user/v1/x.proto") -> path users see ("protos/user/v1/x.proto")
    # Per-file memos: findings are rare, so a file's span index is built only when one needs a position.
    _spans: dict[str, dict[tuple[int, ...], list[int]]] = field(default_factory=dict, compare=False, repr=False)
    _elements: dict[str, list[_Element]] = field(default_factory=dict, compare=False, repr=False)

    def span(self, file: FileDescriptorProto, path: tuple[int, ...]) -> list[int] | None:
        if file.name not in self._spans:
            self._spans[file.name] = spans(file)
        return self._spans[file.name].get(path)

    def file_span(self, file: FileDescriptorProto) -> list[int] | None:
        """Where file-level findings go: the syntax (or edition) statement, else the start of the file."""
        return self.span(file, _SYNTAX) or self.span(file, _EDITION)

    def elements(self, file: FileDescriptorProto) -> list[_Element]:
        if file.name not in self._elements:
            self._elements[file.name] = list(_elements(file))
        return self._elements[file.name]


class Hit(NamedTuple):
    """What a check found: the file, the element's span (None: the start of the file) and the message.
    The runner makes it a Finding under the rule's ID."""

    file: FileDescriptorProto
    span: list[int] | None
    message: str


@dataclass(frozen=True)
class Rule:
    """A PY rule's handler; its category and purpose are in the registry (protokit.check.rules)."""

    id: str
    check: Callable[[LintContext], Iterable[Hit]]


# --- helpers -------------------------------------------------------------------------------------


def spans(file: FileDescriptorProto) -> dict[tuple[int, ...], list[int]]:
    """The file's SourceCodeInfo spans by element path (the first location of each path)."""
    index: dict[tuple[int, ...], list[int]] = {}
    for loc in file.source_code_info.location:
        index.setdefault(tuple(loc.path), list(loc.span))
    return index


def module_path(file_name: str) -> str:
    """The generated module's path without `_pb2.py`, as protoc's Python generator derives it:
    `-` becomes `_` and `.` a directory separator ("a/foo-bar.proto" -> "a/foo_bar")."""
    stem = file_name[: -len(".proto")] if file_name.endswith(".proto") else file_name
    return stem.replace("-", "_").replace(".", "/")


def module_name(file_name: str) -> str:
    """The dotted module generated code imports: "a/v1/foo-bar.proto" -> "a.v1.foo_bar_pb2"."""
    return module_path(file_name).replace("/", ".") + "_pb2"


@dataclass(frozen=True)
class _Element:
    kind: str  # message, field, oneof, enum, enum value, service, rpc, extension
    name: str
    full_name: str
    path: tuple[int, ...]  # SourceCodeInfo path of the element's name
    module_global: bool  # a global of the generated x_pb2 module (top-level type, enum value, extension)
    owner: str  # the Python object it is an attribute of: "a.v1.x_pb2", "a.v1.x_pb2.Outer", "a.v1.x_pb2.Color"

    @property
    def attribute(self) -> str:
        return f"{self.owner}.{self.name}"


def _elements(file: FileDescriptorProto) -> Iterator[_Element]:
    """Every named element of a file, nested ones included (synthetic map entries excluded)."""
    prefix = f"{file.package}." if file.package else ""
    module = module_name(file.name)
    for i, message in enumerate(file.message_type):
        yield from _message_elements(message, prefix, (4, i), module, top=True)
    for i, enum in enumerate(file.enum_type):
        yield from _enum_elements(enum, prefix, (5, i), module, top=True)
    for i, service in enumerate(file.service):
        yield _Element("service", service.name, prefix + service.name, (6, i, 1), False, module)
        for j, method in enumerate(service.method):
            full = f"{prefix}{service.name}.{method.name}"
            yield _Element("rpc", method.name, full, (6, i, 2, j, 1), False, f"{module}_grpc.{service.name}Stub")
    for i, ext in enumerate(file.extension):
        yield _Element("extension", ext.name, prefix + ext.name, (7, i, 1), True, module)


def _message_elements(
    message: DescriptorProto, prefix: str, path: tuple[int, ...], owner: str, top: bool
) -> Iterator[_Element]:
    if message.options.map_entry:
        return
    full = prefix + message.name
    cls = f"{owner}.{message.name}"
    yield _Element("message", message.name, full, (*path, 1), top, owner)
    for j, fd in enumerate(message.field):
        yield _Element("field", fd.name, f"{full}.{fd.name}", (*path, 2, j, 1), False, cls)
    for j, oneof in enumerate(message.oneof_decl):
        yield _Element("oneof", oneof.name, f"{full}.{oneof.name}", (*path, 8, j, 1), False, cls)
    for j, nested in enumerate(message.nested_type):
        yield from _message_elements(nested, f"{full}.", (*path, 3, j), cls, top=False)
    for j, enum in enumerate(message.enum_type):
        yield from _enum_elements(enum, f"{full}.", (*path, 4, j), cls, top=False)
    for j, ext in enumerate(message.extension):
        yield _Element("extension", ext.name, f"{full}.{ext.name}", (*path, 6, j, 1), False, cls)


def _enum_elements(
    enum: EnumDescriptorProto, prefix: str, path: tuple[int, ...], owner: str, top: bool
) -> Iterator[_Element]:
    yield _Element("enum", enum.name, prefix + enum.name, (*path, 1), top, owner)
    for j, value in enumerate(enum.value):
        # Enum values are siblings of their enum in proto scoping (a.v1.COLOR_RED); in Python they are
        # attributes of the enum wrapper (and of the enum's module or class).
        full = f"{prefix}{value.name}"
        yield _Element("enum value", value.name, full, (*path, 2, j, 1), top, f"{owner}.{enum.name}")


# --- rules ---------------------------------------------------------------------------------------


def _file_name_problems(file_name: str) -> list[str]:
    # protoc maps "-" to "_" and "." to a directory ("k8s.min.proto" -> k8s/min_pb2.py, a namespace
    # package): only what is still no identifier (or a keyword directory) after that cannot be imported.
    problems = []
    parts = module_path(file_name).split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if not (f"{part}_pb2" if last else part).isidentifier():
            why = "starts with a digit" if part[:1].isdigit() else "is not a Python identifier"
            problems.append(f'"{part}" {why}')
        elif not last and keyword.iskeyword(part):
            problems.append(f'"{part}" is a Python keyword')
    return problems


def check_file_name_importable(ctx: LintContext) -> Iterator[Hit]:
    for file in ctx.files:
        problems = _file_name_problems(file.name)
        if not problems:
            continue
        yield Hit(
            file,
            ctx.file_span(file),
            f'file name "{file.name}" does not map to an importable Python module as written: '
            f"{'; '.join(problems)} (generated module: {module_name(file.name)}); rename the file and its "
            "directories to lower_snake_case names that are valid Python identifiers and not keywords",
        )


def check_package_keyword(ctx: LintContext) -> Iterator[Hit]:
    for file in ctx.files:
        bad = [seg for seg in file.package.split(".") if seg in _KEYWORDS] if file.package else []
        if not bad:
            continue
        dotted = file.package
        segments = ", ".join(f'"{seg}"' for seg in bad)
        yield Hit(
            file,
            ctx.span(file, _PACKAGE),
            f'package "{dotted}" has the Python keyword segment {segments}: with the '
            f"package as the directory (buf's PACKAGE_DIRECTORY_MATCH) generated imports such as "
            f'"from {dotted} import x_pb2" are a syntax error, and betterproto2 names its modules after '
            "the package; rename the segment",
        )


def _keyword_why(element: _Element, module: str) -> str:
    name = element.name
    if element.kind == "field":
        return (
            f'msg.{name} is a syntax error, so the field is reachable only through getattr(msg, "{name}"), '
            "and mypy-protobuf leaves it out of the stubs and the constructor"
        )
    if element.kind in ("message", "enum"):
        return (
            f"{element.attribute} is a syntax error, so the class is reachable only through getattr(), "
            f"and mypy-protobuf renames it to _r_{name} in the stubs"
        )
    if element.kind == "enum value":
        return (
            f"{element.attribute} is a syntax error, so the value is reachable only through getattr() or "
            f'Value("{name}"), and mypy-protobuf leaves it out of the stubs'
        )
    if element.kind == "service":
        return f"mypy-protobuf renames it to _r_{name} and generates no gRPC stubs for it"
    if element.kind == "rpc":
        return (
            f"grpcio-tools' generator emits `def {name}(...)` and `self.{name} = ...`, so {module}_grpc.py fails "
            "to import with a SyntaxError, and mypy-protobuf leaves the method out of the stubs"
        )
    return f"{element.attribute} is a syntax error, so the extension is reachable only through getattr()"


def check_name_keyword(ctx: LintContext) -> Iterator[Hit]:
    for file in ctx.files:
        module = module_name(file.name)
        for element in ctx.elements(file):
            # A oneof name is only ever a string (WhichOneof("import")), never an attribute: harmless.
            if element.kind == "oneof" or element.name not in _KEYWORDS:
                continue
            yield Hit(
                file,
                ctx.span(file, element.path),
                f'{element.kind} "{element.full_name}" is named after the Python keyword "{element.name}": '
                f"{_keyword_why(element, module)}; rename it",
            )


def check_name_shadows_generated(ctx: LintContext) -> Iterator[Hit]:
    for file in ctx.files:
        module = module_name(file.name)
        for element in ctx.elements(file):
            name = element.name
            if not element.module_global:
                continue
            if name not in _GENERATED_GLOBALS and not name.startswith(_GENERATED_PREFIXES):
                continue
            if name == "DESCRIPTOR":
                why = f"it overwrites {module}.DESCRIPTOR, the module's FileDescriptor"
            elif name == "sys":
                why = "mypy-protobuf's stub imports sys for its version checks, so the stub fails type checking"
            elif name.startswith("_"):
                why = (
                    'names starting with "_" belong to the generated code (the runtime\'s _descriptor, _builder, '
                    "_globals and _FOO descriptors; mypy-protobuf's _builtins and _typing aliases and _Enum "
                    "helper classes), which it overwrites or clashes with"
                )
            else:
                why = "mypy-protobuf defines a Global___<Name> type alias for every top-level message and enum"
            yield Hit(
                file,
                ctx.span(file, element.path),
                f'{element.kind} "{element.full_name}" becomes the module global {module}.{name}, a name the '
                f"generated module uses itself: {why}; rename it",
            )


def check_enum_value_shadows_wrapper(ctx: LintContext) -> Iterator[Hit]:
    for file in ctx.files:
        for element in ctx.elements(file):
            name = element.name
            if element.kind != "enum value" or not (
                name in _ENUM_WRAPPER_ATTRS or (name.startswith("__") and name.endswith("__"))
            ):
                continue
            yield Hit(
                file,
                ctx.span(file, element.path),
                f'enum value "{element.full_name}" has the name of an attribute of protobuf\'s EnumTypeWrapper: '
                f"{element.attribute} is the wrapper's own attribute, not the value, and mypy-protobuf leaves "
                "the value out of the enum's stub class; rename it (UPPER_SNAKE_CASE with the enum's prefix)",
            )


def check_module_collision(ctx: LintContext) -> Iterator[Hit]:
    by_module: dict[str, list[FileDescriptorProto]] = defaultdict(list)
    for file in ctx.files:
        by_module[module_path(file.name)].append(file)
    for path, files in by_module.items():
        if len(files) < 2:
            continue
        for file in files:
            others = ", ".join(f'"{ctx.display(o.name)}"' for o in files if o is not file)
            yield Hit(
                file,
                ctx.file_span(file),
                f'"{file.name}" generates the same Python module {path}_pb2.py as {others} (protoc turns "-" '
                'into "_" and "." into "/"): one overwrites the other; rename one of the files',
            )


def check_package_shadows_stdlib(ctx: LintContext) -> Iterator[Hit]:
    for file in ctx.files:
        first_package = file.package.split(".")[0] if file.package else ""
        if first_package in _STDLIB:
            yield Hit(
                file,
                ctx.span(file, _PACKAGE),
                f'package "{file.package}" starts with "{first_package}", a Python standard-library module: with '
                "the package as the directory (buf's PACKAGE_DIRECTORY_MATCH) the generated code becomes a "
                f'top-level Python package "{first_package}" that shadows the standard library (or is shadowed '
                "by it) on sys.path; prefix the package with your organisation or project name",
            )
        parts = module_path(file.name).split("/")
        first_dir = parts[0] if len(parts) > 1 else ""
        if first_dir in _STDLIB and first_dir != first_package:
            yield Hit(
                file,
                ctx.file_span(file),
                f'directory "{first_dir}" of "{file.name}" becomes a top-level Python package "{first_dir}" '
                "in the generated code, shadowing (or shadowed by) the standard-library module of that name; "
                "move the file under a directory named after your organisation or project",
            )


def check_name_shadows_message_api(ctx: LintContext) -> Iterator[Hit]:
    for file in ctx.files:
        for element in ctx.elements(file):
            # Members of a message class: fields, nested messages and enums, and the values of nested
            # enums (proto scoping makes them siblings of their enum). Oneof names are only strings.
            member = element.kind in ("field", "message", "enum") and not element.module_global
            nested_value = element.kind == "enum value" and not element.module_global
            if not (member or nested_value) or element.name not in _MESSAGE_API:
                continue
            message = element.owner.rsplit(".", 1)[0] if nested_value else element.owner
            yield Hit(
                file,
                ctx.span(file, element.path),
                f'{element.kind} "{element.full_name}" has the name of protobuf\'s Message.{element.name}: on '
                f"{message} it hides that method (generated code, json_format and text_format call it), or the "
                "method hides it; rename it",
            )


def check_package_shadows_dependency(ctx: LintContext) -> Iterator[Hit]:
    for file in ctx.files:
        first = file.package.split(".")[0] if file.package else ""
        if not first or first in _STDLIB or installed_module(module_path(file.name)):
            continue  # the standard library has its own rule; an installed copy of this code is no clash
        if first in ALWAYS_REGULAR or installed_kind(first) == "package":
            yield Hit(
                file,
                ctx.span(file, _PACKAGE),
                f'package "{file.package}" starts with "{first}", a regular top-level package of an installed '
                f"distribution: Python finds that package's {first}/__init__.py before the generated directory, "
                f'so "import {first}.{file.package.split(".", 1)[-1]}" fails (or, with an __init__.py, the '
                f"generated tree hides the dependency); prefix the package with your organisation or project name",
            )


RULES: tuple[Rule, ...] = (
    Rule("PY_FILE_NAME_IMPORTABLE", check_file_name_importable),
    Rule("PY_PACKAGE_KEYWORD", check_package_keyword),
    Rule("PY_NAME_KEYWORD", check_name_keyword),
    Rule("PY_NAME_SHADOWS_GENERATED", check_name_shadows_generated),
    Rule("PY_ENUM_VALUE_SHADOWS_WRAPPER", check_enum_value_shadows_wrapper),
    Rule("PY_MODULE_COLLISION", check_module_collision),
    Rule("PY_PACKAGE_SHADOWS_STDLIB", check_package_shadows_stdlib),
    Rule("PY_PACKAGE_SHADOWS_DEPENDENCY", check_package_shadows_dependency),
    Rule("PY_NAME_SHADOWS_MESSAGE_API", check_name_shadows_message_api),
)


def run(files: Sequence[FileDescriptorProto], display: Callable[[str], str], config: PyLintConfig) -> list[Finding]:
    """Apply the rules `config` selects to `files`; drop ignored findings; sorted by path and position."""
    ctx = LintContext(tuple(files), display)
    findings = [
        at_location(display(hit.file.name), hit.span, rule.id, hit.message)
        for rule in RULES
        if config.selects(rule.id)
        for hit in rule.check(ctx)
        if not config.ignores(rule.id, display(hit.file.name))
    ]
    return sorted(findings)
