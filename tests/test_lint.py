"""`protokit lint`: the real buf on protokit's image must agree with `buf lint` on the directory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import BIN, BUF, REPO, Run

BUF_YAML = """\
version: v2
modules:
  - path: protos
lint:
  use:
    - STANDARD
    - COMMENTS
"""

DIRTY = """\
syntax = "proto3";

package shop.v1;

// Item is documented.
message Item {
  // Bad case.
  string BadName = 1;
  string undocumented = 2;
  // buf:lint:ignore FIELD_LOWER_SNAKE_CASE
  string AlsoBad = 3;
}

enum color {
  COLOR_UNSPECIFIED = 0;
}

// Svc serves.
service ItemSvc {
  // Get gets.
  rpc Get(Item) returns (Item);
}
"""

CLEAN = """\
syntax = "proto3";

package shop.v1;

// Thing is clean.
message Thing {
  // The id.
  string id = 1;
}
"""


def make(root: Path, buf_yaml: str = BUF_YAML, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "buf.yaml").write_text(buf_yaml)
    for rel, text in (files or {"protos/shop/v1/item.proto": DIRTY, "protos/shop/v1/thing.proto": CLEAN}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def buf_lint(cwd: Path, *args: str) -> list[dict[str, object]]:
    proc = subprocess.run([str(BUF), "lint", *args, "--error-format", "json"], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode in (0, 100), proc.stderr
    return sorted((json.loads(line) for line in proc.stdout.splitlines() if line.strip()), key=json.dumps)


def protokit_lint(protokit: Run, cwd: Path, *args: str) -> tuple[int, list[dict[str, object]]]:
    proc = protokit("lint", *args, "--format", "json", cwd=cwd)
    assert proc.returncode in (0, 1), proc.stderr
    found = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, found


def from_buf(findings: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(
        ({k: v for k, v in f.items() if k != "source"} for f in findings if f["source"] == "buf"), key=json.dumps
    )


@pytest.mark.parametrize(
    "buf_yaml",
    [
        BUF_YAML,
        # A module's own lint section replaces the top-level one in buf v2 (it is not merged).
        BUF_YAML.replace("  - path: protos\n", "  - path: protos\n    lint:\n      except: [COMMENTS]\n"),
        BUF_YAML + "  ignore_only:\n    FIELD_LOWER_SNAKE_CASE:\n      - protos/shop/v1/item.proto\n",
        BUF_YAML + "  ignore:\n    - protos/shop/v1/item.proto\n",
        BUF_YAML + "  disallow_comment_ignores: true\n",
        BUF_YAML + "  enum_zero_value_suffix: _NONE\n  service_suffix: Svc\n",
    ],
    ids=["top-level", "module-section", "ignore-only", "ignore", "no-comment-ignores", "options"],
)
def test_findings_equal_buf_lint_on_the_directory(tmp_path: Path, protokit: Run, buf_yaml: str) -> None:
    project = make(tmp_path / "p", buf_yaml)
    expected = buf_lint(project)
    code, found = protokit_lint(protokit, project)
    assert from_buf(found) == expected
    assert code == (1 if found else 0)


def test_bufs_warnings_are_relayed_once_naming_the_config_file(tmp_path: Path, protokit: Run) -> None:
    """A hand-converted v1 config keeps `DEFAULT`: buf warns that the category is deprecated. protokit
    passes the config to buf inline, once per module and check; the warning reaches the user once, naming
    the file it is about."""
    project = make(tmp_path / "p", "version: v2\nmodules:\n  - path: protos\n  - path: more\nlint:\n  use: [DEFAULT]\n")
    (project / "more/other/v1").mkdir(parents=True)
    (project / "more/other/v1/other.proto").write_text('syntax = "proto3";\npackage other.v1;\n')
    done = protokit("lint", cwd=project)
    assert done.returncode == 1  # DIRTY's findings
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "buf.yaml: warning: Category DEFAULT referenced in your buf.yaml is deprecated. "
        "It has been replaced by category STANDARD."
    ], done.stderr


def test_comment_ignores_and_positions(tmp_path: Path, protokit: Run) -> None:
    project = make(tmp_path / "p")
    _, found = protokit_lint(protokit, project)
    snake = [f for f in found if f["type"] == "FIELD_LOWER_SNAKE_CASE"]
    # AlsoBad carries `// buf:lint:ignore FIELD_LOWER_SNAKE_CASE`; BadName does not.
    assert [(f["path"], f["start_line"], f["start_column"]) for f in snake] == [("protos/shop/v1/item.proto", 8, 10)]
    assert any(f["type"] == "COMMENT_FIELD" and f["start_line"] == 9 for f in found)


def test_paths_restrict_and_run_from_subdirectory(tmp_path: Path, protokit: Run) -> None:
    project = make(tmp_path / "p")
    code, found = protokit_lint(protokit, project, "protos/shop/v1/thing.proto")
    assert (code, found) == (0, [])
    code, found = protokit_lint(protokit, project / "protos" / "shop", "v1/item.proto")
    assert code == 1
    assert {f["path"] for f in found} == {"protos/shop/v1/item.proto"}
    proc = protokit("lint", "protos/nope.proto", cwd=project)
    assert proc.returncode == 2
    assert "protos/nope.proto" in proc.stderr


def test_repo_userservice_is_clean_with_validate_import(protokit: Run) -> None:
    """buf lint cannot even build the UserService offline (buf/validate needs the BSR); protokit can."""
    proc = protokit("lint", cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no findings" in proc.stdout


def test_py_rules_run_with_buf_rules(tmp_path: Path, protokit: Run) -> None:
    files = {
        "protos/shop/v1/thing.proto": CLEAN.replace(
            "string id = 1;", "string id = 1;\n  // A keyword.\n  string from = 2;"
        )
    }
    project = make(tmp_path / "p", files=files)
    code, found = protokit_lint(protokit, project)
    assert code == 1
    ours = [f for f in found if f["source"] == "protokit"]
    assert [f["type"] for f in ours] == ["PY_NAME_KEYWORD"]
    assert ours[0]["path"] == "protos/shop/v1/thing.proto"
    # Turned off through pyproject.toml, as buf.yaml rejects unknown keys.
    (project / "pyproject.toml").write_text('[tool.protokit.lint]\nexcept = ["PY_NAME_KEYWORD"]\n')
    assert protokit_lint(protokit, project) == (0, [])


def test_machine_formats(tmp_path: Path, protokit: Run) -> None:
    project = make(tmp_path / "p")
    _, found = protokit_lint(protokit, project)

    github = protokit("lint", "--format", "github", cwd=project).stdout.splitlines()
    assert len(github) == len(found)
    assert github[0].startswith("::error file=protos/shop/v1/item.proto,line=")
    assert all(",title=" in line for line in github)

    junit = ET.fromstring(protokit("lint", "--format", "junit", cwd=project).stdout)
    assert junit.tag == "testsuites"  # buf's layout: tests/test_formats.py compares it with buf's bytes
    assert sum(int(ts.get("failures", "0")) for ts in junit) == len(found)
    assert {ts.get("name") for ts in junit} == {f["path"].removesuffix(".proto") for f in found}

    sarif = json.loads(protokit("lint", "--format", "sarif", cwd=project).stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "protokit"
    assert len(run["results"]) == len(found)
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:  # the schema's required fields, and consistent rule indexes
        assert result["message"]["text"]
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
    bad = protokit("lint", "--format", "yaml", cwd=project)
    assert bad.returncode == 2
    assert "yaml" in bad.stderr


def test_text_output_respects_no_color_and_pipes(tmp_path: Path, protokit: Run) -> None:
    project = make(tmp_path / "p")
    proc = protokit("lint", cwd=project)
    assert proc.returncode == 1
    assert "\x1b[" not in proc.stdout
    assert proc.stdout.startswith("protos/shop/v1/item.proto\n")
    assert "FIELD_LOWER_SNAKE_CASE" in proc.stdout


def test_finding_buf(tmp_path: Path, protokit: Run) -> None:
    """PROTOKIT_BUF, then a buf on PATH, then the buf-bin wheel's buf beside protokit; doctor says which."""
    project = make(tmp_path / "p", files={"protos/shop/v1/thing.proto": CLEAN})
    # No buf on PATH at all (not even the venv's bin): the wheel's binary, found beside the interpreter.
    bare = {"PROTOKIT_BUF": "", "PATH": "/usr/bin:/bin"}
    assert shutil.which("buf", path=bare["PATH"]) is None
    assert protokit("lint", cwd=project, extra_env=bare).returncode == 0
    doctor = protokit("doctor", cwd=project, extra_env=bare)
    assert f"({BUF}, from buf-bin wheel)" in doctor.stdout
    # An activated venv: the wheel's buf is the one on PATH, and still named as the wheel's.
    activated = {"PROTOKIT_BUF": "", "PATH": f"{BIN}:/usr/bin:/bin"}
    assert f"({BUF}, from buf-bin wheel)" in protokit("doctor", cwd=project, extra_env=activated).stdout
    # A buf elsewhere on PATH wins over the wheel's.
    elsewhere = tmp_path / "bin"
    elsewhere.mkdir()
    (elsewhere / "buf").symlink_to(BUF.resolve())
    on_path = {"PROTOKIT_BUF": "", "PATH": f"{elsewhere}:/usr/bin:/bin"}
    assert protokit("lint", cwd=project, extra_env=on_path).returncode == 0
    assert f"({elsewhere / 'buf'}, from PATH)" in protokit("doctor", cwd=project, extra_env=on_path).stdout
    # PROTOKIT_BUF wins over both, and must be an executable.
    explicit = {"PROTOKIT_BUF": str(elsewhere / "buf")}
    assert f"({elsewhere / 'buf'}, from PROTOKIT_BUF)" in protokit("doctor", cwd=project, extra_env=explicit).stdout
    wrong = protokit("lint", cwd=project, extra_env={"PROTOKIT_BUF": str(tmp_path / "nope")})
    assert wrong.returncode == 2
    assert "PROTOKIT_BUF" in wrong.stderr


