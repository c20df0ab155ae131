"""protokit.runtime server: real grpc.aio servers on 127.0.0.1:0 and real clients, no mocks of grpc.

Every test drives its own event loop with asyncio.run (pytest-asyncio is not a dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import prometheus_client
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "generated"))

from user.v1 import user_service_pb2 as pb  # noqa: E402
from user.v1 import user_service_pb2_grpc as pb_grpc  # noqa: E402

from protokit.runtime import (  # noqa: E402
    AlreadyExists,
    ConfigError,
    NotFound,
    PermissionDenied,
    Principal,
    Server,
    ServerSettings,
    Service,
    TlsConfig,
    bearer,
    build_server,
    channel,
    close_channels,
    current_principal,
)
from protokit.runtime.chain import new_request_id  # noqa: E402
from protokit.runtime.requestlog import LOG_FORMAT, StreamRequestLog  # noqa: E402

SERVICE = "user.v1.UserService"
TOKENS = {"alice-token": "alice", "bob-token": "bob"}
ALICE = bearer("alice-token")
BOB = bearer("bob-token")
PASSWORD = "correct horse battery staple"


class Conflict(Exception):
    """Not a DomainError: mapped through build_server(errors=...)."""


class UserService(pb_grpc.UserServiceServicer):
    """UserService in memory, with a few switches to misbehave on purpose."""

    SERVICE_NAME = SERVICE

    def __init__(self) -> None:
        self.users: dict[str, pb.User] = {}
        self.principals: list[Principal | None] = []
        self.stream_delay = 0.0
        self.get_delay = 0.0
        self.get_calls = 0

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_UserServiceServicer_to_server(self, server)

    def _create(self, request: pb.CreateUserRequest) -> pb.User:
        if any(u.username == request.username for u in self.users.values()):
            raise AlreadyExists(f"username {request.username} is taken")
        user = pb.User(
            id=str(uuid.uuid4()),
            username=request.username,
            email=request.email,
            role=request.role or pb.USER_ROLE_MEMBER,
            profile=request.profile,
        )
        self.users[user.id] = user
        return user

    def _get(self, user_id: str) -> pb.User:
        user = self.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.GetUserResponse:
        self.get_calls += 1
        self.principals.append(current_principal())
        if self.get_delay:
            await asyncio.sleep(self.get_delay)
        return pb.GetUserResponse(user=self._get(request.id))

    async def CreateUser(self, request: pb.CreateUserRequest, context: Any) -> pb.CreateUserResponse:
        self.principals.append(current_principal())
        if request.username == "crash":
            raise RuntimeError("database password is hunter2")
        if request.username == "conflict":
            raise Conflict("secret conflict detail")
        if request.username == "refused":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "refused by the handler")
        return pb.CreateUserResponse(user=self._create(request))

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Any) -> pb.UpdateUserResponse:
        user = self._get(request.id)
        if request.HasField("email"):
            user.email = request.email
        if request.HasField("username"):
            user.username = request.username
        return pb.UpdateUserResponse(user=user)

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: Any) -> pb.DeleteUserResponse:
        self._get(request.id)
        del self.users[request.id]
        return pb.DeleteUserResponse()

    async def ListUsers(self, request: pb.ListUsersRequest, context: Any) -> AsyncIterator[pb.ListUsersResponse]:
        self.principals.append(current_principal())
        users = sorted(self.users.values(), key=lambda u: u.username)
        for user in users[: request.page_size or 100]:
            if self.stream_delay:
                await asyncio.sleep(self.stream_delay)
            if user.username == "hidden":
                raise PermissionDenied("you may not see hidden")
            yield pb.ListUsersResponse(users=[user])

    async def BatchCreateUsers(self, request_iterator: Any, context: Any) -> pb.BatchCreateUsersResponse:
        self.principals.append(current_principal())
        created = [self._create(item.request) async for item in request_iterator]
        return pb.BatchCreateUsersResponse(created_count=len(created), users=created)

    async def WatchUsers(self, request_iterator: Any, context: Any) -> AsyncIterator[pb.WatchUsersResponse]:
        self.principals.append(current_principal())
        async for request in request_iterator:
            for user_id in request.user_ids:
                user = self.users.get(user_id)
                if user is not None:
                    event = pb.UserEvent(type=pb.UserEvent.TYPE_UPDATED, user=user)
                    yield pb.WatchUsersResponse(event=event)


class Verifier:
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def __call__(self, token: str) -> Principal | None:
        self.tokens.append(token)
        subject = TOKENS.get(token)
        return Principal(subject, {"scope": "users"}) if subject else None


def new_user(username: str = "alice", email: str | None = None) -> pb.CreateUserRequest:
    return pb.CreateUserRequest(
        username=username,
        email=f"{username}@example.com" if email is None else email,
        password=PASSWORD,
        profile=pb.UserProfile(display_name=username.title()),
    )


@dataclass
class Harness:
    server: Server
    service: UserService
    channel: grpc.aio.Channel
    stub: pb_grpc.UserServiceStub
    port: int


@contextlib.asynccontextmanager
async def serving(
    settings: ServerSettings | None = None, service: UserService | None = None, **kwargs: Any
) -> AsyncIterator[Harness]:
    """A started server (auth on unless verifier=None is passed) and a plaintext client."""
    service = UserService() if service is None else service
    kwargs.setdefault("verifier", Verifier())
    server = build_server([service], settings or ServerSettings(port=0), **kwargs)
    port = await server.start()
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Harness(server, service, ch, pb_grpc.UserServiceStub(ch), port)
    finally:
        await ch.close()
        await server.stop(0)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


async def rpc_error(awaitable: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value


def bad_request(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """(field, rule id) of every FieldViolation in the google.rpc.BadRequest detail of `err`."""
    status = rpc_status.from_call(err)
    assert status is not None and status.code == code_pb2.INVALID_ARGUMENT
    [detail] = status.details
    request = error_details_pb2.BadRequest()
    assert detail.Unpack(request)
    for violation in request.field_violations:
        assert violation.description  # protovalidate's message
    return [(v.field, v.reason) for v in request.field_violations]


async def stream_of(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


def sample(registry: prometheus_client.CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# -- every RPC kind through the chain ---------------------------------------------------------------------


class Noop(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        self.methods.append(details.method)
        return await continuation(details)


class GenericOnlyUserService(UserService):
    """Registers the way code generated before grpcio 1.62 does: generic handlers only."""

    def add_to_server(self, server: grpc.aio.Server) -> None:
        class GenericOnly:
            add_generic_rpc_handlers = server.add_generic_rpc_handlers

            def add_registered_method_handlers(self, *args: Any) -> None:
                pass  # what older grpcio's generated code never calls

        pb_grpc.add_UserServiceServicer_to_server(self, GenericOnly())


@pytest.mark.parametrize("mode", ["wrapped-at-registration", "as-interceptor", "generic-handlers-only"])
def test_every_rpc_kind_through_the_chain_with_auth(mode: str) -> None:
    extra = Noop()

    async def test() -> None:
        kwargs: dict[str, Any] = {"extra_interceptors": [extra]} if mode == "as-interceptor" else {}
        if mode == "generic-handlers-only":
            kwargs["service"] = GenericOnlyUserService()
        async with serving(**kwargs) as h:
            assert isinstance(h.service, Service)
            stub = h.stub
            created = (await stub.CreateUser(new_user("alice"), metadata=ALICE)).user
            assert created.username == "alice" and uuid.UUID(created.id).version == 4
            got = await stub.GetUser(pb.GetUserRequest(id=created.id), metadata=ALICE)
            assert got.user == created
            updated = await stub.UpdateUser(
                pb.UpdateUserRequest(id=created.id, email="alice@example.org"), metadata=BOB
            )
            assert updated.user.email == "alice@example.org"

            batch = await stub.BatchCreateUsers(
                stream_of(*(pb.BatchCreateUsersRequest(request=new_user(n)) for n in ("bob", "carol"))),
                metadata=ALICE,
            )
            assert batch.created_count == 2 and [u.username for u in batch.users] == ["bob", "carol"]

            listed = [r.users[0].username async for r in stub.ListUsers(pb.ListUsersRequest(), metadata=ALICE)]
            assert listed == ["alice", "bob", "carol"]

            ids = [created.id, batch.users[1].id]
            watch = stub.WatchUsers(
                stream_of(pb.WatchUsersRequest(user_ids=ids[:1]), pb.WatchUsersRequest(user_ids=ids)),
                metadata=BOB,
            )
            events = [r.event.user.username async for r in watch]
            assert events == ["alice", "alice", "carol"]
            assert await watch.code() == grpc.StatusCode.OK

            await stub.DeleteUser(pb.DeleteUserRequest(id=created.id), metadata=ALICE)
            err = await rpc_error(stub.GetUser(pb.GetUserRequest(id=created.id), metadata=ALICE))
            assert err.code() == grpc.StatusCode.NOT_FOUND

            # Handlers saw the authenticated caller, for every RPC kind.
            subjects = [p.subject if p else None for p in h.service.principals]
            assert subjects == ["alice", "alice", "alice", "alice", "bob", "alice"]
            assert h.service.principals[0] == Principal("alice", {"scope": "users"})
        assert current_principal() is None  # nothing leaks out of the RPC tasks

    run(test)
    if mode == "as-interceptor":
        assert f"/{SERVICE}/WatchUsers" in extra.methods and f"/{SERVICE}/GetUser" in extra.methods


# -- validation -----------------------------------------------------------------------------------------


def test_invalid_unary_request_is_invalid_argument_with_bad_request_details() -> None:
    async def test() -> None:
        async with serving() as h:
            err = await rpc_error(h.stub.CreateUser(new_user("alice", email="not-an-email"), metadata=ALICE))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert bad_request(err) == [("email", "string.email")]
            assert "email" in (err.details() or "")

            request = pb.CreateUserRequest(username="A", email="x@example.com", password="short")
            assert sorted(bad_request(await rpc_error(h.stub.CreateUser(request, metadata=ALICE)))) == [
                ("password", "string.min_len"),
                ("profile", "required"),
                ("username", "string.min_len"),
                ("username", "string.pattern"),
            ]
            assert h.service.principals == []  # the handler never ran
            # page_size is limited to 0..1000, on a server stream too
            err = await rpc_error(_drain(h.stub.ListUsers(pb.ListUsersRequest(page_size=5000), metadata=ALICE)))
            assert bad_request(err) == [("page_size", "int32.gte_lte")]

    run(test)


async def _drain(call: Any) -> list[Any]:
    return [item async for item in call]


async def _read_rest(call: Any) -> list[Any]:
    """The remaining messages of a call already read with read() (iteration and read() do not mix)."""
    items = []
    while (item := await call.read()) is not grpc.aio.EOF:
        items.append(item)
    return items


def test_invalid_second_message_of_a_client_stream() -> None:
    async def test() -> None:
        async with serving() as h:
            messages = [
                pb.BatchCreateUsersRequest(request=new_user("first")),
                pb.BatchCreateUsersRequest(request=new_user("second", email="nope")),
                pb.BatchCreateUsersRequest(request=new_user("third")),
            ]
            err = await rpc_error(h.stub.BatchCreateUsers(stream_of(*messages), metadata=ALICE))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert bad_request(err) == [("request.email", "string.email")]
            # The first message reached the handler before the second was rejected; the third never did.
            assert [u.username for u in h.service.users.values()] == ["first"]

            # A missing required message in the wrapper
            err = await rpc_error(h.stub.BatchCreateUsers(stream_of(pb.BatchCreateUsersRequest()), metadata=ALICE))
            assert bad_request(err) == [("request", "required")]

    run(test)


def test_invalid_message_of_a_bidi_stream_names_the_repeated_index() -> None:
    async def test() -> None:
        async with serving() as h:
            user = (await h.stub.CreateUser(new_user("alice"), metadata=ALICE)).user
            watch = h.stub.WatchUsers(
                stream_of(
                    pb.WatchUsersRequest(user_ids=[user.id]),
                    pb.WatchUsersRequest(user_ids=[user.id, "not-a-uuid"]),
                ),
                metadata=ALICE,
            )
            first = await watch.read()
            assert first.event.user.username == "alice"
            err = await rpc_error(_read_rest(watch))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert bad_request(err) == [("user_ids[1]", "string.uuid")]

    run(test)


def test_field_paths_of_map_keys_and_indexes() -> None:
    import protovalidate
    from protobuf import Oneof

    from protokit.runtime.chain import field_path

    element = protovalidate.FieldPathElementPb
    violation = protovalidate.ViolationPb(
        field=protovalidate.FieldPathPb(
            elements=[
                element(field_name="labels", subscript=Oneof("string_key", 'a"b')),
                element(field_name="flags", subscript=Oneof("bool_key", True)),
                element(field_name="ids", subscript=Oneof("index", 3)),
                element(field_name="leaf"),
            ]
        )
    )
    assert field_path(violation) == 'labels["a\\"b"].flags[true].ids[3].leaf'
    assert field_path(protovalidate.ViolationPb()) == ""  # a message-level rule names no field


# -- authentication -------------------------------------------------------------------------------------


def test_authentication() -> None:
    verifier = Verifier()

    async def test() -> None:
        public = [f"/{SERVICE}/ListUsers"]
        async with serving(verifier=verifier, public_methods=public) as h:
            err = await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4()))))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            assert err.details() == "missing bearer token"
            err = await rpc_error(
                h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), metadata=(("authorization", "Basic abc"),))
            )
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            err = await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), metadata=bearer("forged")))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            assert err.details() == "invalid token"
            # Authentication comes before validation: an anonymous caller learns nothing about the request.
            err = await rpc_error(h.stub.GetUser(pb.GetUserRequest(id="bad")))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            # Streams are authenticated too.
            err = await rpc_error(h.stub.BatchCreateUsers(stream_of(pb.BatchCreateUsersRequest(request=new_user()))))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            assert h.service.principals == []

            # A public method needs no token, and its handler sees no principal.
            assert await _drain(h.stub.ListUsers(pb.ListUsersRequest())) == []
            assert h.service.principals == [None]
            # Health is always public; with auth on, reflection (the list of every method) needs a token.
            health = health_pb2_grpc.HealthStub(h.channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            err = await rpc_error(_list_services(h.channel))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            assert await _list_services(h.channel, ALICE)
        assert verifier.tokens == ["forged", "alice-token"]  # the verifier only sees well-formed bearer tokens
        # PROTOKIT_REFLECTION_PUBLIC opens reflection again.
        async with serving(ServerSettings.from_env({"PROTOKIT_REFLECTION_PUBLIC": "1"}, port=0)) as h:
            assert await _list_services(h.channel)

    run(test)


def test_without_a_verifier_authentication_is_off() -> None:
    async def test() -> None:
        async with serving(verifier=None) as h:
            user = (await h.stub.CreateUser(new_user("alice"))).user
            assert (await h.stub.GetUser(pb.GetUserRequest(id=user.id))).user == user
            assert h.service.principals == [None, None]

    run(test)


# -- errors -----------------------------------------------------------------------------------------------


def test_domain_errors_mapped_errors_and_handler_aborts() -> None:
    async def test() -> None:
        async with serving(errors={Conflict: grpc.StatusCode.ABORTED}) as h:
            missing = str(uuid.uuid4())
            err = await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=missing), metadata=ALICE))
            assert err.code() == grpc.StatusCode.NOT_FOUND
            assert err.details() == f"user {missing} not found"

            await h.stub.CreateUser(new_user("alice"), metadata=ALICE)
            err = await rpc_error(h.stub.CreateUser(new_user("alice"), metadata=ALICE))
            assert (err.code(), err.details()) == (grpc.StatusCode.ALREADY_EXISTS, "username alice is taken")

            err = await rpc_error(h.stub.CreateUser(new_user("conflict"), metadata=ALICE))
            assert err.code() == grpc.StatusCode.ABORTED
            assert "secret" not in (err.details() or "")

            err = await rpc_error(h.stub.CreateUser(new_user("refused"), metadata=ALICE))
            assert (err.code(), err.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "refused by the handler")

            # A DomainError in the middle of a server stream: the messages before it arrive, then the status.
            await h.stub.CreateUser(new_user("hidden"), metadata=ALICE)
            call = h.stub.ListUsers(pb.ListUsersRequest(), metadata=ALICE)
            got = []
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for reply in call:
                    got.append(reply.users[0].username)
            assert got == ["alice"]
            assert (info.value.code(), info.value.details()) == (
                grpc.StatusCode.PERMISSION_DENIED,
                "you may not see hidden",
            )

    run(test)


def test_unexpected_exception_is_internal_without_details(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="protokit.runtime")

    async def test() -> None:
        async with serving() as h:
            err = await rpc_error(h.stub.CreateUser(new_user("crash"), metadata=ALICE))
            assert err.code() == grpc.StatusCode.INTERNAL
            assert err.details() == "internal error"
            assert "hunter2" not in str(err)

    run(test)
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "CreateUser" in failure.getMessage()
    assert failure.exc_info is not None and "hunter2" in str(failure.exc_info[1])  # server-side only


def test_deadline_exceeded_on_a_slow_handler() -> None:
    registry = prometheus_client.CollectorRegistry()

    async def test() -> None:
        async with serving(registry=registry) as h:
            h.service.get_delay = 2.0
            started = time.monotonic()
            err = await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), metadata=ALICE, timeout=0.2))
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - started < 1.5
            labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": "GetUser"}
            for _ in range(100):  # the server notices the deadline on its own schedule
                if sample(registry, "grpc_server_handled_total", grpc_code="DEADLINE_EXCEEDED", **labels):
                    break
                await asyncio.sleep(0.02)
            assert sample(registry, "grpc_server_handled_total", grpc_code="DEADLINE_EXCEEDED", **labels) == 1

    run(test)


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_a_client_cancel_well_before_the_deadline_counts_as_cancelled(timeout: float | None) -> None:
    registry = prometheus_client.CollectorRegistry()

    async def test() -> None:
        async with serving(registry=registry) as h:
            h.service.get_delay = 2.0
            call = h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), metadata=ALICE, timeout=timeout)
            await asyncio.sleep(0.2)
            call.cancel()
            labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": "GetUser"}
            for _ in range(100):
                if sample(registry, "grpc_server_handled_total", grpc_code="CANCELLED", **labels):
                    break
                await asyncio.sleep(0.02)
            assert sample(registry, "grpc_server_handled_total", grpc_code="CANCELLED", **labels) == 1
            assert not sample(registry, "grpc_server_handled_total", grpc_code="DEADLINE_EXCEEDED", **labels)

    run(test)


# -- health, reflection, shutdown ---------------------------------------------------------------------


def test_health_serving_then_not_serving_during_stop() -> None:
    async def test() -> None:
        async with serving() as h:
            health = health_pb2_grpc.HealthStub(h.channel)
            for name in ("", SERVICE):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            err = await rpc_error(health.Check(health_pb2.HealthCheckRequest(service="no.such.Service")))
            assert err.code() == grpc.StatusCode.NOT_FOUND

            watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            stopping = asyncio.create_task(h.server.stop(grace=5))
            assert (await asyncio.wait_for(watch.read(), 5)).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
            await asyncio.wait_for(stopping, 5)  # the watch was the last RPC: no need to wait out the grace

    run(test)


async def _list_services(ch: grpc.aio.Channel, metadata: Any = None) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    call = stub.ServerReflectionInfo(stream_of(request), metadata=metadata)
    [reply] = [r async for r in call]
    return sorted(s.name for s in reply.list_services_response.service)


async def _drain(call: AsyncIterator[Any]) -> list[Any]:
    return [r async for r in call]


def test_reflection_lists_the_services_and_can_be_turned_off() -> None:
    async def test() -> None:
        async with serving(verifier=None) as h:
            assert await _list_services(h.channel) == [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                SERVICE,
            ]
            # The descriptors are served too: enough for grpcurl / buf curl.
            stub = reflection_pb2_grpc.ServerReflectionStub(h.channel)
            request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
            [reply] = [r async for r in stub.ServerReflectionInfo(stream_of(request))]
            assert reply.file_descriptor_response.file_descriptor_proto
            # grpc.reflection.v1 (what buf curl, grpcurl and Postman ask first): v1alpha's messages, byte
            # for byte, under the v1 name.
            v1 = h.channel.stream_stream(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            [again] = await _drain(v1(stream_of(request)))
            assert again.file_descriptor_response == reply.file_descriptor_response
        async with serving(ServerSettings(port=0, reflection=False), verifier=None) as h:
            # No request message: one sent after the server's UNIMPLEMENTED races it, and grpc core then
            # reports INTERNAL ("Failed execute_batch") instead of the status.
            call = reflection_pb2_grpc.ServerReflectionStub(h.channel).ServerReflectionInfo(stream_of())
            err = await rpc_error(_drain(call))
            assert err.code() == grpc.StatusCode.UNIMPLEMENTED

    run(test)


def test_graceful_shutdown_lets_an_in_flight_stream_finish() -> None:
    async def test() -> None:
        async with serving() as h:
            for name in ("ann", "ben", "cat", "dan", "eve", "fay"):
                await h.stub.CreateUser(new_user(name), metadata=ALICE)
            h.service.stream_delay = 0.05
            call = h.stub.ListUsers(pb.ListUsersRequest(), metadata=ALICE)
            got = [(await call.read()).users[0].username]
            stopping = asyncio.create_task(h.server.stop(grace=5))
            await asyncio.sleep(0.05)
            # New RPCs are refused while the stream drains.
            err = await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), metadata=ALICE, timeout=2))
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            got += [reply.users[0].username for reply in await _read_rest(call)]
            assert got == ["ann", "ben", "cat", "dan", "eve", "fay"]
            assert await call.code() == grpc.StatusCode.OK
            await asyncio.wait_for(stopping, 5)

    run(test)


def test_stop_cancels_what_outlives_the_grace_period() -> None:
    async def test() -> None:
        async with serving() as h:
            await h.stub.CreateUser(new_user("ann"), metadata=ALICE)
            await h.stub.CreateUser(new_user("ben"), metadata=ALICE)
            h.service.stream_delay = 1.0
            call = h.stub.ListUsers(pb.ListUsersRequest(), metadata=ALICE)
            started = time.monotonic()
            await h.server.stop(grace=0.2)
            assert time.monotonic() - started < 1.0
            err = await rpc_error(_drain(call))
            assert err.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)

    run(test)


# -- metrics, rate limiting, request ids and logs -----------------------------------------------------


def test_metrics_in_the_registry_and_over_http() -> None:
    registry = prometheus_client.CollectorRegistry()

    async def test() -> None:
        async with serving(ServerSettings(port=0, metrics_port=0), registry=registry) as h:
            assert h.server.metrics_registry is registry
            await h.stub.CreateUser(new_user("alice"), metadata=ALICE)
            await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), metadata=ALICE))
            await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4()))))
            assert len(await _drain(h.stub.ListUsers(pb.ListUsersRequest(), metadata=ALICE))) == 1

            def labels(kind: str, method: str) -> dict[str, str]:
                return {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method}

            get = labels("unary", "GetUser")
            assert sample(registry, "grpc_server_started_total", **get) == 2
            assert sample(registry, "grpc_server_handled_total", grpc_code="NOT_FOUND", **get) == 1
            assert sample(registry, "grpc_server_handled_total", grpc_code="UNAUTHENTICATED", **get) == 1
            create = labels("unary", "CreateUser")
            assert sample(registry, "grpc_server_handled_total", grpc_code="OK", **create) == 1
            assert sample(registry, "grpc_server_handling_seconds_count", **create) == 1
            assert sample(registry, "grpc_server_handling_seconds_sum", **create) > 0
            stream = labels("server_stream", "ListUsers")
            assert sample(registry, "grpc_server_handled_total", grpc_code="OK", **stream) == 1

            assert h.server.metrics_port
            url = f"http://127.0.0.1:{h.server.metrics_port}/metrics"
            text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
            handled = {
                (s.labels["grpc_method"], s.labels["grpc_code"]): s.value
                for family in text_string_to_metric_families(text)
                if family.name == "grpc_server_handled"
                for s in family.samples
                if s.name == "grpc_server_handled_total"
            }
            assert handled[("GetUser", "NOT_FOUND")] == 1
            assert handled[("CreateUser", "OK")] == 1
            port = h.server.metrics_port
        with pytest.raises(OSError):  # the HTTP endpoint stops with the server
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)

    run(test)


def test_rate_limit_per_principal() -> None:
    async def test() -> None:
        async with serving(ServerSettings(port=0, rate_limit=0.5, rate_burst=3)) as h:
            request = pb.GetUserRequest(id=str(uuid.uuid4()))
            for _ in range(3):
                assert (await rpc_error(h.stub.GetUser(request, metadata=ALICE))).code() == grpc.StatusCode.NOT_FOUND
            err = await rpc_error(h.stub.GetUser(request, metadata=ALICE))
            assert (err.code(), err.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded")
            status = rpc_status.from_call(err)
            assert status is not None
            retry = error_details_pb2.RetryInfo()
            assert any_pb2.Any.Unpack(status.details[0], retry)
            assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 2
            # Other callers have their own bucket; health is never limited.
            assert (await rpc_error(h.stub.GetUser(request, metadata=BOB))).code() == grpc.StatusCode.NOT_FOUND
            health = health_pb2_grpc.HealthStub(h.channel)
            for _ in range(5):
                await health.Check(health_pb2.HealthCheckRequest())

    run(test)


def test_rate_limit_per_client_address_without_auth() -> None:
    async def test() -> None:
        async with serving(ServerSettings(port=0, rate_limit=0.5, rate_burst=2), verifier=None) as h:
            request = pb.GetUserRequest(id=str(uuid.uuid4()))
            codes = [(await rpc_error(h.stub.GetUser(request))).code() for _ in range(3)]
            assert codes == [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED]

    run(test)


def test_request_id_is_logged_without_secrets_and_echoed_on_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="protokit.runtime")
    generated: list[str] = []

    async def test() -> None:
        async with serving() as h:
            call = h.stub.CreateUser(new_user("alice"), metadata=(*ALICE, ("x-request-id", "req-123")))
            await call
            assert "x-request-id" not in dict(await call.trailing_metadata() or ())  # successes: not echoed

            call = h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), metadata=ALICE)
            err = await rpc_error(call)
            generated.append(dict(err.trailing_metadata() or ())["x-request-id"])
            assert re.fullmatch(r"[0-9a-f]{32}", generated[0])

            # Rejected requests carry it too, next to the rich error details.
            err = await rpc_error(h.stub.CreateUser(new_user("x"), metadata=(*ALICE, ("x-request-id", "req-456"))))
            assert dict(err.trailing_metadata() or ())["x-request-id"] == "req-456"
            assert bad_request(err)
            # A handler's own context.abort(), a missing token, and a stream failing midway carry it too.
            err = await rpc_error(h.stub.CreateUser(new_user("refused"), metadata=(*ALICE, ("x-request-id", "r-1"))))
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert dict(err.trailing_metadata() or ())["x-request-id"] == "r-1"
            err = await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4()))))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            assert re.fullmatch(r"[0-9a-f]{32}", dict(err.trailing_metadata() or ())["x-request-id"])
            # A caller's id that is not safe to log verbatim (spaces, quotes, too long) is replaced.
            for forged in ("x code=OK request_id=forged", 'a"b', "a" * 129):
                call = h.stub.GetUser(
                    pb.GetUserRequest(id=str(uuid.uuid4())), metadata=(*ALICE, ("x-request-id", forged))
                )
                err = await rpc_error(call)
                assert re.fullmatch(r"[0-9a-f]{32}", dict(err.trailing_metadata() or ())["x-request-id"]), forged
            await h.stub.CreateUser(new_user("hidden"), metadata=ALICE)
            listing = h.stub.ListUsers(pb.ListUsersRequest(), metadata=(*ALICE, ("x-request-id", "r-2")))
            assert (await rpc_error(_drain(listing))).code() == grpc.StatusCode.PERMISSION_DENIED
            assert dict(await listing.trailing_metadata() or ())["x-request-id"] == "r-2"
            # A stream that ends well does not.
            listing = h.stub.ListUsers(pb.ListUsersRequest(page_size=1), metadata=(*ALICE, ("x-request-id", "r-3")))
            assert len(await _drain(listing)) == 1
            assert "x-request-id" not in dict(await listing.trailing_metadata() or ())

    run(test)
    lines = [
        r.getMessage() for r in caplog.records if r.name == "protokit.runtime" and r.getMessage().startswith("rpc ")
    ]
    [created] = [line for line in lines if "req-123" in line]
    assert f"/{SERVICE}/CreateUser" in created and "code=OK" in created and "peer=ipv" in created
    assert re.search(r"duration_ms=\d+\.\d+", created)
    [missing] = [line for line in lines if generated[0] in line]
    assert f"/{SERVICE}/GetUser" in missing and "code=NOT_FOUND" in missing
    assert any("req-456" in line and "code=INVALID_ARGUMENT" in line for line in lines)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "alice-token" not in everything and "Bearer" not in everything
    assert PASSWORD not in everything and "alice@example.com" not in everything


def test_request_ids_are_random_unique_and_new_in_a_forked_child() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    # Unpredictable: no shared prefix and counter; every half of every id is new (2^64 chances each).
    assert len({i[:16] for i in ids}) == len(ids) and len({i[16:] for i in ids}) == len(ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids must not repeat the parent's
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    parent = new_request_id()
    assert re.fullmatch(r"[0-9a-f]{32}", child) and child[:16] != parent[:16]


def test_stream_request_log_line_is_what_the_logging_formatter_writes() -> None:
    sink = StreamRequestLog(io.StringIO())
    formatter = logging.Formatter(LOG_FORMAT)
    for now in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.5):
        args = (f"/{SERVICE}/GetUser", "ipv4:127.0.0.1:5000", "NOT_FOUND", 0.0123456, "rid-1")
        record = logging.LogRecord(
            "protokit.runtime",
            logging.INFO,
            __file__,
            0,
            "rpc %s peer=%s code=%s duration_ms=%.2f request_id=%s",
            (*args[:3], args[3] * 1000, args[4]),
            None,
        )
        record.created, record.msecs = now, int((now - int(now)) * 1000) + 0.0
        assert sink.lines([(now, *args)]) == formatter.format(record) + "\n"


def test_stream_request_log_batches_lines_and_flushes_on_stop() -> None:
    out = io.StringIO()
    sink = StreamRequestLog(out)

    async def test() -> None:
        async with serving(request_log=sink) as h:
            for i in range(3):
                await h.stub.GetUser(
                    pb.GetUserRequest(id=str(uuid.uuid4())), metadata=(*ALICE, ("x-request-id", f"r{i}"))
                ).code()
            await asyncio.sleep(sink.FLUSH_SECONDS * 4)
            lines = out.getvalue().splitlines()
            assert [re.search(r"request_id=(\S+)$", line)[1] for line in lines] == ["r0", "r1", "r2"]  # type: ignore[index]
            assert all(f"INFO protokit.runtime: rpc /{SERVICE}/GetUser peer=ipv" in line for line in lines)
            assert all("code=NOT_FOUND duration_ms=" in line for line in lines)
            await h.stub.CreateUser(new_user("alice"), metadata=(*ALICE, ("x-request-id", "last")))
        # serving() stopped the server at once: the last line was flushed by stop(), not by the timer.
        assert out.getvalue().splitlines()[-1].endswith("request_id=last")

    run(test)


def test_request_log_honours_the_level() -> None:
    out = io.StringIO()

    async def test() -> None:
        async with serving(ServerSettings(port=0, log_level="WARNING"), request_log=StreamRequestLog(out)) as h:
            await h.stub.CreateUser(new_user("alice"), metadata=ALICE)

    try:
        run(test)
    finally:
        logging.getLogger("protokit.runtime").setLevel(logging.NOTSET)
    assert out.getvalue() == ""


# -- TLS ------------------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA with a server certificate (localhost, 127.0.0.1) and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca", cwd=d)
    for name, usage, san in (
        ("server", "serverAuth", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "clientAuth", "subjectAltName=DNS:alice.client"),
    ):
        (d / f"{name}.ext").write_text(f"{san}\nextendedKeyUsage={usage}\n")
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d,
        )  # fmt: skip
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


def test_tls(pki: Pki) -> None:
    settings = ServerSettings(port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))

    async def test() -> None:
        async with serving(settings, verifier=None) as h:
            secure = channel(f"127.0.0.1:{h.port}", tls=TlsConfig(ca_file=str(pki.ca), server_name="localhost"))
            user = (await pb_grpc.UserServiceStub(secure).CreateUser(new_user("alice"), timeout=5)).user
            assert user.username == "alice"
            # The plaintext client cannot talk to a TLS server.
            err = await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=user.id), timeout=2))
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            await close_channels()

    run(test)


def test_mtls_requires_a_client_certificate(pki: Pki) -> None:
    settings = ServerSettings(
        port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), tls_client_ca=str(pki.ca)
    )

    async def test() -> None:
        async with serving(settings, verifier=None) as h:
            target = f"127.0.0.1:{h.port}"
            anonymous = channel(target, tls=TlsConfig(ca_file=str(pki.ca), server_name="localhost"))
            err = await rpc_error(pb_grpc.UserServiceStub(anonymous).CreateUser(new_user("alice"), timeout=2))
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            tls = TlsConfig(
                ca_file=str(pki.ca),
                cert_file=str(pki.client_cert),
                key_file=str(pki.client_key),
                server_name="localhost",
            )
            user = (await pb_grpc.UserServiceStub(channel(target, tls=tls)).CreateUser(new_user("alice"))).user
            assert user.username == "alice"
            await close_channels()

    run(test)


def test_unreadable_tls_files_fail_at_build_time(tmp_path: Path) -> None:
    settings = ServerSettings(port=0, tls_cert=str(tmp_path / "missing.pem"), tls_key=str(tmp_path / "missing.key"))
    with pytest.raises(ConfigError, match=r"missing\.pem"):
        build_server([UserService()], settings)


def test_tls_misconfiguration_is_one_line_naming_the_file_and_exit_2(pki: Pki, tmp_path: Path) -> None:
    """Before: a key that does not match its certificate exited with "Failed to bind to address" and a
    traceback from grpc."""
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(SERVE_SCRIPT.format(generated=str(REPO / "generated"))))
    not_pem = tmp_path / "cert.txt"
    not_pem.write_text("hello")
    encrypted = tmp_path / "encrypted.key"  # grpc cannot use it; OpenSSL must not prompt for its password
    _openssl("pkey", "-in", pki.server_key, "-out", encrypted, "-aes256", "-passout", "pass:secret", cwd=tmp_path)
    cases = [
        # the client's key with the server's certificate
        (
            pki.server_cert,
            pki.client_key,
            f"error: TLS key {pki.client_key} does not match the certificate {pki.server_cert}",
        ),
        (not_pem, pki.server_key, f"error: TLS certificate {not_pem} is not PEM"),
        (pki.server_cert, pki.server_cert, f"error: TLS key {pki.server_cert} is not PEM"),
        (pki.server_cert, encrypted, f"error: TLS certificate {pki.server_cert} or key {encrypted} cannot be loaded"),
    ]
    for cert, key, message in cases:
        env = {
            "PROTOKIT_PORT": "0",
            "PROTOKIT_TLS_CERT": str(cert),
            "PROTOKIT_TLS_KEY": str(key),
            "PATH": "/usr/bin:/bin",
        }
        proc = subprocess.run(
            [sys.executable, str(script)], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr


# -- tracing ----------------------------------------------------------------------------------------------


def test_tracing_spans_with_an_in_memory_exporter() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set once per process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def test() -> None:
        async with serving(ServerSettings(port=0, tracing=True)) as h:
            user = (await h.stub.CreateUser(new_user("alice"), metadata=ALICE)).user
            await rpc_error(h.stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), metadata=ALICE))
            assert [r.users[0].id async for r in h.stub.ListUsers(pb.ListUsersRequest(), metadata=ALICE)] == [user.id]
            watch = h.stub.WatchUsers(stream_of(pb.WatchUsersRequest(user_ids=[user.id])), metadata=ALICE)
            assert len(await _drain(watch)) == 1
            # Health Watch writes with context.write(); the chain makes it a generator for OTel.
            health = health_pb2_grpc.HealthStub(h.channel).Watch(health_pb2.HealthCheckRequest())
            assert (await health.read()).status == health_pb2.HealthCheckResponse.SERVING
            health.cancel()

    run(test)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    for method in ("CreateUser", "GetUser", "ListUsers", "WatchUsers"):
        assert f"/{SERVICE}/{method}" in spans
    not_found = spans[f"/{SERVICE}/GetUser"]
    assert not_found.attributes is not None
    assert not_found.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_tracing_without_the_otel_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.grpc", None)
    with pytest.raises(RuntimeError, match=r"opentelemetry-instrumentation-grpc.*otel"):
        build_server([UserService()], ServerSettings(port=0, tracing=True))


# -- building and running ---------------------------------------------------------------------------------


def test_build_server_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="twice"):
        build_server([UserService(), UserService()], ServerSettings(port=0))
    with pytest.raises(ValueError, match="full method name"):
        build_server([UserService()], ServerSettings(port=0), public_methods=["GetUser"])
    server = build_server([UserService()], ServerSettings(port=0))
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.port


def test_a_busy_port_fails_start() -> None:
    async def test() -> None:
        async with serving() as h:
            with pytest.raises(RuntimeError, match="bind"):
                await build_server([UserService()], ServerSettings(port=h.port)).start()
            # A busy metrics port fails before any gRPC port serves.
            busy = build_server([UserService()], ServerSettings(port=0, metrics_port=0))
            await busy.start()
            try:
                again = build_server([UserService()], ServerSettings(port=0, metrics_port=busy.metrics_port))
                with pytest.raises(OSError):
                    await again.start()
            finally:
                await busy.stop(0)

    run(test)


SERVE_SCRIPT = """
import sys
sys.path.insert(0, {generated!r})
from user.v1 import user_service_pb2 as pb, user_service_pb2_grpc as pb_grpc
from protokit.runtime import run

