"""`protokit lint`: buf's lint rules on protokit's image, plus protokit's PY rules for Python targets."""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from protokit import bufrun
from protokit.bufbin import find_buf
from protokit.config import BUF_YAML, Project
from protokit.errors import ProtokitError
from protokit.findings import Finding
from protokit.image import project_image
from protokit.sources import SourceSet, load_sources

if TYPE_CHECKING:
    from google.protobuf import descriptor_pb2


# Below this many files one buf run is as fast as two.
_SPLIT_THRESHOLD = 100


@dataclass
class LintResult:
    findings: list[Finding]
    files: int


def select(sources: SourceSet, project: Project, paths: Sequence[str]) -> SourceSet:
    """Restrict to files under the given paths (relative to the cwd-independent project root)."""
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


def lint(project: Project, paths: Sequence[str] = ()) -> LintResult:
    from protokit import pyrules
    from protokit.pyproject_config import load_protokit_config

    buf = find_buf(project.root)
    py_config, _ = load_protokit_config(project.root)
    all_sources = load_sources(project)
    sources = select(all_sources, project, paths)
    image = project_image(project, all_sources)
    display = {name: f.display for name, f in all_sources.files.items()}
    descriptors = _descriptors(image, all_sources)
    packages = {f.name: f.package for f in descriptors}

    def run_buf(section: bufrun.Section, names: list[str]) -> list[Finding]:
        args = ["lint", str(image), "--config", json.dumps(section.config), *bufrun.path_args(names)]
        return [bufrun.to_finding(raw, section.module) for raw in bufrun.run_buf(buf, args, project.root)]

    jobs: list[tuple[bufrun.Section, list[str]]] = []
    for section in bufrun.effective_sections(project, "lint"):
        names = [n for n, f in sources.files.items() if f.module == section.module.path]
        if names and not section.ignore_all:
            jobs += [(section, group) for group in split_for_cores(names, packages)]
    # buf runs as subprocesses; protokit's own rules run meanwhile in this process.
    with ThreadPoolExecutor(max(1, len(jobs))) as pool:
        pending = [pool.submit(run_buf, section, names) for section, names in jobs]
        # All files, so a collision with a file outside the selection is still seen.
        selected = {f.display for f in sources.files.values()}
        own = [f for f in pyrules.run(descriptors, lambda n: display.get(n, n), py_config) if f.path in selected]
        findings = [f for job in pending for f in job.result()]
    return LintResult(sorted({*findings, *own}), len(sources.files))


def split_for_cores(names: list[str], packages: dict[str, str], cores: int | None = None) -> list[list[str]]:
    """Split files into groups for parallel buf runs; buf's time grows with the files it checks.

    Files sharing a directory or a package stay together, so rules that compare them
    (DIRECTORY_SAME_PACKAGE, PACKAGE_SAME_*) see exactly what one buf run would.
    """
    cores = cores or os.cpu_count() or 1
    if cores < 2 or len(names) < _SPLIT_THRESHOLD:
        return [names]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for name in names:
        # A file joins its directory's and its package's components.
        for key in (f"dir:{posixpath.dirname(name)}", f"pkg:{packages.get(name, '')}"):
            parent[find(key)] = find(name)
    components: dict[str, list[str]] = {}
    for name in names:
        components.setdefault(find(name), []).append(name)
    groups: list[list[str]] = [[] for _ in range(min(cores, 2))]
    for component in sorted(components.values(), key=len, reverse=True):
        min(groups, key=len).extend(component)  # largest first into the emptiest group
    return [sorted(g) for g in groups if g]


def _descriptors(image: Path, sources: SourceSet) -> list[descriptor_pb2.FileDescriptorProto]:
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())
    return [f for f in fds.file if f.name in sources.files]
