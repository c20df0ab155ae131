"""Compiling .proto files with grpcio-tools' bundled protoc: diagnostics, images, include roots.

An image is a FileDescriptorSet with imports and source info, the form buf reads for lint and
breaking; its spans carry buf's columns (see protokit.columns). protoc runs in-process (no
subprocess start-up); its C++ diagnostics go to file descriptors 1 and 2, so they are captured at
the descriptor level, and reported as buf reports them: one line per problem, every file's.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from protokit import cache, columns, toolchain
from protokit.config import Project
from protokit.errors import CompileError

# protoc keeps process-wide state on the descriptors we swap; one call at a time per process.
_PROTOC_LOCK = threading.Lock()
_DIAGNOSTIC = re.compile(r"^(?P<path>[^:\s][^:]*\.proto):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")
_NOT_FOUND = re.compile(r"^(\S+\.proto): File not found\.$")
_NON_ASCII = re.compile(r"^Interpreting non ascii codepoint \d+\.$")
_IMPORT_FAILED = re.compile(r'^Import "([^"]+)" was not found or had errors\.$')
# absl's logging before InitializeLog ("WARNING: All log messages...", "W0000 00:00:... parser.cc:659] ...").
_NOISE = re.compile(r"^(WARNING: All log messages|[WIEF]\d{4} \d\d:\d\d:\d\d)")
GOOGLEAPIS_DEP = "buf.build/googleapis/googleapis"
VALIDATE_DEP = "buf.build/bufbuild/protovalidate"


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
    """-I roots in lookup order: the project's modules, then googleapis and the bundled WKTs. A dep is
    only there when buf.yaml declares it, as buf resolves only declared deps.

    buf/validate/validate.proto (and only the WKTs it needs) come from protovalidate's embedded
    descriptor through --descriptor_set_in; files found on disk take priority over it. Callers that
    know no file imports it pass validate=False: building that set first imports protovalidate (~85 ms).
    """
    args = [f"-I{project.root / m}" for m in modules]
    googleapis = toolchain.googleapis_include()
    if googleapis is not None and GOOGLEAPIS_DEP in project.deps:
        args.append(f"-I{googleapis}")
    args.append(f"-I{toolchain.wkt_include()}")
    if validate and VALIDATE_DEP in project.deps:
        args.append(f"--descriptor_set_in={toolchain.validate_descriptor_set(cache_dir)}")
    return args


def diagnostics(project: Project, stderr: str) -> list[str]:
    """protoc's errors, one line per problem as buf reports them: project-relative paths, buf's
    columns, a missing import at its import statement. Warnings and absl's log lines are dropped."""
    module_dirs = [m.path for m in project.modules]
    raw = [line.rstrip() for line in stderr.splitlines()]
    missing = {m[1] for line in raw if (m := _NOT_FOUND.match(line))}
    imported = {m[1] for line in raw if (d := _DIAGNOSTIC.match(line)) and (m := _IMPORT_FAILED.match(d["msg"]))}
    lines: list[str] = []
    non_ascii: set[str | None] = set()  # "path:line" of non-ASCII text already reported
    for line in raw:
        not_found = _NOT_FOUND.match(line)
        if not line or _NOISE.match(line) or (not_found and not_found[1] in imported):
            continue  # a missing import is reported at its import statement
        match = _DIAGNOSTIC.match(line)
        if not match:
            lines.append(_rewrite_bare_paths(project, module_dirs, line))
            continue
        # protoc reports non-ASCII text once per byte: one problem, one line.
        where = f"{match['path']}:{match['line']}" if _NON_ASCII.match(match["msg"]) else None
        message = None if where in non_ascii else _message(project, match["msg"], missing)
        if where:
            non_ascii.add(where)
        if message is not None:
            path = _display_path(project, module_dirs, match["path"])
            column = _buf_column(project.root / path, int(match["line"]), int(match["col"]))
            lines.append(f"{path}:{match['line']}:{column}: {message}")
    return lines


def _message(project: Project, message: str, missing: set[str]) -> str | None:
    """The words for one positioned protoc diagnostic; None to drop it."""
    if message.startswith("warning: "):
        return None
    if failed := _IMPORT_FAILED.match(message):
        # An import that exists but has errors: those errors are reported, each once.
        return _missing_import(project, failed[1]) if failed[1] in missing else None
    return message


