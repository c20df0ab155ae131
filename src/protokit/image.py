"""The project's image: every .proto file of its modules compiled into one FileDescriptorSet with
imports and source info, the form buf reads for lint and breaking. Cached by content hash."""

from __future__ import annotations

from pathlib import Path

from protokit import cache, toolchain
from protokit.compile import build_descriptor_set
from protokit.config import Project
from protokit.sources import SourceSet, load_sources


def image_key(sources: SourceSet, modules: tuple[str, ...]) -> str:
    return cache.digest(
        "image", toolchain.fingerprint(), *modules, *(f"{f.module}:{n}={f.digest}" for n, f in sources.files.items())
    )


def project_image(project: Project, sources: SourceSet | None = None) -> Path:
    """Compile (or reuse) the image of all modules; returns the path of the cached .binpb file."""
    sources = sources or load_sources(project)
    modules = tuple(m.path for m in project.modules)
    key = image_key(sources, modules)
    path = cache.cache_dir() / "images" / f"{key}.binpb"
    if not path.is_file():
        data = build_descriptor_set(project, cache.cache_dir(), list(sources.files), modules, sources.imports_validate)
        cache.atomic_write(path, data)
    return path
