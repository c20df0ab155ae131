"""protokit installed as a team installs it: wheels built from this checkout, fresh venvs, the package index
for everything else and `--find-links` for our two names (which the index must never supply: "protokit"
there is an unrelated project).

- the toolchain alone (`pip install protokit-cli`) lints, generates and gates, with no Node on PATH;
- a scaffolded project's `pip install -e '.[dev]'` gets our two distributions and nothing called protokit;
- a runtime-only venv, installed as the scaffold's Dockerfile installs it, serves the service (health
  answering as Kubernetes' gRPC probe asks), holds none of the toolchain, and two services share it and
  uninstall independently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from conftest import BIN, REPO, commit_all, free_port, git, wait_for_reflection
from protokit import toolchain, version

VERSION = version.__version__
# What only the toolchain needs; a deployed service must not carry any of it.
TOOLCHAIN_ONLY = {"protokit-cli", "grpcio-tools", "buf-bin", "mypy-protobuf", "typer", "rich", "jinja2", "pyyaml"}


def test_the_runtime_ships_protovalidates_validate_module(tmp_path: Path) -> None:
    """runtime/src/buf/validate/validate_pb2.py is what protoc makes of the installed protovalidate's
    descriptor (`make validate-module` refreshes it)."""
    shipped = (REPO / "runtime/src/buf/validate/validate_pb2.py").read_bytes()
    assert shipped == toolchain.validate_module(tmp_path), "stale: run `make validate-module`"


def test_one_release_number() -> None:
    """Both distributions carry protokit's version, and the toolchain requires exactly its runtime."""
    import tomllib

    cli = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = tomllib.loads((REPO / "runtime/pyproject.toml").read_text())["project"]
    assert (cli["name"], runtime["name"]) == (version.TOOLCHAIN, version.RUNTIME)
    assert cli["version"] == runtime["version"] == VERSION
    assert f"{version.RUNTIME}=={VERSION}" in cli["dependencies"]


