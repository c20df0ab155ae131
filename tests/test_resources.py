"""The resource recognition model (protokit.scaffold.resources): protos compiled by protoc, plans per RPC out."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from conftest import REPO
from protokit import config
from protokit.compile import GOOGLEAPIS_DEP, VALIDATE_DEP, build_descriptor_set
from protokit.scaffold.resources import (
    BatchCreateShape,
    CreateShape,
    DeleteShape,
    GetShape,
    ListShape,
    MethodPlan,
    ResourceModelError,
    ServicePlan,
    UpdateShape,
    WatchShape,
    recognise,
)

Recognise = Callable[..., tuple[ServicePlan, ...]]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Content-addressed, so sharing it between the tests of this module cannot change results.
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def plans(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Recognise:
    """Write {name: source} under protos/ of a fresh project, compile them to an image (imports included)
    and recognise the services of those files (or of `targets`)."""
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(shared_cache))
    root = tmp_path / "proj"

    def build(
        files: dict[str, str], deps: Sequence[str] = (), targets: Sequence[str] | None = None
    ) -> tuple[ServicePlan, ...]:
        for name, text in files.items():
            path = root / "protos" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        deps_yaml = "deps:\n" + "".join(f"  - {d}\n" for d in deps) if deps else ""
        (root / "buf.yaml").write_text("version: v2\nmodules:\n  - path: protos\n" + deps_yaml)
        project = config.load_project(root)
        data = build_descriptor_set(project, shared_cache, list(files), ["protos"], validate=VALIDATE_DEP in deps)
        image = list(descriptor_pb2.FileDescriptorSet.FromString(data).file)
        return recognise(image, list(files) if targets is None else targets)

    return build


def by_name(service: ServicePlan) -> dict[str, MethodPlan]:
    return {m.name: m for m in service.methods}


def kinds(service: ServicePlan) -> dict[str, str]:
    return {m.name: m.kind for m in service.methods}


def one_service(files: dict[str, str], plans: Recognise, deps: Sequence[str] = ()) -> ServicePlan:
    (service,) = plans(files, deps)
    return service


# --- AIP-131..135: googleapis' library example ---------------------------------------------------

# google/example/library/v1/library.proto from googleapis/googleapis (Apache-2.0), comments shortened.
# The googleapis-common-protos wheel ships google/api but not google/example: the copy stands in for it.
LIBRARY = """\
    syntax = "proto3";

    package google.example.library.v1;

    import "google/api/annotations.proto";
    import "google/api/client.proto";
    import "google/api/field_behavior.proto";
    import "google/api/resource.proto";
    import "google/protobuf/empty.proto";
    import "google/protobuf/field_mask.proto";

    // This API represents a simple digital library.
    service LibraryService {
      option (google.api.default_host) = "library-example.googleapis.com";

      rpc CreateShelf(CreateShelfRequest) returns (Shelf) {
        option (google.api.http) = {post: "/v1/shelves" body: "shelf"};
        option (google.api.method_signature) = "shelf";
      }
      rpc GetShelf(GetShelfRequest) returns (Shelf) {
        option (google.api.http) = {get: "/v1/{name=shelves/*}"};
        option (google.api.method_signature) = "name";
      }
      rpc ListShelves(ListShelvesRequest) returns (ListShelvesResponse) {
        option (google.api.http) = {get: "/v1/shelves"};
      }
      rpc DeleteShelf(DeleteShelfRequest) returns (google.protobuf.Empty) {
        option (google.api.http) = {delete: "/v1/{name=shelves/*}"};
        option (google.api.method_signature) = "name";
      }
      rpc MergeShelves(MergeShelvesRequest) returns (Shelf) {
        option (google.api.http) = {post: "/v1/{name=shelves/*}:merge" body: "*"};
        option (google.api.method_signature) = "name,other_shelf";
      }
      rpc CreateBook(CreateBookRequest) returns (Book) {
        option (google.api.http) = {post: "/v1/{parent=shelves/*}/books" body: "book"};
        option (google.api.method_signature) = "parent,book";
      }
      rpc GetBook(GetBookRequest) returns (Book) {
        option (google.api.http) = {get: "/v1/{name=shelves/*/books/*}"};
        option (google.api.method_signature) = "name";
      }
      rpc ListBooks(ListBooksRequest) returns (ListBooksResponse) {
        option (google.api.http) = {get: "/v1/{parent=shelves/*}/books"};
        option (google.api.method_signature) = "parent";
      }
      rpc DeleteBook(DeleteBookRequest) returns (google.protobuf.Empty) {
        option (google.api.http) = {delete: "/v1/{name=shelves/*/books/*}"};
        option (google.api.method_signature) = "name";
      }
      rpc UpdateBook(UpdateBookRequest) returns (Book) {
        option (google.api.http) = {patch: "/v1/{book.name=shelves/*/books/*}" body: "book"};
        option (google.api.method_signature) = "book,update_mask";
      }
      rpc MoveBook(MoveBookRequest) returns (Book) {
        option (google.api.http) = {post: "/v1/{name=shelves/*/books/*}:move" body: "*"};
        option (google.api.method_signature) = "name,other_shelf_name";
      }
    }

    message Book {
      option (google.api.resource) = {
        type: "library-example.googleapis.com/Book",
        pattern: "shelves/{shelf}/books/{book}"
      };
      string name = 1;
      string author = 2;
      string title = 3;
      bool read = 4;
    }

    message Shelf {
      option (google.api.resource) = {
        type: "library-example.googleapis.com/Shelf",
        pattern: "shelves/{shelf_id}"
      };
      string name = 1;
      string theme = 2;
    }

    message CreateShelfRequest {
      Shelf shelf = 1 [(google.api.field_behavior) = REQUIRED];
    }

    message GetShelfRequest {
      string name = 1 [
        (google.api.field_behavior) = REQUIRED,
        (google.api.resource_reference).type = "library-example.googleapis.com/Shelf"
      ];
    }

    message ListShelvesRequest {
      int32 page_size = 1;
      string page_token = 2;
    }

    message ListShelvesResponse {
      repeated Shelf shelves = 1;
      string next_page_token = 2;
    }

    message DeleteShelfRequest {
      string name = 1 [(google.api.field_behavior) = REQUIRED];
    }

    message MergeShelvesRequest {
      string name = 1 [(google.api.field_behavior) = REQUIRED];
      string other_shelf = 2 [(google.api.field_behavior) = REQUIRED];
    }

    message CreateBookRequest {
      string parent = 1 [
        (google.api.field_behavior) = REQUIRED,
        (google.api.resource_reference).type = "library-example.googleapis.com/Shelf"
      ];
      Book book = 2 [(google.api.field_behavior) = REQUIRED];
    }

    message GetBookRequest {
      string name = 1 [(google.api.field_behavior) = REQUIRED];
    }

    message ListBooksRequest {
      string parent = 1 [(google.api.field_behavior) = REQUIRED];
      int32 page_size = 2;
      string page_token = 3;
    }

    message ListBooksResponse {
      repeated Book books = 1;
      string next_page_token = 2;
    }

    message UpdateBookRequest {
      Book book = 1 [(google.api.field_behavior) = REQUIRED];
      google.protobuf.FieldMask update_mask = 2 [(google.api.field_behavior) = REQUIRED];
    }

    message DeleteBookRequest {
      string name = 1 [(google.api.field_behavior) = REQUIRED];
    }

    message MoveBookRequest {
      string name = 1 [(google.api.field_behavior) = REQUIRED];
      string other_shelf_name = 2 [(google.api.field_behavior) = REQUIRED];
    }
