"""The view model of protoc-gen-protokit: descriptors in, plain data the templates lay out.

Every decision lives here, where it is unit-tested: Python names (snake_case, keyword-safe, unique),
type expressions and the imports they need, per-method policies, and docstrings made safe to
paste between triple quotes. Templates only arrange these strings.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from google.protobuf import descriptor_pb2

MethodKind = Literal["unary_unary", "unary_stream", "stream_unary", "stream_stream"]

# Unary calls get a deadline unless the caller sets one; streams may legitimately run for hours.
UNARY_TIMEOUT = 10.0

# FileDescriptorProto.service = 6, ServiceDescriptorProto.method = 2: source_code_info paths.
_SERVICE_FIELD = descriptor_pb2.FileDescriptorProto.SERVICE_FIELD_NUMBER
_METHOD_FIELD = descriptor_pb2.ServiceDescriptorProto.METHOD_FIELD_NUMBER

_IDEMPOTENT_LEVELS = frozenset({descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, descriptor_pb2.MethodOptions.IDEMPOTENT})

# Attributes the generated servicer base defines itself: an RPC of that name would replace them.
SERVICER_RESERVED = frozenset({"SERVICE_NAME", "add_to_server"})
# Attributes of the generated client besides the per-RPC methods.
CLIENT_RESERVED = frozenset({"SERVICE_NAME", "METHODS", "connect", "_stub", "_metadata", "_timeouts"})
# Names the implementation skeleton imports or defines at module level.
_IMPLEMENTATION_RESERVED = frozenset({"AsyncIterator", "grpc", "runtime", "main", "annotations"})

# ruff's default line length: longer `from` imports are wrapped the way its isort rule wants them.
_IMPORT_LINE_LENGTH = 88

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# A quote that another quote follows, or that ends the text, could close (or merge into) the
# closing triple quote: those get a backslash. Single quotes inside prose stay readable.
_RISKY_QUOTE = re.compile(r'"(?="|$)')


class ServiceGenError(ValueError):
    """A proto construct the servicer generator cannot express in Python."""


class ServicerSignature:
    """A servicer method's parameter and types, as grpc.aio calls it, from `request_type`, `response_type`
    (Python type expressions) and the streaming flags of the class using it."""

    request_type: str
    response_type: str

    if TYPE_CHECKING:  # a field or a property of the class using it (a property here would hide a field)

        @property
        def client_streaming(self) -> bool: ...

        @property
        def server_streaming(self) -> bool: ...

    @property
    def request_param(self) -> str:
        """The servicer's parameter name, as grpc's generated servicers call it."""
        return "request_iterator" if self.client_streaming else "request"

    @property
    def request_annotation(self) -> str:
        """The servicer's request parameter type."""
        return f"AsyncIterator[{self.request_type}]" if self.client_streaming else self.request_type

    @property
    def response_annotation(self) -> str:
        """The servicer's (and the client's) return type."""
        return f"AsyncIterator[{self.response_type}]" if self.server_streaming else self.response_type

    @property
    def context_type(self) -> str:
        return f"grpc.aio.ServicerContext[{self.request_type}, {self.response_type}]"


@dataclass(frozen=True)
class MethodModel(ServicerSignature):
    name: str  # the RPC name, exactly as grpc looks it up on the servicer
    python_name: str  # the client method: snake_case, keyword-safe
    kind: MethodKind
    request_type: str  # a Python type expression, e.g. "user_service_pb2.GetUserRequest"
    response_type: str
    doc: str  # safe between triple quotes; "" when the RPC has no comment
    idempotent: bool
    default_timeout: float | None

    @property
    def client_streaming(self) -> bool:
        return self.kind.startswith("stream_")

    @property
    def server_streaming(self) -> bool:
        return self.kind.endswith("_stream")

    @property
    def client_param(self) -> str:
        return "requests" if self.client_streaming else "request"

    @property
    def client_annotation(self) -> str:
        """What the client accepts: one message, or any (async) iterable of them."""
        if self.client_streaming:
            return f"AsyncIterable[{self.request_type}] | Iterable[{self.request_type}]"
        return self.request_type


