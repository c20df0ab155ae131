"""Top-level Python names other distributions own, as this interpreter's site-packages shows them.

Generated code lives in top-level packages named after the proto packages, so it meets every other
distribution's top-level names: `gen` must not turn a namespace it shares into a regular package
(generated/google/__init__.py hides google.protobuf), and lint must flag a proto package whose first
segment is a regular package of a dependency (grpc, yaml), which the generated code can never join.
"""

from __future__ import annotations

import functools
import sysconfig
from pathlib import Path

# Owned elsewhere even where not installed: protobuf's `google` namespace, grpcio's `grpc`,
# protokit-runtime's `buf` (buf.validate) and `protokit` namespace portions.
ALWAYS_FOREIGN = frozenset({"google", "grpc", "buf", "protokit"})
# Of those, the ones that are regular packages, which a generated tree can never join.
ALWAYS_REGULAR = frozenset({"grpc"})


@functools.cache
def _site_dirs() -> tuple[Path, ...]:
    return tuple(dict.fromkeys(Path(sysconfig.get_path(key)) for key in ("purelib", "platlib")))


def installed_kind(name: str) -> str | None:
    """ "package" (a regular package or a module), "namespace" (a directory without __init__.py) or None,
    for a top-level name in site-packages. Generated trees on sys.path never count."""
    for site in _site_dirs():
        directory = site / name
        if (directory / "__init__.py").is_file() or (site / f"{name}.py").is_file():
            return "package"
        if any(site.glob(f"{name}.*.so")) or any(site.glob(f"{name}.*.pyd")):
            return "package"
        if directory.is_dir():
            return "namespace"
    return None


def foreign(name: str) -> bool:
    """Whether another distribution owns the top-level package `name` (gen adds no __init__.py there)."""
    return name in ALWAYS_FOREIGN or installed_kind(name) is not None


def installed_module(module_path: str) -> bool:
    """Whether site-packages holds this generated module already ("acme/v1/x" -> acme/v1/x_pb2.py): the
    project's own code, installed, is no clash."""
    return any((site / f"{module_path}_pb2.py").is_file() for site in _site_dirs())