def test_invalid_buf_yaml_rule_is_relayed(tmp_path: Path, protokit: Run) -> None:
    project = make(tmp_path / "p", BUF_YAML.replace("COMMENTS", "NOT_A_CATEGORY"))
    proc = protokit("lint", cwd=project)
    assert proc.returncode == 2
    assert "NOT_A_CATEGORY" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_incremental_lint_equals_buf_after_edits(tmp_path: Path, protokit: Run) -> None:
    """Cached components plus re-linted ones must give exactly buf's findings, including a
    cross-file rule (two packages in one directory) appearing and disappearing."""
    files = {}
    for i in range(120):
        pkg = f"p{i // 12}"
        body = f"// M{i} is documented.\nmessage M{i} {{\n  // x.\n  string BadField = 1;\n}}\n"
        files[f"protos/{pkg}/v1/f{i}.proto"] = f'syntax = "proto3";\n\npackage {pkg}.v1;\n\n{body}'
    files["protos/p0/v1/odd.proto"] = 'syntax = "proto3";\n\npackage other.v1;\n\n// Odd.\nmessage Odd {}\n'
    project = make(tmp_path / "p", files=files)
    expected = buf_lint(project)
    assert any(f["type"] == "DIRECTORY_SAME_PACKAGE" for f in expected)
    code, found = protokit_lint(protokit, project)
    assert code == 1
    assert from_buf(found) == expected
    assert protokit_lint(protokit, project)[1] == found  # all from the cache
    # Fix one file, break another, remove the odd package: only their components are re-linted.
    (project / "protos/p3/v1/f36.proto").write_text(files["protos/p3/v1/f36.proto"].replace("BadField", "good_field"))
    (project / "protos/p5/v1/f60.proto").write_text(
        files["protos/p5/v1/f60.proto"].replace("message M60", "message m60")
    )
    (project / "protos/p0/v1/odd.proto").unlink()
    expected = buf_lint(project)
    assert not any(f["type"] == "DIRECTORY_SAME_PACKAGE" for f in expected)
    assert any(f["type"] == "MESSAGE_PASCAL_CASE" for f in expected)
    assert from_buf(protokit_lint(protokit, project)[1]) == expected


