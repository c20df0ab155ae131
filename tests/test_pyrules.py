"""protokit's PY lint rules and their pyproject.toml configuration, at library level with real protoc."""

from __future__ import annotations

import keyword
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from conftest import REPO
from protokit import config
from protokit.check import pyrules, rules
from protokit.compile import build_descriptor_set
from protokit.config.pyproject_config import BreakingExtraConfig, PyLintConfig, load_protokit_config
from protokit.errors import ConfigError
from protokit.findings import Finding

Compile = Callable[[dict[str, str]], list[descriptor_pb2.FileDescriptorProto]]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Content-addressed, so sharing it between the tests of this module cannot change results.
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def compile_protos(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Compile:
    """Write {name: source} under protos/ of a fresh project and compile them; returns their descriptors."""
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(shared_cache))
    root = tmp_path / "proj"
    (root / "protos").mkdir(parents=True)
    (root / "buf.yaml").write_text("version: v2\nmodules:\n  - path: protos\n")

    def build(files: dict[str, str]) -> list[descriptor_pb2.FileDescriptorProto]:
        for name, text in files.items():
            path = root / "protos" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        project = config.load_project(root)
        data = build_descriptor_set(project, shared_cache, list(files), [m.path for m in project.modules])
        fds = descriptor_pb2.FileDescriptorSet.FromString(data)
        return [f for f in fds.file if f.name in files]

    return build


def display(name: str) -> str:
    return f"protos/{name}"


def lint(files: list[descriptor_pb2.FileDescriptorProto], cfg: PyLintConfig | None = None) -> list[Finding]:
    return pyrules.run(files, display, cfg or PyLintConfig())


def of_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.type == rule]


def spans(findings: list[Finding]) -> list[tuple[str, int, int, int, int]]:
    return [(f.path, f.start_line, f.start_column, f.end_line, f.end_column) for f in findings]


HEADER = 'syntax = "proto3";\npackage a.v1;\n'
SYNTAX_SPAN = (1, 1, 1, 19)  # syntax = "proto3"; on line 1


# --- the registry ---------------------------------------------------------------------------------


def test_registry_ids_unique_in_py_category_with_purposes() -> None:
    """Every PY handler has exactly one spec in the registry, and every PY spec a handler."""
    ids = [r.id for r in pyrules.RULES]
    assert len(ids) == len(set(ids))
    specs = rules.of(rules.LINT)
    assert sorted(ids) == sorted(s.id for s in specs)
    assert all(s.id.startswith("PY_") and s.category == "PY" for s in specs)
    assert all(s.purpose.endswith(".") and len(s.purpose) > 40 for s in specs)


def test_keyword_sets_match_pinned_mypy_protobuf() -> None:
    """The rules encode mypy-protobuf's mangling conditions; fail loudly if an upgrade changes them."""
    from mypy_protobuf.main import PROTO_ENUM_RESERVED, PYTHON_RESERVED

    assert set(PYTHON_RESERVED) == set(keyword.kwlist)
    assert set(PROTO_ENUM_RESERVED) <= pyrules._ENUM_WRAPPER_ATTRS


def test_module_path_follows_protoc() -> None:
    assert pyrules.module_path("a/foo-bar.proto") == "a/foo_bar"
    assert pyrules.module_path("a/foo.bar.proto") == "a/foo/bar"
    assert pyrules.module_name("a-b/v1/x.proto") == "a_b.v1.x_pb2"


# --- PY_FILE_NAME_IMPORTABLE -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a/v1/1abc.proto", '"1abc" starts with a digit'),
        ("a/v1/foo.1bar.proto", '"1bar" starts with a digit'),
        ("a/class/v1/x.proto", '"class" is a Python keyword'),
        ("a/v1/foo+bar.proto", '"foo+bar" is not a Python identifier'),
    ],
)
def test_file_name_importable_flags(compile_protos: Compile, name: str, reason: str) -> None:
    files = compile_protos({name: HEADER + "message M {}\n"})
    found = of_rule(lint(files), "PY_FILE_NAME_IMPORTABLE")
    assert spans(found) == [(f"protos/{name}", *SYNTAX_SPAN)]
    assert reason in found[0].message
    assert found[0].source == "protokit"


