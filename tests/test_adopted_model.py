"""The view model of adopted protos (protokit.scaffold.adopted): names, types, imports and per-method
expressions the templates print, built from real compiled images; no templates rendered here."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from conftest import REPO
from protokit import config
from protokit.compile import GOOGLEAPIS_DEP, VALIDATE_DEP, build_descriptor_set
from protokit.scaffold.adopted import FileView, MethodView, build_file
from protokit.scaffold.resources import recognise
from test_adoption import USER_SERVICE
from test_resources import LIBRARY, USERS_BARE

Build = Callable[..., FileView]


@pytest.fixture
def view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Build:
    """Compile {name: source} (or the repository's protos) and build the view of `target`."""
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(tmp_path / "cache"))

    def build(files: dict[str, str] | None, target: str, deps: Sequence[str] = ()) -> FileView:
        root = tmp_path / "proj"
        if files is None:
            shutil.copytree(REPO / "protos", root / "protos")
        for name, text in (files or {}).items():
            path = root / "protos" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        deps_yaml = "deps:\n" + "".join(f"  - {d}\n" for d in deps) if deps else ""
        (root / "buf.yaml").write_text("version: v2\nmodules:\n  - path: protos\n" + deps_yaml)
        project = config.load_project(root)
        names = [target] if files is None else list(files)
        data = build_descriptor_set(project, tmp_path / "cache", names, ["protos"], validate=VALIDATE_DEP in deps)
        image = list(descriptor_pb2.FileDescriptorSet.FromString(data).file)
        return build_file(target, recognise(image, [target]), image, "app.svc")

    return build


def methods(file: FileView) -> dict[str, MethodView]:
    return {m.name: m for m in file.methods}


def test_the_library_example_reads_resource_names_from_requests_and_composes_them(view: Build) -> None:
    library = view(
        {"google/example/library/v1/library.proto": LIBRARY},
        "google/example/library/v1/library.proto",
        [GOOGLEAPIS_DEP],
    )
    by_name = methods(library)
    get, update, listing = by_name["GetBook"], by_name["UpdateBook"], by_name["ListBooks"]
    assert (get.request_type, get.id_expr, get.reply and get.reply.shape) == (
        "pb.GetBookRequest",
        "request.name",
        "resource",
    )
    assert update.update is not None
    assert (update.update.strategy, update.update.source, update.id_expr) == (
        "mask",
        "request.book",
        "request.book.name",
    )
    assert listing.listing is not None and listing.listing.parent_expr == "request.parent"
    assert 'parent="shelves/example"' in listing.list_values
    (books,) = [s for s in library.services[0].stores if s.name == "Book"]
    assert (books.attribute, books.collection, books.example_parent, books.immutable_tuple) == (
        "books",
        "books",
        "shelves/example",
        '("name",)',
    )
    create = by_name["CreateBook"].converter
    assert create is not None
    assert (create.function, create.source, create.parent_expr) == (
        "book_from_create_book_request",
        "field",
        "request.parent",
    )
    # google.protobuf.Empty answers the deletes: imported under its own module name.
    assert library.aliases["google.protobuf.empty_pb2"] == "empty_pb2"
    assert by_name["DeleteBook"].reply is not None and by_name["DeleteBook"].reply.build("book") == "empty_pb2.Empty()"
    stub = by_name["MoveBook"]
    assert stub.kind == "stub" and all(len(line) <= 78 for line in stub.todo)
    assert stub.todo[0].startswith("TODO: implement MoveBook (return a Book).")


def test_requests_with_protovalidate_rules_are_known_so_tests_send_an_invalid_one(view: Build) -> None:
    own = view(None, "user/v1/user_service.proto", [VALIDATE_DEP])
    validated = {m.name for m in own.methods if m.validated}
    assert {"GetUser", "CreateUser", "UpdateUser", "DeleteUser"} <= validated
    plain = view({"user/v1/user_service.proto": USER_SERVICE}, "user/v1/user_service.proto", [GOOGLEAPIS_DEP])
    assert not any(m.validated for m in plain.methods)


def test_a_server_streamed_watch_filters_by_ids_and_maps_changes_to_the_enum(view: Build) -> None:
    bare = view({"acme/users/v1/users.proto": USERS_BARE}, "acme/users/v1/users.proto")
    (watch,) = bare.watches
    assert watch.changes == "USER_EVENT_TYPE_VALUES"
    assert watch.entries == [
        '"created": pb.UserEvent.EventType.EVENT_TYPE_CREATED',
        '"updated": pb.UserEvent.EventType.EVENT_TYPE_UPDATED',
        '"deleted": pb.UserEvent.EventType.EVENT_TYPE_DELETED',
    ]
    assert watch.conditions[1] == (
        "request.ids and user.id not in request.ids",
        "not request.ids or user.id in request.ids",
    )
    (users,) = bare.services[0].stores
    assert (users.integer_ids, users.create_time_field) == (True, "created_at")
    batch = methods(bare)["BatchCreateUsers"]
    assert batch.batch is not None and (batch.batch.items_field, batch.batch.count_field) == ("users", "created_count")
    # The create request names no id of its own, so three alike in one batch do not collide.
    assert batch.batch_item == "example(pb.CreateUserRequest)"
