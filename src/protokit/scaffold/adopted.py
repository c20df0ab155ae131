"""The view model of an adopted proto file: its implementation module and its tests, from the resource plans.

`protokit.scaffold.resources` decides what each RPC is (a standard method with a shape, or a stub with a reason);
this module turns that into what the templates print: Python names and type expressions, the repository
each resource is stored in, and per method the expressions its body needs (where the id is, what the reply
is built from, which request fields stay unread). The templates `adopted.py.j2` and `adopted_test.py.j2`
only lay these out, one block per kind.
"""

from __future__ import annotations

import keyword
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from google.protobuf import descriptor_pb2

from protokit.scaffold.resources import (
    BatchCreateShape,
    CreateInput,
    CreateShape,
    DeleteShape,
    GetShape,
    ListShape,
    MethodPlan,
    Reply,
    Resource,
    ServicePlan,
    TypeRef,
    UpdateShape,
    WatchShape,
)
from protokit.servicegen.model import Import, ServicerSignature, format_imports, module_import, snake_case

# The field number protovalidate's rules use on FieldOptions, MessageOptions and OneofOptions.
_VALIDATE_EXTENSION = 1159
# Module-level names of the implementation module: a proto module alias must not take one.
_TAKEN = frozenset(
    {
        "AsyncIterator",
        "Event",
        "InvalidArgument",
        "MAX_BATCH",
        "Path",
        "Repository",
        "SqliteRepository",
        "annotations",
        "apply_mask",
        "asyncio",
        "compile_filter",
        "copy_fields",
        "grpc",
        "os",
        "resource_name",
        "set_fields",
        "time",
    }
)
# A client-streamed batch is held in memory until it is stored: this bounds what one call can make the
# server hold (the scaffold's services use the same bound).
MAX_BATCH = 1000
# Comment text in a method body: 8 spaces, "# ", within ruff's 88 columns.
_COMMENT_WIDTH = 88 - 10


@dataclass(frozen=True)
class StoreView:
    """One repository of a service: a resource and where it is kept."""

    attribute: str  # "users": the service's attribute and the constructor's parameter
    message: str  # "pb.User"
    name: str  # "User"
    id_field: str
    integer_ids: bool
    id_style: str  # "id" | "name" (AIP resource names the server composes)
    collection: str  # "users": the resource names' collection segment
    example_parent: str  # a parent for test data ("shelves/example"), "" for top-level resources
    create_time_field: str | None
    update_time_field: str | None
    display_fields: tuple[str, ...]  # string fields that show the resource to people, best first

    @property
    def display_field(self) -> str | None:
        return self.display_fields[0] if self.display_fields else None

    @property
    def var(self) -> str:
        return _variable(snake_case(self.name))

    @property
    def options(self) -> list[str]:
        """SqliteRepository's keyword arguments."""
        options = [f'id_field="{self.id_field}"']
        if self.create_time_field:
            options.append(f'create_time_field="{self.create_time_field}"')
        if self.update_time_field:
            options.append(f'update_time_field="{self.update_time_field}"')
        return options

    @property
    def immutable_tuple(self) -> str:
        """Fields an update never changes (the id, the times the store sets), as a Python tuple."""
        names = [f'"{n}"' for n in (self.id_field, self.create_time_field, self.update_time_field) if n]
        return f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"


@dataclass(frozen=True)
class ReplyView:
    """How a unary method's answer is built from the resource it worked on."""

    type: str
    shape: str  # resource | wrapper | empty | other
    resource_field: str | None
    unset_fields: tuple[str, ...]

    @property
    def uses_resource(self) -> bool:
        return self.shape in ("resource", "wrapper")

    def build(self, var: str) -> str:
        if self.shape == "resource":
            return var
        if self.shape == "wrapper":
            return f"{self.type}({self.resource_field}={var})"
        return f"{self.type}()"

    def read(self, reply: str) -> str:
        """The resource in a reply, for tests."""
        return f"{reply}.{self.resource_field}" if self.shape == "wrapper" else reply


