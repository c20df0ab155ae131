"""Adopting a team's existing protos: the protokit project around them, planned before anything is written.

`protokit new service --from PATH...` makes a project *around* protos that already exist and never touches
them. `plan_adoption` works out what that project is:

- module roots for any layout (`proto/`, the repository root, nested directories, packages that do not
  match their directory) such that every import resolves and no file lies in two modules;
- the deps the imports need, which protokit serves offline (googleapis, protovalidate);
- the text of buf.yaml, or, when one exists, `Hint`s saying what it lacks;
- a lint baseline: today's buf findings as `ignore_only` entries, so `protokit lint` is green on day one
  and reports every new violation.

Protos that do not compile, import what nothing can serve, define no service or would generate Python
that cannot be imported are errors. Nothing is written here: the plan is the caller's to write.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from protokit import cache, toolchain
from protokit.bufformats import IgnoreBaseline, ignore_baseline, ignore_only_lines, to_ignore_yaml
from protokit.compile import GOOGLEAPIS_DEP, VALIDATE_DEP, build_descriptor_set
from protokit.config import BUF_WORK_YAML, BUF_YAML, Module, Project, load_project
from protokit.config.yamlfile import load as load_yaml
from protokit.errors import Location, ProtokitError
from protokit.findings import Finding
from protokit.scaffold.hints import Hint
from protokit.sources import ProtoFile, SourceSet, load_sources

# protoc-gen-validate's rules: no installed wheel ships this file, so protokit cannot serve it offline.
PGV_PROTO = "validate/validate.proto"
WKT_PREFIX = "google/protobuf/"
# Where buf.build/googleapis/googleapis puts what teams import (googleapis-common-protos ships them).
GOOGLEAPIS_PREFIXES = ("google/api/", "google/rpc/", "google/type/", "google/longrunning/")
# PY findings that make generated code fail to import: a baseline would hide a broken service.
UNIMPORTABLE_RULES = frozenset(
    {
        "PY_FILE_NAME_IMPORTABLE",
        "PY_PACKAGE_KEYWORD",
        "PY_NAME_KEYWORD",
        "PY_MODULE_COLLISION",
        "PY_PACKAGE_SHADOWS_STDLIB",
        "PY_PACKAGE_SHADOWS_DEPENDENCY",
    }
)
DEFAULT_LINT_USE = ("STANDARD",)
DEFAULT_BREAKING_USE = ("FILE",)


# --- the plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdoptedService:
    name: str  # full name: user.v1.UserService
    file: str  # project-relative path of the file defining it


@dataclass(frozen=True)
class LintBaseline:
    """Today's lint findings of the adopted protos, recorded so that only new ones are reported."""

    findings: tuple[Finding, ...]
    entries: IgnoreBaseline  # buf's rules for buf.yaml, protokit's own for pyproject.toml

    @property
    def count(self) -> int:
        return len(self.findings)

    @property
    def buf_count(self) -> int:
        """The findings of buf's rules: the ones buf.yaml's ignore_only records."""
        return sum(1 for f in self.findings if f.source == "buf")

    @property
    def ignore_only(self) -> dict[str, list[str]]:
        """buf's rules -> project-relative files, for a v2 buf.yaml's `lint: ignore_only:`."""
        return self.entries.blocks.get((BUF_YAML, "v2"), {})

    def pyproject_toml(self) -> str:
        """protokit's own (non-blocking PY) rules as pyproject.toml's ignore_only table; "" if none."""
        if not self.entries.own:
            return ""
        lines = ["[tool.protokit.lint.ignore_only]"]
        # JSON's string arrays are TOML's too (as to_ignore_yaml prints them).
        lines += [f"{rule} = {json.dumps(paths)}" for rule, paths in self.entries.own.items()]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AdoptionPlan:
    root: Path
    modules: tuple[Module, ...]  # the project's modules: buf.yaml's (kept) and the ones it lacks
    deps: tuple[str, ...]  # what the imports need, all served offline
    given: tuple[str, ...]  # the named .proto files, project-relative
    extra: tuple[str, ...]  # other files the modules hold (compiled, linted and baselined too)
    services: tuple[AdoptedService, ...]  # the services of the named files
    baseline: LintBaseline
    buf_yaml: str | None  # a new buf.yaml's text; None when one exists (then see hints)
    hints: tuple[Hint, ...]  # what an existing buf.yaml lacks
    image: bytes = field(repr=False)  # the modules compiled, with imports and source info