"""


def test_library_example_standard_methods_are_recognised_the_rest_are_stubs(plans: Recognise) -> None:
    service = one_service({"google/example/library/v1/library.proto": LIBRARY}, plans, [GOOGLEAPIS_DEP])
    assert (service.name, service.full_name) == ("LibraryService", "google.example.library.v1.LibraryService")
    assert service.module == "google.example.library.v1.library_pb2"
    assert kinds(service) == {
        "CreateShelf": "create",
        "GetShelf": "get",
        "ListShelves": "list",
        "DeleteShelf": "delete",
        "MergeShelves": "stub",
        "CreateBook": "create",
        "GetBook": "get",
        "ListBooks": "list",
        "DeleteBook": "delete",
        "UpdateBook": "update",
        "MoveBook": "stub",
    }
    shelf, book = service.resources
    assert (shelf.name, shelf.plural, shelf.plural_snake, shelf.collection) == (
        "Shelf",
        "Shelves",
        "shelves",
        "shelves",
    )
    assert (book.name, book.plural, book.collection, book.pattern) == (
        "Book",
        "Books",
        "books",
        "shelves/{shelf}/books/{book}",
    )
    assert (book.id.name, book.id.type, book.id_style, book.id_kind) == ("name", "string", "name", "string")
    assert book.display_fields == ("title", "author")
    assert book.message.python_path == "Book" and book.message.module == "google.example.library.v1.library_pb2"

    methods = by_name(service)
    get = methods["GetBook"].shape
    assert isinstance(get, GetShape)
    assert (get.id_path, get.reply.shape, get.reply.message.name) == (("name",), "resource", "Book")

    listing = methods["ListBooks"].shape
    assert isinstance(listing, ListShape)
    assert (listing.delivery, listing.parent_field, listing.page_size_field, listing.page_token_field) == (
        "page",
        "parent",
        "page_size",
        "page_token",
    )
    assert (listing.items_field, listing.next_page_token_field, listing.filter_field) == (
        "books",
        "next_page_token",
        None,
    )
    shelves = methods["ListShelves"].shape
    assert isinstance(shelves, ListShape) and shelves.parent_field is None and shelves.items_field == "shelves"

    create = methods["CreateBook"].shape
    assert isinstance(create, CreateShape)
    assert (create.input.source, create.input.resource_field, create.input.parent_field) == ("field", "book", "parent")
    assert create.reply.shape == "resource"

    update = methods["UpdateBook"].shape
    assert isinstance(update, UpdateShape)
    assert (update.id_path, update.resource_field, update.mask_field, update.strategy) == (
        ("book", "name"),
        "book",
        "update_mask",
        "mask",
    )

    delete = methods["DeleteBook"].shape
    assert isinstance(delete, DeleteShape)
    assert (delete.id_path, delete.reply.shape, delete.reply.message.full_name) == (
        ("name",),
        "empty",
        "google.protobuf.Empty",
    )
    assert delete.reply.message.module == "google.protobuf.empty_pb2"

    for stub in ("MergeShelves", "MoveBook"):
        assert methods[stub].shape is None
        assert "not named as a standard method" in methods[stub].reason
        assert "Get, Create, Update, Delete, List, BatchCreate and Watch" in methods[stub].reason


def test_update_without_a_mask_replaces_the_resource(plans: Recognise) -> None:
    """The library example's first shape, UpdateBookRequest{name, book}: the id beside the resource, no mask."""
    service = one_service(
        {
            "lib/v1/lib.proto": """\
            syntax = "proto3";
            package lib.v1;
            service Library { rpc UpdateBook(UpdateBookRequest) returns (Book); }
            message Book { string name = 1; string title = 2; }
            message UpdateBookRequest { string name = 1; Book book = 2; bool allow_missing = 3; }
            """
        },
        plans,
    )
    update = service.methods[0].shape
    assert isinstance(update, UpdateShape)
    assert (update.id_path, update.resource_field, update.mask_field, update.strategy) == (
        ("name",),
        "book",
        None,
        "replace",
    )
    assert update.ignored_fields == ("allow_missing",)