# -- wheels and venvs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """protokit-cli and protokit-runtime wheels, built from a copy of the checkout's files."""
    source = tmp_path_factory.mktemp("checkout")
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO)
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheels")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source / "runtime"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def wheel_files(wheelhouse: Path, distribution: str) -> set[str]:
    (wheel,) = wheelhouse.glob(f"{distribution.replace('-', '_')}-{VERSION}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if ".dist-info/" not in n}


def test_the_wheels_split_protokit_between_them(wheelhouse: Path) -> None:
    runtime = wheel_files(wheelhouse, version.RUNTIME)
    cli = wheel_files(wheelhouse, version.TOOLCHAIN)
    # protokit is a namespace package: neither owns protokit/__init__.py.
    assert "protokit/__init__.py" not in runtime | cli
    assert {n.split("/")[0] for n in runtime} == {"protokit", "buf"}
    assert {"/".join(n.split("/")[:2]) for n in runtime} == {"protokit/runtime", "buf/validate"}
    assert {"buf/validate/validate_pb2.py", "protokit/runtime/py.typed", "protokit/runtime/server.py"} <= runtime
    assert not any(n.startswith(("buf/validate/__init__", "buf/__init__")) for n in runtime)
    assert {n.split("/")[0] for n in cli} == {"protokit"}
    assert not any(n.startswith("protokit/runtime/") for n in cli)
    assert {"protokit/cli.py", "protokit/scaffold/service.py", "protokit/templates/scaffold/Dockerfile.j2"} <= cli


def new_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    return path / "bin" / "python"


def pip_install(python: Path, wheelhouse: Path, *args: str, cwd: Path | None = None) -> None:
    """pip from the package index, except our names, which only the wheelhouse has."""
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    proc = subprocess.run(
        [*pip, "--find-links", str(wheelhouse), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def distributions(python: Path) -> dict[str, str]:
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {re.sub(r"[-_.]+", "-", d["name"]).lower(): d["version"] for d in json.loads(listed.stdout)}


def owners_of_protokit(python: Path) -> list[str]:
    """The distributions that install a top-level `protokit` package (the unrelated project's does too)."""
    code = "import importlib.metadata as m, json; print(json.dumps(sorted(m.packages_distributions()['protokit'])))"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return [re.sub(r"[-_.]+", "-", n).lower() for n in json.loads(proc.stdout)]


def installed_mb(python: Path) -> float:
    """What the venv's distributions installed (their RECORDs: buf's binary in bin/ too), pip and
    setuptools aside."""
    code = (
        "import importlib.metadata as m, os\n"
        "print(sum(os.path.getsize(f.locate()) for d in m.distributions()\n"
        "          if d.metadata['Name'] not in ('pip', 'setuptools') for f in d.files or ()\n"
        "          if os.path.isfile(f.locate())))"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return int(proc.stdout) / 1e6


def isolated_env(venv_python: Path, tmp_path: Path) -> dict[str, str]:
    """The venv's bin and git, nothing else on PATH (no Node, no other buf); a cache of its own."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    git_path = shutil.which("git")
    assert git_path is not None
    if not (tools / "git").exists():
        (tools / "git").symlink_to(git_path)
    path = os.pathsep.join([str(venv_python.parent), str(tools)])
    assert shutil.which("node", path=path) is None and shutil.which("npm", path=path) is None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTOKIT_", "VIRTUAL_ENV", "PYTHON"))}
    return {**env, "PATH": path, "NO_COLOR": "1", "PROTOKIT_CACHE_DIR": str(tmp_path / "cache")}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def new_service(tmp_path: Path, directory: str, service: str, package: str) -> Path:
    """`protokit new service` by this checkout's protokit."""
    made = subprocess.run(
        [str(BIN / "protokit"), "new", "service", service, "--package", package, "--dir", directory],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "PROTOKIT_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return tmp_path / directory


# -- the three installs -------------------------------------------------------------------------


@pytest.mark.slow
def test_the_toolchain_alone_lints_generates_and_gates(wheelhouse: Path, tmp_path: Path) -> None:
    python = new_venv(tmp_path / "venv")
    pip_install(python, wheelhouse, f"{version.TOOLCHAIN}=={VERSION}")
    installed = distributions(python)
    assert installed[version.TOOLCHAIN] == installed[version.RUNTIME] == VERSION
    assert "protokit" not in installed
    print(f"toolchain venv: {installed_mb(python):.1f} MB installed")

    env = isolated_env(python, tmp_path)
    project = tmp_path / "proj"
    shutil.copytree(REPO / "protos", project / "protos")
    for name in ("buf.yaml", "buf.gen.yaml"):
        shutil.copy(REPO / name, project / name)
    protokit = str(python.parent / "protokit")

    doctor = run([protokit, "doctor"], project, env)
    assert f"({python.parent / 'buf'}, from buf-bin wheel)" in doctor.stdout, doctor.stdout + doctor.stderr
    assert f"✓ protokit-runtime: {VERSION}" in doctor.stdout
    lint = run([protokit, "lint"], project, env)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    gen = run([protokit, "gen"], project, env)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    assert not (project / "generated/buf").exists()
    # The generated code imports in this venv: buf.validate.validate_pb2 comes from protokit-runtime.
    imported = run(
        [str(python), "-c", "from user.v1 import user_service_pb2, user_service_protokit"],
        project,
        {**env, "PYTHONPATH": str(project / "generated")},
    )
    assert imported.returncode == 0, imported.stderr

    git("init", "-q", cwd=project)
    commit_all(project, "v1")
    assert run([protokit, "breaking", "--against", "HEAD"], project, env).returncode == 0
    proto = project / "protos/user/v1/user_service.proto"
    text = proto.read_text()
    field = re.search(r"\n  string email = 3 [^\n]*\n", text)
    assert field is not None
    proto.write_text(text.replace(field.group(0), "\n"))
    gate = run([protokit, "breaking", "--against", "HEAD"], project, env)
    assert gate.returncode == 1 and "FIELD_NO_DELETE" in gate.stdout, gate.stdout + gate.stderr


@pytest.mark.slow
def test_a_scaffolded_project_installs_our_packages_for_development(wheelhouse: Path, tmp_path: Path) -> None:
    project = new_service(tmp_path, "orders", "Order", "acme.orders.v1")
    python = new_venv(tmp_path / "venv")
    pip_install(python, wheelhouse, "-e", ".[dev]", cwd=project)
    installed = distributions(python)
    assert installed[version.TOOLCHAIN] == installed[version.RUNTIME] == VERSION
    # Fails when the unrelated "protokit" from the index is installed: it owns a top-level protokit too.
    assert "protokit" not in installed
    assert owners_of_protokit(python) == [version.TOOLCHAIN, version.RUNTIME]

    env = isolated_env(python, tmp_path)
    check = run([str(python.parent / "protokit"), "gen", "--check"], project, env)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], project, env)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def dockerfile(project: Path) -> tuple[dict[str, str], list[str], str]:
    """The scaffold's Dockerfile read as the image would run it: its ENV, its CMD and its FROM."""
    text = (project / "Dockerfile").read_text()
    instructions = re.sub(r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.startswith("#")))
    env: dict[str, str] = {}
    command: list[str] = []
    base = ""
    for line in instructions.splitlines():
        keyword, _, rest = line.partition(" ")
        if keyword == "ENV":
            env.update(pair.split("=", 1) for pair in rest.split())
        elif keyword == "CMD":
            command = json.loads(rest)
        elif keyword == "FROM":
            base = rest.strip()
        elif keyword == "USER":
            assert rest.strip() not in ("root", "0"), "the image must not run as root"
    return env, command, base


@pytest.fixture
def health_check() -> Iterator[object]:
    channels: list[grpc.Channel] = []

    def check(port: int, service: str) -> int:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return int(reply.status)

    yield check
    for channel in channels:
        channel.close()


@pytest.mark.slow
def test_a_runtime_only_install_serves_the_service(wheelhouse: Path, tmp_path: Path, health_check: object) -> None:
    orders = new_service(tmp_path, "orders", "Order", "acme.orders.v1")
    refunds = new_service(tmp_path, "refunds", "Refund", "acme.refunds.v1")
    env_in_image, command, base = dockerfile(orders)
    assert re.fullmatch(r"python:3\.\d+-slim", base), base
    assert env_in_image["PROTOKIT_HOST"] == "0.0.0.0"
    ignored = (orders / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests"} <= set(ignored)

    # As the Dockerfile does: `pip install <project>`, its dependencies and not its dev extra.
    python = new_venv(tmp_path / "venv")
    pip_install(python, wheelhouse, str(orders), str(refunds))
    installed = distributions(python)
    assert installed[version.RUNTIME] == VERSION
    assert not TOOLCHAIN_ONLY & installed.keys(), TOOLCHAIN_ONLY & installed.keys()
    assert "protokit" not in installed
    print(f"runtime-only venv (two services): {installed_mb(python):.1f} MB installed")
    env = isolated_env(python, tmp_path)
    every_module = (
        "import importlib, pkgutil, protokit.runtime, buf.validate.validate_pb2\n"
        "for m in pkgutil.iter_modules(protokit.runtime.__path__):\n"
        "    importlib.import_module('protokit.runtime.' + m.name)"
    )
    assert run([str(python), "-c", every_module], tmp_path, env).returncode == 0

    # The image's command and environment (another port), from outside the project.
    port = free_port()
    log = tmp_path / "server.log"
    server_env = {**env, **env_in_image, "PROTOKIT_PORT": str(port), "PROTOKIT_GRACE_PERIOD": "1"}
    with open(log, "w") as out:
        server = subprocess.Popen(
            [str(python.parent / command[0]), *command[1:]], cwd=tmp_path, env=server_env, stdout=out, stderr=out
        )
    try:
        wait_for_reflection(port, alive=lambda: None if server.poll() is None else log.read_text())
        serving = health_pb2.HealthCheckResponse.SERVING
        assert health_check(port, "") == serving  # type: ignore[operator]
        assert health_check(port, "acme.orders.v1.OrderService") == serving  # type: ignore[operator]
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0, log.read_text()

    # Two services side by side; removing one leaves the other, and buf.validate, importable.
    imports = "import order.order_service, refund.refund_service, buf.validate.validate_pb2"
    assert run([str(python), "-c", imports], tmp_path, env).returncode == 0
    uninstalled = run([str(python), "-m", "pip", "uninstall", "-y", "-q", "refund"], tmp_path, env)
    assert uninstalled.returncode == 0, uninstalled.stderr
    left = run([str(python), "-c", "import order.order_service, buf.validate.validate_pb2"], tmp_path, env)
    assert left.returncode == 0, left.stderr
    assert run([str(python), "-c", "import refund"], tmp_path, env).returncode != 0