def plan_adoption(
    root: Path, paths: Sequence[str | Path], *, lint_use: Sequence[str] = DEFAULT_LINT_USE
) -> AdoptionPlan:
    """The project around the protos under `paths` (files or directories inside `root`; relative paths
    are relative to the current directory, as a user types them). Raises ProtokitError (one line per
    problem) when they cannot be adopted; reads, compiles and lints, but writes nothing."""
    root = root.resolve()
    given, scanned = _read_given(root, paths)
    existing = _existing_project(root)
    modules, hints = _layout(root, given, scanned, existing)
    sources = load_sources(Project(root, modules))
    needed = _deps(root, sources)
    if existing is None:
        project = _planned_project(root, modules, needed, lint_use)
    else:
        hints += _dep_hints(existing, needed)
        project = replace(existing, modules=modules, deps=tuple(sorted({*existing.deps, *needed})))
    names = {f.display: name for name, f in sources.files.items()}
    _check_in_modules(given, names)
    image = build_descriptor_set(project, cache.cache_dir(), sorted(sources.files), [m.path for m in modules])
    services = _services(image, {names[g]: g for g in given})
    baseline = _baseline(project)
    text = None
    if existing is None:
        text = render_buf_yaml(modules, needed, lint_use, DEFAULT_BREAKING_USE, baseline)
    else:
        hints += _baseline_hints(project, baseline)
    return AdoptionPlan(
        root=root,
        modules=modules,
        deps=project.deps,
        given=tuple(given),
        extra=tuple(sorted(set(names) - set(given))),
        services=services,
        baseline=baseline,
        buf_yaml=text,
        hints=tuple(hints),
        image=image,
    )


# --- the named files -----------------------------------------------------------------------------------


def _read_given(root: Path, paths: Sequence[str | Path]) -> tuple[list[str], dict[str, ProtoFile]]:
    """The named .proto files (project-relative), and every file under their directories by path: the
    files an import between them can name."""
    if not paths:
        raise ProtokitError("name the .proto files or directories to adopt")
    files: list[str] = []
    dirs: list[str] = []
    for raw in paths:
        target = Path(raw).resolve()
        if not target.exists():
            raise ProtokitError(f"{raw}: no such file or directory")
        if not target.is_relative_to(root):
            raise ProtokitError(f"{raw} is outside the project ({root})")
        rel = target.relative_to(root).as_posix()
        if target.is_dir():
            dirs.append(rel)
        elif target.suffix != ".proto":
            raise ProtokitError(f"{raw}: not a .proto file")
        else:
            files.append(rel)
    tops = set(dirs) | {posixpath.dirname(f) or "." for f in files}
    scanned = {
        f.display: f
        for top in sorted(t for t in tops if not any(o != t and _contains(o, t) for o in tops))
        for f in load_sources(Project(root, (Module(top),))).files.values()
    }
    for f in files:
        if f not in scanned:
            raise ProtokitError(f"{f}: protokit does not read hidden files or directories")
    given = sorted({p for p in scanned if p in files or any(_contains(d, p) for d in dirs)})
    if not given:
        raise ProtokitError(f"no .proto files in {', '.join(str(p) for p in paths)}")
    return given, scanned


