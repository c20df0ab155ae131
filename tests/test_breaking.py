"""`protokit breaking --against REF` against real git repositories, compared with buf's own git input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import BUF, Run, commit_all, git
from protokit import gitref
from protokit.check.breaking import breaking
from protokit.config import load_project
from protokit.errors import ProtokitError

BUF_YAML = "version: v2\nmodules:\n  - path: protos\nbreaking:\n  use:\n    - FILE\n"

BASE = """\
syntax = "proto3";

package shop.v1;

message Item {
  string id = 1;
  string name = 2;
  int32 count = 3;
  repeated string tags = 4;
  string note = 5;
}

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
  COLOR_BLUE = 2;
}

message GetItemRequest {
  string id = 1;
}

message GetItemResponse {
  Item item = 1;
}

message Gone {
  string x = 1;
}

service ItemService {
  rpc GetItem(GetItemRequest) returns (GetItemResponse);
  rpc ListItems(GetItemRequest) returns (stream GetItemResponse);
}
"""

FILE = "protos/shop/v1/shop.proto"

# (name, old text, new text, a rule ID buf must report — None means the change is safe)
CASES = [
    ("field_deleted", "  string note = 5;\n", "", "FIELD_NO_DELETE"),
    ("field_renumbered", "  string note = 5;", "  string note = 6;", "FIELD_NO_DELETE"),
    ("type_wire_compatible", "  int32 count = 3;", "  int64 count = 3;", "FIELD_SAME_TYPE"),
    ("type_incompatible", "  int32 count = 3;", "  string count = 3;", "FIELD_SAME_TYPE"),
    ("field_renamed", "  string name = 2;", "  string title = 2;", "FIELD_SAME_NAME"),
    ("singular_to_repeated", "  string name = 2;", "  repeated string name = 2;", "FIELD_SAME_CARDINALITY"),
    ("optional_added", "  string name = 2;", "  optional string name = 2;", "FIELD_SAME_CARDINALITY"),
    ("json_name_changed", "  string name = 2;", '  string name = 2 [json_name = "label"];', "FIELD_SAME_JSON_NAME"),
    ("moved_into_oneof", "  string note = 5;", "  oneof extra {\n    string note = 5;\n  }", "FIELD_SAME_ONEOF"),
    ("rpc_deleted", "  rpc ListItems(GetItemRequest) returns (stream GetItemResponse);\n", "", "RPC_NO_DELETE"),
    (
        "streaming_changed",
        "rpc ListItems(GetItemRequest) returns (stream GetItemResponse);",
        "rpc ListItems(GetItemRequest) returns (GetItemResponse);",
        "RPC_SAME_SERVER_STREAMING",
    ),
    ("enum_value_deleted", "  COLOR_BLUE = 2;\n", "", "ENUM_VALUE_NO_DELETE"),
    ("enum_value_renamed", "  COLOR_BLUE = 2;", "  COLOR_GREEN = 2;", "ENUM_VALUE_SAME_NAME"),
    ("package_changed", "package shop.v1;", "package store.v1;", "FILE_SAME_PACKAGE"),
    ("message_deleted", "message Gone {\n  string x = 1;\n}\n", "", "MESSAGE_NO_DELETE"),
    ("field_added", "  string note = 5;", "  string note = 5;\n  string extra = 6;", None),
    (
        "rpc_added",
        "  rpc GetItem(GetItemRequest) returns (GetItemResponse);",
        "  rpc GetItem(GetItemRequest) returns (GetItemResponse);\n"
        "  rpc GetOther(GetItemRequest) returns (GetItemResponse);",
        None,
    ),
]


def make_repo(root: Path, buf_yaml: str = BUF_YAML, subdir: str = "") -> Path:
    """A git repo on branch main holding the base proto; returns the project directory."""
    root.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=root)
    project = root / subdir if subdir else root
    (project / "protos/shop/v1").mkdir(parents=True)
    (project / "buf.yaml").write_text(buf_yaml)
    (project / FILE).write_text(BASE)
    commit_all(root, "base")
    return project


def buf_direct(buf: Path, project: Path, against: str) -> list[dict[str, object]]:
    proc = subprocess.run(
        [str(buf), "breaking", "--against", against, "--error-format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert proc.returncode in (0, 100), proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def protokit_json(protokit: Run, project: Path, *args: str) -> tuple[int, list[dict[str, object]]]:
    proc = protokit("breaking", *args, "--format", "json", cwd=project)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def without_source(findings: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(({k: v for k, v in f.items() if k != "source"} for f in findings), key=json.dumps)


@pytest.mark.parametrize(("name", "old", "new", "rule"), CASES, ids=[c[0] for c in CASES])
def test_findings_equal_buf_git_input(
    tmp_path: Path, protokit: Run, buf: Path, name: str, old: str, new: str, rule: str | None
) -> None:
    project = make_repo(tmp_path / "repo")
    proto = project / FILE
    assert old in BASE
    proto.write_text(BASE.replace(old, new))  # uncommitted: the working tree is the current side
    expected = buf_direct(buf, project, ".git#branch=main")
    code, found = protokit_json(protokit, project, "--against", "main")
    assert without_source(found) == sorted(expected, key=json.dumps)
    if rule is None:
        assert (code, found) == (0, [])
    else:
        assert code == 1
        assert rule in {f["type"] for f in found}
        assert all(f["source"] == "buf" for f in found)


def test_ci_checkout_with_only_origin_main(tmp_path: Path, protokit: Run, buf: Path) -> None:
    """Like actions/checkout on a PR: a feature branch, `main` only as origin/main. buf's git input fails."""
    origin = make_repo(tmp_path / "origin")
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "feature", cwd=clone)
    git("branch", "-q", "-D", "main", cwd=clone)
    (clone / FILE).write_text(BASE.replace("  string note = 5;\n", ""))
    commit_all(clone, "drop note")
    direct = subprocess.run(
        [str(buf), "breaking", "--against", ".git#branch=main"], cwd=clone, capture_output=True, text=True
    )
    assert direct.returncode not in (0, 100)  # buf cannot do it
    for ref in ("main", "origin/main"):
        code, found = protokit_json(protokit, clone, "--against", ref)
        assert code == 1
        assert [f["type"] for f in found] == ["FIELD_NO_DELETE"]
        assert found[0]["path"] == FILE


