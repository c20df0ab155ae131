"""The example UserService end to end: generated base + client, protokit.runtime, sqlite store, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from conftest import BIN, BUF, REPO, free_port, wait_for_reflection

sys.path[:0] = [str(REPO / "generated"), str(REPO / "examples" / "userservice")]

from grpc_status import rpc_status  # noqa: E402
from user.v1 import user_service_pb2 as pb  # noqa: E402
from user.v1.user_service_protokit import UserServiceClient  # noqa: E402
from userservice.user_service import ERRORS, UserService  # noqa: E402

from protokit.runtime import ServerSettings, build_server, close_channels  # noqa: E402

T = TypeVar("T")


def new_user(name: str) -> pb.CreateUserRequest:
    return pb.CreateUserRequest(
        username=name, email=f"{name}@example.com", password="correct horse battery", profile=pb.UserProfile()
    )


def serve(test: Callable[[UserServiceClient], Awaitable[T]]) -> T:
    """Run `test` against the example service on a real loopback server with the full interceptor chain."""

    async def main() -> T:
        server = build_server([UserService()], ServerSettings(port=0, reflection=True), errors=ERRORS)
        port = await server.start()
        try:
            return await test(UserServiceClient.connect(f"127.0.0.1:{port}"))
        finally:
            await close_channels()
            await server.stop(grace=1)

    return asyncio.run(main())


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
        pages = [p async for p in client.list_users(pb.ListUsersRequest(page_size=2))]
        assert [len(p.users) for p in pages] == [2, 2, 1]
        assert [bool(p.next_page_token) for p in pages] == [True, True, False]
        assert [u.username for p in pages for u in p.users] == [f"u{i}x" for i in range(5)]
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
    # src/ too: the editable install's import hook is invisible to mypy.
    paths = [REPO / "generated", REPO / "examples" / "userservice", REPO / "src"]
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
