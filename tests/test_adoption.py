"""Adopting existing protos (protokit.scaffold.adoption): module roots for any layout, deps from the imports, buf.yaml
and a lint baseline that the real buf and protokit lint both accept; bad input refused before any write."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from conftest import BUF, tree_bytes
from protokit import config
from protokit.check.lint import lint
from protokit.compile import GOOGLEAPIS_DEP, VALIDATE_DEP
from protokit.config import Module
from protokit.errors import ProtokitError
from protokit.scaffold.adoption import (
    DEFAULT_LINT_USE,
    UNIMPORTABLE_RULES,
    AdoptionPlan,
    module_roots,
    plan_adoption,
    preferred_root,
)
from protokit.sources import ProtoFile

Write = Callable[[dict[str, str]], Path]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Content-addressed, so sharing it between the tests of this module cannot change results.
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def root(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(shared_cache))
    project = tmp_path / "team"
    project.mkdir()
    return project


@pytest.fixture
def write(root: Path) -> Write:
    """Write {project-relative path: proto text} into the project; returns its root."""

    def put(files: dict[str, str]) -> Path:
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return root

    return put


def adopt(root: Path, *paths: str, lint_use: Sequence[str] = DEFAULT_LINT_USE) -> AdoptionPlan:
    """plan_adoption on project-relative paths, checking that it wrote nothing."""
    before = tree_bytes(root)
    plan = plan_adoption(root, [root / p for p in paths], lint_use=lint_use)
    assert tree_bytes(root) == before
    return plan


def refused(root: Path, *paths: str) -> ProtokitError:
    before = tree_bytes(root)
    with pytest.raises(ProtokitError) as caught:
        plan_adoption(root, [root / p for p in paths])
    assert tree_bytes(root) == before
    return caught.value


def accept(plan: AdoptionPlan) -> Path:
    """Write the planned buf.yaml, as the command will."""
    assert plan.buf_yaml is not None
    (plan.root / "buf.yaml").write_text(plan.buf_yaml)
    return plan.root


def protokit_lint(root: Path) -> list[str]:
    return [f"{f.path}:{f.type}" for f in lint(config.load_project(root), []).findings]


def buf_lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), "lint"], cwd=root, capture_output=True, text=True, timeout=120)


# A team's UserService in the shape issue 13 describes: 7 RPCs of all four kinds, importing a
# well-known type and googleapis' google.rpc.Status, and not named the way buf's STANDARD wants.
USER_SERVICE = """\
    syntax = "proto3";

    package user.v1;

    import "google/protobuf/empty.proto";
    import "google/rpc/status.proto";

    service UserService {
      rpc GetUser(GetUserRequest) returns (User);
      rpc CreateUser(CreateUserRequest) returns (User);
      rpc UpdateUser(UpdateUserRequest) returns (User);
      rpc DeleteUser(DeleteUserRequest) returns (google.protobuf.Empty);
      rpc ListUsers(ListUsersRequest) returns (stream User);
      rpc BatchCreateUsers(stream CreateUserRequest) returns (BatchCreateUsersResponse);
      rpc WatchUsers(stream WatchUsersRequest) returns (stream UserEvent);
    }

    message User {
      string id = 1;
      string name = 2;
      string email = 3;
    }

    message GetUserRequest { string id = 1; }
    message CreateUserRequest { string name = 1; string email = 2; }
    message UpdateUserRequest { string id = 1; optional string name = 2; optional string email = 3; }
    message DeleteUserRequest { string id = 1; }
    message ListUsersRequest { int32 page_size = 1; string page_token = 2; }
    message BatchCreateUsersResponse {
      repeated User users = 1;
      int32 created = 2;
      repeated google.rpc.Status errors = 3;
    }
    message WatchUsersRequest {}
    message UserEvent {
      enum Type { TYPE_UNSPECIFIED = 0; TYPE_CREATED = 1; TYPE_UPDATED = 2; TYPE_DELETED = 3; }
      Type type = 1;
      User user = 2;
    }