@dataclass(frozen=True)
class ServiceModel:
    name: str  # the proto service name, e.g. "UserService"
    full_name: str  # e.g. "user.v1.UserService" (what grpc, health and reflection use)
    python_name: str  # the prefix of the generated classes
    doc: str  # safe between triple quotes, never empty
    methods: tuple[MethodModel, ...]
    constant: str  # module-level constant holding full_name, e.g. "USER_SERVICE_NAME"
    implementation_name: str  # the class name in the implementation skeleton

    @property
    def base_name(self) -> str:
        return f"{self.python_name}Base"

    @property
    def client_name(self) -> str:
        return f"{self.python_name}Client"

    @property
    def register_name(self) -> str:
        return f"add_{self.python_name}_to_server"

    @property
    def stub_name(self) -> str:
        """The stub class grpc's generator emits into the _pb2_grpc module."""
        return f"{self.name}Stub"

    @property
    def servicer_name(self) -> str:
        return f"{self.name}Servicer"

    @property
    def grpc_register_name(self) -> str:
        return f"add_{self.name}Servicer_to_server"


@dataclass(frozen=True)
class FileModel:
    proto_name: str  # "user/v1/user_service.proto"
    module: str  # "user.v1.user_service_pb2"
    grpc_module: str  # "user.v1.user_service_pb2_grpc"
    output_name: str  # "user/v1/user_service_protokit.py"
    services: tuple[ServiceModel, ...]
    imports: tuple[tuple[str, ...], ...]  # import groups of the generated module, after __future__
    protokit_module: str  # "user.v1.user_service_protokit"
    grpc_alias: str  # the name the _pb2_grpc module is bound to in the generated module
    doc: str  # the generated module's docstring
    implementation_imports: tuple[tuple[str, ...], ...]
    implementation_doc: str

    @property
    def service_name_alias(self) -> str | None:
        """The constant SERVICE_NAME points to in a single-service file (None: no alias)."""
        if len(self.services) == 1 and self.services[0].constant != "SERVICE_NAME":
            return self.services[0].constant
        return None

    @property
    def service_names_tuple(self) -> str:
        """The SERVICE_NAMES tuple as Python source."""
        names = [s.constant for s in self.services]
        return f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"


# --- small pure helpers -------------------------------------------------------------------------


def snake_case(name: str) -> str:
    """An RPC name as a Python method name: GetUser -> get_user, GetHTTPHeaders -> get_http_headers."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def python_safe(name: str, reserved: Collection[str] = ()) -> str:
    """`name` usable as a Python identifier in a namespace where `reserved` is taken: import -> import_."""
    while keyword.iskeyword(name) or name in reserved:
        name += "_"
    return name


def module_path(proto_name: str) -> str:
    """protoc's Python module path for a .proto: "a/b-c.d.proto" -> "a/b_c/d"."""
    return proto_name.removesuffix(".proto").replace("-", "_").replace(".", "/")


def python_module(proto_name: str, suffix: str = "_pb2") -> str:
    """The dotted module protoc's Python generator writes for a .proto: "user.v1.user_service_pb2"."""
    return module_path(proto_name).replace("/", ".") + suffix


def docstring(comment: str) -> str:
    """A proto comment as docstring text: dedented, trimmed, and safe between triple quotes.

    Backslashes are doubled, control characters escaped and quotes that could end the string get a
    backslash, so the text reads the same at runtime as in the .proto. The result is data for the
    template, never template source: `{{ }}` and `{% %}` in comments come out verbatim.
    """
    text = comment.replace("\r\n", "\n").replace("\r", "\n")
    text = textwrap.dedent("\n".join(line.rstrip() for line in text.split("\n"))).strip("\n")
    text = text.replace("\\", "\\\\")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return _RISKY_QUOTE.sub('\\\\"', text)


def type_expr(type_name: str, types: Mapping[str, tuple[str, str]], aliases: Mapping[str, str]) -> str:
    """A message type as a Python expression: ".pkg.Outer.Inner" -> "<module alias>.Outer.Inner".

    `types` maps fully-qualified message names (no leading dot) to (module, path inside the module);
    `aliases` maps modules to the names they are imported as.
    """
    full = type_name.removeprefix(".")
    try:
        module, path = types[full]
    except KeyError:
        raise ServiceGenError(f'message type "{full}" is not defined in the file or its imports') from None
    return f"{aliases[module]}.{path}"


def module_aliases(own: str, modules: Collection[str]) -> dict[str, str]:
    """Import names for pb2 modules: the file's own by its base name, others as "_<base>" (unique)."""
    aliases = {own: own.rpartition(".")[2]}
    taken = set(aliases.values())
    for module in sorted(set(modules) - {own}):
        base = alias = "_" + module.rpartition(".")[2]
        n = 0
        while alias in taken:
            n += 1
            alias = f"{base}_{n}"
        taken.add(alias)
        aliases[module] = alias
    return aliases


