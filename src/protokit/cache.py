"""protokit's cache: one SQLite database per user (like buf's ~/.cache/buf), shared by all projects.

Entries are keyed by content hashes, so a hit is always valid. One database file instead of a
file per entry because creating thousands of small files is what makes cold runs slow; SQLite
also gives atomic, concurrency-safe writes for free.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"""


def cache_dir() -> Path:
    explicit = os.environ.get("PROTOKIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "protokit"


def scratch_root() -> Path:
    """Where protokit keeps temporary files: inside its cache, one directory per process (named by pid),
    so a run killed with SIGKILL leaves nothing in /tmp and the next run can tell its leftovers."""
    return cache_dir() / "tmp"


@contextlib.contextmanager
def scratch_dir(prefix: str = "protokit-") -> Iterator[str]:
    """A temporary directory in this process's part of the scratch area, removed on exit (and that part
    with it once empty)."""
    import shutil

    mine = scratch_root() / f"{os.getpid()}"
    mine.mkdir(parents=True, exist_ok=True)
    path = tempfile.mkdtemp(prefix=prefix, dir=mine)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):  # another thread's scratch is still there
            mine.rmdir()


def sweep_scratch() -> None:
    """Remove the scratch of processes that are gone (killed before they could clean up)."""
    import shutil

    root = scratch_root()
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.isdigit() and not _alive(int(entry.name)):
            shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def project_lock(root: Path) -> Iterator[None]:
    """Hold the project's gen lock (released by the kernel even on SIGKILL): one writer of the output
    directories at a time, so recovering from a killed run never races a live one."""
    import fcntl

    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{digest(str(root.resolve()))[:32]}.lock", "a+b") as fh:
        # A POSIX record lock: a forked worker does not inherit it (a flock would stay held by an orphan).
        fcntl.lockf(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(fh, fcntl.LOCK_UN)


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write a whole file or nothing: concurrent runs each rename a complete file into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def pack(files: Iterable[tuple[str, bytes]]) -> bytes:
    """Serialise (path, content) pairs compactly: an index of paths and sizes, then the contents
    zlib-compressed, so that `paths` can list an entry without decompressing it."""
    index, contents = bytearray(), []
    for path, content in files:
        raw = path.encode()
        index += len(raw).to_bytes(4, "big") + raw + len(content).to_bytes(4, "big")
        contents.append(content)
    return len(index).to_bytes(4, "big") + bytes(index) + zlib.compress(b"".join(contents), 1)


def _index(blob: bytes) -> tuple[list[tuple[str, int]], int]:
    """The (path, size) pairs of a packed entry, and where its compressed contents start."""
    end = 4 + int.from_bytes(blob[:4], "big")
    entries, i = [], 4
    while i < end:
        n = int.from_bytes(blob[i : i + 4], "big")
        path = blob[i + 4 : i + 4 + n].decode()
        i += 4 + n
        entries.append((path, int.from_bytes(blob[i : i + 4], "big")))
        i += 4
    return entries, end


def paths(blob: bytes) -> list[str]:
    return [path for path, _ in _index(blob)[0]]


def unpack(blob: bytes) -> list[tuple[str, bytes]]:
    entries, start = _index(blob)
    data = zlib.decompress(blob[start:])
    files, i = [], 0
    for path, size in entries:
        files.append((path, data[i : i + size]))
        i += size
    return files


class Files(Mapping[str, bytes]):
    """Files by path, some given as content and some as packed entries that are decompressed only
    when one of their files is read: a run that regenerates a few protos compares the rest with
    the disk by version, and never needs their content."""

    def __init__(self) -> None:
        self._source: dict[str, bytes | _Packed] = {}
        self._unpacked: dict[str, bytes] = {}

    def add(self, path: str, content: bytes) -> None:
        self._source[path] = content

    def add_packed(self, blob: bytes) -> list[str]:
        """Add a packed entry's files; returns their paths."""
        packed = _Packed(blob)
        names = paths(blob)
        for path in names:
            self._source[path] = packed
        return names

    def __getitem__(self, path: str) -> bytes:
        source = self._source[path]
        if not isinstance(source, _Packed):
            return source
        if path not in self._unpacked:
            self._unpacked.update(unpack(source.blob))
        return self._unpacked[path]

    def __contains__(self, path: object) -> bool:  # without reading, unlike Mapping's
        return path in self._source

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)


class _Packed:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob


class Store:
    """Values by (kind, key); reads are batched, writes happen in one transaction."""

    def __init__(self, root: Path | None = None) -> None:
        root = root or cache_dir()
        root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / "cache.sqlite3", timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get_many(self, kind: str, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = list(keys)
        found: dict[str, bytes] = {}
        for i in range(0, len(wanted), 500):  # SQLite limits the number of parameters
            batch = wanted[i : i + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(f"SELECT key, value FROM entries WHERE kind=? AND key IN ({marks})", [kind, *batch])
            found.update(rows)
        return found

    def get(self, kind: str, key: str) -> bytes | None:
        return self.get_many(kind, [key]).get(key)

    def put_many(self, kind: str, items: dict[str, bytes]) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO entries (kind, key, value) VALUES (?, ?, ?)",
                [(kind, k, v) for k, v in items.items()],
            )

    def close(self) -> None:
        self._db.close()
