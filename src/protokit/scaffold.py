"""`protokit new service` and `protokit new proto`: a working, lint-clean starting point.

`new_service` writes a documented, validated proto (CRUD, a server-streaming List and, unless
streaming is off, a client-streaming batch create and a bidirectional watch), the project files that
are missing (buf.yaml, buf.gen.yaml, pyproject.toml, .gitignore, README.md, a CI workflow, a Dockerfile), an
in-memory implementation of every RPC with a server entry point, and pytest tests over a real
socket; then it runs `protokit gen` in-process. In a directory that already belongs to a protokit
project (a buf.yaml at or above it) it adds the service to that project instead.

Existing files are never overwritten: when one lacks something the new service needs, the result
carries a `Hint` saying exactly what to add. Everything is validated before the first write, and a
failure after it (protoc rejecting the proto, say) removes what was written, so a run either
completes or leaves the tree as it was.

`new_proto` is prototool's `create`: one lint-clean file whose package follows from its directory
under the module root.
"""

from __future__ import annotations

import functools
import json
import keyword
import os
import re
import shlex
import sys
import textwrap
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from protokit import config, version
from protokit.errors import ProtokitError
from protokit.names import pascal_case, pluralize
from protokit.pyrules import _STDLIB as STDLIB_MODULES
from protokit.servicegen.model import Import, format_imports, module_import, snake_case
from protokit.servicegen.render import docstring_literal, template_environment

TEMPLATES = "protokit.templates.scaffold"
BUF_YAML = "buf.yaml"
BUF_GEN_YAML = "buf.gen.yaml"
PYPROJECT = "pyproject.toml"
WORKFLOW = ".github/workflows/contract.yml"
DEFAULT_MODULE = "protos"
DEFAULT_OUT = "generated"
DEFAULT_SOURCE_ROOT = "src"
PROTOKIT_PLUGIN = "protoc-gen-protokit"
# ruff format's default line length: the Python files are laid out to pass `ruff format --check`.
LINE_LENGTH = 88

_PASCAL = re.compile(r"[A-Z][A-Za-z0-9]*")
_LOWER_SNAKE = re.compile(r"[a-z][a-z0-9_]*")
# buf's PACKAGE_VERSION_SUFFIX: v1, v2, v1beta1, v1alpha, v1p1beta1, v1test, v1testfoo (numbers > 0).
_VERSION = re.compile(r"v(\d+)(?:(?:p(\d+))?(?:alpha|beta)(\d*)|test[a-z0-9_]*)?")
# File options buf's PACKAGE_SAME_* rules require to agree across a package: copied from siblings.
_PACKAGE_SAME_OPTIONS = (
    "csharp_namespace",
    "go_package",
    "java_multiple_files",
    "java_package",
    "php_namespace",
    "ruby_package",
    "swift_prefix",
)
_OPTION_LINE = re.compile(r"(?m)^option\s+(\w+)\s*=\s*(.+?);[ \t]*(?://.*)?$")
# Top-level Python names a generated package or the implementation package must not take: they
# would shadow (or be shadowed by) what the service imports at run time.
RESERVED_TOP_LEVEL = frozenset(
    {
        "buf",
        "generated",
        "google",
        "grpc",
        "grpc_health",
        "grpc_reflection",
        "grpc_status",
        "grpc_tools",
        "jinja2",
        "mypy_protobuf",
        "prometheus_client",
        "protokit",
        "protovalidate",
        "pytest",
        "rich",
        "setuptools",
        "src",
        "tests",
        "typer",
        "yaml",
    }
)


# --- names ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceName:
    """Every name derived from NAME (Billing or BillingService)."""

    resource: str  # Billing: the resource message, and the stem of the RPC names
    service: str  # BillingService
    snake: str  # billing: field names, the default package and Python package

    @property
    def plural(self) -> str:
        return pluralize(self.resource)

    @property
    def plural_snake(self) -> str:
        return pluralize(self.snake)

    @property
    def words(self) -> str:
        """The resource in prose: HttpProxy -> "http proxy"."""
        return self.snake.replace("_", " ")

    @property
    def plural_words(self) -> str:
        return self.plural_snake.replace("_", " ")

    @property
    def file_stem(self) -> str:
        """The proto file (and implementation module) name: billing_service."""
        return snake_case(self.service)


def parse_service_name(name: str) -> ServiceName:
    """NAME in PascalCase, with or without the Service suffix; ProtokitError says what is wrong."""
    if not name.isidentifier() or not name.isascii():
        raise ProtokitError(
            f"service name {name!r} is not an identifier: use PascalCase letters and digits, e.g. Billing"
        )
    resource = name.removesuffix("Service") if name != "Service" else ""
    for candidate in (name, resource, snake_case(resource)):
        if keyword.iskeyword(candidate):
            raise ProtokitError(f"service name {name!r} is a Python keyword ({candidate!r}): choose another name")
    if not _PASCAL.fullmatch(name):
        suggestion = pascal_case(name.lower()) if name.replace("_", "").isalnum() else "Billing"
        raise ProtokitError(f"service name {name!r} is not PascalCase: use e.g. {suggestion or 'Billing'}")
    if not resource:
        raise ProtokitError("service name 'Service' names nothing: use e.g. Billing or BillingService")
    if resource == "DESCRIPTOR":
        raise ProtokitError("service name 'DESCRIPTOR' would shadow the generated module's DESCRIPTOR")
    return ServiceName(resource=resource, service=resource + "Service", snake=snake_case(resource))


