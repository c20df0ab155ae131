"""`protokit new service` and `protokit new proto`: a working, lint-clean starting point.

`new_service` writes a documented, validated proto (CRUD, a server-streaming List and, unless
streaming is off, a client-streaming batch create and a bidirectional watch), the project files that
are missing (buf.yaml, buf.gen.yaml, pyproject.toml, .gitignore, README.md, a CI workflow, a Dockerfile), an
in-memory implementation of every RPC with a server entry point, and pytest tests over a real
socket; then it runs `protokit gen` in-process. In a directory that already belongs to a protokit
project (a buf.yaml at or above it) it adds the service to that project instead.

Existing files are never overwritten: when one lacks something the new service needs, the result
carries a `Hint` saying exactly what to add. Everything is validated before the first write, and a
failure after it (protoc rejecting the proto, say) removes what was written, so a run either
completes or leaves the tree as it was.

`new_proto` is prototool's `create`: one lint-clean file whose package follows from its directory
under the module root.

The modules, in the order a run uses them: names (the service's names, package rules), layout (the
project and where things go), plan (checks, then the files and hints), render (templates and their
view models), hints (what existing files lack), writer (the transaction), results (what a run
returns and how it is printed), service and proto (the two commands).

`new service --from` (adopt) has its own: adoption (the project around existing protos: modules,
deps, lint baseline), resources (which RPCs are standard methods, and their shapes), adopted (the
view model of the implementation and tests it writes).
"""

from protokit.check.pyrules import _STDLIB as STDLIB_MODULES
from protokit.names import pascal_case, pluralize
from protokit.scaffold.hints import Hint
from protokit.scaffold.layout import (
    BUF_GEN_YAML,
    BUF_YAML,
    DEFAULT_MODULE,
    DEFAULT_OUT,
    DEFAULT_SOURCE_ROOT,
    PROTOKIT_PLUGIN,
    PYPROJECT,
    GenInfo,
    Layout,
)
from protokit.scaffold.names import (
    RESERVED_TOP_LEVEL,
    ServiceName,
    check_package,
    default_package,
    parse_service_name,
)
from protokit.scaffold.plan import WORKFLOW
from protokit.scaffold.proto import new_proto
from protokit.scaffold.render import TEMPLATES, environment, servicer_method
from protokit.scaffold.results import ProtoResult, ServiceResult, render_proto, render_service
from protokit.scaffold.service import new_service
from protokit.servicegen.render import LINE_LENGTH, wrap

__all__ = [
    "BUF_GEN_YAML",
    "BUF_YAML",
    "DEFAULT_MODULE",
    "DEFAULT_OUT",
    "DEFAULT_SOURCE_ROOT",
    "LINE_LENGTH",
    "PROTOKIT_PLUGIN",
    "PYPROJECT",
    "RESERVED_TOP_LEVEL",
    "STDLIB_MODULES",
    "TEMPLATES",
    "WORKFLOW",
    "GenInfo",
    "Hint",
    "Layout",
    "ProtoResult",
    "ServiceName",
    "ServiceResult",
    "check_package",
    "default_package",
    "environment",
    "new_proto",
    "new_service",
    "parse_service_name",
    "pascal_case",
    "pluralize",
    "render_proto",
    "render_service",
    "servicer_method",
    "wrap",
]
