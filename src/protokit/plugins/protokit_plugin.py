"""protoc-gen-protokit: typed asyncio servicer bases and clients for every service of a .proto file.

A pure function CodeGeneratorRequest -> CodeGeneratorResponse (like mypy-protobuf's generators), plus
`main` for protoc and buf, which run it as the `protoc-gen-protokit` executable (stdin -> stdout).
Each file to generate that declares a service yields `<module path>_protokit.py` beside its _pb2.py;
files without services yield nothing.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

from protokit.plugins import serve_stdio
from protokit.servicegen import ServiceGenError, build, render_file


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = (
        plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
        | plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
    )
    # Services do not depend on field presence or any other edition feature.
    response.minimum_edition = descriptor_pb2.EDITION_PROTO2
    response.maximum_edition = descriptor_pb2.EDITION_2024
    files = {f.name: f for f in request.proto_file}
    for name in request.file_to_generate:
        proto = files[name]
        if not proto.service:
            continue
        try:
            model = build(proto, files)
        except ServiceGenError as exc:
            del response.file[:]
            response.error = f"{name}: {exc}"
            return response
        response.file.add(name=model.output_name, content=render_file(model))
    return response


def main() -> None:
    serve_stdio(generate)


if __name__ == "__main__":
    main()
