"""Shared fixtures: a copy of the repo's UserService project in a tmp dir, and a real protokit CLI run.

Every test gets its own protokit cache so results never depend on test order.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BUF = BIN / "buf"  # the buf-bin wheel, a dependency of protokit

Run = Callable[..., subprocess.CompletedProcess[str]]


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (no caches), for byte-for-byte comparisons."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def env(cache_dir: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["PROTOKIT_CACHE_DIR"] = str(cache_dir)
    e["PATH"] = os.pathsep.join([str(BIN), e.get("PATH", "")])
    e["NO_COLOR"] = "1"
    e["PROTOKIT_BUF"] = str(BUF)  # the pinned buf, whatever else is on PATH
    e.pop("PROTOKIT_DEBUG", None)
    return e


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the bundled UserService project (protos, buf.yaml, buf.gen.yaml), nothing generated."""
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copytree(REPO / "protos", root / "protos")
    for name in ("buf.yaml", "buf.gen.yaml"):
        shutil.copy(REPO / name, root / name)
    return root


@pytest.fixture
def protokit(env: dict[str, str]) -> Run:
    """Run the real CLI in a subprocess: `protokit("gen", "--check", cwd=project)`."""

    def run(*args: str, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "protokit"), *args],
            cwd=cwd,
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


@pytest.fixture(scope="session")
def buf() -> Path:
    assert BUF.is_file(), "buf is missing: run `make setup` (pip installs the pinned buf-bin wheel)"
    return BUF


GIT_ENV = {
    "GIT_AUTHOR_NAME": "protokit tests",
    "GIT_AUTHOR_EMAIL": "tests@protokit.invalid",
    "GIT_COMMITTER_NAME": "protokit tests",
    "GIT_COMMITTER_EMAIL": "tests@protokit.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path) -> str:
    """Run real git with a fixed identity and no user config."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def commit_all(cwd: Path, message: str = "commit") -> None:
    git("add", "-A", cwd=cwd)
    git("commit", "-q", "-m", message, cwd=cwd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_reflection(port: int, alive: Callable[[], str | None] = lambda: None, timeout: float = 60) -> str:
    """Poll `buf curl --list-services` until the server answers; returns the listed services.
    `alive` returns an error text once the server process has died (stop waiting then)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = subprocess.run(
            [str(BUF), "curl", "--protocol", "grpc", "--list-services", f"http://127.0.0.1:{port}"],
            capture_output=True,
            text=True,
        )
        if listed.returncode == 0:
            return listed.stdout
        died = alive()
        assert died is None, died
        assert time.monotonic() < deadline, listed.stderr
        time.sleep(0.2)