def _check_in_modules(given: Sequence[str], names: Mapping[str, str]) -> None:
    """Only an existing buf.yaml's `includes` can leave a named file out of every module."""
    missing = [p for p in given if p not in names]
    if missing:
        raise ProtokitError(
            f"{', '.join(missing)}: in a module directory of {BUF_YAML} but not under its includes; add their "
            "directories to the module's includes"
        )


def _existing_project(root: Path) -> Project | None:
    if (root / BUF_YAML).is_file() or (root / BUF_WORK_YAML).is_file():
        return load_project(root)
    return None


# --- module roots -------------------------------------------------------------------------------------


def _contains(root: str, path: str) -> bool:
    """Whether `path` (a file or directory, project-relative) lies in the directory `root`."""
    return root == "." or path == root or path.startswith(root + "/")


def _depth(directory: str) -> int:
    return 0 if directory == "." else directory.count("/") + 1


def _directory(path: str) -> str:
    return posixpath.dirname(path) or "."


def _name_under(root: str, path: str) -> str:
    """The file's name in a module rooted at `root`: what imports call it."""
    return path if root == "." else path[len(root) + 1 :]


def _root_for(path: str, name: str) -> str | None:
    """The root that makes `path` known as `name`, if its path ends with that name."""
    if path == name:
        return "."
    return path[: -len(name) - 1] if path.endswith("/" + name) else None


def preferred_root(path: str, package: str) -> str | None:
    """The root buf's PACKAGE_DIRECTORY_MATCH expects: the directory holding the package's path
    (proto/user/v1/x.proto in package user.v1 -> proto); None when the directory does not end with it."""
    return _root_for(_directory(path), package.replace(".", "/")) if package else None


@dataclass(frozen=True)
class _Use:
    """An import that names a scanned file, and the root that makes the name resolve."""

    importer: str
    name: str
    root: str

    def where(self, root: Path) -> str:
        return str(_import_location(root, self.importer, self.name))


class _Roots:
    """Roots chosen so far, and the files already relying on one. A file belongs to the deepest root
    holding it (an outer module excludes the inner one), so a new root must not come between a placed
    file and its root: that would change the file's name and break the imports naming it."""

    def __init__(self, roots: Iterable[str], placed: Mapping[str, str]) -> None:
        self.chosen = set(roots)
        self.placed = dict(placed)

    def owner(self, path: str) -> str | None:
        holding = [r for r in self.chosen if _contains(r, path)]
        return max(holding, key=_depth, default=None)

    def stolen(self, root: str) -> list[str]:
        """Placed files that `root` would take from their shallower root."""
        return [
            p for p, r in self.placed.items() if _contains(root, p) and _depth(r) < _depth(root) and _contains(r, root)
        ]

    def place(self, path: str) -> str:
        owner = self.owner(path)
        if owner is None:  # every caller adds a root first
            raise AssertionError(path)
        self.placed[path] = owner
        return owner


def module_roots(
    given: Sequence[str],
    scanned: Mapping[str, ProtoFile],
    fixed: Mapping[str, str] | None = None,
    existing: Iterable[str] = (),
    *,
    root: Path = Path("."),
) -> dict[str, str]:
    """Each named file's module root (project-relative paths throughout).

    1. Imports first: a file imported as "v1/y.proto" that lies at api/v1/y.proto needs the root api;
       two imports needing different roots for one file, or a root that would take a file from the
       root its importers need, are errors naming the imports.
    2. Then buf's PACKAGE_DIRECTORY_MATCH layout, where it fits: proto/user/v1/x.proto in package
       user.v1 gets proto (nested in a shallower root when it takes no other file from it).
    3. A file whose directory does not match its package joins the root holding it, or gets its own
       directory (shallowest first, so nested mismatched files share one root).
    `existing` are the module roots of a buf.yaml, `fixed` the files already in one: file -> its root.
    """
    fixed = fixed or {}
    roots = _Roots({*existing, *fixed.values()}, fixed)
    _place_imported(roots, given, scanned, root)
    rest = [p for p in given if p not in roots.placed]
    preferred = {p: r for p in rest if (r := preferred_root(p, scanned[p].package)) is not None}
    for path in sorted(preferred, key=lambda p: (_depth(preferred[p]), p)):
        wanted, owner = preferred[path], roots.owner(path)
        if owner is None or (_depth(owner) < _depth(wanted) and not roots.stolen(wanted)):
            roots.chosen.add(wanted)
        roots.place(path)
    for path in sorted((p for p in rest if p not in preferred), key=lambda p: (_depth(_directory(p)), p)):
        if roots.owner(path) is None:
            roots.chosen.add(_directory(path))
        roots.place(path)
    return {p: roots.placed[p] for p in given}