def test_file_name_importable_reports_at_syntax_statement(compile_protos: Compile) -> None:
    files = compile_protos({"a/v1/1foo.proto": "// leading comment\n\n" + HEADER})
    found = of_rule(lint(files), "PY_FILE_NAME_IMPORTABLE")
    assert spans(found) == [("protos/a/v1/1foo.proto", 3, 1, 3, 19)]
    assert "a.v1.1foo_pb2" in found[0].message


def test_file_name_importable_without_syntax_reports_file_start(compile_protos: Compile) -> None:
    files = compile_protos({"a/v1/1foo.proto": "package a.v1;\nmessage M {}\n"})
    assert spans(of_rule(lint(files), "PY_FILE_NAME_IMPORTABLE")) == [("protos/a/v1/1foo.proto", 1, 1, 1, 1)]


def test_file_name_importable_clean(compile_protos: Compile) -> None:
    # A keyword base name is fine (the module is import_pb2); "-" becomes "_" and "." a directory, as
    # protoc writes them: foo-bar -> foo_bar_pb2, k8s.min -> k8s/min_pb2 (a namespace package).
    files = compile_protos(
        {
            "a/v1/foo_bar.proto": HEADER,
            "a/v1/import.proto": HEADER,
            "a/v2/x2.proto": HEADER,
            "a/v1/foo-baz.proto": HEADER,
            "a/v1/k8s.min.proto": HEADER,
            "a-b/v1/x.proto": HEADER,
        }
    )
    assert of_rule(lint(files), "PY_FILE_NAME_IMPORTABLE") == []


# --- PY_PACKAGE_KEYWORD --------------------------------------------------------------------------


def test_package_keyword_flags(compile_protos: Compile) -> None:
    files = compile_protos({"acme/x.proto": 'syntax = "proto3";\npackage acme.class.v1;\n'})
    found = of_rule(lint(files), "PY_PACKAGE_KEYWORD")
    assert spans(found) == [("protos/acme/x.proto", 2, 1, 2, 23)]
    assert '"class"' in found[0].message and "from acme.class.v1 import" in found[0].message


def test_package_keyword_clean(compile_protos: Compile) -> None:
    # Soft keywords (match, case) are valid module names.
    files = compile_protos(
        {"acme/x.proto": 'syntax = "proto3";\npackage acme.classes.v1;\n', "acme/y.proto": "package acme.match.v1;\n"}
    )
    assert of_rule(lint(files), "PY_PACKAGE_KEYWORD") == []


# --- PY_NAME_KEYWORD -----------------------------------------------------------------------------

KEYWORD_NAMES = """\
syntax = "proto3";
package a.v1;

message Req {
  string from = 1;
  oneof import {
    string x = 2;
  }
  message None {}
}

message class {}

enum Color {
  COLOR_UNSPECIFIED = 0;
  True = 1;
}

service Svc {
  rpc import(Req) returns (Req);
}
service global {}
"""


def test_name_keyword_flags_every_kind(compile_protos: Compile) -> None:
    files = compile_protos({"a/v1/x.proto": KEYWORD_NAMES})
    found = of_rule(lint(files), "PY_NAME_KEYWORD")
    path = "protos/a/v1/x.proto"
    assert spans(found) == [
        (path, 5, 10, 5, 14),  # field from
        (path, 9, 11, 9, 15),  # nested message None
        (path, 12, 9, 12, 14),  # message class
        (path, 16, 3, 16, 7),  # enum value True
        (path, 20, 7, 20, 13),  # rpc import
        (path, 22, 9, 22, 15),  # service global
    ]  # the oneof "import" is only ever a string (WhichOneof("import")): not flagged
    by_line = {f.start_line: f.message for f in found}
    assert by_line[5].startswith('field "a.v1.Req.from" is named after the Python keyword "from"')
    assert "getattr" in by_line[5] and "rename it" in by_line[5]
    assert "_r_class" in by_line[12] and "a.v1.x_pb2.Req.None is a syntax error" in by_line[9]
    assert "a.v1.x_pb2.Color.True is a syntax error" in by_line[16]
    assert "x_pb2_grpc.py fails to import with a SyntaxError" in by_line[20]


def test_name_keyword_clean(compile_protos: Compile) -> None:
    files = compile_protos(
        {
            "a/v1/x.proto": HEADER
            + "message Req { string from_address = 1; string match = 2; string type = 3; string id = 4; }\n"
            + "enum Kind { KIND_UNSPECIFIED = 0; KIND_NONE = 1; }\n"
        }
    )
    assert of_rule(lint(files), "PY_NAME_KEYWORD") == []


