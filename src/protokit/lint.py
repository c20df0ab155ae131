"""`protokit lint`: buf's lint rules on protokit's images, plus protokit's PY rules for Python targets.

Lint is incremental. Files that share a directory, a package or a generated Python module form a
component: every cross-file rule (buf's DIRECTORY_SAME_PACKAGE and PACKAGE_SAME_*, protokit's
PY_MODULE_COLLISION) compares files within one. A component's findings depend only on its files,
every file of every package they reach through imports (PACKAGE_NO_IMPORT_CYCLE follows the
package graph), the config and the tool versions, so they are cached under that key; a run
compiles and lints just the components that changed.
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


def reachable_files(sources: SourceSet, group: Sequence[str]) -> list[str]:
    """Files of every package reachable from the group through imports, plus imports from outside
    the modules: what package-level rules can see from these files."""
    by_package: dict[str, list[str]] = {}
    for name, f in sources.files.items():
        by_package.setdefault(f.package, []).append(name)
    seen_packages: set[str] = set()
    files: set[str] = set()
    stack = list(group)
    while stack:
        name = stack.pop()
        if name in files:
            continue
        files.add(name)
        file = sources.files.get(name)
        if file is None:
            continue  # a well-known type or another import from outside the modules
        stack.extend(file.imports)
        if file.package not in seen_packages:
            seen_packages.add(file.package)
            stack.extend(by_package[file.package])
    return sorted(files - set(group))


def _buf_identity(buf: Path) -> str:
    st = buf.resolve().stat()
    return f"{buf.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def lint(project: Project, paths: Sequence[str] = ()) -> LintResult:
    from protokit.pyproject_config import load_protokit_config

    buf = find_buf(project.root)
    py_config, _ = load_protokit_config(project.root)
    pyproject = project.root / "pyproject.toml"
    py_key = pyproject.read_bytes() if pyproject.is_file() else b""
    sources = load_sources(project)
    selected = select(sources, project, paths)
    base = cache.digest("lint", toolchain.fingerprint(), _buf_identity(buf), py_key)

    store = cache.Store()
    keyed: dict[str, tuple[bufrun.Section, list[str]]] = {}
    for section in bufrun.effective_sections(project, "lint"):
        names = [n for n, f in sources.files.items() if f.module == section.module.path]
        if section.ignore_all:
            continue
        for group in components(sources, names):
            if not any(n in selected.files for n in group):
                continue
            deps = reachable_files(sources, group)
            key = cache.digest(
                base,
                json.dumps(section.config, sort_keys=True),
                *(f"{n}={sources.files[n].digest}" for n in group),
                *(f"{d}={sources.files[d].digest if d in sources.files else 'outside'}" for d in deps),
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
    image = build_descriptor_set(project, cache.cache_dir(), names, modules)
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
