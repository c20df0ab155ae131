"""Running a protoc plugin executable: CodeGeneratorRequest on stdin, CodeGeneratorResponse on stdout."""

from __future__ import annotations

import subprocess

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

from protokit.errors import ProtokitError
from protokit.plugins.registry import Plugin


def run_plugin(plugin: Plugin, image: bytes, names: list[str]) -> list[tuple[str, bytes]]:
    """Run `plugin` for `names` over the descriptors in `image` (topologically ordered, as protoc emits)."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(image)
    request = plugin_pb2.CodeGeneratorRequest(
        file_to_generate=names,
        parameter=plugin.spec.parameter,
        proto_file=fds.file,
    )
    try:
        proc = subprocess.run(
            list(plugin.executable), input=request.SerializeToString(), capture_output=True, check=False
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