# --- PY_NAME_SHADOWS_GENERATED -------------------------------------------------------------------

SHADOWING_NAMES = """\
syntax = "proto3";
package a.v1;

message DESCRIPTOR {}
enum _Kind {
  KIND_UNSPECIFIED = 0;
}
enum Mode {
  MODE_UNSPECIFIED = 0;
  sys = 1;
}
message Global___Thing {}
"""


def test_name_shadows_generated_flags(compile_protos: Compile) -> None:
    files = compile_protos({"a/v1/x.proto": SHADOWING_NAMES})
    found = of_rule(lint(files), "PY_NAME_SHADOWS_GENERATED")
    path = "protos/a/v1/x.proto"
    assert spans(found) == [
        (path, 4, 9, 4, 19),  # message DESCRIPTOR
        (path, 5, 6, 5, 11),  # enum _Kind
        (path, 10, 3, 10, 6),  # top-level enum value sys
        (path, 12, 9, 12, 23),  # message Global___Thing
    ]
    assert "overwrites a.v1.x_pb2.DESCRIPTOR" in found[0].message
    assert "imports sys" in found[2].message


def test_name_shadows_generated_clean(compile_protos: Compile) -> None:
    # mypy-protobuf 5 imports builtins as _builtins, so a message "builtins" is fine; nested names and
    # fields are not module globals.
    files = compile_protos(
        {"a/v1/x.proto": HEADER + "message builtins {}\nmessage Outer { message _Private {} string sys = 1; }\n"}
    )
    assert of_rule(lint(files), "PY_NAME_SHADOWS_GENERATED") == []


# --- PY_ENUM_VALUE_SHADOWS_WRAPPER ---------------------------------------------------------------


def test_enum_value_shadows_wrapper_flags(compile_protos: Compile) -> None:
    source = (
        HEADER
        + "\nmessage Holder {\n  enum Field {\n    FIELD_UNSPECIFIED = 0;\n    Name = 1;\n    values = 2;\n  }\n}\n"
    )
    files = compile_protos({"a/v1/x.proto": source})
    found = of_rule(lint(files), "PY_ENUM_VALUE_SHADOWS_WRAPPER")
    assert spans(found) == [("protos/a/v1/x.proto", 7, 5, 7, 9), ("protos/a/v1/x.proto", 8, 5, 8, 11)]
    assert 'enum value "a.v1.Holder.Name"' in found[0].message
    assert "a.v1.x_pb2.Holder.Field.Name is the wrapper's own attribute" in found[0].message


def test_enum_value_shadows_wrapper_clean(compile_protos: Compile) -> None:
    files = compile_protos({"a/v1/x.proto": HEADER + "enum Field { FIELD_UNSPECIFIED = 0; NAME = 1; VALUES = 2; }\n"})
    assert of_rule(lint(files), "PY_ENUM_VALUE_SHADOWS_WRAPPER") == []


# --- PY_MODULE_COLLISION -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "module"),
    [
        ("a/v1/foo-bar.proto", "a/v1/foo_bar.proto", "a/v1/foo_bar_pb2.py"),
        ("a/foo.bar.proto", "a/foo/bar.proto", "a/foo/bar_pb2.py"),
    ],
)
def test_module_collision_flags_both_files(compile_protos: Compile, first: str, second: str, module: str) -> None:
    files = compile_protos({first: HEADER + "message One {}\n", second: HEADER + "message Two {}\n"})
    found = of_rule(lint(files), "PY_MODULE_COLLISION")
    assert sorted(spans(found)) == sorted([(f"protos/{first}", *SYNTAX_SPAN), (f"protos/{second}", *SYNTAX_SPAN)])
    for finding in found:
        other = second if finding.path == f"protos/{first}" else first
        assert f'"protos/{other}"' in finding.message and module in finding.message


def test_module_collision_clean(compile_protos: Compile) -> None:
    files = compile_protos({"a/v1/foo_bar.proto": HEADER, "a/v1/foo_baz.proto": HEADER, "b/v1/foo_bar.proto": HEADER})
    assert of_rule(lint(files), "PY_MODULE_COLLISION") == []


# --- PY_PACKAGE_SHADOWS_STDLIB -------------------------------------------------------------------


