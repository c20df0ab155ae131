"""Where a project starts: the nearest directory holding buf's config files (cheap to import: the
warm `protokit lint` path reads it before anything else)."""

from __future__ import annotations

from pathlib import Path

BUF_YAML = "buf.yaml"
BUF_GEN_YAML = "buf.gen.yaml"
BUF_WORK_YAML = "buf.work.yaml"


def find_root(start: Path) -> Path:
    """The nearest directory at or above `start` holding buf.work.yaml, buf.yaml or buf.gen.yaml;
    without one, `start` itself, a single module with buf's defaults (as buf does)."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if any((candidate / name).is_file() for name in (BUF_WORK_YAML, BUF_YAML, BUF_GEN_YAML)):
            return candidate
    return start
