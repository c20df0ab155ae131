"""The transactional writer: it creates files and directories, never replaces a file, and removes everything
it created when a later step fails, so a run either completes or leaves the tree as it was."""

from __future__ import annotations

from pathlib import Path


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