@pytest.mark.parametrize("package", ["json.v1", "email.v1", "test.v1"])
def test_package_shadows_stdlib_flags_package(compile_protos: Compile, package: str) -> None:
    name = package.replace(".", "/") + "/x.proto"
    files = compile_protos({name: f'syntax = "proto3";\npackage {package};\n'})
    found = of_rule(lint(files), "PY_PACKAGE_SHADOWS_STDLIB")
    assert spans(found) == [(f"protos/{name}", 2, 1, 2, 10 + len(package))]  # one finding: directory == package
    assert f'package "{package}" starts with "{package.split(".")[0]}"' in found[0].message


def test_package_shadows_stdlib_flags_directory(compile_protos: Compile) -> None:
    files = compile_protos({"email/v1/x.proto": 'syntax = "proto3";\npackage acme.v1;\n'})
    found = of_rule(lint(files), "PY_PACKAGE_SHADOWS_STDLIB")
    assert spans(found) == [("protos/email/v1/x.proto", *SYNTAX_SPAN)]
    assert 'directory "email"' in found[0].message


def test_package_shadows_stdlib_clean(compile_protos: Compile) -> None:
    files = compile_protos(
        {
            f"{p}/v1/x.proto": f'syntax = "proto3";\npackage {p}.v1;\n'
            for p in ("user", "acme", "billing", "google.example", "buf.example")
        }
    )
    assert of_rule(lint(files), "PY_PACKAGE_SHADOWS_STDLIB") == []


# --- PY_PACKAGE_SHADOWS_DEPENDENCY ---------------------------------------------------------------


def run_protoc_and_import(tmp_path: Path, name: str, text: str, module: str) -> subprocess.CompletedProcess[str]:
    """protoc's own Python output for one file, then `import module` with only that tree added to the path."""
    (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "src" / name).write_text(text)
    (tmp_path / "out").mkdir()
    args = ["-m", "grpc_tools.protoc", f"-I{tmp_path / 'src'}", f"--python_out={tmp_path / 'out'}", name]
    subprocess.run([sys.executable, *args], check=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "out")}
    return subprocess.run([sys.executable, "-c", f"import {module}"], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("package", ["grpc.ext.v1", "yaml.schema.v1"])
def test_package_shadows_dependency_flags(compile_protos: Compile, tmp_path: Path, package: str) -> None:
    name = package.replace(".", "/") + "/x.proto"
    text = f'syntax = "proto3";\npackage {package};\nmessage Thing {{}}\n'
    found = of_rule(lint(compile_protos({name: text})), "PY_PACKAGE_SHADOWS_DEPENDENCY")
    assert spans(found) == [(f"protos/{name}", 2, 1, 2, 10 + len(package))]
    # What the rule says: the generated module cannot be imported beside the installed package.
    imported = run_protoc_and_import(tmp_path, name, text, f"{package}.x_pb2")
    assert imported.returncode != 0 and "ModuleNotFoundError" in imported.stderr


def test_package_shadows_dependency_clean(compile_protos: Compile) -> None:
    """Namespaces another distribution shares (google, buf, protokit) join the generated tree."""
    files = compile_protos(
        {
            f"{p.replace('.', '/')}/v1/x.proto": f'syntax = "proto3";\npackage {p}.v1;\n'
            for p in ("acme", "google.example", "buf.example", "protokit.example")
        }
    )
    assert of_rule(lint(files), "PY_PACKAGE_SHADOWS_DEPENDENCY") == []


# --- PY_NAME_SHADOWS_MESSAGE_API -----------------------------------------------------------------

MESSAGE_API_PROTO = """\
    syntax = "proto3";
    package a.v1;
    message Outer {
      enum Kind { KIND_UNSPECIFIED = 0; Clear = 1; }
      string ListFields = 1;
      message HasField {}
      string list_fields = 2;
    }
    enum Top { TOP_UNSPECIFIED = 0; ByteSize = 1; }
    """


def test_name_shadows_message_api_flags_members(compile_protos: Compile, tmp_path: Path) -> None:
    found = of_rule(lint(compile_protos({"a/v1/m.proto": MESSAGE_API_PROTO})), "PY_NAME_SHADOWS_MESSAGE_API")
    assert [(f.start_line, f.message.split('"')[1]) for f in found] == [
        (4, "a.v1.Outer.Clear"),
        (5, "a.v1.Outer.ListFields"),
        (6, "a.v1.Outer.HasField"),
    ]  # a top-level enum value is a module global, not a message member
    # What the rule says: the member hides the method.
    shown = run_protoc_and_import(
        tmp_path,
        "a/v1/m.proto",
        textwrap.dedent(MESSAGE_API_PROTO),
        "a.v1.m_pb2 as m; import sys; sys.exit(0 if m.Outer.Clear != 1 and isinstance(m.Outer.HasField, type) else 1)",
    )
    assert shown.returncode == 0, shown.stderr


# --- the bundled UserService ---------------------------------------------------------------------


def test_user_service_has_no_py_findings(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(shared_cache))
    shutil.copytree(REPO / "protos", tmp_path / "protos")
    (tmp_path / "buf.yaml").write_text(
        "version: v2\nmodules:\n  - path: protos\ndeps:\n  - buf.build/bufbuild/protovalidate\n"
    )
    project = config.load_project(tmp_path)
    name = "user/v1/user_service.proto"
    fds = descriptor_pb2.FileDescriptorSet.FromString(build_descriptor_set(project, shared_cache, [name], ["protos"]))
    files = [f for f in fds.file if f.name == name]
    assert files and files[0].message_type
    assert lint(files) == []


# --- selection and ignores -----------------------------------------------------------------------


@pytest.fixture
def messy(compile_protos: Compile) -> list[descriptor_pb2.FileDescriptorProto]:
    """Two files with a PY_NAME_KEYWORD and a PY_FILE_NAME_IMPORTABLE finding each."""
    return compile_protos(
        {
            "a/v1/2foo.proto": HEADER + "message M { string from = 1; }\n",
            "b/v1/3baz.proto": 'syntax = "proto3";\npackage b.v1;\nmessage N { string class = 1; }\n',
        }
    )


def rule_paths(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.type, f.path) for f in findings]