@dataclass(frozen=True)
class ConverterView:
    """A module-level function turning one create input into a new resource (shared by Create and BatchCreate)."""

    function: str  # "user_from_create_user_request"
    input: str  # type expression of the create input
    input_name: str
    store: StoreView
    source: str  # resource | field | flattened
    resource_field: str | None
    copied_fields: tuple[str, ...]
    id_expr: str | None  # a client-chosen id: "request.book_id"
    parent_expr: str | None  # "request.parent"
    ignored_fields: tuple[str, ...]


@dataclass(frozen=True)
class MethodView(ServicerSignature):
    name: str
    python_name: str  # the client method
    client_streaming: bool
    server_streaming: bool
    request_type: str  # type expressions
    response_type: str
    request_name: str  # the proto message names, for comments and tests
    response_name: str
    kind: str
    reason: str  # a stub's
    store: StoreView | None
    reply: ReplyView | None = None
    id_expr: str = ""  # the id, read from `request`
    id_path: tuple[str, ...] = ()
    converter: ConverterView | None = None
    ignored_fields: tuple[str, ...] = ()
    update: UpdateView | None = None
    listing: ListView | None = None
    batch: BatchView | None = None
    watch: WatchView | None = None
    validated: bool = False  # the request has protovalidate rules: tests send an invalid one

    @property
    def todo(self) -> list[str]:
        """A stub's comment lines: why protokit wrote no code, and what to return."""
        returns = (
            f"yield one {self.response_name} per message" if self.server_streaming else f"return a {self.response_name}"
        )
        text = f"TODO: implement {self.name} ({returns}). protokit wrote no code for it: {self.reason}."
        return textwrap.wrap(text, _COMMENT_WIDTH, break_on_hyphens=False)

    @property
    def test_name(self) -> str:
        return f"test_{snake_case(self.name)}"

    # --- what the tests send -------------------------------------------------------------------

    @property
    def sends_invalid(self) -> bool:
        """The test also sends a request protovalidate rejects (unary calls and client-streamed batches)."""
        unary = self.kind in ("get", "create", "update", "delete")
        return self.validated and (unary or (self.kind == "batch_create" and self.client_streaming))

    @property
    def create_values(self) -> list[str]:
        """Keyword arguments of a valid create request (besides what example() fills in)."""
        return _create_values(self.converter) if self.converter else []

    @property
    def update_field(self) -> str | None:
        """A string field of the resource the update test changes, when the request can change one."""
        if self.update is None or self.store is None:
            return None
        if self.update.fields:
            return next((f for f in self.store.display_fields if f in self.update.fields), None)
        return self.store.display_field

    @property
    def update_values(self) -> list[str]:
        assert self.update is not None and self.store is not None
        values = []
        held = self.update.source.removeprefix("request.") if self.update.source != "request" else None
        if held is not None:
            values.append(f"{held}=edit")
        if self.id_path[:1] != (held,):
            values.append(f"{self.id_path[0]}=stored.{self.store.id_field}")
        if self.update.fields and self.update_field:
            values.append(f"{self.update_field}=changed")
        if self.update.mask_expr and self.update_field:
            mask = self.update.mask_expr.removeprefix("request.")
            values.append(f'{mask}=FieldMask(paths=["{self.update_field}"])')
        return values

    @property
    def list_values(self) -> list[str]:
        assert self.listing is not None and self.store is not None
        values = []
        if self.listing.page_size_field:
            values.append(f"{self.listing.page_size_field}=2")
        if self.listing.page_token_field:
            values.append(f'{self.listing.page_token_field}=""')
        for expr in (self.listing.filter_expr, self.listing.order_by_expr):
            if expr:
                values.append(f'{expr.removeprefix("request.")}=""')
        if self.listing.parent_expr:
            values.append(f'{self.listing.parent_field}="{self.store.example_parent}"')
        return values

    @property
    def batch_item(self) -> str:
        """One valid message of a batch: a create input, or the streamed message holding one."""
        assert self.batch is not None and self.converter is not None
        arguments = ", ".join([self.batch.input_type, *_create_values(self.converter, unique=True)])
        created = f"example({arguments})"
        if self.client_streaming and self.batch.item_field:
            return f"{self.batch.item_type}({self.batch.item_field}={created})"
        return created


