"""buf's --error-format names as `--format` values print what buf prints, byte for byte."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import BUF, Run

BUF_YAML = "version: v2\nmodules:\n  - path: proto\n"
# Three buf findings over two files, a quote and an ampersand in a message; no PY findings.
FILES = {
    "proto/acme/v1/a.proto": 'syntax = "proto3";\npackage acme.v1;\nmessage x {}\nenum E { A = 0; }\n',
    "proto/acme/v1/b.proto": 'syntax = "proto3";\npackage acme.v1;\nmessage Fine { string Bad_Name = 1; }\n',
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats")
    (root / "buf.yaml").write_text(BUF_YAML)
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def buf(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), *args], cwd=root, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fmt", ["msvs", "junit", "github-actions", "gitlab-code-quality"])
def test_bufs_formats_byte_for_byte(project: Path, protokit: Run, fmt: str) -> None:
    theirs = buf(project, "lint", "--error-format", fmt)
    assert theirs.returncode == 100 and theirs.stdout
    mine = protokit("lint", "--format", fmt, cwd=project)
    assert mine.returncode == 1, mine.stderr
    assert mine.stdout == theirs.stdout


def test_the_ignore_baseline_pastes_into_buf_yaml(project: Path, protokit: Run, tmp_path: Path) -> None:
    """buf 1.75 prints `version: v1` and module-relative paths, which a v2 buf.yaml cannot use; protokit's
    block, pasted over buf.yaml's lint section, silences buf and protokit alike."""
    baseline = protokit("lint", "--format", "config-ignore-yaml", cwd=project)
    assert baseline.returncode == 1 and baseline.stdout.startswith("version: v2\nlint:\n  ignore_only:\n")
    assert "      - proto/acme/v1/a.proto\n" in baseline.stdout
    pasted = tmp_path / "p"
    for name, text in FILES.items():
        (pasted / name).parent.mkdir(parents=True, exist_ok=True)
        (pasted / name).write_text(text)
    (pasted / "buf.yaml").write_text(baseline.stdout + "modules:\n  - path: proto\n")
    assert buf(pasted, "lint").returncode == 0
    assert protokit("lint", cwd=pasted).returncode == 0


def test_breaking_refuses_the_lint_only_format(project: Path, protokit: Run) -> None:
    refused = protokit("breaking", "--against", ".", "--format", "config-ignore-yaml", cwd=project)
    assert refused.returncode == 2 and "config-ignore-yaml" in refused.stderr


def test_no_findings_print_nothing_as_in_buf(tmp_path: Path, protokit: Run) -> None:
    (tmp_path / "buf.yaml").write_text(BUF_YAML)
    (tmp_path / "proto/acme/v1").mkdir(parents=True)
    (tmp_path / "proto/acme/v1/ok.proto").write_text('syntax = "proto3";\npackage acme.v1;\nmessage Ok {}\n')
    for fmt in ("junit", "gitlab-code-quality", "config-ignore-yaml"):
        assert buf(tmp_path, "lint", "--error-format", fmt).stdout == ""
        clean = protokit("lint", "--format", fmt, cwd=tmp_path)
        assert (clean.returncode, clean.stdout) == (0, ""), fmt


@pytest.mark.parametrize("command", ["lint", "breaking"])
def test_list_rules_is_bufs_list_then_protokits(project: Path, protokit: Run, command: str) -> None:
    from protokit.check import rules

    theirs = buf(project, "config", f"ls-{command}-rules").stdout.splitlines()
    listed = protokit(command, "--list-rules", cwd=project)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    # buf's table first, in buf's layout (protokit's IDs are shorter than buf's longest, so widths agree).
    assert lines[: len(theirs)] == theirs
    ours = {line.split()[0]: line.split()[1] for line in lines[len(theirs) :]}
    assert ours == {rule.id: rule.category for rule in rules.of(command)}
    as_json = protokit(command, "--list-rules", "--format", "json", cwd=project)
    ids = [json.loads(line)["id"] for line in as_json.stdout.splitlines()]
    assert len(ids) == len(lines) - 1 and ids[-1] == rules.of(command)[-1].id
