"""A warm `protokit lint` answered from the cache alone: when nothing the last full run could have read
has changed, its output and exit code are replayed without loading the toolchain (buf's own `buf lint`
takes ~0.08 s on a one-file project; Python and typer alone take longer than that).

The key over-approximates what a lint run reads, so a replay is never stale:
- every .proto and config-like file (.yaml, .yml, .toml, .json) under the project root, by path, size
  and modification time (hidden directories skipped, as module scans skip them);
- the interpreter, the installed distributions (their dist-info names carry the versions) and the buf
  binary that would run (path, size, time);
- the arguments, the working directory, and what decides the rendering (a terminal or not, colour).
A buf.yaml naming check `plugins` turns replays off: their binaries live outside anything stamped here.
This module imports nothing heavy; `protokit.entry` calls it before the CLI loads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from protokit.projectroot import BUF_YAML, find_root
from protokit.version import __version__

KIND = "lint-answer"
_STAMPED = (".proto", ".yaml", ".yml", ".toml", ".json")
_RENDER_ENV = ("NO_COLOR", "FORCE_COLOR", "TERM", "COLORTERM", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")


def key(args: list[str]) -> str | None:
    """The answer's key for `protokit lint ARGS` run here, or None when replays are off."""
    root = find_root(Path.cwd())
    buf_yaml = root / BUF_YAML
    if buf_yaml.is_file() and b"plugins" in buf_yaml.read_bytes():
        return None
    buf = _buf_stamp()
    if buf is None:
        return None  # no usable buf: the full run says so
    h = hashlib.sha256()
    for part in (__version__, sys.executable, str(Path.cwd()), "\0".join(args), str(sys.stdout.isatty()), buf):
        h.update(part.encode() + b"\0")
    for name in _RENDER_ENV:
        h.update(f"{name}={os.environ.get(name, '')}\0".encode())
    for site in dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib")):
        with os.scandir(site) as entries:
            h.update("\0".join(sorted(e.name for e in entries if e.name.endswith(".dist-info"))).encode())
    for path, stat in _stamps(root):
        h.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}\0".encode())
    return h.hexdigest()


def _buf_stamp() -> str | None:
    """The buf that would run, found as bufbin.locate_buf finds it (PROTOKIT_BUF, else PATH, else the
    wheel's), with its stamp; None when it is not there (the full run reports that)."""
    chosen = os.environ.get("PROTOKIT_BUF") or shutil.which("buf") or str(Path(sysconfig.get_path("scripts")) / "buf")
    try:
        stat = os.stat(chosen)
    except OSError:
        return None
    return f"{chosen}:{stat.st_size}:{stat.st_mtime_ns}"


def _stamps(root: Path) -> list[tuple[str, os.stat_result]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in ("__pycache__", "node_modules"))
        for name in sorted(filenames):
            if name.endswith(_STAMPED):
                path = os.path.join(dirpath, name)
                found.append((os.path.relpath(path, root), os.stat(path)))
    return found


def replay(args: list[str]) -> tuple[str, int] | None:
    """The stored output and exit code of `protokit lint ARGS`, if nothing it read has changed."""
    from protokit import cache

    answer_key = key(args)
    if answer_key is None:
        return None
    store = cache.Store()
    try:
        stored = store.get(KIND, answer_key)
    finally:
        store.close()
    if stored is None:
        return None
    code, _, output = stored.partition(b"\n")
    return output.decode(), int(code)


def remember(answer_key: str | None, output: str, code: int) -> None:
    if answer_key is None:
        return
    from protokit import cache

    store = cache.Store()
    try:
        store.put_many(KIND, {answer_key: f"{code}\n{output}".encode()})
    finally:
        store.close()
