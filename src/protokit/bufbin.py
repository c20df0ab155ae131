"""Finding the buf binary: PROTOKIT_BUF, then `buf` on PATH, then the one the `buf-bin` wheel installed.

buf is a normal dependency of protokit: Buf publishes the CLI on the package index as the wheel `buf-bin`
(the same binary as the npm package), which puts `buf` in the environment's scripts directory. An
explicit PROTOKIT_BUF, or a `buf` on PATH (an activated venv puts the wheel's there too), wins.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from protokit.errors import ProtokitError

# The buf release protokit is tested with; pyproject.toml pins the `buf-bin` wheel to it.
BUF_VERSION = "1.75.0"
INSTALL_HINT = f"pip install buf-bin=={BUF_VERSION}   (or set PROTOKIT_BUF=/path/to/buf)"


@dataclass(frozen=True)
class BufBinary:
    path: Path
    source: str  # where it was found: "PROTOKIT_BUF", "PATH" or "buf-bin wheel"


def locate_buf() -> BufBinary:
    explicit = os.environ.get("PROTOKIT_BUF")
    if explicit:
        path = Path(explicit)
        if path.is_file() and os.access(path, os.X_OK):
            return BufBinary(path, "PROTOKIT_BUF")
        raise ProtokitError(f"PROTOKIT_BUF={explicit} is not an executable file")
    wheel = Path(sysconfig.get_path("scripts")) / ("buf.exe" if os.name == "nt" else "buf")
    found = shutil.which("buf")
    # The wheel's own buf on PATH (an activated venv) is named as the wheel's.
    if found and Path(found).parent.resolve() != wheel.parent.resolve():
        return BufBinary(Path(found), "PATH")
    if wheel.is_file() and os.access(wheel, os.X_OK):
        return BufBinary(wheel, "buf-bin wheel")
    raise ProtokitError(f"buf not found; install it with: {INSTALL_HINT}")


def find_buf() -> Path:
    """The buf to run (see the module doc)."""
    return locate_buf().path


def buf_version(buf: Path) -> str:
    proc = subprocess.run([str(buf), "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip() or "unknown"