@dataclass(frozen=True)
class UpdateView:
    strategy: str  # mask | presence | replace
    source: str  # where the new values are: "request.user" or "request"
    mask_expr: str | None  # "request.update_mask"
    fields: tuple[str, ...]  # presence/mask over flattened fields: the request fields to copy


@dataclass(frozen=True)
class ListView:
    delivery: str  # page | stream | stream_pages
    page_size: str  # expression: "request.page_size" or "0"
    page_token: str
    filter_expr: str | None
    parent_expr: str | None  # name-style resources: list under this parent
    order_by_expr: str | None
    items_field: str | None
    next_page_token_field: str | None
    unset_fields: tuple[str, ...]
    page_size_field: str | None
    page_token_field: str | None
    parent_field: str | None

    @property
    def where(self) -> bool:
        return bool(self.filter_expr or self.parent_expr)


@dataclass(frozen=True)
class BatchView:
    item_expr: str  # the create input in one streamed message: "item" or "item.request"
    item_field: str | None
    repeated_expr: str | None  # unary (AIP-233): "request.requests"
    items_field: str | None
    count_field: str | None
    unset_fields: tuple[str, ...]
    item_type: str  # type expression of the streamed (or repeated) message
    input_type: str  # type expression of the create input


@dataclass(frozen=True)
class WatchView:
    changes: str  # the module-level mapping constant: USER_EVENT_TYPES
    enum: str  # type expression of the event type enum
    values: tuple[tuple[str, str], ...]  # ("created", "TYPE_CREATED"), only the changes the enum has
    event: str  # type expression of the event message
    event_field: str | None
    type_field: str
    resource_field: str
    time_field: str | None
    ids_expr: str | None  # "request.user_ids"
    types_expr: str | None
    filter_expr: str | None
    selects: str  # the module-level function making a request's predicate, when the request filters
    request: str  # type expression of the request
    response: str  # ... of the streamed message
    resource: str  # ... of the resource
    var: str  # the resource's variable
    id_field: str

    @property
    def conditions(self) -> list[tuple[str, str]]:
        """What a change must satisfy to be sent, each as (its negation, itself): the template turns all but
        the last into early `return False`s and returns the last."""
        conditions = [(f"change not in {self.changes}", f"change in {self.changes}")]
        if self.ids_expr:
            ids, id_ = self.ids_expr, f"{self.var}.{self.id_field}"
            conditions.append((f"{ids} and {id_} not in {ids}", f"not {ids} or {id_} in {ids}"))
        if self.types_expr:
            types, type_ = self.types_expr, f"{self.changes}[change]"
            conditions.append((f"{types} and {type_} not in {types}", f"not {types} or {type_} in {types}"))
        if self.filter_expr:
            conditions.append((f"not matches({self.var})", f"matches({self.var})"))
        return conditions

    @property
    def entries(self) -> list[str]:
        return [f'"{change}": {self.enum}.{value}' for change, value in self.values]

    @property
    def filters(self) -> bool:
        return bool(self.ids_expr or self.types_expr or self.filter_expr)

    def arguments(self, change: str, var: str) -> list[str]:
        """The event constructor's arguments for one change."""
        arguments = [f"{self.type_field}={self.changes}[{change}]", f"{self.resource_field}={var}"]
        if self.time_field:
            arguments.append(f"{self.time_field}=now()")
        return arguments


@dataclass(frozen=True)
class ServiceView:
    name: str  # the implementation class: "UserService"
    full_name: str
    base: str  # "UserServiceBase"
    client: str  # "UserServiceClient"
    stores: tuple[StoreView, ...]
    methods: tuple[MethodView, ...]
    database: str  # the SQLite file name in the data directory
    serve: str  # the tests' function serving it


