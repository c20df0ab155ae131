"""Fan-out of events to streaming RPCs (WatchX), with a bounded backlog per subscriber.

    events: Fanout[pb.UserEvent] = Fanout()

    async def WatchUsers(self, request_iterator, context):
        with events.subscribe(context) as subscription:
            async for event in subscription:
                yield pb.WatchUsersResponse(event=event)

    events.publish(event)            # from CreateUser & co: never blocks, never grows without bound

A subscriber that falls `max_pending` events behind (a slow client, or one that stopped reading while
answering pings) costs at most that many queued events: its backlog is dropped, and its RPC ends with
RESOURCE_EXHAUSTED "fell N events behind" (see `calls.end_call`, which also works while the handler is
stuck in a send). Everyone else keeps receiving events. The default `max_pending` is the server's
`stream_buffer` setting (PROTOKIT_STREAM_BUFFER).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

import grpc

from .calls import end_call
from .errors import DomainError
from .settings import active_settings

__all__ = ["Fanout", "SlowConsumer", "Subscription"]

T = TypeVar("T")


class SlowConsumer(DomainError):
    """The subscriber fell too far behind; the client should reconnect (and resync)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Subscription(Generic[T]):
    """One subscriber's queue of events: iterate it (or `await get()`, from one task at a time); `close()`
    (or `with`) unsubscribes.

    `wants`, a predicate on events, filters what is queued; replace it at any time.
    """

    def __init__(self, fanout: Fanout[T], max_pending: int, context: Any, wants: Callable[[T], bool] | None) -> None:
        self.wants = wants
        self._fanout = fanout
        self._max_pending = max_pending
        self._context = context
        self._task = asyncio.current_task() if context is not None else None
        self._queue: collections.deque[T] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _offer(self, event: T) -> None:
        if self._overflowed or (self.wants is not None and not self.wants(event)):
            return
        if len(self._queue) >= self._max_pending:
            self._overflow()
            return
        self._queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _overflow(self) -> None:
        self._overflowed = True
        self._queue.clear()  # the memory goes now, not when the client gets round to reading
        self._fanout._subscribers.discard(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # a get() in progress raises SlowConsumer
        if self._context is not None:
            # The handler may be stuck sending (a get() may be waiting in another task): end the call itself.
            end_call(self._context, self._task, grpc.StatusCode.RESOURCE_EXHAUSTED, self._behind())

    def _behind(self) -> str:
        return f"fell {self._max_pending} events behind; reconnect to resume"

    async def get(self) -> T:
        """The next event; raises SlowConsumer once this subscriber has overflowed."""
        while not self._queue:
            if self._overflowed:
                raise SlowConsumer(self._behind())
            if self._closed:
                raise StopAsyncIteration
            if self._waiter is not None:
                raise RuntimeError("Subscription.get() is already being awaited by another task")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return self._queue.popleft()

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        return await self.get()

    def close(self) -> None:
        """Unsubscribe; a pending `get()` ends the iteration."""
        self._closed = True
        self._fanout._subscribers.discard(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class Fanout(Generic[T]):
    """Publishes each event to every current subscriber (see the module doc)."""

    def __init__(self, max_pending: int | None = None) -> None:
        if max_pending is not None and max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.max_pending = max_pending
        self._subscribers: set[Subscription[T]] = set()

    def subscribe(self, context: Any = None, wants: Callable[[T], bool] | None = None) -> Subscription[T]:
        """A new subscriber. Pass the RPC's `context` (from inside its handler) so that overflowing ends the
        RPC even while its handler is blocked sending; without it, only `get()` reports the overflow."""
        limit = self.max_pending if self.max_pending is not None else active_settings().stream_buffer
        subscription = Subscription(self, limit, context, wants)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, event: T) -> None:
        """Queue `event` for every subscriber that wants it; never blocks."""
        for subscription in list(self._subscribers):
            subscription._offer(event)

    def __len__(self) -> int:
        return len(self._subscribers)
