# Created by protokit from user/v1/user_service.proto; this file is yours to edit.
"""The implementation of user.v1.UserService."""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import AsyncIterator, Callable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from user.v1 import user_service_pb2
from user.v1.user_service_protokit import UserServiceBase

from protokit import runtime
from protokit.runtime import Fanout, InvalidArgument
from userservice.store import MAX_SEQ, NewUser, UserConflict, UserNotFound, UserStore, stage

Event = user_service_pb2.UserEvent

# Domain errors the runtime maps to status codes (its exception-mapping interceptor).
ERRORS = {UserNotFound: grpc.StatusCode.NOT_FOUND, UserConflict: grpc.StatusCode.ALREADY_EXISTS}

# ListUsers: the page size when the request leaves it at zero, and the most users per stream message.
DEFAULT_PAGE_SIZE = 100
USERS_PER_MESSAGE = 100
# The proto sets no length limit on email; RFC 5321 allows 254 characters (and validation, ASCII only).
# Without a limit a single user could fill a whole 4 MiB message, and no reply listing users would be safe.
MAX_EMAIL_LENGTH = 254
# The most users one BatchCreateUsers call may create. Its reply lists them all and must fit gRPC's default
# 4 MiB message limit. The largest valid User is ~4.84 KB: profile 100 + 500 characters of up to 4 bytes,
# a 2048-byte avatar URI, a 254-byte email, a 50-byte username, the id and timestamps. 866 would fit;
# 800 leaves some headroom (~3.9 MB). It also stays below the default PROTOKIT_STREAM_BUFFER (1000), so one
# batch's events fit the backlog of a watcher that was keeping up.
MAX_BATCH = 800
# Passwords of one batch hashed at the same time: enough to keep a core busy while the stream arrives,
# few enough to leave the other worker threads to CreateUser calls.
BATCH_HASHING = 2


def _check_email(email: str) -> None:
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidArgument(f"email must be at most {MAX_EMAIL_LENGTH} characters")


def _after(page_token: str) -> int:
    """The sequence number a ListUsers page_token resumes after: only ASCII digits, as the server writes them
    (str.isdigit alone also accepts "²", which int() rejects)."""
    if not page_token:
        return 0
    if not (page_token.isascii() and page_token.isdigit()) or int(page_token) > MAX_SEQ:
        raise InvalidArgument("page_token is not a next_page_token of ListUsers")
    return int(page_token)


def _event(kind: Event.Type.ValueType, user: user_service_pb2.User) -> Event:
    event_time = Timestamp()
    event_time.FromNanoseconds(time.time_ns())
    return Event(type=kind, user=user, event_time=event_time)


def _filter(request: user_service_pb2.WatchUsersRequest) -> Callable[[Event], bool] | None:
    """The events a WatchUsersRequest asks for; None: all of them."""
    ids, types = frozenset(request.user_ids), frozenset(request.event_types)
    if not ids and not types:
        return None
    return lambda event: (not ids or event.user.id in ids) and (not types or event.type in types)


