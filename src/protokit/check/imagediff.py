"""The smallest pair of images that shows every breaking change between a baseline module and a
current module.

buf compares module with module: each side's image holds that module's files, named relative to
the module root, plus what they import. A file whose descriptor is byte-identical on both sides
cannot produce a finding, so buf only needs the files that differ, every file of their packages
(buf's PACKAGE rules compare whole packages), and the imports those files need to form valid
images. A typical change touches a handful of files, so buf compares a few descriptors instead of
thousands.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from google.protobuf import descriptor_pb2

# buf refuses an image without files; a change that only deletes gets this file (new, so it breaks
# nothing) as the current side.
PLACEHOLDER = "protokit/placeholder/v0/placeholder.proto"


@dataclass(frozen=True)
class Image:
    """A parsed image: its files by name, in protoc's order (dependencies first)."""

    files: dict[str, descriptor_pb2.FileDescriptorProto]

    @classmethod
    def parse(cls, data: bytes) -> Image:
        return cls({f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(data).file} if data else {})

    def closure(self, roots: Collection[str]) -> set[str]:
        """`roots` and every file they import, directly or not."""
        keep: set[str] = set()
        stack = [r for r in roots if r in self.files]
        while stack:
            name = stack.pop()
            if name not in keep:
                keep.add(name)
                stack.extend(d for d in self.files[name].dependency if d in self.files)
        return keep

    def subset(self, keep: Collection[str]) -> bytes:
        # Keeping protoc's order keeps the image valid.
        files = [f for name, f in self.files.items() if name in keep]
        return descriptor_pb2.FileDescriptorSet(file=files).SerializeToString()


@dataclass(frozen=True)
class Pruned:
    baseline: bytes
    current: bytes
    targets: list[str]  # the files to check (--path): changed files and the rest of their packages
    # No target existed at the baseline: additions break nothing, and buf rejects an image with no files.
    only_additions: bool = False


def _checked(baseline: Image, current: Image, baseline_own: Collection[str], current_own: Collection[str]) -> set[str]:
    """The files of either module, less those the other side has only as an import from another module:
    buf compares such a file as an import, and protokit, like `buf breaking --exclude-imports`, does
    not report on imports."""
    imported_old = baseline.closure(baseline_own).difference(baseline_own)
    imported_new = current.closure(current_own).difference(current_own)
    return {*baseline_own, *current_own} - imported_old - imported_new


def prune(baseline: Image, current: Image, baseline_own: Collection[str], current_own: Collection[str]) -> Pruned:
    """`baseline_own` and `current_own` are the names of the two modules' files (relative to their roots)."""
    old_own, new_own = set(baseline_own), set(current_own)
    checked = _checked(baseline, current, old_own, new_own)
    old = {n: baseline.files[n] for n in checked & old_own}
    new = {n: current.files[n] for n in checked & new_own}
    changed = {
        n
        for n in checked
        if (n in old) != (n in new) or (n in old and old[n].SerializeToString() != new[n].SerializeToString())
    }
    packages = {side[n].package for side in (old, new) for n in changed if n in side}
    targets = sorted(n for n in checked if any(n in side and side[n].package in packages for side in (old, new)))
    old_targets, new_targets = old.keys() & set(targets), new.keys() & set(targets)
    current_image = current.subset(current.closure(new_targets))
    if old_targets and not new_targets:
        current_image = descriptor_pb2.FileDescriptorSet(file=[_placeholder()]).SerializeToString()
        targets.append(PLACEHOLDER)
    return Pruned(
        baseline=baseline.subset(baseline.closure(old_targets)),
        current=current_image,
        targets=targets,
        only_additions=bool(targets) and not old_targets,
    )


def _placeholder() -> descriptor_pb2.FileDescriptorProto:
    return descriptor_pb2.FileDescriptorProto(name=PLACEHOLDER, package="protokit.placeholder.v0", syntax="proto3")