def _place_imported(roots: _Roots, given: Sequence[str], scanned: Mapping[str, ProtoFile], root: Path) -> None:
    """Add the roots imports between the scanned files need, and place the files they name."""
    uses = _import_uses(given, scanned)
    for target, found in sorted(uses.items()):
        wanted = {u.root for u in found}
        if len(wanted) > 1:
            lines = [f'{u.where(root)}: imports {target} as "{u.name}" (module root {u.root})' for u in found]
            raise ProtokitError(f"{target} is imported under {len(wanted)} different names", lines)
        roots.chosen.update(wanted)
    for target, found in sorted(uses.items()):
        use = found[0]
        if target in roots.placed and roots.placed[target] != use.root:
            raise ProtokitError(
                f'{use.where(root)}: imports "{use.name}", but {target} belongs to the module '
                f'"{roots.placed[target]}" of {BUF_YAML}, where it is "{_name_under(roots.placed[target], target)}"'
            )
        owner = roots.place(target)  # its root holds it, but a deeper one would take it
        if owner != use.root:
            theirs = next((u for us in uses.values() for u in us if u.root == owner), None)
            why = f'{theirs.where(root)} imports "{theirs.name}"' if theirs else f"{BUF_YAML} has it"
            raise ProtokitError(
                f'{use.where(root)}: imports "{use.name}", which needs the module root "{use.root}", but '
                f'"{owner}" must be a module root too ({why}) and would know {target} as "{_name_under(owner, target)}"'
            )


def _import_uses(given: Sequence[str], scanned: Mapping[str, ProtoFile]) -> dict[str, list[_Use]]:
    """Imports of the named files that name a scanned file: target path -> its uses."""
    by_base: dict[str, list[str]] = {}
    for path in scanned:
        by_base.setdefault(posixpath.basename(path), []).append(path)
    named = set(given)
    uses: dict[str, list[_Use]] = {}
    for importer in given:
        for name in scanned[importer].imports:
            if name.startswith(WKT_PREFIX):
                continue
            found = [(p, r) for p in by_base.get(posixpath.basename(name), []) if (r := _root_for(p, name)) is not None]
            if found:
                # The file its importer's own root would hold, then a named one: the likeliest meant.
                path, at = min(found, key=lambda c: (not _contains(c[1], importer), c[0] not in named, c[0]))
                uses.setdefault(path, []).append(_Use(importer, name, at))
    return uses


# --- modules -------------------------------------------------------------------------------------------


