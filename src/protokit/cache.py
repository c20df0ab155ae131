"""A content-addressed cache shared by all protokit projects of a user (like buf's ~/.cache/buf).

Entries are written atomically (temp file + rename), so concurrent runs never see half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    explicit = os.environ.get("PROTOKIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "protokit"


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class Store:
    """Blobs by content hash plus small JSON records by key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.root / "blobs" / sha[:2] / sha
        if not path.exists():
            _atomic_write(path, data)
        return sha

    def get_blob(self, sha: str) -> bytes | None:
        try:
            return (self.root / "blobs" / sha[:2] / sha).read_bytes()
        except FileNotFoundError:
            return None

    def put_record(self, kind: str, key: str, value: Any) -> None:
        _atomic_write(self.root / kind / key[:2] / f"{key}.json", json.dumps(value).encode())

    def get_record(self, kind: str, key: str) -> Any | None:
        try:
            return json.loads((self.root / kind / key[:2] / f"{key}.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return None
