"""Recognising standard methods: which RPCs of a team's proto protokit can implement with working code.

`new service --from` turns existing protos into a working service. An RPC gets working code when it is
a standard method of a resource, in the shapes of AIP-131..135 (GetBookRequest{name} -> Book,
ListBooksRequest{parent, page_size, page_token} -> ListBooksResponse{books, next_page_token},
CreateBookRequest{parent, book}, UpdateBookRequest{book, update_mask}, DeleteBookRequest{name} -> Empty)
or of the usual UserService examples (requests carrying `id` or the resource's fields, responses that
are the resource or wrap it as `{user}`, a client-streamed BatchCreate answered with a summary, a Watch
stream of UserEvent{type, user}). Every other RPC is a stub whose reason says which shape would have
been recognised.

The RPC's name says what it claims to be (Get + the resource message's name, List + its plural, ...);
its messages decide whether it is: a name alone never makes code. Each kind is one `_Rule` (like buf's
rule registry) whose handler returns the shape the renderer needs, or a reason. Input is a protoc image
(the files to scaffold and all their imports); output is frozen data: no templates, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

# Imported before any descriptor's options are read, so (google.api.resource) parses as an extension.
from google.api import resource_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

from protokit.names import pluralize
from protokit.servicegen.model import python_module, snake_case

Kind = Literal["get", "create", "update", "delete", "list", "batch_create", "watch", "stub"]
FieldKind = Literal["scalar", "enum", "message", "map"]
ReplyShape = Literal["resource", "wrapper", "empty", "other"]
CreateSource = Literal["resource", "field", "flattened"]
ListDelivery = Literal["page", "stream", "stream_pages"]
UpdateStrategy = Literal["mask", "presence", "replace"]

FIELD_MASK = "google.protobuf.FieldMask"
TIMESTAMP = "google.protobuf.Timestamp"
OPERATION = "google.longrunning.Operation"

_SCALARS = {
    int(number): name.removeprefix("TYPE_").lower() for name, number in descriptor_pb2.FieldDescriptorProto.Type.items()
}
_INTEGERS = frozenset(
    {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}
)
# A List request's parameters: any other field selects items in a way generated code cannot know.
_LIST_PARAMETERS = {
    "parent": "string",
    "page_size": "integer",
    "page_token": "string",
    "filter": "string",
    "order_by": "string",
}
# Enum value suffixes of a Watch event's type, per change the store reports (Kubernetes spells some differently).
_CHANGES = {
    "created": ("CREATED", "ADDED"),
    "updated": ("UPDATED", "MODIFIED", "CHANGED"),
    "deleted": ("DELETED", "REMOVED"),
}
# Preferred first when choosing the fields that show a resource to people (a listing, a log line).
_DISPLAY = ("display_name", "title", "name", "username", "email", "label", "description")
_CREATE_TIMES = ("create_time", "created_at")
_UPDATE_TIMES = ("update_time", "updated_at")
_MAX_DISPLAY_FIELDS = 3
# How deep below a method's request and response a resource message is looked for by name:
# WatchUsersResponse -> UserEvent -> User, BatchCreateUsersRequest -> CreateUserRequest -> UserProfile.
_REACH = 3


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeRef:
    """A message or enum, and where its generated Python class lives."""

    full_name: str  # "user.v1.User"
    name: str  # "User"
    file: str  # "user/v1/user_service.proto"
    module: str  # "user.v1.user_service_pb2"
    python_path: str  # "User"; "Library.Book" for a nested message, "UserEvent.Type" for a nested enum


@dataclass(frozen=True)
class Field:
    name: str  # the proto name, which is also the Python attribute
    type: str  # a scalar ("string", "int64"), a message's or enum's full name, or "map<string, int64>"
    kind: FieldKind
    repeated: bool  # a list; maps are kind "map" and not repeated
    presence: bool  # HasField() tells set from unset (proto3 optional, messages, oneof members)

    @property
    def integer(self) -> bool:
        return self.kind == "scalar" and self.type in _INTEGERS


@dataclass(frozen=True)
class Resource:
    """A message that standard methods store, read and list."""

    message: TypeRef
    plural: str  # as RPC names spell it: "Shelves" (ListShelves), else the English plural
    id: Field  # what identifies a stored resource: `id`, `<resource>_id`, or `name` (an AIP resource name)
    pattern: str  # the (google.api.resource) pattern, "shelves/{shelf}/books/{book}"; "" when there is none
    fields: tuple[Field, ...]
    display_fields: tuple[str, ...]  # string fields that show a resource to people, best first
    create_time_field: str | None  # a google.protobuf.Timestamp the store sets on create
    update_time_field: str | None  # ... and on every write

    @property
    def name(self) -> str:
        return self.message.name

    @property
    def snake(self) -> str:
        return snake_case(self.name)

    @property
    def plural_snake(self) -> str:
        return snake_case(self.plural)

    @property
    def id_kind(self) -> Literal["string", "integer"]:
        return "integer" if self.id.integer else "string"

    @property
    def id_style(self) -> Literal["id", "name"]:
        """ "name": ids are AIP resource names ("shelves/1/books/2") the server composes."""
        return "name" if self.id.name == "name" else "id"

    @property
    def collection(self) -> str:
        """The collection segment of resource names: "books" from the pattern, else the lowerCamel plural."""
        literals = [s for s in self.pattern.split("/") if s and not s.startswith("{")]
        return literals[-1] if literals else self.plural[:1].lower() + self.plural[1:]


@dataclass(frozen=True)
class Reply:
    """What a unary RPC answers with."""

    message: TypeRef
    # resource: the resource itself; wrapper: a message holding it in `resource_field`;
    # empty: a message without fields (google.protobuf.Empty); other: a message whose fields stay unset.
    shape: ReplyShape
    resource_field: str | None = None
    unset_fields: tuple[str, ...] = ()  # fields the working code leaves at their defaults (a TODO)


@dataclass(frozen=True)
class CreateInput:
    """How one create request becomes a new resource."""

    message: TypeRef
    # resource: the message is the resource; field: it carries the resource in `resource_field`;
    # flattened: `copied_fields` are set on the new resource under the same names.
    source: CreateSource
    resource_field: str | None
    copied_fields: tuple[str, ...]
    id_field: str | None  # a client-chosen id: `book_id` (AIP-133), or the resource's own id field
    parent_field: str | None
    ignored_fields: tuple[str, ...]  # request fields the working code does not read (a TODO)


@dataclass(frozen=True)
class GetShape:
    id_path: tuple[str, ...]  # attributes from the request to the id: ("name",)
    reply: Reply
    ignored_fields: tuple[str, ...]


@dataclass(frozen=True)
class CreateShape:
    input: CreateInput
    reply: Reply


@dataclass(frozen=True)
class UpdateShape:
    id_path: tuple[str, ...]  # ("id",), or ("book", "name") when the id travels inside the resource
    resource_field: str | None  # "book": the new values travel as a resource
    fields: tuple[Field, ...]  # otherwise: request fields setting the resource field of the same name
    mask_field: str | None  # a google.protobuf.FieldMask naming the fields to change
    reply: Reply
    ignored_fields: tuple[str, ...]

    @property
    def strategy(self) -> UpdateStrategy:
        """mask: the mask's paths (an empty mask falls back to presence); presence: the fields the request
        sets (HasField, else not the default); replace: the whole resource, as AIP-134 without a mask."""
        if self.mask_field:
            return "mask"
        return "presence" if self.fields else "replace"


@dataclass(frozen=True)
class DeleteShape:
    id_path: tuple[str, ...]
    reply: Reply  # empty, other, or the deleted resource (resource / wrapper)
    ignored_fields: tuple[str, ...]


@dataclass(frozen=True)
class ListShape:
    # page: one response message per call; stream: a server stream of resources;
    # stream_pages: a server stream of page messages, the last one carrying next_page_token.
    delivery: ListDelivery
    parent_field: str | None
    page_size_field: str | None
    page_token_field: str | None
    filter_field: str | None
    order_by_field: str | None
    items_field: str | None  # the repeated resource field of a page message; None for `stream Resource`
    next_page_token_field: str | None
    total_size_field: str | None


@dataclass(frozen=True)
class BatchCreateShape:
    # A client stream: each message is a create input (None) or holds one in this field ("request").
    # A unary call (AIP-233): the repeated field holding the create inputs ("requests").
    item_field: str | None
    input: CreateInput
    items_field: str | None  # the summary's repeated resource field: the created items, in order
    count_field: str | None  # the summary's integer count of created items
    unset_fields: tuple[str, ...]


@dataclass(frozen=True)
class WatchShape:
    event: TypeRef
    event_field: str | None  # the stream message holds the event here ("event"); None: it is the event
    type_field: str
    type_enum: TypeRef
    created_value: str | None  # enum value names: "TYPE_CREATED"; None when the enum has no such value
    updated_value: str | None
    deleted_value: str | None
    resource_field: str
    time_field: str | None  # a google.protobuf.Timestamp of the change
    ids_field: str | None  # request filter: only these resources
    types_field: str | None  # request filter: only these event types
    filter_field: str | None


Shape = GetShape | CreateShape | UpdateShape | DeleteShape | ListShape | BatchCreateShape | WatchShape


@dataclass(frozen=True)
class MethodPlan:
    name: str  # the RPC name: "GetUser"
    python_name: str  # "get_user"
    client_streaming: bool
    server_streaming: bool
    request: TypeRef
    response: TypeRef
    kind: Kind
    resource: Resource | None  # the resource its name points to, when there is one (stubs too)
    shape: Shape | None  # what the working code needs; None for a stub
    reason: str = ""  # a stub's: why it is not a standard method, and what would be


@dataclass(frozen=True)
class ServicePlan:
    name: str  # "UserService"
    full_name: str  # "user.v1.UserService"
    file: str  # the .proto declaring it
    module: str  # its _pb2 module
    resources: tuple[Resource, ...]  # the resources its working methods store
    methods: tuple[MethodPlan, ...]

    @property
    def implemented(self) -> tuple[MethodPlan, ...]:
        return tuple(m for m in self.methods if m.kind != "stub")

    @property
    def stubs(self) -> tuple[MethodPlan, ...]:
        return tuple(m for m in self.methods if m.kind == "stub")


class ResourceModelError(ValueError):
    """The descriptors given cannot be read as one image (a file or an import is missing)."""


# --- entry point ---------------------------------------------------------------------------------


def recognise(files: Sequence[descriptor_pb2.FileDescriptorProto], targets: Collection[str]) -> tuple[ServicePlan, ...]:
    """A plan for every service of the `targets` files; `files` holds them and all their imports."""
    missing = sorted(set(targets) - {f.name for f in files})
    if missing:
        raise ResourceModelError(f"{missing[0]} is not among the compiled files")
    pool = _pool(files)
    plans = []
    for file in files:
        if file.name in targets:
            prefix = f"{file.package}." if file.package else ""
            plans += [_plan_service(pool.FindServiceByName(prefix + s.name)) for s in file.service]
    return tuple(plans)


def _pool(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """The files in a pool of their own, imports first (a pool rejects a file before its imports)."""
    by_name = {f.name: f for f in files}
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: descriptor_pb2.FileDescriptorProto) -> None:
        if file.name in added:
            return
        added.add(file.name)
        for dependency in file.dependency:
            if dependency not in by_name:
                raise ResourceModelError(f"{file.name} imports {dependency}, which is not among the compiled files")
            add(by_name[dependency])
        pool.Add(file)

    for file in files:
        add(file)
    return pool


# --- one service ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One RPC and the resource its name points to: what every rule handler reads."""

    method: MethodDescriptor
    resource: Resource

    @property
    def request(self) -> Descriptor:
        return self.method.input_type

    @property
    def response(self) -> Descriptor:
        return self.method.output_type