def test_imports_are_part_of_a_component_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from protokit import config
    from protokit.check.lint import lint

    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PROTOKIT_BUF", str(BUF))
    a = 'syntax = "proto3";\n\npackage a.v1;\n\n// A.\nmessage A {\n  // x.\n  string x = 1;\n}\n'
    b = (
        'syntax = "proto3";\n\npackage b.v1;\n\nimport "a/v1/a.proto";\n\n'
        "// B.\nmessage B {\n  // a.\n  a.v1.A a = 1;\n}\n"
    )
    c = 'syntax = "proto3";\n\npackage c.v1;\n\n// C.\nmessage C {}\n'
    files = {"protos/a/v1/a.proto": a, "protos/b/v1/b.proto": b, "protos/c/v1/c.proto": c}
    project = config.load_project(make(tmp_path / "p", files=files))
    assert lint(project).linted == 3
    assert lint(project).linted == 0
    (project.root / "protos/a/v1/a.proto").write_text(a.replace("// x.", "// x, documented again."))
    assert lint(project).linted == 2  # a and its importer b; c is untouched


def test_package_import_cycle_matches_buf(tmp_path: Path, protokit: Run) -> None:
    """PACKAGE_NO_IMPORT_CYCLE spans packages: a new file closing the cycle must be reported."""

    def proto(pkg: str, name: str, imports: str = "", field: str = "") -> str:
        head = f'syntax = "proto3";\n\npackage {pkg};\n\n{imports}'
        return f"{head}// {name}.\nmessage {name} {{\n{field}}}\n"

    files = {
        "protos/a/v1/a.proto": proto("a.v1", "A", 'import "b/v1/b.proto";\n\n', "  // b.\n  b.v1.B b = 1;\n"),
        "protos/a/v1/a2.proto": proto("a.v1", "A2"),
        "protos/b/v1/b.proto": proto("b.v1", "B"),
    }
    project = make(tmp_path / "p", files=files)
    assert protokit_lint(protokit, project) == (0, [])
    (project / "protos/b/v1/b2.proto").write_text(
        proto("b.v1", "B2", 'import "a/v1/a2.proto";\n\n', "  // a.\n  a.v1.A2 a = 1;\n")
    )
    expected = buf_lint(project)
    assert any(f["type"] == "PACKAGE_NO_IMPORT_CYCLE" for f in expected)
    code, found = protokit_lint(protokit, project)
    assert (code, from_buf(found)) == (1, expected)


