"""`protokit breaking --against REF`: buf's breaking rules image-vs-image, plus validation-contract rules.

The current side is the working tree (uncommitted edits included). The baseline is a git ref
(its committed .proto files and buf.yaml, read from git's object store), a directory, or an image
file; baselines from git are cached by the tree hashes of their module directories, which git
already knows. Modules are compared pairwise as buf pairs them (see modulepairs), file by file by
their names relative to the module root.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from protokit import cache, gitref, toolchain
from protokit.bufbin import find_buf
from protokit.check import bufrun
from protokit.check.imagediff import Image, Pruned, prune
from protokit.check.modulepairs import pair_modules
from protokit.compile import build_descriptor_set
from protokit.config import BUF_WORK_YAML, BUF_YAML, Module, Project, load_project, module_dirs
from protokit.errors import CompileError, ProtokitError
from protokit.findings import Finding
from protokit.image import project_image
from protokit.sources import SourceSet, load_sources

_IMPORTED = ("google/protobuf/", "google/api/", "google/rpc/", "google/type/", toolchain.VALIDATE_PROTO)


@dataclass
class Baseline:
    image: Path
    names: dict[str, list[str]]  # module path -> proto names (relative to the module root)
    label: str


@dataclass
class BreakingResult:
    findings: list[Finding]
    against: str
    files: int = 0
    notes: list[str] = field(default_factory=list)


def _compile_baseline(root: Path, fallback: tuple[Module, ...], label: str) -> tuple[bytes, dict[str, list[str]]]:
    configured = any((root / name).is_file() for name in _CONFIGS)
    try:
        project = load_project(root) if configured else Project(root=root, modules=fallback)
    except ProtokitError as exc:
        raise ProtokitError(f"the baseline {label}: {exc.message}") from None
    modules = tuple(m for m in project.modules if (root / m.path).is_dir())
    project = dataclasses.replace(project, modules=modules)
    sources = load_sources(project)
    names: dict[str, list[str]] = {m.path: [] for m in modules}
    for name, f in sources.files.items():
        names[f.module].append(name)
    if not sources.files:
        return b"", names
    try:
        modules_paths = tuple(m.path for m in modules)
        image = build_descriptor_set(
            project, cache.cache_dir(), list(sources.files), modules_paths, sources.imports_validate
        )
    except CompileError as exc:
        raise ProtokitError(
            f"the baseline ({label}) does not compile", [f"{label}: {line}" for line in exc.lines]
        ) from None
    return image, names


def _store_baseline(key: str, image: bytes, names: dict[str, list[str]], label: str) -> Baseline:
    path = cache.cache_dir() / "images" / f"baseline-{key}.binpb"
    cache.atomic_write(path, image)
    cache.Store().put_many("baseline", {key: json.dumps(names).encode()})
    return Baseline(path, names, label)


def load_baseline(project: Project, against: str) -> Baseline:
    target = Path(against)
    if target.is_file() or target.is_dir():
        tree = gitref.find(project.root, against)
        if tree is not None:
            raise ProtokitError(_ambiguous(against, target, tree))
        if target.is_file():
            return _image_baseline(project, target)
        # Without a buf.yaml of its own the directory is one module at its root, as buf reads it.
        image, names = _compile_baseline(target.resolve(), (Module("."),), against)
        key = cache.digest("dir", str(target.resolve()), image)
        return _store_baseline(key, image, names, against)
    return _git_baseline(against, gitref.resolve(project.root, against))


def _ambiguous(against: str, target: Path, tree: gitref.GitTree) -> str:
    """git's "ambiguous argument: both revision and filename", with the two ways out."""
    ref = gitref.full_name(tree)
    kinds = {"refs/heads/": "branch", "refs/tags/": "tag", "refs/remotes/": "remote branch"}
    kind = next((k for prefix, k in kinds.items() if ref.startswith(prefix)), "commit")
    path = against if against.startswith(("./", "../")) else f"./{against}"
    what = "directory" if target.is_dir() else "file"
    return (
        f"--against {against} is ambiguous: both the {what} {path} and the git {kind} {tree.ref} ({ref}); "
        f"pass --against {path} for the {what} or --against {ref} for the {kind}"
    )


def _git_baseline(ref: str, tree: gitref.GitTree) -> Baseline:
    label = f"{ref} ({tree.commit[:12]})"
    configs = {name: data for name in _CONFIGS if (data := gitref.read_file(tree, name)) is not None}
    module_dirs = _module_dirs_at(configs, label)
    trees = [f"{p}={gitref.tree_id(tree, p)}" for p in module_dirs]
    key = cache.digest("git-objects", toolchain.fingerprint(), *trees, *(x for item in configs.items() for x in item))
    store = cache.Store()
    record = store.get("baseline", key)
    path = cache.cache_dir() / "images" / f"baseline-{key}.binpb"
    if record is not None and path.is_file():
        return Baseline(path, json.loads(record), label)
    with cache.scratch_dir("baseline-") as tmp:
        root = Path(tmp)
        # The protos and the buf.yaml files of v1 modules; the module directories exist even if empty.
        gitref.materialise(tree, module_dirs, root, lambda rel: rel.endswith(".proto") or _is_buf_yaml(rel))
        for name, data in configs.items():
            (root / name).write_bytes(data)
        for p in module_dirs:
            (root / p).mkdir(parents=True, exist_ok=True)
        image, names = _compile_baseline(root, (Module("."),), label)
    return _store_baseline(key, image, names, label)