RuleResult = Shape | str  # a shape, or the reason the messages do not fit


@dataclass(frozen=True)
class _Rule:
    kind: Kind
    verb: str  # the RPC name's prefix: "BatchCreate"
    plural: bool  # whether the noun after the verb is the resource's plural (ListBooks) or its name (GetBook)
    streaming: frozenset[tuple[bool, bool]]  # the (client_streaming, server_streaming) it may have
    streaming_words: str  # the same, said in a stub's reason
    handler: Callable[[_Call], RuleResult]


def _plan_service(service: ServiceDescriptor) -> ServicePlan:
    file = service.file
    visible = list(_visible(file))
    # Pass 1: what each name claims and which message it points to; plural nouns name their resource's plural.
    found: dict[str, tuple[_Rule, str, Descriptor | None] | None] = {}
    plurals: dict[str, str] = {}
    for method in service.methods:
        match = _match(method.name)
        if match is None:
            found[method.name] = None
            continue
        rule, noun = match
        names = _singulars(noun) if rule.plural else (noun,)
        message = _find(names, method, file, visible)
        found[method.name] = (rule, noun, message)
        if message is not None and rule.plural and noun != message.name:
            plurals.setdefault(message.full_name, noun)
    resources: dict[str, Resource | None] = {}
    for entry in found.values():
        if entry is not None and (message := entry[2]) is not None and message.full_name not in resources:
            resources[message.full_name] = _resource(message, plurals.get(message.full_name) or pluralize(message.name))
    # Pass 2: each rule's verdict.
    methods = []
    for method in service.methods:
        entry = found[method.name]
        if entry is None:
            methods.append(_method_plan(method, None, None, _NOT_STANDARD))
            continue
        rule, noun, message = entry
        resource = resources[message.full_name] if message is not None else None
        methods.append(_method_plan(method, rule, resource, _verdict(rule, noun, method, message, resource)))
    used = {m.resource.message.full_name: m.resource for m in methods if m.kind != "stub" and m.resource}
    return ServicePlan(
        name=service.name,
        full_name=service.full_name,
        file=file.name,
        module=python_module(file.name),
        resources=tuple(used.values()),
        methods=tuple(methods),
    )


