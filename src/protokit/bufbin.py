"""Finding the buf binary: PROTOKIT_BUF, then the project's node_modules/.bin/buf, then PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from protokit.errors import ProtokitError

INSTALL_HINT = "npm install --save-exact @bufbuild/buf@1.75.0   (or set PROTOKIT_BUF=/path/to/buf)"


def find_buf(project_root: Path | None) -> Path:
    explicit = os.environ.get("PROTOKIT_BUF")
    if explicit:
        path = Path(explicit)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ProtokitError(f"PROTOKIT_BUF={explicit} is not an executable file")
    start = project_root or Path.cwd().resolve()
    if start:
        for parent in (start, *start.parents):
            candidate = parent / "node_modules" / ".bin" / "buf"
            if candidate.is_file():
                return candidate
    found = shutil.which("buf")
    if found:
        return Path(found)
    raise ProtokitError(f"buf not found; install it with: {INSTALL_HINT}")


def buf_version(buf: Path) -> str:
    proc = subprocess.run([str(buf), "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip() or "unknown"
