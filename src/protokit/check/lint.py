"""`protokit lint`: buf's lint rules on protokit's images, plus protokit's PY rules for Python targets.

Lint is incremental. Files that share a directory, a package or a generated Python module form a
component: every rule that groups files by directory or package (buf's DIRECTORY_SAME_PACKAGE and
PACKAGE_SAME_*, protokit's PY_MODULE_COLLISION) compares files within one. A component's findings
depend only on its files, the files they can see symbols from, the package import graph reachable
from them (PACKAGE_NO_IMPORT_CYCLE), the config and the tool versions; they are cached under that
key, and a run compiles and lints just the components whose key changed.

buf's CROSS_FILE_RULES compare every linted file with every other, whatever its component. A
component's cache entry also keeps what they read of its files (package, imports, RPC request and
response types); from all entries a run picks the few files these rules can concern (RPCs sharing a
type, a stable package importing an unstable one), and buf checks those files together, cached
under their contents. An edit that shares no type stays incremental.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protokit import cache, toolchain
from protokit.bufbin import find_buf
from protokit.check import bufrun
from protokit.compile import build_descriptor_set
from protokit.config import BUF_YAML, Project
from protokit.errors import ProtokitError
from protokit.findings import Finding
from protokit.sources import SourceSet, load_sources

if TYPE_CHECKING:
    from google.protobuf.descriptor_pb2 import FileDescriptorProto

    from protokit.config.pyproject_config import PyLintConfig

# The cache's kind: bump it when entries change shape or meaning (2: file summaries, buf's columns,
# unused imports, cross-file rules kept apart).
_KIND = "lint-2"
# buf's lint rules over all files at once (its "files" rule handlers), whatever their component.
CROSS_FILE_RULES = frozenset({"RPC_REQUEST_RESPONSE_UNIQUE", "STABLE_PACKAGE_NO_IMPORT_UNSTABLE"})
_VERSION = re.compile(r"v\d\w*")  # a package version component, as buf's protoversion reads one
_UNSTABLE = re.compile(r"alpha|beta|test")

Job = tuple[bufrun.Section, list[str]]  # a module's config and the files to lint under it


@dataclass
class LintResult:
    findings: list[Finding]
    files: int
    linted: int = 0  # files compiled and linted this run; the rest came from the cache


@dataclass(frozen=True)
class _Run:
    """What the steps of one lint run share."""

    project: Project
    buf: Path
    sources: SourceSet
    py_config: PyLintConfig
    base: str  # the part of every cache key that covers tools and settings


def select(sources: SourceSet, project: Project, paths: Sequence[str]) -> SourceSet:
    """Restrict to files under the given paths (files or directories, relative to the cwd)."""
    if not paths:
        return sources
    wanted = []
    for raw in paths:
        target = Path(raw).resolve()
        if not target.exists():
            raise ProtokitError(f"{raw}: no such file or directory")
        wanted.append(target)
    picked = {
        name: f
        for name, f in sources.files.items()
        if any((project.root / f.display).resolve().is_relative_to(w) for w in wanted)
    }
    if not picked:
        raise ProtokitError(f"no .proto files of the modules in {BUF_YAML} under: {', '.join(paths)}")
    return SourceSet(files=picked)


def components(sources: SourceSet, names: Sequence[str]) -> list[list[str]]:
    """Group files that share a directory, a package or a generated module path (union-find)."""
    from protokit.codegen import unit_stem

    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for name in names:
        keys = (f"dir:{posixpath.dirname(name)}", f"pkg:{sources.files[name].package}", f"mod:{unit_stem(name)}")
        for key in keys:
            parent[find(key)] = find(name)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(find(name), []).append(name)
    return sorted(sorted(g) for g in groups.values())


def package_graph(sources: SourceSet) -> dict[str, set[str]]:
    """package -> packages its files import (from the cheap import scan)."""
    graph: dict[str, set[str]] = {}
    for f in sources.files.values():
        edges = graph.setdefault(f.package, set())
        edges.update(sources.files[i].package for i in f.imports if i in sources.files)
    return graph


def reachable_edges(graph: dict[str, set[str]], packages: set[str]) -> list[str]:
    """The package-import edges reachable from `packages`: all a package-cycle rule can see."""
    seen: set[str] = set()
    stack = list(packages)
    edges: list[str] = []
    while stack:
        package = stack.pop()
        if package in seen:
            continue
        seen.add(package)
        for target in sorted(graph.get(package, ())):
            edges.append(f"{package}->{target}")
            stack.append(target)
    return sorted(edges)


def _buf_identity(buf: Path) -> str:
    st = buf.resolve().stat()
    return f"{buf.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def lint(project: Project, paths: Sequence[str] = ()) -> LintResult:
    from protokit.config.pyproject_config import load_protokit_config

    buf = find_buf()
    py_config, _ = load_protokit_config(project.root)
    pyproject = project.root / "pyproject.toml"
    py_key = pyproject.read_bytes() if pyproject.is_file() else b""
    sources = load_sources(project)
    selected = select(sources, project, paths)
    base = cache.digest(_KIND, toolchain.fingerprint(), _buf_identity(buf), py_key)
    run = _Run(project, buf, sources, py_config, base)

    store = cache.Store()
    keyed = _component_jobs(run, selected)
    cached = store.get_many(_KIND, keyed)
    entries: dict[str, dict[str, Any]] = {key: json.loads(value) for key, value in cached.items()}
    stale = {key: job for key, job in keyed.items() if key not in cached}
    if stale:
        fresh = _lint_components(run, stale)
        store.put_many(_KIND, {key: json.dumps(entry).encode() for key, entry in fresh.items()})
        entries.update(fresh)
    found = [Finding(**raw) for entry in entries.values() for raw in entry["findings"]]
    found += _cross_file_findings(run, store, keyed, entries)
    wanted = {f.display for f in selected.files.values()}
    linted = sum(len(group) for _, group in stale.values())
    return LintResult(sorted({f for f in found if f.path in wanted or not f.path}), len(selected.files), linted)


def _component_jobs(run: _Run, selected: SourceSet) -> dict[str, Job]:
    """The components holding selected files, by cache key."""
    sources = run.sources
    graph = package_graph(sources)
    keyed: dict[str, Job] = {}
    for section in bufrun.effective_sections(run.project, "lint"):
        names = [n for n, f in sources.files.items() if f.module == section.module.path]
        if section.ignore_all:
            continue
        for group in components(sources, names):
            if not any(n in selected.files for n in group):
                continue
            visible = sorted({d for n in group for d in sources.dependency_closure(n)} - set(group))
            key = cache.digest(
                run.base,
                json.dumps(section.config, sort_keys=True),
                *(f"{n}={sources.files[n].digest}" for n in group),
                *(f"{d}={sources.files[d].digest if d in sources.files else 'outside'}" for d in visible),
                *reachable_edges(graph, {sources.files[n].package for n in group}),
            )
            keyed[key] = (section, group)
    return keyed


def _lint_components(run: _Run, jobs: dict[str, Job]) -> dict[str, dict[str, Any]]:
    """Compile the stale components once, lint them with buf (per module config) and the PY rules;
    cache entries (findings, and what CROSS_FILE_RULES read of each file) by component key."""
    from google.protobuf import descriptor_pb2

    from protokit.check import pyrules
    from protokit.image import add_buf_extensions

    names = sorted({n for _, group in jobs.values() for n in group})
    data = _compile(run, names)
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    if add_buf_extensions(fds, names):
        data = fds.SerializeToString()
    display = {name: f.display for name, f in run.sources.files.items()}
    with ThreadPoolExecutor(1) as pool:
        # buf runs as subprocesses; protokit's own rules run meanwhile in this process.
        pending = pool.submit(_run_buf, run, data, _by_module(jobs.values()))
        wanted = set(names)
        descriptors = [f for f in fds.file if f.name in wanted]
        ignored = {display[n] for n in _ignored_by_buf_yaml(jobs.values())}
        own = pyrules.run(descriptors, lambda n: display.get(n, n), run.py_config)
        own = [f for f in own if f.path not in ignored]
        found = [f for f in pending.result() if f.type not in CROSS_FILE_RULES] + own
    owner = {display[n]: key for key, (_, group) in jobs.items() for n in group}
    summaries = {f.name: _summary(f) for f in descriptors}
    entries: dict[str, dict[str, Any]] = {
        key: {"findings": [], "files": {n: summaries[n] for n in group}} for key, (_, group) in jobs.items()
    }
    first = next(iter(jobs))
    for f in found:
        entries[owner.get(f.path, first)]["findings"].append(f.__dict__)  # one without a file goes anywhere
    return entries


def _compile(run: _Run, names: list[str]) -> bytes:
    modules = tuple(m.path for m in run.project.modules)
    return build_descriptor_set(run.project, cache.cache_dir(), names, modules, run.sources.imports_validate)


def _by_module(jobs: Iterable[Job]) -> list[Job]:
    """Jobs merged per module: buf runs once per module config."""
    merged: dict[str, Job] = {}
    for section, group in jobs:
        merged.setdefault(section.module.path, (section, []))[1].extend(group)
    return list(merged.values())


def _run_buf(run: _Run, image: bytes, jobs: list[Job]) -> list[Finding]:
    """buf lint on the image, each module's files under its config (in parallel)."""
    tmp_dir = cache.cache_dir() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="lint-", suffix=".binpb")
    with os.fdopen(fd, "wb") as fh:
        fh.write(image)
    image_path = Path(name)

    def one(section: bufrun.Section, files: list[str]) -> list[Finding]:
        args = ["lint", str(image_path), "--config", json.dumps(section.config), *bufrun.path_args(files)]
        found = bufrun.run_buf(run.buf, args, run.project.root, section.module.where.path)
        return [bufrun.to_finding(raw, section.module) for raw in found]

    try:
        with ThreadPoolExecutor(max(1, len(jobs))) as pool:
            pending = [pool.submit(one, section, files) for section, files in jobs]
            return [f for job in pending for f in job.result()]
    finally:
        image_path.unlink(missing_ok=True)