@dataclass(frozen=True)
class FileView:
    """One adopted proto file with services: its implementation module and its test module."""

    proto: str  # "user/v1/user_service.proto"
    implementation_module: str  # "user_app.user_service"
    protokit_module: str  # "user.v1.user_service_protokit"
    services: tuple[ServiceView, ...]
    converters: tuple[ConverterView, ...]
    watches: tuple[WatchView, ...]
    aliases: Mapping[str, str] = field(repr=False)  # pb2 module -> import name

    @property
    def methods(self) -> list[MethodView]:
        return [m for s in self.services for m in s.methods]

    @property
    def change_maps(self) -> list[WatchView]:
        """One per module-level change -> event type mapping."""
        return list({w.changes: w for w in self.watches}.values())

    def _has(self, kind: str) -> bool:
        return any(m.kind == kind for m in self.methods)

    @property
    def has_batch(self) -> bool:
        return self._has("batch_create")

    @property
    def implementation_imports(self) -> tuple[tuple[str, ...], ...]:
        methods = self.methods
        stdlib: list[Import] = [("", "os", "")]
        if self._stores:
            stdlib.append(("pathlib", "Path", ""))
        if any(m.client_streaming or m.server_streaming for m in methods):
            stdlib.append(("collections.abc", "AsyncIterator", ""))
        if any(w.filters and m.client_streaming for m in methods if (w := m.watch)):
            stdlib.append(("", "asyncio", ""))
        third: list[Import] = [("", "grpc", ""), *self._pb2_imports(implementation=True)]
        third += [(self.protokit_module, s.base, "") for s in self.services]
        if self._stores:
            third.append(("protokit.runtime.store", "Repository", ""))
            third.append(("protokit.runtime.store", "SqliteRepository", ""))
        if any(w.filters for w in self.watches):
            stdlib.append(("collections.abc", "Callable", ""))
            third.append(("protokit.runtime.store", "Event", ""))
        if any(w.time_field for w in self.watches):
            third.append(("google.protobuf.timestamp_pb2", "Timestamp", ""))
        helpers = set()
        for converter in self.converters:
            if converter.source == "flattened":
                helpers.add("copy_fields")
            if converter.store.id_style == "name":
                helpers.add("resource_name")
        for m in methods:
            if m.update is not None:
                if m.update.fields:
                    helpers.add("copy_fields")
                else:
                    helpers.add("apply_mask")
                    if m.update.strategy == "mask":
                        helpers.add("set_fields")
            if (m.listing and m.listing.filter_expr) or (m.watch and m.watch.filter_expr):
                helpers.add("compile_filter")
        third += [("protokit.runtime.messages", h, "") for h in sorted(helpers)]
        if (
            self._has("batch_create")
            or any(m.listing and m.listing.order_by_expr for m in methods)
            or any(m.update and m.update.fields and m.update.mask_expr for m in methods)
            or any(m.watch and m.watch.filter_expr and m.client_streaming for m in methods)
        ):
            third.append(("protokit.runtime", "InvalidArgument", ""))
        return (format_imports(stdlib), format_imports(third))

    @property
    def test_imports(self) -> tuple[tuple[str, ...], ...]:
        methods = self.methods
        stdlib: list[Import] = [("", "asyncio", ""), ("pathlib", "Path", ""), ("typing", "TypeVar", "")]
        stdlib += [("collections.abc", "Awaitable", ""), ("collections.abc", "Callable", "")]
        if any(m.client_streaming and m.kind == "watch" for m in methods):
            stdlib.append(("collections.abc", "AsyncIterator", ""))
        third: list[Import] = [("", "grpc", ""), ("", "pytest", ""), *self._pb2_imports(implementation=False)]
        third += [(self.protokit_module, s.client, "") for s in self.services]
        third += [("protokit.runtime", n, "") for n in ("ServerSettings", "build_server", "close_channels")]
        if any(m.kind != "stub" for m in methods):
            third.append(("protokit.runtime.examples", "example", ""))
        if any(m.sends_invalid for m in methods):
            third.append(("protokit.runtime.examples", "invalid", ""))
        if any(m.kind == "delete" for m in methods):
            third.append(("protokit.runtime", "NotFound", ""))
        if any(s.id_style == "name" for s in self._stores):
            third.append(("protokit.runtime.messages", "resource_name", ""))
        if any("FieldMask(" in value for m in methods if m.update for value in m.update_values):
            third.append(("google.protobuf.field_mask_pb2", "FieldMask", ""))
        first: list[Import] = [(self.implementation_module, s.name, "") for s in self.services]
        if self._has("batch_create"):
            first.append((self.implementation_module, "MAX_BATCH", ""))
        return (format_imports(stdlib), format_imports(third), format_imports(first))

    @property
    def _stores(self) -> list[StoreView]:
        return [store for s in self.services for store in s.stores]

    @property
    def seeds(self) -> list[StoreView]:
        """The resources tests store directly, one helper each."""
        return list({s.name: s for s in self._stores}.values())

    def _pb2_imports(self, implementation: bool) -> list[Import]:
        """The pb2 modules the implementation (or the tests) name types from."""
        used = set()
        for m in self.methods:
            types = [m.request_type]
            if implementation:
                types.append(m.response_type)
            if m.store and (implementation or m.kind != "stub"):
                types.append(m.store.message)
            if m.watch:
                types += [m.watch.enum, m.watch.event] if implementation else [m.watch.enum]
            if m.batch:
                types += [m.batch.input_type, m.batch.item_type]
            used |= {t.split(".")[0] for t in types}
        return [module_import(module, alias) for module, alias in self.aliases.items() if alias in used]


