"""Reading a project's protos as they were at a git ref, without buf's `.git#branch=` input.

protokit materialises the committed module directories itself (`git archive`), so it works where
buf's git input fails: CI checkouts with only `origin/main`, buf.yaml in a subdirectory, runs
from a subdirectory. A shallow clone missing the ref gets the exact `git fetch` to run.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from protokit.errors import ProtokitError


@dataclass(frozen=True)
class GitTree:
    toplevel: Path
    prefix: str  # the project root relative to the repository root ("" at the top)
    ref: str
    commit: str


def git(args: list[str], cwd: Path, input_bytes: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, input=input_bytes, check=False)
    except FileNotFoundError:
        raise ProtokitError("git is not installed, and --against names a git ref") from None


def _out(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode().strip()


def resolve(project_root: Path, ref: str) -> GitTree:
    top = git(["rev-parse", "--show-toplevel"], project_root)
    if top.returncode != 0:
        raise ProtokitError(
            f"--against {ref}: {project_root} is not inside a git repository "
            "(pass a directory or an image file instead)"
        )
    toplevel = Path(_out(top)).resolve()
    prefix = project_root.resolve().relative_to(toplevel).as_posix()
    prefix = "" if prefix == "." else prefix
    for candidate in (ref, f"origin/{ref}"):
        proc = git(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], toplevel)
        if proc.returncode == 0:
            return GitTree(toplevel, prefix, candidate, _out(proc))
    raise ProtokitError(_missing_ref_message(toplevel, ref))


def _missing_ref_message(toplevel: Path, ref: str) -> str:
    shallow = _out(git(["rev-parse", "--is-shallow-repository"], toplevel)) == "true"
    remote_branch = ref.removeprefix("origin/")
    looks_like_branch = not any(c in ref for c in "~^:@") and not _is_hex(ref)
    if looks_like_branch and _out(git(["remote"], toplevel)):
        depth = "--depth=1 " if shallow else ""
        target = f"refs/remotes/origin/{remote_branch}" if ref.startswith("origin/") else remote_branch
        fetch = f"git fetch {depth}origin {remote_branch}:{target}"
        what = "this shallow clone does not have" if shallow else "unknown git ref"
        return f"--against {ref}: {what} {ref}; fetch it with: {fetch}"
    if shallow:
        return f"--against {ref}: this shallow clone does not have {ref}; deepen it with: git fetch --unshallow"
    return f"--against {ref}: unknown git ref (not a branch, tag or commit of this repository)"


def _is_hex(ref: str) -> bool:
    return len(ref) >= 7 and all(c in "0123456789abcdef" for c in ref.lower())


def tree_id(tree: GitTree, path: str) -> str | None:
    """The git object id of a path at the ref (None when absent): a content hash for free."""
    full = f"{tree.prefix}/{path}" if tree.prefix else path
    full = full.rstrip("/").removesuffix("/.") or "."
    spec = f"{tree.commit}:{'' if full == '.' else full}"
    proc = git(["rev-parse", "--verify", "--quiet", spec], tree.toplevel)
    return _out(proc) if proc.returncode == 0 else None


def read_file(tree: GitTree, path: str) -> bytes | None:
    full = f"{tree.prefix}/{path}" if tree.prefix else path
    proc = git(["show", f"{tree.commit}:{full}"], tree.toplevel)
    return proc.stdout if proc.returncode == 0 else None


def materialise(tree: GitTree, paths: list[str], dest: Path) -> None:
    """Write the committed content of `paths` (relative to the project root) under dest."""
    present = [p for p in paths if tree_id(tree, p) is not None]
    dest.mkdir(parents=True, exist_ok=True)
    if not present:
        return
    specs = [f"{tree.prefix}/{p}" if tree.prefix else p for p in present]
    proc = git(["archive", "--format=tar", tree.commit, "--", *specs], tree.toplevel)
    if proc.returncode != 0:
        raise ProtokitError(f"git archive {tree.ref} failed: {proc.stderr.decode().strip()}")
    strip = f"{tree.prefix}/" if tree.prefix else ""
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        for member in archive.getmembers():
            if not member.isfile() or not member.name.startswith(strip):
                continue
            rel = member.name[len(strip) :]
            target = dest / rel
            if not target.resolve().is_relative_to(dest.resolve()):
                continue  # never write outside dest, whatever the archive says
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            if source is not None:
                target.write_bytes(source.read())
