"""Naming a new service: every name derived from NAME, and the proto and Python packages protokit accepts.

Pluralising and PascalCase live in `protokit.names`; this module applies them to a service and its packages.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from protokit.check.pyrules import _STDLIB as STDLIB_MODULES
from protokit.errors import ProtokitError
from protokit.names import pascal_case, pluralize
from protokit.servicegen.model import snake_case

_PASCAL = re.compile(r"[A-Z][A-Za-z0-9]*")
LOWER_SNAKE = re.compile(r"[a-z][a-z0-9_]*")
# buf's PACKAGE_VERSION_SUFFIX: v1, v2, v1beta1, v1alpha, v1p1beta1, v1test, v1testfoo (numbers > 0).
_VERSION = re.compile(r"v(\d+)(?:(?:p(\d+))?(?:alpha|beta)(\d*)|test[a-z0-9_]*)?")
# Top-level Python names a generated package or the implementation package must not take: they
# would shadow (or be shadowed by) what the service imports at run time.
RESERVED_TOP_LEVEL = frozenset(
    {
        "buf",
        "generated",
        "google",
        "grpc",
        "grpc_health",
        "grpc_reflection",
        "grpc_status",
        "grpc_tools",
        "jinja2",
        "mypy_protobuf",
        "prometheus_client",
        "protokit",
        "protovalidate",
        "pytest",
        "rich",
        "setuptools",
        "src",
        "tests",
        "typer",
        "yaml",
    }
)


@dataclass(frozen=True)
class ServiceName:
    """Every name derived from NAME (Billing or BillingService)."""

    resource: str  # Billing: the resource message, and the stem of the RPC names
    service: str  # BillingService
    snake: str  # billing: field names, the default package and Python package

    @property
    def plural(self) -> str:
        return pluralize(self.resource)

    @property
    def plural_snake(self) -> str:
        return pluralize(self.snake)

    @property
    def words(self) -> str:
        """The resource in prose: HttpProxy -> "http proxy"."""
        return self.snake.replace("_", " ")

    @property
    def plural_words(self) -> str:
        return self.plural_snake.replace("_", " ")

    @property
    def file_stem(self) -> str:
        """The proto file (and implementation module) name: billing_service."""
        return snake_case(self.service)


def parse_service_name(name: str) -> ServiceName:
    """NAME in PascalCase, with or without the Service suffix; ProtokitError says what is wrong."""
    if not name.isidentifier() or not name.isascii():
        raise ProtokitError(
            f"service name {name!r} is not an identifier: use PascalCase letters and digits, e.g. Billing"
        )
    resource = name.removesuffix("Service") if name != "Service" else ""
    for candidate in (name, resource, snake_case(resource)):
        if keyword.iskeyword(candidate):
            raise ProtokitError(f"service name {name!r} is a Python keyword ({candidate!r}): choose another name")
    if not _PASCAL.fullmatch(name):
        suggestion = pascal_case(name.lower()) if name.replace("_", "").isalnum() else "Billing"
        raise ProtokitError(f"service name {name!r} is not PascalCase: use e.g. {suggestion or 'Billing'}")
    if not resource:
        raise ProtokitError("service name 'Service' names nothing: use e.g. Billing or BillingService")
    if resource == "DESCRIPTOR":
        raise ProtokitError("service name 'DESCRIPTOR' would shadow the generated module's DESCRIPTOR")
    return ServiceName(resource=resource, service=resource + "Service", snake=snake_case(resource))


def check_package(package: str, what: str = "package", origin: str = "") -> None:
    """A proto package buf STANDARD and protokit's PY rules accept: lower_snake segments ending in a
    version (acme.billing.v1, v1beta1, v2alpha); no keyword segment, no shadowed top-level module."""
    parts = package.split(".")
    problem = None
    bad = [p for p in parts if not LOWER_SNAKE.fullmatch(p)]
    if not package:
        problem = "is empty"
    elif bad:
        problem = f"has the segment {bad[0]!r}: segments are lower_snake_case (a-z, 0-9, _), starting with a letter"
    elif len(parts) < 2 or not _version_ok(parts[-1]):
        problem = "must end in a version segment after its name, e.g. acme.billing.v1, v1beta1 or v2alpha"
    elif any(keyword.iskeyword(p) for p in parts):
        word = next(p for p in parts if keyword.iskeyword(p))
        problem = f"has the Python keyword segment {word!r}, which makes the generated imports a syntax error"
    elif parts[0] in STDLIB_MODULES or parts[0] in RESERVED_TOP_LEVEL:
        problem = (
            f"starts with {parts[0]!r}: the generated top-level Python package would shadow the module of "
            "that name; prefix it with your organisation or project, e.g. acme." + package
        )
    if problem:
        raise ProtokitError(f"{what} {package!r}{origin} {problem}")


def _version_ok(segment: str) -> bool:
    match = _VERSION.fullmatch(segment)
    if match is None:
        return False
    major, patch, pre = match.groups()
    return int(major) > 0 and (patch is None or int(patch) > 0) and (not pre or int(pre) > 0)


def default_package(name: ServiceName) -> str:
    return f"{name.snake}.v1"


def python_package_name(snake: str, service_snake: str, taken: set[str]) -> str:
    """The implementation package: the resource in snake_case (billing), or the service's
    (billing_service) where that would clash with a generated package, the stdlib or a dependency."""
    for candidate in (snake, service_snake):
        if candidate not in taken and candidate not in STDLIB_MODULES and candidate not in RESERVED_TOP_LEVEL:
            return candidate
    raise ProtokitError(
        f"cannot name the Python package: {snake!r} and {service_snake!r} clash with "
        "the standard library, a dependency or the proto package; choose another service name or --package"
    )
