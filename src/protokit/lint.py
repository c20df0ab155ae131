"""`protokit lint`: buf's lint rules on protokit's images, plus protokit's PY rules for Python targets.

Lint is incremental. Files that share a directory, a package or a generated Python module form a
component: every cross-file rule (buf's DIRECTORY_SAME_PACKAGE and PACKAGE_SAME_*, protokit's
PY_MODULE_COLLISION) compares files within one. A component's findings depend only on its files,
the files they can see symbols from, the package import graph reachable from them
(PACKAGE_NO_IMPORT_CYCLE), the config and the tool versions; they are cached under that key, and
a run compiles and lints just the components whose key changed.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from protokit import bufrun, cache, toolchain
from protokit.bufbin import find_buf
from protokit.compile import build_descriptor_set
from protokit.config import BUF_YAML, Project
from protokit.errors import ProtokitError
from protokit.findings import Finding
from protokit.sources import SourceSet, load_sources

if TYPE_CHECKING:
    from protokit.pyproject_config import PyLintConfig


@dataclass
class LintResult:
    findings: list[Finding]
    files: int
    linted: int = 0  # files compiled and linted this run; the rest came from the cache


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
    from protokit.pyproject_config import load_protokit_config

    buf = find_buf()
    py_config, _ = load_protokit_config(project.root)
    pyproject = project.root / "pyproject.toml"
    py_key = pyproject.read_bytes() if pyproject.is_file() else b""
    sources = load_sources(project)
    selected = select(sources, project, paths)
    base = cache.digest("lint", toolchain.fingerprint(), _buf_identity(buf), py_key)

    store = cache.Store()
    graph = package_graph(sources)
    keyed: dict[str, tuple[bufrun.Section, list[str]]] = {}
    for section in bufrun.effective_sections(project, "lint"):
        names = [n for n, f in sources.files.items() if f.module == section.module.path]
        if section.ignore_all:
            continue
        for group in components(sources, names):
            if not any(n in selected.files for n in group):
                continue
            visible = sorted({d for n in group for d in sources.dependency_closure(n)} - set(group))
            key = cache.digest(
                base,
                json.dumps(section.config, sort_keys=True),
                *(f"{n}={sources.files[n].digest}" for n in group),
                *(f"{d}={sources.files[d].digest if d in sources.files else 'outside'}" for d in visible),
                *reachable_edges(graph, {sources.files[n].package for n in group}),
            )
            keyed[key] = (section, group)
    cached = store.get_many("lint", keyed)
    stale = {key: job for key, job in keyed.items() if key not in cached}
    found: list[Finding] = [Finding(**raw) for key in cached for raw in json.loads(cached[key])]
    if stale:
        fresh = _lint_components(project, buf, sources, stale, py_config)
        store.put_many("lint", {key: json.dumps([f.__dict__ for f in fresh[key]]).encode() for key in stale})
        found += [f for group in fresh.values() for f in group]
    wanted = {f.display for f in selected.files.values()}
    linted = sum(len(group) for _, group in stale.values())
    return LintResult(sorted({f for f in found if f.path in wanted or not f.path}), len(selected.files), linted)


def _lint_components(
    project: Project,
    buf: Path,
    sources: SourceSet,
    jobs: dict[str, tuple[bufrun.Section, list[str]]],
    py_config: PyLintConfig,
) -> dict[str, list[Finding]]:
    """Compile the stale components once, lint them with buf (per module config) and the PY rules;
    findings by component key."""
    from google.protobuf import descriptor_pb2

    from protokit import pyrules

    names = sorted({n for _, group in jobs.values() for n in group})
    modules = tuple(m.path for m in project.modules)
    image = build_descriptor_set(project, cache.cache_dir(), names, modules, sources.imports_validate)
    display = {name: f.display for name, f in sources.files.items()}
    owner = {display[n]: key for key, (_, group) in jobs.items() for n in group}
    results: dict[str, list[Finding]] = {key: [] for key in jobs}
    tmp_dir = cache.cache_dir() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    image_path = tmp_dir / f"lint-{os.getpid()}.binpb"
    image_path.write_bytes(image)
    try:
        by_section: dict[str, tuple[bufrun.Section, list[str]]] = {}
        for section, group in jobs.values():
            by_section.setdefault(section.module.path, (section, []))[1].extend(group)

        def run_buf(section: bufrun.Section, files: list[str]) -> list[Finding]:
            args = ["lint", str(image_path), "--config", json.dumps(section.config), *bufrun.path_args(files)]
            return [bufrun.to_finding(raw, section.module) for raw in bufrun.run_buf(buf, args, project.root)]

        # buf runs as subprocesses; protokit's own rules run meanwhile in this process.
        with ThreadPoolExecutor(max(1, len(by_section))) as pool:
            pending = [pool.submit(run_buf, section, files) for section, files in by_section.values()]
            fds = descriptor_pb2.FileDescriptorSet.FromString(image)
            descriptors = [f for f in fds.file if f.name in set(names)]
            own = pyrules.run(descriptors, lambda n: display.get(n, n), py_config)
            findings = [f for job in pending for f in job.result()] + own
    finally:
        image_path.unlink(missing_ok=True)
    first = next(iter(jobs))
    for f in findings:
        results[owner.get(f.path, first)].append(f)  # a finding without a file goes to any component
    return results
