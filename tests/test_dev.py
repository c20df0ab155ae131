"""`protokit dev` on a real project: real edits on disk, the real CLI, a real server, real clients
(buf curl through reflection, and the project's generated client with retries)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BIN, BUF, free_port, git, tree_bytes
from protokit import scaffold

PROTO = "protos/note/v1/note_service.proto"
SERVING = "serving the new code"


class Dev:
    def __init__(self, project: Path, port: int, log: Path, proc: subprocess.Popen[bytes]) -> None:
        self.project, self.port, self.log, self.proc = project, port, log, proc

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count:
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {count} x {text!r} in:\n{self.output()}"
            time.sleep(0.05)

    def curl(self, method: str, body: object, *extra: str) -> dict[str, object]:
        done = subprocess.run(
            [
                *(str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", *extra),
                *("-d", json.dumps(body), f"http://127.0.0.1:{self.port}/note.v1.NoteService/{method}"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        reply: dict[str, object] = json.loads(done.stdout)
        return reply

    def edit(self, rel: str, *replacements: tuple[str, str], restart: bool = True) -> None:
        """Apply the replacements in one save; with `restart`, wait until the new code serves."""
        served = self.output().count(SERVING)
        path = self.project / rel
        text = path.read_text()
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new, 1)
        path.write_text(text)
        if restart:
            self.wait_for(SERVING, served + 1)


@pytest.fixture
def dev(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Dev]:
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", env["PROTOKIT_CACHE_DIR"])
    scaffold.new_service("Note", tmp_path / "svc")
    project = tmp_path / "svc"
    git("init", "-q", "-b", "main", cwd=project)
    git("add", "-A", cwd=project)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first", cwd=project)
    port = free_port()
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "protokit"), "dev", "--port", str(port)], cwd=project, env=env, stdout=out, stderr=out
        )
    running = Dev(project, port, log, proc)
    try:
        running.wait_for("✓ serving note_service")
        running.wait_for("watching ")
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


CLIENT = """
import asyncio, sys, time
from note.v1 import note_service_pb2 as pb
from note.v1.note_service_protokit import NoteServiceClient

async def main():
    client = NoteServiceClient.connect(sys.argv[1])
    created = (await client.create_note(pb.CreateNoteRequest(display_name="steady"))).note
    print("started", flush=True)
    calls, errors, end = 0, [], time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        try:
            await client.list_notes(pb.ListNotesRequest(page_size=1)).__anext__()
            calls += 1
        except Exception as exc:
            errors.append(repr(exc))
        await asyncio.sleep(0.005)
    print(calls, errors, flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
def test_the_service_follows_proto_and_code_edits_and_survives_broken_ones(dev: Dev, tmp_path: Path) -> None:
    assert isinstance(dev.curl("CreateNote", {"displayName": "first"})["note"], dict)

    # A new field: regenerated, restarted (the scaffold's store is in memory), and there in the response.
    end = "  google.protobuf.Timestamp update_time = 5;\n}"
    dev.edit(PROTO, (end, end[:-1] + "\n  // A color.\n  string color = 6;\n}"))
    first = dev.curl("CreateNote", {"displayName": "first"})["note"]
    assert isinstance(first, dict)
    got = dev.curl("GetNote", {"id": first["id"]}, "--emit-defaults")["note"]
    assert isinstance(got, dict) and got["color"] == "" and got["displayName"] == "first"

    # A syntax error: the error at its line and column; generated/ untouched; the old server answers.
    generated = tree_bytes(dev.project / "generated")
    dev.edit(PROTO, ("message Note {", "message Note {{"), restart=False)
    dev.wait_for("the running server are unchanged")
    assert f"{PROTO}:" in dev.output()
    assert tree_bytes(dev.project / "generated") == generated
    assert dev.curl("GetNote", {"id": first["id"]})["note"] == {k: v for k, v in got.items() if v not in ("", {})}

    # Fixed: back to serving the latest proto; a contract break against main is a warning, not a stop.
    java = 'package note.v1;\n\noption java_package = "com.example.note.v1";'
    dev.edit(PROTO, ("message Note {{", "message Note {"), ("package note.v1;", java))
    dev.wait_for("breaking against main")
    assert "FILE_SAME_JAVA_PACKAGE" in dev.output() or "java_package" in dev.output()

    # The implementation edited: restarted, new behaviour, and a client calling all along sees no error.
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, f"127.0.0.1:{dev.port}", "4"],
        cwd=dev.project,
        env={**os.environ, "PYTHONPATH": str(dev.project / "generated")},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None and client.stdout.readline().strip() == "started"
    shouting = textwrap.dedent(
        """
        _create = NoteService.CreateNote


        async def _shouting(self, request, context):  # type: ignore[no-untyped-def]
            request.display_name = request.display_name.upper()
            return await _create(self, request, context)


        NoteService.CreateNote = _shouting  # type: ignore[method-assign]
        """
    )
    main = 'if __name__ == "__main__":'
    implementation = "src/note_service/note_service.py"
    dev.edit(implementation, (main, shouting + "\n\n" + main))
    deadline = time.monotonic() + 30  # a save can reach the watcher as two batches: the last restart wins
    while dev.curl("CreateNote", {"displayName": "quiet"})["note"]["displayName"] != "QUIET":  # type: ignore[index]
        assert time.monotonic() < deadline, dev.output()
        time.sleep(0.1)
    calls, errors = client.communicate(timeout=60)[0].strip().split(" ", 1)
    assert int(calls) > 50 and errors == "[]", (calls, errors)

    # Ctrl-C: everything stops, the port is free again.
    dev.proc.send_signal(signal.SIGINT)
    assert dev.proc.wait(20) == 0, dev.output()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not past a listener
        probe.bind(("127.0.0.1", dev.port))
        probe.listen()


def test_what_dev_runs_comes_from_the_scaffold_pyproject_or_the_command_line(tmp_path: Path) -> None:
    from protokit import config
    from protokit.dev.target import resolve
    from protokit.errors import ProtokitError

    (tmp_path / "protos/a/v1").mkdir(parents=True)
    (tmp_path / "protos/a/v1/a.proto").write_text('syntax = "proto3";\npackage a.v1;\n')
    (tmp_path / "buf.yaml").write_text("version: v2\nmodules:\n  - path: protos\n")
    gen_yaml = "version: v2\nplugins:\n  - local: protoc-gen-protokit\n    out: gen\n"
    (tmp_path / "buf.gen.yaml").write_text(gen_yaml + "    opt: [implementations=src/app]\n")
    (tmp_path / "src/app").mkdir(parents=True)
    (tmp_path / "src/app/__init__.py").write_text("")
    project = config.load_project(tmp_path)

    def target(module: str | None = None) -> tuple[list[str], list[Path]]:
        found = resolve(project, config.load_gen_config(project), module)
        return found.argv, list(found.pythonpath)

    with pytest.raises(ProtokitError, match=r"name the module to run \(protokit dev MODULE\)"):
        target()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n[project.scripts]\napp = "app.cli:main"\n')
    assert target()[0] == ["-c", "import sys; from app.cli import main; sys.exit(main())"]
    (tmp_path / "src/app/__main__.py").write_text("")
    assert target() == (["-m", "app"], [tmp_path / "src", tmp_path / "gen"])
    assert target("app.other")[0] == ["-m", "app.other"]
    with pytest.raises(ProtokitError, match="module 'nowhere' not found"):
        target("nowhere")