def _verdict(
    rule: _Rule, noun: str, method: MethodDescriptor, message: Descriptor | None, resource: Resource | None
) -> RuleResult:
    """The rule's shape for this RPC, or why it is a stub; checks that hold for every kind come first."""
    if (method.client_streaming, method.server_streaming) not in rule.streaming:
        return f"a {rule.verb} is {rule.streaming_words}, not {_streaming(method)}"
    if method.output_type.full_name == OPERATION:
        return "it answers with a google.longrunning.Operation, and protokit does not implement long-running operations"
    if message is None:
        name = _singulars(noun)[0] if rule.plural else noun
        after = "its resource message's plural" if rule.plural else "its resource message"
        example = f"{rule.verb}{'Books' if rule.plural else 'Book'} for a message Book"
        return f"there is no message named {name}: a {rule.verb} is named after {after} ({example})"
    if resource is None:
        return (
            f"its resource message {message.name} has no id field: a resource has `id`, "
            f"`{snake_case(message.name)}_id` or `name`, a string or an integer"
        )
    return rule.handler(_Call(method, resource))


def _method_plan(
    method: MethodDescriptor, rule: _Rule | None, resource: Resource | None, verdict: RuleResult
) -> MethodPlan:
    kind: Kind = "stub" if isinstance(verdict, str) or rule is None else rule.kind
    return MethodPlan(
        name=method.name,
        python_name=snake_case(method.name),
        client_streaming=method.client_streaming,
        server_streaming=method.server_streaming,
        request=_ref(method.input_type),
        response=_ref(method.output_type),
        kind=kind,
        resource=resource,
        shape=None if isinstance(verdict, str) else verdict,
        reason=verdict if isinstance(verdict, str) else "",
    )