# --- building ------------------------------------------------------------------------------------


def build_file(
    proto: str,
    plans: Sequence[ServicePlan],
    files: Sequence[descriptor_pb2.FileDescriptorProto],
    implementation_module: str,
) -> FileView:
    """The view of `proto`'s services (`plans`, in file order); `files` is the image they came from."""
    own = next(iter(plans)).module
    refs = [ref for plan in plans for ref in _refs(plan)]
    aliases = _aliases(own, {r.module for r in refs})
    validated = _validated(files)
    names = _Names(aliases)
    converters: dict[tuple[str, str], ConverterView] = {}
    watches: list[WatchView] = []
    services = []
    for plan in plans:
        stores = {r.message.full_name: _store(r, names) for r in plan.resources}
        methods = []
        for method in plan.methods:
            view = _method(method, stores, names, converters, validated, watches)
            methods.append(view)
        services.append(
            ServiceView(
                name=plan.name,
                full_name=plan.full_name,
                base=f"{plan.name}Base",
                client=f"{plan.name}Client",
                stores=tuple(stores.values()),
                methods=tuple(methods),
                database=f"{snake_case(plan.name)}.sqlite3",
                serve="serve" if len(plans) == 1 else f"serve_{snake_case(plan.name)}",
            )
        )
    return FileView(
        proto=proto,
        implementation_module=implementation_module,
        protokit_module=own.removesuffix("_pb2") + "_protokit",
        services=tuple(services),
        converters=tuple(converters.values()),
        watches=tuple(watches),
        aliases=aliases,
    )


def _create_values(converter: ConverterView, unique: bool = False) -> list[str]:
    """A create request's keyword arguments for tests: the example parent; with `unique`, no client-chosen id
    (several requests alike would ask for the same one)."""
    values = []
    if converter.parent_expr and converter.store.example_parent:
        values.append(f'{converter.parent_expr.removeprefix("request.")}="{converter.store.example_parent}"')
    if unique and converter.id_expr:
        unset = "0" if converter.store.integer_ids and converter.store.id_style == "id" else '""'
        values.append(f"{converter.id_expr.removeprefix('request.')}={unset}")
    return values


def _refs(plan: ServicePlan) -> Iterable[TypeRef]:
    for method in plan.methods:
        yield method.request
        yield method.response
        if method.resource is not None and method.kind != "stub":
            yield method.resource.message
        shape = method.shape
        if isinstance(shape, WatchShape):
            yield from (shape.event, shape.type_enum)
        if isinstance(shape, BatchCreateShape):
            yield shape.input.message


def _aliases(own: str, modules: Iterable[str]) -> dict[str, str]:
    """Import names of the pb2 modules: the file's own as `pb`, others by their base name (`empty_pb2`),
    numbered where two share one."""
    aliases = {own: "pb"}
    taken = set(_TAKEN) | {"pb"}
    for module in sorted(set(modules) - {own}):
        base = alias = module.rpartition(".")[2]
        n = 1
        while alias in taken or keyword.iskeyword(alias):
            n += 1
            alias = f"{base}_{n}"
        taken.add(alias)
        aliases[module] = alias
    return aliases


