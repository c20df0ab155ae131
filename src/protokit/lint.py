"""`protokit lint`: buf's lint rules on protokit's image, plus protokit's PY rules for Python targets."""

from __future__ import annotations

import json
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

    def run_module(section: bufrun.Section) -> list[Finding]:
        names = [n for n, f in sources.files.items() if f.module == section.module.path]
        if not names or section.ignore_all:
            return []
        args = ["lint", str(image), "--config", json.dumps(section.config), *bufrun.path_args(names)]
        return [bufrun.to_finding(raw, section.module) for raw in bufrun.run_buf(buf, args, project.root)]

    sections = bufrun.effective_sections(project, "lint")
    # buf runs as subprocesses; protokit's own rules run meanwhile in this process.
    with ThreadPoolExecutor(max(1, len(sections))) as pool:
        pending = [pool.submit(run_module, s) for s in sections]
        # All files, so a collision with a file outside the selection is still seen.
        selected = {f.display for f in sources.files.values()}
        own = [
            f
            for f in pyrules.run(_descriptors(image, all_sources), lambda n: display.get(n, n), py_config)
            if f.path in selected
        ]
        findings = [f for job in pending for f in job.result()]
    return LintResult(sorted({*findings, *own}), len(sources.files))


def _descriptors(image: Path, sources: SourceSet) -> list[descriptor_pb2.FileDescriptorProto]:
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())
    return [f for f in fds.file if f.name in sources.files]
