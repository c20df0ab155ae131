"""Running the per-file generators over a set of proto files, using every core.

A child process compiles every file with protoc's own generators in the same call (python_out,
grpc_python_out: C++, one parse) and then runs the in-process generators (mypy-protobuf, Python
speed) on a leading share of the files; the parent compiles the image alone and runs the
in-process generators on the rest. Each process makes one handler call: a request carries every
descriptor, so splitting into many small batches costs more than it balances.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from protokit import cache, toolchain
from protokit.config import Project
from protokit.errors import ProtokitError
from protokit.plugins.registry import Plugin

VALIDATE_UNIT = toolchain.VALIDATE_PROTO
# Below this many files a second process costs more than it saves.
PARALLEL_THRESHOLD = 64
# Cost per file, measured on 1,000 protos with both cores busy: protoc parsing plus its own
# generators ~1.4 ms, parsing to an image alone ~0.35 ms, in-process generators ~1.1 ms.
# They decide how many files the child also runs the in-process generators for.
_PROTOC_GENERATORS_COST = 1.4
_COMPILE_COST = 0.35
_HANDLER_COST = 1.1

Triple = tuple[str, str, bytes]  # (unit: the proto file an output belongs to, path under the project, content)
Progress = Callable[[str, int, int], None]

_SUFFIXES = ("_pb2_grpc.pyi", "_pb2_grpc.py", "_pb2.pyi", "_pb2.py")


def unit_stem(name: str) -> str:
    """The module path protoc's Python generators derive from a .proto name."""
    return name[: -len(".proto")].replace("-", "_").replace(".", "/")


@dataclass
class _Work:
    project: Project
    modules: tuple[str, ...]
    names: tuple[str, ...]
    plugins: tuple[Plugin, ...]
    scratch: str

    def __post_init__(self) -> None:
        self.stems = {unit_stem(n): n for n in self.names}

    def collect(self, plugin: Plugin, path: str, content: bytes, into: list[Triple]) -> None:
        unit = next((self.stems.get(path[: -len(s)]) for s in _SUFFIXES if path.endswith(s)), None)
        if unit is None:
            raise ProtokitError(f"plugin {plugin.label} wrote {path}, which matches no input file")
        if unit == VALIDATE_UNIT and not plugin.validate_module:
            return
        out = "" if plugin.spec.out == "." else plugin.spec.out + "/"
        into.append((unit, out + path, content))

    def compile(self, with_generators: bool, into: list[Triple]) -> bytes:
        """Compile all names to an image; optionally run protoc's own generators in the same call."""
        from protokit.compile import build_descriptor_set

        flagged = [p for p in self.plugins if p.protoc_flag and not p.handler] if with_generators else []
        scratch = Path(tempfile.mkdtemp(dir=self.scratch))
        # One zip per generator: protoc writes one file instead of thousands.
        args = []
        for i, plugin in enumerate(flagged):
            param = f"{plugin.spec.parameter}:" if plugin.spec.parameter else ""
            args.append(f"--{plugin.protoc_flag}={param}{scratch / f'{i}.zip'}")
        image = build_descriptor_set(self.project, cache.cache_dir(), self.names, self.modules, args)
        for i, plugin in enumerate(flagged):
            with zipfile.ZipFile(scratch / f"{i}.zip") as archive:
                for info in sorted(archive.infolist(), key=lambda z: z.filename):
                    self.collect(plugin, info.filename, archive.read(info), into)
        return image

    def handle(self, image: bytes, batch: Sequence[str], into: list[Triple]) -> None:
        """Run the in-process generators for one batch of files."""
        from google.protobuf import descriptor_pb2
        from google.protobuf.compiler import plugin_pb2

        fds = descriptor_pb2.FileDescriptorSet.FromString(image)
        for plugin in self.plugins:
            if plugin.handler is None:
                continue
            names = [n for n in batch if plugin.validate_module or n != VALIDATE_UNIT]
            if not names:
                continue
            request = plugin_pb2.CodeGeneratorRequest(
                file_to_generate=names, parameter=plugin.spec.parameter, proto_file=fds.file
            )
            response = plugin.handler(request)
            if response.error:
                raise ProtokitError(f"plugin {plugin.label} failed: {response.error}")
            for f in response.file:
                self.collect(plugin, f.name, f.content.encode(), into)


def child_share(n: int, has_protoc_generators: bool) -> int:
    """How many files the child runs the in-process generators for, so both processes end together.

    child: compile n with protoc's generators + handlers for k; parent: compile n + handlers for n - k.
    """
    child_compile = _PROTOC_GENERATORS_COST if has_protoc_generators else _COMPILE_COST
    k = n * (_COMPILE_COST + _HANDLER_COST - child_compile) / (2 * _HANDLER_COST)
    return max(0, min(n, round(k)))


def generate_files(
    project: Project,
    modules: tuple[str, ...],
    names: Sequence[str],
    plugins: Sequence[Plugin],
    progress: Progress,
) -> list[Triple]:
    """Generate `names` (proto names relative to their module roots) with every per-file plugin."""
    has_handlers = any(p.handler for p in plugins)
    with tempfile.TemporaryDirectory(prefix="protokit-gen-") as scratch:
        work = _Work(project, modules, tuple(names), tuple(plugins), scratch)
        cores = os.cpu_count() or 1
        if cores < 2 or len(names) < PARALLEL_THRESHOLD or not has_handlers:
            results: list[Triple] = []
            work.handle(work.compile(True, results), names, results)
            return results
        k = child_share(len(names), any(p.protoc_flag and not p.handler for p in plugins))
        return _fan_out(work, list(names[:k]), list(names[k:]), progress)


def _fan_out(work: _Work, child_names: list[str], parent_names: list[str], progress: Progress) -> list[Triple]:
    ctx = get_context("fork")  # the child inherits the imported generators; nothing is re-imported
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        outcome: Any
        try:
            results: list[Triple] = []
            work.handle(work.compile(True, results), child_names, results)
            outcome = ("ok", results)
        except ProtokitError as exc:
            outcome = ("error", exc.message, exc.lines)
        except BaseException as exc:  # report, never leave the parent waiting
            outcome = ("error", f"code generation failed: {exc!r}", [])
        send.send(outcome)
        send.close()

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    send.close()
    total = len(child_names) + len(parent_names)
    mine: list[Triple] = []
    try:
        work.handle(work.compile(False, mine), parent_names, mine)
        progress("generate", len(parent_names), total)
        outcome = receive.recv()
    except EOFError:
        raise ProtokitError("code generation worker died unexpectedly") from None
    finally:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
    if outcome[0] == "error":
        raise ProtokitError(outcome[1], outcome[2])
    progress("generate", total, total)
    theirs: list[Triple] = outcome[1]
    return mine + theirs
