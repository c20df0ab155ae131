"""`protokit new service --from`: projects made around existing protos, and the tests they come with, run for real.

Each project is adopted in-process in a tmp dir (real buf, real protoc), then its own tests run in a
subprocess (real SQLite, real gRPC over loopback); `ruff` and `mypy --strict` check what was written; the
UserService is also served and called through `buf curl`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import Run
from protokit.errors import ProtokitError
from protokit.implementations import declared_services
from protokit.scaffold.adopt import AdoptResult, adopt_service
from test_adoption import USER_SERVICE
from test_resources import HELLOWORLD, LIBRARY, ROUTE_GUIDE, SHOP, USERS_BARE

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def project(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(shared_cache))
    root = tmp_path / "team-api"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def kinds(result: AdoptResult) -> dict[str, str]:
    return {f"{m.service.rpartition('.')[2]}.{m.method}": m.kind for m in result.methods}


def run_tests(root: Path) -> str:
    """The project's own tests, as its README says to run them (pytest finds src/ and generated/ itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def run_ruff(root: Path) -> None:
    for args in (["check", "."], ["format", "--check", "--diff", "."]):
        proc = subprocess.run([str(BIN / "ruff"), *args], cwd=root, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def run_mypy(root: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(root / ".mypy_cache")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr


# --- the shapes the issue names ----------------------------------------------------------------------


def test_a_user_service_in_proto_gets_working_code_for_all_seven_rpcs(project: Path) -> None:
    write(project, {"proto/user/v1/user_service.proto": USER_SERVICE})
    before = (project / "proto/user/v1/user_service.proto").read_bytes()
    result = adopt_service(["proto"])
    assert kinds(result) == {
        "UserService.GetUser": "get",
        "UserService.CreateUser": "create",
        "UserService.UpdateUser": "update",
        "UserService.DeleteUser": "delete",
        "UserService.ListUsers": "list",
        "UserService.BatchCreateUsers": "batch_create",
        "UserService.WatchUsers": "watch",
    }
    assert (project / "proto/user/v1/user_service.proto").read_bytes() == before
    assert {"buf.yaml", "buf.gen.yaml", "pyproject.toml", "src/team_api/user_service.py"} <= set(result.created)
    assert "tests/test_user_service.py" in result.created
    assert result.baselined > 0 and "ignore_only" in (project / "buf.yaml").read_text()
    assert run_tests(project).startswith("7 passed")
    run_ruff(project)


def test_bare_resources_int64_ids_masks_and_server_streamed_watch(project: Path) -> None:
    write(project, {"protos/acme/users/v1/users.proto": USERS_BARE})
    result = adopt_service(["protos/acme/users/v1/users.proto"])
    assert "stub" not in kinds(result).values()
    assert run_tests(project).startswith("7 passed")
    run_ruff(project)


def test_helloworld_and_route_guide_are_stubs_whose_tests_expect_unimplemented(project: Path) -> None:
    write(project, {"helloworld/helloworld.proto": HELLOWORLD, "routeguide/route_guide.proto": ROUTE_GUIDE})
    result = adopt_service(["helloworld", "routeguide"])
    assert set(kinds(result).values()) == {"stub"}
    assert all(m.reason for m in result.methods)
    summary = run_tests(project)
    assert summary.startswith("7 xfailed"), summary
    run_ruff(project)
    run_mypy(project)


def test_googleapis_library_example_standard_methods_work(project: Path) -> None:
    write(project, {"google/example/library/v1/library.proto": LIBRARY})
    result = adopt_service(["google/example/library/v1/library.proto"])
    working = {name for name, kind in kinds(result).items() if kind != "stub"}
    assert {"LibraryService.GetBook", "LibraryService.ListBooks", "LibraryService.CreateShelf"} <= working
    summary = run_tests(project)
    assert summary.startswith("9 passed, 2 xfailed"), summary
    run_ruff(project)
    run_mypy(project)


def test_a_directory_with_two_protos_and_three_services(project: Path) -> None:
    write(project, {f"api/{name}": text for name, text in SHOP.items()})
    result = adopt_service(["api"])
    assert result.services == ["shop.v1.ProductService", "shop.v1.OrderService", "shop.v1.CatalogService"]
    assert {"src/team_api/order.py", "src/team_api/product.py"} <= set(result.created)
    assert kinds(result)["CatalogService.RefreshCatalog"] == "stub"
    summary = run_tests(project)
    assert summary.startswith("5 passed, 1 xfailed"), summary
    run_ruff(project)
    run_mypy(project)


# Every less common shape at once: resource names under a parent with a client-chosen id, protovalidate
# rules, an update by mask with output-only times, a filtered and ordered List with a total, a unary
# batch (AIP-233), a server-streamed Watch filtered by names and a filter, with Kubernetes-style event
# kinds and an event time.
NOTES = """\
    syntax = "proto3";
    package acme.notes.v1;

    import "buf/validate/validate.proto";
    import "google/api/resource.proto";
    import "google/protobuf/empty.proto";
    import "google/protobuf/field_mask.proto";
    import "google/protobuf/timestamp.proto";

    service NoteService {
      rpc GetNote(GetNoteRequest) returns (Note);
      rpc CreateNote(CreateNoteRequest) returns (Note);
      rpc UpdateNote(UpdateNoteRequest) returns (Note);
      rpc DeleteNote(DeleteNoteRequest) returns (google.protobuf.Empty);
      rpc ListNotes(ListNotesRequest) returns (ListNotesResponse);
      rpc BatchCreateNotes(BatchCreateNotesRequest) returns (BatchCreateNotesResponse);
      rpc WatchNotes(WatchNotesRequest) returns (stream NoteEvent);
      rpc ArchiveNote(GetNoteRequest) returns (Note);
    }

    message Note {
      option (google.api.resource) = {type: "acme.com/Note", pattern: "folders/{folder}/notes/{note}"};
      string name = 1;
      string title = 2 [(buf.validate.field).string = {min_len: 1, max_len: 80}];
      repeated string tags = 3;
      map<string, string> labels = 4;
      google.protobuf.Timestamp create_time = 5;
      google.protobuf.Timestamp update_time = 6;
      int32 priority = 7 [(buf.validate.field).int32 = {gte: 0, lte: 5}];
    }
    message GetNoteRequest { string name = 1 [(buf.validate.field).string.min_len = 1]; }
    message CreateNoteRequest {
      string parent = 1;
      Note note = 2 [(buf.validate.field).required = true];
      string note_id = 3;
    }
    message UpdateNoteRequest { Note note = 1; google.protobuf.FieldMask update_mask = 2; }
    message DeleteNoteRequest { string name = 1; }
    message ListNotesRequest {
      string parent = 1;
      int32 page_size = 2 [(buf.validate.field).int32.gte = 0];
      string page_token = 3;
      string filter = 4;
      string order_by = 5;
    }
    message ListNotesResponse { repeated Note notes = 1; string next_page_token = 2; int32 total_size = 3; }
    message BatchCreateNotesRequest { string parent = 1; repeated CreateNoteRequest requests = 2; }
    message BatchCreateNotesResponse { repeated Note notes = 1; }
    message WatchNotesRequest { repeated string names = 1; string filter = 2; }
    message NoteEvent {
      enum Kind { KIND_UNSPECIFIED = 0; KIND_ADDED = 1; KIND_MODIFIED = 2; KIND_REMOVED = 3; }
      Kind kind = 1;
      Note note = 2;
      google.protobuf.Timestamp event_time = 3;
    }
"""


def test_resource_names_validation_masks_filters_and_a_unary_batch_all_work(project: Path) -> None:
    write(project, {"proto/acme/notes/v1/notes.proto": NOTES})
    result = adopt_service(["proto"])
    assert kinds(result) == {
        "NoteService.GetNote": "get",
        "NoteService.CreateNote": "create",
        "NoteService.UpdateNote": "update",
        "NoteService.DeleteNote": "delete",
        "NoteService.ListNotes": "list",
        "NoteService.BatchCreateNotes": "batch_create",
        "NoteService.WatchNotes": "watch",
        "NoteService.ArchiveNote": "stub",
    }
    assert run_tests(project).startswith("7 passed, 1 xfailed")
    run_ruff(project)
    run_mypy(project)


# --- growing the proto, bad input, the command line ------------------------------------------------


def test_a_rerun_adds_what_is_missing_and_leaves_edited_code_alone(project: Path, protokit: Run) -> None:
    write(project, {"proto/user/v1/user_service.proto": USER_SERVICE})
    adopt_service(["proto"])
    implementation = project / "src/team_api/user_service.py"
    edited = implementation.read_text() + "\n# edited by the team\n"
    implementation.write_text(edited)
    proto = project / "proto/user/v1/user_service.proto"
    proto.write_text(
        proto.read_text().replace(
            "service UserService {", "service UserService {\n  rpc ArchiveUser(GetUserRequest) returns (User);"
        )
    )
    write(
        project,
        {
            "proto/user/v1/audit.proto": """\
            syntax = "proto3";
            package user.v1;
            service AuditService { rpc GetEntry(GetEntryRequest) returns (Entry); }
            message Entry { string id = 1; string text = 2; }
            message GetEntryRequest { string id = 1; }
            """
        },
    )
    gen = protokit("gen", cwd=project)
    assert gen.returncode == 0, gen.stderr
    assert "src/team_api/user_service.py: UserService does not implement ArchiveUser" in gen.stderr
    (project / "src/team_api/audit.py").unlink()  # gen created a plain skeleton; let the command write working code
    again = adopt_service(["proto"])
    assert again.created == ["src/team_api/audit.py", "tests/test_audit.py"]
    assert set(again.kept) == {"src/team_api/user_service.py", "tests/test_user_service.py"}
    assert again.missing == [
        "src/team_api/user_service.py: UserService does not implement ArchiveUser (UNIMPLEMENTED until it does)"
    ]
    assert implementation.read_text() == edited
    assert run_tests(project).startswith("8 passed")


def test_protos_that_do_not_compile_are_reported_at_their_line_and_column_and_nothing_is_written(
    project: Path,
) -> None:
    write(project, {"proto/a/v1/a.proto": 'syntax = "proto3";\npackage a.v1;\nmessage A { strin x = 1; }\n'})
    before = sorted(p.relative_to(project).as_posix() for p in project.rglob("*"))
    with pytest.raises(ProtokitError) as failed:
        adopt_service(["proto"])
    assert "proto/a/v1/a.proto:3:" in "\n".join([failed.value.message, *failed.value.lines])
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")) == before


def test_a_python_package_that_would_clash_is_refused(project: Path) -> None:
    write(project, {"proto/user/v1/user_service.proto": USER_SERVICE})
    with pytest.raises(ProtokitError, match="'user' is the top-level package protoc generates"):
        adopt_service(["proto"], python_package="user")
    with pytest.raises(ProtokitError, match="'json' would shadow the standard library"):
        adopt_service(["proto"], python_package="json")
    assert not (project / "buf.yaml").exists()


def test_the_command_lists_working_rpcs_and_stubs_with_reasons(project: Path, protokit: Run) -> None:
    write(project, {"helloworld/helloworld.proto": HELLOWORLD})
    done = protokit("new", "service", "--from", "helloworld", "--format", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [(m["method"], m["kind"]) for m in data["methods"]] == [
        ("SayHello", "stub"),
        ("SayHelloStreamReply", "stub"),
        ("SayHelloBidiStream", "stub"),
    ]
    assert "not named as a standard method" in data["methods"][0]["reason"]
    again = protokit("new", "service", "--from", "helloworld", cwd=project)
    assert again.returncode == 0, again.stderr
    assert "stub         Greeter.SayHello: it is not named as a standard method" in again.stdout
    assert "= src/team_api/helloworld.py (exists: left as it is)" in again.stdout
    assert protokit("new", "service", "--from", cwd=project).returncode == 2
    missing = protokit("new", "service", "--from", "nothing-here", cwd=project)
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1), missing.stderr
    assert "nothing-here" in missing.stderr and "Traceback" not in missing.stderr


def test_the_command_reports_a_proto_that_does_not_compile_with_exit_2(project: Path, protokit: Run) -> None:
    write(project, {"proto/a/v1/a.proto": 'syntax = "proto3";\npackage a.v1;\nservice S { rpc Get(B) returns (B); }\n'})
    done = protokit("new", "service", "--from", "proto", cwd=project)
    assert done.returncode == 2
    assert "proto/a/v1/a.proto:3:" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in project.iterdir()) == ["proto"]


# --- the UserService served for real -----------------------------------------------------------------


@pytest.mark.slow
def test_every_rpc_of_the_user_service_answers_buf_curl_and_the_project_passes_mypy(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_scaffold import buf_curl, json_documents, serve

    write(project, {"proto/user/v1/user_service.proto": USER_SERVICE})
    adopt_service(["proto"])
    run_mypy(project)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(project / "src"), str(project / "generated")]))
    path = "user.v1.UserService"
    with serve(Path(sys.executable), "team_api", project) as server:

        def call(method: str, body: object = None, bodies: list[object] | None = None) -> list[dict[str, object]]:
            done = buf_curl(server.port, f"{path}/{method}", body, bodies=bodies)
            assert done.returncode == 0, done.stderr
            return json_documents(done.stdout)

        (ada,) = call("CreateUser", {"name": "Ada", "email": "ada@example.com"})
        assert call("GetUser", {"id": ada["id"]}) == [ada]
        (renamed,) = call("UpdateUser", {"id": ada["id"], "name": "Ada L."})
        assert renamed == {**ada, "name": "Ada L."}
        (summary,) = call("BatchCreateUsers", bodies=[{"name": "Bob"}, {"name": "Cy"}])
        assert summary["created"] == 2
        listed = call("ListUsers", {"pageSize": 1})
        assert [u["name"] for u in listed] == ["Ada L.", "Bob", "Cy"]
        lines: list[str] = []
        watch = subprocess.Popen(
            [
                str(BIN / "buf"),
                "curl",
                "--protocol",
                "grpc",
                "-d",
                "{}",
                f"http://127.0.0.1:{server.port}/{path}/WatchUsers",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        reader = threading.Thread(target=lambda: lines.extend(watch.stdout or ()), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 30
            while "TYPE_CREATED" not in "".join(lines):  # until the watch has subscribed and seen one
                call("CreateUser", {"name": "Watched"})
                assert time.monotonic() < deadline, lines
                time.sleep(0.3)
            call("DeleteUser", {"id": ada["id"]})
            while "TYPE_DELETED" not in "".join(lines):
                assert time.monotonic() < deadline, lines
                time.sleep(0.1)
        finally:
            watch.kill()
            watch.wait()
        missing = buf_curl(server.port, f"{path}/GetUser", {"id": ada["id"]})
        assert missing.returncode != 0 and "not_found" in missing.stderr.lower()


def test_the_services_a_proto_declares_are_read_past_comments_and_strings() -> None:
    text = """
    // service Commented { rpc No(A) returns (B); }
    service Users { // the main one
      rpc GetUser(GetUserRequest) returns (User) { option (x) = "rpc Fake(A)"; }
      /* rpc Hidden(A) returns (B); */
      rpc ListUsers(ListUsersRequest) returns (stream User);
    }
    message M { string s = 1 [default = "service Fake {"]; }
    service Empty {}
    """
    assert declared_services(text) == {"Users": ["GetUser", "ListUsers"], "Empty": []}


def test_existing_configs_are_kept_and_what_they_lack_is_hinted(project: Path) -> None:
    write(project, {"proto/user/v1/user_service.proto": USER_SERVICE})
    gen_yaml = (
        "version: v2\nplugins:\n  - protoc_builtin: python\n"
        "    protoc_path: [python, -m, grpc_tools.protoc]\n    out: gen\n"
    )
    pyproject = '[project]\nname = "team-api"\nversion = "1"\n'
    write(project, {"buf.gen.yaml": gen_yaml, "pyproject.toml": pyproject})
    result = adopt_service(["proto"])
    assert (project / "buf.gen.yaml").read_text() == gen_yaml
    assert (project / "pyproject.toml").read_text() == pyproject
    assert "buf.gen.yaml" not in result.created and "pyproject.toml" not in result.created
    hinted = {(h.path, h.message.split(",")[0].split(";")[0]) for h in result.hints}
    assert ("buf.gen.yaml", "has no protoc-gen-protokit with implementations=DIR") in hinted
    assert any(h.path == "pyproject.toml" and "protokit-runtime" in h.snippet for h in result.hints)
    assert (project / "src/team_api/user_service.py").is_file()  # from buf.gen.yaml's out: gen/