ALL_MESSY = [
    ("PY_FILE_NAME_IMPORTABLE", "protos/a/v1/2foo.proto"),
    ("PY_NAME_KEYWORD", "protos/a/v1/2foo.proto"),
    ("PY_FILE_NAME_IMPORTABLE", "protos/b/v1/3baz.proto"),
    ("PY_NAME_KEYWORD", "protos/b/v1/3baz.proto"),
]


def test_run_defaults_select_all_and_sort(messy: list[descriptor_pb2.FileDescriptorProto]) -> None:
    findings = lint(messy)
    assert rule_paths(findings) == ALL_MESSY
    assert findings == sorted(findings)
    assert {f.source for f in findings} == {"protokit"}


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (PyLintConfig(use=("PY_NAME_KEYWORD",)), [ALL_MESSY[1], ALL_MESSY[3]]),
        (PyLintConfig(use=()), []),
        (PyLintConfig(except_=("PY_NAME_KEYWORD",)), [ALL_MESSY[0], ALL_MESSY[2]]),
        (PyLintConfig(use=("PY_NAME_KEYWORD",), except_=("PY",)), []),
        (PyLintConfig(ignore=("protos/a",)), ALL_MESSY[2:]),
        (PyLintConfig(ignore=("protos/b/v1/3baz.proto",)), ALL_MESSY[:2]),
        (PyLintConfig(ignore=("protos/a/v",)), ALL_MESSY),  # a path prefix that is not a directory
        (PyLintConfig(ignore=(".",)), []),
        (
            PyLintConfig(ignore_only={"PY_NAME_KEYWORD": ("protos/a/v1/2foo.proto",)}),
            [*ALL_MESSY[:1], *ALL_MESSY[2:]],
        ),
        (PyLintConfig(ignore_only={"PY": ("protos/b",)}), ALL_MESSY[:2]),
    ],
)
def test_run_applies_config(
    messy: list[descriptor_pb2.FileDescriptorProto], cfg: PyLintConfig, expected: list[tuple[str, str]]
) -> None:
    assert rule_paths(lint(messy, cfg)) == expected


# --- pyproject.toml ------------------------------------------------------------------------------


def write_pyproject(root: Path, text: str) -> Path:
    (root / "pyproject.toml").write_text(textwrap.dedent(text))
    return root


def test_config_defaults_without_file_or_table(tmp_path: Path) -> None:
    assert load_protokit_config(tmp_path) == (PyLintConfig(), BreakingExtraConfig())
    write_pyproject(tmp_path, '[project]\nname = "x"\n[tool.ruff]\nline-length = 1\n')
    lint_cfg, breaking = load_protokit_config(tmp_path)
    assert lint_cfg == PyLintConfig() and breaking == BreakingExtraConfig()
    assert lint_cfg.selects("PY_NAME_KEYWORD") and breaking.validate


