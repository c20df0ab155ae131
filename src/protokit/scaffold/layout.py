"""Where a new service goes: the project a directory belongs to, its layout (module root, generated code,
implementation package) and what its buf.gen.yaml and existing protos already say."""

from __future__ import annotations

import keyword
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from protokit import config
from protokit.errors import ProtokitError
from protokit.scaffold.names import ServiceName, python_package_name

BUF_YAML = "buf.yaml"
BUF_GEN_YAML = "buf.gen.yaml"
PYPROJECT = "pyproject.toml"
DEFAULT_MODULE = "protos"
DEFAULT_OUT = "generated"
DEFAULT_SOURCE_ROOT = "src"
PROTOKIT_PLUGIN = "protoc-gen-protokit"

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


@dataclass(frozen=True)
class GenInfo:
    """What an existing buf.gen.yaml says about the Python output (best effort: gen validates it)."""

    out: str | None = None
    implementations: str | None = None
    has_python: bool = False
    has_grpc: bool = False


def gen_info(project: config.Project) -> GenInfo:
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


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


def package_of(root: Path, directory: Path) -> tuple[str, Path]:
    """The dotted package a directory is imported as, and the directory that must be on sys.path:
    the chain of parent directories holding __init__.py."""
    parts = [directory.name]
    top = directory
    while top.parent != root and (top.parent / "__init__.py").is_file():
        top = top.parent
        parts.insert(0, top.name)
    return ".".join(parts), top.parent


def find_layout(directory: Path, names: ServiceName, package: str) -> Layout:
    found = _project_root(directory)
    root = found or directory
    top = package.split(".")[0]
    project = config.load_project(root)
    modules = tuple(m.path for m in project.modules) if found is not None else (DEFAULT_MODULE,)
    gen = gen_info(project) if (root / BUF_GEN_YAML).is_file() else None
    out = (gen.out if gen else None) or DEFAULT_OUT
    if gen is not None and gen.implementations:
        implementations = gen.implementations
        if os.path.isabs(implementations) or implementations.startswith("..") or implementations == ".":
            raise ProtokitError(f"{BUF_GEN_YAML}: implementations={implementations} must be a directory in the project")
        python_package, source = package_of(root, root / implementations)
    else:
        python_package = python_package_name(names.snake, names.file_stem, {top})
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
        source_root=relative(source, root),
        gen=gen,
    )


def join_path(*parts: str) -> str:
    return "/".join(p for p in parts if p and p != ".")


def protos(root: Path, modules: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for module in modules:
        base = root / module
        if base.is_dir():
            found.extend(p for p in base.rglob("*.proto") if p.is_file())
    return sorted(found)


def sibling_options(directory: Path) -> list[str]:
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


def file_in_the_way(root: Path, directory: str) -> str | None:
    current = root
    for part in Path(directory).parts:
        if part in ("", "."):
            continue
        current = current / part
        if current.exists() and not current.is_dir():
            return relative(current, root)
        if not current.exists():
            return None
    return None