def test_shallow_clone_missing_ref_names_the_fetch(tmp_path: Path, protokit: Run) -> None:
    origin = make_repo(tmp_path / "origin")
    git("checkout", "-q", "-b", "feature", cwd=origin)
    (origin / FILE).write_text(BASE + "\n// change\n")
    commit_all(origin, "feature work")
    clone = tmp_path / "shallow"
    git("clone", "-q", "--depth=1", "--branch", "feature", f"file://{origin}", str(clone), cwd=tmp_path)
    proc = protokit("breaking", "--against", "main", cwd=clone)
    assert proc.returncode == 2
    assert "git fetch --depth=1 origin main:main" in proc.stderr
    assert "Traceback" not in proc.stderr
    git("fetch", "-q", "--depth=1", "origin", "main:main", cwd=clone)
    assert protokit("breaking", "--against", "main", cwd=clone).returncode == 0


def test_buf_yaml_in_subdirectory_and_run_from_a_subdirectory(tmp_path: Path, protokit: Run, buf: Path) -> None:
    project = make_repo(tmp_path / "repo", subdir="api")
    (project / FILE).write_text(BASE.replace("  int32 count = 3;", "  string count = 3;"))
    expected = buf_direct(buf, project, f"{tmp_path / 'repo'}/.git#branch=main,subdir=api")
    for cwd in (project, project / "protos" / "shop"):
        code, found = protokit_json(protokit, cwd, "--against", "main")
        assert code == 1
        assert without_source(found) == sorted(expected, key=json.dumps)
        assert found[0]["path"] == FILE