def _ignored_by_buf_yaml(jobs: Iterable[Job]) -> set[str]:
    """The files buf.yaml's lint `ignore` covers: PY findings there are dropped as buf's are. (bufrun
    has made its paths module-relative, like the names; `ignore_only` can only name buf's rules.)"""
    ignored: set[str] = set()
    for section, group in jobs:
        paths = section.config.get("lint", {}).get("ignore", [])
        ignored.update(n for n in group if any(n == p or n.startswith(p.rstrip("/") + "/") for p in paths))
    return ignored


def _summary(file: FileDescriptorProto) -> dict[str, Any]:
    """What CROSS_FILE_RULES read of a file."""
    return {
        "package": file.package,
        "imports": list(file.dependency),
        "rpcs": [[m.input_type, m.output_type] for s in file.service for m in s.method],
    }


def _involved(summaries: dict[str, dict[str, Any]], stable_rule: bool) -> list[str]:
    """The files CROSS_FILE_RULES can report on, with those they compare them with: RPCs whose request
    or response type is another RPC's too (or its own other half), and (if the config names
    STABLE_PACKAGE_NO_IMPORT_UNSTABLE, which is in no category) files of a versioned stable package
    importing one of an unstable package. A superset: buf has the last word."""
    users: dict[str, set[tuple[str, int]]] = {}
    involved: set[str] = set()
    for name, summary in summaries.items():
        for i, (request, response) in enumerate(summary["rpcs"]):
            if request == response:
                involved.add(name)
            for type_name in (request, response):
                users.setdefault(type_name, set()).add((name, i))
    involved.update(name for rpcs in users.values() if len(rpcs) > 1 for name, _ in rpcs)
    if stable_rule:
        involved.update(_stable_importing_unstable(summaries))
    return sorted(involved)