_NOT_STANDARD = (
    "it is not named as a standard method: protokit implements Get, Create, Update, Delete, List, "
    "BatchCreate and Watch followed by a resource message's name (GetBook, ListBooks)"
)


def _match(name: str) -> tuple[_Rule, str] | None:
    """The rule an RPC's name claims, and the noun after its verb: ListBooks -> (list, "Books")."""
    for rule in _RULES:
        noun = name.removeprefix(rule.verb)
        if noun != name and noun[:1].isupper():  # Getaway is no Get
            return rule, noun
    return None


def _singulars(plural: str) -> tuple[str, ...]:
    """Names a plural noun may be the plural of, likeliest first: Shelves -> Shelf; Users -> User; Data -> Data."""
    names = []
    if plural.endswith("ies"):
        names.append(plural[:-3] + "y")
    if plural.endswith("ves"):
        names += [plural[:-3] + "f", plural[:-3] + "fe"]
    if plural.endswith("es"):
        names.append(plural[:-2])
    if plural.endswith("s"):
        names.append(plural[:-1])
    names.append(plural)
    # Those pluralize() turns back into the noun first: Features -> Feature before Featur.
    return tuple(sorted(dict.fromkeys(names), key=lambda name: pluralize(name) != plural))


def _streaming(method: MethodDescriptor) -> str:
    return {
        (False, False): "unary",
        (False, True): "server-streaming",
        (True, False): "client-streaming",
        (True, True): "bidirectional",
    }[(method.client_streaming, method.server_streaming)]


# --- finding the resource ------------------------------------------------------------------------


def _messages(messages: Iterable[Descriptor]) -> Iterator[Descriptor]:
    """Every message, nested ones included; map entries are protoc's, never a resource."""
    for message in messages:
        if not message.GetOptions().map_entry:
            yield message
            yield from _messages(message.nested_types)


def _visible(file: FileDescriptor) -> Iterator[Descriptor]:
    """The messages `file` can name: its own, then its imports' (transitively)."""
    seen: set[str] = set()
    pending = [file]
    while pending:
        current = pending.pop(0)
        if current.name not in seen:
            seen.add(current.name)
            yield from _messages(current.message_types_by_name.values())
            pending += current.dependencies


def _reachable(method: MethodDescriptor) -> list[Descriptor]:
    """The request, the response and the messages their fields hold, _REACH levels down."""
    found: dict[str, Descriptor] = {}
    level = [method.input_type, method.output_type]
    for _ in range(_REACH + 1):
        below = []
        for message in level:
            if message.full_name not in found:
                found[message.full_name] = message
                below += [f.message_type for f in message.fields if f.message_type is not None]
        level = below
    return [m for m in found.values() if not m.GetOptions().map_entry]


