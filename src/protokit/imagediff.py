"""The smallest pair of images that shows every breaking change between a baseline and the working tree.

A file whose descriptor is byte-identical on both sides cannot produce a finding, so buf only needs
the files that differ, every file of their packages (buf's PACKAGE rules compare whole packages),
and the imports those files need to form valid images. A typical change touches a handful of
files, so buf compares a few descriptors instead of thousands.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from google.protobuf import descriptor_pb2


@dataclass(frozen=True)
class Pruned:
    baseline: bytes
    current: bytes
    targets: list[str]  # the files to check (--path): changed files and the rest of their packages
    # Every target is new: additions break nothing, and buf rejects an image with no files.
    only_additions: bool = False


def _by_name(image: bytes) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    return {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(image).file} if image else {}


def _with_imports(files: dict[str, descriptor_pb2.FileDescriptorProto], roots: Collection[str]) -> set[str]:
    keep: set[str] = set()
    stack = [r for r in roots if r in files]
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        keep.add(name)
        stack.extend(d for d in files[name].dependency if d in files)
    return keep


def _subset(image: bytes, files: dict[str, descriptor_pb2.FileDescriptorProto], keep: set[str]) -> bytes:
    # protoc emits files in dependency order; keeping that order keeps the image valid.
    order = [f.name for f in descriptor_pb2.FileDescriptorSet.FromString(image).file] if image else []
    return descriptor_pb2.FileDescriptorSet(file=[files[n] for n in order if n in keep]).SerializeToString()


def prune(baseline: bytes, current: bytes, checked: Collection[str]) -> Pruned:
    """`checked` are the project's own files (either side); imports outside it are never targets."""
    old, new = _by_name(baseline), _by_name(current)
    changed = {
        n
        for n in checked
        if (n in old) != (n in new) or (n in old and old[n].SerializeToString() != new[n].SerializeToString())
    }
    packages = {side[n].package for side in (old, new) for n in changed if n in side}
    targets = sorted(n for n in checked if any(n in side and side[n].package in packages for side in (old, new)))
    return Pruned(
        baseline=_subset(baseline, old, _with_imports(old, targets)),
        current=_subset(current, new, _with_imports(new, targets)),
        targets=targets,
        only_additions=bool(targets) and not any(n in old for n in targets),
    )