def _missing_import(project: Project, name: str) -> str:
    """buf's words for a missing import, and the deps: line that provides it when protokit can."""
    message = f'imported file "{name}" does not exist'
    googleapis = toolchain.googleapis_include()
    if googleapis is not None and (googleapis / name).is_file():
        return message + f' (it is in {GOOGLEAPIS_DEP}: add "- {GOOGLEAPIS_DEP}" under deps: in buf.yaml)'
    if name == toolchain.VALIDATE_PROTO:
        return message + f' (it is in {VALIDATE_DEP}: add "- {VALIDATE_DEP}" under deps: in buf.yaml)'
    return message


def _buf_column(path: Path, line: int, column: int) -> int:
    """protoc's one-based column on a line of `path` as buf's compile errors count it (bytes)."""
    try:
        with open(path, "rb") as fh:
            text = next((t for i, t in enumerate(fh, 1) if i == line), b"")
    except OSError:
        return column
    text = text.rstrip(b"\r\n")
    return column if columns.plain(text) else columns.byte_column(text, column - 1) + 1


def _display_path(project: Project, module_dirs: list[str], path: str) -> str:
    if os.path.isabs(path):
        return project.display(Path(path))
    for module in module_dirs:
        if (project.root / module / path).is_file():
            return path if module == "." else f"{module}/{path}"
    return path


def _rewrite_bare_paths(project: Project, module_dirs: list[str], line: str) -> str:
    # "user/v1/x.proto: ..." and similar lines without a position.
    head, sep, rest = line.partition(": ")
    if sep and head.endswith(".proto"):
        return f"{_display_path(project, module_dirs, head)}: {rest}"
    return line


def build_descriptor_set(
    project: Project, cache_dir: Path, files: Sequence[str], modules: Iterable[str], validate: bool = True
) -> bytes:
    """Compile `files` (names relative to their module roots) to an image; raise CompileError on failure.
    validate=False: no file imports buf/validate/validate.proto (see include_args)."""
    modules = tuple(modules)  # read three times
    with cache.scratch_dir("image-") as tmp:
        image = Path(tmp) / "image.binpb"
        args = [
            *include_args(project, cache_dir, modules, validate),
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={image}",
        ]
        result = run_protoc([*args, *files])
        if result.returncode != 0:
            raise _every_error(project, args, files, [project.root / m for m in modules], result)
        return _with_buf_columns(project, modules, files, image.read_bytes())


def _every_error(
    project: Project, args: list[str], files: Sequence[str], roots: list[Path], result: ProtocResult
) -> CompileError:
    """The errors of every file, as buf reports them: protoc stops at the first input file that fails,
    so the files after it are compiled again, until one run passes (only when something failed)."""
    output = result.stderr + result.stdout
    rest = _after_failed(output, files, roots)
    while rest:
        again = run_protoc([*args, *rest])
        if again.returncode == 0:
            break
        output += "\n" + again.stderr + again.stdout
        rest = _after_failed(again.stderr + again.stdout, rest, roots)
    lines = list(dict.fromkeys(diagnostics(project, output)))  # an import's errors once, not per importer
    return CompileError(lines or [f"protoc exited {result.returncode}"])


def _after_failed(output: str, files: Sequence[str], roots: list[Path]) -> list[str]:
    """The input files after the one protoc stopped at: the first with a diagnostic of its own (a file
    whose import failed gets one too, at the import). protoc names an input file by its path on disk."""
    reported = {m["path"] for line in output.splitlines() if (m := _DIAGNOSTIC.match(line.rstrip()))}
    failed = next(
        (i for i, name in enumerate(files) if name in reported or any(str(r / name) in reported for r in roots)),
        None,
    )
    return [] if failed is None else list(files[failed + 1 :])


def _with_buf_columns(project: Project, modules: Iterable[str], files: Sequence[str], image: bytes) -> bytes:
    """The image with buf's columns in the spans of `files` (see columns); unchanged, and not even
    parsed, when every file is plain ASCII without tabs."""
    texts = {}
    roots = [project.root / m for m in modules]
    for name in files:
        path = next((p for root in roots if (p := root / name).is_file()), None)
        text = path.read_bytes() if path else b""
        if not columns.plain(text):
            texts[name] = text
    if not texts:
        return image
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(image)
    for file in fds.file:
        if file.name in texts:
            columns.convert_spans(file, texts[file.name])
    return fds.SerializeToString()