class UserService(UserServiceBase):
    """UserService manages the lifecycle of user accounts: creating, reading,
    updating and deleting users, listing them, importing them in bulk and
    watching for changes as they happen.
    """

    def __init__(self, store: UserStore | None = None, events: Fanout[Event] | None = None) -> None:
        self.store = store or UserStore(os.environ.get("USERSERVICE_DB", ":memory:"))
        # Every WatchUsers stream subscribes here; a watcher that falls behind by the server's stream_buffer
        # (PROTOKIT_STREAM_BUFFER) events ends with RESOURCE_EXHAUSTED instead of queueing without bound.
        self.events: Fanout[Event] = events if events is not None else Fanout()

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
        _check_email(request.email)
        user = await self.store.create(request)
        self.events.publish(_event(Event.TYPE_CREATED, user))
        return user_service_pb2.CreateUserResponse(user=user)

    async def UpdateUser(
        self,
        request: user_service_pb2.UpdateUserRequest,
        context: grpc.aio.ServicerContext[user_service_pb2.UpdateUserRequest, user_service_pb2.UpdateUserResponse],
    ) -> user_service_pb2.UpdateUserResponse:
        _check_email(request.email)
        user = self.store.update(request)
        self.events.publish(_event(Event.TYPE_UPDATED, user))
        return user_service_pb2.UpdateUserResponse(user=user)

    async def DeleteUser(
        self,
        request: user_service_pb2.DeleteUserRequest,
        context: grpc.aio.ServicerContext[user_service_pb2.DeleteUserRequest, user_service_pb2.DeleteUserResponse],
    ) -> user_service_pb2.DeleteUserResponse:
        user = self.store.delete(request.id)
        self.events.publish(_event(Event.TYPE_DELETED, user))
        return user_service_pb2.DeleteUserResponse()

    async def ListUsers(
        self,
        request: user_service_pb2.ListUsersRequest,
        context: grpc.aio.ServicerContext[user_service_pb2.ListUsersRequest, user_service_pb2.ListUsersResponse],
    ) -> AsyncIterator[user_service_pb2.ListUsersResponse]:
        """One page of page_size users, in messages of at most USERS_PER_MESSAGE users; only the last message
        carries the next_page_token (empty when there are no more users). An empty page is one empty message."""
        users, last = self.store.page(_after(request.page_token), request.page_size or DEFAULT_PAGE_SIZE)
        for start in range(0, max(len(users), 1), USERS_PER_MESSAGE):
            chunk = users[start : start + USERS_PER_MESSAGE]
            is_last = start + USERS_PER_MESSAGE >= len(users)
            token = str(last) if is_last and last else ""
            yield user_service_pb2.ListUsersResponse(users=chunk, next_page_token=token)

    async def BatchCreateUsers(
        self,
        request_iterator: AsyncIterator[user_service_pb2.BatchCreateUsersRequest],
        context: grpc.aio.ServicerContext[
            user_service_pb2.BatchCreateUsersRequest, user_service_pb2.BatchCreateUsersResponse
        ],
    ) -> user_service_pb2.BatchCreateUsersResponse:
        """Create up to MAX_BATCH (800) users, all or nothing.

        Each message is staged as it arrives (its password hashed in a worker thread); the users are inserted
        in one transaction once the client closes its side. A message beyond MAX_BATCH or with a too long
        email fails the call with INVALID_ARGUMENT, an invalid message with the validator's INVALID_ARGUMENT,
        a taken username or email with ALREADY_EXISTS, and a cancelled call just ends: in every such case no
        user is stored. The reply lists every user created, which MAX_BATCH keeps under 4 MiB.
        """
        hashing: collections.deque[asyncio.Future[NewUser]] = collections.deque()
        staged: list[NewUser] = []
        try:
            async for item in request_iterator:
                if len(staged) + len(hashing) == MAX_BATCH:
                    raise InvalidArgument(f"a batch creates at most {MAX_BATCH} users; split it into several calls")
                _check_email(item.request.email)
                hashing.append(asyncio.ensure_future(stage(item.request)))
                if len(hashing) == BATCH_HASHING:  # read no further ahead than the hashing gets
                    staged.append(await hashing.popleft())
            while hashing:
                staged.append(await hashing.popleft())
        finally:
            for pending in hashing:  # on an error: results nobody will insert
                pending.cancel()
        # The request stream ended because the client closed its side: protokit's runtime tells that from a
        # cancel (which raises CancelledError above), so a batch the client abandoned is never inserted.
        users = self.store.insert(staged)
        for user in users:
            self.events.publish(_event(Event.TYPE_CREATED, user))
        return user_service_pb2.BatchCreateUsersResponse(created_count=len(users), users=users)

    async def WatchUsers(
        self,
        request_iterator: AsyncIterator[user_service_pb2.WatchUsersRequest],
        context: grpc.aio.ServicerContext[user_service_pb2.WatchUsersRequest, user_service_pb2.WatchUsersResponse],
    ) -> AsyncIterator[user_service_pb2.WatchUsersResponse]:
        """Push every created/updated/deleted event to this watcher until it hangs up; each request
        message replaces the watcher's filter (no filter: everything). A watcher that falls too far
        behind ends with RESOURCE_EXHAUSTED (see `self.events`)."""
        with self.events.subscribe(context) as subscription:  # here: it must run in the handler's task

            async def follow_filters() -> None:
                try:
                    async for update in request_iterator:
                        subscription.wants = _filter(update)
                except Exception:
                    subscription.close()  # a bad request ends the watch, with its error (below)
                    raise

            filters = asyncio.create_task(follow_filters())
            try:
                async for event in subscription:
                    yield user_service_pb2.WatchUsersResponse(event=event)
                await filters  # the subscription only closes early when the requests failed: raise why
            finally:
                filters.cancel()
                await asyncio.gather(filters, return_exceptions=True)


def main() -> None:
    runtime.run([UserService()], errors=ERRORS)


if __name__ == "__main__":
    main()
