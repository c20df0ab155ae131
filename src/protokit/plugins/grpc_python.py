"""protoc-gen-grpc_python: grpcio-tools' gRPC Python generator as an ordinary protoc plugin.

pip installs no such executable, and buf.gen.yaml's `local:` plugins need one. The generator lives
inside grpcio-tools' protoc, so the request's descriptors are handed back to that protoc through
--descriptor_set_in and its output is collected into the response.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

from protokit import cache
from protokit.plugins import serve_stdio


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    from protokit.compile import run_protoc

    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with cache.scratch_dir("grpc-") as tmp:
        fds = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
        descriptors = Path(tmp) / "request.binpb"
        descriptors.write_bytes(fds.SerializeToString())
        out = Path(tmp) / "out"
        out.mkdir()
        param = f"{request.parameter}:" if request.parameter else ""
        result = run_protoc(
            [f"--descriptor_set_in={descriptors}", f"--grpc_python_out={param}{out}", *request.file_to_generate]
        )
        if result.returncode != 0:
            response.error = (result.stderr or result.stdout).strip() or "grpc_python generator failed"
            return response
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            response.file.add(name=path.relative_to(out).as_posix(), content=path.read_text())
    return response


def main() -> None:
    serve_stdio(generate)


if __name__ == "__main__":
    main()