# --- the usual UserService shapes ----------------------------------------------------------------


def test_repository_user_service_recognises_all_seven_rpcs(plans: Recognise) -> None:
    name = "user/v1/user_service.proto"
    service = one_service({name: (REPO / "protos" / name).read_text()}, plans, [VALIDATE_DEP])
    assert kinds(service) == {
        "GetUser": "get",
        "CreateUser": "create",
        "UpdateUser": "update",
        "DeleteUser": "delete",
        "ListUsers": "list",
        "BatchCreateUsers": "batch_create",
        "WatchUsers": "watch",
    }
    assert service.stubs == () and len(service.implemented) == 7
    (user,) = service.resources
    assert (user.name, user.plural, user.snake, user.plural_snake) == ("User", "Users", "user", "users")
    assert (user.id.name, user.id_kind, user.id_style, user.collection) == ("id", "string", "id", "users")
    assert (user.create_time_field, user.update_time_field) == ("create_time", "update_time")
    assert user.display_fields == ("username", "email")
    methods = by_name(service)

    get = methods["GetUser"].shape
    assert isinstance(get, GetShape)
    assert (get.id_path, get.reply.shape, get.reply.resource_field) == (("id",), "wrapper", "user")

    create = methods["CreateUser"].shape
    assert isinstance(create, CreateShape)
    assert create.input.source == "flattened"
    assert create.input.copied_fields == ("username", "email", "role", "profile")
    assert create.input.ignored_fields == ("password",)  # User has no password: the renderer leaves a TODO
    assert (create.reply.shape, create.reply.resource_field) == ("wrapper", "user")

    update = methods["UpdateUser"].shape
    assert isinstance(update, UpdateShape)
    assert (update.id_path, update.resource_field, update.mask_field, update.strategy) == (
        ("id",),
        None,
        "update_mask",
        "mask",
    )
    assert [(f.name, f.presence) for f in update.fields] == [
        ("username", True),
        ("email", True),
        ("role", True),
        ("profile", True),
    ]

    delete = methods["DeleteUser"].shape
    assert isinstance(delete, DeleteShape)
    assert (delete.reply.shape, delete.reply.message.name) == ("empty", "DeleteUserResponse")

    listing = methods["ListUsers"].shape
    assert isinstance(listing, ListShape)
    assert (listing.delivery, listing.items_field, listing.next_page_token_field) == (
        "stream_pages",
        "users",
        "next_page_token",
    )

    batch = methods["BatchCreateUsers"].shape
    assert isinstance(batch, BatchCreateShape)
    assert methods["BatchCreateUsers"].client_streaming and not methods["BatchCreateUsers"].server_streaming
    assert (batch.item_field, batch.input.message.name, batch.input.source) == (
        "request",
        "CreateUserRequest",
        "flattened",
    )
    assert (batch.items_field, batch.count_field) == ("users", "created_count")

    watch = methods["WatchUsers"].shape
    assert isinstance(watch, WatchShape)
    assert (watch.event.name, watch.event_field, watch.type_field, watch.resource_field, watch.time_field) == (
        "UserEvent",
        "event",
        "type",
        "user",
        "event_time",
    )
    assert (watch.type_enum.full_name, watch.type_enum.python_path) == ("user.v1.UserEvent.Type", "UserEvent.Type")
    assert (watch.created_value, watch.updated_value, watch.deleted_value) == (
        "TYPE_CREATED",
        "TYPE_UPDATED",
        "TYPE_DELETED",
    )
    assert (watch.ids_field, watch.types_field) == ("user_ids", "event_types")