class Users(pb_grpc.UserServiceServicer):
    SERVICE_NAME = "user.v1.UserService"

    def add_to_server(self, server):
        pb_grpc.add_UserServiceServicer_to_server(self, server)

    async def GetUser(self, request, context):
        return pb.GetUserResponse(user=pb.User(id=request.id, username="from_run"))

if __name__ == "__main__":
    run([Users()])
"""


def test_run_serves_until_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(SERVE_SCRIPT.format(generated=str(REPO / "generated"))))
    env = {"PROTOKIT_PORT": "0", "PROTOKIT_GRACE_PERIOD": "2", "PROTOKIT_REFLECTION": "0", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        port = None
        while port is None and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 1.0)
            if ready:
                line = proc.stderr.readline()
                assert line, "the server exited before serving"
                match = re.search(r"serving user\.v1\.UserService on 127\.0\.0\.1:(\d+) \(plaintext\)", line)
                port = int(match.group(1)) if match else None
        assert port, "no 'serving ...' log line"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = pb_grpc.UserServiceStub(ch).GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), timeout=5)
            assert reply.user.username == "from_run"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        rest = proc.stderr.read()
        assert "SIGTERM received" in rest and "stopping" in rest
        # run() configured logging, so the request log went to stderr directly, in the same layout.
        assert re.search(
            r"^\S+ \S+ INFO protokit\.runtime: rpc /user\.v1\.UserService/GetUser peer=ipv\S+ code=OK ", rest, re.M
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
