"""`protokit breaking --against REF`: buf's breaking rules image-vs-image, plus validation-contract rules.

The current side is the working tree (uncommitted edits included). The baseline is a git ref
(materialised with git archive), a directory, or an image file; baselines from git are cached by
the tree hashes of their module directories, which git already knows.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from protokit import bufrun, cache, gitref, toolchain
from protokit.bufbin import find_buf
from protokit.compile import build_descriptor_set
from protokit.config import BUF_YAML, Module, Project, load_project
from protokit.errors import CompileError, ProtokitError
from protokit.findings import Finding
from protokit.image import project_image
from protokit.sources import load_sources

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
    project = load_project(root) if (root / BUF_YAML).is_file() else Project(root=root, modules=fallback)
    modules = tuple(m for m in project.modules if (root / m.path).is_dir())
    project = Project(root=root, modules=modules, buf_yaml=project.buf_yaml)
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
    if target.is_file():
        return _image_baseline(project, target)
    if target.is_dir():
        image, names = _compile_baseline(target.resolve(), project.modules, against)
        key = cache.digest("dir", str(target.resolve()), image)
        return _store_baseline(key, image, names, against)
    return _git_baseline(project, against)


def _git_baseline(project: Project, ref: str) -> Baseline:
    tree = gitref.resolve(project.root, ref)
    label = f"{ref} ({tree.commit[:12]})"
    buf_yaml = gitref.read_file(tree, BUF_YAML)
    module_paths = [m.path for m in project.modules]
    if buf_yaml is not None:
        with tempfile.TemporaryDirectory(prefix="protokit-bufyaml-") as tmp:
            (Path(tmp) / BUF_YAML).write_bytes(buf_yaml)
            try:
                module_paths = [m.path for m in _modules_at(Path(tmp))]
            except ProtokitError as exc:
                raise ProtokitError(f"{BUF_YAML} at {label} is invalid: {exc.message}") from None
    trees = [f"{p}={gitref.tree_id(tree, p)}" for p in module_paths]
    key = cache.digest("git", toolchain.fingerprint(), *trees, buf_yaml or b"")
    store = cache.Store()
    record = store.get("baseline", key)
    path = cache.cache_dir() / "images" / f"baseline-{key}.binpb"
    if record is not None and path.is_file():
        return Baseline(path, json.loads(record), label)
    with tempfile.TemporaryDirectory(prefix="protokit-baseline-", dir=_scratch_dir()) as tmp:
        root = Path(tmp)
        gitref.materialise(tree, [*module_paths, BUF_YAML], root)
        for p in module_paths:
            (root / p).mkdir(parents=True, exist_ok=True)
        image, names = _compile_baseline(root, tuple(Module(p) for p in module_paths), label)
    return _store_baseline(key, image, names, label)


def _modules_at(root: Path) -> tuple[Module, ...]:
    """Module paths from a buf.yaml without requiring the directories to exist."""
    from protokit import yamlfile

    node = yamlfile.load(root / BUF_YAML, BUF_YAML)
    top = node.value if isinstance(node.value, dict) else {}
    modules = top.get("modules")
    if modules is None or not isinstance(modules.value, list):
        return (Module("."),)
    return tuple(Module(str(plain_path)) for plain_path in (bufrun.plain(m).get("path", ".") for m in modules.value))


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
    from protokit import validate_breaking
    from protokit.imagediff import prune
    from protokit.pyproject_config import load_protokit_config

    buf = find_buf()
    _, extra = load_protokit_config(project.root)
    sources = load_sources(project)
    current_image = project_image(project, sources)
    baseline = load_baseline(project, against)
    display = {name: f.display for name, f in sources.files.items()}
    owned = {*sources.files, *(n for names in baseline.names.values() for n in names)}
    pruned = prune(baseline.image.read_bytes(), current_image.read_bytes(), owned)
    result = BreakingResult([], baseline.label, len(sources.files))
    sections = bufrun.effective_sections(project, "breaking")
    if not pruned.targets or pruned.only_additions:
        # Nothing differs, or only new files: nothing can have broken, but a bad config is still an error.
        for section in sections:
            bufrun.check_config(buf, section, "breaking", project.root)
        return result

    with tempfile.TemporaryDirectory(prefix="protokit-breaking-", dir=_scratch_dir()) as tmp:
        base_path, cur_path = Path(tmp) / "baseline.binpb", Path(tmp) / "current.binpb"
        base_path.write_bytes(pruned.baseline)
        cur_path.write_bytes(pruned.current)

        def run_module(section: bufrun.Section) -> list[Finding]:
            module = section.module.path
            if section.ignore_all or not baseline.names.get(module):
                return []  # a new module breaks nothing
            mine = {*(n for n, f in sources.files.items() if f.module == module), *baseline.names[module]}
            names = [n for n in pruned.targets if n in mine]
            if not names:
                return []
            args = ["breaking", str(cur_path), "--against", str(base_path), "--exclude-imports"]
            args += ["--config", json.dumps(section.config), *bufrun.path_args(names)]
            return [bufrun.to_finding(raw, section.module) for raw in bufrun.run_buf(buf, args, project.root)]

        with ThreadPoolExecutor(max(1, len(sections))) as pool:
            pending = [pool.submit(run_module, s) for s in sections]
            own: list[Finding] = []
            if extra.validate and pruned.baseline:
                own = validate_breaking.compare(
                    pruned.baseline,
                    pruned.current,
                    [n for n in pruned.targets if n in sources.files],
                    lambda n: display.get(n, n),
                    extra.except_,
                )
            findings = [f for job in pending for f in job.result()]
    result.findings = sorted({*findings, *own})
    return result


def _scratch_dir() -> Path:
    """Temporary trees go beside the cache: often a faster filesystem than /tmp for many small files."""
    path = cache.cache_dir() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path
