"""The generated tree on disk: comparing it with what generation wants, and swapping it in atomically.

protokit owns only files that carry a generator's header on their first lines (protoc's, grpc's,
mypy-protobuf's, protokit's, Go's `// Code generated ... DO NOT EDIT.`); any other file under an output
directory belongs to the user and is never overwritten or deleted, whatever words its text contains.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit.crash import crash_point
from protokit.errors import ProtokitError

# A generator's header: a comment (or docstring) line among the first few saying the file is generated
# and not to be edited; "@generated" is that on its own (mypy-protobuf, Meta's convention).
_HEADER_LINES = 5
_COMMENT = re.compile(rb'^\s*(?:#|//|/\*|\*|"""|@generated)')
_GENERATED = re.compile(rb"@generated|\bgenerated\b.*\bdo not edit\b", re.IGNORECASE)
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
# What a run puts in and beside an output directory before the new tree is in place: `.<name>.protokit-*`
# (a staged file, a staging tree, a retired old tree). Recognisable, so the next run can clean up after a
# killed one, and never taken for a user's file.
_TEMP = ".protokit-"
_TEMP_NAME = re.compile(r"^\..+\.protokit-[A-Za-z0-9_-]+$")


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


# What protokit saw in an output directory after its last run: path -> [version, size, mtime_ns].
# `version` identifies the content protokit wrote (the cache key it came from, since outputs are a
# pure function of it), or is None for a user's file; nothing needs hashing to recognise a file.
Stamp = dict[str, list[Any]]


def take_stamp(project_root: Path, out_root: str, versions: dict[str, str]) -> Stamp:
    """Record every file now under out_root with the version protokit wrote there (None: the user's)."""
    stamp: Stamp = {}
    for rel, path in _walk(project_root / out_root).items():
        st = path.stat(follow_symlinks=False)
        stamp[rel] = [versions.get(rel), st.st_size, st.st_mtime_ns]
    return stamp


def matches_stamp(project_root: Path, out_root: str, stamp: Stamp) -> bool:
    """True when the directory holds exactly the stamped files, none touched since (like make/ninja)."""
    on_disk = _walk(project_root / out_root)
    if on_disk.keys() != stamp.keys():
        return False
    for rel, path in on_disk.items():
        st = path.stat(follow_symlinks=False)
        if [st.st_size, st.st_mtime_ns] != stamp[rel][1:]:
            return False
    return True


def is_generated(data: bytes) -> bool:
    """Whether a file carries a generator's header on its first lines. Empty files do not (a user's
    py.typed), nor does a README that merely says "do not edit"."""
    lines = data[:2048].splitlines()[:_HEADER_LINES]
    return any(_COMMENT.match(line) and _GENERATED.search(line) for line in lines)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _walk(root: Path) -> dict[str, os.DirEntry[str]]:
    """Every file under root by relative path (caches skipped). scandir entries cache their stat, and
    plain strings keep this cheap on trees of thousands of files."""
    found: dict[str, os.DirEntry[str]] = {}
    stack = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS:
                    stack.append((entry.path, f"{prefix}{entry.name}/"))
            elif not entry.name.endswith(".pyc") and not _TEMP_NAME.match(entry.name):
                found[prefix + entry.name] = entry
    return found


def _read(entry: os.DirEntry[str]) -> bytes:
    with open(entry.path, "rb") as fh:
        return fh.read()


def compare(
    project_root: Path,
    out_root: str,
    wanted: Mapping[str, bytes],
    versions: dict[str, str],
    stamp: Stamp | None = None,
) -> Drift:
    """`wanted` maps paths relative to out_root to their content (read only where needed), `versions`
    to its version.
    `stamp` is the last run's record: files it generated count as ours even without a header
    (betterproto2's message_pool.py), and files untouched since then with the same version are
    known to be right without being read."""
    stamp = stamp or {}
    owned = {rel for rel, entry in stamp.items() if entry[0] is not None}
    drift = Drift()
    prefix = "" if out_root == "." else out_root + "/"
    on_disk = _walk(project_root / out_root)
    for rel in wanted:
        path = on_disk.get(rel)
        if path is None:
            drift.missing.append(prefix + rel)
            continue
        entry = stamp.get(rel)
        if entry is not None and entry[0] is not None and entry[0] == versions.get(rel):
            st = path.stat(follow_symlinks=False)
            if [st.st_size, st.st_mtime_ns] == entry[1:]:
                continue
        data = _read(path)
        if data == wanted[rel]:
            continue
        if rel not in owned and not is_generated(data):
            raise ProtokitError(
                f"{prefix}{rel} would be overwritten, but it was not written by a generator "
                "(no generator's header, such as 'Generated by ... DO NOT EDIT!', on its first lines): "
                "move it out of the output directory"
            )
        drift.stale.append(prefix + rel)
    for rel, path in on_disk.items():
        if rel in wanted:
            continue
        if rel in owned or is_generated(_read(path)):
            drift.extra.append(prefix + rel)
        else:
            drift.user_files.append(prefix + rel)
    return drift


