"""The server interceptor chain: every RPC passes these stages, outermost first.

0. reading the request - a request message that does not parse (wire garbage, a truncated message, a string
   that is not UTF-8) is INVALID_ARGUMENT "malformed request: not a <type>", logged and counted like any
   other RPC. INVALID_ARGUMENT rather than grpc-go's INTERNAL: the client sent bad bytes, the server is
   fine, and retrying the same bytes cannot help (protokit's client never retries INVALID_ARGUMENT).
   Unknown fields are dropped as each message is read, before validation and the handler, so a caller
   cannot make the service store or echo data its schema does not describe (`keep_unknown_fields`).
1. request logging - one line per RPC (see `requestlog`): method, peer, status code, duration in ms and
   request id (the caller's `x-request-id` if it is safe to log, else a new random one; see `requestid`).
   An RPC that fails carries the id back as trailing metadata `x-request-id`, for the caller to quote; a
   successful one does not. Message bodies and the authorization header are never logged.
2. Prometheus metrics - see `metrics`.
3. rate limiting of failed logins, then authentication - `authorization: Bearer <token>` checked by the
   `TokenVerifier`; missing or invalid is UNAUTHENTICATED, and each failure takes a token from the client
   address's bucket: once it is empty, the address gets RESOURCE_EXHAUSTED before its token is even looked
   at, so tokens cannot be guessed at full speed. Public methods and health skip authentication;
   reflection does too unless `authenticate_reflection`. The caller is `current_principal()`.
4. rate limiting - a token bucket per principal subject (else per client address): RESOURCE_EXHAUSTED
   with a RetryInfo detail once the burst is spent. Health and reflection are not limited.
5. validation - protovalidate on every request message, each message of a request stream included, as
   it arrives: INVALID_ARGUMENT with a google.rpc.BadRequest detail, one FieldViolation per violation.
6. exception mapping - `DomainError` -> its code and message; types in `errors` -> their code with the
   code's generic text; anything else -> INTERNAL "internal error" (traceback logged, never sent).
   `context.abort(...)` from a handler passes through unchanged.

A response larger than the maximum message size is RESOURCE_EXHAUSTED, said by the chain before grpc's send
would fail on it (with a traceback, and the call ending as a cancel). Around all of the stages: a server-side
maximum deadline per method (`max_deadline`), which ends the call with DEADLINE_EXCEEDED when the client set
none or a longer one, and the drain of a stopping server: once `refuse_new_calls()` is called, new calls get
UNAVAILABLE while calls in flight finish (`wait_idle`).

What a call needs from its context (peer, deadline, task) is read when it starts: a response stream that
ends early (the client cancels, disconnects or overflows a limit) is closed by the event loop after grpc
has released the call, and `context.peer()` on a released call crashes the process.

The stages run in ONE wrapper around each method's handler, built once per method (`ChainedMethod`). The
server applies it as the handlers are registered, so a call pays no grpc.aio interceptor hop at all; with
`extra_interceptors` it runs as an ordinary interceptor instead, ahead of them. Either way the wrapper is
bound to the call's metadata as grpc looks the handler up (`ChainedMethod.bind`): grpc has already
decoded the metadata for the lookup, and `context.invocation_metadata()` would decode it all again.

Limits: request-streaming handlers receive an iterator that validates each message; messages read with
`context.read()` instead bypass validation. The chain sends the response headers before a stream's first
response and when a request stream ends (see `_send_headers`): a handler that sends its own initial metadata
must do so before either. A handler that aborts with its own trailing metadata
(`abort_with_status`) replaces the `x-request-id` trailer.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import functools
import inspect
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeAlias

import grpc
import grpc.aio
import protovalidate
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped,unused-ignore]
from grpc_status import rpc_status  # type: ignore[import-untyped,unused-ignore]

from .auth import _PRINCIPAL, Principal, TokenVerifier
from .calls import ENDED, end_call
from .errors import DomainError
from .metrics import MethodStats, Metrics
from .ratelimit import RateLimiter, peer_host
from .requestid import REQUEST_ID_KEY, accepted_request_id, new_request_id
from .requestlog import LoggingRequestLog, RequestLog, logger

__all__ = [
    "HEALTH_PREFIX",
    "REFLECTION_PREFIXES",
    "REQUEST_ID_KEY",
    "Chain",
    "ChainedHandler",
    "ChainedMethod",
    "Metrics",
    "field_path",
    "new_request_id",
]

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")
# Infrastructure services are never rate limited; health is never authenticated.
_INFRASTRUCTURE = (HEALTH_PREFIX, *REFLECTION_PREFIXES)
# With a verifier and no rate limit, failed logins are still throttled: a burst of this many, then 1/s.
AUTH_FAILURE_BURST = 10
AUTH_FAILURE_RATE = 1.0

_OK = grpc.StatusCode.OK
_UNKNOWN = grpc.StatusCode.UNKNOWN
_CANCELLED = grpc.StatusCode.CANCELLED
_DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED
_INF = math.inf
_perf_counter = time.perf_counter
_bisect_left = bisect.bisect_left
_isawaitable = inspect.isawaitable
_AbortError = grpc.aio.AbortError
_CancelledError = asyncio.CancelledError
_current_task = asyncio.current_task
_get_running_loop = asyncio.get_running_loop
_partial = functools.partial
_new_tuple = tuple.__new__

Behavior: TypeAlias = Callable[..., Any]
# The stubs make these generic; at run time they are not subscriptable.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Metadata: TypeAlias = "Sequence[tuple[str, str | bytes]] | None"


class _Malformed:
    """What the chain's deserializer returns for bytes that do not parse (the stage aborts on it)."""

    __slots__ = ()