USERS_BARE = """\
    syntax = "proto3";
    package acme.users.v1;

    import "google/protobuf/empty.proto";
    import "google/protobuf/field_mask.proto";
    import "google/protobuf/timestamp.proto";

    service UserService {
      rpc GetUser(GetUserRequest) returns (User);
      rpc CreateUser(CreateUserRequest) returns (User);
      rpc UpdateUser(UpdateUserRequest) returns (User);
      rpc DeleteUser(DeleteUserRequest) returns (google.protobuf.Empty);
      rpc ListUsers(ListUsersRequest) returns (stream User);
      rpc BatchCreateUsers(stream CreateUserRequest) returns (BatchCreateUsersResponse);
      rpc WatchUsers(WatchUsersRequest) returns (stream UserEvent);
    }

    // `name` is a person's name here: with an `id` beside it, `id` identifies the user.
    message User {
      int64 id = 1;
      string name = 2;
      string email = 3;
      google.protobuf.Timestamp created_at = 4;
    }
    message UserEvent {
      enum EventType {
        EVENT_TYPE_UNSPECIFIED = 0;
        EVENT_TYPE_CREATED = 1;
        EVENT_TYPE_UPDATED = 2;
        EVENT_TYPE_DELETED = 3;
      }
      EventType type = 1;
      User user = 2;
    }
    message GetUserRequest { int64 id = 1; }
    message CreateUserRequest { User user = 1; }
    message UpdateUserRequest { User user = 1; google.protobuf.FieldMask update_mask = 2; }
    message DeleteUserRequest { int64 id = 1; }
    message ListUsersRequest { int32 page_size = 1; string filter = 2; }
    message BatchCreateUsersResponse { repeated User users = 1; int32 created_count = 2; }
    message WatchUsersRequest { repeated int64 ids = 1; }
"""


def test_user_service_with_bare_resources_int64_ids_and_server_streams(plans: Recognise) -> None:
    service = one_service({"acme/users/v1/users.proto": USERS_BARE}, plans)
    assert service.stubs == ()
    (user,) = service.resources
    assert (user.id.name, user.id.type, user.id_kind, user.id_style) == ("id", "int64", "integer", "id")
    assert (user.create_time_field, user.update_time_field, user.display_fields) == (
        "created_at",
        None,
        ("name", "email"),
    )
    methods = by_name(service)

    get = methods["GetUser"].shape
    assert isinstance(get, GetShape) and (get.id_path, get.reply.shape) == (("id",), "resource")
    create = methods["CreateUser"].shape
    assert isinstance(create, CreateShape)
    assert (create.input.source, create.input.resource_field, create.reply.shape) == ("field", "user", "resource")
    update = methods["UpdateUser"].shape
    assert isinstance(update, UpdateShape)
    assert (update.id_path, update.strategy) == (("user", "id"), "mask")
    delete = methods["DeleteUser"].shape
    assert isinstance(delete, DeleteShape) and delete.reply.message.full_name == "google.protobuf.Empty"

    listing = methods["ListUsers"].shape
    assert isinstance(listing, ListShape)
    assert (listing.delivery, listing.items_field, listing.page_size_field, listing.filter_field) == (
        "stream",
        None,
        "page_size",
        "filter",
    )
    assert (listing.page_token_field, listing.next_page_token_field) == (None, None)

    batch = methods["BatchCreateUsers"].shape
    assert isinstance(batch, BatchCreateShape)
    assert (batch.item_field, batch.input.source, batch.input.resource_field) == (None, "field", "user")
    assert (batch.items_field, batch.count_field) == ("users", "created_count")

    watch = methods["WatchUsers"].shape
    assert isinstance(watch, WatchShape)
    assert not methods["WatchUsers"].client_streaming and methods["WatchUsers"].server_streaming
    assert (watch.event_field, watch.type_enum.python_path, watch.created_value) == (
        None,
        "UserEvent.EventType",
        "EVENT_TYPE_CREATED",
    )
    assert (watch.ids_field, watch.types_field, watch.time_field) == ("ids", None, None)


