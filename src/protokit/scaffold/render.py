"""Rendering the scaffold templates: the Jinja environment with its layout helpers, and the view models
the templates are given."""

from __future__ import annotations

import functools
import shlex
import textwrap
from dataclasses import dataclass
from typing import Any

import jinja2

from protokit import version
from protokit.scaffold.layout import Layout
from protokit.scaffold.names import ServiceName
from protokit.servicegen.model import Import, format_imports, module_import
from protokit.servicegen.render import LINE_LENGTH, docstring_literal, template_environment, wrap

TEMPLATES = "protokit.templates.scaffold"


def split(indent: int, head: str, expression: str) -> str:
    """`head + expression` on one line if it fits, else the expression parenthesised on a line of its own."""
    pad = " " * indent
    one = f"{pad}{head}{expression}"
    if len(one) <= LINE_LENGTH:
        return one
    return f"{pad}{head}(\n{pad}    {expression}\n{pad})"


def servicer_method(
    name: str, request: str, response: str, client_streaming: bool = False, server_streaming: bool = False
) -> str:
    """The signature of a servicer method, as the generated base declares it (types from module `pb`)."""
    request_type, response_type = f"pb.{request}", f"pb.{response}"
    if client_streaming:
        request_line = wrap(8, "request_iterator: AsyncIterator[", [request_type], "],")
    else:
        request_line = f"        request: {request_type},"
    context = wrap(8, "context: grpc.aio.ServicerContext[", [request_type, response_type], "],")
    returns = f"AsyncIterator[{response_type}]" if server_streaming else response_type
    return f"    async def {name}(\n        self,\n{request_line}\n{context}\n    ) -> {returns}:"


@functools.cache
def environment() -> jinja2.Environment:
    env = template_environment(TEMPLATES)
    env.globals["wrap"] = wrap
    env.globals["split"] = split
    env.globals["method"] = servicer_method
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@dataclass(frozen=True)
class Spec:
    """The view model of the service templates."""

    names: ServiceName
    package: str
    streaming: bool
    layout: Layout
    proto_name: str  # relative to the module root
    options: tuple[str, ...]

    # The names the templates use, flat.
    @property
    def resource(self) -> str:
        return self.names.resource

    @property
    def service(self) -> str:
        return self.names.service

    @property
    def plural(self) -> str:
        return self.names.plural

    @property
    def field(self) -> str:
        return self.names.snake

    @property
    def plural_field(self) -> str:
        return self.names.plural_snake

    @property
    def words(self) -> str:
        return self.names.words

    @property
    def plural_words(self) -> str:
        return self.names.plural_words

    @property
    def full_service(self) -> str:
        return f"{self.package}.{self.service}"

    @property
    def module(self) -> str:
        return self.layout.module

    @property
    def python_package(self) -> str:
        return self.layout.python_package

    @property
    def implementation_module(self) -> str:
        return f"{self.layout.python_package}.{self.names.file_stem}"

    @property
    def pb2_module(self) -> str:
        return f"{self.package}.{self.names.file_stem}_pb2"

    @property
    def protokit_module(self) -> str:
        return f"{self.package}.{self.names.file_stem}_protokit"

    @property
    def service_doc(self) -> str:
        extra = ", creates them in bulk and reports their changes as they happen" if self.streaming else ""
        text = f"{self.service} manages {self.plural_words}: it creates, reads, updates, deletes and lists them{extra}."
        return docstring_literal(_fill(text, LINE_LENGTH - 4 - 3), 4)

    @property
    def implementation_imports(self) -> tuple[tuple[str, ...], ...]:
        stdlib: list[Import] = [("", "bisect", ""), ("", "uuid", ""), ("collections.abc", "AsyncIterator", "")]
        stdlib.append(("collections.abc", "Mapping", ""))
        if self.streaming:
            stdlib += [("", "asyncio", ""), ("collections.abc", "Callable", ""), ("collections.abc", "Sequence", "")]
        third_party: list[Import] = [
            ("", "grpc", ""),
            module_import(self.pb2_module, "pb"),
            (self.protokit_module, f"{self.service}Base", ""),
            ("google.protobuf.timestamp_pb2", "Timestamp", ""),
            ("protokit", "runtime", ""),
            ("protokit.runtime", "InvalidArgument", ""),
            ("protokit.runtime", "NotFound", ""),
        ]
        if self.streaming:
            third_party.append(("protokit.runtime", "Fanout", ""))
        return (format_imports(stdlib), format_imports(third_party))

    @property
    def test_imports(self) -> tuple[tuple[str, ...], ...]:
        stdlib: list[Import] = [("", "asyncio", ""), ("typing", "Any", ""), ("typing", "TypeVar", "")]
        stdlib += [("collections.abc", name, "") for name in ("Awaitable", "Callable")]
        if self.streaming:
            stdlib += [("collections.abc", "AsyncIterator", ""), ("typing", "TypeAlias", "")]
        third_party: list[Import] = [
            ("", "grpc", ""),
            ("", "pytest", ""),
            module_import(self.pb2_module, "pb"),
            (self.protokit_module, f"{self.service}Client", "Client"),
            ("google.protobuf.field_mask_pb2", "FieldMask", ""),
            *(("protokit.runtime", name, "") for name in ("ServerSettings", "build_server", "close_channels")),
        ]
        first_party: list[Import] = [(self.implementation_module, self.service, "")]
        if self.streaming:
            first_party.append((self.implementation_module, "MAX_BATCH", ""))
        return (format_imports(stdlib), format_imports(third_party), format_imports(first_party))

    @property
    def main_imports(self) -> tuple[str, ...]:
        return format_imports([(self.implementation_module, self.service, "")])


def _fill(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def project_view(spec: Spec, proto_path: str, impl_path: str) -> dict[str, Any]:
    layout = spec.layout
    where = [layout.source_root, layout.out] if layout.source_root != layout.out else [layout.out]
    distribution = layout.python_package.split(".")[0].replace("_", "-")
    return {
        "module": layout.module,
        "out": layout.out,
        "implementations": layout.implementations,
        "python_package": layout.python_package,
        "source_root": layout.source_root,
        "where": ", ".join(f'"{w}"' for w in where),
        "distribution": distribution,
        "service": spec.service,
        "service_full": spec.full_service,
        "package": spec.package,
        "proto": proto_path,
        "implementation": impl_path,
        "runtime_requirement": version.runtime_requirement(),
        "toolchain_requirement": version.toolchain_requirement(),
        "curl_create": curl(spec, f"Create{spec.resource}", '{"displayName": "First"}'),
        "curl_get": curl(spec, f"Get{spec.resource}", f'{{"id": "<the id Create{spec.resource} returned>"}}'),
        "modules": list(layout.modules),
    }


def curl(spec: Spec, method: str, body: str, port: int = 50051) -> str:
    return (
        f"buf curl --protocol grpc --http2-prior-knowledge -d {shlex.quote(body)} "
        f"http://127.0.0.1:{port}/{spec.full_service}/{method}"
    )