_MALFORMED = _Malformed()
_MALFORMED_DETAILS = "malformed request message"  # fixed: nothing of the bytes or the parser's error


def _reader(parse: Callable[[bytes], Any], keep_unknown: bool) -> Callable[[bytes], Any]:
    """The request deserializer the chain installs: never raises (grpc would answer UNKNOWN with the
    exception's text and log a traceback), and drops unknown fields unless `keep_unknown`."""

    def read(data: bytes) -> Any:
        try:
            message = parse(data)
        except Exception:
            return _MALFORMED
        if not keep_unknown and isinstance(message, Message):
            message.DiscardUnknownFields()
        return message

    return read


# The fields of grpc.RpcMethodHandler, in the order grpc's own handler tuples have them.
_HandlerFields = collections.namedtuple(
    "_HandlerFields",
    (
        "request_streaming",
        "response_streaming",
        "request_deserializer",
        "response_serializer",
        "unary_unary",
        "unary_stream",
        "stream_unary",
        "stream_stream",
    ),
)


class _CallHandler(_HandlerFields, grpc.RpcMethodHandler):  # type: ignore[type-arg]
    """The handler of one call, made by `ChainedMethod.bind`: a tuple, so making one is a single C call."""

    __slots__ = ()


class ChainedMethod:
    """One method's handler with the chain around it. `bind(metadata)` is the handler for one call."""

    __slots__ = ("_behavior", "_head", "_tail", "handler")

    def __init__(self, handler: Handler, behavior: Behavior, deserializer: Callable[[bytes], Any] | None) -> None:
        self.handler = handler  # the handler the chain wraps
        self._behavior = behavior  # behavior(metadata, request, context)
        fields: list[Any] = [
            handler.request_streaming,
            handler.response_streaming,
            deserializer,
            handler.response_serializer,
            None,
            None,
            None,
            None,
        ]
        # The behaviour's field: unary_unary, unary_stream, stream_unary or stream_stream.
        slot = 4 + 2 * bool(handler.request_streaming) + bool(handler.response_streaming)
        self._head, self._tail = tuple(fields[:slot]), tuple(fields[slot + 1 :])

    def bind(self, metadata: Metadata) -> Handler:
        """The handler of a call with this invocation metadata (grpc's `HandlerCallDetails`)."""
        handler: Handler = _new_tuple(_CallHandler, (*self._head, _partial(self._behavior, metadata), *self._tail))
        return handler


