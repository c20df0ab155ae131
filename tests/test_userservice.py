"""The example UserService end to end: generated base + client, protokit.runtime, sqlite store, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from conftest import BIN, BUF, REPO, free_port, wait_for_reflection

sys.path[:0] = [str(REPO / "generated"), str(REPO / "examples" / "userservice")]

from grpc_status import rpc_status  # noqa: E402
from user.v1 import user_service_pb2 as pb  # noqa: E402
from user.v1 import user_service_pb2_grpc  # noqa: E402
from user.v1.user_service_protokit import UserServiceClient  # noqa: E402
from userservice import store  # noqa: E402
from userservice.store import NewUser, UserStore  # noqa: E402
from userservice.user_service import ERRORS, MAX_BATCH, MAX_EMAIL_LENGTH, UserService  # noqa: E402

from protokit.runtime import Fanout, ServerSettings, build_server, close_channels  # noqa: E402

T = TypeVar("T")


def new_user(name: str) -> pb.CreateUserRequest:
    return pb.CreateUserRequest(
        username=name, email=f"{name}@example.com", password="correct horse battery", profile=pb.UserProfile()
    )


def serve(test: Callable[[UserServiceClient], Awaitable[T]], service: UserService | None = None, **settings: Any) -> T:
    """Run `test` against the example service on a real loopback server with the full interceptor chain."""
    return serve_at(lambda target: test(UserServiceClient.connect(target)), service, **settings)


def serve_at(test: Callable[[str], Awaitable[T]], service: UserService | None = None, **settings: Any) -> T:
    """`serve`, giving `test` the server's address."""

    async def main() -> T:
        server_settings = ServerSettings(port=0, reflection=True, **settings)
        server = build_server([service or UserService()], server_settings, errors=ERRORS)
        port = await server.start()
        try:
            return await test(f"127.0.0.1:{port}")
        finally:
            await close_channels()
            await server.stop(grace=1)

    return asyncio.run(main())


async def list_pages(client: UserServiceClient, page_size: int) -> list[list[pb.ListUsersResponse]]:
    """Every page, following next_page_token: one ListUsers call (a list of its messages) per page."""
    pages: list[list[pb.ListUsersResponse]] = []
    token = ""
    while not pages or token:
        request = pb.ListUsersRequest(page_size=page_size, page_token=token)
        pages.append([message async for message in client.list_users(request)])
        token = pages[-1][-1].next_page_token
    return pages