def test_buf_runs_without_gc_up_to_a_memory_limit_unless_the_user_tuned_go(monkeypatch: pytest.MonkeyPatch) -> None:
    from protokit.check.bufrun import buf_env

    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    env = buf_env()
    assert env["GOGC"] == "off" and env["GOMEMLIMIT"].endswith("MiB") and int(env["GOMEMLIMIT"][:-3]) >= 512
    monkeypatch.setenv("GOGC", "50")
    assert buf_env()["GOGC"] == "50" and "GOMEMLIMIT" not in buf_env()
    monkeypatch.delenv("GOGC")
    monkeypatch.setenv("GOMEMLIMIT", "2GiB")
    assert "GOGC" not in buf_env() and buf_env()["GOMEMLIMIT"] == "2GiB"


# -- parity with buf: unused imports, columns, cross-file rules, errors, ignores, deps ---------------


LintHere = Callable[[Path], list[dict[str, object]]]


@pytest.fixture
def lint_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LintHere:
    """`protokit lint --format json` in this process (the library call the CLI makes): its own cache,
    the pinned buf."""
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(tmp_path / "lint-cache"))
    monkeypatch.setenv("PROTOKIT_BUF", str(BUF))

    def run(root: Path) -> list[dict[str, object]]:
        from protokit import config
        from protokit.check.lint import lint

        return [f.to_json() for f in lint(config.load_project(root)).findings]

    return run