def apply(project_root: Path, out_root: str, wanted: Mapping[str, bytes], drift: Drift) -> None:
    """Make the directory hold `wanted`. Everything that can fail (compilation, plugins) has already
    happened; a small change renames staged files into place, a large one swaps the whole tree."""
    changes = len(drift.stale) + len(drift.missing) + len(drift.extra)
    if not (project_root / out_root).is_dir() or changes * 4 > len(wanted):
        replace(project_root, out_root, wanted, drift.user_files)
        return
    prefix = "" if out_root == "." else out_root + "/"
    target = project_root / out_root
    staged: list[tuple[str, Path]] = []
    changed = sorted(drift.stale + drift.missing)
    try:
        for n, path in enumerate(changed):
            if n == len(changed) // 2:
                crash_point("staging")
            rel = path.removeprefix(prefix)
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}{_TEMP}")
            with os.fdopen(fd, "wb") as fh:
                fh.write(wanted[rel])
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
            staged.append((tmp, dest))
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    for n, (tmp, dest) in enumerate(staged):
        if n == len(staged) // 2:
            crash_point("renaming")
        os.replace(tmp, dest)
    for path in drift.extra:
        (target / path.removeprefix(prefix)).unlink()
    _remove_empty_dirs(target)


_RETIRED = "tree"


def recover(project_root: Path, out_root: str) -> None:
    """Undo what a killed run left: put a retired tree back if the swap stopped half-way (the old tree is
    then whole again), and remove every staged file, staging tree and retired tree. Call it holding the
    project's lock; afterwards the directory holds the old tree or the new one, and the run that follows
    brings it up to date either way."""
    target = project_root / out_root
    if target.is_symlink():
        target = target.resolve()
    parent = target.parent
    try:
        beside = [e for e in os.scandir(parent) if e.name.startswith(f".{target.name}{_TEMP}")]
    except FileNotFoundError:
        return
    if not target.exists():
        for entry in sorted(beside, key=lambda e: e.name):
            old = Path(entry.path) / _RETIRED
            if entry.name.startswith(f".{target.name}{_TEMP}old-") and old.is_dir():
                os.rename(old, target)
                break
    for entry in beside:
        shutil.rmtree(entry.path, ignore_errors=True)
    for dirpath, dirnames, filenames in os.walk(target):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            if _TEMP_NAME.match(name):
                os.unlink(os.path.join(dirpath, name))


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        path = Path(dirpath)
        if path != root and not filenames and not any((path / d).exists() for d in dirnames):
            path.rmdir()


def replace(project_root: Path, out_root: str, wanted: Mapping[str, bytes], keep: list[str]) -> None:
    """Build the new tree beside the old one, then swap directories.

    Everything that can fail (generation, compilation) has happened before this is called; the
    old tree stays whole until the final renames. Unchanged files and kept user files are
    hard-linked from the old tree rather than rewritten, so small edits cost little.
    """
    target = project_root / out_root
    if target.is_symlink():  # write through the link: the link stays, the directory it names is swapped
        target = target.resolve()
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{_TEMP}", dir=parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700 directories; the tree should look normal
    try:
        old = _walk(target)
        made: set[Path] = set()
        for rel in sorted(wanted):
            content = wanted[rel]
            dest = staging / rel
            if dest.parent not in made:
                dest.parent.mkdir(parents=True, exist_ok=True)
                made.add(dest.parent)
            current = old.get(rel)
            if current is not None and current.stat().st_size == len(content) and _read(current) == content:
                os.link(current.path, dest)
            else:
                dest.write_bytes(content)
        prefix = "" if out_root == "." else out_root + "/"
        for path in keep:
            rel = path.removeprefix(prefix)
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(old[rel].path, dest)
        if target.exists():
            # Killed between these renames, the old tree waits in retired/tree: recover() puts it back.
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}{_TEMP}old-", dir=parent))
            os.rename(target, retired / _RETIRED)
            crash_point("swap")
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