@pytest.fixture
def service(tmp_path: Path) -> UserService:
    """The service over a real SQLite file."""
    return UserService(UserStore(str(tmp_path / "users.db")))


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that create hundreds of users: no ~50 ms of scrypt per password."""
    monkeypatch.setattr(store, "_hash_password", lambda password: hashlib.sha256(password.encode()).digest())


def test_unary_crud() -> None:
    async def scenario(client: UserServiceClient) -> None:
        created = (await client.create_user(new_user("ada"))).user
        assert created.role == pb.USER_ROLE_MEMBER and created.create_time.seconds > 0
        assert (await client.get_user(pb.GetUserRequest(id=created.id))).user == created
        updated = await client.update_user(
            pb.UpdateUserRequest(id=created.id, email="ada@lovelace.dev", role=pb.USER_ROLE_ADMIN)
        )
        assert (updated.user.email, updated.user.role) == ("ada@lovelace.dev", pb.USER_ROLE_ADMIN)
        with pytest.raises(grpc.aio.AioRpcError) as dup:
            await client.create_user(new_user("ada"))
        assert dup.value.code() == grpc.StatusCode.ALREADY_EXISTS
        await client.delete_user(pb.DeleteUserRequest(id=created.id))
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await client.get_user(pb.GetUserRequest(id=created.id))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND

    serve(scenario)


def test_streams_list_batch_and_watch() -> None:
    async def scenario(client: UserServiceClient) -> None:
        queues: list[asyncio.Queue[pb.WatchUsersRequest | None]] = [asyncio.Queue(), asyncio.Queue()]

        def requests(q: asyncio.Queue[pb.WatchUsersRequest | None]) -> AsyncIterator[pb.WatchUsersRequest]:
            async def gen() -> AsyncIterator[pb.WatchUsersRequest]:
                while (item := await q.get()) is not None:
                    yield item

            return gen()

        watches = [client.watch_users(requests(q)) for q in queues]
        await queues[0].put(pb.WatchUsersRequest())  # everything
        await queues[1].put(pb.WatchUsersRequest(event_types=[pb.UserEvent.TYPE_DELETED]))
        await asyncio.sleep(0.3)

        batch = await client.batch_create_users(
            pb.BatchCreateUsersRequest(request=new_user(f"u{i}x")) for i in range(5)
        )
        assert batch.created_count == 5 and len(batch.users) == 5
        pages = await list_pages(client, page_size=2)
        assert [[len(m.users) for m in page] for page in pages] == [[2], [2], [1]]
        assert [u.username for page in pages for m in page for u in m.users] == [f"u{i}x" for i in range(5)]
        victim = batch.users[0]
        await client.update_user(pb.UpdateUserRequest(id=victim.id, username="renamed"))
        await client.delete_user(pb.DeleteUserRequest(id=victim.id))

        async def take(stream: AsyncIterator[pb.WatchUsersResponse], n: int) -> list[str]:
            seen = []
            async for reply in stream:
                seen.append(f"{pb.UserEvent.Type.Name(reply.event.type)}:{reply.event.user.username}")
                if len(seen) == n:
                    break
            return seen

        everything = await asyncio.wait_for(take(watches[0], 7), 10)
        assert everything == [
            *(f"TYPE_CREATED:u{i}x" for i in range(5)),
            "TYPE_UPDATED:renamed",
            "TYPE_DELETED:renamed",
        ]
        assert await asyncio.wait_for(take(watches[1], 1), 10) == ["TYPE_DELETED:renamed"]
        for q in queues:
            await q.put(None)

    serve(scenario)


def test_validation_reaches_the_client_with_field_details() -> None:
    async def scenario(client: UserServiceClient) -> None:
        bad = new_user("ok_name")
        bad.email = "not-an-email"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.create_user(bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(err.value)
        assert status is not None
        from google.rpc import error_details_pb2

        details = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(details)
        assert [v.field for v in details.field_violations] == ["email"]

    serve(scenario)


def test_create_user_hashes_off_the_event_loop(service: UserService) -> None:
    """scrypt (~50 ms a password) runs in worker threads: a GetUser sent after a burst of CreateUser calls is
    answered while they hash. When hashing ran on the event loop, it was answered after the last of them."""

    async def scenario(client: UserServiceClient) -> None:
        existing = (await client.create_user(new_user("first"))).user
        finished: list[str] = []

        async def create(name: str) -> None:
            await client.create_user(new_user(name))
            finished.append(name)

        creates = [asyncio.create_task(create(f"burst{i}")) for i in range(8)]
        await asyncio.sleep(0)  # the creates start (and are sent) before the GetUser
        await client.get_user(pb.GetUserRequest(id=existing.id))
        finished.append("get")
        await asyncio.gather(*creates)
        assert finished.index("get") < len(creates), finished  # some create was still hashing

    serve(scenario, service)


def test_a_bad_page_token_is_invalid_argument(service: UserService) -> None:
    """Only what the server writes (ASCII digits naming a row) is a page token; "²" passes str.isdigit but
    not int(), and a number beyond SQLite's integers overflowed: both were INTERNAL."""

    async def scenario(client: UserServiceClient) -> None:
        await client.create_user(new_user("ada"))
        for token in ["²", "١٢", "abc", "-1", "1.5", " 1", "0x10", "9" * 30]:
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                [m async for m in client.list_users(pb.ListUsersRequest(page_token=token))]
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, token
            assert bad.value.details() == "page_token is not a next_page_token of ListUsers"
        resumed = [m async for m in client.list_users(pb.ListUsersRequest(page_token="0"))]
        assert [u.username for m in resumed for u in m.users] == ["ada"]

    serve(scenario, service)


