"""mypy-protobuf's two generators called in-process: the same code its console scripts run,
without a Python start-up and a re-parse of the request per plugin."""

from __future__ import annotations

from google.protobuf.compiler import plugin_pb2
from mypy_protobuf import main as mypy_main


def _flags(parameter: str) -> tuple[bool, bool, bool, bool]:
    return (
        "readable_stubs" in parameter,
        "relax_strict_optional_primitives" in parameter,
        "use_default_deprecation_warnings" in parameter,
        "generate_concrete_servicer_stubs" in parameter,
    )


def _response() -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features |= plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    response.supported_features |= plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
    return response


def messages(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = _response()
    mypy_main.generate_mypy_stubs(mypy_main.Descriptors(request), response, True, *_flags(request.parameter))
    return response


def services(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = _response()
    grpc_type = mypy_main.GRPCType.from_parameter(request.parameter)
    mypy_main.generate_mypy_grpc_stubs(
        mypy_main.Descriptors(request), response, True, *_flags(request.parameter), grpc_type
    )
    return response