def test_update_by_optional_fields_without_a_mask(plans: Recognise) -> None:
    """UpdateUserRequest{id, optional fields}: presence says what changes; fields without it (plain
    scalars, maps) change when not their default."""
    service = one_service(
        {
            "acme/v1/users.proto": """\
            syntax = "proto3";
            package acme.v1;
            service Users { rpc UpdateUser(UpdateUserRequest) returns (UpdateUserResponse); }
            message Profile { string bio = 1; }
            message User {
              string id = 1;
              string email = 2;
              string nickname = 3;
              map<string, string> labels = 4;
              Profile profile = 5;
            }
            message UpdateUserRequest {
              string id = 1;
              optional string email = 2;
              string nickname = 3;
              map<string, string> labels = 4;
              Profile profile = 5;
              string request_id = 6;
            }
            message UpdateUserResponse { User user = 1; string etag = 2; }
            """
        },
        plans,
    )
    update = service.methods[0].shape
    assert isinstance(update, UpdateShape)
    assert (update.id_path, update.mask_field, update.strategy) == (("id",), None, "presence")
    assert [(f.name, f.kind, f.presence) for f in update.fields] == [
        ("email", "scalar", True),
        ("nickname", "scalar", False),
        ("labels", "map", False),
        ("profile", "message", True),
    ]
    assert update.fields[2].type == "map<string, string>"  # map entries compare by key and value types
    assert update.ignored_fields == ("request_id",)
    assert (update.reply.resource_field, update.reply.unset_fields) == ("user", ("etag",))


@pytest.mark.parametrize(
    ("response", "shape", "resource_field", "unset"),
    [
        ("google.protobuf.Empty", "empty", None, ()),
        ("DeleteUserResponse", "empty", None, ()),
        ("DeletedFlag", "other", None, ("deleted",)),
        ("User", "resource", None, ()),
        ("DeletedUser", "wrapper", "user", ()),
    ],
)
def test_delete_answers_with_any_response(
    plans: Recognise, response: str, shape: str, resource_field: str | None, unset: tuple[str, ...]
) -> None:
    service = one_service(
        {
            "acme/v1/users.proto": f"""\
            syntax = "proto3";
            package acme.v1;
            import "google/protobuf/empty.proto";
            service Users {{ rpc DeleteUser(DeleteUserRequest) returns ({response}); }}
            message User {{ string id = 1; }}
            message DeleteUserRequest {{ string id = 1; }}
            message DeleteUserResponse {{}}
            message DeletedFlag {{ bool deleted = 1; }}
            message DeletedUser {{ User user = 1; }}
            """
        },
        plans,
    )
    delete = service.methods[0].shape
    assert isinstance(delete, DeleteShape)
    assert (delete.reply.shape, delete.reply.resource_field, delete.reply.unset_fields) == (
        shape,
        resource_field,
        unset,
    )


def test_unary_batch_create_of_repeated_create_requests(plans: Recognise) -> None:
    """AIP-233: BatchCreateBooksRequest{parent, repeated CreateBookRequest requests} -> {books}."""
    service = one_service(
        {
            "lib/v1/lib.proto": """\
            syntax = "proto3";
            package lib.v1;
            service Library { rpc BatchCreateBooks(BatchCreateBooksRequest) returns (BatchCreateBooksResponse); }
            message Book { string id = 1; string title = 2; }
            message CreateBookRequest { string parent = 1; Book book = 2; string book_id = 3; }
            message BatchCreateBooksRequest { string parent = 1; repeated CreateBookRequest requests = 2; }
            message BatchCreateBooksResponse { repeated Book books = 1; }
            """
        },
        plans,
    )
    batch = service.methods[0].shape
    assert isinstance(batch, BatchCreateShape)
    assert (batch.item_field, batch.items_field, batch.count_field) == ("requests", "books", None)
    assert (batch.input.resource_field, batch.input.parent_field, batch.input.id_field) == ("book", "parent", "book_id")


# --- not resources: grpc's examples --------------------------------------------------------------

HELLOWORLD = """\
    syntax = "proto3";

    option java_multiple_files = true;
    option java_package = "io.grpc.examples.helloworld";
    option java_outer_classname = "HelloWorldProto";
    option objc_class_prefix = "HLW";

    package helloworld;

    // The greeting service definition.
    service Greeter {
      // Sends a greeting
      rpc SayHello (HelloRequest) returns (HelloReply) {}
      rpc SayHelloStreamReply (HelloRequest) returns (stream HelloReply) {}
      rpc SayHelloBidiStream (stream HelloRequest) returns (stream HelloReply) {}
    }

    // The request message containing the user's name.
    message HelloRequest {
      string name = 1;
    }

    // The response message containing the greetings
    message HelloReply {
      string message = 1;
    }
"""

ROUTE_GUIDE = """\
    syntax = "proto3";

    option java_multiple_files = true;
    option java_package = "io.grpc.examples.routeguide";
    option java_outer_classname = "RouteGuideProto";
    option objc_class_prefix = "RTG";

    package routeguide;

    // Interface exported by the server.
    service RouteGuide {
      // Obtains the feature at a given position.
      rpc GetFeature(Point) returns (Feature) {}

      // Obtains the Features available within the given Rectangle.
      rpc ListFeatures(Rectangle) returns (stream Feature) {}

      // Accepts a stream of Points on a route being traversed, returning a RouteSummary.
      rpc RecordRoute(stream Point) returns (RouteSummary) {}

      // Accepts a stream of RouteNotes sent while a route is being traversed.
      rpc RouteChat(stream RouteNote) returns (stream RouteNote) {}
    }

    message Point {
      int32 latitude = 1;
      int32 longitude = 2;
    }

    message Rectangle {
      Point lo = 1;
      Point hi = 2;
    }

    message Feature {
      string name = 1;
      Point location = 2;
    }

    message RouteNote {
      Point location = 1;
      string message = 2;
    }

    message RouteSummary {
      int32 point_count = 1;
      int32 feature_count = 2;
      int32 distance = 3;
      int32 elapsed_time = 4;
    }
"""


