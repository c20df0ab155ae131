"""protokit.runtime.examples: example(), invalid() and has_constraints() checked with protovalidate itself.

Messages: the repository's generated `user.v1` messages, and message types with buf.validate rules of every
kind built from descriptors at import time (in their own descriptor pool; no code generation needed).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

import protovalidate
import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    field_mask_pb2,
    json_format,
    message_factory,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.message import Message

from conftest import REPO

sys.path.insert(0, str(REPO / "generated"))

from user.v1 import user_service_pb2 as pb

from protokit.runtime.examples import UUID, example, has_constraints, invalid
from protokit.runtime.store import SqliteRepository

FD = descriptor_pb2.FieldDescriptorProto
VALIDATE = "buf/validate/validate.proto"
DEFAULT = descriptor_pool.Default()  # holds buf/validate/validate.proto: user_service_pb2 imported it
FIELD = DEFAULT.FindExtensionByName("buf.validate.field")
ONEOF = DEFAULT.FindExtensionByName("buf.validate.oneof")
MESSAGE = DEFAULT.FindExtensionByName("buf.validate.message")
TYPES = {
    "string": FD.TYPE_STRING,
    "bytes": FD.TYPE_BYTES,
    "bool": FD.TYPE_BOOL,
    "int32": FD.TYPE_INT32,
    "int64": FD.TYPE_INT64,
    "uint32": FD.TYPE_UINT32,
    "double": FD.TYPE_DOUBLE,
}


class Proto:
    """A proto3 file of test messages, written field by field, with buf.validate rules as JSON-like dicts."""

    def __init__(self, name: str) -> None:
        self.file = descriptor_pb2.FileDescriptorProto(
            name=f"protokit_test/{name}.proto",
            package="protokit_test",
            syntax="proto3",
            dependency=[
                VALIDATE,
                "google/protobuf/timestamp.proto",
                "google/protobuf/duration.proto",
                "google/protobuf/wrappers.proto",
            ],
        )

    def message(self, name: str, rules: dict[str, Any] | None = None) -> Any:
        message = self.file.message_type.add(name=name)
        if rules:
            json_format.ParseDict(rules, message.options.Extensions[MESSAGE])
        return message

    def field(
        self,
        message: Any,
        name: str,
        kind: str,
        rules: dict[str, Any] | None = None,
        *,
        repeated: bool = False,
        oneof: int | None = None,
        optional: bool = False,
    ) -> None:
        field = message.field.add(name=name, number=len(message.field) + 1)
        if kind in TYPES:
            field.type = TYPES[kind]
        else:  # a message or enum type, by full name
            field.type = FD.TYPE_ENUM if kind == "protokit_test.Color" else FD.TYPE_MESSAGE
            field.type_name = "." + kind
        if repeated:
            field.label = FD.LABEL_REPEATED
        if optional:  # proto3 `optional`: a synthetic oneof of its own, declared after the real ones
            message.oneof_decl.add(name="_" + name)
            oneof = len(message.oneof_decl) - 1
            field.proto3_optional = True
        if oneof is not None:
            field.oneof_index = oneof
        if rules is not None:
            json_format.ParseDict(rules, field.options.Extensions[FIELD])

    def map(self, message: Any, name: str, key: str, value: str, rules: dict[str, Any] | None = None) -> None:
        entry = message.nested_type.add(name=name.title().replace("_", "") + "Entry")
        entry.options.map_entry = True
        self.field(entry, "key", key)
        self.field(entry, "value", value)
        self.field(message, name, f"protokit_test.{message.name}.{entry.name}", rules, repeated=True)

    def build(self) -> dict[str, type[Message]]:
        pool = descriptor_pool.DescriptorPool()
        wkts = (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2, wrappers_pb2)
        for dependency in (*(module.DESCRIPTOR for module in wkts), DEFAULT.FindFileByName(VALIDATE)):
            proto = descriptor_pb2.FileDescriptorProto()
            dependency.CopyToProto(proto)
            pool.Add(proto)
        pool.Add(self.file)
        return {
            m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"protokit_test.{m.name}"))
            for m in self.file.message_type
        }


def _message_types() -> dict[str, type[Message]]:
    proto = Proto("rules")
    color = proto.file.enum_type.add(name="Color")
    for number, name in enumerate(["COLOR_UNSPECIFIED", "RED", "GREEN"]):
        color.value.add(name=name, number=number)

    address = proto.message("Address")
    proto.field(address, "city", "string", {"string": {"min_len": 2}})
    proto.field(address, "postal_code", "string", {"string": {"len": 5}})

    # Every kind of field rule `example` must satisfy.
    rules = proto.message("Rules", {"oneof": [{"fields": ["alpha", "beta"], "required": True}]})
    field = proto.field
    field(rules, "code", "string", {"string": {"prefix": "ab-", "suffix": "-z", "min_len": 8, "max_len": 12}})
    field(rules, "size_name", "string", {"string": {"in": ["small", "large"]}})
    field(rules, "server", "string", {"string": {"hostname": True}})
    field(rules, "gateway", "string", {"string": {"ip": True}})
    field(rules, "fixed", "string", {"string": {"const": "fixed"}})
    field(rules, "homepage_url", "string", {"string": {"uri": True}})
    field(rules, "slogan", "string", {"string": {"example": ["Just do it"], "max_len": 20}})
    field(rules, "count", "int32", {"int32": {"gt": 5, "lt": 10}})
    field(rules, "level", "int64", {"int64": {"const": 42}})
    field(rules, "port", "uint32", {"uint32": {"in": [8080, 443]}})
    field(rules, "ratio", "double", {"double": {"gt": 0, "lt": 1}})
    field(rules, "weight", "double", {"double": {"finite": True}})
    field(rules, "color", "protokit_test.Color", {"enum": {"defined_only": True, "not_in": [0, 1]}})
    field(rules, "shade", "protokit_test.Color", {"enum": {"in": [2]}})
    field(rules, "flag", "bool", {"bool": {"const": True}})
    field(rules, "plain_flag", "bool")
    field(rules, "secret", "bytes", {"bytes": {"min_len": 4, "max_len": 8}})
    field(rules, "addr", "bytes", {"bytes": {"ip": True}})
    field(
        rules,
        "tags",
        "string",
        {"repeated": {"min_items": 2, "unique": True, "items": {"string": {"min_len": 3}}}},
        repeated=True,
    )
    field(
        rules,
        "member_ids",
        "string",
        {"repeated": {"min_items": 3, "unique": True, "items": {"string": {"uuid": True}}}},
        repeated=True,
    )
    field(rules, "scores", "int32", {"required": True}, repeated=True)
    field(rules, "places", "protokit_test.Address", {"repeated": {"min_items": 1}}, repeated=True)
    proto.map(
        rules,
        "weights",
        "string",
        "int32",
        {"map": {"min_pairs": 2, "keys": {"string": {"min_len": 2}}, "values": {"int32": {"gte": 10}}}},
    )
    field(rules, "address", "protokit_test.Address", {"required": True})
    field(rules, "optional_address", "protokit_test.Address")
    field(rules, "start_time", "google.protobuf.Timestamp", {"required": True, "timestamp": {"gt_now": True}})
    field(
        rules,
        "birth_time",
        "google.protobuf.Timestamp",
        {"required": True, "timestamp": {"lt": "2030-01-01T00:00:00Z"}},
    )
    field(rules, "ttl", "google.protobuf.Duration", {"required": True, "duration": {"gt": "3600s"}})
    field(rules, "nickname", "google.protobuf.StringValue", {"required": True, "string": {"min_len": 5}})
    field(rules, "page_token", "string", {"string": {"max_len": 10}})
    field(rules, "page_size", "int32", {"int32": {"gte": 0}})
    field(rules, "validate_only", "bool")
    field(rules, "ignored", "string", {"ignore": "IGNORE_ALWAYS", "string": {"min_len": 100}})
    field(rules, "alpha", "string", {"string": {"min_len": 1}})
    field(rules, "beta", "string", {"string": {"min_len": 1}})
    rules.oneof_decl.add(name="choice").options.Extensions[ONEOF].required = True
    field(rules, "email_choice", "string", {"string": {"email": True}}, oneof=0)
    field(rules, "number_choice", "int32", oneof=0)
    rules.oneof_decl.add(name="maybe")
    field(rules, "maybe_a", "string", oneof=1)
    field(rules, "maybe_b", "int32", oneof=1)
    field(rules, "display", "string", {"string": {"min_len": 2}}, optional=True)

    impossible = proto.message("Impossible")  # no candidate matches the pattern
    field(impossible, "code", "string", {"string": {"pattern": "^[0-9]{3}$"}})

    cel = proto.message("Cel", {"cel": [{"id": "differ", "expression": "this.a != this.b", "message": "a == b"}]})
    field(cel, "a", "string")
    field(cel, "b", "string")

    either = proto.message("Either", {"oneof": [{"fields": ["a", "b"]}]})  # at most one
    field(either, "a", "string")
    field(either, "b", "string")

    loop = proto.message("Loop")  # requires itself: no finite example
    field(loop, "next", "protokit_test.Loop", {"required": True})
    tree = proto.message("Tree")  # recursive, but the recursion is optional
    field(tree, "child", "protokit_test.Tree")
    field(tree, "label", "string", {"string": {"min_len": 1}})
    wrapper = proto.message("Wrapper")  # rules only inside a nested message
    field(wrapper, "address", "protokit_test.Address")
    field(wrapper, "addresses", "protokit_test.Address", repeated=True)
    plain = proto.message("Plain")
    field(plain, "name", "string")
    field(plain, "tree", "protokit_test.Plain")
    never = proto.message("Never")
    field(never, "name", "string", {"ignore": "IGNORE_ALWAYS", "string": {"min_len": 3}})
    field(never, "address", "protokit_test.Address", {"ignore": "IGNORE_ALWAYS"})
    # One rule each, none of which an empty field breaks: invalid() must find the change that does.
    field(proto.message("DeepUnique"), "tags", "string", {"repeated": {"unique": True}}, repeated=True)
    field(
        proto.message("DeepItems"), "ids", "string", {"repeated": {"items": {"string": {"uuid": True}}}}, repeated=True
    )
    proto.map(proto.message("DeepKeys"), "labels", "string", "int32", {"map": {"keys": {"string": {"min_len": 2}}}})
    proto.map(proto.message("DeepValues"), "sizes", "string", "int32", {"map": {"values": {"int32": {"gt": 0}}}})
    field(proto.message("DeepTime"), "when", "google.protobuf.Timestamp", {"timestamp": {"lt_now": True}})
    field(proto.message("DeepWrapper"), "n", "google.protobuf.Int32Value", {"int32": {"gt": 5}})
    field(
        proto.message("DeepMax"),
        "ids",
        "string",
        {"repeated": {"max_items": 3, "items": {"string": {"uuid": True}}}},
        repeated=True,
    )
    guarded = proto.message("Guarded")
    guarded.oneof_decl.add(name="kind").options.Extensions[ONEOF].required = True
    field(guarded, "a", "string", oneof=0)
    return proto.build()


TYPES_BUILT = _message_types()
Rules, Impossible, Cel, Either = (TYPES_BUILT[n] for n in ("Rules", "Impossible", "Cel", "Either"))
Loop, Tree, Wrapper, Plain, Never, Guarded = (
    TYPES_BUILT[n] for n in ("Loop", "Tree", "Wrapper", "Plain", "Never", "Guarded")
)
Address = TYPES_BUILT["Address"]


def violations(message: Message) -> list[str]:
    return [
        f"{'.'.join(e.field_name for e in v.proto.field.elements) if v.proto.field else ''}: {v.proto.rule_id}"
        for v in protovalidate.collect_violations(message)
    ]


def value_of(message: Any, name: str) -> Any:
    """A field's value as a keyword argument of the message's constructor."""
    field = message.DESCRIPTOR.fields_by_name[name]
    value = getattr(message, name)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return dict(value)
    if field.is_repeated:
        return list(value)
    if field.message_type is not None and not message.HasField(name):
        return example(message_factory.GetMessageClass(field.message_type))
    return value


# --- example ---------------------------------------------------------------------------------------------


def test_example_of_generated_messages_passes_protovalidate() -> None:
    user = example(pb.User)
    protovalidate.validate(user)
    assert user == pb.User(id=UUID, username="ada_lovelace", email="ada@example.com", role=pb.USER_ROLE_VIEWER)
    assert not user.HasField("profile") and not user.HasField("create_time")  # optional messages stay empty

    request = example(pb.CreateUserRequest)
    protovalidate.validate(request)
    assert request.username == "ada_lovelace" and request.email == "ada@example.com"
    assert 12 <= len(request.password) <= 128
    assert request.HasField("profile")  # required: built as an example of its own
    assert request.profile.avatar_uri == "https://example.com/a"
    assert example(pb.CreateUserRequest) == request  # deterministic

    for message_type in (
        pb.UserProfile,
        pb.UserEvent,
        pb.GetUserRequest,
        pb.UpdateUserRequest,
        pb.DeleteUserRequest,
        pb.ListUsersRequest,
        pb.ListUsersResponse,
        pb.BatchCreateUsersRequest,
        pb.WatchUsersRequest,
        pb.WatchUsersResponse,
        pb.DeleteUserResponse,
    ):
        protovalidate.validate(example(message_type))
    # Request fields whose zero value asks for the default behaviour stay empty.
    assert example(pb.ListUsersRequest) == pb.ListUsersRequest()
    assert example(pb.UserEvent).type == pb.UserEvent.TYPE_CREATED  # required enum: the first non-zero value


def test_example_keeps_given_values() -> None:
    request = example(
        pb.CreateUserRequest, username="grace", profile={"display_name": "Grace"}, role=pb.USER_ROLE_ADMIN
    )
    protovalidate.validate(request)
    assert request.username == "grace" and request.role == pb.USER_ROLE_ADMIN
    assert request.profile == pb.UserProfile(display_name="Grace")  # as given: not filled in
    ids = ["00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"]
    watch = example(pb.WatchUsersRequest, user_ids=ids, event_types=[pb.UserEvent.TYPE_DELETED])
    assert list(watch.user_ids) == ids and list(watch.event_types) == [pb.UserEvent.TYPE_DELETED]
    response = example(pb.GetUserResponse, user=example(pb.User, username="grace"))
    assert response.user.username == "grace"

    with pytest.raises(ValueError, match=r"example user\.v1\.User does not pass its rules: email: .*email"):
        example(pb.User, email="not-an-email")
    with pytest.raises(ValueError, match="nope"):
        example(pb.User, nope=1)


def test_example_satisfies_every_kind_of_rule() -> None:
    before = time.time()
    message: Any = example(Rules)
    assert violations(message) == []
    assert message.code.startswith("ab-") and message.code.endswith("-z") and 8 <= len(message.code) <= 12
    assert message.size_name == "small"
    assert message.server == "example.com" and message.gateway == "192.0.2.1" and message.fixed == "fixed"
    assert message.homepage_url == "https://example.com/a"  # suggested by the name
    assert message.slogan == "Just do it"  # the rules' own example comes first
    assert message.count == 6 and message.level == 42 and message.port == 8080
    assert 0 < message.ratio < 1 and message.weight == 1.0
    assert message.color == 2 and message.shade == 2 and message.flag is True and message.plain_flag is False
    assert message.secret == b"example" and message.addr == bytes([192, 0, 2, 1])
    assert list(message.tags) == ["example", "ada_lovelace"]  # min_items distinct elements
    assert list(message.member_ids) == [UUID, UUID[:-1] + "2", UUID[:-1] + "3"]
    assert list(message.scores) == [1]  # required: one element
    assert len(message.places) == 1 and message.places[0] == Address(city="London", postal_code="examp")
    assert dict(message.weights) == {"example": 10, "ada_lovelace": 10}
    assert message.address.city and len(message.address.postal_code) == 5
    assert not message.HasField("optional_address")
    assert message.start_time.ToSeconds() > before  # gt_now
    assert message.birth_time.ToJsonString() == "2024-01-01T00:00:00Z"
    assert message.ttl.ToSeconds() > 3600
    assert len(message.nickname.value) >= 5  # a wrapper: the field's string rules apply to its value
    assert message.page_token == "" and message.page_size == 0 and not message.validate_only
    # A required oneof gets its first member that can be set; an optional oneof stays unset. The message's
    # oneof rule (alpha, beta, exactly one) gets alpha only.
    assert message.WhichOneof("choice") == "email_choice" and message.email_choice == "ada@example.com"
    assert message.WhichOneof("maybe") is None
    assert message.alpha and not message.beta
    assert message.HasField("display")  # proto3 optional: a plain field
    assert example(Rules).code == message.code  # deterministic


def test_example_raises_naming_what_cannot_be_satisfied() -> None:
    with pytest.raises(ValueError, match=r"no example value for protokit_test\.Impossible\.code satisfies its rules"):
        example(Impossible)
    assert example(Impossible, code="123").code == "123"  # the caller can supply what candidates cannot
    with pytest.raises(ValueError, match=re.escape("example protokit_test.Cel does not pass its rules: a == b")):
        example(Cel)  # a message-level rule the field-by-field filling cannot see
    assert violations(example(Cel, b="other")) == []
    with pytest.raises(ValueError, match="it requires itself"):
        example(Loop)
    assert violations(example(Tree)) == [] and not example(Tree).HasField("child")


# --- invalid ---------------------------------------------------------------------------------------------


def test_invalid_of_generated_messages_fails_protovalidate() -> None:
    for message_type in (pb.User, pb.CreateUserRequest, pb.GetUserRequest, pb.UpdateUserRequest, pb.UserEvent):
        broken = invalid(message_type)
        with pytest.raises(protovalidate.ValidationError):
            protovalidate.validate(broken)
    # One field changed: the first constrained one, unless it was given.
    assert violations(invalid(pb.CreateUserRequest)) == ["username: required"]
    broken = invalid(pb.CreateUserRequest, username="grace")
    assert broken.username == "grace" and violations(broken) == ["email: required"]
    assert violations(invalid(pb.ListUsersRequest)) == ["page_size: int32.gte_lte"]
    assert violations(invalid(pb.WatchUsersRequest)) == ["user_ids: repeated.max_items"]
    # Only a nested message has rules: it is set to an invalid one.
    assert violations(invalid(pb.GetUserResponse)) == ["user.id: string.uuid_empty"]
    assert violations(invalid(pb.ListUsersResponse)) == ["users.id: string.uuid_empty"]
    # When only given fields are constrained, one of them is broken.
    assert violations(invalid(pb.GetUserRequest, id=UUID)) == ["id: required"]


def test_invalid_breaks_every_kind_of_rule() -> None:
    broken: Any = invalid(Rules)
    assert violations(broken) == ["code: string.min_len", "code: string.prefix", "code: string.suffix"]
    assert broken.code == "" and broken.size_name == "small"  # the first constrained field; the rest as valid
    # Give each broken field, as valid, as a value: the next constrained field breaks, until none is left.
    valid: Any = example(Rules)
    given: dict[str, Any] = {}
    seen: list[str] = []
    while True:
        found = violations(invalid(Rules, **given))
        name = re.split(r"[.:\[]", found[0])[0]
        if name in Rules.DESCRIPTOR.oneofs_by_name:  # a required oneof, cleared: give the member set
            name = valid.WhichOneof(name)
        if name in given:
            break  # only given fields are left to break
        seen.append(found[0])
        if not name:
            break  # the message's oneof rule (alpha, beta: exactly one), after every field not given
        given[name] = value_of(valid, name)
    assert seen == [
        "code: string.min_len",
        "size_name: string.in",
        "server: string.hostname_empty",
        "gateway: string.ip_empty",
        "fixed: string.const",
        "homepage_url: string.uri_empty",
        "slogan: string.max_len",
        "count: int32.gt_lt",
        "level: int64.const",
        "port: uint32.in",
        "ratio: double.gt_lt",
        "weight: double.finite",
        "color: enum.not_in",
        "shade: enum.in",
        "flag: bool.const",
        "secret: bytes.min_len",
        "addr: bytes.ip_empty",
        "tags: repeated.min_items",
        "member_ids: repeated.min_items",
        "scores: required",
        "places: repeated.min_items",
        "weights: map.min_pairs",
        "address: required",
        "optional_address.city: string.min_len",  # not set in the example: set to an invalid Address
        "start_time: required",
        "birth_time: required",
        "ttl: required",
        "nickname: required",
        "page_token: string.max_len",
        "page_size: int32.gte",
        "choice: required",  # the required oneof, its member cleared
        "display: string.min_len",
        ": message.oneof",  # the message's oneof rule (alpha, beta), once no field is left
    ]

    deep = {
        "DeepUnique": ["tags: repeated.unique"],  # two equal valid elements
        "DeepItems": ["ids: string.uuid_empty"],  # an element breaking the item rules
        "DeepKeys": ["labels: string.min_len"],  # a key breaking the key rules
        "DeepValues": ["sizes: int32.gt"],
        "DeepTime": ["when: timestamp.lt_now"],
        "DeepWrapper": ["n: int32.gt"],  # the wrapped value
        "DeepMax": ["ids: repeated.max_items"],  # one valid element too many
    }
    for name, expected in deep.items():
        assert violations(example(TYPES_BUILT[name])) == []
        assert violations(invalid(TYPES_BUILT[name])) == expected, name
    assert list(invalid(TYPES_BUILT["DeepMax"]).ids) == [UUID[:-1] + str(i) for i in range(1, 5)]

    assert violations(invalid(Tree)) == ["label: string.min_len"]  # the recursive field is not broken forever
    assert violations(invalid(Wrapper)) == ["address.city: string.min_len"]
    assert violations(invalid(Guarded)) == ["kind: required"]
    assert violations(invalid(Either)) == [": message.oneof"]  # two of the fields set


def test_invalid_raises_when_nothing_can_be_broken() -> None:
    for message_type in (Plain, Never, pb.DeleteUserResponse):
        with pytest.raises(ValueError, match="has no field constraint that can be broken"):
            invalid(message_type)


# --- has_constraints -------------------------------------------------------------------------------------


def test_has_constraints() -> None:
    assert has_constraints(pb.User) and has_constraints(pb.GetUserRequest) and has_constraints(Rules)
    assert has_constraints(pb.GetUserResponse)  # through its User field
    assert has_constraints(pb.ListUsersResponse)  # through the repeated User elements
    assert has_constraints(Wrapper) and has_constraints(Tree) and has_constraints(Guarded)
    assert has_constraints(Cel) and has_constraints(Either)  # message rules only
    assert not has_constraints(Plain)  # recursive, no rules
    assert not has_constraints(Never)  # IGNORE_ALWAYS: nothing checked, not even the nested message
    assert not has_constraints(pb.DeleteUserResponse)


# --- with the store --------------------------------------------------------------------------------------


def test_examples_round_trip_through_the_store(tmp_path: Path) -> None:
    async def main() -> None:
        with SqliteRepository(pb.User, tmp_path / "users.db", create_time_field="create_time") as users:
            drafts = [example(pb.User), example(pb.User, username="grace", email="grace@example.com")]
            for draft in drafts:
                draft.ClearField("id")  # the store's to choose
            for user in await users.create_many(drafts):
                protovalidate.validate(user)  # a generated id passes the uuid rule
                protovalidate.validate(pb.GetUserRequest(id=user.id))

    asyncio.run(main())