class _Names:
    def __init__(self, aliases: Mapping[str, str]) -> None:
        self.aliases = aliases

    def type(self, ref: TypeRef) -> str:
        return f"{self.aliases[ref.module]}.{ref.python_path}"


def _variable(name: str) -> str:
    """A local variable name that is no keyword and does not hide the handler's parameters."""
    if keyword.iskeyword(name) or name in ("request", "request_iterator", "context", "self", "item", "event"):
        return name + "_"
    return name


def _store(resource: Resource, names: _Names) -> StoreView:
    literals = [s for s in resource.pattern.split("/") if s]
    parent = "/".join("example" if s.startswith("{") else s for s in literals[:-2])
    return StoreView(
        attribute=_variable(resource.plural_snake),
        message=names.type(resource.message),
        name=resource.name,
        id_field=resource.id.name,
        integer_ids=resource.id_kind == "integer",
        id_style=resource.id_style,
        collection=resource.collection,
        example_parent=parent,
        create_time_field=resource.create_time_field,
        update_time_field=resource.update_time_field,
        display_fields=resource.display_fields,
    )


def _reply(reply: Reply, names: _Names) -> ReplyView:
    return ReplyView(names.type(reply.message), reply.shape, reply.resource_field, reply.unset_fields)


def _path(root: str, path: Sequence[str]) -> str:
    return ".".join((root, *path))


def _converter(
    created: CreateInput, store: StoreView, names: _Names, converters: dict[tuple[str, str], ConverterView]
) -> ConverterView:
    key = (created.message.full_name, store.name)
    if key not in converters:
        function = f"{snake_case(store.name)}_from_{snake_case(created.message.name)}"
        if created.source == "resource":
            function = f"new_{snake_case(store.name)}"
        taken = {c.function for c in converters.values()}
        while function in taken:
            function += "_"
        converters[key] = ConverterView(
            function=function,
            input=names.type(created.message),
            input_name=created.message.name,
            store=store,
            source=created.source,
            resource_field=created.resource_field,
            copied_fields=created.copied_fields,
            id_expr=f"request.{created.id_field}" if created.id_field else None,
            parent_expr=f"request.{created.parent_field}" if created.parent_field else None,
            ignored_fields=created.ignored_fields,
        )
    return converters[key]


