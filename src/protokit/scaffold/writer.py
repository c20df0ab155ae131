"""The transactional writer: it creates files and directories, never replaces a file, and removes everything
it created when a later step fails, so a run either completes or leaves the tree as it was."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from protokit.errors import ProtokitError

T = TypeVar("T")


def write_then(root: Path, files: Mapping[str, str], then: Callable[[], T], what: str) -> T:
    """Create `root` and `files` (relative path -> content, never replacing one), then call `then` (protokit
    gen); if anything fails, remove all that was created and raise: the tree is left as it was.
    `what` names the input in the message when `then` raises a ProtokitError ("the new service")."""
    transaction = Transaction(root)
    try:
        transaction.mkdir(root)
        for path, content in files.items():
            transaction.write(root / path, content)
        return then()
    except OSError as exc:
        transaction.rollback()
        where = f" {exc.filename}" if exc.filename else ""
        raise ProtokitError(f"cannot write{where}: {exc.strerror or exc}; nothing was written") from exc
    except ProtokitError as exc:
        transaction.rollback()
        raise ProtokitError(
            f"protokit gen failed on {what}, so nothing was written", exc.lines or [exc.message]
        ) from exc
    except BaseException:
        transaction.rollback()
        raise


class Transaction:
    """Creates files (never replacing one) and directories, and removes them all again on rollback."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[Path] = []
        self.dirs: list[Path] = []

    def mkdir(self, directory: Path) -> None:
        missing = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for d in reversed(missing):
            d.mkdir()
            self.dirs.append(d)

    def write(self, path: Path, content: str) -> None:
        self.mkdir(path.parent)
        with open(path, "x", encoding="utf-8", newline="\n") as fh:
            self.files.append(path)
            fh.write(content)

    def rollback(self) -> None:
        for path in reversed(self.files):
            path.unlink(missing_ok=True)
        for directory in reversed(self.dirs):
            _remove_tree_if_ours(directory)


def _remove_tree_if_ours(directory: Path) -> None:
    """Remove a directory this run created, with whatever gen or Python caches put inside it."""
    import shutil

    if directory.is_dir() and not directory.is_symlink():
        shutil.rmtree(directory, ignore_errors=True)