def _proto(package: str, body: str, head: str = 'syntax = "proto3";\n\n') -> str:
    return f"{head}package {package};\n\n{body}"


IMPORT_CASES = {
    "protos/x/v1/c.proto": _proto(
        "x.v1", "message T {\n  string s = 1;\n}\n\nenum E {\n  E_UNSPECIFIED = 0;\n  E_ONE = 1;\n}\n"
    ),
    "protos/x/v1/b.proto": _proto(
        "x.v1",
        'import public "x/v1/c.proto";\nimport "google/protobuf/descriptor.proto";\n\n'
        "extend google.protobuf.FileOptions {\n  E eopt = 50001;\n}\n",
    ),
    # T through b's public import: b is used.
    "protos/x/v1/a1.proto": _proto("x.v1", 'import "x/v1/b.proto";\n\nmessage A1 {\n  T t = 1;\n}\n'),
    # T imported directly too: buf credits c and reports b (protoc counts both as used).
    "protos/x/v1/a2.proto": _proto(
        "x.v1", 'import "x/v1/b.proto";\nimport "x/v1/c.proto";\n\nmessage A2 {\n  T t = 1;\n}\n'
    ),
    # An enum value in an option value uses nothing for buf (protoc counts c as used).
    "protos/x/v1/a3.proto": _proto(
        "x.v1", 'import "x/v1/b.proto";\nimport "x/v1/c.proto";\n\noption (x.v1.eopt) = E_ONE;\n'
    ),
    # A custom option does not use descriptor.proto for buf (protoc counts it as used); empty is unused
    # for both, and a file without a syntax statement is buf's SYNTAX_SPECIFIED.
    "protos/x/v1/a4.proto": _proto(
        "x.v1",
        'import "google/protobuf/descriptor.proto";\nimport "google/protobuf/empty.proto";\n'
        'import weak "google/protobuf/any.proto";\nimport "x/v1/b.proto";\n\noption (x.v1.eopt) = E_ONE;\n',
        head="",
    ),
}


def test_unused_imports_are_reported_as_buf_reports_them(tmp_path: Path, lint_here: LintHere) -> None:
    """IMPORT_USED reads the unused imports buf's image records (protoc's descriptor set has none)."""
    project = make(tmp_path / "p", BUF_YAML.replace("    - COMMENTS\n", ""), IMPORT_CASES)
    expected = buf_lint(project)
    assert sum(f["type"] == "IMPORT_USED" for f in expected) == 5
    assert any(f["type"] == "SYNTAX_SPECIFIED" for f in expected)
    assert from_buf(lint_here(project)) == expected


COLUMNS = """\
syntax = "proto3";

package shop.v1;

message Item {
\tstring BadName = 1;
  /* é */ string AlsoBad = 2;
  /* 日本 */ string None = 3;
\t/* ü */\tstring True = 4;
}
"""


def test_columns_after_tabs_and_non_ascii_are_bufs(tmp_path: Path, lint_here: LintHere) -> None:
    """protoc counts bytes with tab stops of 8, buf terminal cells with tab stops of 4: buf's findings
    relayed through protokit's image and protokit's own (PY) findings carry buf's columns."""
    files = {"protos/shop/v1/item.proto": COLUMNS}
    project = make(tmp_path / "p", BUF_YAML.replace("    - COMMENTS\n", ""), files)
    expected = buf_lint(project)
    found = lint_here(project)
    assert from_buf(found) == expected
    at = {(f["start_line"], f["start_column"], f["end_column"]) for f in expected}
    # protoc's would be 16, 19, 23 and 32: bytes, with tab stops of 8
    assert {(6, 12, 19), (7, 18, 25), (8, 21, 25), (9, 20, 24)} <= at
    keywords = [f for f in found if f["type"] == "PY_NAME_KEYWORD"]
    assert len(keywords) == 2  # None and True, where buf puts its finding on the same names
    for f in keywords:
        assert (f["start_line"], f["start_column"], f["end_column"]) in at


