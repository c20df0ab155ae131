"""Running the per-file generators over a set of proto files, using every core.

With two cores and enough files, the sorted files are cut in two parts of equal cost (split_point:
a part costs its files and the files they import) and a forked child takes the second. Each process
compiles its part into an image (where syntax and import errors surface), keeps only the comments of
its own files in it (_comments_only), runs protoc's own generators (python_out, grpc_python_out: C++),
then the in-process ones (mypy-protobuf), and packs each unit's output as its cache entry. Compiling
per part, not once up front, keeps the image build (~0.35 s on 1,000 files) off the serial path.
Each process makes one handler call per plugin: a request carries every descriptor, so many small
batches cost more than they balance.

protoc generates from the image, not from a fresh parse, because that is what `buf generate` does:
the image carries every field's json_name, and _pb2.py embeds them, so both tools emit the same bytes.
"""

from __future__ import annotations

import gc
import os
import signal
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from protokit import cache
from protokit.config import Project
from protokit.crash import crash_point
from protokit.errors import ProtokitError
from protokit.plugins.registry import Plugin
from protokit.sources import SourceSet

# Below this many files a second process costs more than it saves.
PARALLEL_THRESHOLD = 64
# (unit: the proto file an output belongs to and the plugin that wrote it, path under the project, content)
Triple = tuple[str, str, bytes]
Output = tuple[str, bytes]  # (path relative to the project root, content)
Progress = Callable[[str, int, int], None]  # (phase, done, total)
Imports = Callable[[str], Iterable[str]]
# What loading a file (parsing it, then reading it back as descriptors) costs next to generating one
# with the default generators: 0.57 ms against 1.73 ms of CPU time, from parts of the bench tree.
LOADED_WEIGHT = 0.33

_SUFFIXES = ("_pb2_grpc.pyi", "_pb2_grpc.py", "_pb2.pyi", "_pb2.py", "_protokit.py")


def unit(name: str, tag: str) -> str:
    """The cache unit of one proto file's output from one plugin: "user/v1/user_service.proto#0"."""
    return f"{name}#{tag}"


def unit_proto(unit: str) -> str:
    return unit.rpartition("#")[0]


def unit_stem(name: str) -> str:
    """The module path protoc's Python generators derive from a .proto name."""
    return name[: -len(".proto")].replace("-", "_").replace(".", "/")


class Generated:
    """What the generators wrote for one unit, and the same as one cache entry. Each process packs
    its own units: compressing is ~0.1 s on 1,000 files that would otherwise follow both halves."""

    def __init__(self, files: list[Output]) -> None:
        self.files = files  # sorted by path
        self.packed = cache.pack(files)


@dataclass
class _Work:
    project: Project
    modules: tuple[str, ...]
    names: tuple[str, ...]
    plugins: tuple[tuple[str, Plugin], ...]  # (tag, plugin): the tag names the plugin in unit names
    scratch: str
    validate: bool  # whether any file imports buf/validate/validate.proto

    def __post_init__(self) -> None:
        self.stems = {unit_stem(n): n for n in self.names}

    def collect(self, tag: str, plugin: Plugin, path: str, content: bytes, into: list[Triple]) -> None:
        name = next((self.stems.get(path[: -len(s)]) for s in _SUFFIXES if path.endswith(s)), None)
        if name is None:
            raise ProtokitError(f"plugin {plugin.label} wrote {path}, which matches no input file")
        out = "" if plugin.spec.out == "." else plugin.spec.out + "/"
        into.append((unit(name, tag), out + path, content))

    def run_all(self, names: Sequence[str]) -> dict[str, Generated]:
        """Compile `names` into an image and run every generator on them."""
        from protokit.compile import build_descriptor_set

        image = build_descriptor_set(self.project, cache.cache_dir(), names, self.modules, self.validate)
        image = _comments_only(image, names)
        image_path = Path(tempfile.mkdtemp(dir=self.scratch)) / "image.binpb"
        image_path.write_bytes(image)
        into: list[Triple] = []
        self.run_protoc_generators(image_path, names, into)
        self.handle(image, names, into)
        by_unit: dict[str, list[Output]] = {}
        for unit, path, content in into:
            by_unit.setdefault(unit, []).append((path, content))
        return {unit: Generated(sorted(files)) for unit, files in by_unit.items()}

    def run_protoc_generators(self, image_path: Path, names: Sequence[str], into: list[Triple]) -> None:
        """protoc's own generators over the image; each writes one zip (one file, not thousands)."""
        from protokit.compile import run_protoc

        flagged = [(tag, p) for tag, p in self.plugins if p.protoc_flag and not p.handler]
        if not flagged:
            return
        scratch = Path(tempfile.mkdtemp(dir=self.scratch))
        args = [f"--descriptor_set_in={image_path}"]
        for i, (_, plugin) in enumerate(flagged):
            param = f"{plugin.spec.parameter}:" if plugin.spec.parameter else ""
            args.append(f"--{plugin.protoc_flag}={param}{scratch / f'{i}.zip'}")
        result = run_protoc([*args, *names])
        if result.returncode != 0:
            raise ProtokitError("code generation failed", (result.stderr or result.stdout).strip().splitlines())
        for i, (tag, plugin) in enumerate(flagged):
            with zipfile.ZipFile(scratch / f"{i}.zip") as archive:
                for info in sorted(archive.infolist(), key=lambda z: z.filename):
                    self.collect(tag, plugin, info.filename, archive.read(info), into)

    def handle(self, image: bytes, batch: Sequence[str], into: list[Triple]) -> None:
        """Run the in-process generators for one batch of files."""
        from google.protobuf import descriptor_pb2
        from google.protobuf.compiler import plugin_pb2

        fds = descriptor_pb2.FileDescriptorSet.FromString(image)
        for tag, plugin in self.plugins:
            if plugin.handler is None:
                continue
            request = plugin_pb2.CodeGeneratorRequest(
                file_to_generate=batch, parameter=plugin.spec.parameter, proto_file=fds.file
            )
            response = plugin.handler(request)
            if response.error:
                raise ProtokitError(f"plugin {plugin.label} failed: {response.error}")
            for f in response.file:
                self.collect(tag, plugin, f.name, f.content.encode(), into)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic GC off while generating. The generators allocate millions of short-lived,
    acyclic objects, so its passes find nothing to free; scanning the heap that grows with the
    output cost mypy-protobuf ~25% of its time on 1,000 files."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _comments_only(image: bytes, names: Sequence[str]) -> bytes:
    """The image with only the source info generators read: comments, and only those of `names`.

    Imports lose their source info; the files to generate keep the locations whose path carries a
    comment (all locations sharing such a path: protoc reads the first, mypy-protobuf the last).
    That drops about two thirds of the locations, which protoc and the Python generators would load.
    """
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(image)
    wanted = set(names)
    for file in fds.file:
        if file.name not in wanted:
            file.ClearField("source_code_info")
            continue
        locations = file.source_code_info.location
        paths = [tuple(location.path) for location in locations]
        commented = {
            path
            for path, location in zip(paths, locations, strict=True)
            if location.leading_comments or location.trailing_comments or location.leading_detached_comments
        }
        kept = [location for path, location in zip(paths, locations, strict=True) if path in commented]
        file.source_code_info.CopyFrom(descriptor_pb2.SourceCodeInfo(location=kept))
    return fds.SerializeToString()


