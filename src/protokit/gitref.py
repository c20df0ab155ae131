"""Reading a project's protos as they were at a git ref, without buf's `.git#branch=` input.

protokit materialises the committed module directories itself, so it works where buf's git input
fails: CI checkouts with only `origin/main`, buf.yaml in a subdirectory, runs from a subdirectory.
A shallow clone missing the ref gets the exact `git fetch` to run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
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


def find(project_root: Path, ref: str) -> GitTree | None:
    """The commit `ref` names (also as `origin/REF`), or None: not a ref, or not inside a git repository."""
    try:
        top = git(["rev-parse", "--show-toplevel"], project_root)
    except ProtokitError:  # no git: nothing is a ref (resolve says git is missing)
        return None
    if top.returncode != 0:
        return None
    toplevel = Path(_out(top)).resolve()
    prefix = project_root.resolve().relative_to(toplevel).as_posix()
    prefix = "" if prefix == "." else prefix
    for candidate in (ref, f"origin/{ref}"):
        proc = git(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], toplevel)
        if proc.returncode == 0:
            return GitTree(toplevel, prefix, candidate, _out(proc))
    return None


def resolve(project_root: Path, ref: str) -> GitTree:
    tree = find(project_root, ref)
    if tree is not None:
        return tree
    top = git(["rev-parse", "--show-toplevel"], project_root)
    if top.returncode != 0:
        raise ProtokitError(
            f"--against {ref}: {project_root} is not inside a git repository "
            "(pass a directory or an image file instead)"
        )
    raise ProtokitError(_missing_ref_message(Path(_out(top)).resolve(), ref))


def full_name(tree: GitTree) -> str:
    """How to name the ref without ambiguity: refs/heads/main, refs/tags/v1, else the commit id."""
    proc = git(["rev-parse", "--symbolic-full-name", tree.ref], tree.toplevel)
    name = _out(proc)
    return name if proc.returncode == 0 and name else tree.commit


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


def materialise(tree: GitTree, paths: list[str], dest: Path, wanted: Callable[[str], bool] = lambda _: True) -> None:
    """Write the committed files under `paths` (relative to the project root) that are `wanted` under
    dest. Read from the object store, not with `git archive`, which drops paths marked export-ignore
    in .gitattributes; two git processes however many files."""
    dest.mkdir(parents=True, exist_ok=True)
    entries = [(rel, oid) for rel, oid in _ls_files(tree, paths) if wanted(rel)]
    if not entries:
        return
    proc = git(["cat-file", "--batch"], tree.toplevel, "".join(f"{oid}\n" for _, oid in entries).encode())
    if proc.returncode != 0:
        raise ProtokitError(f"git cat-file at {tree.ref} failed: {proc.stderr.decode().strip()}")
    root = dest.resolve()
    for (rel, _), data in zip(entries, _batch_contents(proc.stdout), strict=True):
        target = root / rel
        if not target.resolve().is_relative_to(root):
            continue  # never write outside dest, whatever the tree says
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _ls_files(tree: GitTree, paths: list[str]) -> list[tuple[str, str]]:
    """(path relative to the project root, blob id) of the regular files under `paths` at the ref."""
    specs = [f"{tree.prefix}/{p}" if tree.prefix else p for p in paths]
    specs = [s.rstrip("/").removesuffix("/.") for s in specs]
    # "." (the repository root itself) is every file: ls-tree takes no path for that.
    args = [] if "." in specs else ["--", *specs]
    proc = git(["ls-tree", "-r", "-z", "--full-tree", tree.commit, *args], tree.toplevel)
    if proc.returncode != 0:
        raise ProtokitError(f"git ls-tree {tree.ref} failed: {proc.stderr.decode().strip()}")
    strip = f"{tree.prefix}/" if tree.prefix else ""
    out = []
    for record in proc.stdout.split(b"\0"):
        meta, _, name = record.decode(errors="surrogateescape").partition("\t")
        fields = meta.split()  # mode, type, object id
        # Regular files only: no symlinks (120000) or submodules (commit entries).
        if len(fields) == 3 and fields[0] in ("100644", "100755") and name.startswith(strip):
            out.append((name[len(strip) :], fields[2]))
    return out


def _batch_contents(data: bytes) -> list[bytes]:
    """The object contents in `git cat-file --batch` output: per object a line "OID TYPE SIZE", the
    content, a newline."""
    contents: list[bytes] = []
    pos = 0
    while pos < len(data):
        header_end = data.index(b"\n", pos)
        header = data[pos:header_end].split()
        if len(header) != 3:
            raise ProtokitError(f"git cat-file: unexpected output {data[pos:header_end].decode(errors='replace')}")
        size = int(header[2])
        contents.append(data[header_end + 1 : header_end + 1 + size])
        pos = header_end + 1 + size + 1
    return contents