def check_package(package: str, what: str = "package", origin: str = "") -> None:
    """A proto package buf STANDARD and protokit's PY rules accept: lower_snake segments ending in a
    version (acme.billing.v1, v1beta1, v2alpha); no keyword segment, no shadowed top-level module."""
    parts = package.split(".")
    problem = None
    bad = [p for p in parts if not _LOWER_SNAKE.fullmatch(p)]
    if not package:
        problem = "is empty"
    elif bad:
        problem = f"has the segment {bad[0]!r}: segments are lower_snake_case (a-z, 0-9, _), starting with a letter"
    elif len(parts) < 2 or not _version_ok(parts[-1]):
        problem = "must end in a version segment after its name, e.g. acme.billing.v1, v1beta1 or v2alpha"
    elif any(keyword.iskeyword(p) for p in parts):
        word = next(p for p in parts if keyword.iskeyword(p))
        problem = f"has the Python keyword segment {word!r}, which makes the generated imports a syntax error"
    elif parts[0] in STDLIB_MODULES or parts[0] in RESERVED_TOP_LEVEL:
        problem = (
            f"starts with {parts[0]!r}: the generated top-level Python package would shadow the module of "
            "that name; prefix it with your organisation or project, e.g. acme." + package
        )
    if problem:
        raise ProtokitError(f"{what} {package!r}{origin} {problem}")


def _version_ok(segment: str) -> bool:
    match = _VERSION.fullmatch(segment)
    if match is None:
        return False
    major, patch, pre = match.groups()
    return int(major) > 0 and (patch is None or int(patch) > 0) and (not pre or int(pre) > 0)


# --- layout helpers for the templates ------------------------------------------------------------


def wrap(indent: int, head: str, items: Sequence[str], tail: str, parameters: bool = False) -> str:
    """`head + items + tail` laid out as ruff format does: one line if it fits, else the items on one
    indented line, else one item per line with a trailing comma. `head` ends with the bracket.
    `parameters`: the items are a def's parameters, where a lone one split off gets a trailing comma."""
    pad = " " * indent
    one = f"{pad}{head}{', '.join(items)}{tail}"
    if len(one) <= LINE_LENGTH:
        return one
    middle = f"{pad}    {', '.join(items)}"
    if len(items) == 1 or len(middle) <= LINE_LENGTH:
        comma = "," if parameters and len(items) == 1 else ""
        return f"{pad}{head}\n{middle}{comma}\n{pad}{tail}"
    return f"{pad}{head}\n" + "".join(f"{pad}    {item},\n" for item in items) + f"{pad}{tail}"


def servicer_method(
    name: str, request: str, response: str, client_streaming: bool = False, server_streaming: bool = False
) -> str:
    """The signature of a servicer method, as the generated base declares it (types from module `pb`)."""
    request_type, response_type = f"pb.{request}", f"pb.{response}"
    if client_streaming:
        request_line = wrap(8, "request_iterator: AsyncIterator[", [request_type], "],")
    else:
        request_line = f"        request: {request_type},"
    context = wrap(8, "context: grpc.aio.ServicerContext[", [request_type, response_type], "],")
    returns = f"AsyncIterator[{response_type}]" if server_streaming else response_type
    return f"    async def {name}(\n        self,\n{request_line}\n{context}\n    ) -> {returns}:"


@functools.cache
def environment() -> jinja2.Environment:
    env = template_environment(TEMPLATES)
    env.globals["wrap"] = wrap
    env.globals["method"] = servicer_method
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hint:
    """An existing file that lacks something the new service needs: what to add, exactly."""

    path: str  # relative to the project root
    message: str
    snippet: str = ""


@dataclass
class ServiceResult:
    root: Path
    service: str  # full name: acme.billing.v1.BillingService
    proto: str  # project-relative path of the new proto
    new_project: bool  # False: added to a project that has a buf.yaml
    created: list[str] = field(default_factory=list)  # project-relative, in writing order
    generated_files: int = 0  # files in the generated tree after gen
    hints: list[Hint] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "service": self.service,
            "proto": self.proto,
            "new_project": self.new_project,
            "created": self.created,
            "generated_files": self.generated_files,
            "hints": [{"path": h.path, "message": h.message, "snippet": h.snippet} for h in self.hints],
            "next_steps": self.next_steps,
        }


@dataclass
class ProtoResult:
    root: Path
    path: str  # project-relative
    package: str
    message: str
    created: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "path": self.path,
            "package": self.package,
            "message": self.message,
            "created": self.created,
            "next_steps": self.next_steps,
        }


# --- the project a service goes into -------------------------------------------------------------


@dataclass(frozen=True)
class GenInfo:
    """What an existing buf.gen.yaml says about the Python output (best effort: gen validates it)."""

    out: str | None = None
    implementations: str | None = None
    has_python: bool = False
    has_grpc: bool = False