def test_helloworld_is_all_stubs(plans: Recognise) -> None:
    service = one_service({"helloworld.proto": HELLOWORLD}, plans)
    assert service.implemented == () and service.resources == ()
    assert all("not named as a standard method" in m.reason for m in service.methods)
    assert service.module == "helloworld_pb2"


def test_route_guide_is_all_stubs_with_the_reason_for_each(plans: Recognise) -> None:
    service = one_service({"route_guide.proto": ROUTE_GUIDE}, plans)
    assert service.implemented == () and service.resources == ()
    reasons = {m.name: m.reason for m in service.methods}
    # Feature has a `name`, so it could be a resource; the requests are what do not fit.
    assert reasons["GetFeature"] == (
        "its request Point has no field naming the Feature to get: a Get request carries `name`, the resource name"
    )
    assert reasons["ListFeatures"] == (
        "its request Rectangle has fields a List cannot apply (lo, hi): "
        "a List request takes parent, page_size, page_token, filter, order_by"
    )
    assert "not named as a standard method" in reasons["RecordRoute"]
    assert "not named as a standard method" in reasons["RouteChat"]
    assert by_name(service)["GetFeature"].resource is not None  # kept for the stub's TODO


# --- several services and files ------------------------------------------------------------------


def test_two_services_in_one_file_each_with_its_own_resource(plans: Recognise) -> None:
    books, authors = plans(
        {
            "lib/v1/lib.proto": """\
            syntax = "proto3";
            package lib.v1;
            import "google/protobuf/empty.proto";
            service BookService {
              rpc GetBook(GetBookRequest) returns (Book);
              rpc DeleteBook(DeleteBookRequest) returns (google.protobuf.Empty);
            }
            service AuthorService {
              rpc CreateAuthor(Author) returns (Author);
              rpc ListAuthors(ListAuthorsRequest) returns (ListAuthorsResponse);
              rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty);
            }
            message Book { string id = 1; string title = 2; }
            message Author { string id = 1; string display_name = 2; }
            message GetBookRequest { string id = 1; }
            message DeleteBookRequest { string id = 1; }
            message ListAuthorsRequest { int32 page_size = 1; string page_token = 2; }
            message ListAuthorsResponse {
              repeated Author authors = 1;
              string next_page_token = 2;
              int32 total_size = 3;
            }
            """
        },
    )
    assert (books.full_name, authors.full_name) == ("lib.v1.BookService", "lib.v1.AuthorService")
    assert [r.name for r in books.resources] == ["Book"] and [r.name for r in authors.resources] == ["Author"]
    assert kinds(books) == {"GetBook": "get", "DeleteBook": "delete"}
    assert kinds(authors) == {"CreateAuthor": "create", "ListAuthors": "list", "Ping": "stub"}
    create = by_name(authors)["CreateAuthor"].shape
    assert isinstance(create, CreateShape) and create.input.source == "resource"
    listing = by_name(authors)["ListAuthors"].shape
    assert isinstance(listing, ListShape) and listing.total_size_field == "total_size"
    assert authors.resources[0].display_fields == ("display_name",)


# Two files, three services; CatalogService serves a resource declared in the other file.
SHOP = {
    "shop/v1/product.proto": """\
    syntax = "proto3";
    package shop.v1;
    service ProductService {
      rpc GetProduct(GetProductRequest) returns (Product);
      rpc ListProducts(ListProductsRequest) returns (ListProductsResponse);
    }
    message Product { string id = 1; string title = 2; }
    message GetProductRequest { string id = 1; }
    message ListProductsRequest { int32 page_size = 1; string page_token = 2; }
    message ListProductsResponse { repeated Product products = 1; string next_page_token = 2; }
    """,
    "shop/v1/order.proto": """\
    syntax = "proto3";
    package shop.v1;
    import "shop/v1/product.proto";
    service OrderService {
      rpc CreateOrder(CreateOrderRequest) returns (Order);
      rpc GetOrder(GetOrderRequest) returns (Order);
    }
    service CatalogService {
      rpc GetProduct(GetProductRequest) returns (Product);
      rpc RefreshCatalog(GetProductRequest) returns (Product);
    }
    message Order { string id = 1; repeated Product products = 2; }
    message CreateOrderRequest { repeated Product products = 1; }
    message GetOrderRequest { string id = 1; }
    """,
}