def test_cross_file_rules_stay_right_on_warm_runs(tmp_path: Path, lint_here: LintHere) -> None:
    """RPC_REQUEST_RESPONSE_UNIQUE and STABLE_PACKAGE_NO_IMPORT_UNSTABLE compare files of different
    components: an edit must bring their findings, a revert take them away, as buf on the directory."""
    from protokit import config
    from protokit.check.lint import lint

    empty = 'import "google/protobuf/empty.proto";\n\n'
    a = _proto(
        "a.v1",
        f'import "c/v1beta1/c.proto";\n{empty}service AService {{\n'
        "  rpc Ping(google.protobuf.Empty) returns (PingResponse);\n}\n\n"
        "message PingResponse {\n  c.v1beta1.C c = 1;\n}\n",
    )
    b = _proto(
        "b.v1",
        f"{empty}service BService {{\n  rpc Pong(PongRequest) returns (PongResponse);\n}}\n\n"
        "message PongRequest {}\n\nmessage PongResponse {\n  google.protobuf.Empty nothing = 1;\n}\n",
    )
    c = _proto("c.v1beta1", "message C {}\n")
    files = {"protos/a/v1/a.proto": a, "protos/b/v1/b.proto": b, "protos/c/v1beta1/c.proto": c}
    yaml = BUF_YAML.replace("    - COMMENTS\n", "    - STABLE_PACKAGE_NO_IMPORT_UNSTABLE\n")
    project = make(tmp_path / "p", yaml, files)
    b_file = project / "protos/b/v1/b.proto"

    def check(rules: set[str]) -> None:
        expected = buf_lint(project)
        assert {f["type"] for f in expected} >= rules
        assert from_buf(lint_here(project)) == expected

    check({"STABLE_PACKAGE_NO_IMPORT_UNSTABLE"})  # cold
    b_file.write_text(b.replace("rpc Pong(PongRequest)", "rpc Pong(google.protobuf.Empty)"))
    check({"RPC_REQUEST_RESPONSE_UNIQUE", "STABLE_PACKAGE_NO_IMPORT_UNSTABLE"})  # warm: a from the cache
    b_file.write_text(b)
    expected = buf_lint(project)
    assert "RPC_REQUEST_RESPONSE_UNIQUE" not in {f["type"] for f in expected}
    check(set())
    # Unchanged: everything from the cache.
    assert lint(config.load_project(project)).linted == 0


def _positions(text: str, sep: str) -> list[tuple[str, int, int]]:
    lines = [re.match(rf"^(.+?\.proto):(\d+):(\d+):{sep}", line) for line in text.splitlines()]
    return [(m[1], int(m[2]), int(m[3])) for m in lines if m]


def test_compile_errors_one_line_per_problem_where_buf_puts_them(tmp_path: Path, protokit: Run) -> None:
    """Two missing imports (at their import statements) and a syntax error after a tab and a
    non-ASCII character in another file: buf's lines, positions and count; nothing else on stderr."""
    files = {
        "protos/shop/v1/item.proto": _proto(
            "shop.v1", 'import "shop/v1/missing.proto";\nimport "google/protobuf/nope.proto";\n\nmessage Item {}\n'
        ),
        "protos/shop/v1/thing.proto": _proto(
            "shop.v1", "message Thing {\n  string x = 1 // é\n\t/* é */ int32 y = 2;\n}\n"
        ),
    }
    project = make(tmp_path / "p", files=files)
    built = subprocess.run([str(BUF), "build"], cwd=project, capture_output=True, text=True)
    assert built.returncode == 100
    expected = _positions(built.stderr + built.stdout, "")
    assert expected == [
        ("protos/shop/v1/item.proto", 5, 1),
        ("protos/shop/v1/item.proto", 6, 1),
        ("protos/shop/v1/thing.proto", 7, 11),
    ]
    proc = protokit("lint", cwd=project)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert _positions(proc.stderr, " ") == expected and len(lines) == len(expected), proc.stderr
    assert lines[0] == 'protos/shop/v1/item.proto:5:1: imported file "shop/v1/missing.proto" does not exist'


