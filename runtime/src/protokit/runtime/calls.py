"""Ending a call from outside its handler, with a status, even while its handler is stuck sending.

A handler blocked in a send (a client that stopped reading: HTTP/2 flow control holds the message) cannot
be reached by raising into it, and cancelling its task alone makes grpc.aio drop the call without a status,
leaving the stream open. `end_call` first queues the status (grpc sends it once the pending message is
out of the way) and then cancels the handler's task with `ENDED` as the message, which the interceptor
chain recognises: the call is logged and counted with `code`, and nothing more is sent. (The chain sends a
stream's headers before its first response, so that the status is not queued behind headers grpc.aio
would then try to send twice.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import grpc.aio

__all__ = ["ENDED", "end_call", "was_ended"]

logger = logging.getLogger("protokit.runtime")

ENDED = "protokit: call ended by the server"


def was_ended(exc: BaseException) -> bool:
    """Whether a CancelledError is `end_call`'s."""
    return bool(exc.args) and exc.args[0] == ENDED


async def _send_status(context: Any, code: grpc.StatusCode, details: str) -> None:
    try:
        await context.abort(code, details)
    except grpc.aio.AbortError:  # what abort raises once the status is on its way
        pass
    except Exception as exc:  # the call ended meanwhile; nothing to send any more
        logger.debug("end_call: no status sent (%s)", exc)


def end_call(context: Any, task: asyncio.Task[Any] | None, code: grpc.StatusCode, details: str) -> None:
    """End the call of `context`, whose handler runs in `task`, with `code` and `details`.

    Call it from any coroutine or callback on the server's event loop; it returns at once.
    """
    if task is None or task.done():
        return
    context.set_code(code)  # what the chain reports, even if the task ends in grpc's own frames
    context.set_details(details)
    asyncio.get_running_loop().create_task(_send_status(context, code, details))
    task.cancel(ENDED)