def _find(
    names: Sequence[str], method: MethodDescriptor, file: FileDescriptor, visible: list[Descriptor]
) -> Descriptor | None:
    """The message a noun names: one the RPC's messages hold, else one in the service's package, else any
    the file can see. Short names, so nested (Library.Book) and imported resources are found too."""
    tiers = (_reachable(method), [m for m in visible if m.file.package == file.package], visible)
    for tier in tiers:
        for name in names:
            for message in tier:
                if message.name == name:
                    return message
    return None


def _resource(message: Descriptor, plural: str) -> Resource | None:
    """`message` as a resource; None without an id field."""
    fields = tuple(_field(f) for f in message.fields)
    pattern = _pattern(message)
    id_field = _id_field(message, fields, prefer_name=bool(pattern))
    if id_field is None:
        return None
    return Resource(
        message=_ref(message),
        plural=plural,
        id=id_field,
        pattern=pattern,
        fields=fields,
        display_fields=_display_fields(fields, id_field),
        create_time_field=_timestamp(fields, _CREATE_TIMES),
        update_time_field=_timestamp(fields, _UPDATE_TIMES),
    )


def _pattern(message: Descriptor) -> str:
    options = message.GetOptions()
    if not options.HasExtension(resource_pb2.resource):
        return ""
    patterns = options.Extensions[resource_pb2.resource].pattern
    return str(patterns[0]) if patterns else ""


def _id_candidates(message_name: str, prefer_name: bool = False) -> tuple[str, ...]:
    names = ("id", f"{snake_case(message_name)}_id", "name")
    return ("name", *names[:2]) if prefer_name else names


def _id_field(message: Descriptor, fields: Sequence[Field], prefer_name: bool) -> Field | None:
    """The resource's identifying field: a singular string or integer named id, <resource>_id or name;
    `name` first for an AIP resource (a google.api.resource pattern)."""
    by_name = {f.name: f for f in fields}
    for name in _id_candidates(message.name, prefer_name):
        field = by_name.get(name)
        if field is not None and not field.repeated and _scalar_kind(field) is not None:
            return field
    return None


def _scalar_kind(field: Field) -> str | None:
    """ "string" or "integer" (the kinds an id, a token or a count can have); None for anything else."""
    if field.kind == "scalar" and field.type == "string":
        return "string"
    return "integer" if field.integer else None


def _display_fields(fields: Sequence[Field], id_field: Field) -> tuple[str, ...]:
    strings = [f.name for f in fields if f.kind == "scalar" and f.type == "string" and not f.repeated and f != id_field]
    ranked = sorted(strings, key=lambda n: _DISPLAY.index(n) if n in _DISPLAY else len(_DISPLAY))
    return tuple(ranked[:_MAX_DISPLAY_FIELDS])


def _timestamp(fields: Sequence[Field], names: Sequence[str]) -> str | None:
    return next((f.name for f in fields if f.name in names and f.type == TIMESTAMP and not f.repeated), None)


# --- descriptors as model data -------------------------------------------------------------------


def _ref(descriptor: Descriptor | EnumDescriptor) -> TypeRef:
    package = descriptor.file.package
    path = descriptor.full_name.removeprefix(f"{package}.") if package else descriptor.full_name
    return TypeRef(
        full_name=descriptor.full_name,
        name=descriptor.name,
        file=descriptor.file.name,
        module=python_module(descriptor.file.name),
        python_path=path,
    )


def _field(field: FieldDescriptor) -> Field:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        key, value = (_field(f) for f in message.fields)
        return Field(field.name, f"map<{key.type}, {value.type}>", "map", repeated=False, presence=False)
    kind: FieldKind
    if message is not None:
        kind, type_name = "message", message.full_name
    elif field.enum_type is not None:
        kind, type_name = "enum", field.enum_type.full_name
    else:
        kind, type_name = "scalar", _SCALARS[field.type]
    return Field(field.name, type_name, kind, repeated=field.is_repeated, presence=field.has_presence)


def _fields(message: Descriptor) -> list[Field]:
    return [_field(f) for f in message.fields]


def _holding(message: Descriptor, resource: Resource, repeated: bool) -> str | None:
    """The field of `message` holding the resource (a list of them with repeated), preferring the one
    named after it: `user` / `users`."""
    fields = [f.name for f in _fields(message) if f.type == resource.message.full_name and f.repeated == repeated]
    preferred = resource.plural_snake if repeated else resource.snake
    return preferred if preferred in fields else next(iter(fields), None)


def _others(message: Descriptor, *used: str | None) -> tuple[str, ...]:
    return tuple(f.name for f in message.fields if f.name not in used)