def _method(
    method: MethodPlan,
    stores: Mapping[str, StoreView],
    names: _Names,
    converters: dict[tuple[str, str], ConverterView],
    validated: frozenset[str],
    watches: list[WatchView],
) -> MethodView:
    base = MethodView(
        name=method.name,
        python_name=method.python_name,
        client_streaming=method.client_streaming,
        server_streaming=method.server_streaming,
        request_type=names.type(method.request),
        response_type=names.type(method.response),
        request_name=method.request.name,
        response_name=method.response.name,
        kind=method.kind,
        reason=method.reason,
        store=None,
        validated=method.request.full_name in validated,
    )
    shape = method.shape
    if shape is None or method.resource is None:
        return base
    store = stores[method.resource.message.full_name]
    view = replace(base, store=store)
    if isinstance(shape, GetShape | DeleteShape):
        return replace(
            view,
            reply=_reply(shape.reply, names),
            id_expr=_path("request", shape.id_path),
            id_path=shape.id_path,
            ignored_fields=shape.ignored_fields,
        )
    if isinstance(shape, CreateShape):
        return replace(
            view, reply=_reply(shape.reply, names), converter=_converter(shape.input, store, names, converters)
        )
    if isinstance(shape, UpdateShape):
        source = f"request.{shape.resource_field}" if shape.resource_field else "request"
        update = UpdateView(
            strategy=shape.strategy,
            source=source,
            mask_expr=f"request.{shape.mask_field}" if shape.mask_field else None,
            fields=tuple(f.name for f in shape.fields),
        )
        return replace(
            view,
            reply=_reply(shape.reply, names),
            id_expr=_path("request", shape.id_path),
            id_path=shape.id_path,
            update=update,
            ignored_fields=shape.ignored_fields,
        )
    if isinstance(shape, ListShape):
        listing = ListView(
            delivery=shape.delivery,
            page_size=f"request.{shape.page_size_field}" if shape.page_size_field else "0",
            page_token=f"request.{shape.page_token_field}" if shape.page_token_field else '""',
            filter_expr=f"request.{shape.filter_field}" if shape.filter_field else None,
            parent_expr=f"request.{shape.parent_field}" if shape.parent_field and store.id_style == "name" else None,
            order_by_expr=f"request.{shape.order_by_field}" if shape.order_by_field else None,
            items_field=shape.items_field,
            next_page_token_field=shape.next_page_token_field,
            unset_fields=(shape.total_size_field,) if shape.total_size_field else (),
            page_size_field=shape.page_size_field,
            page_token_field=shape.page_token_field,
            parent_field=shape.parent_field,
        )
        ignored = (shape.parent_field,) if shape.parent_field and store.id_style != "name" else ()
        return replace(view, listing=listing, ignored_fields=ignored)
    if isinstance(shape, BatchCreateShape):
        converter = _converter(shape.input, store, names, converters)
        item = "item" if shape.item_field is None else f"item.{shape.item_field}"
        batch = BatchView(
            item_expr=item,
            item_field=shape.item_field,
            repeated_expr=None if method.client_streaming else f"request.{shape.item_field}",
            items_field=shape.items_field,
            count_field=shape.count_field,
            unset_fields=shape.unset_fields,
            item_type=names.type(method.request),
            input_type=names.type(shape.input.message),
        )
        return replace(view, converter=converter, batch=batch)
    if isinstance(shape, WatchShape):
        changes = f"{snake_case(store.name).upper()}_{snake_case(shape.type_enum.name).upper()}_VALUES"
        values = (
            ("created", shape.created_value),
            ("updated", shape.updated_value),
            ("deleted", shape.deleted_value),
        )
        enum = names.type(shape.type_enum)
        watch = WatchView(
            changes=changes,
            enum=enum,
            values=tuple((change, value) for change, value in values if value),
            event=names.type(shape.event),
            event_field=shape.event_field,
            type_field=shape.type_field,
            resource_field=shape.resource_field,
            time_field=shape.time_field,
            ids_expr=f"request.{shape.ids_field}" if shape.ids_field else None,
            types_expr=f"request.{shape.types_field}" if shape.types_field else None,
            filter_expr=f"request.{shape.filter_field}" if shape.filter_field else None,
            selects=f"{method.python_name}_filter",
            request=names.type(method.request),
            response=names.type(method.response),
            resource=store.message,
            var=store.var,
            id_field=store.id_field,
        )
        watches.append(watch)
        return replace(view, watch=watch)
    raise AssertionError(f"unhandled shape {type(shape).__name__}")


# --- which requests protovalidate checks ----------------------------------------------------------


def _has_rules(
    options: descriptor_pb2.FieldOptions | descriptor_pb2.MessageOptions | descriptor_pb2.OneofOptions,
) -> bool:
    """Whether options carry a buf.validate rule: as a parsed extension, or as an unknown field when the
    extension was not loaded when the image was parsed."""
    from google.protobuf import unknown_fields

    if any(fd.is_extension and fd.number == _VALIDATE_EXTENSION for fd, _ in options.ListFields()):
        return True
    unknown = unknown_fields.UnknownFieldSet(options)
    return any(unknown[i].field_number == _VALIDATE_EXTENSION for i in range(len(unknown)))


def _validated(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> frozenset[str]:
    """Full names of the messages protovalidate checks anything on: rules on the message, its oneofs or its
    fields, or on a message it holds."""
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}

    def walk(scope: str, items: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in items:
            full = f"{scope}.{message.name}" if scope else message.name
            messages[full] = message
            walk(full, message.nested_type)

    for file in files:
        walk(file.package, file.message_type)
    own = {
        name
        for name, m in messages.items()
        if _has_rules(m.options)
        or any(_has_rules(f.options) for f in m.field)
        or any(_has_rules(o.options) for o in m.oneof_decl)
    }
    holds = {name: {f.type_name.lstrip(".") for f in m.field if f.type_name} for name, m in messages.items()}
    found = set(own)
    changed = True
    while changed:  # a message is checked when one it holds is
        changed = False
        for name, held in holds.items():
            if name not in found and held & found:
                found.add(name)
                changed = True
    return frozenset(found)