def test_two_files_three_services_with_an_imported_resource(plans: Recognise) -> None:
    services = plans(SHOP)
    assert [(s.file, s.name) for s in services] == [
        ("shop/v1/product.proto", "ProductService"),
        ("shop/v1/order.proto", "OrderService"),
        ("shop/v1/order.proto", "CatalogService"),
    ]
    _, orders, catalog = services
    assert kinds(orders) == {"CreateOrder": "create", "GetOrder": "get"}
    (product,) = catalog.resources
    # Declared in the other file: the implementation imports it from that file's module.
    assert (product.message.file, product.message.module) == ("shop/v1/product.proto", "shop.v1.product_pb2")
    assert catalog.module == "shop.v1.order_pb2"
    assert kinds(catalog) == {"GetProduct": "get", "RefreshCatalog": "stub"}


def test_nested_resource_message_and_english_plurals(plans: Recognise) -> None:
    (service,) = plans(
        {
            "zoo/v1/zoo.proto": """\
            syntax = "proto3";
            package zoo.v1;
            service Zoo {
              rpc GetBox(GetBoxRequest) returns (Library.Box);
              rpc ListBoxes(ListBoxesRequest) returns (stream Library.Box);
              rpc ListCategories(ListCategoriesRequest) returns (stream Category);
              rpc GetCategory(GetCategoryRequest) returns (Category);
              rpc GetAnimal(GetAnimalRequest) returns (Animal);
            }
            message Library { message Box { uint32 box_id = 1; string label = 2; } }
            message Category { string name = 1; }
            message Animal { string id = 1; }
            message GetBoxRequest { uint32 box_id = 1; }
            message ListBoxesRequest {}
            message ListCategoriesRequest {}
            message GetCategoryRequest { string name = 1; }
            message GetAnimalRequest { string animal_id = 1; }
            """
        },
    )
    assert service.stubs == ()
    box, category, animal = service.resources
    assert (box.message.full_name, box.message.python_path, box.plural) == (
        "zoo.v1.Library.Box",
        "Library.Box",
        "Boxes",
    )
    assert (box.id.name, box.id_kind) == ("box_id", "integer")
    assert (category.plural, category.collection, category.id_style) == ("Categories", "categories", "name")
    assert (animal.plural, animal.collection) == ("Animals", "animals")  # no List: the English plural
    get_animal = by_name(service)["GetAnimal"].shape
    assert isinstance(get_animal, GetShape) and get_animal.id_path == ("animal_id",)


# --- standard names whose messages do not fit ----------------------------------------------------

UNFIT = """\
    syntax = "proto3";
    package acme.v1;
    import "google/protobuf/empty.proto";
    import "google/longrunning/operations.proto";
    service Unfit {{ {rpc} }}
    message User {{ string id = 1; string email = 2; }}
    message Account {{ int64 id = 1; }}
    message Point {{ int32 latitude = 1; int32 longitude = 2; }}
    message UserEvent {{ string kind = 1; User user = 2; }}
    message GetUserRequest {{ string id = 1; }}
    message GetUserResponse {{ string display = 1; }}
    message GetByEmailRequest {{ string email = 1; }}
    message GetAccountRequest {{ string id = 1; }}
    message GetPointRequest {{ int32 latitude = 1; }}
    message ListUsersRequest {{ int32 page_size = 1; string role = 2; }}
    message ListUsersResponse {{ int32 total = 1; }}
    message CreateUserRequest {{ string password = 1; }}
    message UpdateUserRequest {{ string id = 1; }}
    message BatchCreateUsersRequest {{ string note = 1; }}
    message WatchUsersRequest {{ string role = 1; }}
    message Ticket {{ string code = 1; }}
"""

# A tiny stand-in: only the full name google.longrunning.Operation matters.
OPERATIONS = """\
    syntax = "proto3";
    package google.longrunning;
    message Operation { string name = 1; bool done = 2; }
"""


