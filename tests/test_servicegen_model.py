"""Unit tests of protoc-gen-protokit's view model helpers and docstring rendering (no protoc)."""

from __future__ import annotations

import ast

import pytest
from google.protobuf import descriptor_pb2

from protokit.servicegen import ServiceGenError, build, render_file
from protokit.servicegen.model import (
    MethodModel,
    docstring,
    format_imports,
    module_aliases,
    module_import,
    module_path,
    python_module,
    python_safe,
    snake_case,
    type_expr,
    upper_snake,
)
from protokit.servicegen.render import docstring_literal


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GetUser", "get_user"),
        ("BatchCreateUsers", "batch_create_users"),
        ("GetHTTPHeaders", "get_http_headers"),
        ("HTTPGet", "http_get"),
        ("ListV2Users", "list_v2_users"),
        ("get_user", "get_user"),
        ("Import", "import"),
        ("X", "x"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_upper_snake() -> None:
    assert upper_snake("UserService") == "USER_SERVICE"
    assert upper_snake("HTTPService") == upper_snake("HttpService") == "HTTP_SERVICE"


def test_python_safe_appends_underscores_for_keywords_and_taken_names() -> None:
    assert python_safe("import") == "import_"
    assert python_safe("class") == "class_"
    assert python_safe("None") == "None_"
    assert python_safe("get_user") == "get_user"
    assert python_safe("match") == "match"  # soft keywords are valid identifiers
    assert python_safe("connect", {"connect", "connect_"}) == "connect__"


@pytest.mark.parametrize(
    ("proto", "path", "module"),
    [
        ("user/v1/user_service.proto", "user/v1/user_service", "user.v1.user_service_pb2"),
        ("a/b/c/v1/deep.proto", "a/b/c/v1/deep", "a.b.c.v1.deep_pb2"),
        ("top-level.proto", "top_level", "top_level_pb2"),
        ("foo/bar.baz.proto", "foo/bar/baz", "foo.bar.baz_pb2"),
    ],
)
def test_module_naming_follows_protoc(proto: str, path: str, module: str) -> None:
    assert module_path(proto) == path
    assert python_module(proto) == module
    assert python_module(proto, "_protokit") == module.removesuffix("_pb2") + "_protokit"


def test_docstring_dedents_and_trims() -> None:
    assert docstring(" GetUser returns a user.\n Second line.\n") == "GetUser returns a user.\nSecond line."
    assert docstring("\n\n   indented\n     more\n\n") == "indented\n  more"
    assert docstring(" trailing spaces   \n\n next ") == "trailing spaces\n\nnext"
    assert docstring("") == ""


@pytest.mark.parametrize(
    "comment",
    [
        'Ends with a quote"',
        'Ends with two quotes""',
        'Has """triple""" quotes and """" four',
        "Backslash \\ and \\n and a final backslash\\",
        "Jinja {{ name }} and {% if x %}{% endif %} and {# c #} stay",
        "Single ''' quotes ' and unicode: naïve — ü, 漢字",
        "Tabs\tand a bell \x07 and a NUL \x00",
        '"Starts with a quote',
        '"""',
        "Windows\r\nline endings\rand old Mac ones",
    ],
)
def test_docstring_survives_python_parsing(comment: str) -> None:
    text = docstring(comment)
    for indent in (0, 8):
        source = f"def f():\n    {docstring_literal(text, indent)}\n"
        parsed = ast.parse(source).body[0]
        assert isinstance(parsed, ast.FunctionDef)
        expected = "\n".join(
            line.rstrip() for line in comment.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        ).strip("\n")
        doc = ast.get_docstring(parsed, clean=False)
        assert doc is not None
        if "\n" in expected:
            # Continuation lines carry the literal's indentation, the closing quotes a final newline.
            doc = "\n".join(line.removeprefix(" " * indent) for line in doc.split("\n")).removesuffix("\n")
        assert doc == expected


def test_docstring_literal_layout() -> None:
    assert docstring_literal("One line.") == '"""One line."""'
    assert docstring_literal("First.\n\nThird.", 4) == '"""First.\n\n    Third.\n    """'


def test_type_expr_resolves_modules_and_nesting() -> None:
    types = {
        "user.v1.GetUserRequest": ("user.v1.user_service_pb2", "GetUserRequest"),
        "user.v1.Outer.Inner": ("user.v1.user_service_pb2", "Outer.Inner"),
        "google.protobuf.Empty": ("google.protobuf.empty_pb2", "Empty"),
    }
    aliases = module_aliases("user.v1.user_service_pb2", ["google.protobuf.empty_pb2"])
    assert type_expr(".user.v1.GetUserRequest", types, aliases) == "user_service_pb2.GetUserRequest"
    assert type_expr(".user.v1.Outer.Inner", types, aliases) == "user_service_pb2.Outer.Inner"
    assert type_expr(".google.protobuf.Empty", types, aliases) == "_empty_pb2.Empty"
    with pytest.raises(ServiceGenError, match="not defined"):
        type_expr(".nope.Missing", types, aliases)


def test_module_aliases_are_unique_and_deterministic() -> None:
    modules = ["other.v1.common_pb2", "common.v1.common_pb2", "x.user_service_pb2", "google.protobuf.empty_pb2"]
    aliases = module_aliases("user.v1.user_service_pb2", modules)
    assert aliases == {
        "user.v1.user_service_pb2": "user_service_pb2",
        "common.v1.common_pb2": "_common_pb2",
        "google.protobuf.empty_pb2": "_empty_pb2",
        "other.v1.common_pb2": "_common_pb2_1",
        "x.user_service_pb2": "_user_service_pb2",
    }
    assert module_aliases("user.v1.user_service_pb2", list(reversed(modules))) == aliases


def test_format_imports_sorts_and_merges_like_isort() -> None:
    lines = format_imports(
        [
            ("typing", "cast", ""),
            ("", "abc", ""),
            ("typing", "ClassVar", ""),
            module_import("google.protobuf.empty_pb2", "_empty_pb2"),
            module_import("top_level_pb2", "top_level_pb2"),
            module_import("user.v1.user_service_pb2", "user_service_pb2"),
            module_import("user.v1.user_service_pb2_grpc", "user_service_pb2_grpc"),
        ]
    )
    assert lines == (
        "import abc",
        "import top_level_pb2",
        "from google.protobuf import empty_pb2 as _empty_pb2",
        "from typing import ClassVar, cast",
        "from user.v1 import user_service_pb2, user_service_pb2_grpc",
    )
    long = format_imports([("protokit.runtime.client", n, "") for n in ("channel", "bearer", "TlsConfig")])
    assert long == ("from protokit.runtime.client import TlsConfig, bearer, channel",)
    wrapped = format_imports(
        [
            ("protokit.runtime.client", n, "")
            for n in ("MethodPolicy", "TlsConfig", "bearer", "channel", "service_config")
        ]
    )
    assert wrapped == (
        "from protokit.runtime.client import (\n    MethodPolicy,\n    TlsConfig,\n    bearer,\n    channel,\n"
        "    service_config,\n)",
    )


def _method(kind: str) -> MethodModel:
    return MethodModel("M", "m", kind, "pb2.Req", "pb2.Resp", "", False, None)  # type: ignore[arg-type]


def test_method_annotations_per_kind() -> None:
    unary, server, client, bidi = (_method(k) for k in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"))
    assert (unary.request_param, unary.request_annotation, unary.response_annotation) == (
        "request",
        "pb2.Req",
        "pb2.Resp",
    )
    assert server.response_annotation == "AsyncIterator[pb2.Resp]"
    assert (client.request_param, client.request_annotation) == ("request_iterator", "AsyncIterator[pb2.Req]")
    assert client.client_annotation == "AsyncIterable[pb2.Req] | Iterable[pb2.Req]"
    assert (bidi.request_annotation, bidi.response_annotation) == ("AsyncIterator[pb2.Req]", "AsyncIterator[pb2.Resp]")
    assert unary.context_type == "grpc.aio.ServicerContext[pb2.Req, pb2.Resp]"


def _file(*rpcs: tuple[str, bool, bool], package: str = "p.v1") -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="p/v1/s.proto", package=package)
    file.message_type.add(name="M")
    service = file.service.add(name="S")
    for name, client, server in rpcs:
        ref = f".{package}.M" if package else ".M"
        service.method.add(name=name, input_type=ref, output_type=ref, client_streaming=client, server_streaming=server)
    return file


def test_build_policies_and_names() -> None:
    file = _file(("Get", False, False), ("Tail", False, True), ("Import", True, False), ("Connect", True, True))
    file.service[0].method[0].options.idempotency_level = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    file.service[0].method[1].options.idempotency_level = descriptor_pb2.MethodOptions.IDEMPOTENT
    model = build(file, {file.name: file})
    (service,) = model.services
    assert [(m.name, m.python_name, m.kind) for m in service.methods] == [
        ("Get", "get", "unary_unary"),
        ("Tail", "tail", "unary_stream"),
        ("Import", "import_", "stream_unary"),
        ("Connect", "connect_", "stream_stream"),  # `connect` is the client's constructor
    ]
    assert [(m.idempotent, m.default_timeout) for m in service.methods] == [
        (True, 10.0),
        (True, None),
        (False, None),
        (False, None),
    ]
    assert (service.full_name, service.constant, service.base_name, service.client_name) == (
        "p.v1.S",
        "S_NAME",
        "SBase",
        "SClient",
    )
    assert service.doc == "The servicer base of p.v1.S."  # no comment: a generic docstring
    assert (model.module, model.grpc_module, model.output_name) == (
        "p.v1.s_pb2",
        "p.v1.s_pb2_grpc",
        "p/v1/s_protokit.py",
    )


@pytest.mark.parametrize("rpc", ["None", "import", "SERVICE_NAME", "add_to_server"])
def test_build_rejects_rpc_names_python_cannot_define(rpc: str) -> None:
    file = _file((rpc, False, False))
    with pytest.raises(ServiceGenError, match=f'rpc "{rpc}"'):
        build(file, {file.name: file})


def test_build_without_package_renders() -> None:
    file = _file(("Get", False, False), package="")
    file.name = "s.proto"
    model = build(file, {file.name: file})
    assert model.services[0].full_name == "S"
    source = render_file(model)
    assert "import s_pb2\nimport s_pb2_grpc\n" in source
    compile(source, model.output_name, "exec")