def test_list_users_streams_one_page_per_call(tmp_path: Path) -> None:
    """A call streams one page (at most 100 users per message) and only its last message carries the
    next_page_token; the next page is the next call's."""
    users = UserStore(str(tmp_path / "users.db"))
    names = [f"user{i:03}" for i in range(230)]
    users.insert([NewUser(n, f"{n}@example.com", pb.USER_ROLE_MEMBER, b"", b"not hashed") for n in names])

    async def scenario(client: UserServiceClient) -> None:
        async def call(page_size: int, token: str = "") -> list[pb.ListUsersResponse]:
            request = pb.ListUsersRequest(page_size=page_size, page_token=token)
            return [message async for message in client.list_users(request)]

        def usernames(messages: list[pb.ListUsersResponse]) -> list[str]:
            return [user.username for message in messages for user in message.users]

        default = await call(0)  # the default page size, 100
        assert [len(m.users) for m in default] == [100] and default[-1].next_page_token
        first = await call(150)
        assert [(len(m.users), bool(m.next_page_token)) for m in first] == [(100, False), (50, True)]
        rest = await call(150, first[-1].next_page_token)
        assert [(len(m.users), m.next_page_token) for m in rest] == [(80, "")]
        assert usernames(first + rest) == names
        everything = await call(1000)
        assert [(len(m.users), m.next_page_token) for m in everything] == [(100, ""), (100, ""), (30, "")]
        pages = await list_pages(client, page_size=7)
        assert all(len(page) == 1 for page in pages) and len(pages) == 33
        assert usernames([m for page in pages for m in page]) == names
        assert [(len(m.users), m.next_page_token) for m in await call(10, "999999")] == [(0, "")]

    serve(scenario, UserService(users))


def largest_user(i: int) -> pb.CreateUserRequest:
    """A valid CreateUserRequest with every field the stored User keeps at its limit (4-byte characters
    where the rules count characters), and a 254-character email, the server's limit."""
    email = f"e{i:05}".ljust(64, "x") + "@" + ".".join(["d" * 63, "d" * 63, "d" * 61])
    return pb.CreateUserRequest(
        username=f"u{i:05}".ljust(50, "x"),
        email=email,
        password="p" * 128,
        role=pb.USER_ROLE_ADMIN,
        profile=pb.UserProfile(
            display_name="\N{GRINNING FACE}" * 100,
            bio="\N{GRINNING FACE}" * 500,
            avatar_uri="https://example.com/".ljust(2048, "a"),
        ),
    )


def test_a_full_batch_of_the_largest_users_fits_the_reply(service: UserService, cheap_hashing: None) -> None:
    """MAX_BATCH users as large as validation allows: the reply, which lists them all, fits the default 4 MiB."""
    assert len(largest_user(0).email) == MAX_EMAIL_LENGTH

    async def scenario(client: UserServiceClient) -> None:
        reply = await client.batch_create_users(
            pb.BatchCreateUsersRequest(request=largest_user(i)) for i in range(MAX_BATCH)
        )
        assert reply.created_count == MAX_BATCH == len(reply.users)
        assert reply.users[-1].profile.bio == largest_user(0).profile.bio
        assert 3_500_000 < reply.ByteSize() < 4 * 1024 * 1024  # near the limit: MAX_BATCH is not far too small

    serve(scenario, service)