def _gen_info(project: config.Project) -> GenInfo:
    """buf.gen.yaml read as `protokit gen` reads it (what gen rejects fails here, with its line:col)."""
    from protokit.implementations import implementation_dir

    gen = config.load_gen_config(project, check_inputs=False)
    names = {os.path.basename(spec.name): spec for spec in gen.plugins if spec.kind == "local"}
    builtins = {spec.name for spec in gen.plugins if spec.kind == "protoc_builtin"}
    protokit = names.get(PROTOKIT_PLUGIN)
    implementations = implementation_dir(project, gen)
    return GenInfo(
        out=protokit.out if protokit else gen.plugins[0].out,
        implementations=implementations.relative_to(project.root).as_posix() if implementations else None,
        has_python="python" in builtins or "protoc-gen-python" in names,
        has_grpc=bool({"protoc-gen-grpc_python", "grpc_python_plugin"} & names.keys()),
    )


@dataclass(frozen=True)
class Layout:
    """Where the pieces of the project live, relative to its root (posix paths)."""

    root: Path
    has_buf_yaml: bool
    module: str  # the module root the proto goes into ("." for the root itself)
    modules: tuple[str, ...]  # every module root, to look for clashes
    out: str  # generated code
    implementations: str  # the implementation directory (protoc-gen-protokit implementations=)
    python_package: str  # the dotted package of the implementation directory
    source_root: str  # the directory that makes python_package importable
    gen: GenInfo | None  # None: buf.gen.yaml is missing (and will be written)


def _project_root(directory: Path) -> Path | None:
    """The root of the protokit project `directory` belongs to; None for a new or empty directory."""
    if not directory.exists() or not any(directory.iterdir()):
        return None
    for candidate in (directory, *directory.parents):
        if (candidate / BUF_YAML).is_file():
            return candidate
    return None


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


def _python_package(root: Path, directory: Path) -> tuple[str, Path]:
    """The dotted package a directory is imported as, and the directory that must be on sys.path:
    the chain of parent directories holding __init__.py."""
    parts = [directory.name]
    top = directory
    while top.parent != root and (top.parent / "__init__.py").is_file():
        top = top.parent
        parts.insert(0, top.name)
    return ".".join(parts), top.parent


def _python_package_name(snake: str, service_snake: str, taken: set[str]) -> str:
    """The implementation package: the resource in snake_case (billing), or the service's
    (billing_service) where that would clash with a generated package, the stdlib or a dependency."""
    for candidate in (snake, service_snake):
        if candidate not in taken and candidate not in STDLIB_MODULES and candidate not in RESERVED_TOP_LEVEL:
            return candidate
    raise ProtokitError(
        f"cannot name the Python package: {snake!r} and {service_snake!r} clash with "
        "the standard library, a dependency or the proto package; choose another service name or --package"
    )


def _layout(directory: Path, names: ServiceName, package: str) -> Layout:
    found = _project_root(directory)
    root = found or directory
    top = package.split(".")[0]
    project = config.load_project(root)
    modules = tuple(m.path for m in project.modules) if found is not None else (DEFAULT_MODULE,)
    gen = _gen_info(project) if (root / BUF_GEN_YAML).is_file() else None
    out = (gen.out if gen else None) or DEFAULT_OUT
    if gen is not None and gen.implementations:
        implementations = gen.implementations
        if os.path.isabs(implementations) or implementations.startswith("..") or implementations == ".":
            raise ProtokitError(f"{BUF_GEN_YAML}: implementations={implementations} must be a directory in the project")
        python_package, source = _python_package(root, root / implementations)
    else:
        python_package = _python_package_name(names.snake, names.file_stem, {top})
        implementations = f"{DEFAULT_SOURCE_ROOT}/{python_package}"
        source = root / DEFAULT_SOURCE_ROOT
    for part in python_package.split("."):
        if not part.isidentifier() or keyword.iskeyword(part):
            raise ProtokitError(
                f"the implementation directory {implementations} is not an importable Python package "
                f"({part!r}); fix implementations= in {BUF_GEN_YAML}"
            )
    return Layout(
        root=root,
        has_buf_yaml=found is not None,
        module=modules[0],
        modules=modules,
        out=out,
        implementations=Path(implementations).as_posix(),
        python_package=python_package,
        source_root=_rel(source, root),
        gen=gen,
    )


# --- planning --------------------------------------------------------------------------------------


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p and p != ".")


