"""A service for tests that need a real server process: `python streaming_service.py` serves it with
`protokit.runtime.run()`, exactly as a generated service's __main__ does (settings from PROTOKIT_*).

GetUser sleeps GET_DELAY seconds (env) and echoes the id. ListUsers streams `page_size` users (forever when
0), one per message, or, with page_token "huge", one message larger than any default limit. BatchCreateUsers
counts what it reads. WatchUsers answers every request, then follows a Fanout of events that
`POST_EVENTS` (env, a number) publishes, 64 KiB each, as fast as the loop allows.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "generated"))

from user.v1 import user_service_pb2 as pb
from user.v1 import user_service_pb2_grpc as pb_grpc

from protokit.runtime import Fanout, run

BIG = "x" * 65536


class Streaming(pb_grpc.UserServiceServicer):
    SERVICE_NAME = "user.v1.UserService"

    def __init__(self) -> None:
        self.events: Fanout[pb.UserEvent] = Fanout()

    def add_to_server(self, server: Any) -> None:
        pb_grpc.add_UserServiceServicer_to_server(self, server)

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.GetUserResponse:
        await asyncio.sleep(float(os.environ.get("GET_DELAY", "0")))
        return pb.GetUserResponse(user=pb.User(id=request.id, username="served"))

    async def CreateUser(self, request: pb.CreateUserRequest, context: Any) -> pb.CreateUserResponse:
        user = pb.User(id="6b1f0c3e-9a0e-4f5a-8c1e-2b3c4d5e6f70", username=request.username, profile=request.profile)
        return pb.CreateUserResponse(user=user)

    async def ListUsers(self, request: pb.ListUsersRequest, context: Any) -> Any:
        if request.page_token == "huge":
            yield pb.ListUsersResponse(users=[pb.User(username="x" * (8 << 20))])
            return
        n = 0
        while not request.page_size or n < request.page_size:
            n += 1
            yield pb.ListUsersResponse(users=[pb.User(id=str(n), username=BIG)])

    async def BatchCreateUsers(self, request_iterator: Any, context: Any) -> pb.BatchCreateUsersResponse:
        count = 0
        async for _ in request_iterator:
            count += 1
        return pb.BatchCreateUsersResponse(created_count=count)

    async def WatchUsers(self, request_iterator: Any, context: Any) -> Any:
        with self.events.subscribe(context) as subscription:
            async for _ in request_iterator:
                yield pb.WatchUsersResponse(event=pb.UserEvent(type=pb.UserEvent.TYPE_CREATED))
                break
            async for event in subscription:
                yield pb.WatchUsersResponse(event=event)

    async def publish_forever(self, per_second: float) -> None:
        user = pb.User(username=BIG)
        while True:
            self.events.publish(pb.UserEvent(type=pb.UserEvent.TYPE_UPDATED, user=user))
            await asyncio.sleep(1 / per_second)


class WithPublisher(Streaming):
    def add_to_server(self, server: Any) -> None:
        super().add_to_server(server)
        rate = float(os.environ.get("POST_EVENTS", "0"))
        if rate:
            self._publisher = asyncio.get_running_loop().create_task(self.publish_forever(rate))


if __name__ == "__main__":
    run([WithPublisher()])