def _layout(
    root: Path, given: list[str], scanned: dict[str, ProtoFile], existing: Project | None
) -> tuple[tuple[Module, ...], list[Hint]]:
    """The project's modules, and (with a buf.yaml) hints for what it lacks."""
    if existing is None:
        placed = module_roots(given, scanned, root=root)
        return _new_modules(root, given, set(placed.values())), []
    covered = {f.display: f.module for f in load_sources(existing).files.values()}
    known = {m.path for m in existing.modules}
    placed = module_roots(given, scanned, {p: m for p, m in covered.items() if p in scanned}, known, root=root)
    added = sorted(set(placed.values()) - known)
    if added and not all(m.config_version == "v2" for m in existing.modules):
        missing = ", ".join(p for p in given if p not in covered)
        raise ProtokitError(
            f"{missing}: in no module of the buf.yaml files (v1 or a workspace); add "
            f"{', '.join(added)} to their roots or directories, or move to a v2 buf.yaml (buf config migrate)"
        )
    uncovered = [p for p in given if p not in covered]
    kept = [_unexclude(m, uncovered) for m in existing.modules]
    new = [Module(r, _nested(r, set(placed.values()) | known)) for r in added]
    hints = [h for m, k in zip(existing.modules, kept, strict=True) for h in _exclude_hints(m, k, uncovered)]
    for index, module in enumerate(kept):
        inner = _nested(module.path, set(added))
        if inner:
            kept[index] = replace(module, excludes=tuple(sorted({*module.excludes, *inner})))
            hints.append(
                Hint(BUF_YAML, f'module "{module.path}" needs the new modules under its excludes:', _list(inner))
            )
    if new:
        hints.append(
            Hint(BUF_YAML, "has no module for some of the protos; add under modules:", _modules_yaml(new).rstrip())
        )
    return (*kept, *new), hints


def _new_modules(root: Path, given: list[str], roots: set[str]) -> tuple[Module, ...]:
    """A module per root: an outer one excludes the ones inside it, and subdirectories holding only
    files nothing named or imports (vendored trees, fixtures), so the modules are the protos adopted."""
    modules = tuple(Module(r, _nested(r, roots)) for r in sorted(roots))
    sources = load_sources(Project(root, modules))
    kept = _import_closure(sources, given)
    holding = {d for p in kept for d in _ancestors(p)}
    out = []
    for module in modules:
        unused = {
            next((d for d in _ancestors(f.display, module.path) if d not in holding), "")
            for f in sources.files.values()
            if f.module == module.path and f.display not in kept
        } - {""}
        out.append(replace(module, excludes=tuple(sorted({*module.excludes, *unused}))))
    return tuple(out)


def _nested(root: str, roots: Iterable[str]) -> tuple[str, ...]:
    """The roots directly inside `root`: what its module excludes."""
    inside = [r for r in roots if r != root and _contains(root, r)]
    return tuple(sorted(r for r in inside if not any(o != r and _contains(o, r) for o in inside)))


def _ancestors(path: str, below: str = ".") -> list[str]:
    """The directories holding `path`, strictly inside `below`, shallowest first."""
    parts = path.split("/")[:-1]
    dirs = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return [d for d in dirs if d != below and _contains(below, d)]


def _import_closure(sources: SourceSet, given: Iterable[str]) -> set[str]:
    """The named files and every module file they import, transitively (project-relative)."""
    by_display = {f.display: f for f in sources.files.values()}
    stack = [p for p in given if p in by_display]
    seen = set(stack)
    while stack:
        for name in by_display[stack.pop()].imports:
            found = sources.files.get(name)
            if found is not None and found.display not in seen:
                seen.add(found.display)
                stack.append(found.display)
    return seen


def _unexclude(module: Module, given: Sequence[str]) -> Module:
    """The module without the excludes that hold named files: adopting them means including them."""
    kept = tuple(e for e in module.excludes if not any(_contains(e, p) for p in given))
    return replace(module, excludes=kept) if kept != module.excludes else module


def _exclude_hints(before: Module, after: Module, given: Sequence[str]) -> list[Hint]:
    hints = []
    for excluded in (e for e in before.excludes if e not in after.excludes):
        held = ", ".join(p for p in given if _contains(excluded, p))
        hints.append(Hint(BUF_YAML, f'module "{before.path}" excludes {excluded}, which holds {held}; remove it there'))
    return hints


# --- deps ----------------------------------------------------------------------------------------------