def _stable_importing_unstable(summaries: dict[str, dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for name, summary in summaries.items():
        if _stability(summary["package"]) == "stable":
            imports = [d for d in summary["imports"] if d in summaries]
            unstable = [d for d in imports if _stability(summaries[d]["package"]) == "unstable"]
            found.update([name, *unstable] if unstable else [])
    return found


def _stability(package: str) -> str:
    """ "stable", "unstable" or "" (no version component) after buf's protoversion, loosely."""
    versions = [part for part in package.split(".") if _VERSION.fullmatch(part)]
    if not versions:
        return ""
    return "unstable" if any(_UNSTABLE.search(v) for v in versions) else "stable"


def _cross_file_findings(
    run: _Run, store: cache.Store, keyed: dict[str, Job], entries: dict[str, dict[str, Any]]
) -> list[Finding]:
    """CROSS_FILE_RULES' findings: buf on the files they concern, per module, cached by those files."""
    per_module: dict[str, tuple[bufrun.Section, dict[str, Any]]] = {}
    for key, (section, _) in keyed.items():
        per_module.setdefault(section.module.path, (section, {}))[1].update(entries[key]["files"])
    jobs: dict[str, Job] = {}
    for section, summaries in per_module.values():
        stable_rule = "STABLE_PACKAGE_NO_IMPORT_UNSTABLE" in section.config.get("lint", {}).get("use", [])
        involved = _involved(summaries, stable_rule)
        if involved:
            key = cache.digest(
                run.base,
                "cross-file",
                json.dumps(section.config, sort_keys=True),
                *(f"{n}={run.sources.files[n].digest}:{json.dumps(summaries[n])}" for n in involved),
            )
            jobs[key] = (section, involved)
    cached = store.get_many(_KIND, jobs)
    found = [Finding(**raw) for key in cached for raw in json.loads(cached[key])]
    stale = {key: job for key, job in jobs.items() if key not in cached}
    if stale:
        fresh = _check_together(run, stale)
        store.put_many(_KIND, {key: json.dumps([f.__dict__ for f in group]).encode() for key, group in fresh.items()})
        found += [f for group in fresh.values() for f in group]
    return found


def _check_together(run: _Run, jobs: dict[str, Job]) -> dict[str, list[Finding]]:
    """buf with each module's config on its involved files, keeping CROSS_FILE_RULES' findings; by job key."""
    image = _compile(run, sorted({n for _, names in jobs.values() for n in names}))
    owner = {run.sources.files[n].display: key for key, (_, names) in jobs.items() for n in names}
    results: dict[str, list[Finding]] = {key: [] for key in jobs}
    for f in _run_buf(run, image, list(jobs.values())):
        if f.type in CROSS_FILE_RULES and f.path in owner:
            results[owner[f.path]].append(f)
    return results