def _request_id(message: Descriptor, resource: Resource) -> str | None:
    """The request field naming one resource: `name` for AIP resource names; else the resource's id
    field, `<resource>_id` or `id`, of the same kind (string or integer)."""
    if resource.id_style == "name":
        names: tuple[str, ...] = ("name",)
    else:
        names = tuple(dict.fromkeys((resource.id.name, f"{resource.snake}_id", "id")))
    return next((n for n in names if _named(message, n, resource.id_kind)), None)


def _matching(message: Descriptor, resource: Resource, *excluded: str | None) -> list[Field]:
    """Fields of `message` that are also fields of the resource: same name, same type (presence may
    differ: an update's `optional string email` sets User.email)."""
    own = {f.name: (f.type, f.kind, f.repeated) for f in resource.fields}
    return [f for f in _fields(message) if f.name not in excluded and own.get(f.name) == (f.type, f.kind, f.repeated)]


def _named(message: Descriptor, name: str, kind: str) -> str | None:
    """`name` if `message` has a singular field of that name and kind ("string", "integer")."""
    field = next((f for f in _fields(message) if f.name == name), None)
    return name if field is not None and not field.repeated and _scalar_kind(field) == kind else None


def _first_of_type(message: Descriptor, type_name: str) -> str | None:
    return next((f.name for f in _fields(message) if f.type == type_name and not f.repeated), None)


# --- replies -------------------------------------------------------------------------------------


def _resource_reply(message: Descriptor, resource: Resource) -> Reply | None:
    """The resource itself, or a message wrapping it (`{user: User}`); None when it holds no resource."""
    ref = _ref(message)
    if message.full_name == resource.message.full_name:
        return Reply(ref, "resource")
    field = _holding(message, resource, repeated=False)
    if field is None:
        return None
    return Reply(ref, "wrapper", resource_field=field, unset_fields=_others(message, field))


def _plain_reply(message: Descriptor) -> Reply:
    """A reply without the resource: Empty and other field-less messages, else one left at its defaults."""
    unset = _others(message)
    return Reply(_ref(message), "other" if unset else "empty", unset_fields=unset)


def _no_resource_reply(call: _Call) -> str:
    name = call.resource.name
    return (
        f"its response {call.response.name} is neither a {name} nor a message holding one "
        f"(a `{call.resource.snake}` field)"
    )


def _no_id(call: _Call, verb: str) -> str:
    resource = call.resource
    if resource.id_style == "name":
        carries = "`name`, the resource name"
    else:
        names = dict.fromkeys((resource.id.name, f"{resource.snake}_id"))
        carries = " or ".join(f"`{n}`" for n in names) + f" (a{'n' if resource.id.integer else ''} {resource.id_kind})"
    return (
        f"its request {call.request.name} has no field naming the {resource.name} to {verb.lower()}: "
        f"a {verb} request carries {carries}"
    )


# --- the rules -----------------------------------------------------------------------------------


def _get(call: _Call) -> RuleResult:
    """GetBookRequest{name} -> Book; GetUserRequest{id} -> GetUserResponse{user} (AIP-131)."""
    id_field = _request_id(call.request, call.resource)
    if id_field is None:
        return _no_id(call, "Get")
    reply = _resource_reply(call.response, call.resource)
    if reply is None:
        return _no_resource_reply(call)
    return GetShape(id_path=(id_field,), reply=reply, ignored_fields=_others(call.request, id_field))


def _create_input(message: Descriptor, resource: Resource) -> CreateInput | None:
    """A create request: the resource itself, {parent?, book, book_id?} (AIP-133), or the resource's
    fields flattened into the request (CreateUserRequest{username, email}). None when it is neither."""
    ref = _ref(message)
    if message.full_name == resource.message.full_name:
        return CreateInput(ref, "resource", None, (), None, None, ())
    parent = _named(message, "parent", "string")
    own_id = _named(message, f"{resource.snake}_id", resource.id_kind)
    held = _holding(message, resource, repeated=False)
    if held is not None:
        ignored = _others(message, held, parent, own_id)
        return CreateInput(ref, "field", held, (), own_id, parent, ignored)
    own_id = own_id or _named(message, resource.id.name, resource.id_kind)
    copied = tuple(f.name for f in _matching(message, resource, resource.id.name))
    if not copied:
        return None
    return CreateInput(ref, "flattened", None, copied, own_id, parent, _others(message, *copied, own_id, parent))


