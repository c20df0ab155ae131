"""Compiling .proto files with grpcio-tools' bundled protoc: diagnostics, images, include roots.

An image is a FileDescriptorSet with imports and source info, the form buf reads for lint and
breaking. protoc runs in-process (no subprocess start-up); its C++ diagnostics go to file
descriptors 1 and 2, so they are captured at the descriptor level.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from protokit import toolchain
from protokit.config import Project
from protokit.errors import CompileError

# protoc keeps process-wide state on the descriptors we swap; one call at a time per process.
_PROTOC_LOCK = threading.Lock()
_DIAGNOSTIC = re.compile(r"^(?P<path>[^:\s][^:]*\.proto):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")


@dataclass(frozen=True)
class ProtocResult:
    returncode: int
    stdout: str
    stderr: str


def run_protoc(args: Sequence[str]) -> ProtocResult:
    """Run protoc in-process and capture what it writes to stdout and stderr."""
    from grpc_tools import protoc

    with _PROTOC_LOCK, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            code = protoc.main(["protoc", *args])
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        return ProtocResult(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def include_args(project: Project, cache_dir: Path, modules: Iterable[str], validate: bool = True) -> list[str]:
    """-I roots in lookup order: the project's modules, then googleapis and the bundled WKTs.

    buf/validate/validate.proto (and only the WKTs it needs) come from protovalidate's embedded
    descriptor through --descriptor_set_in; files found on disk take priority over it. Callers that
    know no file imports it pass validate=False: building that set first imports protovalidate (~85 ms).
    """
    args = [f"-I{project.root / m}" for m in modules]
    googleapis = toolchain.googleapis_include()
    if googleapis is not None:
        args.append(f"-I{googleapis}")
    args.append(f"-I{toolchain.wkt_include()}")
    if validate:
        args.append(f"--descriptor_set_in={toolchain.validate_descriptor_set(cache_dir)}")
    return args


def diagnostics(project: Project, stderr: str) -> list[str]:
    """protoc's messages with paths made relative to the project root (as users open them)."""
    module_dirs = [m.path for m in project.modules]
    lines = []
    for raw in stderr.splitlines():
        raw = raw.rstrip()
        if not raw:
            continue
        match = _DIAGNOSTIC.match(raw)
        if match:
            path = _display_path(project, module_dirs, match["path"])
            raw = f"{path}:{match['line']}:{match['col']}: {match['msg']}"
        else:
            raw = _rewrite_bare_paths(project, module_dirs, raw)
        lines.append(raw)
    return lines


def _display_path(project: Project, module_dirs: list[str], path: str) -> str:
    if os.path.isabs(path):
        return project.display(Path(path))
    for module in module_dirs:
        if (project.root / module / path).is_file():
            return path if module == "." else f"{module}/{path}"
    return path


def _rewrite_bare_paths(project: Project, module_dirs: list[str], line: str) -> str:
    # "user/v1/x.proto: File not found." and similar lines without a position.
    head, sep, rest = line.partition(": ")
    if sep and head.endswith(".proto"):
        return f"{_display_path(project, module_dirs, head)}: {rest}"
    return line


def compile_error(project: Project, result: ProtocResult, what: str = "compilation failed") -> CompileError:
    lines = diagnostics(project, result.stderr + result.stdout) or [f"protoc exited {result.returncode}"]
    return CompileError(what, lines)


def build_descriptor_set(
    project: Project, cache_dir: Path, files: Sequence[str], modules: Iterable[str], validate: bool = True
) -> bytes:
    """Compile `files` (names relative to their module roots) to an image; raise CompileError on failure.
    validate=False: no file imports buf/validate/validate.proto (see include_args)."""
    with tempfile.TemporaryDirectory(prefix="protokit-") as tmp:
        image = Path(tmp) / "image.binpb"
        args = [
            *include_args(project, cache_dir, modules, validate),
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={image}",
            *files,
        ]
        result = run_protoc(args)
        if result.returncode != 0:
            raise compile_error(project, result)
        return image.read_bytes()