@pytest.mark.parametrize("ignored", ["protos/vendor", "./protos/vendor/"])
def test_buf_yaml_ignore_silences_py_rules(tmp_path: Path, lint_here: LintHere, ignored: str) -> None:
    """buf.yaml's lint.ignore (relative to buf.yaml's directory, cleaned as buf cleans it) covers
    protokit's PY findings in vendored protos as it covers buf's."""
    keyword = "message Thing {\n  string from = 1;\n  string BadName = 2;\n}\n"
    files = {
        "protos/vendor/v1/vendor.proto": _proto("vendor.v1", keyword),
        "protos/a/v1/a.proto": _proto("a.v1", keyword),
    }
    project = make(tmp_path / "p", BUF_YAML.replace("    - COMMENTS\n", "") + f"  ignore:\n    - {ignored}\n", files)
    found = lint_here(project)
    assert from_buf(found) == buf_lint(project)
    assert {f["path"] for f in found} == {"protos/a/v1/a.proto"}
    assert {f["type"] for f in found if f["source"] == "protokit"} == {"PY_NAME_KEYWORD"}


def test_googleapis_imports_need_the_dependency_declared(tmp_path: Path, protokit: Run) -> None:
    """As in buf, a googleapis import resolves only with buf.build/googleapis/googleapis in deps:;
    without it: exit 2 at the import statement, naming the deps: line to add."""
    status = _proto(
        "shop.v1",
        'import "google/rpc/status.proto";\n\n// Item.\nmessage Item {\n  // S.\n  google.rpc.Status s = 1;\n}\n',
    )
    project = make(tmp_path / "p", "version: v2\nmodules:\n  - path: protos\n", {"protos/shop/v1/item.proto": status})
    built = subprocess.run([str(BUF), "lint"], cwd=project, capture_output=True, text=True)
    assert built.returncode == 100 and "imported file does not exist" in built.stdout + built.stderr
    proc = protokit("lint", cwd=project)
    assert proc.returncode == 2
    assert _positions(proc.stderr, " ") == _positions(built.stdout + built.stderr, "")
    assert proc.stderr.splitlines()[0].startswith(
        'protos/shop/v1/item.proto:5:1: imported file "google/rpc/status.proto" does not exist'
    )
    assert '"- buf.build/googleapis/googleapis"' in proc.stderr
    (project / "buf.yaml").write_text(
        "version: v2\nmodules:\n  - path: protos\ndeps:\n  - buf.build/googleapis/googleapis\n"
    )
    proc = protokit("lint", cwd=project)
    assert proc.returncode == 0, proc.stderr  # served offline, where buf would need the registry


def test_protovalidate_imports_need_the_dependency_declared(tmp_path: Path, protokit: Run) -> None:
    """As for googleapis: buf resolves only declared deps, so an undeclared buf/validate import fails."""
    proto = 'syntax = "proto3";\n\npackage shop.v1;\n\nimport "buf/validate/validate.proto";\n'
    project = make(tmp_path / "p", "version: v2\nmodules:\n  - path: protos\n", files={"protos/shop/v1/v.proto": proto})
    failed = protokit("lint", cwd=project)
    assert failed.returncode == 2
    assert failed.stderr.strip() == (
        'protos/shop/v1/v.proto:5:1: imported file "buf/validate/validate.proto" does not exist '
        '(it is in buf.build/bufbuild/protovalidate: add "- buf.build/bufbuild/protovalidate" under deps: in buf.yaml)'
    )
    declared = "version: v2\nmodules:\n  - path: protos\ndeps:\n  - buf.build/bufbuild/protovalidate\n"
    (project / "buf.yaml").write_text(declared)
    assert protokit("lint", cwd=project).returncode != 2


def test_doctors_betterproto2_hint_names_the_extra_that_installs_it() -> None:
    import tomllib

    from protokit.doctor import BETTERPROTO_EXTRA

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    name, _, extra = BETTERPROTO_EXTRA.partition("[")
    assert name == project["name"]
    assert any(r.startswith("betterproto2-compiler") for r in project["optional-dependencies"][extra.rstrip("]")])