def test_batch_create_is_bounded_and_all_or_nothing(service: UserService, cheap_hashing: None) -> None:
    """More than MAX_BATCH users, an invalid message, a taken username or email, a too long email or a client
    that cancels: the call fails and not one user of the batch is stored (and no event is published)."""

    def batch(names: Iterable[str]) -> list[pb.BatchCreateUsersRequest]:
        return [pb.BatchCreateUsersRequest(request=new_user(name)) for name in names]

    async def scenario(client: UserServiceClient) -> None:
        watch = aiter(client.watch_users([pb.WatchUsersRequest()]))
        while not service.events:  # subscribed
            await asyncio.sleep(0.01)
        await client.create_user(new_user("existing"))

        async def stored() -> list[str]:
            pages = await list_pages(client, page_size=1000)
            return [user.username for page in pages for message in page for user in message.users]

        long_email = batch(["long_email"])
        long_email[0].request.email = largest_user(0).email.replace("@", "xx@")
        failures = [
            (batch(f"many{i}" for i in range(MAX_BATCH + 1)), grpc.StatusCode.INVALID_ARGUMENT),
            (batch(["good_one", "x"]), grpc.StatusCode.INVALID_ARGUMENT),  # "x": too short
            (batch(["twin", "twin"]), grpc.StatusCode.ALREADY_EXISTS),
            (batch(["fresh", "existing"]), grpc.StatusCode.ALREADY_EXISTS),
            (long_email, grpc.StatusCode.INVALID_ARGUMENT),
        ]
        details = []
        for requests, code in failures:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await client.batch_create_users(requests)
            assert failed.value.code() == code, (requests[0].request.username, failed.value.details())
            details.append(failed.value.details() or "")
        assert f"at most {MAX_BATCH} users" in details[0] and f"at most {MAX_EMAIL_LENGTH}" in details[-1]

        # A client that cancels mid-stream.
        outgoing: asyncio.Queue[pb.BatchCreateUsersRequest] = asyncio.Queue()

        async def requests() -> AsyncIterator[pb.BatchCreateUsersRequest]:
            while True:
                yield await outgoing.get()

        call = asyncio.create_task(client.batch_create_users(requests()))
        for request in batch(["left1", "left2", "left3"]):
            await outgoing.put(request)
        await asyncio.sleep(0.5)  # the server reads them (storing each as it came, before the fix)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

        assert await stored() == ["existing"]
        assert (await client.batch_create_users(batch(["after"]))).created_count == 1
        assert await stored() == ["existing", "after"]
        events = [(await asyncio.wait_for(anext(watch), 10)).event for _ in range(2)]
        assert [(e.type, e.user.username) for e in events] == [
            (pb.UserEvent.TYPE_CREATED, n) for n in ("existing", "after")
        ]

    serve(scenario, service)


def test_watchers_that_stop_reading_are_cut_off_while_others_keep_up(tmp_path: Path) -> None:
    """A WatchUsers client that stops reading costs the server at most max_pending queued events: then its
    call ends with RESOURCE_EXHAUSTED, while a watcher that reads keeps getting every event."""
    max_pending = 8
    service = UserService(UserStore(str(tmp_path / "users.db")), events=Fanout(max_pending=max_pending))
    profile = pb.UserProfile(bio="\N{GRINNING FACE}" * 500, avatar_uri="https://example.com/".ljust(2048, "a"))

    async def scenario(target: str) -> None:
        client = UserServiceClient.connect(target)
        user = (await client.create_user(new_user("watched"))).user
        # Two more clients, which never read. Without BDP probing, the HTTP/2 window of the first stays at
        # 64 KiB (else some MB of events go through before the server's backlog even starts); the
        # second's is 1 KiB, smaller than one event: its very first response is stuck.
        windows = [[("grpc.http2.bdp_probe", 0)], [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]]
        async with contextlib.AsyncExitStack() as stack:
            channels = [await stack.enter_async_context(grpc.aio.insecure_channel(target, options=w)) for w in windows]
            stalled = [
                user_service_pb2_grpc.UserServiceStub(channel).WatchUsers(iter([pb.WatchUsersRequest()]))
                for channel in channels
            ]
            reading = aiter(client.watch_users([pb.WatchUsersRequest()]))
            while len(service.events) < 3:  # all subscribed
                await asyncio.sleep(0.01)
            # The reading watcher reads every update's event before the next update. The stalled watchers'
            # events fill their windows, then their backlogs on the server, which overflow.
            sent = sent_after_cut_off = 0
            while sent_after_cut_off < 2 * max_pending:
                assert sent < 10_000, "the stalled watchers were never cut off"
                sent += 1
                sent_after_cut_off += len(service.events) == 1
                profile.display_name = str(sent)
                await client.update_user(pb.UpdateUserRequest(id=user.id, profile=profile))
                reply = await asyncio.wait_for(anext(reading), 10)
                assert reply.event.user.profile.display_name == str(sent)

            async def read_all(call: AsyncIterable[pb.WatchUsersResponse], into: list[pb.WatchUsersResponse]) -> None:
                async for response in call:
                    into.append(response)

            for call in stalled:  # a stalled client, reading at last: what was in flight, then the status
                received: list[pb.WatchUsersResponse] = []
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    await asyncio.wait_for(read_all(call, received), 30)
                assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert ended.value.details() == f"fell {max_pending} events behind; reconnect to resume"
                assert 0 < len(received) < sent - max_pending

    # gzip off: the windows count compressed bytes, and these events compress well.
    serve_at(scenario, service, gzip=False)


