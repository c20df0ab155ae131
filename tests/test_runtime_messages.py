"""protokit.runtime.messages: copy_fields, apply_mask, set_fields, resource_name and compile_filter on real
protobuf messages: the repository's generated `user.v1` messages, and a `Shape` message with every kind of
field built from descriptors at import time (no code generation needed). No mocks.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from conftest import REPO

sys.path.insert(0, str(REPO / "generated"))

from user.v1.user_service_pb2 import CreateUserRequest, UpdateUserRequest, User, UserProfile, UserRole

from protokit.runtime import InvalidArgument
from protokit.runtime.messages import apply_mask, compile_filter, copy_fields, resource_name, set_fields
from protokit.runtime.store import SqliteRepository

FD = descriptor_pb2.FieldDescriptorProto
TIMESTAMP = ".google.protobuf.Timestamp"


def _message_types() -> tuple[type[Message], type[Message], type[Message]]:
    """protokit_test.Shape (scalars, enum, nested and repeated messages, maps, a proto3 optional, a oneof,
    timestamps, bytes), its Address, and Other (like-named fields of other types)."""
    default = descriptor_pool.Default()
    pool = descriptor_pool.DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    default.FindFileByName("google/protobuf/timestamp.proto").CopyToProto(timestamp)
    pool.Add(timestamp)

    proto = descriptor_pb2.FileDescriptorProto(
        name="protokit_test/shapes.proto",
        package="protokit_test",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    color = proto.enum_type.add(name="Color")
    for number, name in enumerate(["COLOR_UNSPECIFIED", "RED", "GREEN"]):
        color.value.add(name=name, number=number)
    address = proto.message_type.add(name="Address")
    address.field.add(name="city", number=1, type=FD.TYPE_STRING)
    address.field.add(name="street", number=2, type=FD.TYPE_STRING)
    address.field.add(name="since", number=3, type=FD.TYPE_MESSAGE, type_name=TIMESTAMP)

    shape = proto.message_type.add(name="Shape")
    for name, value_type in (("LabelsEntry", FD.TYPE_STRING), ("SitesEntry", FD.TYPE_MESSAGE)):
        entry = shape.nested_type.add(name=name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=FD.TYPE_STRING)
        value = entry.field.add(name="value", number=2, type=value_type)
        if value_type == FD.TYPE_MESSAGE:
            value.type_name = ".protokit_test.Address"
    repeated = FD.LABEL_REPEATED
    add = shape.field.add
    add(name="id", number=1, type=FD.TYPE_STRING)
    add(name="name", number=2, type=FD.TYPE_STRING)
    add(name="size", number=3, type=FD.TYPE_INT32)
    add(name="big", number=4, type=FD.TYPE_UINT64)
    add(name="weight", number=5, type=FD.TYPE_DOUBLE)
    add(name="active", number=6, type=FD.TYPE_BOOL)
    add(name="color", number=7, type=FD.TYPE_ENUM, type_name=".protokit_test.Color")
    add(name="address", number=8, type=FD.TYPE_MESSAGE, type_name=".protokit_test.Address")
    add(name="tags", number=9, type=FD.TYPE_STRING, label=repeated)
    add(name="labels", number=10, type=FD.TYPE_MESSAGE, type_name=".protokit_test.Shape.LabelsEntry", label=repeated)
    add(name="places", number=11, type=FD.TYPE_MESSAGE, type_name=".protokit_test.Address", label=repeated)
    add(name="sites", number=12, type=FD.TYPE_MESSAGE, type_name=".protokit_test.Shape.SitesEntry", label=repeated)
    add(name="create_time", number=13, type=FD.TYPE_MESSAGE, type_name=TIMESTAMP)
    shape.oneof_decl.add(name="choice")
    shape.oneof_decl.add(name="_nickname")  # proto3 `optional string nickname`: a synthetic oneof, declared last
    add(name="nickname", number=14, type=FD.TYPE_STRING, oneof_index=1, proto3_optional=True)
    add(name="text", number=15, type=FD.TYPE_STRING, oneof_index=0)
    add(name="number", number=16, type=FD.TYPE_INT64, oneof_index=0)
    add(name="blob", number=17, type=FD.TYPE_BYTES)
    add(name="colors", number=18, type=FD.TYPE_ENUM, type_name=".protokit_test.Color", label=repeated)
    add(name="scores", number=19, type=FD.TYPE_INT64, label=repeated)
    add(name="update_time", number=20, type=FD.TYPE_MESSAGE, type_name=TIMESTAMP)

    other = proto.message_type.add(name="Other")
    other.field.add(name="name", number=1, type=FD.TYPE_STRING)
    other.field.add(name="size", number=2, type=FD.TYPE_INT64)  # Shape.size is int32
    other.field.add(name="tags", number=3, type=FD.TYPE_STRING)  # Shape.tags is repeated
    pool.Add(proto)
    return tuple(  # type: ignore[return-value]
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"protokit_test.{name}"))
        for name in ("Shape", "Address", "Other")
    )


Shape, Address, Other = _message_types()


def full_shape() -> Any:
    shape = Shape(
        id="s1",
        name="square",
        size=4,
        big=2**64 - 1,
        weight=2.5,
        active=True,
        color="RED",
        address=Address(city="Paris", street="Rue de Rivoli"),
        tags=["a", "b"],
        labels={"env": "prod"},
        places=[Address(city="Lyon")],
        sites={"hq": Address(city="Paris")},
        nickname="sq",
        text="hello",
        blob=b"\x00",
        colors=["RED", "GREEN"],
        scores=[3, 5],
    )
    shape.create_time.FromJsonString("2024-01-01T00:00:00Z")
    shape.address.since.FromJsonString("2020-06-01T00:00:00Z")
    return shape


def clone(message: Any) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


# --- copy_fields -----------------------------------------------------------------------------------------


def test_copy_fields_copies_only_what_the_source_sets() -> None:
    target = full_shape()
    source = Shape(name="circle", tags=["x"], address=Address(city="Rome"), nickname="", number=7)
    copy_fields(source, target, ["name", "size", "tags", "labels", "address", "nickname", "number", "sites"])
    assert target.name == "circle"
    assert list(target.tags) == ["x"]  # replaced, not appended to
    assert target.address == Address(city="Rome")  # the whole message, not merged into the old one
    assert target.HasField("nickname") and target.nickname == ""  # present though empty: set
    assert target.WhichOneof("choice") == "number" and target.number == 7  # the oneof switched member
    # Not set by the source: left as they were.
    assert target.size == 4 and dict(target.labels) == {"env": "prod"} and list(target.sites) == ["hq"]
    source.address.city = "Milan"
    source.tags.append("y")
    assert target.address.city == "Rome" and list(target.tags) == ["x"]  # copies, not shared


def test_copy_fields_without_only_set_clears_what_the_source_does_not_set() -> None:
    target = full_shape()
    source = Shape(name="circle", sites={"b": Address(city="Oslo")}, places=[Address(street="x")])
    names = ["name", "size", "tags", "labels", "address", "nickname", "sites", "places", "create_time", "text"]
    copy_fields(source, target, names, only_set=False)
    assert target.name == "circle" and target.size == 0
    assert list(target.tags) == [] and dict(target.labels) == {}
    assert not target.HasField("address") and not target.HasField("nickname") and not target.HasField("create_time")
    assert dict(target.sites) == {"b": Address(city="Oslo")} and list(target.places) == [Address(street="x")]
    assert target.WhichOneof("choice") is None  # source sets no text: cleared
    assert target.big == 2**64 - 1 and target.color == 1  # not named: untouched


def test_copy_fields_between_types_and_misuse() -> None:
    request = CreateUserRequest(
        username="ada", email="ada@example.com", role=UserRole.USER_ROLE_ADMIN, profile=UserProfile(bio="hi")
    )
    user = User(id="u1")
    copy_fields(request, user, ["username", "email", "role", "profile"])
    assert user == User(id="u1", username="ada", email="ada@example.com", role=3, profile=UserProfile(bio="hi"))

    target = full_shape()
    with pytest.raises(ValueError, match=re.escape("protokit_test.Shape has no field 'nope'")):
        copy_fields(Shape(name="x"), target, ["name", "nope"])
    with pytest.raises(ValueError, match=re.escape("user.v1.CreateUserRequest has no field 'id'")):
        copy_fields(request, user, ["id"])
    with pytest.raises(TypeError, match="different types"):
        copy_fields(Other(size=1), Shape(), ["size"])  # int64 into int32
    with pytest.raises(TypeError, match="different types"):
        copy_fields(Other(tags="a"), Shape(), ["tags"])  # singular into repeated
    with pytest.raises(TypeError, match="different types"):
        copy_fields(Shape(), Other(), ["name", "tags"])
    assert target == full_shape()  # every name is checked before anything is copied


def test_set_fields() -> None:
    shape = Shape(name="a", size=0, nickname="", tags=["x"], address=Address(), labels={})
    assert set_fields(shape) == ["name", "address", "tags", "nickname"]  # field-number order
    assert set_fields(Shape()) == [] and set_fields(User(role=0, username="")) == []
    assert set_fields(UpdateUserRequest(id="u", role=0)) == ["id", "role"]  # proto3 optional: present at zero


# --- apply_mask ------------------------------------------------------------------------------------------


def test_apply_mask_replaces_named_fields_and_clears_unset_ones() -> None:
    target = full_shape()
    source = Shape(name="circle", address=Address(city="Rome", street="Via Appia"), tags=["z"], sites={})
    apply_mask(source, target, ["name", "address.city", "size", "nickname", "tags", "labels", "sites", "places"])
    assert target.name == "circle" and target.size == 0  # size: not set in source, so cleared
    assert target.address.city == "Rome" and target.address.street == "Rue de Rivoli"  # only the named leaf
    assert not target.HasField("nickname")
    assert list(target.tags) == ["z"] and dict(target.labels) == {} and dict(target.sites) == {}
    assert list(target.places) == []
    assert target.weight == 2.5 and target.text == "hello"  # not in the mask

    # A leaf whose parent the source does not set: cleared in the target, whose parent stays.
    apply_mask(Shape(), target, ["address.city"])
    assert target.HasField("address") and target.address.city == "" and target.address.street == "Rue de Rivoli"
    # Nothing to clear where the target has no parent either: the parent is not created.
    bare = Shape(name="n")
    apply_mask(Shape(), bare, ["address.city", "address.since"])
    assert not bare.HasField("address")
    apply_mask(Shape(address=Address(city="Nice")), bare, ["address.city"])
    assert bare.address == Address(city="Nice")

    apply_mask(Shape(), target, ["address"])
    assert not target.HasField("address")
    unchanged = full_shape()
    apply_mask(Shape(name="ignored"), unchanged, [])
    assert unchanged == full_shape()  # no paths: nothing changes


def test_apply_mask_star_is_a_full_replacement_except_immutable_fields() -> None:
    target = full_shape()
    source = Shape(id="forged", name="circle", color="GREEN", address=Address(city="Rome"))
    source.create_time.FromSeconds(5)
    apply_mask(source, target, ["*"], immutable=("id", "create_time", "address.since"))
    expected = clone(source)
    expected.id = "s1"
    expected.create_time.FromJsonString("2024-01-01T00:00:00Z")
    expected.address.since.FromJsonString("2020-06-01T00:00:00Z")  # inside a replaced field: kept
    assert target == expected

    # A nested immutable field keeps its value when its parent is replaced or cleared.
    target = full_shape()
    apply_mask(Shape(address=Address(city="Rome")), target, ["address"], immutable=["address.since"])
    assert target.address.city == "Rome" and target.address.street == ""
    assert target.address.since.ToJsonString() == "2020-06-01T00:00:00Z"


def test_apply_mask_between_request_and_resource() -> None:
    # UpdateUserRequest carries the fields itself (proto3 optional), not a nested User.
    profile = UserProfile(bio="x", display_name="A")
    stored = User(id="u1", username="ada", email="ada@example.com", role=2, profile=profile)
    request = UpdateUserRequest(id="u1", username="ada_l", profile=UserProfile(bio="new"))
    apply_mask(request, stored, ["username", "email", "profile.bio"], immutable=["id"])
    assert stored == User(id="u1", username="ada_l", role=2, profile=UserProfile(bio="new", display_name="A"))
    apply_mask(UpdateUserRequest(id="other", role=3), stored, ["*"], immutable=["id", "create_time"])
    assert stored == User(id="u1", role=3)  # every field both have: username, email, role, profile
    with pytest.raises(InvalidArgument, match=re.escape("user.v1.User has no field 'update_mask'")):
        apply_mask(request, stored, ["update_mask"])


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["nope"], "update_mask: path 'nope': protokit_test.Shape has no field 'nope'"),
        (["name", "address.nope"], "path 'address.nope': protokit_test.Address has no field 'nope'"),
        (["name.first"], "path 'name.first': 'name' is not a message: a path cannot go inside it"),
        (["tags.x"], "path 'tags.x': 'tags' is repeated: a path cannot go inside it"),
        (["labels.env"], "path 'labels.env': 'labels' is a map: a path cannot go inside it"),
        ([""], "update_mask: invalid path ''"),
        (["address..city"], "update_mask: invalid path 'address..city'"),
        (["address."], "update_mask: invalid path 'address.'"),
        (["id"], "update_mask: 'id' cannot be changed ('id' is immutable)"),
        (["create_time.seconds"], "'create_time.seconds' cannot be changed ('create_time' is immutable)"),
        (["name", "*"], 'update_mask: "*" must be the only path'),
    ],
)
def test_apply_mask_rejects_bad_paths_before_changing_anything(paths: list[str], message: str) -> None:
    target = full_shape()
    with pytest.raises(InvalidArgument, match=re.escape(message)) as raised:
        apply_mask(Shape(name="changed", size=1), target, paths, immutable=["id", "create_time"])
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert target == full_shape()


def test_apply_mask_misuse_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=re.escape("immutable field 'uid' is not a field path of protokit_test.Shape")):
        apply_mask(Shape(), Shape(), ["name"], immutable=["uid"])
    with pytest.raises(ValueError, match=re.escape("immutable field 'address..city'")):
        apply_mask(Shape(), Shape(), ["name"], immutable=["address..city"])
    with pytest.raises(TypeError, match="different types"):
        apply_mask(Other(), Shape(), ["size"])


# --- resource_name ---------------------------------------------------------------------------------------


def test_resource_name() -> None:
    assert resource_name("books", "publishers/123", "les-miserables") == "publishers/123/books/les-miserables"
    assert resource_name("publishers", id="123") == "publishers/123"
    generated = resource_name("books", parent="publishers/1")
    prefix, _, id = generated.rpartition("/")
    assert prefix == "publishers/1/books" and str(uuid.UUID(id)) == id  # the canonical dashed uuid4
    assert resource_name("books") != resource_name("books")
    with pytest.raises(InvalidArgument, match="invalid id 'a/b': an id must not contain '/'"):
        resource_name("books", id="a/b")


# --- compile_filter --------------------------------------------------------------------------------------


def matches(expression: str, message: Any, message_type: type[Message] | None = None) -> bool:
    return compile_filter(expression, message_type or type(message))(message)


def test_filter_empty_matches_everything() -> None:
    for blank in ("", "   ", "\n\t"):
        assert matches(blank, Shape()) and matches(blank, full_shape())


def test_filter_comparisons_by_field_type() -> None:
    shape = full_shape()
    true = [
        'name = "square"',
        "name = 'square'",
        "name = square",  # a bare word is a string too
        'name != "circle"',
        'name > "sq" AND name < "sz"',
        'name >= "square" name <= "square"',
        "size = 4",
        "size > -5",
        "size >= 4 AND size <= +4",
        f"big = {2**64 - 1}",
        "weight = 2.5",
        "weight > 2",
        "weight < 2.6e0",
        "active = true",
        "active != false",
        "color = RED",
        'color = "RED"',
        "color != GREEN",
        'create_time = "2024-01-01T00:00:00Z"',
        'create_time > "2023-12-31T23:59:59.999Z"',
        'create_time < "2024-01-01T01:00:01+01:00"',  # an offset: the same instant plus a second
        'address.city = "Paris"',
        'address.since < "2021-01-01T00:00:00Z"',
        "nickname = sq",
        "text = hello",
        "number = 0",  # the other member of the oneof reads as its default
    ]
    false = ["name = circle", "size < 4", "big < 1", "active = false", "color = GREEN", "address.city = Rome"]
    for expression in true:
        assert matches(expression, shape), expression
    for expression in false:
        assert not matches(expression, shape), expression
    assert matches('name = "say \\"hi\\"\\n"', Shape(name='say "hi"\n'))  # escapes in strings
    assert matches("name = 'it\\'s'", Shape(name="it's"))
    assert matches('name = "a b(c) = d"', Shape(name="a b(c) = d"))
    # An unset message reads as an empty one.
    assert matches('address.city = ""', Shape()) and matches('create_time < "1970-01-01T00:00:01Z"', Shape())


def test_filter_has_operator() -> None:
    shape = full_shape()
    assert matches("tags:a", shape) and not matches("tags:c", shape)
    assert matches("colors:GREEN", shape) and matches("scores:5", shape) and not matches("scores:4", shape)
    assert matches("labels:env", shape) and not matches("labels:prod", shape)  # a map: has the key
    assert matches("sites:hq", shape)
    assert matches("name:square", shape) and not matches("name:squ", shape)  # other fields: equality
    assert matches("size:4", shape) and matches("color:RED", shape)
    # `:*`: the field is set.
    for field in ("name", "size", "address", "address.city", "tags", "labels", "nickname", "create_time", "text"):
        assert matches(f"{field}:*", shape), field
        assert not matches(f"{field}:*", Shape()), field
    assert matches("nickname:*", Shape(nickname=""))  # present though empty
    assert not matches("address.city:*", Shape(address=Address(street="x")))
    assert matches("-tags:*", Shape())


def test_filter_logic_and_precedence() -> None:
    small_red = Shape(size=1, color="RED", name="a")
    big_green = Shape(size=9, color="GREEN", name="b")
    cases = {
        "size < 5 AND color = RED": (True, False),
        "size < 5 color = RED": (True, False),  # juxtaposition is AND
        "size < 5 OR color = GREEN": (True, True),
        "NOT size < 5": (False, True),
        "-size < 5": (False, True),
        "- size < 5": (False, True),
        "-(size < 5 OR color = GREEN)": (False, False),
        "NOT (name = a)": (False, True),
        # OR binds tighter than AND and juxtaposition (AIP-160).
        "name = b size = 1 OR color = GREEN": (False, True),
        "name = a AND size = 9 OR color = RED": (True, False),
        "(name = a AND size = 9) OR color = GREEN": (False, True),
        "((size = 1))": (True, False),
        "(" * 50 + "size = 1" + ")" * 50: (True, False),
        "size=1 OR size=9 OR size=5": (True, True),
    }
    for expression, expected in cases.items():
        assert (matches(expression, small_red), matches(expression, big_green)) == expected, expression


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('nme = "x"', "at position 1: unknown field 'nme'"),
        ("size = 1 AND addresss.city = x", "at position 14: unknown field 'addresss.city'"),
        (
            "address.cty = x",
            "at position 9: unknown field 'address.cty' (protokit_test.Address has no field 'cty')",
        ),
        ("name.first = x", "at position 6: invalid field 'name.first': 'name' is not a message field"),
        ("tags.x = 1", "at position 6: invalid field 'tags.x'"),
        ('size = "big"', "at position 8: field 'size' expects an integer, got the string 'big'"),
        ("size = 1.5", "at position 8: field 'size' expects an integer, got '1.5'"),
        ("weight > heavy", "at position 10: field 'weight' expects a number, got 'heavy'"),
        ("active = yes", "at position 10: field 'active' expects true or false, got 'yes'"),
        ("color = BLUE", "at position 9: field 'color' expects one of COLOR_UNSPECIFIED, RED, GREEN, got 'BLUE'"),
        ('create_time > "yesterday"', "at position 15: field 'create_time' expects an RFC 3339 time"),
        ("create_time > 2024-01-01", "at position 15: field 'create_time' expects an RFC 3339 time"),
        ("active < true", "at position 8: '<' does not apply to field 'active' (use = or !=)"),
        ("color >= RED", "at position 7: '>=' does not apply to field 'color'"),
        ("tags = a", "at position 6: field 'tags' is repeated: use ':'"),
        ("labels = a", "at position 8: field 'labels' is a map: use ':'"),
        ("address = x", "at position 11: field 'address' is a message: compare one of its fields"),
        ('blob = "x"', "at position 8: field 'blob' is bytes, which filters do not support"),
        ("size 1", "at position 6: expected a comparator (= != < <= > >= :) after 'size'"),
        ("size", "at position 5: expected a comparator"),
        ("size =", "at position 7: expected a value after '='"),
        ("size = )", "at position 8: expected a value after '='"),
        ("size = 1 AND", "at position 13: expected a field name, got 'end of filter'"),
        ("OR size = 1", "at position 1: expected a field name, got 'OR'"),
        ('"size" = 1', "at position 1: expected a field name, got 'size'"),
        ("()", "at position 2: expected a field name, got ')'"),
        ("(size = 1", "at position 10: expected ')' to close the '(' at position 1"),
        ("size = 1)", "at position 9: unexpected ')'"),
        ('name = "abc', "at position 8: unterminated string"),
        ("size ! 1", "at position 6: unexpected character '!'"),
        ("size = 1 & size = 2", "at position 10: unknown field '&'"),
        ("(" * 51 + "size = 1" + ")" * 51, "at position 51: parentheses nested deeper than 50"),
    ],
)
def test_filter_errors_name_the_problem_and_position(expression: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match="^" + re.escape("invalid filter " + message)) as raised:
        compile_filter(expression, Shape)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_filter_on_generated_messages_selects_stored_items(tmp_path: Path) -> None:
    async def main() -> None:
        with SqliteRepository(User, tmp_path / "users.db", create_time_field="create_time") as users:
            for i in range(12):
                await users.create(User(username=f"user{i}", role=i % 4, profile=UserProfile(bio=f"b{i % 2}")))
            where = compile_filter('role = USER_ROLE_ADMIN OR profile.bio = "b0" -username = user0', User)
            page, token = await users.list(3, where=where)
            rest, end = await users.list(3, token, where=where)
            assert [u.username for u in page + rest] == ["user2", "user3", "user4", "user6", "user7", "user8"]
            assert end
            last, end = await users.list(3, end, where=where)
            assert [u.username for u in last] == ["user10", "user11"] and end == ""
            recent = compile_filter('create_time > "2000-01-01T00:00:00Z"', User)
            assert len((await users.list(100, where=recent))[0]) == 12

    asyncio.run(main())
