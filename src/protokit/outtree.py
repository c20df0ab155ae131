"""The generated tree on disk: comparing it with what generation wants, and swapping it in atomically.

protokit owns only files that carry a generator's header (`DO NOT EDIT`, `@generated`); any other
file under an output directory belongs to the user and is never overwritten or deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from protokit.errors import ProtokitError

_GENERATED_MARK = re.compile(rb"do not edit|@generated", re.IGNORECASE)
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}


@dataclass
class Drift:
    """How the tree on disk differs from the generated one; paths relative to the project root."""

    stale: list[str] = field(default_factory=list)  # present, but with other content
    missing: list[str] = field(default_factory=list)  # should exist, does not
    extra: list[str] = field(default_factory=list)  # generated earlier, no longer produced
    user_files: list[str] = field(default_factory=list)  # not ours: left alone

    @property
    def clean(self) -> bool:
        return not (self.stale or self.missing or self.extra)


def is_generated(data: bytes) -> bool:
    return not data.strip() or bool(_GENERATED_MARK.search(data[:512]))


def _walk(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in filenames:
            if name.endswith(".pyc"):
                continue
            path = Path(dirpath, name)
            found[path.relative_to(root).as_posix()] = path
    return found


def compare(project_root: Path, out_root: str, wanted: dict[str, bytes]) -> Drift:
    """`wanted` maps paths relative to out_root to their content."""
    drift = Drift()
    prefix = "" if out_root == "." else out_root + "/"
    on_disk = _walk(project_root / out_root)
    for rel, content in wanted.items():
        path = on_disk.get(rel)
        if path is None:
            drift.missing.append(prefix + rel)
            continue
        data = path.read_bytes()
        if data == content:
            continue
        if not is_generated(data):
            raise ProtokitError(
                f"{prefix}{rel} would be overwritten, but it was not written by a generator "
                "(no 'DO NOT EDIT' header): move it out of the output directory"
            )
        drift.stale.append(prefix + rel)
    for rel, path in on_disk.items():
        if rel in wanted:
            continue
        if is_generated(path.read_bytes()):
            drift.extra.append(prefix + rel)
        else:
            drift.user_files.append(prefix + rel)
    return drift


def replace(project_root: Path, out_root: str, wanted: dict[str, bytes], keep: list[str]) -> None:
    """Build the new tree beside the old one, then swap directories.

    Everything that can fail (generation, compilation) has happened before this is called; the
    old tree stays whole until the final renames. Unchanged files and kept user files are
    hard-linked from the old tree rather than rewritten, so small edits cost little.
    """
    target = project_root / out_root
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.protokit-", dir=parent))
    try:
        old = _walk(target)
        made: set[Path] = set()
        for rel, content in sorted(wanted.items()):
            dest = staging / rel
            if dest.parent not in made:
                dest.parent.mkdir(parents=True, exist_ok=True)
                made.add(dest.parent)
            current = old.get(rel)
            if current is not None and current.stat().st_size == len(content) and current.read_bytes() == content:
                os.link(current, dest)
            else:
                dest.write_bytes(content)
        prefix = "" if out_root == "." else out_root + "/"
        for path in keep:
            rel = path.removeprefix(prefix)
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(old[rel], dest)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.rename(target, retired / "tree")
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