def _protos(root: Path, modules: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for module in modules:
        base = root / module
        if base.is_dir():
            found.extend(p for p in base.rglob("*.proto") if p.is_file())
    return sorted(found)


def _sibling_options(directory: Path) -> list[str]:
    """The package-wide file options of the first other .proto in `directory` (PACKAGE_SAME_* rules)."""
    if not directory.is_dir():
        return []
    for sibling in sorted(directory.glob("*.proto")):
        if not sibling.is_file():
            continue
        try:
            text = sibling.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        return [
            f"option {name} = {value.strip()};"
            for name, value in _OPTION_LINE.findall(text)
            if name in _PACKAGE_SAME_OPTIONS
        ]
    return []


@dataclass(frozen=True)
class _Spec:
    """The view model of the service templates."""

    names: ServiceName
    package: str
    streaming: bool
    layout: Layout
    proto_name: str  # relative to the module root
    options: tuple[str, ...]

    # The names the templates use, flat.
    @property
    def resource(self) -> str:
        return self.names.resource

    @property
    def service(self) -> str:
        return self.names.service

    @property
    def plural(self) -> str:
        return self.names.plural

    @property
    def field(self) -> str:
        return self.names.snake

    @property
    def plural_field(self) -> str:
        return self.names.plural_snake

    @property
    def words(self) -> str:
        return self.names.words

    @property
    def plural_words(self) -> str:
        return self.names.plural_words

    @property
    def full_service(self) -> str:
        return f"{self.package}.{self.service}"

    @property
    def module(self) -> str:
        return self.layout.module

    @property
    def python_package(self) -> str:
        return self.layout.python_package

    @property
    def implementation_module(self) -> str:
        return f"{self.layout.python_package}.{self.names.file_stem}"

    @property
    def pb2_module(self) -> str:
        return f"{self.package}.{self.names.file_stem}_pb2"

    @property
    def protokit_module(self) -> str:
        return f"{self.package}.{self.names.file_stem}_protokit"

    @property
    def service_doc(self) -> str:
        extra = ", creates them in bulk and reports their changes as they happen" if self.streaming else ""
        text = f"{self.service} manages {self.plural_words}: it creates, reads, updates, deletes and lists them{extra}."
        return docstring_literal(_fill(text, LINE_LENGTH - 4 - 3), 4)

    @property
    def implementation_imports(self) -> tuple[tuple[str, ...], ...]:
        stdlib: list[Import] = [("", "bisect", ""), ("", "uuid", ""), ("collections.abc", "AsyncIterator", "")]
        stdlib.append(("collections.abc", "Mapping", ""))
        if self.streaming:
            stdlib += [("", "asyncio", ""), ("collections.abc", "Callable", ""), ("collections.abc", "Sequence", "")]
        third_party: list[Import] = [
            ("", "grpc", ""),
            module_import(self.pb2_module, "pb"),
            (self.protokit_module, f"{self.service}Base", ""),
            ("google.protobuf.timestamp_pb2", "Timestamp", ""),
            ("protokit", "runtime", ""),
            ("protokit.runtime", "InvalidArgument", ""),
            ("protokit.runtime", "NotFound", ""),
        ]
        if self.streaming:
            third_party.append(("protokit.runtime", "Fanout", ""))
        return (format_imports(stdlib), format_imports(third_party))

    @property
    def test_imports(self) -> tuple[tuple[str, ...], ...]:
        stdlib: list[Import] = [("", "asyncio", ""), ("typing", "Any", ""), ("typing", "TypeVar", "")]
        stdlib += [("collections.abc", name, "") for name in ("Awaitable", "Callable")]
        if self.streaming:
            stdlib += [("collections.abc", "AsyncIterator", ""), ("typing", "TypeAlias", "")]
        third_party: list[Import] = [
            ("", "grpc", ""),
            ("", "pytest", ""),
            module_import(self.pb2_module, "pb"),
            (self.protokit_module, f"{self.service}Client", "Client"),
            ("google.protobuf.field_mask_pb2", "FieldMask", ""),
            *(("protokit.runtime", name, "") for name in ("ServerSettings", "build_server", "close_channels")),
        ]
        first_party: list[Import] = [(self.implementation_module, self.service, "")]
        if self.streaming:
            first_party.append((self.implementation_module, "MAX_BATCH", ""))
        return (format_imports(stdlib), format_imports(third_party), format_imports(first_party))

    @property
    def main_imports(self) -> tuple[str, ...]:
        return format_imports([(self.implementation_module, self.service, "")])


def _fill(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


@dataclass
class _Plan:
    root: Path
    files: dict[str, str] = field(default_factory=dict)  # project-relative path -> content, in order
    hints: list[Hint] = field(default_factory=list)


def _check_package_clash(layout: Layout, package: str) -> None:
    """The generated top-level package of `package` must not be the implementation's or another
    package in the source root: one would hide the other on sys.path."""
    top = package.split(".")[0]
    implementation_top = layout.python_package.split(".")[0]
    source = layout.root / layout.source_root
    if top == implementation_top:
        raise ProtokitError(
            f"package {package!r} would make {layout.out}/{top} a Python package that clashes with the "
            f"implementation package {layout.python_package!r} ({layout.implementations}); choose another "
            f"--package, e.g. acme.{package}"
        )
    if ((source / top).exists() or (source / f"{top}.py").exists()) and source.resolve() != (
        layout.root / layout.out
    ).resolve():
        raise ProtokitError(
            f"package {package!r} would make {layout.out}/{top} a Python package that clashes with "
            f"{_join(layout.source_root, top)}; choose another --package"
        )


def _check_new_service(spec: _Spec, proto_path: str, impl_path: str, test_path: str) -> None:
    layout = spec.layout
    root = layout.root
    declared = re.compile(rf"(?m)^\s*service\s+{re.escape(spec.service)}\s*\{{")
    stem = spec.names.file_stem + ".proto"
    for proto in _protos(root, layout.modules):
        try:
            text = proto.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if declared.search(text):
            raise ProtokitError(f"service {spec.service} already exists in {_rel(proto, root)}")
        if proto.name == stem:
            raise ProtokitError(
                f"{_rel(proto, root)} already has the file name {stem}: its implementation would be "
                f"{impl_path} too; choose another service name"
            )
    for path, what in ((proto_path, "proto"), (impl_path, "implementation"), (test_path, "test")):
        if (root / path).exists() or (root / path).is_symlink():
            raise ProtokitError(f"{spec.service} already exists: its {what} file {path} is there")
    for directory in (layout.module, layout.out, layout.implementations, "tests"):
        blocker = _file_in_the_way(root, directory)
        if blocker:
            raise ProtokitError(f"{blocker} is a file, where the new service needs a directory")
    for path in (proto_path, impl_path, test_path):
        blocker = _file_in_the_way(root, str(Path(path).parent))
        if blocker:
            raise ProtokitError(f"{blocker} is a file, where the new service needs a directory")


def _defined_names(spec: _Spec) -> list[str]:
    """The top-level names the new proto defines in its package."""
    r, p = spec.resource, spec.plural
    names = [
        r,
        *(f"{verb}{r}{kind}" for verb in ("Get", "Create", "Update", "Delete") for kind in ("Request", "Response")),
    ]
    names += [f"List{p}Request", f"List{p}Response", spec.service]
    if spec.streaming:
        names += [
            f"{r}Event",
            *(f"{verb}{p}{kind}" for verb in ("BatchCreate", "Watch") for kind in ("Request", "Response")),
        ]
    return names


def _check_names_free(spec: _Spec, proto: Path) -> None:
    """Names of the new proto that another file of its package (its directory) defines already."""
    if not proto.parent.is_dir():
        return
    wanted = "|".join(re.escape(name) for name in _defined_names(spec))
    defined = re.compile(rf"(?m)^\s*(?:message|enum|service)\s+({wanted})\b")
    for sibling in sorted(proto.parent.glob("*.proto")):
        try:
            match = defined.search(sibling.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        if match:
            raise ProtokitError(
                f"{spec.package}.{match.group(1)} is already defined in {_rel(sibling, spec.layout.root)}; "
                f"choose another service name or --package"
            )


def _file_in_the_way(root: Path, directory: str) -> str | None:
    current = root
    for part in Path(directory).parts:
        if part in ("", "."):
            continue
        current = current / part
        if current.exists() and not current.is_dir():
            return _rel(current, root)
        if not current.exists():
            return None
    return None


def _plan_service(spec: _Spec) -> _Plan:
    layout = spec.layout
    root = layout.root
    plan = _Plan(root=root)
    proto_path = _join(layout.module, spec.proto_name)
    impl_path = _join(layout.implementations, f"{spec.names.file_stem}.py")
    test_path = f"tests/test_{spec.names.file_stem}.py"
    _check_new_service(spec, proto_path, impl_path, test_path)
    _check_package_clash(layout, spec.package)
    _check_names_free(spec, root / proto_path)

    plan.files[proto_path] = render("service.proto.j2", s=spec)
    plan.files[impl_path] = render("implementation.py.j2", s=spec)
    impl_dir = root / layout.implementations
    if not impl_dir.exists():
        plan.files[_join(layout.implementations, "__init__.py")] = render("init.py.j2", s=spec)
    main_path = _join(layout.implementations, "__main__.py")
    if (root / main_path).exists():
        plan.hints.append(
            Hint(
                main_path,
                f"exists, so it does not serve {spec.service} yet (`python -m {spec.implementation_module}` "
                f"serves it alone); to serve it with the others, add {spec.service}() to the services "
                "run(...) gets, and import it:",
                "\n".join(spec.main_imports),
            )
        )
    else:
        plan.files[main_path] = render("main.py.j2", s=spec)
    plan.files[test_path] = render("test_service.py.j2", s=spec)

    project = _project_view(spec, proto_path, impl_path)
    for path, template in (
        (BUF_YAML, "buf.yaml.j2"),
        (BUF_GEN_YAML, "buf.gen.yaml.j2"),
        (PYPROJECT, "pyproject.toml.j2"),
        (".gitignore", "gitignore.j2"),
        ("README.md", "README.md.j2"),
        (WORKFLOW, "contract.yml.j2"),
        ("Dockerfile", "Dockerfile.j2"),
        (".dockerignore", "dockerignore.j2"),
    ):
        if not (root / path).exists():
            plan.files[path] = render(template, p=project)
    if layout.gen is not None:
        plan.hints.extend(_gen_yaml_hints(spec))
    if (root / PYPROJECT).exists():
        plan.hints.extend(_pyproject_hints(root / PYPROJECT, spec))
    return plan


def _project_view(spec: _Spec, proto_path: str, impl_path: str) -> dict[str, Any]:
    layout = spec.layout
    where = [layout.source_root, layout.out] if layout.source_root != layout.out else [layout.out]
    distribution = layout.python_package.split(".")[0].replace("_", "-")
    return {
        "module": layout.module,
        "out": layout.out,
        "implementations": layout.implementations,
        "python_package": layout.python_package,
        "source_root": layout.source_root,
        "where": ", ".join(f'"{w}"' for w in where),
        "distribution": distribution,
        "service": spec.service,
        "service_full": spec.full_service,
        "package": spec.package,
        "proto": proto_path,
        "implementation": impl_path,
        "runtime_requirement": version.runtime_requirement(),
        "toolchain_requirement": version.toolchain_requirement(),
        "curl_create": _curl(spec, f"Create{spec.resource}", '{"displayName": "First"}'),
        "curl_get": _curl(spec, f"Get{spec.resource}", f'{{"id": "<the id Create{spec.resource} returned>"}}'),
        "modules": list(layout.modules),
    }


def _curl(spec: _Spec, method: str, body: str, port: int = 50051) -> str:
    return (
        f"buf curl --protocol grpc --http2-prior-knowledge -d {shlex.quote(body)} "
        f"http://127.0.0.1:{port}/{spec.full_service}/{method}"
    )


def _gen_yaml_hints(spec: _Spec) -> list[Hint]:
    gen = spec.layout.gen
    assert gen is not None
    out = spec.layout.out
    hints = []
    if not gen.implementations:
        hints.append(
            Hint(
                BUF_GEN_YAML,
                f"has no {PROTOKIT_PLUGIN} with implementations=DIR, which generates the servicer base and "
                f"client {spec.layout.implementations}/{spec.names.file_stem}.py imports; add this plugin:",
                f"  - local: {PROTOKIT_PLUGIN}\n    out: {out}\n    opt:\n"
                f"      - implementations={spec.layout.implementations}",
            )
        )
    if not gen.has_python or not gen.has_grpc:
        missing = []
        if not gen.has_python:
            missing.append(
                f"  - protoc_builtin: python\n    protoc_path: [python, -m, grpc_tools.protoc]\n    out: {out}"
            )
        if not gen.has_grpc:
            missing.append(f"  - local: protoc-gen-grpc_python\n    out: {out}")
        hints.append(
            Hint(BUF_GEN_YAML, "lacks the Python generators the service's code imports; add:", "\n".join(missing))
        )
    return hints


def _requires(requirements: object, distribution: str) -> bool:
    """Whether a list of PEP 508 requirements names `distribution` (names compare normalised)."""
    wanted = re.sub(r"[-_.]+", "-", distribution).lower()
    for requirement in _strings(requirements):
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        if name and re.sub(r"[-_.]+", "-", name.group(1)).lower() == wanted:
            return True
    return False


def _dependency_hints(data: dict[str, Any]) -> list[Hint]:
    """The runtime in [project] dependencies, the toolchain in the dev extra; and no "protokit", which on
    the package index is an unrelated project."""
    if _lookup(data, "project", "name") in (version.TOOLCHAIN, version.RUNTIME):
        return []
    hints = []
    deps = _lookup(data, "project", "dependencies")
    dev = _lookup(data, "project", "optional-dependencies", "dev")
    if _requires(deps, "protokit") or _requires(dev, "protokit"):
        hints.append(
            Hint(
                PYPROJECT,
                'requires "protokit", which on the package index is an unrelated project; remove it (the '
                f"runtime is {version.RUNTIME}, the toolchain {version.TOOLCHAIN})",
            )
        )
    if not _requires(deps, version.RUNTIME):
        hints.append(
            Hint(
                PYPROJECT,
                "does not depend on the runtime the generated code imports; add to [project] dependencies:",
                f'"{version.runtime_requirement()}"',
            )
        )
    if not _requires(dev, version.TOOLCHAIN):
        hints.append(
            Hint(
                PYPROJECT,
                "has no protokit toolchain for development and CI; add to [project.optional-dependencies] dev:",
                f'"{version.toolchain_requirement()}"',
            )
        )
    return hints


def _pyproject_hints(path: Path, spec: _Spec) -> list[Hint]:
    layout = spec.layout
    roots = [r for r in dict.fromkeys((layout.source_root, layout.out)) if r != "."]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [
            Hint(
                PYPROJECT,
                f"could not be read ({exc}); it needs {version.RUNTIME} as a dependency and these "
                f"importable package directories: {', '.join(roots)}",
            )
        ]
    hints = []
    hints.extend(_dependency_hints(data))
    packages = _lookup(data, "tool", "setuptools", "packages")
    listed = ", ".join(f'"{r}"' for r in roots)
    if isinstance(packages, list):
        hints.append(
            Hint(
                PYPROJECT,
                f"lists its packages explicitly ([tool.setuptools] packages); the service also needs "
                f"{layout.python_package} from {layout.source_root}/ and the generated packages in {layout.out}/, "
                "for example instead of the list:",
                f"[tool.setuptools.packages.find]\nwhere = [{listed}]",
            )
        )
    elif [r for r in roots if r not in _strings(_lookup(packages, "find", "where"))]:
        hints.append(
            Hint(
                PYPROJECT,
                "does not make every package the service needs installable (with setuptools; other "
                "build backends need the same directories):",
                f"[tool.setuptools.packages.find]\nwhere = [{listed}]",
            )
        )
    pythonpath = _strings(_lookup(data, "tool", "pytest", "ini_options", "pythonpath"))
    if [r for r in roots if r not in pythonpath]:
        hints.append(
            Hint(
                PYPROJECT,
                "does not put the packages on pytest's path, so the tests need an install first; to run "
                "them without one add:",
                f"[tool.pytest.ini_options]\npythonpath = [{listed}]",
            )
        )
    return hints


def _lookup(data: Any, *keys: str) -> Any:
    """data[k1][k2]... of parsed TOML, or None where a table is missing or not a table."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _strings(value: Any) -> list[str]:
    """A TOML string or array of strings as a list; anything else as []."""
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# --- writing ---------------------------------------------------------------------------------------


class _Transaction:
    """Creates files (never replacing one) and directories, and removes them all again on rollback."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[Path] = []
        self.dirs: list[Path] = []

    def mkdir(self, directory: Path) -> None:
        missing = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for d in reversed(missing):
            d.mkdir()
            self.dirs.append(d)

    def write(self, path: Path, content: str) -> None:
        self.mkdir(path.parent)
        with open(path, "x", encoding="utf-8", newline="\n") as fh:
            self.files.append(path)
            fh.write(content)

    def rollback(self) -> None:
        for path in reversed(self.files):
            path.unlink(missing_ok=True)
        for directory in reversed(self.dirs):
            _remove_tree_if_ours(directory)


def _remove_tree_if_ours(directory: Path) -> None:
    """Remove a directory this run created, with whatever gen or Python caches put inside it."""
    import shutil

    if directory.is_dir() and not directory.is_symlink():
        shutil.rmtree(directory, ignore_errors=True)


# --- new service -----------------------------------------------------------------------------------


def default_package(name: ServiceName) -> str:
    return f"{name.snake}.v1"


def new_service(
    name: str, directory: Path | str = ".", package: str | None = None, streaming: bool = True
) -> ServiceResult:
    """Create the service NAME in `directory` (a new project, or the protokit project it belongs to)."""
    names = parse_service_name(name)
    if package is not None:
        check_package(package)
    else:
        package = default_package(names)
        check_package(package, origin=" (the default from the service name; choose one with --package)")
    target = Path(directory).absolute()
    if target.exists() and not target.is_dir():
        raise ProtokitError(f"{directory} is not a directory")
    blocker = next((p for p in target.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ProtokitError(f"{blocker} is not a directory")
    layout = _layout(target, names, package)
    proto_dir = _join(layout.module, package.replace(".", "/"))
    proto_name = f"{package.replace('.', '/')}/{names.file_stem}.proto"
    spec = _Spec(
        names=names,
        package=package,
        streaming=streaming,
        layout=layout,
        proto_name=proto_name,
        options=tuple(_sibling_options(layout.root / proto_dir)),
    )
    plan = _plan_service(spec)
    new_top = not (layout.root / layout.out / package.split(".")[0]).exists()
    transaction = _Transaction(layout.root)
    try:
        transaction.mkdir(layout.root)
        for path, content in plan.files.items():
            transaction.write(layout.root / path, content)
        generated = _generate(layout.root)
    except OSError as exc:
        transaction.rollback()
        where = f" {exc.filename}" if exc.filename else ""
        raise ProtokitError(f"cannot write{where}: {exc.strerror or exc}; nothing was written") from exc
    except ProtokitError as exc:
        transaction.rollback()
        raise ProtokitError(
            "protokit gen failed on the new service, so nothing was written", exc.lines or [exc.message]
        ) from exc
    except BaseException:
        transaction.rollback()
        raise
    result = ServiceResult(
        root=layout.root,
        service=spec.full_service,
        proto=_join(layout.module, proto_name),
        new_project=not layout.has_buf_yaml,
        created=list(plan.files),
        generated_files=generated,
        hints=plan.hints,
    )
    result.next_steps = _service_next_steps(spec, result, added_top_level=new_top and layout.has_buf_yaml)
    return result


def _generate(root: Path) -> int:
    """`protokit gen` in-process; the implementation file exists already, so gen leaves it alone."""
    from protokit import gen

    project = config.load_project(root)
    result = gen.generate(project, config.load_gen_config(project))
    return result.files


def _cd(root: Path) -> str | None:
    cwd = Path.cwd().resolve()
    resolved = root.resolve()
    if resolved == cwd:
        return None
    try:
        return f"cd {shlex.quote(os.path.relpath(resolved, cwd))}"
    except ValueError:  # another drive
        return f"cd {shlex.quote(str(resolved))}"


def _service_next_steps(spec: _Spec, result: ServiceResult, added_top_level: bool) -> list[str]:
    steps = []
    cd = _cd(result.root)
    if cd:
        steps.append(cd)
    test = f"tests/test_{spec.names.file_stem}.py"
    if result.new_project:
        steps.append("pip install -e . && pytest")
    elif added_top_level:
        steps.append(f"pip install -e . && pytest {test}   # again: {spec.package.split('.')[0]} is a new package")
    else:
        steps.append(f"pytest {test}")
    steps.append("protokit lint && protokit gen --check")
    if result.new_project and not (result.root / ".git").exists():
        steps.append(f'git init -q && git add -A && git commit -qm "Add {spec.service}"')
    steps.append("protokit breaking --against HEAD   # after a commit: the contract gate CI runs")
    if any(h.path.endswith("__main__.py") for h in result.hints):
        steps.append(f"python -m {spec.implementation_module} --port 50051")
    else:
        steps.append(f"python -m {spec.layout.python_package} --port 50051")
    steps.append(_curl(spec, f"Create{spec.resource}", '{"displayName": "First"}'))
    steps.append(_curl(spec, f"Get{spec.resource}", '{"id": "<id from the response>"}'))
    return steps


# --- new proto -------------------------------------------------------------------------------------


def new_proto(path: Path | str, cwd: Path | None = None) -> ProtoResult:
    """Create one lint-clean proto file at `path` (relative to `cwd`) inside a module of the project."""
    here = (cwd or Path.cwd()).absolute()
    raw = str(path)
    target = Path(os.path.normpath(here / path))
    if target.suffix != ".proto":
        raise ProtokitError(f"{raw}: a proto file name ends in .proto, e.g. protos/acme/inventory/v1/stock.proto")
    root = config.find_root(here)
    if not (root / BUF_YAML).is_file():
        # Without one, where the file goes (which module, which package) is a guess.
        raise ProtokitError(f"no {BUF_YAML} found in {here} or any parent directory (run `protokit new service`)")
    project = config.load_project(root)
    module = next((m for m in project.modules if target.is_relative_to(root / m.path if m.path != "." else root)), None)
    if module is None:
        roots = ", ".join(f"{m.path}/" for m in project.modules)
        raise ProtokitError(f"{raw} is outside the module roots of {BUF_YAML} ({roots})")
    module_dir = root if module.path == "." else root / module.path
    rel = target.relative_to(module_dir)
    if target.exists() or target.is_symlink():
        raise ProtokitError(f"{raw} already exists")
    blocker = _file_in_the_way(root, _rel(target.parent, root))
    if blocker:
        raise ProtokitError(f"{blocker} is a file, where {raw} needs a directory")
    stem = rel.stem
    if not _LOWER_SNAKE.fullmatch(stem):
        raise ProtokitError(
            f"{raw}: the file name {rel.name!r} is not lower_snake_case (a-z, 0-9, _, starting with a letter)"
        )
    directories = rel.parent.parts
    if not directories:
        raise ProtokitError(
            f"{raw}: a proto needs a package, which is its directory under {module.path}/: put it in a "
            f"versioned directory, e.g. {_join(module.path, 'acme/inventory/v1', rel.name)}"
        )
    package = ".".join(directories)
    check_package(package, what=f"{raw}: package", origin=" (from its directory)")
    message = pascal_case(stem)
    if keyword.iskeyword(message) or message == "DESCRIPTOR":
        raise ProtokitError(f"{raw}: the message would be named {message!r}, a Python keyword or reserved name")
    defined = re.compile(rf"(?m)^\s*(?:message|enum|service)\s+{re.escape(message)}\b")
    for sibling in sorted(target.parent.glob("*.proto")) if target.parent.is_dir() else []:
        try:
            text = sibling.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if defined.search(text):
            raise ProtokitError(f"{package}.{message} is already defined in {_rel(sibling, root)}")
    view = {"package": package, "message": message, "options": _sibling_options(target.parent)}
    content = render("proto.proto.j2", p=view)
    transaction = _Transaction(root)
    try:
        transaction.write(target, content)
    except OSError as exc:
        transaction.rollback()
        raise ProtokitError(f"cannot write {raw}: {exc.strerror or exc}") from exc
    except BaseException:
        transaction.rollback()
        raise
    display = _rel(target, root)
    steps = ["protokit lint", "protokit gen"]
    return ProtoResult(root=root, path=display, package=package, message=message, created=[display], next_steps=steps)


# --- rendering -------------------------------------------------------------------------------------


def render_service(result: ServiceResult, fmt: str = "text") -> None:
    """Print what `new service` did: created files, hints for existing files, next steps."""
    if fmt == "json":
        sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
        return
    from rich.markup import escape

    from protokit.report import stdout_console

    out = stdout_console()
    where = "a new project" if result.new_project else "the project"
    out.print(f"[green]✓[/] {escape(result.service)} in {where} at {escape(str(result.root))}")
    for path in result.created:
        out.print(f"  [green]+[/] {escape(path)}")
    out.print(f"  [green]✓[/] protokit gen: {result.generated_files} generated files")
    for hint in result.hints:
        out.print(f"[yellow]note:[/] {escape(hint.path)} {escape(hint.message)}")
        if hint.snippet:
            out.print(textwrap.indent(escape(hint.snippet), "    "))
    _render_steps(out, result.next_steps)


def render_proto(result: ProtoResult, fmt: str = "text") -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
        return
    from rich.markup import escape

    from protokit.report import stdout_console

    out = stdout_console()
    out.print(f"[green]+[/] {escape(result.path)} (package {escape(result.package)}, message {escape(result.message)})")
    _render_steps(out, result.next_steps)


def _render_steps(out: Any, steps: Sequence[str]) -> None:
    from rich.markup import escape

    if steps:
        out.print("\n[bold]Next steps:[/]")
        for step in steps:
            out.print(f"  {escape(step)}")
