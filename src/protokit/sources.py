"""The .proto files of a project's modules: their text, content hashes and import graph.

The import graph comes from a cheap scan of `import` statements, so an unchanged tree can be
recognised without running protoc. Over-approximating (an import inside a comment) only costs
cache precision, never correctness.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from protokit.config import Module, Project
from protokit.errors import ConfigError, ProtokitError
from protokit.toolchain import VALIDATE_PROTO

# The keyword patterns start with the keyword itself, so the regex engine can jump between its
# occurrences (10x faster than a leading \b or ^\s*); _keyword_starts checks what comes before.
_SERVICE = re.compile(rb"service\s+[A-Za-z_]\w*\s*\{")
_EXTEND = re.compile(rb"extend\s+\.?[A-Za-z_][\w.]*\s*\{")
_PACKAGE = re.compile(rb"\bpackage\s+([A-Za-z_][\w.]*)\s*;")
# Both quote styles are valid proto string literals.
# String literals (kept), and runs of comments and whitespace (each becomes one space): the shape of a file.
_TOKENS = re.compile(rb"\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|(?:\s|//[^\n]*|/\*.*?\*/)+", re.S)


def _shape(match: re.Match[bytes]) -> bytes:
    token = match.group()
    return token if token[:1] in (b'"', b"'") else b" "


def shape(data: bytes) -> bytes:
    """A .proto file's bytes without comments, each run of whitespace and comments one space."""
    return _TOKENS.sub(_shape, data).strip()


_IMPORT = re.compile(rb"""import\s+(?:(public|weak|option)\s+)?(?:"([^"]+)"|'([^']+)')\s*;""")
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _keyword_starts(data: bytes, start: int) -> bool:
    """Whether a keyword at `start` is a word of its own (not the end of `reimport`)."""
    return start == 0 or data[start - 1] not in _WORD


def _starts_line(data: bytes, start: int) -> bool:
    """Whether only whitespace comes before `start` on its line."""
    before = data[data.rfind(b"\n", 0, start) + 1 : start]
    return not before or before.isspace()


@dataclass(frozen=True)
class ProtoFile:
    name: str  # path relative to its module root, as protoc and imports know it
    module: str  # module directory relative to the project root
    digest: str  # sha256 of the file's bytes
    imports: tuple[str, ...]
    public_imports: tuple[str, ...]
    package: str = ""  # from the same cheap scan; the compiler has the final word
    has_service: bool = False
    has_extend: bool = False  # declares extensions (custom options): see SourceSet.key_closure
    # sha256 of the file without its comments and with each whitespace run as one space: what an importer's
    # output can depend on (a comment-only edit changes only the file's own outputs).
    shape_digest: str = ""

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

    def key_closure(self, name: str) -> list[str]:
        """The files whose shape `name`'s generated code can depend on: those it sees (imports and their
        public imports, whose types it names), and, for any of them declaring extensions, everything
        that file imports: a custom option's value is serialized with its message type, which may live
        further away (http.proto behind annotations.proto). A file further away that declares no option
        it can use cannot change its output, so editing it does not regenerate `name`."""
        seen = self.dependency_closure(name)
        found = set(seen)
        for dep in seen:
            if dep in self.files and self.files[dep].has_extend:
                found.update(self.import_closure(dep))
        return sorted(found)

    def import_closure(self, name: str) -> list[str]:
        """Every file `name` imports, directly or through other imports (public or not): all that its
        compilation reads, so all its generated code can depend on (option types two imports away)."""
        seen: set[str] = set()
        stack = list(self.files[name].imports)
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                if dep in self.files:
                    stack.extend(self.files[dep].imports)
        return sorted(seen)

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


def check_modules_have_files(project: Project) -> None:
    """buf refuses a module without .proto files ("had no .proto files"): a typo in `path:` or
    `includes:` would otherwise lint and generate nothing, and pass."""
    for module in project.modules:
        if next(_scan(module, project.root), None) is None:
            under = f" under its includes ({', '.join(module.includes)})" if module.includes else ""
            raise ConfigError(module.where, f'module "{module.path}" has no .proto files{under}')


def _scan(module: Module, root: Path) -> Iterator[tuple[str, str]]:
    """(name relative to the module root, path) of every .proto file of the module."""
    base = os.path.normpath(os.path.join(root, module.path))
    excluded = {os.path.normpath(os.path.join(root, e)) for e in module.excludes}
    tops = [os.path.normpath(os.path.join(root, i)) for i in module.includes] or [base]
    # An include inside another include would list its files twice.
    tops = [t for t in tops if not any(t.startswith(o + os.sep) for o in tops)]
    for dirpath, dirnames, filenames in (step for top in sorted(tops) for step in os.walk(top)):
        # Hidden directories (.git, .venv) are never part of a module.
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and os.path.join(dirpath, d) not in excluded]
        rel = os.path.relpath(dirpath, base)
        for filename in filenames:
            if filename.endswith(".proto") and not filename.startswith("."):
                name = filename if rel == "." else f"{rel}/{filename}".replace(os.sep, "/")
                yield name, os.path.join(dirpath, filename)


def load_sources(project: Project, modules: tuple[str, ...] | None = None) -> SourceSet:
    """Read every .proto file of the given modules (all modules by default)."""
    files: dict[str, ProtoFile] = {}
    for module in project.modules:
        if modules is not None and module.path not in modules:
            continue
        for name, path in _scan(module, project.root):
            with open(path, "rb") as fh:
                data = fh.read()
            matches = [
                (m[1], (m[2] or m[3]).decode()) for m in _IMPORT.finditer(data) if _keyword_starts(data, m.start())
            ]
            file = ProtoFile(
                name=name,
                module=module.path,
                digest=hashlib.sha256(data).hexdigest(),
                imports=tuple(sorted({target for _, target in matches})),
                public_imports=tuple(sorted({target for kind, target in matches if kind == b"public"})),
                package=package.group(1).decode() if (package := _PACKAGE.search(data)) else "",
                has_service=any(_starts_line(data, m.start()) for m in _SERVICE.finditer(data)),
                has_extend=any(_keyword_starts(data, m.start()) for m in _EXTEND.finditer(data)),
                shape_digest=hashlib.sha256(shape(data)).hexdigest(),
            )
            if name in files:
                other = files[name]
                raise ProtokitError(
                    f"{file.display} and {other.display} both define {name}: "
                    "module roots must not contain the same relative path"
                )
            files[name] = file
    return SourceSet(files=dict(sorted(files.items())))