def test_refs_sha_tag_and_head_relative(tmp_path: Path, protokit: Run) -> None:
    project = make_repo(tmp_path / "repo")
    base_sha = git("rev-parse", "HEAD", cwd=project).strip()
    git("tag", "v1.0.0", cwd=project)
    (project / FILE).write_text(BASE.replace("  string note = 5;\n", ""))
    commit_all(project, "drop note")
    for ref in (base_sha, base_sha[:10], "v1.0.0", "HEAD~1"):
        code, found = protokit_json(protokit, project, "--against", ref)
        assert (code, [f["type"] for f in found]) == (1, ["FIELD_NO_DELETE"]), ref
    assert protokit_json(protokit, project, "--against", "HEAD")[0] == 0


def _summary(finding: dict[str, Any]) -> tuple[str, str, str]:
    return finding.get("path", ""), finding["type"], finding["message"]


def test_directory_and_image_baselines(tmp_path: Path, protokit: Run) -> None:
    project = make_repo(tmp_path / "repo")
    # A directory without buf.yaml is one module at its root, for buf and protokit: a copy of the module
    # directory compares file by file; a copy of the whole project has every file under another name.
    baseline_dir = tmp_path / "baseline"
    (baseline_dir / "protos/shop/v1").mkdir(parents=True)
    (baseline_dir / FILE).write_text(BASE)
    (project / FILE).write_text(BASE.replace("  COLOR_BLUE = 2;\n", ""))
    for against in (baseline_dir / "protos", baseline_dir):
        theirs = subprocess.run(
            [str(BUF), "breaking", "--against", str(against), "--error-format", "json"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        expected = sorted(_summary(f) for f in map(json.loads, theirs.stdout.splitlines()))
        code, found = protokit_json(protokit, project, "--against", str(against))
        assert (code, sorted(_summary(f) for f in found)) == (1, expected)
        if against.name == "protos":
            assert [t for _, t, _ in expected] == ["ENUM_VALUE_NO_DELETE"]
    baseline_dir = baseline_dir / "protos"
    image = tmp_path / "base.binpb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{baseline_dir}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={image}",
            "shop/v1/shop.proto",
        ],
        check=True,
    )
    code, found = protokit_json(protokit, project, "--against", str(image))
    assert (code, [f["type"] for f in found]) == (1, ["ENUM_VALUE_NO_DELETE"])