class ChainedHandler(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come back wrapped in the chain."""

    def __init__(self, inner: grpc.GenericRpcHandler, chain: Chain) -> None:
        self._inner = inner
        self._chain = chain

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        return self._chain.wrapped(handler_call_details.method, handler).bind(handler_call_details.invocation_metadata)


def _grpc_type(handler: Handler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def field_path(violation: Any) -> str:
    """The dotted field path of a protovalidate violation: `request.email`, `user_ids[1]`, `labels["k"]`."""
    parts: list[str] = []
    path = violation.field  # None (unset) for message-level rules
    for element in path.elements if path is not None else ():
        text = element.field_name
        subscript = element.subscript
        if subscript is not None:
            kind, value = subscript.field, subscript.value
            if kind == "string_key":
                text += '["' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"]'
            elif kind == "bool_key":
                text += "[true]" if value else "[false]"
            else:
                text += f"[{value}]"
        parts.append(text)
    return ".".join(parts)


class _Rejected(Exception):
    """A request message the chain refuses, raised by the request stream it came in (see `_validated`)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Metadata = ()) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing_metadata = tuple(trailing_metadata or ())


def _rejection(request: Any, violations: Sequence[Any]) -> _Rejected:
    """INVALID_ARGUMENT with a google.rpc.BadRequest naming every violated field."""
    bad_request = error_details_pb2.BadRequest()
    summary = []
    for violation in violations:
        proto = violation.proto
        path = field_path(proto)
        bad_request.field_violations.add(field=path, description=proto.message, reason=proto.rule_id)
        summary.append(f"{path}: {proto.message}" if path else proto.message)
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    message = f"invalid {request.DESCRIPTOR.full_name}: {'; '.join(summary)}"
    status = rpc_status.to_status(status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail]))
    return _Rejected(status.code, status.details, status.trailing_metadata)


async def _send_headers(context: Context, call: _Call) -> None:
    """Send the response headers now, unless they have been sent (or are being sent: grpc.aio marks them
    sent only once the send is done, and a second send at the same time fails).

    Before a stream's first response: headers queued with a message that flow control holds cannot be
    sent again, so `end_call` could not end the call with a status (grpc.aio's abort would send them
    twice). At the end of a request stream: the round trip that tells a cancel from a half-close.
    """
    if call.headers_sent:
        return
    call.headers_sent = True
    with contextlib.suppress(grpc.aio.UsageError):  # the handler sent its own
        await context.send_initial_metadata(())


class _Call:
    """What one RPC's stages share; read from the context when the call starts (see the module doc)."""

    __slots__ = (
        "authorization",
        "deadline",
        "enforced",
        "finished",
        "headers_sent",
        "peer",
        "request_id",
        "started",
        "trailer",
    )

    def __init__(self, started: float, request_id: str, authorization: str | None, peer: str) -> None:
        self.started = started
        self.request_id = request_id
        self.trailer = ((REQUEST_ID_KEY, request_id),)
        self.authorization = authorization
        self.peer = peer
        self.deadline = _INF  # perf_counter time of the effective deadline
        self.enforced = False  # under the server's maximum deadline
        self.finished = False
        self.headers_sent = False


# A client whose deadline passes cancels the stream itself (RST_STREAM carries no reason), and that cancel
# reaches the server a little before the server's own copy of the deadline: the server started its clock
# when the headers arrived. A cancel (or a late success) this close to the deadline is counted as the deadline.
DEADLINE_SLACK_SECONDS = 0.1


