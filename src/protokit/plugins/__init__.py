"""Code generator plugins protokit runs: each is a function CodeGeneratorRequest -> CodeGeneratorResponse,
or a generator built into grpcio-tools' protoc that joins the compile call."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.protobuf.compiler import plugin_pb2


def serve_stdio(
    generate: Callable[[plugin_pb2.CodeGeneratorRequest], plugin_pb2.CodeGeneratorResponse],
) -> None:
    """The protoc plugin protocol: a CodeGeneratorRequest on stdin, the response on stdout."""
    from google.protobuf.compiler import plugin_pb2

    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())
