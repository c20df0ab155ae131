"""A warm `protokit lint` replays the last full run's answer, and only while nothing it read has changed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import BIN, Run
from protokit.check import lintanswer

BAD = 'syntax = "proto3";\n\npackage acme.v1;\n\nmessage bad {}\n'
GOOD = BAD.replace("bad", "Good")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    (root / "protos/acme/v1").mkdir(parents=True)
    (root / "buf.yaml").write_text(
        "version: v2\nmodules:\n  - path: protos\nlint:\n  use: [MINIMAL, MESSAGE_PASCAL_CASE]\n"
    )
    (root / "protos/acme/v1/a.proto").write_text(BAD)
    return root


# The interpreter the console script runs (its shebang): part of the answer's key.
SCRIPT_PYTHON = (BIN / "protokit").read_text().splitlines()[0].removeprefix("#!")


def test_a_warm_run_replays_the_full_runs_answer(
    project: Path, protokit: Run, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    full = protokit("lint", "--format", "json", cwd=project)
    assert full.returncode == 1 and "MESSAGE_PASCAL_CASE" in full.stdout
    # What a warm `protokit lint --format json` would print, worked out here with the CLI's environment.
    monkeypatch.chdir(project)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "executable", SCRIPT_PYTHON)
    assert lintanswer.replay(["--format", "json"]) == (full.stdout, 1)
    assert lintanswer.replay(["--format", "github"]) is None  # other arguments, other answer


@pytest.mark.parametrize(
    "change",
    ["fix the proto", "add a proto", "edit buf.yaml", "add pyproject.toml", "add a module buf.yaml"],
)
def test_anything_lint_reads_changes_the_answer(project: Path, protokit: Run, change: str) -> None:
    first = protokit("lint", cwd=project)
    assert first.returncode == 1
    assert protokit("lint", cwd=project).stdout == first.stdout  # warm, unchanged
    if change == "fix the proto":
        (project / "protos/acme/v1/a.proto").write_text(GOOD)
        expected = 0
    elif change == "add a proto":
        (project / "protos/acme/v1/b.proto").write_text(BAD.replace("bad", "worse"))
        expected = 1
    elif change == "edit buf.yaml":
        (project / "buf.yaml").write_text("version: v2\nmodules:\n  - path: protos\nlint:\n  use: [MINIMAL]\n")
        expected = 0
    elif change == "add pyproject.toml":
        (project / "pyproject.toml").write_text('[tool.protokit.lint]\nuse = ["PY"]\n')
        expected = 1
    else:
        (project / "protos/buf.yaml").write_text("version: v1\n")  # not read by v2, but stamped all the same
        expected = 1
    again = protokit("lint", cwd=project)
    assert again.returncode == expected, again.stdout + again.stderr
    if change == "add a proto":
        assert "worse" in again.stdout
    if expected == 1 and change != "add a proto":
        assert again.stdout == first.stdout


def test_check_plugins_turn_replays_off(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin binary lives outside the project: nothing here could tell that it changed."""
    (project / "buf.yaml").write_text("version: v2\nplugins:\n  - plugin: buf-plugin-x\n")
    monkeypatch.chdir(project)
    assert lintanswer.key([]) is None