def test_baseline_is_cached_by_tree_hash(tmp_path: Path, protokit: Run, cache_dir: Path) -> None:
    project = make_repo(tmp_path / "repo")
    (project / FILE).write_text(BASE.replace("  string note = 5;\n", ""))
    protokit_json(protokit, project, "--against", "main")
    baselines = sorted((cache_dir / "images").glob("baseline-*.binpb"))
    assert len(baselines) == 1
    before = baselines[0].stat().st_mtime_ns
    # An unrelated commit elsewhere in the repo keeps the module tree hash: the baseline is reused.
    (project / "README.md").write_text("docs\n")
    git("stash", "-q", cwd=project)
    commit_all(project, "docs")
    git("stash", "pop", "-q", cwd=project)
    protokit_json(protokit, project, "--against", "main")
    assert sorted((cache_dir / "images").glob("baseline-*.binpb")) == baselines
    assert baselines[0].stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("against", "setup", "needle"),
    [
        ("no-such-branch", None, "unknown git ref"),
        ("main", "not-git", "not inside a git repository"),
        ("main", "broken-baseline", "the baseline (main"),
    ],
)
def test_errors_exit_2(tmp_path: Path, protokit: Run, against: str, setup: str | None, needle: str) -> None:
    if setup == "not-git":
        project = tmp_path / "plain"
        (project / "protos/shop/v1").mkdir(parents=True)
        (project / "buf.yaml").write_text(BUF_YAML)
        (project / FILE).write_text(BASE)
    else:
        project = make_repo(tmp_path / "repo")
        if setup == "broken-baseline":
            (project / FILE).write_text(BASE.replace("string id = 1;", "string id = 1"))
            commit_all(project, "broken")  # main no longer compiles; the working tree does
            (project / FILE).write_text(BASE)
    proc = protokit("breaking", "--against", against, cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    if setup == "broken-baseline":
        assert f"main ({git('rev-parse', 'main', cwd=project)[:12]}): {FILE}:" in proc.stderr


def test_invalid_buf_yaml_rule_is_relayed(tmp_path: Path, protokit: Run) -> None:
    project = make_repo(tmp_path / "repo", buf_yaml=BUF_YAML.replace("FILE", "NOT_A_RULE"))
    proc = protokit("breaking", "--against", "main", cwd=project)
    assert proc.returncode == 2
    assert "NOT_A_RULE" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_text_output_groups_by_file(tmp_path: Path, protokit: Run) -> None:
    project = make_repo(tmp_path / "repo")
    (project / FILE).write_text(BASE.replace("  string note = 5;\n", ""))
    proc = protokit("breaking", "--against", "main", cwd=project)
    assert proc.returncode == 1
    assert textwrap.dedent(proc.stdout).startswith(FILE)
    assert "FIELD_NO_DELETE" in proc.stdout
    assert "\x1b[" not in proc.stdout  # NO_COLOR and a pipe: plain text


@pytest.mark.parametrize("category", ["FILE", "PACKAGE", "WIRE_JSON"])
def test_pruned_images_give_buf_findings(tmp_path: Path, protokit: Run, buf: Path, category: str) -> None:
    """protokit hands buf only changed files and their packages; the findings must not change."""

    def proto(package: str, body: str) -> str:
        return f'syntax = "proto3";\n\npackage {package};\n\n{body}'

    files = {
        "protos/p1/v1/a.proto": proto(
            "p1.v1", "message Moved {\n  string x = 1;\n}\n\nmessage A {\n  int32 n = 1;\n}\n"
        ),
        "protos/p1/v1/b.proto": proto("p1.v1", "message B {\n  string y = 1;\n}\n"),
        "protos/p2/v1/c.proto": proto("p2.v1", "message C {\n  string z = 1;\n  string w = 2;\n}\n"),
        "protos/p3/v1/d.proto": proto("p3.v1", 'import "p1/v1/b.proto";\n\nmessage D {\n  p1.v1.B b = 1;\n}\n'),
    }
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", "-b", "main", cwd=root)
    (root / "buf.yaml").write_text(BUF_YAML.replace("FILE", category))
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    commit_all(root, "base")
    # Move a message to another file of its package, drop a field elsewhere, leave p3 alone.
    (root / "protos/p1/v1/a.proto").write_text(proto("p1.v1", "message A {\n  int32 n = 1;\n}\n"))
    (root / "protos/p1/v1/b.proto").write_text(
        proto("p1.v1", "message B {\n  string y = 1;\n}\n\nmessage Moved {\n  string x = 1;\n}\n")
    )
    (root / "protos/p2/v1/c.proto").write_text(proto("p2.v1", "message C {\n  string z = 1;\n}\n"))
    expected = buf_direct(buf, root, ".git#branch=main")
    code, found = protokit_json(protokit, root, "--against", "main")
    assert without_source(found) == sorted(expected, key=json.dumps)
    assert code == 1
    assert ("MESSAGE_NO_DELETE" in {f["type"] for f in found}) == (category == "FILE")


def test_a_new_package_is_not_breaking(tmp_path: Path, protokit: Run, buf: Path) -> None:
    """Only additions: buf compares nothing (an image without files is an error to buf)."""
    project = make_repo(tmp_path / "repo")
    extra = project / "protos/other/v1/other.proto"
    extra.parent.mkdir(parents=True)
    extra.write_text('syntax = "proto3";\n\npackage other.v1;\n\nmessage Other {\n  string x = 1;\n}\n')
    assert buf_direct(buf, project, ".git#branch=main") == []
    assert protokit_json(protokit, project, "--against", "main") == (0, [])
    # An addition next to a real break still reports the break.
    (project / FILE).write_text(BASE.replace("  string note = 5;\n", ""))
    code, found = protokit_json(protokit, project, "--against", "main")
    assert (code, [f["type"] for f in found]) == (1, ["FIELD_NO_DELETE"])


Breaking = Callable[[Path, str], tuple[int, list[dict[str, object]]]]


@pytest.fixture
def run_breaking(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Breaking:
    """protokit breaking in-process (faster than the CLI): (the CLI's exit code, findings as JSON)."""
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("PROTOKIT_BUF", str(BUF))

    def run(project: Path, against: str) -> tuple[int, list[dict[str, object]]]:
        monkeypatch.chdir(project)  # --against paths are relative to the working directory
        findings = breaking(load_project(project), against).findings
        return int(bool(findings)), [f.to_json() for f in findings]

    return run


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def repo_with(root: Path, files: dict[str, str]) -> Path:
    """A git repo on branch main whose one commit holds `files`."""
    root.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root)
    write_tree(root, files)
    commit_all(root, "base")
    return root


def proto(package: str, body: str) -> str:
    return f'syntax = "proto3";\n\npackage {package};\n\n{body}'


def test_renamed_module_directory_is_compared_by_names_inside_the_module(
    tmp_path: Path, protokit: Run, buf: Path
) -> None:
    """main has `path: protos`; the change moves it to api/ and deletes an RPC and a field."""
    project = make_repo(tmp_path / "repo")
    git("mv", "protos", "api", cwd=project)
    (project / "buf.yaml").write_text(BUF_YAML.replace("path: protos", "path: api"))
    rpc = "  rpc ListItems(GetItemRequest) returns (stream GetItemResponse);\n"
    (project / "api/shop/v1/shop.proto").write_text(BASE.replace(rpc, "").replace("  string note = 5;\n", ""))
    expected = buf_direct(buf, project, ".git#branch=main")
    assert {(f["path"], f["type"]) for f in expected} == {
        ("api/shop/v1/shop.proto", "FIELD_NO_DELETE"),
        ("api/shop/v1/shop.proto", "RPC_NO_DELETE"),
    }
    code, found = protokit_json(protokit, project, "--against", "main")
    assert (code, without_source(found)) == (1, sorted(expected, key=json.dumps))


@pytest.mark.parametrize("change", ["buf_yaml_added", "buf_yaml_removed"])
def test_module_root_moved_to_or_from_the_repository_root(
    tmp_path: Path, run_breaking: Breaking, buf: Path, change: str
) -> None:
    """Without buf.yaml the repository root is the module: the file was protos/shop/v1/shop.proto there,
    and is shop/v1/shop.proto in module protos. buf compares the one module with the other."""
    added = change == "buf_yaml_added"
    project = repo_with(tmp_path / "repo", {FILE: BASE} if added else {FILE: BASE, "buf.yaml": BUF_YAML})
    if added:
        (project / "buf.yaml").write_text(BUF_YAML)
    else:
        (project / "buf.yaml").unlink()
    (project / FILE).write_text(BASE.replace("  string note = 5;\n", ""))
    expected = buf_direct(buf, project, ".git#branch=main")
    old_name = "protos/shop/v1/shop.proto" if added else "shop/v1/shop.proto"
    assert f'Previously present file "{old_name}" was deleted.' in {f["message"] for f in expected}
    code, found = run_breaking(project, "main")
    assert (code, without_source(found)) == (1, sorted(expected, key=json.dumps))


def test_v1_workspace_baseline_keeps_its_modules(tmp_path: Path, run_breaking: Breaking, buf: Path) -> None:
    """buf.work.yaml at the baseline (no top-level buf.yaml): its directories are the modules there too."""
    root = repo_with(
        tmp_path / "repo",
        {
            "buf.work.yaml": "version: v1\ndirectories:\n  - a\n  - b\n",
            "a/buf.yaml": "version: v1\nbreaking:\n  use:\n    - FILE\n",
            "a/shop/v1/a.proto": proto("shop.v1", "message A {\n  string id = 1;\n  string note = 2;\n}\n"),
            "b/other/v1/b.proto": proto("other.v1", "message B {\n  string id = 1;\n  string note = 2;\n}\n"),
        },
    )
    for rel in ("a/shop/v1/a.proto", "b/other/v1/b.proto"):
        (root / rel).write_text((root / rel).read_text().replace("  string note = 2;\n", ""))
    expected = buf_direct(buf, root, ".git#branch=main")
    assert [f["path"] for f in sorted(expected, key=json.dumps)] == ["a/shop/v1/a.proto", "b/other/v1/b.proto"]
    code, found = run_breaking(root, "main")
    assert (code, without_source(found)) == (1, sorted(expected, key=json.dumps))


@pytest.mark.parametrize("edited", [False, True])
def test_file_moved_to_another_module(tmp_path: Path, run_breaking: Breaking, buf: Path, edited: bool) -> None:
    """buf pairs module a with a and b with b: the file left a (deleted there) and is new in b."""
    moved = proto("shop.v1", "message Moved {\n  string id = 1;\n  string note = 2;\n}\n")
    root = repo_with(
        tmp_path / "repo",
        {
            "buf.yaml": "version: v2\nmodules:\n  - path: a\n  - path: b\nbreaking:\n  use:\n    - FILE\n",
            "a/shop/v1/moved.proto": moved,
            "a/shop/v1/stays.proto": proto("shop.v1", "message Stays {\n  string id = 1;\n}\n"),
            "b/other/v1/other.proto": proto("other.v1", "message Other {\n  string id = 1;\n}\n"),
        },
    )
    git("mv", "a/shop/v1/moved.proto", "b/other/v1/moved.proto", cwd=root)
    if edited:
        (root / "b/other/v1/moved.proto").write_text(moved.replace("  string note = 2;\n", ""))
    expected = buf_direct(buf, root, ".git#branch=main")
    assert [f["message"] for f in expected] == ['Previously present file "shop/v1/moved.proto" was deleted.']
    assert run_breaking(root, "main") == (1, [{**f, "source": "buf"} for f in expected])


@pytest.mark.parametrize("category", ["FILE", "PACKAGE", "WIRE", "WIRE_JSON"])
def test_only_whole_packages_deleted(tmp_path: Path, run_breaking: Breaking, buf: Path, category: str) -> None:
    """Nothing of the deleted packages is left in the working tree, yet buf compares and reports."""
    project = make_repo(tmp_path / "repo", buf_yaml=BUF_YAML.replace("FILE", category))
    gone = {
        "protos/gone/v1/a.proto": proto("gone.v1", "message A {\n  string id = 1;\n}\n"),
        "protos/gone/v1/b.proto": proto("gone.v1", "message B {\n  string id = 1;\n}\n"),
    }
    write_tree(project, gone)
    commit_all(project, "the gone package")
    git("rm", "-q", "-r", "protos/gone", cwd=project)
    expected = buf_direct(buf, project, ".git#branch=main")
    assert bool(expected) == (category in ("FILE", "PACKAGE"))
    code, found = run_breaking(project, "main")
    assert (code, without_source(found)) == (int(bool(expected)), sorted(expected, key=json.dumps))


def test_export_ignored_files_are_part_of_the_baseline(tmp_path: Path, run_breaking: Breaking, buf: Path) -> None:
    """export-ignore only affects `git archive`: the committed protos are still the baseline."""
    project = make_repo(tmp_path / "repo")
    (project / ".gitattributes").write_text("protos/** export-ignore\n")
    commit_all(project, "keep protos out of release archives")
    (project / FILE).write_text(BASE.replace("  string note = 5;\n", ""))
    expected = buf_direct(buf, project, ".git#branch=main")
    assert [f["type"] for f in expected] == ["FIELD_NO_DELETE"]
    code, found = run_breaking(project, "main")
    assert (code, without_source(found)) == (1, expected)


def test_materialise_writes_committed_regular_files_only(tmp_path: Path) -> None:
    root = repo_with(
        tmp_path / "repo",
        {
            ".gitattributes": "*.proto export-ignore\n",
            "api/protos/a/v1/a.proto": "a",
            "api/protos/a/v1/notes.txt": "not a proto",
            "api/other/o.proto": "outside the module",
        },
    )
    (root / "api/protos/a/v1/link.proto").symlink_to("../../../other/o.proto")
    commit_all(root, "a symlink")
    (root / "api/protos/a/v1/a.proto").write_text("edited, not committed")
    dest = tmp_path / "dest"
    gitref.materialise(gitref.resolve(root / "api", "main"), ["protos"], dest, lambda rel: rel.endswith(".proto"))
    assert {p.relative_to(dest).as_posix(): p.read_text() for p in dest.rglob("*") if p.is_file()} == {
        "protos/a/v1/a.proto": "a"
    }
    assert not (dest / "protos/a/v1/link.proto").exists()


def test_against_a_name_that_is_a_directory_and_a_ref(tmp_path: Path, protokit: Run, buf: Path) -> None:
    """git refuses such a name as ambiguous (`git log main`); so does protokit, saying how to pick one."""
    project = make_repo(tmp_path / "repo")
    (project / FILE).write_text(BASE.replace("  string note = 5;\n", ""))
    write_tree(
        project,
        {
            "main/buf.yaml": BUF_YAML,
            f"main/{FILE}": BASE.replace("  string note = 5;", "  string note = 5;\n  int32 x = 6;"),
        },
    )
    ambiguous = subprocess.run(["git", "log", "main"], cwd=project, capture_output=True, text=True)
    assert "ambiguous argument 'main'" in ambiguous.stderr
    proc = protokit("breaking", "--against", "main", cwd=project)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --against main is ambiguous: both the directory ./main and the git branch main (refs/heads/main); "
        "pass --against ./main for the directory or --against refs/heads/main for the branch"
    ]
    for against, buf_against, deleted in (("./main", "./main", 2), ("refs/heads/main", ".git#branch=main", 1)):
        expected = buf_direct(buf, project, buf_against)
        assert len(expected) == deleted
        code, found = protokit_json(protokit, project, "--against", against)
        assert (code, without_source(found)) == (1, sorted(expected, key=json.dumps))


def test_a_module_gone_from_buf_yaml_is_an_error(tmp_path: Path, run_breaking: Breaking, buf: Path) -> None:
    """buf pairs modules in path order and cannot pair 1 with 2; protokit neither, and says which."""
    two = "version: v2\nmodules:\n  - path: a\n  - path: b\n"
    root = repo_with(
        tmp_path / "repo",
        {
            "buf.yaml": two,
            "a/shop/v1/a.proto": proto("shop.v1", "message A {\n  string id = 1;\n}\n"),
            "b/other/v1/b.proto": proto("other.v1", "message B {\n  string id = 1;\n}\n"),
        },
    )
    (root / "buf.yaml").write_text(two.replace("  - path: b\n", ""))
    direct = subprocess.run(
        [str(buf), "breaking", "--against", ".git#branch=main"], cwd=root, capture_output=True, text=True
    )
    assert "input contained 1 images, whereas against contained 2 images" in direct.stderr
    with pytest.raises(ProtokitError) as err:
        run_breaking(root, "main")
    assert err.value.message.startswith("--against main (")
    assert "working tree (a) with those of the baseline (a, b)" in err.value.message