_CONFIGS = (BUF_YAML, BUF_WORK_YAML)


def _is_buf_yaml(rel: str) -> bool:
    return rel.rsplit("/", 1)[-1] == BUF_YAML


def _module_dirs_at(configs: dict[str, bytes], label: str) -> list[str]:
    """The directories of the baseline's modules, from its top-level config files alone (the directories
    need not exist yet). Without config the directory itself is the one module, as in buf."""
    with tempfile.TemporaryDirectory(prefix="protokit-bufyaml-") as tmp:
        for name, data in configs.items():
            (Path(tmp) / name).write_bytes(data)
        try:
            return [os.path.normpath(d) for d in module_dirs(Path(tmp))]
        except ProtokitError as exc:
            raise ProtokitError(f"the baseline {label}: {exc.message}") from None


def _image_baseline(project: Project, path: Path) -> Baseline:
    from google.protobuf import descriptor_pb2
    from google.protobuf.message import DecodeError

    data = path.read_bytes()
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    except DecodeError:
        raise ProtokitError(f"--against {path}: not a FileDescriptorSet image (.binpb)") from None
    if not fds.file:
        raise ProtokitError(f"--against {path}: the image holds no files")
    current = load_sources(project)
    names: dict[str, list[str]] = {m.path: [] for m in project.modules}
    default = project.modules[0].path
    for f in fds.file:
        if f.name.startswith(_IMPORTED):
            continue
        owner = current.files[f.name].module if f.name in current.files else default
        names[owner].append(f.name)
    return Baseline(path.resolve(), names, str(path))


def breaking(project: Project, against: str) -> BreakingResult:
    from protokit.config.pyproject_config import load_protokit_config

    buf = find_buf()
    _, extra = load_protokit_config(project.root)
    sources = load_sources(project)
    current_image = project_image(project, sources)
    baseline = load_baseline(project, against)
    result = BreakingResult([], baseline.label, len(sources.files))
    sections = bufrun.effective_sections(project, "breaking")
    jobs = _pairs_to_check(sources, current_image, baseline, sections)
    if not jobs:
        # Nothing differs, or only new files: nothing can have broken, but a bad config is still an error.
        for section in sections:
            bufrun.check_config(buf, section, "breaking", project.root)
        return result

    display = {name: f.display for name, f in sources.files.items()}
    with (
        cache.scratch_dir("breaking-") as tmp,
        ThreadPoolExecutor(len(jobs)) as pool,
    ):
        pending = [pool.submit(_run_buf, buf, project.root, Path(tmp) / str(i), *job) for i, job in enumerate(jobs)]
        # protokit's own rules run here while buf runs in its processes.
        own = [f for _, pruned in jobs for f in _validate(pruned, display, extra.except_)] if extra.validate else []
        findings = [f for job in pending for f in job.result()]
    result.findings = sorted({*findings, *own})
    return result


def _pairs_to_check(
    sources: SourceSet, current_image: Path, baseline: Baseline, sections: list[bufrun.Section]
) -> list[tuple[bufrun.Section, Pruned]]:
    """Each pair of modules buf would compare, with the images it needs, unless nothing can have broken."""
    current = {s.module.path: [n for n, f in sources.files.items() if f.module == s.module.path] for s in sections}
    by_path = {s.module.path: s for s in sections}
    old, new = Image.parse(baseline.image.read_bytes()), Image.parse(current_image.read_bytes())
    jobs = []
    for module, base_module in pair_modules(current, baseline.names, baseline.label):
        pruned = prune(old, new, baseline.names[base_module], current[module])
        if pruned.targets and not pruned.only_additions:
            jobs.append((by_path[module], pruned))
    return jobs


def _run_buf(buf: Path, cwd: Path, scratch: Path, section: bufrun.Section, pruned: Pruned) -> list[Finding]:
    """buf's findings for one pair of modules."""
    if section.ignore_all:
        return []
    scratch.mkdir()
    base_path, cur_path = scratch / "baseline.binpb", scratch / "current.binpb"
    base_path.write_bytes(pruned.baseline)
    cur_path.write_bytes(pruned.current)
    args = ["breaking", str(cur_path), "--against", str(base_path), "--exclude-imports"]
    args += ["--config", json.dumps(section.config), *bufrun.path_args(pruned.targets)]
    found = bufrun.run_buf(buf, args, cwd, section.module.where.path)
    return [bufrun.to_finding(raw, section.module) for raw in found]


def _validate(pruned: Pruned, display: dict[str, str], disabled: tuple[str, ...]) -> list[Finding]:
    """protokit's validation-contract findings for one pair of modules (`display`: the working tree's files)."""
    from protokit.check import validate_breaking

    files = [n for n in pruned.targets if n in display]
    return validate_breaking.compare(pruned.baseline, pruned.current, files, display.__getitem__, disabled)
