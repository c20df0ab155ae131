# Created by protokit from user/v1/user_service.proto; this file is yours to edit.
"""The implementation of user.v1.UserService."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import grpc
from user.v1 import user_service_pb2
from user.v1.user_service_protokit import UserServiceBase

from protokit import runtime
from userservice.store import EventHub, UserConflict, UserNotFound, UserStore

Event = user_service_pb2.UserEvent

# Domain errors the runtime maps to status codes (its exception-mapping interceptor).
ERRORS = {UserNotFound: grpc.StatusCode.NOT_FOUND, UserConflict: grpc.StatusCode.ALREADY_EXISTS}


class UserService(UserServiceBase):
    """UserService manages the lifecycle of user accounts: creating, reading,
    updating and deleting users, listing them, importing them in bulk and
    watching for changes as they happen.
    """

    def __init__(self, store: UserStore | None = None) -> None:
        self.store = store or UserStore(os.environ.get("USERSERVICE_DB", ":memory:"))
        self.events = EventHub()

    async def GetUser(
        self,
        request: user_service_pb2.GetUserRequest,
        context: grpc.aio.ServicerContext[user_service_pb2.GetUserRequest, user_service_pb2.GetUserResponse],
    ) -> user_service_pb2.GetUserResponse:
        return user_service_pb2.GetUserResponse(user=self.store.get(request.id))

    async def CreateUser(
        self,
        request: user_service_pb2.CreateUserRequest,
        context: grpc.aio.ServicerContext[user_service_pb2.CreateUserRequest, user_service_pb2.CreateUserResponse],
    ) -> user_service_pb2.CreateUserResponse:
        user = self.store.create(request)
        self.events.publish(Event.TYPE_CREATED, user)
        return user_service_pb2.CreateUserResponse(user=user)

    async def UpdateUser(
        self,
        request: user_service_pb2.UpdateUserRequest,
        context: grpc.aio.ServicerContext[user_service_pb2.UpdateUserRequest, user_service_pb2.UpdateUserResponse],
    ) -> user_service_pb2.UpdateUserResponse:
        user = self.store.update(request)
        self.events.publish(Event.TYPE_UPDATED, user)
        return user_service_pb2.UpdateUserResponse(user=user)

    async def DeleteUser(
        self,
        request: user_service_pb2.DeleteUserRequest,
        context: grpc.aio.ServicerContext[user_service_pb2.DeleteUserRequest, user_service_pb2.DeleteUserResponse],
    ) -> user_service_pb2.DeleteUserResponse:
        user = self.store.delete(request.id)
        self.events.publish(Event.TYPE_DELETED, user)
        return user_service_pb2.DeleteUserResponse()

    async def ListUsers(
        self,
        request: user_service_pb2.ListUsersRequest,
        context: grpc.aio.ServicerContext[user_service_pb2.ListUsersRequest, user_service_pb2.ListUsersResponse],
    ) -> AsyncIterator[user_service_pb2.ListUsersResponse]:
        """One message per page; the last carries no next_page_token."""
        token = request.page_token
        while True:
            users, token = self.store.page(request.page_size, token)
            yield user_service_pb2.ListUsersResponse(users=users, next_page_token=token)
            if not token:
                return

    async def BatchCreateUsers(
        self,
        request_iterator: AsyncIterator[user_service_pb2.BatchCreateUsersRequest],
        context: grpc.aio.ServicerContext[
            user_service_pb2.BatchCreateUsersRequest, user_service_pb2.BatchCreateUsersResponse
        ],
    ) -> user_service_pb2.BatchCreateUsersResponse:
        created = []
        async for item in request_iterator:
            user = self.store.create(item.request)
            self.events.publish(Event.TYPE_CREATED, user)
            created.append(user)
        return user_service_pb2.BatchCreateUsersResponse(created_count=len(created), users=created)

    async def WatchUsers(
        self,
        request_iterator: AsyncIterator[user_service_pb2.WatchUsersRequest],
        context: grpc.aio.ServicerContext[user_service_pb2.WatchUsersRequest, user_service_pb2.WatchUsersResponse],
    ) -> AsyncIterator[user_service_pb2.WatchUsersResponse]:
        """Push every created/updated/deleted event to this watcher until it hangs up; each request
        message replaces the watcher's filter (no filter: everything)."""
        watcher = self.events.subscribe()

        async def follow_filters() -> None:
            async for update in request_iterator:
                EventHub.configure(watcher, update.user_ids, update.event_types)

        filters = asyncio.create_task(follow_filters())
        try:
            while True:
                event = await watcher.queue.get()
                yield user_service_pb2.WatchUsersResponse(event=event)
        finally:
            self.events.unsubscribe(watcher)
            filters.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await filters


def main() -> None:
    runtime.run([UserService()], errors=ERRORS)


if __name__ == "__main__":
    main()
