"""The project's image: every .proto file of its modules compiled into one FileDescriptorSet with
imports and source info, the form buf reads for lint and breaking. Cached by content hash.

buf's own images carry an ImageFileExtension per file (buf/alpha/image/v1/image.proto) with facts
a plain descriptor set lacks; lint images get what IMPORT_USED and SYNTAX_SPECIFIED read there.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from protokit import cache, toolchain
from protokit.compile import build_descriptor_set
from protokit.config import Project
from protokit.sources import SourceSet, load_sources

if TYPE_CHECKING:
    from google.protobuf.descriptor_pb2 import FileDescriptorSet

# Part of the key: bump it when the bytes built from the same sources change (2: buf's columns).
_IMAGE_FORMAT = "image-2"
_BUF_EXTENSION = 8042  # ImageFile.buf_extension
_SYNTAX_UNSPECIFIED = 3  # ImageFileExtension.is_syntax_unspecified
_UNUSED_DEPENDENCY = 4  # ImageFileExtension.unused_dependency: indexes into `dependency`
_SYNTAX = 12  # FileDescriptorProto.syntax: its source location is there when the statement is


def image_key(sources: SourceSet, modules: tuple[str, ...]) -> str:
    return cache.digest(
        _IMAGE_FORMAT,
        toolchain.fingerprint(),
        *modules,
        *(f"{f.module}:{n}={f.digest}" for n, f in sources.files.items()),
    )


def add_buf_extensions(fds: FileDescriptorSet, targets: Collection[str]) -> bool:
    """Give the targets the facts buf's own images carry and protoc's lack: the imports buf counts as
    unused (IMPORT_USED), and a missing syntax statement (SYNTAX_SPECIFIED; protoc writes proto2's
    syntax as empty either way). False if no target needs any: the set is unchanged."""
    from protokit.unused_imports import unused_dependencies

    image = {f.name: f for f in fds.file}
    files = {name: image[name] for name in targets if name in image}
    unused = unused_dependencies(image, files)
    changed = False
    for name, file in files.items():
        payload = b"".join(_varint(_UNUSED_DEPENDENCY << 3) + _varint(i) for i in unused.get(name, ()))
        if not file.syntax and not any(list(loc.path) == [_SYNTAX] for loc in file.source_code_info.location):
            payload += _varint(_SYNTAX_UNSPECIFIED << 3) + b"\x01"
        if payload:
            file.MergeFromString(_varint(_BUF_EXTENSION << 3 | 2) + _varint(len(payload)) + payload)
            changed = True
    return changed


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def project_image(project: Project, sources: SourceSet | None = None) -> Path:
    """Compile (or reuse) the image of all modules; returns the path of the cached .binpb file."""
    sources = sources or load_sources(project)
    modules = tuple(m.path for m in project.modules)
    key = image_key(sources, modules)
    path = cache.cache_dir() / "images" / f"{key}.binpb"
    if not path.is_file():
        data = build_descriptor_set(project, cache.cache_dir(), list(sources.files), modules, sources.imports_validate)
        cache.atomic_write(path, data)
    return path