def test_example_and_a_client_pass_mypy_strict(tmp_path: Path) -> None:
    client_code = tmp_path / "client_app.py"
    client_code.write_text(
        "from user.v1 import user_service_pb2 as pb\n"
        "from user.v1.user_service_protokit import UserServiceClient\n\n\n"
        "async def fetch(target: str, user_id: str) -> str:\n"
        "    client = UserServiceClient.connect(target, token='t')\n"
        "    reply = await client.get_user(pb.GetUserRequest(id=user_id), timeout=2.0)\n"
        "    pages = [p async for p in client.list_users(pb.ListUsersRequest(page_size=10))]\n"
        "    return reply.user.email + str(len(pages))\n"
    )
    paths = [REPO / "generated", REPO / "examples" / "userservice"]
    env = {**os.environ, "MYPYPATH": os.pathsep.join(str(p) for p in paths)}
    proc = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--no-incremental", "userservice", str(client_code)],
        cwd=REPO / "examples" / "userservice",
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A proto change the implementation did not follow is a type error, not a silent mismatch.
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import grpc\n"
        "from user.v1 import user_service_pb2 as pb\n"
        "from user.v1.user_service_protokit import UserServiceBase\n\n\n"
        "class Stale(UserServiceBase):\n"
        "    async def GetUser(\n"
        "        self, request: pb.DeleteUserRequest,"
        " context: grpc.aio.ServicerContext[pb.GetUserRequest, pb.GetUserResponse]\n"
        "    ) -> pb.GetUserResponse:\n"
        "        return pb.GetUserResponse()\n"
    )
    failed = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--no-incremental", str(broken)], env=env, capture_output=True, text=True
    )
    assert failed.returncode == 1 and "violates the Liskov substitution principle" in failed.stdout, failed.stdout


def _buf_curl(port: int, method: str, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BUF),
            "curl",
            "--protocol",
            "grpc",
            "-d",
            json.dumps(body),
            f"http://127.0.0.1:{port}/user.v1.UserService/{method}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_buf_curl_calls_make_serve_via_reflection() -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    server = subprocess.Popen(["make", "-s", "serve"], cwd=REPO, env=env, start_new_session=True)
    try:
        assert "user.v1.UserService" in wait_for_reflection(port).split()
        created = _buf_curl(
            port, "CreateUser", {"username": "curl_user", "email": "c@example.com", "password": "x" * 12, "profile": {}}
        )
        assert created.returncode == 0, created.stderr
        user_id = json.loads(created.stdout)["user"]["id"]
        got = _buf_curl(port, "GetUser", {"id": user_id})
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["user"]["username"] == "curl_user"
        invalid = _buf_curl(port, "GetUser", {"id": "nope"})
        assert invalid.returncode == 3 * 8  # INVALID_ARGUMENT: buf curl exits with the status code times 8
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
