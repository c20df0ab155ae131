"""The .proto files of a project's modules: their text, content hashes and import graph.

The import graph comes from a cheap scan of `import` statements, so an unchanged tree can be
recognised without running protoc. Over-approximating (an import inside a comment) only costs
cache precision, never correctness.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from protokit.config import Module, Project
from protokit.errors import ProtokitError
from protokit.toolchain import VALIDATE_PROTO

_SERVICE = re.compile(rb"(?m)^\s*service\s+[A-Za-z_]\w*\s*\{")
_PACKAGE = re.compile(rb"\bpackage\s+([A-Za-z_][\w.]*)\s*;")
# Both quote styles are valid proto string literals.
_IMPORT = re.compile(rb"""\bimport\s+(?:(public|weak|option)\s+)?(?:"([^"]+)"|'([^']+)')\s*;""")


@dataclass(frozen=True)
class ProtoFile:
    name: str  # path relative to its module root, as protoc and imports know it
    module: str  # module directory relative to the project root
    digest: str  # sha256 of the file's bytes
    imports: tuple[str, ...]
    public_imports: tuple[str, ...]
    package: str = ""  # from the same cheap scan; the compiler has the final word
    has_service: bool = False

    @property
    def display(self) -> str:
        """The file's path relative to the project root."""
        return self.name if self.module == "." else f"{self.module}/{self.name}"


@dataclass(frozen=True)
class SourceSet:
    files: dict[str, ProtoFile]  # by name

    @property
    def imports_validate(self) -> bool:
        """Whether any file imports buf/validate/validate.proto, which protokit supplies (see compile)."""
        return any(VALIDATE_PROTO in f.imports for f in self.files.values())

    def dependency_closure(self, name: str) -> list[str]:
        """Files `name` can see symbols from: direct imports plus, recursively, their public imports."""
        seen: list[str] = []
        stack = list(self.files[name].imports)
        while stack:
            dep = stack.pop()
            if dep in seen:
                continue
            seen.append(dep)
            if dep in self.files:
                stack.extend(self.files[dep].public_imports)
        return sorted(seen)


def _scan(module: Module, root: Path) -> list[Path]:
    base = root / module.path
    excluded = [root / e for e in module.excludes]
    found = []
    for path in base.rglob("*.proto"):
        if any(path.is_relative_to(e) for e in excluded):
            continue
        if any(part.startswith(".") for part in path.relative_to(base).parts):
            continue  # hidden directories (.git, .venv) are never part of a module
        found.append(path)
    return found


def load_sources(project: Project, modules: tuple[str, ...] | None = None) -> SourceSet:
    """Read every .proto file of the given modules (all modules by default)."""
    files: dict[str, ProtoFile] = {}
    for module in project.modules:
        if modules is not None and module.path not in modules:
            continue
        base = project.root / module.path
        for path in _scan(module, project.root):
            name = path.relative_to(base).as_posix()
            data = path.read_bytes()
            matches = [(kind, (double or single).decode()) for kind, double, single in _IMPORT.findall(data)]
            file = ProtoFile(
                name=name,
                module=module.path,
                digest=hashlib.sha256(data).hexdigest(),
                imports=tuple(sorted({target for _, target in matches})),
                public_imports=tuple(sorted({target for kind, target in matches if kind == b"public"})),
                package=package.group(1).decode() if (package := _PACKAGE.search(data)) else "",
                has_service=_SERVICE.search(data) is not None,
            )
            if name in files:
                other = files[name]
                raise ProtokitError(
                    f"{file.display} and {other.display} both define {name}: "
                    "module roots must not contain the same relative path"
                )
            files[name] = file
    return SourceSet(files=dict(sorted(files.items())))