class _OpenCalls:
    """The calls in flight, each with its context and task: what the server's maximum deadline and the end
    of a shutdown's grace period need to end a call (`end_call`) wherever its handler is.

    The maximum deadline is checked by one sweep every `every` seconds while calls are under it: a timer
    per call costs ~2.6 us to arm and cancel (about 1% of a unary call), a dict entry a few dozen ns.
    """

    def __init__(self, every: float) -> None:
        self.every = every
        self._calls: dict[_Call, tuple[Context, asyncio.Task[Any] | None]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self.idle: asyncio.Event | None = None  # set when the last call ends (see Chain.wait_idle)

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, call: _Call, context: Context) -> None:
        self._calls[call] = (context, _current_task())

    def enforce_deadline(self) -> None:
        """A call just added is under the server's maximum deadline: make sure the sweep runs."""
        if self._sweep is None:
            self._sweep = _get_running_loop().call_later(self.every, self._run)

    def remove(self, call: _Call) -> None:
        self._calls.pop(call, None)
        if self.idle is not None and not self._calls:
            self.idle.set()

    def end_all(self, code: grpc.StatusCode, details: str) -> None:
        for context, task in list(self._calls.values()):
            end_call(context, task, code, details)

    def _run(self) -> None:
        self._sweep = None
        now = _perf_counter()
        enforced = False
        for call, (context, task) in list(self._calls.items()):
            if not call.enforced:
                continue
            if now >= call.deadline:
                call.enforced = False
                limit = call.deadline - call.started
                end_call(context, task, _DEADLINE_EXCEEDED, f"the server's maximum deadline of {limit:g}s was exceeded")
            else:
                enforced = True
        if enforced:
            self._sweep = _get_running_loop().call_later(self.every, self._run)