def _deps(root: Path, sources: SourceSet) -> tuple[str, ...]:
    """The offline deps the modules' imports need; an import nothing serves is an error at its line."""
    deps: set[str] = set()
    problems: list[tuple[Location, str]] = []
    for file in sources.files.values():
        for target in file.imports:
            if target in sources.files or target.startswith(WKT_PREFIX):
                continue
            dep = _dep_for(target)
            if dep is not None:
                deps.add(dep)
            else:
                where = _import_location(root, file.display, target)
                problems.append((where, _unserved(root, where, target)))
    if problems:
        lines = [line for _, line in sorted(problems, key=lambda p: (p[0].path, p[0].line))]
        raise ProtokitError(lines[0] if len(lines) == 1 else f"{len(lines)} imports cannot be served", lines)
    return tuple(sorted(deps))


def _dep_for(name: str) -> str | None:
    if name == toolchain.VALIDATE_PROTO:
        return VALIDATE_DEP
    if name.startswith(GOOGLEAPIS_PREFIXES):
        return GOOGLEAPIS_DEP
    # Other googleapis directories the wheel ships (google/cloud, google/logging, ...).
    googleapis = toolchain.googleapis_include()
    if name.startswith("google/") and googleapis is not None and (googleapis / name).is_file():
        return GOOGLEAPIS_DEP
    return None


def _unserved(root: Path, where: Location, name: str) -> str:
    if name == PGV_PROTO:
        return (
            f'{where}: imports "{name}", protoc-gen-validate\'s rules, which protokit cannot serve offline (no '
            "installed package ships it). Move the (validate.rules) options to protovalidate's "
            f"buf/validate/validate.proto ({VALIDATE_DEP}, served offline; bufbuild/protovalidate's "
            "tools/protovalidate-migrate rewrites them), or name your copy of validate/validate.proto in the PATHs"
        )
    message = (
        f'{where}: imports "{name}", which is not among the named files or their modules, and is no '
        f"well-known type or offline dep ({GOOGLEAPIS_DEP}, {VALIDATE_DEP})"
    )
    elsewhere = _files_named(root, name)
    return message + (f"; {', '.join(elsewhere)} has that name: add it to the PATHs" if elsewhere else "")