def upper_snake(name: str) -> str:
    return snake_case(name).upper()


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


# --- building the model -------------------------------------------------------------------------


def _walk_messages(
    messages: Iterable[descriptor_pb2.DescriptorProto], scope: str, path: str
) -> Iterator[tuple[str, str]]:
    """(fully-qualified proto name, Python attribute path) of every message, nested ones included."""
    for message in messages:
        full = f"{scope}.{message.name}" if scope else message.name
        python = f"{path}.{message.name}" if path else message.name
        yield full, python
        yield from _walk_messages(message.nested_type, full, python)


def _type_index(
    file: descriptor_pb2.FileDescriptorProto, all_files: Mapping[str, descriptor_pb2.FileDescriptorProto]
) -> dict[str, tuple[str, str]]:
    """Every message visible from `file` (itself and its transitive imports) -> (module, path)."""
    index: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    pending = [file.name]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        proto = file if name == file.name else all_files.get(name)
        if proto is None:
            continue
        module = python_module(proto.name)
        for full, python in _walk_messages(proto.message_type, proto.package, ""):
            index[full] = (module, python)
        pending.extend(proto.dependency)
    return index


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {
        tuple(location.path): location.leading_comments
        for location in file.source_code_info.location
        if location.HasField("leading_comments")
    }


def _kind(method: descriptor_pb2.MethodDescriptorProto) -> MethodKind:
    if method.client_streaming:
        return "stream_stream" if method.server_streaming else "stream_unary"
    return "unary_stream" if method.server_streaming else "unary_unary"


def build(
    file: descriptor_pb2.FileDescriptorProto, all_files: Mapping[str, descriptor_pb2.FileDescriptorProto]
) -> FileModel:
    """The view model of `file`'s services; `all_files` (by name) resolves imported message types."""
    module = python_module(file.name)
    grpc_module = python_module(file.name, "_pb2_grpc")
    protokit_module = python_module(file.name, "_protokit")
    types = _type_index(file, all_files)
    used = sorted(
        {
            types[t.removeprefix(".")][0]
            for service in file.service
            for method in service.method
            for t in (method.input_type, method.output_type)
            if t.removeprefix(".") in types
        }
    )
    aliases = module_aliases(module, used)
    grpc_alias = grpc_module.rpartition(".")[2]
    comments = _comments(file)

    constants: set[str] = {"SERVICE_NAMES"}
    services = []
    for i, service in enumerate(file.service):
        full_name = f"{file.package}.{service.name}" if file.package else service.name
        methods = []
        client_names: set[str] = set(CLIENT_RESERVED)
        for j, method in enumerate(service.method):
            if keyword.iskeyword(method.name) or method.name in SERVICER_RESERVED:
                raise ServiceGenError(
                    f'{full_name}: rpc "{method.name}" cannot be a Python method name '
                    "(grpc looks servicer methods up by the RPC name): rename the RPC"
                )
            kind = _kind(method)
            methods.append(
                MethodModel(
                    name=method.name,
                    python_name=_unique(python_safe(snake_case(method.name), client_names), client_names),
                    kind=kind,
                    request_type=type_expr(method.input_type, types, aliases),
                    response_type=type_expr(method.output_type, types, aliases),
                    doc=docstring(comments.get((_SERVICE_FIELD, i, _METHOD_FIELD, j), "")),
                    idempotent=method.options.idempotency_level in _IDEMPOTENT_LEVELS,
                    default_timeout=UNARY_TIMEOUT if kind == "unary_unary" else None,
                )
            )
        doc = docstring(comments.get((_SERVICE_FIELD, i), "")) or f"The servicer base of {full_name}."
        services.append(
            ServiceModel(
                name=service.name,
                full_name=full_name,
                python_name=service.name,
                doc=doc,
                methods=tuple(methods),
                constant=_unique(upper_snake(service.name) + "_NAME", constants),
                implementation_name="",  # assigned below, once every imported name is known
            )
        )

    imports = _imports(services, aliases, grpc_module, grpc_alias)
    implementation_imports, imported = _implementation_imports(services, aliases, protokit_module)
    taken = set(_IMPLEMENTATION_RESERVED) | imported
    services = [replace(s, implementation_name=_unique(python_safe(s.name, taken), taken)) for s in services]
    names = ", ".join(s.full_name for s in services)
    return FileModel(
        proto_name=file.name,
        module=module,
        grpc_module=grpc_module,
        output_name=module_path(file.name) + "_protokit.py",
        services=tuple(services),
        imports=imports,
        protokit_module=protokit_module,
        grpc_alias=grpc_alias,
        doc=docstring(f"Servicer base and client for {names} (source: {file.name})."),
        implementation_imports=implementation_imports,
        implementation_doc=docstring(f"The implementation of {names}."),
    )