def _create(call: _Call) -> RuleResult:
    """CreateBookRequest{parent, book} -> Book; CreateUserRequest{username, ...} -> CreateUserResponse{user}."""
    created = _create_input(call.request, call.resource)
    if created is None:
        return (
            f"its request {call.request.name} carries no {call.resource.name}: a Create request holds one "
            f"(a `{call.resource.snake}` field) or has fields named and typed as {call.resource.name}'s"
        )
    reply = _resource_reply(call.response, call.resource)
    if reply is None:
        return _no_resource_reply(call)
    return CreateShape(input=created, reply=reply)


def _update(call: _Call) -> RuleResult:
    """UpdateBookRequest{book, update_mask} (AIP-134), or UpdateUserRequest{id, optional fields...}."""
    request, resource = call.request, call.resource
    mask = _first_of_type(request, FIELD_MASK)
    id_field = _request_id(request, resource)
    held = _holding(request, resource, repeated=False)
    fields: tuple[Field, ...] = ()
    if held is not None:
        id_path = (id_field,) if id_field else (held, resource.id.name)
    elif id_field is None:
        return _no_id(call, "Update")
    else:
        id_path = (id_field,)
        fields = tuple(_matching(request, resource, id_field, mask))
        if not fields:
            return (
                f"its request {request.name} carries no new values: an Update request holds a {resource.name} "
                f"(a `{resource.snake}` field, and an update_mask) or fields named and typed as {resource.name}'s"
            )
    reply = _resource_reply(call.response, resource)
    if reply is None:
        return _no_resource_reply(call)
    used = (id_field, held, mask, *(f.name for f in fields))
    return UpdateShape(id_path, held, fields, mask, reply, _others(request, *used))


def _delete(call: _Call) -> RuleResult:
    """DeleteBookRequest{name} -> google.protobuf.Empty (AIP-135); any other response is answered too."""
    id_field = _request_id(call.request, call.resource)
    if id_field is None:
        return _no_id(call, "Delete")
    reply = _resource_reply(call.response, call.resource) or _plain_reply(call.response)
    return DeleteShape(id_path=(id_field,), reply=reply, ignored_fields=_others(call.request, id_field))


def _list(call: _Call) -> RuleResult:
    """ListBooksRequest{parent, page_size, page_token, filter} -> {books, next_page_token} (AIP-132),
    the same page messages as a server stream, or `stream Book`."""
    request, response, resource = call.request, call.response, call.resource
    parameters = {n for n, kind in _LIST_PARAMETERS.items() if _named(request, n, kind)}
    unknown = _others(request, *parameters)
    if unknown:
        return (
            f"its request {request.name} has fields a List cannot apply ({', '.join(unknown)}): "
            f"a List request takes {', '.join(_LIST_PARAMETERS)}"
        )
    items = None
    if call.method.server_streaming and response.full_name == resource.message.full_name:
        delivery: ListDelivery = "stream"
    else:
        items = _holding(response, resource, repeated=True)
        if items is None:
            stream = f" nor a stream of {resource.name}" if call.method.server_streaming else ""
            return (
                f"its response {response.name} has no repeated {resource.name} field "
                f"(`{resource.plural_snake}`){stream}"
            )
        delivery = "stream_pages" if call.method.server_streaming else "page"

    def parameter(name: str) -> str | None:
        return name if name in parameters else None

    return ListShape(
        delivery=delivery,
        parent_field=parameter("parent"),
        page_size_field=parameter("page_size"),
        page_token_field=parameter("page_token"),
        filter_field=parameter("filter"),
        order_by_field=parameter("order_by"),
        items_field=items,
        next_page_token_field=_named(response, "next_page_token", "string") if items else None,
        total_size_field=_named(response, "total_size", "integer") if items else None,
    )


def _batch_item(call: _Call) -> tuple[str | None, CreateInput] | None:
    """Where a BatchCreate's create inputs are: each streamed message, the one message field each holds
    (BatchCreateUsersRequest{request}), or a unary request's repeated field (AIP-233 `requests`)."""
    request, resource = call.request, call.resource
    if call.method.client_streaming:
        direct = _create_input(request, resource)
        if direct is not None:
            return None, direct
        fields = list(request.fields)
        if len(fields) == 1 and fields[0].message_type is not None and not fields[0].is_repeated:
            held = _create_input(fields[0].message_type, resource)
            return (fields[0].name, held) if held is not None else None
        return None
    for field in request.fields:
        if field.message_type is not None and field.is_repeated:
            held = _create_input(field.message_type, resource)
            if held is not None:
                return field.name, held
    return None


