"""buf.yaml as buf reads it: every key honoured or rejected, checked against the real buf on the same tree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import BUF, Run
from protokit import config, sources
from protokit.errors import ConfigError

A_PROTO = 'syntax = "proto3";\n\npackage acme.v1;\n\nmessage A {}\n'
B_PROTO = 'syntax = "proto3";\n\npackage acme.v2;\n\nmessage b {}\n'


def tree(root: Path, buf_yaml: str | None, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if buf_yaml is not None:
        (root / "buf.yaml").write_text(buf_yaml)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def buf_findings(root: Path) -> tuple[int, set[tuple[str, int, int, str, str]]]:
    proc = subprocess.run(
        [str(BUF), "lint", "--error-format", "json"], cwd=root, capture_output=True, text=True, timeout=120
    )
    found = {
        (f["path"], f["start_line"], f["start_column"], f["type"], f["message"])
        for f in map(json.loads, proc.stdout.splitlines())
    }
    return proc.returncode, found


def protokit_findings(protokit: Run, root: Path) -> tuple[int, set[tuple[str, int, int, str, str]]]:
    proc = protokit("lint", "--format", "json", cwd=root)
    found = {
        (f["path"], f["start_line"], f["start_column"], f["type"], f["message"])
        for f in map(json.loads, proc.stdout.splitlines())
    }
    return proc.returncode, found


def buf_failure(root: Path) -> str:
    proc = subprocess.run([str(BUF), "lint"], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.returncode != 100, proc.stdout
    return proc.stderr


def test_a_duplicate_key_is_an_error_as_in_buf(tmp_path: Path, protokit: Run) -> None:
    root = tree(tmp_path, "version: v2\nlint:\n  use: [STANDARD]\nlint:\n  use: [MINIMAL]\n", {"a.proto": A_PROTO})
    assert 'line 4: mapping key "lint" already defined at line 2' in buf_failure(root)
    proc = protokit("lint", cwd=root)
    assert proc.returncode == 2
    assert proc.stderr.strip() == 'buf.yaml:4:1: mapping key "lint" already defined at line 2'


def test_includes_keep_only_their_files_as_buf_does(tmp_path: Path, protokit: Run) -> None:
    yaml = "version: v2\nmodules:\n  - path: proto\n    includes: [proto/acme/v2]\n"
    root = tree(tmp_path, yaml, {"proto/acme/v1/a.proto": A_PROTO, "proto/acme/v2/b.proto": B_PROTO})
    theirs = buf_findings(root)
    assert theirs[0] == 100 and {f[0] for f in theirs[1]} == {"proto/acme/v2/b.proto"}
    mine = protokit_findings(protokit, root)
    assert mine == (1, theirs[1])


def test_excludes_inside_includes(tmp_path: Path) -> None:
    yaml = "version: v2\nmodules:\n  - path: proto\n    includes: [proto/acme]\n    excludes: [proto/acme/v2]\n"
    root = tree(tmp_path, yaml, {"proto/acme/v1/a.proto": A_PROTO, "proto/acme/v2/b.proto": B_PROTO})
    listed = subprocess.run([str(BUF), "ls-files"], cwd=root, capture_output=True, text=True, check=True)
    project = config.load_project(root)
    assert [f.display for f in sources.load_sources(project).files.values()] == listed.stdout.split()


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("includes: [other]", 'include path "other" does not reside within module directory "proto"'),
        ("includes: [proto]", 'include path "proto" is equal to module directory "proto"'),
        ("excludes: [other]", 'exclude path "other" does not reside within module directory "proto"'),
        ("includes: [proto/acme/v1/a.proto]", 'includes can only be directories but file "proto/acme/v1/a.proto"'),
    ],
)
def test_bad_includes_and_excludes_are_refused_in_bufs_words(tmp_path: Path, module: str, message: str) -> None:
    root = tree(tmp_path, f"version: v2\nmodules:\n  - path: proto\n    {module}\n", {"proto/acme/v1/a.proto": A_PROTO})
    (root / "other").mkdir()
    assert message in buf_failure(root)
    with pytest.raises(ConfigError) as caught:
        config.load_project(root)
    assert message in str(caught.value) and caught.value.where.line == 4


def test_an_empty_module_is_an_error_as_in_buf(tmp_path: Path, protokit: Run) -> None:
    """The team's files sit in proto/, buf.yaml says protos: buf fails; protokit must not say "no findings"."""
    root = tree(tmp_path, "version: v2\nmodules:\n  - path: protos\n", {"proto/acme/v1/a.proto": A_PROTO})
    (root / "protos").mkdir()
    assert 'Module "path: "protos"" had no .proto files' in buf_failure(root)
    for command in (["lint"], ["gen", "--check"], ["breaking", "--against", "."]):
        proc = protokit(*command, cwd=root)
        assert proc.returncode == 2, (command, proc.stdout)
        assert proc.stderr.strip() == 'buf.yaml:3:11: module "protos" has no .proto files', command


def test_no_buf_yaml_lints_the_directory_with_bufs_defaults(tmp_path: Path, protokit: Run) -> None:
    root = tree(tmp_path, None, {"proto/acme/v1/a.proto": A_PROTO, "proto/acme/v2/b.proto": B_PROTO})
    theirs = buf_findings(root)
    assert theirs[0] == 100 and len(theirs[1]) == 3
    assert protokit_findings(protokit, root) == (1, theirs[1])


