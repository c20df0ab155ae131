"""`protokit lint`: the real buf on protokit's image must agree with `buf lint` on the directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
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
    assert junit.tag == "testsuites"
    assert int(junit.get("failures", "0")) == len(found)
    assert {ts.get("name") for ts in junit} == {f.get("path", "(workspace)") for f in found}

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
    from protokit.lint import lint

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
    from protokit.bufrun import buf_env

    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    env = buf_env()
    assert env["GOGC"] == "off" and env["GOMEMLIMIT"].endswith("MiB") and int(env["GOMEMLIMIT"][:-3]) >= 512
    monkeypatch.setenv("GOGC", "50")
    assert buf_env()["GOGC"] == "50" and "GOMEMLIMIT" not in buf_env()
    monkeypatch.delenv("GOGC")
    monkeypatch.setenv("GOMEMLIMIT", "2GiB")
    assert "GOGC" not in buf_env() and buf_env()["GOMEMLIMIT"] == "2GiB"