def split_point(ordered: Sequence[str], imports: Imports) -> int:
    """Where to cut `ordered` so that both parts cost about the same to generate.

    A part costs its own files plus every file protoc loads for them (their transitive imports),
    a loaded file counting LOADED_WEIGHT of a generated one. The cut matters when imports run one
    way: in a tree where later files import earlier ones, the second half loads nearly everything.
    """
    n = len(ordered)
    before = _loaded_counts(ordered, imports)
    after = _loaded_counts(ordered[::-1], imports)[::-1]

    def cost(k: int) -> float:
        return max(k + LOADED_WEIGHT * before[k], n - k + LOADED_WEIGHT * after[k])

    return min(range(1, n), key=cost)


def _loaded_counts(ordered: Sequence[str], imports: Imports) -> list[int]:
    """counts[k]: how many files compiling ordered[:k] loads (the files and everything they import)."""
    seen: set[str] = set()
    counts = [0]
    for name in ordered:
        stack = [name]
        while stack:
            file = stack.pop()
            if file not in seen:
                seen.add(file)
                stack.extend(imports(file))
        counts.append(len(seen))
    return counts


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this forked worker when its parent (pid `parent`, taken before the fork) dies: a
    SIGKILLed gen must leave no orphan."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker ends when the pipe to its parent closes
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def generate_files(
    project: Project,
    sources: SourceSet,
    modules: tuple[str, ...],
    names: Sequence[str],
    plugins: Sequence[tuple[str, Plugin]],
    progress: Progress,
) -> dict[str, Generated]:
    """Generate `names` (proto names relative to their module roots) with `plugins` (tagged); by unit
    (`unit(name, tag)`), what each wrote. Units that wrote nothing are absent."""
    validate = sources.imports_validate
    with _collector_paused(), cache.scratch_dir("gen-") as scratch:
        work = _Work(project, modules, tuple(names), tuple(plugins), scratch, validate)
        cores = os.cpu_count() or 1
        if cores < 2 or len(names) < PARALLEL_THRESHOLD:
            return work.run_all(names)
        ordered = sorted(names)
        cut = split_point(ordered, lambda name: sources.files[name].imports if name in sources.files else ())
        return _fan_out(work, ordered[cut:], ordered[:cut], progress)


def _fan_out(work: _Work, child_names: list[str], parent_names: list[str], progress: Progress) -> dict[str, Generated]:
    from protokit.compile import build_descriptor_set
    from protokit.errors import CompileError

    ctx = get_context("fork")  # the child inherits the imported generators; nothing is re-imported
    receive, send = ctx.Pipe(duplex=False)

    parent = os.getpid()

    def child() -> None:
        _die_with_parent(parent)
        outcome: Any
        try:
            outcome = ("ok", work.run_all(child_names))
        except CompileError:
            outcome = ("compile-error",)
        except ProtokitError as exc:
            outcome = ("error", exc.message, exc.lines)
        except BaseException as exc:  # report, never leave the parent waiting
            outcome = ("error", f"code generation failed: {exc!r}", [])
        send.send(outcome)
        send.close()

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    send.close()
    crash_point("compile")
    total = len(child_names) + len(parent_names)
    mine: dict[str, Generated] = {}
    compile_failed = False
    try:
        try:
            mine = work.run_all(parent_names)
        except CompileError:
            compile_failed = True
        progress("generate", len(parent_names), total)
        outcome = receive.recv()
    except EOFError:
        raise ProtokitError("code generation worker died unexpectedly") from None
    finally:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
    if compile_failed or outcome[0] == "compile-error":
        # Report every file's errors, as one compile of all the files does, not just one half's.
        build_descriptor_set(work.project, cache.cache_dir(), sorted(work.names), work.modules, work.validate)
    if outcome[0] == "error":
        raise ProtokitError(outcome[1], outcome[2])
    progress("generate", total, total)
    theirs: dict[str, Generated] = outcome[1]
    return mine | theirs
