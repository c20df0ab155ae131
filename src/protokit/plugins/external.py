"""Running a protoc plugin executable: CodeGeneratorRequest on stdin, CodeGeneratorResponse on stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

from protokit.errors import ProtokitError
from protokit.plugins.registry import Plugin


def plugin_env() -> dict[str, str]:
    """The environment plugins run in: protokit's own bin/ first, where tools installed beside it live
    (betterproto2 runs `ruff` from there), even when the virtualenv is not activated."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _closure(files: Iterable[descriptor_pb2.FileDescriptorProto], names: Iterable[str]) -> set[str]:
    """`names` and every file they import, directly or not."""
    imports = {f.name: list(f.dependency) for f in files}
    found: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(imports.get(name, ()))
    return found


def run_plugin(plugin: Plugin, image: bytes, names: list[str]) -> list[tuple[str, bytes]]:
    """Run `plugin` for `names` over the descriptors in `image` (topologically ordered, as protoc emits)."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(image)
    # As protoc and buf do: the request holds the files to generate and what they import, no more. A
    # plugin such as betterproto2 generates every file it is given, so one request per directory with
    # the whole image regenerated everything once per directory.
    needed = _closure(fds.file, names)
    fds = descriptor_pb2.FileDescriptorSet(file=[f for f in fds.file if f.name in needed])  # protoc's order
    for file in fds.file:
        # validate.proto comes from a descriptor without source info; plugins such as betterproto2
        # assume every file has one (parsed files always do).
        if not file.HasField("source_code_info"):
            file.source_code_info.SetInParent()
    request = plugin_pb2.CodeGeneratorRequest(
        file_to_generate=names,
        parameter=plugin.spec.parameter,
        proto_file=fds.file,
    )
    try:
        proc = subprocess.run(
            list(plugin.executable),
            input=request.SerializeToString(),
            capture_output=True,
            check=False,
            env=plugin_env(),
        )
    except OSError as exc:
        raise ProtokitError(f"{plugin.spec.where}: cannot run plugin {plugin.label}: {exc.strerror}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ProtokitError(f"plugin {plugin.label} exited {proc.returncode}", detail[-20:])
    response = plugin_pb2.CodeGeneratorResponse.FromString(proc.stdout)
    if response.error:
        raise ProtokitError(f"plugin {plugin.label} failed: {response.error}")
    files: dict[str, bytes] = {}
    for f in response.file:
        if f.insertion_point:
            raise ProtokitError(f"plugin {plugin.label} uses insertion points, which protokit does not support")
        if not f.name:
            raise ProtokitError(f"plugin {plugin.label} returned a file without a name")
        files[f.name] = f.content.encode()
    return sorted(files.items())