def _files_named(root: Path, name: str) -> list[str]:
    """Project files whose path ends with the import `name` (only walked when an import is missing)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in filenames:
            path = Path(dirpath, filename).relative_to(root).as_posix()
            if _root_for(path, name) is not None:
                found.append(path)
    return sorted(found)


def _import_location(root: Path, path: str, name: str) -> Location:
    """Where `path` imports `name`, as compile errors place it (the line's `import` keyword)."""
    try:
        text = (root / path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Location(path)
    at = max(text.find(f'"{name}"'), text.find(f"'{name}'"))
    if at < 0:
        return Location(path)
    start = text.rfind("\n", 0, at) + 1
    keyword = text.find("import", start, at)
    return Location(path, text.count("\n", 0, at) + 1, (keyword if keyword >= 0 else at) - start + 1)


def _dep_hints(existing: Project, deps: Sequence[str]) -> list[Hint]:
    missing = [d for d in deps if d not in existing.deps]
    if not missing:
        return []
    return [
        Hint(BUF_YAML, "lacks deps the imports need (protokit serves them offline); add under deps:", _list(missing))
    ]


# --- compiling, services, baseline --------------------------------------------------------------------


def _services(image: bytes, given: Mapping[str, str]) -> tuple[AdoptedService, ...]:
    """The services of the named files (module-relative name -> project path), in declaration order."""
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(image).file
    services = tuple(
        AdoptedService(f"{f.package}.{s.name}" if f.package else s.name, given[f.name])
        for f in files
        if f.name in given
        for s in f.service
    )
    if not services:
        raise ProtokitError(
            f"no service in {', '.join(sorted(given.values()))}: protokit builds a service around the "
            "protos, so name the files that define one (or add a service)"
        )
    return services


def _baseline(project: Project) -> LintBaseline:
    """Lint as the project will; findings that break the generated Python are errors, the rest recorded."""
    from protokit.check.lint import lint

    findings = lint(project, []).findings
    fatal = [f for f in findings if f.type in UNIMPORTABLE_RULES]
    if fatal:
        lines = [f"{f.path}:{f.start_line}:{f.start_column}: {f.message} ({f.type})" for f in fatal]
        raise ProtokitError(
            f"{len(fatal)} problem(s) would make the generated Python unimportable: fix them before adopting "
            "the protos (a baseline cannot hide them)",
            lines,
        )
    return LintBaseline(tuple(findings), ignore_baseline(findings, project))


def _baseline_hints(project: Project, baseline: LintBaseline) -> list[Hint]:
    if not baseline.count:
        return []
    buf_count = baseline.buf_count
    hints = []
    if buf_count:
        v2 = set(baseline.entries.blocks) == {(BUF_YAML, "v2")}
        snippet = (
            "\n".join(ignore_only_lines(baseline.ignore_only)) if v2 else to_ignore_yaml(baseline.findings, project)
        )
        hints.append(
            Hint(
                BUF_YAML,
                f"the protos have {buf_count} lint finding(s) today; to record them as a baseline (and see "
                "only new ones), add under lint: (merging with any ignore_only there):",
                snippet.rstrip(),
            )
        )
    if baseline.entries.own:
        hints.append(
            Hint(
                "pyproject.toml",
                f"the protos have {baseline.count - buf_count} finding(s) of protokit's Python rules today; "
                "to record them as a baseline, add:",
                baseline.pyproject_toml().rstrip(),
            )
        )
    return hints


# --- buf.yaml -------------------------------------------------------------------------------------------


def render_buf_yaml(
    modules: Sequence[Module],
    deps: Sequence[str],
    lint_use: Sequence[str],
    breaking_use: Sequence[str],
    baseline: LintBaseline | None = None,
) -> str:
    """A v2 buf.yaml; its `ignore_only` is what `protokit lint --format config-ignore-yaml` prints."""
    lines = ["# buf's v2 workspace config; `protokit lint`, `protokit breaking` and `protokit gen` read it too."]
    if deps:
        lines.append("# protokit serves the deps offline; plain `buf` needs `buf dep update` once.")
    lines += ["version: v2", "modules:", _modules_yaml(modules).rstrip()]
    if deps:
        lines += ["deps:", _list(deps)]
    lines += ["lint:", "  use:", _list(lint_use, "    ")]
    if baseline is not None and baseline.ignore_only:
        lines.append(
            f"  # The baseline: the {baseline.buf_count} finding(s) the protos had when protokit adopted them."
        )
        lines.append("  # New ones are reported; drop a file's entries once it is fixed.")
        lines += ignore_only_lines(baseline.ignore_only)
    lines += ["breaking:", "  use:", _list(breaking_use, "    ")]
    return "\n".join(lines) + "\n"


def _modules_yaml(modules: Iterable[Module]) -> str:
    lines = []
    for module in modules:
        lines.append(f"  - path: {module.path}")
        if module.excludes:
            lines += ["    excludes:", _list(module.excludes, "      ")]
    return "\n".join(lines) + "\n"


def _list(items: Iterable[str], indent: str = "  ") -> str:
    return "\n".join(f"{indent}- {item}" for item in items)


def _planned_project(
    root: Path, modules: tuple[Module, ...], deps: tuple[str, ...], lint_use: Sequence[str]
) -> Project:
    """The project as the new buf.yaml (before its baseline) will make it: the config lint reads."""
    text = render_buf_yaml(modules, deps, lint_use, DEFAULT_BREAKING_USE)
    with tempfile.TemporaryDirectory(prefix="protokit-adopt-") as scratch:
        file = Path(scratch) / BUF_YAML
        file.write_text(text, encoding="utf-8")
        node = load_yaml(file, BUF_YAML)
    return Project(root, modules, buf_yaml=node, deps=deps)
