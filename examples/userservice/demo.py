"""`make demo`'s last step: start the UserService, call one RPC of each kind with the generated client.

Runs the server as a real subprocess (python -m userservice) on a free port, waits for its health
check, calls it, then stops it with SIGTERM (a graceful shutdown).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from user.v1 import user_service_pb2 as pb
from user.v1.user_service_protokit import UserServiceClient

from protokit.runtime import close_channels

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_serving(target: str, timeout: float = 15.0) -> None:
    async with grpc.aio.insecure_channel(target) as chan:
        health = health_pb2_grpc.HealthStub(chan)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(service="user.v1.UserService"), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"server on {target} did not become healthy")
            await asyncio.sleep(0.1)


def new_user(name: str) -> pb.CreateUserRequest:
    return pb.CreateUserRequest(
        username=name, email=f"{name}@example.com", password="correct horse battery", profile=pb.UserProfile()
    )


async def calls(target: str) -> None:
    client = UserServiceClient.connect(target)
    watch_requests: asyncio.Queue[pb.WatchUsersRequest | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[pb.WatchUsersRequest]:
        while (item := await watch_requests.get()) is not None:
            yield item

    watch = client.watch_users(requests())
    await watch_requests.put(pb.WatchUsersRequest())  # no filter: every event
    await asyncio.sleep(0.2)

    created = await client.create_user(new_user("ada"))
    print(f"unary         CreateUser       -> {created.user.username} ({created.user.id})")
    got = await client.get_user(pb.GetUserRequest(id=created.user.id))
    print(f"unary         GetUser          -> {got.user.email}")
    batch = await client.batch_create_users(pb.BatchCreateUsersRequest(request=new_user(n)) for n in ("bob", "cyd"))
    print(f"client stream BatchCreateUsers -> created {batch.created_count}")
    # Each ListUsers call streams one page; the last message's next_page_token asks for the next one.
    listed, pages, token = 0, 0, ""
    while True:
        page = [reply async for reply in client.list_users(pb.ListUsersRequest(page_size=2, page_token=token))]
        listed, pages, token = listed + sum(len(reply.users) for reply in page), pages + 1, page[-1].next_page_token
        if not token:
            break
    print(f"server stream ListUsers        -> {listed} users in {pages} pages")
    events = []
    async for reply in watch:
        events.append(pb.UserEvent.Type.Name(reply.event.type) + ":" + reply.event.user.username)
        if len(events) == 3:
            break
    print(f"bidi stream   WatchUsers       -> {', '.join(events)}")
    await watch_requests.put(None)
    try:
        await client.get_user(pb.GetUserRequest(id="not-a-uuid"))
    except grpc.aio.AioRpcError as err:
        print(f"validation    GetUser(bad id)  -> {err.code().name}: {err.details()}")
    await close_channels()


def main() -> int:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "PYTHONPATH": os.pathsep.join([str(HERE.parent.parent / "generated"), str(HERE)]),
    }
    server = subprocess.Popen([sys.executable, "-m", "userservice"], env=env)
    target = f"127.0.0.1:{port}"
    try:
        asyncio.run(wait_serving(target))
        print(f"UserService serving on {target} (health SERVING, reflection on)")
        asyncio.run(calls(target))
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
        print(f"server stopped gracefully (exit {code})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