"""
# What buf's STANDARD says about it: requests and responses not named <Rpc>Request/<Rpc>Response (7 + 7,
# minus the requests that are: GetUserRequest, CreateUserRequest, ...) and shared between RPCs.
USER_SERVICE_RULES = {"RPC_REQUEST_RESPONSE_UNIQUE", "RPC_REQUEST_STANDARD_NAME", "RPC_RESPONSE_STANDARD_NAME"}


def service(package: str, name: str, imports: str = "") -> str:
    """A lint-clean file (under STANDARD) defining one small service."""
    return f"""\
    syntax = "proto3";
    package {package};
    {imports}
    service {name}Service {{ rpc Get{name}(Get{name}Request) returns (Get{name}Response); }}
    message Get{name}Request {{ string id = 1; }}
    message Get{name}Response {{ string id = 1; }}
    """


# --- layouts ---------------------------------------------------------------------------------------------


def test_a_user_service_in_proto_gets_its_module_and_googleapis(write: Write) -> None:
    root = write({"proto/user/v1/user_service.proto": USER_SERVICE})
    plan = adopt(root, "proto")
    assert plan.modules == (Module("proto"),)
    assert plan.deps == (GOOGLEAPIS_DEP,)  # google/protobuf/*.proto needs none
    assert [(s.name, s.file) for s in plan.services] == [("user.v1.UserService", "proto/user/v1/user_service.proto")]
    assert (plan.given, plan.extra, plan.hints) == (("proto/user/v1/user_service.proto",), (), ())
    assert set(plan.baseline.ignore_only) == USER_SERVICE_RULES
    assert plan.baseline.count == plan.baseline.buf_count > 0
    assert plan.buf_yaml is not None
    assert "modules:\n  - path: proto\ndeps:\n  - buf.build/googleapis/googleapis\nlint:\n" in plan.buf_yaml
    assert "breaking:\n  use:\n    - FILE\n" in plan.buf_yaml
    assert protokit_lint(accept(plan)) == []


def test_a_file_at_the_repository_root_whose_package_is_not_its_directory(write: Write) -> None:
    """user_service.proto in `.` with package user.v1: the root is the repository; buf's
    PACKAGE_DIRECTORY_MATCH finding is baselined. A vendored tree nothing imports is excluded, broken
    as it is, so the module holds the protos adopted."""
    root = write(
        {
            "user_service.proto": USER_SERVICE,
            "vendor/other/v1/broken.proto": "syntax = 'proto3'; package other.v1; message {",
        }
    )
    plan = adopt(root, "user_service.proto")
    assert plan.modules == (Module(".", excludes=("vendor",)),)
    assert plan.baseline.ignore_only["PACKAGE_DIRECTORY_MATCH"] == ["user_service.proto"]
    assert set(plan.baseline.ignore_only) == USER_SERVICE_RULES | {"PACKAGE_DIRECTORY_MATCH"}
    assert protokit_lint(accept(plan)) == []


@pytest.mark.parametrize("package", ["api.v1", "acme.api.v1"])
def test_nested_files_importing_each_other_are_rooted_where_the_import_resolves(write: Write, package: str) -> None:
    """services/api/v1/{a,b}.proto, a importing "api/v1/b.proto": the root is services whether the package
    matches the directory (api.v1) or not (acme.api.v1, decided by the import alone); buf and protokit
    both lint the result clean."""
    root = write(
        {
            "services/api/v1/a.proto": service(package, "Alpha", 'import "api/v1/b.proto";'),
            "services/api/v1/b.proto": f'syntax = "proto3";\npackage {package};\nmessage Shared {{ string id = 1; }}\n',
        }
    )
    plan = adopt(root, "services/api/v1/a.proto", "services/api/v1/b.proto")
    assert plan.modules == (Module("services"),)
    assert plan.deps == ()
    accept(plan)
    assert protokit_lint(root) == []
    assert buf_lint(root).returncode == 0, buf_lint(root).stdout


def test_an_import_decides_a_root_the_package_cannot(write: Write) -> None:
    """api/v1/x.proto importing "v1/y.proto" means the root api (the importer's package says nothing);
    naming the importer is enough: y.proto is found beside it and becomes part of the module."""
    root = write(
        {
            "api/v1/x.proto": service("team.x", "Thing", 'import "v1/y.proto";'),
            "api/v1/y.proto": 'syntax = "proto3";\npackage team.x;\nmessage Y {}\n',
        }
    )
    plan = adopt(root, "api/v1/x.proto")
    assert plan.modules == (Module("api"),)
    assert (plan.given, plan.extra) == (("api/v1/x.proto",), ("api/v1/y.proto",))
    accept(plan)
    assert protokit_lint(root) == []
    assert buf_lint(root).returncode == 0, buf_lint(root).stdout


def test_a_package_rooted_module_nests_in_the_repository_root_module(write: Write) -> None:
    """a.proto imports "b.proto" (root "."), proto/user/v1/u.proto is in package user.v1 (root proto): the
    outer module excludes the inner one, so no file is in two modules, and buf accepts the workspace."""
    root = write(
        {
            "a.proto": service("top", "Top", 'import "b.proto";').replace("string id = 1;", "B b = 1;", 1),
            "b.proto": 'syntax = "proto3";\npackage top;\nmessage B {}\n',
            "proto/user/v1/u.proto": (
                'syntax = "proto3";\npackage user.v1;\nimport "b.proto";\nmessage U { top.B b = 1; }\n'
            ),
        }
    )
    plan = adopt(root, ".")
    assert plan.modules == (Module(".", excludes=("proto",)), Module("proto"))
    assert plan.baseline.ignore_only == {
        "PACKAGE_DIRECTORY_MATCH": ["a.proto", "b.proto"],
        "PACKAGE_VERSION_SUFFIX": ["a.proto", "b.proto"],
    }
    accept(plan)
    assert buf_lint(root).returncode == 0, buf_lint(root).stdout
    assert protokit_lint(root) == []


def test_a_directory_with_two_protos_and_three_services(write: Write) -> None:
    two = (
        service("shop.v1", "Order") + "service CartService { rpc GetCart(GetCartRequest) returns (GetCartResponse); }\n"
    )
    two += "message GetCartRequest { string id = 1; }\nmessage GetCartResponse { string id = 1; }\n"
    root = write({"proto/shop/v1/item.proto": service("shop.v1", "Item"), "proto/shop/v1/order.proto": two})
    plan = adopt(root, "proto/shop/v1")
    assert plan.modules == (Module("proto"),)
    assert [s.name for s in plan.services] == ["shop.v1.ItemService", "shop.v1.OrderService", "shop.v1.CartService"]
    assert plan.baseline.count == 0 and "ignore_only" not in (plan.buf_yaml or "")
    accept(plan)
    assert buf_lint(root).returncode == 0 and protokit_lint(root) == []


# --- the rule, without compiling ----------------------------------------------------------------------------


def scanned(files: dict[str, tuple[str, tuple[str, ...]]]) -> dict[str, ProtoFile]:
    """{path: (package, imports)} as the import scan reads them."""
    return {p: ProtoFile(p, ".", "", imports, (), package) for p, (package, imports) in files.items()}


def test_preferred_root_is_where_the_package_path_starts() -> None:
    assert preferred_root("proto/user/v1/x.proto", "user.v1") == "proto"
    assert preferred_root("user/v1/x.proto", "user.v1") == "."
    assert preferred_root("x.proto", "user.v1") is None
    assert preferred_root("proto/acme_user/v1/x.proto", "user.v1") is None  # a whole directory name only


def test_roots_follow_packages_imports_and_directories() -> None:
    files = scanned(
        {
            "proto/user/v1/u.proto": ("user.v1", ()),
            "proto/legacy.proto": ("legacy.stuff", ()),  # mismatched, under a chosen root: joins it
            "misc/a/x.proto": ("acme", ()),  # mismatched, nothing around it: its own directory
            "misc/a/b/y.proto": ("acme", ()),  # mismatched, deeper: shares the shallower one's root
            "api/v1/x.proto": ("team.x", ("v1/y.proto",)),
            "api/v1/y.proto": ("team.x", ()),
        }
    )
    assert module_roots(sorted(files), files) == {
        "api/v1/x.proto": "api",
        "api/v1/y.proto": "api",
        "misc/a/b/y.proto": "misc/a",
        "misc/a/x.proto": "misc/a",
        "proto/legacy.proto": "proto",
        "proto/user/v1/u.proto": "proto",
    }


def test_a_package_root_nests_in_a_root_an_import_needs_unless_it_takes_an_imported_file() -> None:
    files = scanned(
        {
            "a.proto": ("top", ("b.proto",)),  # forces the root "."
            "b.proto": ("top", ()),
            "proto/user/v1/u.proto": ("user.v1", ()),  # gets "proto", nested in "."
        }
    )
    assert module_roots(sorted(files), files)["proto/user/v1/u.proto"] == "proto"
    files["a.proto"] = ProtoFile("a.proto", ".", "", ("proto/user/v1/u.proto",), (), "top")
    # Now "proto" would take u.proto from the root its importer needs: it stays in ".".
    assert module_roots(sorted(files), files)["proto/user/v1/u.proto"] == "."


def test_one_file_imported_under_two_names_is_an_error_naming_both() -> None:
    files = scanned(
        {
            "api/v1/x.proto": ("x", ("v1/z.proto",)),
            "api/v1/y.proto": ("y", ("api/v1/z.proto",)),
            "api/v1/z.proto": ("z", ()),
        }
    )
    with pytest.raises(ProtokitError) as caught:
        module_roots(sorted(files), files)
    assert "api/v1/z.proto is imported under 2 different names" in caught.value.message
    assert any('"v1/z.proto" (module root api)' in line for line in caught.value.lines)
    assert any('"api/v1/z.proto" (module root .)' in line for line in caught.value.lines)


# --- bad input ----------------------------------------------------------------------------------------------


def test_protoc_gen_validate_is_an_error_saying_what_to_do(write: Write) -> None:
    root = write(
        {
            "proto/acme/v1/a.proto": service("acme.v1", "Alpha", 'import "validate/validate.proto";'),
        }
    )
    error = refused(root, "proto")
    assert error.lines == [error.message]
    assert error.message.startswith('proto/acme/v1/a.proto:3:1: imports "validate/validate.proto", protoc-gen-validate')
    assert "buf/validate/validate.proto" in error.message and VALIDATE_DEP in error.message
    assert "protovalidate-migrate" in error.message


def test_an_import_nothing_serves_names_the_file_and_where_the_import_is(write: Write) -> None:
    root = write(
        {
            "proto/acme/v1/a.proto": service("acme.v1", "Alpha", 'import "common/v1/types.proto";'),
            "elsewhere/common/v1/types.proto": 'syntax = "proto3";\npackage common.v1;\n',
        }
    )
    error = refused(root, "proto/acme/v1/a.proto")
    assert error.message.startswith('proto/acme/v1/a.proto:3:1: imports "common/v1/types.proto", which is not')
    assert error.message.endswith("elsewhere/common/v1/types.proto has that name: add it to the PATHs")


def test_a_file_that_does_not_compile_is_reported_at_its_line_and_column(write: Write) -> None:
    root = write({"proto/acme/v1/a.proto": 'syntax = "proto3";\npackage acme.v1;\n\nmessage A {\n  strin id = 1;\n}\n'})
    error = refused(root, "proto")
    assert error.lines == ['proto/acme/v1/a.proto:5:3: "strin" is not defined.']


def test_protos_without_a_service_are_refused(write: Write) -> None:
    root = write({"proto/acme/v1/a.proto": 'syntax = "proto3";\npackage acme.v1;\nmessage A {}\n'})
    assert refused(root, "proto").message.startswith("no service in proto/acme/v1/a.proto: ")


def test_a_python_keyword_package_is_an_error_not_a_baseline(write: Write) -> None:
    root = write({"proto/acme/class/v1/thing.proto": service("acme.class.v1", "Thing")})
    error = refused(root, "proto")
    rules = sorted(line.rsplit("(", 1)[1].rstrip(")") for line in error.lines)
    assert rules == ["PY_FILE_NAME_IMPORTABLE", "PY_PACKAGE_KEYWORD"]
    assert all(line.startswith("proto/acme/class/v1/thing.proto:") for line in error.lines)
    assert "unimportable" in error.message


def test_paths_outside_the_project_or_not_protos_are_refused(write: Write, tmp_path: Path) -> None:
    root = write({"proto/acme/v1/a.proto": service("acme.v1", "Alpha"), "README.md": "# team\n"})
    assert "outside the project" in refused(root, "../").message
    assert refused(root, "README.md").message.endswith("README.md: not a .proto file")


# --- the lint baseline -----------------------------------------------------------------------------------------

# STANDARD-clean but without a comment: COMMENT_SERVICE 1, COMMENT_RPC 1, COMMENT_MESSAGE 3, COMMENT_FIELD 4,
# COMMENT_ENUM 1, COMMENT_ENUM_VALUE 2 = 12; and one STANDARD finding (FIELD_LOWER_SNAKE_CASE).
UNCOMMENTED = """\
    syntax = "proto3";

    package shop.v1;

    service ItemService {
      rpc GetItem(GetItemRequest) returns (GetItemResponse);
    }

    message GetItemRequest {
      string id = 1;
    }

    message GetItemResponse {
      Item item = 1;
    }

    message Item {
      string id = 1;
      string displayName = 2;
    }

    enum Color {
      COLOR_UNSPECIFIED = 0;
      COLOR_RED = 1;
    }
"""


def test_comments_findings_are_baselined_so_buf_and_protokit_lint_pass(write: Write) -> None:
    root = write({"proto/shop/v1/item.proto": UNCOMMENTED})
    plan = adopt(root, "proto", lint_use=("STANDARD", "COMMENTS"))
    assert plan.baseline.count == plan.baseline.buf_count == 13
    assert plan.baseline.ignore_only == {
        rule: ["proto/shop/v1/item.proto"]
        for rule in (
            "COMMENT_ENUM",
            "COMMENT_ENUM_VALUE",
            "COMMENT_FIELD",
            "COMMENT_MESSAGE",
            "COMMENT_RPC",
            "COMMENT_SERVICE",
            "FIELD_LOWER_SNAKE_CASE",
        )
    }
    assert plan.buf_yaml is not None and "# The baseline: the 13 finding(s)" in plan.buf_yaml
    # The same count from buf itself, on the config without the baseline.
    unbaselined = plan.buf_yaml.split("  # The baseline")[0] + "breaking:\n  use:\n    - FILE\n"
    (root / "buf.yaml").write_text(unbaselined)
    assert len(buf_lint(root).stdout.splitlines()) == 13
    accept(plan)
    assert buf_lint(root).returncode == 0, buf_lint(root).stdout
    assert protokit_lint(root) == []


def test_protokits_own_rules_are_baselined_for_pyproject_unless_the_code_would_not_import(write: Write) -> None:
    """An enum value named `sys` shadows the generated module's `import sys` (PY_NAME_SHADOWS_GENERATED):
    the code still imports, so it is recorded in pyproject.toml's table, which buf would refuse."""
    from protokit.check import rules

    assert {"PY_NAME_SHADOWS_GENERATED", *UNIMPORTABLE_RULES} <= {r.id for r in rules.RULES}
    root = write(
        {"proto/acme/v1/a.proto": service("acme.v1", "Thing") + "enum Kind { KIND_UNSPECIFIED = 0; sys = 1; }\n"}
    )
    plan = adopt(root, "proto")
    assert (plan.baseline.count, plan.baseline.buf_count) == (3, 2)
    assert set(plan.baseline.ignore_only) == {"ENUM_VALUE_PREFIX", "ENUM_VALUE_UPPER_SNAKE_CASE"}
    assert plan.baseline.pyproject_toml() == (
        '[tool.protokit.lint.ignore_only]\nPY_NAME_SHADOWS_GENERATED = ["proto/acme/v1/a.proto"]\n'
    )
    accept(plan)
    assert protokit_lint(root) == ["proto/acme/v1/a.proto:PY_NAME_SHADOWS_GENERATED"]
    (root / "pyproject.toml").write_text(plan.baseline.pyproject_toml())
    assert protokit_lint(root) == []
    assert buf_lint(root).returncode == 0, buf_lint(root).stdout


def test_the_baseline_is_what_protokit_lint_prints_as_config_ignore_yaml(write: Write) -> None:
    from protokit.bufformats import to_ignore_yaml

    root = write({"proto/shop/v1/item.proto": UNCOMMENTED})
    plan = adopt(root, "proto")  # STANDARD only: the one FIELD_LOWER_SNAKE_CASE
    assert plan.baseline.count == 1
    (root / "buf.yaml").write_text("version: v2\nmodules:\n  - path: proto\nlint:\n  use:\n    - STANDARD\n")
    project = config.load_project(root)
    printed = to_ignore_yaml(lint(project, []).findings, project)
    block = printed.removeprefix("version: v2\nlint:\n")
    assert plan.buf_yaml is not None and block in plan.buf_yaml


# --- an existing buf.yaml ----------------------------------------------------------------------------------------


def test_an_existing_buf_yaml_is_kept_and_what_it_lacks_is_hinted(write: Write) -> None:
    existing = "version: v2\nmodules:\n  - path: proto\nlint:\n  use:\n    - STANDARD\n"
    root = write(
        {
            "buf.yaml": existing,
            "proto/user/v1/user_service.proto": USER_SERVICE,
            "other/billing/v1/billing.proto": service("billing.v1", "Invoice"),
        }
    )
    plan = adopt(root, "proto", "other")
    assert plan.buf_yaml is None and (root / "buf.yaml").read_text() == existing
    assert plan.modules == (Module("proto"), Module("other"))
    assert plan.deps == (GOOGLEAPIS_DEP,)
    hints = {h.message.split(";")[0]: h.snippet for h in plan.hints}
    assert hints["has no module for some of the protos"] == "  - path: other"
    assert hints["lacks deps the imports need (protokit serves them offline)"] == f"  - {GOOGLEAPIS_DEP}"
    baseline = next(s for m, s in hints.items() if m.startswith("the protos have"))
    assert baseline.startswith(
        "  ignore_only:\n    RPC_REQUEST_RESPONSE_UNIQUE:\n      - proto/user/v1/user_service.proto"
    )
    assert all(h.path == "buf.yaml" for h in plan.hints)


def test_an_existing_module_excluding_a_named_directory_is_hinted(write: Write) -> None:
    root = write(
        {
            "buf.yaml": "version: v2\nmodules:\n  - path: proto\n    excludes:\n      - proto/legacy\n",
            "proto/acme/v1/a.proto": service("acme.v1", "Alpha"),
            "proto/legacy/v1/old.proto": service("legacy.v1", "Old"),
        }
    )
    plan = adopt(root, "proto/legacy")
    assert plan.modules == (Module("proto"),) and plan.extra == ("proto/acme/v1/a.proto",)
    assert [h.message for h in plan.hints] == [
        'module "proto" excludes proto/legacy, which holds proto/legacy/v1/old.proto; remove it there'
    ]


def test_an_existing_buf_yaml_that_lacks_nothing_gets_no_hint(write: Write) -> None:
    root = write(
        {
            "buf.yaml": "version: v2\nmodules:\n  - path: proto\n",
            "proto/acme/v1/a.proto": service("acme.v1", "Alpha"),
        }
    )
    plan = adopt(root, "proto/acme/v1/a.proto")
    assert (plan.buf_yaml, plan.hints, plan.modules) == (None, (), (Module("proto"),))