def test_config_full(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        """\
        [tool.protokit.lint]
        use = ["PY"]
        except = ["PY_PACKAGE_SHADOWS_STDLIB"]
        ignore = ["protos/legacy/", "./protos/foo/v1/old.proto"]
        ignore_only = { PY_NAME_KEYWORD = ["protos/x/v1/y.proto"] }

        [tool.protokit.breaking]
        validate = false
        except = ["VALIDATE_MAX_LEN_DECREASED"]
        """,
    )
    lint_cfg, breaking = load_protokit_config(tmp_path)
    assert lint_cfg == PyLintConfig(
        use=("PY",),
        except_=("PY_PACKAGE_SHADOWS_STDLIB",),
        ignore=("protos/legacy", "protos/foo/v1/old.proto"),
        ignore_only={"PY_NAME_KEYWORD": ("protos/x/v1/y.proto",)},
    )
    assert breaking == BreakingExtraConfig(validate=False, except_=("VALIDATE_MAX_LEN_DECREASED",))
    assert not lint_cfg.selects("PY_PACKAGE_SHADOWS_STDLIB") and lint_cfg.selects("PY_MODULE_COLLISION")
    assert lint_cfg.ignores("PY_MODULE_COLLISION", "protos/legacy/v1/a.proto")
    assert not lint_cfg.ignores("PY_MODULE_COLLISION", "protos/legacy2/v1/a.proto")
    assert lint_cfg.ignores("PY_NAME_KEYWORD", "protos/x/v1/y.proto")
    assert not lint_cfg.ignores("PY_MODULE_COLLISION", "protos/x/v1/y.proto")
    assert not breaking.selects("VALIDATE_MAX_LEN_DECREASED")
    # The category turns off every VALIDATE rule.
    category = BreakingExtraConfig(except_=("VALIDATE",))
    assert not any(category.selects(s.id) for s in rules.of(rules.BREAKING))


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ('[tool.protokit.lint]\nuse = ["PY"]\nignored = ["x"]\n', 3, 1, 'unknown key "ignored"'),
        (
            '[tool.protokit.lint]\nuse = [\n  "PY",\n  "PY_NOPE",\n]\n',
            4,
            4,
            '"PY_NOPE" is not a known rule or category',
        ),
        ('[tool.protokit.lint]\nexcept = ["STANDARD"]\n', 2, 12, '"STANDARD" is not a known rule or category ID ('),
        (
            '[tool.protokit.lint]\nexcept = ["PY_NAME_KEYWROD"]\n',
            2,
            12,
            '"PY_NAME_KEYWROD" is not a known rule or category ID; did you mean "PY_NAME_KEYWORD"?',
        ),
        ('[tool.protokit.lint]\n\nuse = "PY"\n', 3, 1, "lint.use must be a list of strings"),
        ("[tool.protokit.lint]\nignore_only = { PY_NOPE = [] }\n", 2, 17, '"PY_NOPE" is not a known rule or category'),
        ('[tool.protokit.lint]\nignore = ["../elsewhere"]\n', 2, 12, "must be relative to the project root"),
        ("[tool.protokit.breaking]\nvalidate = 1\n", 2, 1, "breaking.validate must be true or false"),
        ('[tool.protokit.breaking]\nexcept = ["FIELD_NO_DELETE"]\n', 2, 12, '"FIELD_NO_DELETE" is not a known rule'),
        (
            '[tool.protokit.breaking]\nexcept = ["VALIDATE_MAX_LEN_DECREASD"]\n',
            2,
            12,
            'did you mean "VALIDATE_MAX_LEN_DECREASED"?',
        ),
        ('[tool.protokit.breaking]\nvalidate = true\nuse = ["X"]\n', 3, 1, 'unknown key "use"'),
        ('[project]\nname = "x"\n\n[tool.protokit.lint]\nuse = ["PY"\n', 5, 12, "Unclosed array"),
        ('[tool.protokit.lint]\nuse = ["PY"]\nuse = ["PY"]\n', 3, 13, "invalid TOML: Cannot overwrite"),
    ],
)
def test_config_errors_point_at_the_line(tmp_path: Path, text: str, line: int, column: int, message: str) -> None:
    write_pyproject(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_protokit_config(tmp_path)
    assert info.value.where.path == "pyproject.toml"
    assert (info.value.where.line, info.value.where.column) == (line, column)
    assert message in info.value.message
    assert info.value.message.startswith(f"pyproject.toml:{line}:{column}: ")