Import = tuple[str, str, str]  # (from module or "" for `import name`, name, alias or "")


def format_imports(imports: Iterable[Import]) -> tuple[str, ...]:
    """One import section as isort (ruff's I001, default settings) lays it out.

    `import x` lines first, then `from` lines by module; plain names share one line (wrapped one per
    line beyond 88 characters), aliased names get a line each.
    """
    entries = set(imports)
    lines = [f"import {name}" + (f" as {alias}" if alias else "") for module, name, alias in entries if not module]
    lines.sort(key=str.lower)
    for module in sorted({m for m, _, _ in entries if m}, key=str.lower):
        plain = sorted((name for m, name, alias in entries if m == module and not alias), key=_member_key)
        # Statements from one module follow their first name: `import a as _a` before `import b, c`.
        statements = [(plain[0], plain)] if plain else []
        statements += [(name, [f"{name} as {alias}"]) for m, name, alias in entries if m == module and alias]
        statements.sort(key=lambda statement: _member_key(statement[0]))
        lines.extend(_from_import(module, names) for _, names in statements)
    return tuple(lines)


def _member_key(name: str) -> tuple[int, str, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then everything else; case-insensitive."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return (kind, name.lower(), name)


def _from_import(module: str, names: list[str]) -> str:
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= _IMPORT_LINE_LENGTH:
        return line
    return f"from {module} import (\n" + "".join(f"    {name},\n" for name in names) + ")"


def module_import(module: str, alias: str) -> Import:
    """How to bind `module` to `alias`: `from a.b import c` (as alias when it differs), or `import c`."""
    package, _, base = module.rpartition(".")
    return (package, base, "" if alias == base else alias)


def _pb2_imports(services: list[ServiceModel], aliases: Mapping[str, str]) -> list[Import]:
    wanted = {expr.partition(".")[0] for s in services for m in s.methods for expr in (m.request_type, m.response_type)}
    return [module_import(module, alias) for module, alias in aliases.items() if alias in wanted]


def _imports(
    services: list[ServiceModel], aliases: Mapping[str, str], grpc_module: str, grpc_alias: str
) -> tuple[tuple[str, ...], ...]:
    methods = [m for s in services for m in s.methods]
    abc_names = {"Mapping", "Sequence"}
    if any(m.client_streaming or m.server_streaming for m in methods):
        abc_names.add("AsyncIterator")
    if any(m.client_streaming for m in methods):
        abc_names |= {"AsyncIterable", "Iterable"}
    runtime = ("MethodPolicy", "TlsConfig", "bearer", "channel", "service_config")
    stdlib: list[Import] = [("", "abc", ""), *(("collections.abc", n, "") for n in abc_names)]
    stdlib += [("typing", n, "") for n in ("ClassVar", "Self", "cast")]
    # grpc, protokit and the generated packages are one section: isort's "third party" wherever the
    # generated tree is not a source root of the project.
    third_party: list[Import] = [
        ("", "grpc", ""),
        *(("protokit.runtime.client", n, "") for n in runtime),
        *_pb2_imports(services, aliases),
        module_import(grpc_module, grpc_alias),
    ]
    return (format_imports(stdlib), format_imports(third_party))


def _implementation_imports(
    services: list[ServiceModel], aliases: Mapping[str, str], protokit_module: str
) -> tuple[tuple[tuple[str, ...], ...], set[str]]:
    methods = [m for s in services for m in s.methods]
    third_party: list[Import] = [("protokit", "runtime", ""), *_pb2_imports(services, aliases)]
    third_party += [(protokit_module, s.base_name, "") for s in services]
    if methods:
        third_party.append(("", "grpc", ""))
    groups: list[tuple[str, ...]] = []
    if any(m.client_streaming or m.server_streaming for m in methods):
        groups.append(("from collections.abc import AsyncIterator",))
    groups.append(format_imports(third_party))
    imported = {s.base_name for s in services} | set(aliases.values())
    return tuple(groups), imported