def test_new_service_reads_buf_gen_yaml_as_gen_does(tmp_path: Path, protokit: Run) -> None:
    """One buf.gen.yaml reader: what `gen` rejects, `new service` rejects too, before writing anything."""
    gen_yaml = "version: v2\nplugins:\n  - local: protoc-gen-protokit\n    out: generated\n    opts: [x]\n"
    root = tree(tmp_path, None, {"buf.gen.yaml": gen_yaml})
    made = protokit("new", "service", "Billing", "--package", "acme.billing.v1", cwd=root)
    assert made.returncode == 2
    assert made.stderr.strip() == 'buf.gen.yaml:5:5: unknown key "opts" in plugin'
    assert [p.name for p in root.iterdir()] == ["buf.gen.yaml"]


X_PROTO = 'syntax = "proto3";\npackage acme.v1;\nmessage x {}\n'


@pytest.mark.parametrize(
    "layout",
    [
        {  # buf.work.yaml: two v1 modules, one with its own buf.yaml (ignore relative to the module), one without
            "buf.work.yaml": "version: v1\ndirectories:\n  - a\n  - b\n",
            "a/buf.yaml": "version: v1\nlint:\n  use: [STANDARD]\n  ignore: [acme/v1/x.proto]\n",
            "a/acme/v1/x.proto": X_PROTO,
            "a/acme/v1/y.proto": X_PROTO.replace("x {}", "y {}"),
            "b/acme/v2/z.proto": B_PROTO,
        },
        {  # v1beta1: two roots, ignore relative to the root, an exclude relative to buf.yaml
            "buf.yaml": "version: v1beta1\nbuild:\n  roots: [proto, vendor]\n  excludes: [vendor/ext/skip]\n"
            "lint:\n  ignore: [ext/v1/q.proto]\n",
            "proto/acme/v1/x.proto": X_PROTO,
            "vendor/ext/v1/q.proto": X_PROTO.replace("acme", "ext"),
            "vendor/ext/skip/s.proto": X_PROTO.replace("acme.v1", "ext.skip"),
        },
        {  # v1 at the root with build.excludes and v1's rule names
            "buf.yaml": "version: v1\nbuild:\n  excludes: [third_party]\n"
            "lint:\n  use: [DEFAULT]\n  except: [PACKAGE_VERSION_SUFFIX]\n",
            "acme/v1/x.proto": X_PROTO,
            "third_party/t.proto": 'syntax = "proto3";\nmessage t {}\n',
        },
    ],
    ids=["buf.work.yaml", "v1beta1-roots", "v1-excludes"],
)
def test_v1_configurations_lint_as_buf_lints_them(tmp_path: Path, protokit: Run, layout: dict[str, str]) -> None:
    root = tree(tmp_path, None, layout)
    theirs = buf_findings(root)
    assert theirs[0] == 100 and theirs[1]
    assert protokit_findings(protokit, root) == (1, theirs[1])


def test_v1_keys_are_checked_as_strictly_as_buf_does(tmp_path: Path) -> None:
    root = tree(tmp_path, "version: v1\nlint:\n  use: [DEFAULT]\n  ignore_unstable_packages: true\n", {})
    assert "ignore_unstable_packages" in buf_failure(tree(tmp_path, None, {"a.proto": A_PROTO}))
    with pytest.raises(ConfigError) as caught:
        config.load_project(root)
    assert str(caught.value) == 'buf.yaml:4:3: unknown key "ignore_unstable_packages" in lint'


def test_policies_and_plugins_run_in_buf(tmp_path: Path, protokit: Run) -> None:
    """buf.yaml's policies and check plugins are buf's to run: a local policy's rules report as in buf, and
    a missing plugin fails as in buf (it was accepted and dropped)."""
    yaml = "version: v2\nlint:\n  use: [MINIMAL]\npolicies:\n  - policy: comments.policy.yaml\n"
    files = {
        "acme/v1/a.proto": 'syntax = "proto3";\npackage acme.v1;\nmessage Plain {}\n',
        "comments.policy.yaml": "version: v2\nlint:\n  use: [COMMENT_MESSAGE]\n",
    }
    root = tree(tmp_path / "policy", yaml, files)
    theirs = subprocess.run(
        [str(BUF), "lint", "--error-format", "json"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert theirs.returncode == 100 and '"policy":"comments.policy.yaml"' in theirs.stdout
    mine = protokit("lint", "--format", "json", cwd=root)
    assert mine.returncode == 1
    mine_rows = [{k: v for k, v in json.loads(line).items() if k != "source"} for line in mine.stdout.splitlines()]
    assert mine_rows == [json.loads(line) for line in theirs.stdout.splitlines()]

    missing = tree(tmp_path / "plugin", "version: v2\nplugins:\n  - plugin: buf-plugin-missing\n", files)
    assert 'plugin "buf-plugin-missing" failed' in buf_failure(missing)
    failed = protokit("lint", cwd=missing)
    assert failed.returncode == 2 and 'plugin "buf-plugin-missing" failed' in failed.stderr


@pytest.mark.parametrize(
    ("yaml", "where", "key"),
    [
        ("version: v2\nlint:\n  usee: [STANDARD]\n", "buf.yaml:3:3", "usee"),
        ("version: v2\nmodules:\n  - path: proto\n    breaking:\n      uses: [FILE]\n", "buf.yaml:5:7", "uses"),
        ("version: v2\npolicies:\n  - policy: p.yaml\n    ignores: [x]\n", "buf.yaml:4:5", "ignores"),
    ],
)
def test_a_misspelt_section_key_points_at_its_line(tmp_path: Path, yaml: str, where: str, key: str) -> None:
    root = tree(tmp_path, yaml, {"proto/acme/v1/a.proto": A_PROTO})
    assert f"field {key} not found" in buf_failure(root)
    with pytest.raises(ConfigError) as caught:
        config.load_project(root)
    assert str(caught.value).startswith(f'{where}: unknown key "{key}"')