class Chain(grpc.aio.ServerInterceptor):
    """Reading, logging, metrics, auth, rate limiting, validation and error mapping (see the module doc).

    Use it as a grpc.aio interceptor, or wrap handlers directly with `wrapped()` / `ChainedHandler`; a
    wrapped method's `bind(metadata)` is its handler for one call.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        verifier: TokenVerifier | None = None,
        public_methods: Collection[str] = (),
        errors: Mapping[type[BaseException], grpc.StatusCode] | None = None,
        rate_limit: float | None = None,
        rate_burst: int = 1,
        request_log: RequestLog | None = None,
        authenticate_reflection: bool = True,
        keep_unknown_fields: bool = False,
        max_deadline: float = 0.0,
        max_stream_deadline: float = 0.0,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.metrics = metrics
        self.request_log: RequestLog = LoggingRequestLog() if request_log is None else request_log
        self.verifier = verifier
        self.public_methods = frozenset(public_methods)
        self.authenticate_reflection = authenticate_reflection
        self.errors = dict(errors or {})
        self.limiter = RateLimiter(rate_limit, rate_burst) if rate_limit else None
        self.login_failures = (
            RateLimiter(rate_limit, rate_burst) if rate_limit else RateLimiter(AUTH_FAILURE_RATE, AUTH_FAILURE_BURST)
        )
        self.keep_unknown_fields = keep_unknown_fields
        self.max_deadline = max_deadline
        self.max_stream_deadline = max_stream_deadline
        self.max_message_bytes = max_message_bytes
        self.validator = protovalidate.Validator()
        limits = [limit for limit in (max_deadline, max_stream_deadline) if limit]
        self._open = _OpenCalls(min(1.0, min(limits) / 4) if limits else 1.0)
        self.refusing = False
        self._wrapped: dict[str, ChainedMethod] = {}

    # -- entry points: as a grpc.aio interceptor, or wrapping handlers as they are registered -------------

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self.wrapped(handler_call_details.method, handler).bind(handler_call_details.invocation_metadata)

    def wrapped(self, name: str, handler: Handler) -> ChainedMethod:
        """`wrap(name, handler)`, cached: the same handler object gets the same wrapped method."""
        cached = self._wrapped.get(name)
        if cached is not None and cached.handler is handler:
            return cached
        wrapped = self._wrapped[name] = self.wrap(name, handler)
        return wrapped

    def wrap(self, name: str, handler: Handler) -> ChainedMethod:
        """Method `name`'s `handler` with every stage around it."""
        infrastructure = name.startswith(_INFRASTRUCTURE)
        reflection = name.startswith(REFLECTION_PREFIXES)
        public = (
            name.startswith(HEALTH_PREFIX)
            or (reflection and not self.authenticate_reflection)
            or name in self.public_methods
        )
        method = self.metrics.method(
            name,
            _grpc_type(handler),
            authenticate=self.verifier is not None and not public,
            limited=self.limiter is not None and not infrastructure,
            max_deadline=0.0
            if infrastructure
            else self.max_stream_deadline
            if handler.response_streaming
            else self.max_deadline,
        )
        # Without a deserializer requests are raw bytes: nothing to read or validate.
        parse = handler.request_deserializer
        validate = parse is not None
        reader = _reader(parse, self.keep_unknown_fields) if parse is not None else None
        if handler.request_streaming and handler.response_streaming:
            assert handler.stream_stream is not None
            behavior = self._streaming(method, handler.stream_stream, True, validate)
        elif handler.request_streaming:
            assert handler.stream_unary is not None
            behavior = self._unary(method, handler.stream_unary, True, validate)
        elif handler.response_streaming:
            assert handler.unary_stream is not None
            behavior = self._streaming(method, handler.unary_stream, False, validate)
        else:
            assert handler.unary_unary is not None
            behavior = self._unary(method, handler.unary_unary, False, validate)
        return ChainedMethod(handler, behavior, reader)

    # -- draining: what a stopping server uses ------------------------------------------------------------

    def refuse_new_calls(self) -> None:
        """From now on new calls get UNAVAILABLE (clients retry elsewhere); calls in flight go on."""
        self.refusing = True

    @property
    def in_flight(self) -> int:
        return len(self._open)

    async def wait_idle(self) -> None:
        """Return once no call is in flight."""
        while self._open:
            self._open.idle = asyncio.Event()
            await self._open.idle.wait()

    def end_calls(self, code: grpc.StatusCode, details: str) -> None:
        """End every call in flight with `code` (what a stop does when the grace period is over)."""
        self._open.end_all(code, details)

    # -- the wrappers: one per response shape -------------------------------------------------------------

    def _unary(self, method: MethodStats, behavior: Behavior, request_streaming: bool, validate: bool) -> Behavior:
        begin, enter, finish, classify = self._begin, self._enter, self._finish, self._classify
        max_send, too_large = self.max_message_bytes, self._too_large
        is_coroutine = inspect.iscoroutinefunction(behavior)

        async def unary_behavior(metadata: Metadata, request: Any, context: Context) -> Any:
            call = begin(method, metadata, context)
            principal_token = None
            code = None
            try:
                request, principal = await enter(method, context, call, request, request_streaming, validate)
                if principal is not None:
                    principal_token = _PRINCIPAL.set(principal)
                response = behavior(request, context)
                if is_coroutine or _isawaitable(response):
                    response = await response
                if isinstance(response, Message) and response.ByteSize() > max_send:
                    await too_large(context, response, call)
                code = context.code() or _OK
                return response
            except _AbortError:
                code = context.code() or _UNKNOWN
                raise
            except _CancelledError as exc:
                code = context.code() if exc.args and exc.args[0] == ENDED else None
                raise
            except Exception as exc:
                code, details, trailing = classify(method, exc, call)
                await context.abort(code, details, trailing)
            finally:
                finish(method, context, call, code)
                if principal_token is not None:
                    _PRINCIPAL.reset(principal_token)

        return unary_behavior

    def _streaming(self, method: MethodStats, behavior: Behavior, request_streaming: bool, validate: bool) -> Behavior:
        begin, enter, finish, classify = self._begin, self._enter, self._finish, self._classify
        max_send, too_large = self.max_message_bytes, self._too_large

        async def streaming_behavior(metadata: Metadata, request: Any, context: Context) -> AsyncIterator[Any]:
            call = begin(method, metadata, context)
            # A stream that ends in grpc's frames (a cancel, a disconnect, end_call while stuck sending) leaves
            # this generator suspended until the garbage collector closes it, maybe much later: the call is
            # finished when its task is, whatever becomes of the generator.
            task = _current_task()
            if task is not None:
                task.add_done_callback(lambda _: finish(method, context, call, context.code()))
            principal_token = None
            code = None
            try:
                request, principal = await enter(method, context, call, request, request_streaming, validate)
                if principal is not None:
                    principal_token = _PRINCIPAL.set(principal)
                responses = behavior(request, context)
                if hasattr(responses, "__aiter__"):  # async generator handler
                    async for response in responses:
                        if isinstance(response, Message) and response.ByteSize() > max_send:
                            await too_large(context, response, call)
                        if not call.headers_sent:  # see _send_headers
                            await _send_headers(context, call)
                        yield response
                elif _isawaitable(responses):  # coroutine handler writing with context.write()
                    await responses
                elif responses is not None:  # plain generator
                    for response in responses:
                        if isinstance(response, Message) and response.ByteSize() > max_send:
                            await too_large(context, response, call)
                        yield response
                code = context.code() or _OK
            except _AbortError:
                code = context.code() or _UNKNOWN
                raise
            except _CancelledError as exc:
                code = context.code() if exc.args and exc.args[0] == ENDED else None
                raise
            except GeneratorExit:
                # Closed after the call ended in grpc's frames (a cancel, a disconnect, a send that failed):
                # the call may be released by now, so nothing may be asked of it but what grpc keeps in
                # Python (the code end_call set).
                code = context.code()
                raise
            except Exception as exc:
                code, details, trailing = classify(method, exc, call)
                await context.abort(code, details, trailing)
            finally:
                finish(method, context, call, code)
                if principal_token is not None:
                    with contextlib.suppress(ValueError):  # closed by the collector, in another context
                        _PRINCIPAL.reset(principal_token)

        return streaming_behavior

    # -- stages -------------------------------------------------------------------------------------------

    def _begin(self, method: MethodStats, metadata: Metadata, context: Context) -> _Call:
        """The call's record: request id, authorization header, peer and deadline (see the module doc)."""
        started = _perf_counter()
        method.started += 1
        rid = authorization = None
        for key, value in metadata or ():
            if key == REQUEST_ID_KEY:
                rid = accepted_request_id(value)
            elif key == "authorization":
                authorization = value
        call = _Call(
            started,
            rid or new_request_id(),
            authorization if isinstance(authorization, str) else None,
            context.peer(),
        )
        context.set_trailing_metadata(call.trailer)
        self._open.add(call, context)
        remaining = context.time_remaining()
        limit = method.max_deadline
        if limit and (remaining is None or remaining > limit):
            call.deadline = started + limit
            call.enforced = True
            self._open.enforce_deadline()
        elif remaining is not None:
            call.deadline = started + remaining
        return call

    async def _enter(
        self, method: MethodStats, context: Context, call: _Call, request: Any, request_streaming: bool, validate: bool
    ) -> tuple[Any, Principal | None]:
        """The stages before the handler: the drain, admission (login throttle, auth, rate limit), reading
        and validation. Returns the request (for a request stream: its checking iterator) and the caller."""
        if self.refusing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down", call.trailer)
        principal = await self._admit(method, context, call) if method.admit else None
        if not validate:
            pass
        elif request_streaming:
            request = self._validated(request, context, call)
        elif request is _MALFORMED:
            await self._malformed(context, call)
        else:
            violations = self.validator.collect_violations(request)
            if violations:
                await self._reject(context, request, violations, call)
        return request, principal

    async def _admit(self, method: MethodStats, context: Context, call: _Call) -> Principal | None:
        """Failed-login throttle and authentication, then rate limiting; aborts the RPC when one says no."""
        principal = None
        if method.authenticate:
            assert self.verifier is not None
            address = peer_host(call.peer)
            wait = self.login_failures.wait(address)
            if wait:
                await self._throttle(context, wait, "too many failed authentication attempts")
            scheme, _, token = (call.authorization or "").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                self.login_failures.take(address)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
            principal = await self.verifier(token)
            if principal is None:
                self.login_failures.take(address)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        if method.limited:
            assert self.limiter is not None
            key = principal.subject if principal is not None else peer_host(call.peer)
            wait = self.limiter.take(key)
            if wait:
                await self._throttle(context, wait, "rate limit exceeded")
        return principal

    @staticmethod
    async def _throttle(context: Context, wait: float, message: str) -> None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, math.ceil(wait * 1e9)))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status = rpc_status.to_status(
            status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail])
        )
        await context.abort(status.code, status.details, (*status.trailing_metadata, *context.trailing_metadata()))

    async def _validated(self, requests: AsyncIterator[Any], context: Context, call: _Call) -> AsyncIterator[Any]:
        """The request stream, each message checked. A bad one raises `_Rejected` in whichever task reads the
        stream (a bidi handler often reads in a helper task): the handler's task aborts with it as it
        propagates, where an abort from the reading task could race the handler's own first send."""
        collect = self.validator.collect_violations
        async for request in requests:
            if request is _MALFORMED:
                raise _Rejected(grpc.StatusCode.INVALID_ARGUMENT, _MALFORMED_DETAILS)
            violations = collect(request)
            if violations:
                raise _rejection(request, violations)
            yield request
        # grpc.aio ends the stream the same way when the client cancels as when it closes its side. A round
        # trip through grpc delivers a pending cancel first (as CancelledError), so a handler never takes a
        # stream the client abandoned for a complete one (and commits half a batch).
        await _send_headers(context, call)

    async def _too_large(self, context: Context, response: Message, call: _Call) -> None:
        """grpc would fail the send, log a traceback and leave the call to end as a cancel: say what happened."""
        details = (
            f"response message of {response.ByteSize()} bytes is larger than the limit of {self.max_message_bytes}"
        )
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, details, call.trailer)

    @staticmethod
    async def _malformed(context: Context, call: _Call) -> None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _MALFORMED_DETAILS, call.trailer)

    @staticmethod
    async def _reject(context: Context, request: Any, violations: Sequence[Any], call: _Call) -> None:
        rejected = _rejection(request, violations)
        await context.abort(rejected.code, rejected.details, (*rejected.trailing_metadata, *call.trailer))

    def _classify(
        self, method: MethodStats, exc: Exception, call: _Call
    ) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str | bytes], ...]]:
        """The status code, details and trailing metadata an exception from a handler is sent as."""
        if isinstance(exc, _Rejected):
            return exc.code, exc.details, (*exc.trailing_metadata, *call.trailer)
        if isinstance(exc, DomainError):
            return exc.code, str(exc) or exc.code.value[1], call.trailer
        for klass in type(exc).__mro__:
            mapped = self.errors.get(klass)
            if mapped is not None:
                return mapped, mapped.value[1], call.trailer
        logger.error("%s failed (request_id=%s)", method.name, call.request_id, exc_info=exc)
        return grpc.StatusCode.INTERNAL, "internal error", call.trailer

    def _finish(self, method: MethodStats, context: Context, call: _Call, code: grpc.StatusCode | None) -> None:
        """Metrics, the trailer and the log line of an ended call, once. `code` None: the call was cancelled."""
        if call.finished:
            return
        call.finished = True
        now = _perf_counter()
        elapsed = now - call.started
        if code is None or code is _CANCELLED:
            code = _DEADLINE_EXCEEDED if now >= call.deadline - DEADLINE_SLACK_SECONDS else _CANCELLED
        elif code is _OK and now >= call.deadline:
            code = _DEADLINE_EXCEEDED  # too late: grpc drops the response, the client has its deadline error
        if code is _OK:
            method.ok += 1
        else:
            handled = method.handled
            handled[code] = handled.get(code, 0) + 1
        method.buckets[_bisect_left(method.bounds, elapsed)] += 1
        method.seconds_sum += elapsed
        trailing: Any = context.trailing_metadata()  # kept by grpc in Python: safe after the call's release
        if trailing is call.trailer:
            if code is _OK:
                # The id goes back with failures only, where a caller quotes it: on every success the trailer
                # cost ~3% of the server's instructions per unary call (most in grpc's core), and the client's.
                context.set_trailing_metadata(())
        elif code is not _OK and not any(key == REQUEST_ID_KEY for key, _ in trailing):
            # The handler replaced the trailer: add the request id back (too late only after an abort).
            context.set_trailing_metadata((*trailing, *call.trailer))
        self._open.remove(call)
        self.request_log(method.name, call.peer, code.name, elapsed, call.request_id)
