"""`protokit new service` and `protokit new proto` with real components: the CLI, buf, protoc, pip, a
server process and `buf curl` through reflection.

One end-to-end test per variant (streaming and --no-streaming) walks the whole path the issue asks
for: new -> lint -> gen --check -> commit -> breaking -> pip install into a fresh venv -> the new
project's own pytest -> serve -> every RPC with `buf curl`. The other tests are cheap.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import protovalidate
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from conftest import BIN, BUF, REPO, Run, commit_all, free_port, git, tree_bytes, wait_for_reflection
from protokit import scaffold
from protokit.errors import ProtokitError

# --- the library, without the CLI ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "resource", "service", "snake", "plural"),
    [
        ("Billing", "Billing", "BillingService", "billing", "Billings"),
        ("BillingService", "Billing", "BillingService", "billing", "Billings"),
        ("HTTPProxy", "HTTPProxy", "HTTPProxyService", "http_proxy", "HTTPProxies"),
        ("S3Bucket", "S3Bucket", "S3BucketService", "s3_bucket", "S3Buckets"),
        ("Address", "Address", "AddressService", "address", "Addresses"),
        ("Key", "Key", "KeyService", "key", "Keys"),
    ],
)
def test_service_names(name: str, resource: str, service: str, snake: str, plural: str) -> None:
    names = scaffold.parse_service_name(name)
    assert (names.resource, names.service, names.snake, names.plural) == (resource, service, snake, plural)
    assert names.file_stem == f"{snake}_service"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("9Lives", "not an identifier"),
        ("Bill-ing", "not an identifier"),
        ("", "not an identifier"),
        ("class", "Python keyword"),
        ("None", "Python keyword"),
        ("Class", "Python keyword"),
        ("billing", "not PascalCase"),
        ("Bill_ing", "not PascalCase"),
        ("Service", "names nothing"),
    ],
)
def test_bad_service_names(name: str, problem: str) -> None:
    with pytest.raises(ProtokitError, match=problem):
        scaffold.parse_service_name(name)


@pytest.mark.parametrize("package", ["acme.billing.v1", "billing.v1beta1", "acme.x.v2alpha", "a.v1p1beta2", "a.v1test"])
def test_good_packages(package: str) -> None:
    scaffold.check_package(package)


@pytest.mark.parametrize(
    ("package", "problem"),
    [
        ("Acme.billing.v1", "lower_snake_case"),
        ("acme..v1", "lower_snake_case"),
        ("acme.billing", "version"),
        ("v1", "version"),
        ("acme.billing.v0", "version"),
        ("acme.billing.v1rc1", "version"),
        ("acme.import.v1", "keyword"),
        ("json.v1", "shadow"),
        ("google.billing.v1", "shadow"),
    ],
)
def test_bad_packages(package: str, problem: str) -> None:
    with pytest.raises(ProtokitError, match=problem):
        scaffold.check_package(package)


def test_the_skeleton_gen_creates_later_passes_the_projects_ruff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service added to the proto after `new service` gets its skeleton from `protokit gen`
    (implementations=DIR): it passes the scaffold's own `ruff check` and `ruff format --check`."""
    from protokit import config, gen

    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(tmp_path / "cache"))
    scaffold.new_service("Billing", tmp_path / "svc")
    project = tmp_path / "svc"
    request, response = "ReconcileLedgerEntriesRequest", "ReconcileLedgerEntriesResponse"
    (project / "protos/billing/v1/long_names.proto").write_text(
        'syntax = "proto3";\npackage billing.v1;\n'
        "// Reconciliation reconciles.\nservice ReconciliationService {\n"
        f"  // One.\n  rpc ReconcileLedgerEntries({request}) returns ({response});\n"
        f"  // Many.\n  rpc StreamLedgerEntries(stream {request}) returns (stream {response});\n"
        f"}}\n// A request.\nmessage {request} {{}}\n// A response.\nmessage {response} {{}}\n"
    )
    loaded = config.load_project(project)
    created = gen.generate(loaded, config.load_gen_config(loaded)).implementations
    assert created == ["src/billing_service/long_names.py"]
    for check in (["check", "."], ["format", "--check", "--diff", "."]):
        done = subprocess.run([str(BIN / "ruff"), *check], cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_wrap_lays_lines_out_like_ruff_format() -> None:
    assert scaffold.wrap(4, "f(", ["a", "b"], ")") == "    f(a, b)"
    long = ["x" * 34, "y" * 34]
    wrapped = f"    result = function(\n        {long[0]}, {long[1]}\n    )"
    assert scaffold.wrap(4, "result = function(", long, ")") == wrapped
    longer = ["x" * 50, "y" * 50]
    assert scaffold.wrap(0, "f(", longer, ")") == f"f(\n    {longer[0]},\n    {longer[1]},\n)"
    # A def's lone parameter, split off, ends with a comma; a call's lone argument does not.
    head, tail = "def function(", ") -> dict[str, list[tuple[int, int, int, int, int, int, int, int]]]:"
    assert scaffold.wrap(0, head, ["alpha: int"], tail, parameters=True) == f"{head}\n    alpha: int,\n{tail}"
    argument = "x" * 70
    assert scaffold.wrap(0, "result = function(", [argument], ")") == f"result = function(\n    {argument}\n)"


# --- helpers -------------------------------------------------------------------------------------


def json_documents(text: str) -> list[Any]:
    """The JSON documents buf curl prints one after another (one per message of a stream)."""
    decoder = json.JSONDecoder()
    docs, at, text = [], 0, text.strip()
    while at < len(text):
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
        while at < len(text) and text[at].isspace():
            at += 1
    return docs


PIP_OFFLINE = ("--no-deps", "--no-build-isolation", "--no-index", "-e")


def fresh_venv(path: Path, *projects: Path) -> Path:
    """A new venv that sees the project venv's packages (protokit, grpcio, pytest: no network) with
    `projects` pip-installed in editable mode. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    # addsitedir (unlike a plain path line) also runs the parent's .pth files: protokit's editable hook.
    Path(purelib, "_parent_venv.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    for project in projects:
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *PIP_OFFLINE, str(project)],
            capture_output=True,
            text=True,
        )
        assert pip.returncode == 0, pip.stdout + pip.stderr
    return python


def buf_curl(
    port: int, path: str, body: Any = None, *, bodies: list[Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """One `buf curl --protocol grpc` call through reflection; `bodies` sends several messages (stdin)."""
    args = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    stdin = None
    if bodies is not None:
        args += ["-d", "@-"]
        stdin = "\n".join(json.dumps(b) for b in bodies) + "\n"
    elif body is not None:
        args += ["-d", json.dumps(body)]
    return subprocess.run(
        [*args, f"http://127.0.0.1:{port}/{path}"], input=stdin, capture_output=True, text=True, timeout=60
    )


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log: Path

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextmanager
def serve(python: Path, module: str, cwd: Path) -> Iterator[Server]:
    """`python -m module --port P` in a subprocess, once `buf curl --list-services` answers."""
    port = free_port()
    log = cwd / f"{module}.log"
    env = {**os.environ, "PROTOKIT_GRACE_PERIOD": "1", "NO_COLOR": "1"}
    env.pop("PORT", None)
    env.pop("PROTOKIT_PORT", None)
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(python), "-m", module, "--port", str(port)], cwd=cwd, env=env, stdout=out, stderr=out, text=True
        )
    server = Server(process, port, log)
    try:
        wait_for_reflection(port, alive=lambda: None if process.poll() is None else log.read_text())
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def watch_with_buf_curl(server: Server, service: str, plural: str, create: Any) -> list[Any]:
    """WatchX through buf curl with stdin as the request stream: send a filter, wait for the
    acknowledgement, cause an event, close stdin (which ends the stream) and return the responses."""
    watch = subprocess.Popen(
        [str(BUF), "curl", "--protocol", "grpc", "-d", "@-", f"http://127.0.0.1:{server.port}/{service}/Watch{plural}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watch.stdin is not None and watch.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watch.stdout or ()), daemon=True)
    reader.start()

    def wait_for(predicate: Any) -> None:
        deadline = time.monotonic() + 30
        while not predicate("".join(lines)):
            assert watch.poll() is None or reader.is_alive(), "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)

    try:
        watch.stdin.write("{}\n")
        watch.stdin.flush()
        wait_for(lambda out: out.strip().startswith("{}"))  # the acknowledgement: an empty response
        create()
        wait_for(lambda out: "TYPE_CREATED" in out)
        watch.stdin.close()  # the client closes its side: the server ends the stream
        assert watch.wait(timeout=30) == 0, watch.stderr.read() if watch.stderr else ""
        reader.join(timeout=10)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    return json_documents("".join(lines))


# --- the whole path, once per variant ------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    args: tuple[str, ...]
    package: str
    service: str
    resource: str
    plural: str
    python_package: str
    streaming: bool

    @property
    def stem(self) -> str:
        return scaffold.parse_service_name(self.service).file_stem

    @property
    def field(self) -> str:
        return scaffold.parse_service_name(self.service).snake


VARIANTS = {
    "streaming": Variant(
        args=("Billing", "--package", "acme.billing.v1"),
        package="acme.billing.v1",
        service="BillingService",
        resource="Billing",
        plural="Billings",
        python_package="billing",
        streaming=True,
    ),
    # NAME with the suffix and the default package, ledger.v1: the generated code takes the top-level
    # name "ledger", so the implementation package is named after the service instead.
    "no-streaming": Variant(
        args=("LedgerService", "--no-streaming"),
        package="ledger.v1",
        service="LedgerService",
        resource="Ledger",
        plural="Ledgers",
        python_package="ledger_service",
        streaming=False,
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_new_service_end_to_end(protokit: Run, tmp_path: Path, variant: Variant) -> None:
    project = tmp_path / "svc"
    started = time.perf_counter()
    created = protokit("new", "service", *variant.args, "--dir", "svc", cwd=tmp_path)
    elapsed = time.perf_counter() - started
    assert created.returncode == 0, created.stdout + created.stderr
    print(f"protokit new service {' '.join(variant.args)}: {elapsed:.2f}s")
    full = f"{variant.package}.{variant.service}"
    pkg, stem = variant.python_package, variant.stem
    proto = f"protos/{variant.package.replace('.', '/')}/{stem}.proto"
    install = "pip install -e '.[dev]' && pytest"  # pytest is in the dev extra; the README says the same
    for step in ("cd svc", install, "protokit lint", f"python -m {pkg} --port", "buf curl"):
        assert step in created.stdout, created.stdout
    assert install in (project / "README.md").read_text()
    generated = f"generated/{variant.package.replace('.', '/')}/{stem}_protokit.py"
    expected = [proto, "buf.yaml", "buf.gen.yaml", "pyproject.toml", ".gitignore", "README.md", generated]
    expected += [".github/workflows/contract.yml", f"tests/test_{stem}.py"]
    expected += [f"src/{pkg}/{name}" for name in ("__init__.py", "__main__.py", f"{stem}.py")]
    for path in expected:
        assert (project / path).is_file(), path
    text = (project / proto).read_text()
    assert ("stream BatchCreate" in text, "rpc Watch" in text) == (variant.streaming, variant.streaming)
    assert f"rpc List{variant.plural}(List{variant.plural}Request) returns (stream " in text
    workflow = (project / ".github/workflows/contract.yml").read_text()
    for needle in ("protokit lint", "protokit gen --check", "protokit breaking --against", "git fetch"):
        assert needle in workflow

    # The contract gate is green before anyone edits anything.
    lint = protokit("lint", cwd=project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    check = protokit("gen", "--check", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr
    git("init", "-q", cwd=project)
    commit_all(project, "new service")
    breaking = protokit("breaking", "--against", "HEAD", cwd=project)
    assert breaking.returncode == 0, breaking.stdout + breaking.stderr

    # pip install -e into a fresh venv, then the project's own tests.
    python = fresh_venv(tmp_path / "venv", project)
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert f"{6 if variant.streaming else 3} passed" in tests.stdout
    # The generated Python passes the project's own checks: ruff (lint, format) and mypy --strict.
    for check in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
        checked = subprocess.run(
            [str(BIN / check[0]), *check[1:]],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

    # Serve it from outside the project (the install, not the cwd, makes it importable).
    with serve(python, pkg, tmp_path) as server:
        health = buf_curl(server.port, "grpc.health.v1.Health/Check", {"service": full})
        assert health.returncode == 0 and json.loads(health.stdout) == {"status": "SERVING"}, health.stderr
        r, p, f = variant.resource, variant.plural, variant.field

        def call(method: str, body: Any = None, bodies: list[Any] | None = None) -> subprocess.CompletedProcess[str]:
            return buf_curl(server.port, f"{full}/{method}", body, bodies=bodies)

        made = call(f"Create{r}", {"displayName": "First", "labels": {"env": "dev"}})
        assert made.returncode == 0, made.stderr
        first = json.loads(made.stdout)[f]
        assert first["displayName"] == "First" and first["labels"] == {"env": "dev"}
        got = call(f"Get{r}", {"id": first["id"]})
        assert got.returncode == 0 and json.loads(got.stdout)[f] == first, got.stderr
        updated = call(f"Update{r}", {"id": first["id"], "displayName": "Renamed", "updateMask": "displayName"})
        assert updated.returncode == 0, updated.stderr
        assert json.loads(updated.stdout)[f]["displayName"] == "Renamed"
        assert json.loads(updated.stdout)[f]["labels"] == {"env": "dev"}
        second = json.loads(call(f"Create{r}", {"displayName": "Second"}).stdout)[f]

        pages = call(f"List{p}", {"pageSize": 1})
        assert pages.returncode == 0, pages.stderr
        listed_pages = json_documents(pages.stdout)
        plural_field = scaffold.pluralize(f)
        assert [[x["id"] for x in page[plural_field]] for page in listed_pages] == [[first["id"]], [second["id"]]]
        assert "nextPageToken" in listed_pages[0] and "nextPageToken" not in listed_pages[1]

        deleted = call(f"Delete{r}", {"id": second["id"]})
        assert deleted.returncode == 0 and json.loads(deleted.stdout) == {}, deleted.stderr
        gone = call(f"Get{r}", {"id": second["id"]})
        assert gone.returncode == 5 * 8, gone.stderr  # NOT_FOUND: buf curl exits with the code times 8
        invalid = call(f"Create{r}", {"displayName": ""})
        assert invalid.returncode == 3 * 8 and "display_name" in invalid.stderr, invalid.stderr

        if variant.streaming:
            batch = call(f"BatchCreate{p}", bodies=[{"request": {"displayName": n}} for n in ("a", "b")])
            assert batch.returncode == 0, batch.stderr
            assert [x["displayName"] for x in json.loads(batch.stdout)[plural_field]] == ["a", "b"]
            responses = watch_with_buf_curl(
                server, full, p, lambda: call(f"Create{r}", {"displayName": "watched"}).check_returncode()
            )
            assert responses[0] == {}  # the acknowledgement of the filter
            assert responses[1]["event"]["type"] == "TYPE_CREATED"
            assert responses[1]["event"][f]["displayName"] == "watched"
        else:
            missing = call(f"BatchCreate{p}", bodies=[{}])
            assert missing.returncode != 0

        assert server.stop() == 0, server.log.read_text()


# --- adding services to a project ----------------------------------------------------------------


def test_new_service_adds_to_an_existing_project_and_touches_nothing(protokit: Run, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    first = protokit("new", "service", "Billing", "--package", "acme.billing.v1", "--dir", str(project), cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    git("init", "-q", "-b", "main", cwd=project)
    commit_all(project, "billing")
    before = tree_bytes(project)

    added = protokit("new", "service", "Invoice", cwd=project)  # --dir defaults to the cwd
    assert added.returncode == 0, added.stdout + added.stderr
    after = tree_bytes(project)
    assert {path: after[path] for path in before} == before  # every existing file byte for byte
    new = set(after) - set(before)
    for path in (
        "protos/invoice/v1/invoice_service.proto",
        "src/billing/invoice_service.py",  # in the implementations= directory of buf.gen.yaml
        "tests/test_invoice_service.py",
        "generated/invoice/v1/invoice_service_protokit.py",
    ):
        assert path in new, sorted(new)
    assert not {"pyproject.toml", "buf.yaml", "README.md"} & new
    # The existing entry point is not rewritten: the output says exactly what to add.
    assert "src/billing/__main__.py" in added.stdout
    assert "from billing.invoice_service import InvoiceService" in added.stdout
    assert "pyproject.toml" not in added.stdout  # it has everything the new service needs

    # From a subdirectory of the project, into an existing package.
    more = protokit("new", "service", "Refund", "--package", "acme.billing.v1", "--no-streaming", cwd=project / "src")
    assert more.returncode == 0, more.stdout + more.stderr
    assert (project / "protos/acme/billing/v1/refund_service.proto").is_file()

    lint = protokit("lint", cwd=project)
    assert lint.returncode == 0 and "(3 files)" in lint.stdout, lint.stdout + lint.stderr
    check = protokit("gen", "--check", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr
    # Adding services (a new package and an existing one) breaks nothing for existing clients.
    breaking = protokit("breaking", "--against", "main", cwd=project)
    assert breaking.returncode == 0, breaking.stdout + breaking.stderr
    tests = subprocess.run(
        [str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0 and "15 passed" in tests.stdout, tests.stdout + tests.stderr


def test_existing_files_are_never_overwritten_only_explained(protokit: Run, tmp_path: Path) -> None:
    """A directory with a pyproject.toml and a README of its own: both stay; the output says what to add."""
    project = tmp_path / "app"
    project.mkdir()
    # It depends on "protokit": on the package index, an unrelated project.
    pyproject = '[project]\nname = "app"\nversion = "1"\ndependencies = ["protokit>=0.1"]\n'
    (project / "pyproject.toml").write_text(pyproject)
    (project / "README.md").write_text("mine\n")
    made = protokit("new", "service", "Order", "--package", "acme.orders.v1", cwd=project)
    assert made.returncode == 0, made.stdout + made.stderr
    assert (project / "pyproject.toml").read_text() == pyproject
    assert (project / "README.md").read_text() == "mine\n"
    assert (project / "buf.yaml").is_file() and (project / "src/order/order_service.py").is_file()
    assert 'pyproject.toml requires "protokit", which on the package index is an unrelated project' in made.stdout
    assert "pyproject.toml does not depend on the runtime the generated code imports" in made.stdout
    assert '"protokit-runtime>=0.1.0,<0.2"' in made.stdout and '"protokit-cli==0.1.0"' in made.stdout
    assert 'where = ["src", "generated"]' in made.stdout


def test_a_failed_gen_leaves_the_directory_as_it_was(protokit: Run, tmp_path: Path) -> None:
    project = tmp_path / "broken"
    project.mkdir()
    config = (REPO / "buf.gen.yaml").read_text()
    config = config.replace("inputs:", "  - local: protoc-gen-does-not-exist\n    out: generated\ninputs:")
    (project / "buf.gen.yaml").write_text(config)
    before = tree_bytes(project)
    failed = protokit("new", "service", "Billing", "--package", "acme.billing.v1", cwd=project)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "nothing was written" in failed.stderr and "Traceback" not in failed.stderr
    assert tree_bytes(project) == before
    assert sorted(p.name for p in project.iterdir()) == ["buf.gen.yaml"]


# --- bad input: exit 2, one message, nothing written ---------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project holding BillingService (acme.billing.v1), shared by the bad-input tests (which must
    not change it)."""
    root = tmp_path_factory.mktemp("shop")
    env = {
        **os.environ,
        "PROTOKIT_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
    }
    made = subprocess.run(
        [str(BIN / "protokit"), "new", "service", "Billing", "--package", "acme.billing.v1", "--dir", "p"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return root / "p"


BAD_SERVICE_INPUT = [
    (["9Lives"], "not an identifier"),
    (["Bill-ing"], "not an identifier"),
    (["class"], "Python keyword"),
    (["None"], "Python keyword"),
    (["invoice"], "not PascalCase"),
    (["Invoice", "--package", "Acme.billing.v1"], "lower_snake_case"),
    (["Invoice", "--package", "acme.billing"], "version segment"),
    (["Invoice", "--package", "acme.billing.v0"], "version segment"),
    (["Invoice", "--package", "acme.billing.v1.extra"], "version segment"),
    (["Invoice", "--package", "acme.import.v1"], "Python keyword"),
    (["Invoice", "--package", "json.v1"], "shadow"),
    (["Email"], "shadow"),  # its default package, email.v1
]


@pytest.mark.parametrize(("args", "message"), BAD_SERVICE_INPUT, ids=[" ".join(a) for a, _ in BAD_SERVICE_INPUT])
def test_bad_input_writes_nothing(protokit: Run, shop: Path, tmp_path: Path, args: list[str], message: str) -> None:
    before = tree_bytes(shop)
    for cwd, extra in ((shop, []), (tmp_path, ["--dir", "new"])):
        failed = protokit("new", "service", *args, *extra, cwd=cwd)
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert message in failed.stderr and "Traceback" not in failed.stderr, failed.stderr
        assert failed.stderr.count("error:") == 1, failed.stderr
    assert tree_bytes(shop) == before
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Billing"], "service BillingService already exists in protos/acme/billing/v1/billing_service.proto"),
        (["BillingService", "--package", "acme.other.v1"], "service BillingService already exists"),
        (["BillingEvent", "--package", "acme.billing.v1"], "acme.billing.v1.BillingEvent is already defined"),
        (["Cash", "--package", "billing.cash.v1"], "clashes with the implementation package 'billing'"),
    ],
)
def test_existing_services_and_clashes_are_refused(protokit: Run, shop: Path, args: list[str], message: str) -> None:
    before = tree_bytes(shop)
    failed = protokit("new", "service", *args, cwd=shop)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert message in failed.stderr and "Traceback" not in failed.stderr, failed.stderr
    assert tree_bytes(shop) == before


# --- the rendered implementation, imported in this process -----------------------------------------


@pytest.fixture
def billing(shop: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The `shop` project's implementation module (billing.billing_service), imported here."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(shop / "generated"))
    monkeypatch.syspath_prepend(str(shop / "src"))
    try:
        yield importlib.import_module("billing.billing_service")
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]


def lines_run(module: ModuleType, call: Any) -> int:
    """How many lines of `module` run during `call()`: work done in Python, which time cannot flake."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename != module.__file__:
            return None
        count += event == "line"
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(previous)
    return count


def test_a_page_of_the_in_memory_store_does_not_scan_it(billing: ModuleType) -> None:
    """A page costs O(log n + page size): the same lines run with 100 items as with 20,000 (a scan of
    every item ran a line per item, for every page: 20k items at 10 a page took 21.6 s)."""
    store = billing.BillingStore()
    created = [store.create(f"item {i}", {}).id for i in range(100)]
    _, token = store.page(0, 50)  # resumes after the 50th item

    def page() -> None:
        items, _ = store.page(token, 10)
        assert [item.id for item in items] == created[50:60]

    few = lines_run(billing, page)
    for i in range(100, 20_000):
        store.create(f"item {i}", {})
    assert lines_run(billing, page) == few < 100


def test_pages_of_the_in_memory_store_survive_deletions(billing: ModuleType) -> None:
    """Walking every page while deleting the item each token points at and the one after it: every item
    still there when its turn comes is listed once, in creation order."""
    store = billing.BillingStore()
    assert store.page(0, 10) == ([], 0)
    created = [store.create(f"item {i}", {}).id for i in range(1000)]
    gone = set(created[100:200]) | set(created[::7])  # deleted before the walk
    for item_id in gone:
        store.delete(item_id)
    left = [item_id for item_id in created if item_id not in gone]
    listed: list[str] = []
    after = 0
    while True:
        items, after = store.page(after, 7)
        listed += [item.id for item in items]
        if not after:
            break
        at = left.index(listed[-1])
        for item_id in left[at : at + 2]:  # the token's item, and the first of the next page
            store.delete(item_id)
        del left[at + 1]  # it will not be listed; left[at] was
    assert listed == left


def test_a_full_batch_of_the_largest_items_fits_the_reply(billing: ModuleType) -> None:
    """MAX_BATCH items as large as validation allows: BatchCreate's reply, which lists them all, fits
    gRPC's default 4 MiB message limit."""
    pb = billing.pb
    face = "\N{GRINNING FACE}"  # 4 bytes in UTF-8, one character for the length rules
    end = Timestamp(seconds=253402300799, nanos=999_999_999)  # the largest a Timestamp may be
    labels = {f"k{i:02}".ljust(63, "k"): face * 255 for i in range(64)}
    largest = pb.Billing(id=str(uuid.uuid4()), display_name=face * 200, labels=labels, create_time=end, update_time=end)
    assert not protovalidate.collect_violations(largest)
    bigger = [pb.Billing(display_name=face * 201), pb.Billing(labels={**labels, "one_more": ""})]
    bigger += [pb.Billing(labels={"k" * 64: ""}), pb.Billing(labels={"k": face * 256})]
    assert all(protovalidate.collect_violations(item) for item in bigger)
    reply = pb.BatchCreateBillingsResponse(billings=[largest] * billing.MAX_BATCH)
    assert reply.ByteSize() <= 4 * 1024 * 1024


def test_a_dir_that_is_a_file_is_refused(protokit: Run, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    for target in ("afile", "afile/sub"):
        failed = protokit("new", "service", "Billing", "--dir", target, cwd=tmp_path)
        assert failed.returncode == 2 and "is not a directory" in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "x"


# --- new proto -----------------------------------------------------------------------------------


@pytest.fixture
def module_project(tmp_path: Path) -> Path:
    """buf.yaml with a `protos` module, a sibling file with package-wide options, nothing generated."""
    root = tmp_path / "proj"
    (root / "protos/acme/inventory/v1").mkdir(parents=True)
    shutil.copy(REPO / "buf.yaml", root / "buf.yaml")
    (root / "protos/acme/inventory/v1/warehouse.proto").write_text(
        'syntax = "proto3";\n\npackage acme.inventory.v1;\n\n'
        'option go_package = "example.com/inventory/v1;inventoryv1";\noption java_multiple_files = true;\n\n'
        "// Warehouse stores stock.\nmessage Warehouse {}\n"
    )
    return root


def test_new_proto_derives_the_package_and_lints_clean(protokit: Run, module_project: Path) -> None:
    made = protokit("new", "proto", "protos/acme/inventory/v1/stock.proto", cwd=module_project)
    assert made.returncode == 0, made.stdout + made.stderr
    text = (module_project / "protos/acme/inventory/v1/stock.proto").read_text()
    assert "package acme.inventory.v1;" in text and "message Stock {}" in text
    assert 'option go_package = "example.com/inventory/v1;inventoryv1";' in text  # PACKAGE_SAME_GO_PACKAGE
    # From inside the module, into a directory that does not exist yet.
    nested = module_project / "protos/acme"
    more = protokit("new", "proto", "shipping/v1beta1/stock_level.proto", "--format", "json", cwd=nested)
    assert more.returncode == 0, more.stdout + more.stderr
    result = json.loads(more.stdout)
    assert (result["package"], result["message"]) == ("acme.shipping.v1beta1", "StockLevel")
    assert result["path"] == "protos/acme/shipping/v1beta1/stock_level.proto"
    lint = protokit("lint", cwd=module_project)
    assert lint.returncode == 0 and "(3 files)" in lint.stdout, lint.stdout + lint.stderr


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("stock.proto", "outside the module roots"),
        ("../stock.proto", "outside the module roots"),
        ("protos/stock.proto", "needs a package"),
        ("protos/acme/inventory/stock.proto", "version segment"),
        ("protos/acme/Inventory/v1/stock.proto", "lower_snake_case"),
        ("protos/acme/inventory/v1/Stock.proto", "not lower_snake_case"),
        ("protos/acme/inventory/v1/stock.txt", "ends in .proto"),
        ("protos/acme/inventory/v1/warehouse.proto", "already exists"),
        ("protos/acme/inventory/v1/none.proto", "Python keyword"),
        ("protos/acme/inventory/v1/warehouse/v1.proto", "version segment"),
    ],
)
def test_new_proto_bad_paths(protokit: Run, module_project: Path, path: str, message: str) -> None:
    before = tree_bytes(module_project.parent)
    failed = protokit("new", "proto", path, cwd=module_project)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert message in failed.stderr and "Traceback" not in failed.stderr, failed.stderr
    assert tree_bytes(module_project.parent) == before


def test_new_proto_outside_a_project(protokit: Run, tmp_path: Path) -> None:
    failed = protokit("new", "proto", "protos/acme/x/v1/x.proto", cwd=tmp_path)
    assert failed.returncode == 2 and "no buf.yaml" in failed.stderr, failed.stderr
    assert list(tmp_path.iterdir()) == []