@pytest.mark.parametrize(
    ("rpc", "reason"),
    [
        (
            "rpc GetUser(GetUserRequest) returns (GetUserResponse);",
            "its response GetUserResponse is neither a User nor a message holding one (a `user` field)",
        ),
        (
            "rpc GetUser(GetByEmailRequest) returns (User);",
            "its request GetByEmailRequest has no field naming the User to get: "
            "a Get request carries `id` or `user_id` (a string)",
        ),
        (
            "rpc GetAccount(GetAccountRequest) returns (Account);",  # a string id for an int64 one
            "a Get request carries `id` or `account_id` (an integer)",
        ),
        (
            "rpc GetTicket(GetUserRequest) returns (Ticket);",
            "its resource message Ticket has no id field: a resource has `id`, `ticket_id` or `name`",
        ),
        (
            "rpc GetProfile(GetUserRequest) returns (User);",
            "there is no message named Profile: a Get is named after its resource message (GetBook for a message Book)",
        ),
        (
            "rpc ListTickets(google.protobuf.Empty) returns (stream User);",
            "its resource message Ticket has no id field",
        ),
        (
            "rpc ListProfiles(google.protobuf.Empty) returns (stream User);",
            "there is no message named Profile: a List is named after its resource message's plural",
        ),
        ("rpc GetUser(GetUserRequest) returns (stream User);", "a Get is unary, not server-streaming"),
        (
            "rpc ListUsers(ListUsersRequest) returns (stream User);",
            "its request ListUsersRequest has fields a List cannot apply (role)",
        ),
        (
            "rpc ListUsers(google.protobuf.Empty) returns (ListUsersResponse);",
            "its response ListUsersResponse has no repeated User field (`users`)",
        ),
        ("rpc ListUsers(stream google.protobuf.Empty) returns (stream User);", "a List is unary or server-streaming"),
        (
            "rpc CreateUser(CreateUserRequest) returns (User);",
            "its request CreateUserRequest carries no User: a Create request holds one (a `user` field) "
            "or has fields named and typed as User's",
        ),
        ("rpc UpdateUser(UpdateUserRequest) returns (User);", "its request UpdateUserRequest carries no new values"),
        ("rpc UpdateUser(User) returns (google.protobuf.Empty);", "its response Empty is neither a User"),
        (
            "rpc DeleteUser(google.protobuf.Empty) returns (google.protobuf.Empty);",
            "its request Empty has no field naming the User to delete",
        ),
        (
            "rpc DeleteUser(GetUserRequest) returns (google.longrunning.Operation);",
            "it answers with a google.longrunning.Operation, and protokit does not implement long-running operations",
        ),
        (
            "rpc BatchCreateUsers(stream User) returns (google.protobuf.Empty);",
            "its response Empty summarises nothing: a BatchCreate answers with the created users",
        ),
        (
            "rpc BatchCreateUsers(stream BatchCreateUsersRequest) returns (User);",
            "its request BatchCreateUsersRequest is not a create request: a BatchCreate streams CreateUser requests",
        ),
        ("rpc BatchCreateUsers(stream User) returns (stream User);", "a BatchCreate is client-streaming"),
        (
            "rpc WatchUsers(google.protobuf.Empty) returns (stream UserEvent);",
            "its response UserEvent is not a change event: a Watch streams messages with a type enum",
        ),
        ("rpc WatchUsers(google.protobuf.Empty) returns (User);", "a Watch is server-streaming or bidirectional"),
    ],
)
def test_standard_names_whose_messages_do_not_fit_are_stubs_with_a_reason(
    plans: Recognise, rpc: str, reason: str
) -> None:
    files = {"acme/v1/unfit.proto": UNFIT.format(rpc=rpc), "google/longrunning/operations.proto": OPERATIONS}
    service = one_service(files, plans)
    (method,) = service.methods
    assert (method.kind, method.shape) == ("stub", None)
    assert reason in method.reason
    assert service.resources == ()


def test_watch_with_filters_it_cannot_apply_is_a_stub(plans: Recognise) -> None:
    service = one_service(
        {
            "acme/v1/users.proto": """\
            syntax = "proto3";
            package acme.v1;
            service Users { rpc WatchUsers(WatchUsersRequest) returns (stream UserEvent); }
            message User { string id = 1; }
            message UserEvent {
              enum Kind { KIND_UNSPECIFIED = 0; KIND_ADDED = 1; KIND_REMOVED = 2; }
              Kind kind = 1;
              User user = 2;
            }
            message WatchUsersRequest { repeated string ids = 1; string role = 2; }
            """
        },
        plans,
    )
    assert service.methods[0].reason == (
        "its request WatchUsersRequest has fields a Watch cannot apply (role): a Watch request may filter by "
        "ids (`user_ids`), event types (a repeated Kind) and `filter`"
    )


# --- input -----------------------------------------------------------------------------------------


def test_input_must_be_a_whole_image() -> None:
    file = descriptor_pb2.FileDescriptorProto(name="a.proto", package="a", dependency=["b.proto"])
    with pytest.raises(ResourceModelError, match=r"a\.proto imports b\.proto, which is not among the compiled files"):
        recognise([file], ["a.proto"])
    with pytest.raises(ResourceModelError, match=r"c\.proto is not among the compiled files"):
        recognise([file], ["c.proto"])


def test_only_the_target_files_services_are_planned(plans: Recognise) -> None:
    """An imported file's service is in the image but not scaffolded; its messages still serve as resources."""
    services = plans(
        {
            "acme/v1/a.proto": """\
            syntax = "proto3";
            package acme.v1;
            import "acme/v1/b.proto";
            service A { rpc GetThing(GetThingRequest) returns (Thing); }
            """,
            "acme/v1/b.proto": """\
            syntax = "proto3";
            package acme.v1;
            service B { rpc GetThing(GetThingRequest) returns (Thing); }
            message Thing { string id = 1; }
            message GetThingRequest { string id = 1; }
            """,
        },
        targets=["acme/v1/a.proto"],
    )
    assert [(s.full_name, s.implemented[0].resource and s.implemented[0].resource.message.file) for s in services] == [
        ("acme.v1.A", "acme/v1/b.proto")
    ]