def _batch_create(call: _Call) -> RuleResult:
    """stream CreateUserRequest (or messages holding one) -> {users, created_count}."""
    resource = call.resource
    found = _batch_item(call)
    if found is None:
        how = "streams" if call.method.client_streaming else "holds a repeated field of"
        return (
            f"its request {call.request.name} is not a create request: a BatchCreate {how} Create{resource.name} "
            f"requests (or messages holding one, or {resource.name}s)"
        )
    items = _holding(call.response, resource, repeated=True)
    count = next((f.name for f in _fields(call.response) if f.integer and not f.repeated and _is_count(f.name)), None)
    if items is None and count is None:
        return (
            f"its response {call.response.name} summarises nothing: a BatchCreate answers with the created "
            f"{resource.plural_snake} (a repeated {resource.name} field) and/or their count (`created_count`)"
        )
    item_field, created = found
    return BatchCreateShape(item_field, created, items, count, _others(call.response, items, count))


def _is_count(name: str) -> bool:
    return name in ("count", "created", "total") or name.endswith("_count")


@dataclass(frozen=True)
class _Event:
    type_field: str
    type_enum: EnumDescriptor
    values: dict[str, str]  # change ("created") -> enum value name
    resource_field: str
    time_field: str | None


def _event(message: Descriptor, resource: Resource) -> _Event | None:
    """`message` as a change event: a type enum with *_CREATED/*_UPDATED/*_DELETED values and the resource."""
    held = _holding(message, resource, repeated=False)
    if held is None:
        return None
    for field in message.fields:
        if field.enum_type is not None and not field.is_repeated:
            values = _change_values(field.enum_type)
            if values:
                return _Event(field.name, field.enum_type, values, held, _first_of_type(message, TIMESTAMP))
    return None


def _change_values(enum: EnumDescriptor) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in enum.values:
        for change, suffixes in _CHANGES.items():
            if change not in found and any(value.name == s or value.name.endswith(f"_{s}") for s in suffixes):
                found[change] = value.name
    return found


def _watch(call: _Call) -> RuleResult:
    """WatchUsers(stream WatchUsersRequest) -> stream WatchUsersResponse{event: UserEvent{type, user}}, or a
    server stream of the events themselves; requests may filter by ids and event types."""
    request, response, resource = call.request, call.response, call.resource
    event_message, event_field, event = response, None, _event(response, resource)
    for field in response.fields:
        if event is not None:
            break
        if field.message_type is not None and not field.is_repeated:
            event = _event(field.message_type, resource)
            event_message, event_field = field.message_type, field.name
    if event is None:
        return (
            f"its response {response.name} is not a change event: a Watch streams messages with a type enum "
            f"(values *_CREATED, *_UPDATED, *_DELETED) and a {resource.name} field, or messages holding one"
        )
    ids = next((f.name for f in _fields(request) if _is_id_list(f, resource)), None)
    types = next((f.name for f in _fields(request) if f.repeated and f.type == event.type_enum.full_name), None)
    filter_field = _named(request, "filter", "string")
    unknown = _others(request, ids, types, filter_field)
    if unknown:
        return (
            f"its request {request.name} has fields a Watch cannot apply ({', '.join(unknown)}): a Watch request "
            f"may filter by ids (`{resource.snake}_ids`), event types (a repeated {event.type_enum.name}) and `filter`"
        )
    return WatchShape(
        event=_ref(event_message),
        event_field=event_field,
        type_field=event.type_field,
        type_enum=_ref(event.type_enum),
        created_value=event.values.get("created"),
        updated_value=event.values.get("updated"),
        deleted_value=event.values.get("deleted"),
        resource_field=event.resource_field,
        time_field=event.time_field,
        ids_field=ids,
        types_field=types,
        filter_field=filter_field,
    )


def _is_id_list(field: Field, resource: Resource) -> bool:
    """A Watch filter by resource: repeated ids named `ids`, `<resource>_ids` (or `names` for resource names)."""
    names = ("ids", f"{resource.snake}_ids", *(("names",) if resource.id_style == "name" else ()))
    return field.name in names and field.repeated and _scalar_kind(field) == resource.id_kind


_UNARY = frozenset({(False, False)})
_RULES = (
    _Rule("get", "Get", False, _UNARY, "unary", _get),
    _Rule("create", "Create", False, _UNARY, "unary", _create),
    _Rule("update", "Update", False, _UNARY, "unary", _update),
    _Rule("delete", "Delete", False, _UNARY, "unary", _delete),
    _Rule("list", "List", True, frozenset({(False, False), (False, True)}), "unary or server-streaming", _list),
    _Rule(
        "batch_create",
        "BatchCreate",
        True,
        frozenset({(True, False), (False, False)}),
        "client-streaming (or unary, with repeated create requests)",
        _batch_create,
    ),
    _Rule(
        "watch", "Watch", True, frozenset({(False, True), (True, True)}), "server-streaming or bidirectional", _watch
    ),
)
