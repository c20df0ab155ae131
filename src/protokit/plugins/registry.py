"""Which buf.gen.yaml plugins protokit knows, and how each one runs.

Known Python generators run inside protokit (as a protoc flag in the compile call, or as an
in-process request -> response function); any other `local:` plugin runs as an ordinary protoc
plugin executable fed a CodeGeneratorRequest.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from protokit.config import PluginSpec
from protokit.errors import ConfigError

if TYPE_CHECKING:
    from google.protobuf.compiler import plugin_pb2

Handler = Callable[["plugin_pb2.CodeGeneratorRequest"], "plugin_pb2.CodeGeneratorResponse"]


def _mypy_messages(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    from protokit.plugins import mypy

    return mypy.messages(request)


def _mypy_services(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    from protokit.plugins import mypy

    return mypy.services(request)


def _protokit(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    from protokit.plugins import protokit_plugin

    return protokit_plugin.generate(request)


@dataclass(frozen=True)
class Plugin:
    spec: PluginSpec
    protoc_flag: str | None = None  # a generator compiled into grpcio-tools' protoc
    handler: Handler | None = None  # an in-process generator
    executable: tuple[str, ...] = ()  # an external plugin's argv
    # Output for a file depends only on that file and the files it imports, so it can be cached per file.
    per_file: bool = True
    identity: str = ""  # what, besides the toolchain, changes this plugin's output

    @property
    def label(self) -> str:
        return self.spec.name

    @property
    def strategy(self) -> str:
        """How an external plugin's requests are cut: buf.gen.yaml's `strategy`, else buf's default
        ("directory"), except for plugins known to generate whole packages from every file they are
        given (betterproto2): one request then writes what the per-directory ones would, without
        regenerating every imported package once per directory."""
        if self.spec.strategy is not None:
            return self.spec.strategy
        return "all" if os.path.basename(self.spec.argv[0] if self.spec.argv else "") in _WHOLE_PACKAGE else "directory"


_BUILTINS = {"python": "python_out", "pyi": "pyi_out"}
# Plugins whose every request regenerates all the packages of the files it holds, imports included.
_WHOLE_PACKAGE = frozenset({"protoc-gen-python_betterproto2"})
# name -> (protoc flag, in-process handler)
_LOCAL_KNOWN: dict[str, tuple[str | None, Handler | None]] = {
    "protoc-gen-grpc_python": ("grpc_python_out", None),
    "protoc-gen-mypy": (None, _mypy_messages),
    "protoc-gen-mypy_grpc": (None, _mypy_services),
    "protoc-gen-protokit": (None, _protokit),
}


def resolve(spec: PluginSpec, root: Path) -> Plugin:
    options = f"{spec.kind}:{spec.name}:{spec.parameter}:{spec.out}"
    if spec.kind == "protoc_builtin":
        if spec.name not in _BUILTINS:
            raise ConfigError(
                spec.where,
                f'protoc_builtin "{spec.name}" is not a Python generator '
                f"(protokit supports: {', '.join(sorted(_BUILTINS))})",
            )
        return Plugin(spec, protoc_flag=_BUILTINS[spec.name], identity=options)
    base = os.path.basename(spec.name)
    if base in _LOCAL_KNOWN and len(spec.argv) == 1:
        flag, handler = _LOCAL_KNOWN[base]
        return Plugin(spec, protoc_flag=flag, handler=handler, identity=options)
    executable = _find_executable(spec, root)
    stat = os.stat(executable)
    plugin = Plugin(spec, executable=(executable, *spec.argv[1:]), per_file=False)
    identity = f"{options}:{executable}:{stat.st_size}:{stat.st_mtime_ns}:{plugin.strategy}"
    return dataclasses.replace(plugin, identity=identity)


def _find_executable(spec: PluginSpec, root: Path) -> str:
    name = spec.argv[0]
    if "/" in name:
        candidate = (root / name).resolve()
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    else:
        # The venv protokit runs from comes first, so plugins installed beside it work unactivated.
        search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        found = shutil.which(name, path=search)
        if found:
            return found
    raise ConfigError(spec.where, f'plugin "{name}" not found (looked in {Path(sys.executable).parent} and PATH)')
