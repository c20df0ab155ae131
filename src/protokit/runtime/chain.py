"""The server interceptor chain: every RPC passes these stages, outermost first.

1. request logging - one INFO line per RPC (see `requestlog`): method, peer, status code, duration in ms
   and request id (the caller's `x-request-id` metadata, or a new uuid4-shaped id). An RPC that fails
   carries the id back as trailing metadata `x-request-id`, for the caller to quote; a successful one does
   not. Message bodies and the authorization header are never logged.
2. Prometheus metrics - `grpc_server_started_total`, `grpc_server_handled_total` (with `grpc_code`) and
   the `grpc_server_handling_seconds` histogram, labelled grpc_type/grpc_service/grpc_method.
3. authentication - `authorization: Bearer <token>` checked by the `TokenVerifier`; missing or invalid
   is UNAUTHENTICATED. Public methods, health and reflection skip it. The caller is `current_principal()`.
4. rate limiting - a token bucket per principal subject (else per client address): RESOURCE_EXHAUSTED
   with a RetryInfo detail once the burst is spent. Health and reflection are not limited.
5. validation - protovalidate on every request message, each message of a request stream included, as
   it arrives: INVALID_ARGUMENT with a google.rpc.BadRequest detail, one FieldViolation per violation.
6. exception mapping - `DomainError` -> its code and message; types in `errors` -> their code with the
   code's generic text; anything else -> INTERNAL "internal error" (traceback logged, never sent).
   `context.abort(...)` from a handler passes through unchanged.

The stages run in ONE wrapper around each method's handler, built once per method (`ChainedMethod`). The
server applies it as the handlers are registered, so a call pays no grpc.aio interceptor hop at all; with
`extra_interceptors` it runs as an ordinary interceptor instead, ahead of them. Either way the wrapper is
bound to the call's metadata as grpc looks the handler up (`ChainedMethod.bind`): grpc has already
decoded the metadata for the lookup, and `context.invocation_metadata()` would decode it all again. Per
call the chain keeps metric values as plain numbers (see `Metrics`) and leaves the log line to a
`RequestLog` sink, which builds it only when it will be written. Streaming responses pass through one
generator step per message.

Limits: request-streaming handlers receive an iterator that validates each message; messages read with
`context.read()` instead bypass validation. A handler that aborts with its own trailing metadata
(`abort_with_status`) replaces the `x-request-id` trailer.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import functools
import inspect
import math
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeAlias

import grpc
import grpc.aio
import prometheus_client
import protovalidate
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped,unused-ignore]
from grpc_status import rpc_status  # type: ignore[import-untyped,unused-ignore]
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .auth import _PRINCIPAL, Principal, TokenVerifier
from .errors import DomainError
from .requestlog import LoggingRequestLog, RequestLog, logger

__all__ = [
    "ALWAYS_PUBLIC_PREFIXES",
    "REQUEST_ID_KEY",
    "Chain",
    "ChainedHandler",
    "ChainedMethod",
    "Metrics",
    "field_path",
    "new_request_id",
]

REQUEST_ID_KEY = "x-request-id"
# Infrastructure services: never authenticated, never rate limited.
ALWAYS_PUBLIC_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

_OK = grpc.StatusCode.OK
_UNKNOWN = grpc.StatusCode.UNKNOWN
_perf_counter = time.perf_counter
_bisect_left = bisect.bisect_left
_isawaitable = inspect.isawaitable
_AbortError = grpc.aio.AbortError
_CancelledError = asyncio.CancelledError
_partial = functools.partial
_new_tuple = tuple.__new__

Behavior: TypeAlias = Callable[..., Any]
# The stubs make these generic; at run time they are not subscriptable.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Metadata: TypeAlias = "Sequence[tuple[str, str | bytes]] | None"


class _Method:
    """One method: what never changes between calls (computed once) and its metric values."""

    __slots__ = (
        "admit",
        "authenticate",
        "bounds",
        "buckets",
        "handled",
        "labels",
        "limited",
        "name",
        "ok",
        "seconds_sum",
        "started",
    )

    def __init__(self, name: str, grpc_type: str, bounds: tuple[float, ...], authenticate: bool, limited: bool) -> None:
        service, _, method = name.lstrip("/").rpartition("/")
        self.name = name
        self.labels = (grpc_type, service, method)
        self.authenticate = authenticate
        self.limited = limited
        self.admit = authenticate or limited
        # Metric values: plain numbers, updated on the event loop thread, read at scrape time.
        self.started = 0
        self.ok = 0  # handled with OK, the common case, kept out of the dict
        self.handled: dict[grpc.StatusCode, int] = {}
        self.bounds = bounds
        self.buckets = [0] * len(bounds)  # per bucket, not cumulative
        self.seconds_sum = 0.0


_LABELS = ("grpc_type", "grpc_service", "grpc_method")


class Metrics(Collector):
    """`grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`.

    A custom collector: RPCs update plain numbers on their method (no locks, no label lookups per call)
    and the Prometheus families are built only when the registry is scraped.
    """

    def __init__(
        self,
        registry: prometheus_client.CollectorRegistry,
        buckets: Sequence[float] = prometheus_client.Histogram.DEFAULT_BUCKETS,
    ) -> None:
        bounds = sorted(float(b) for b in buckets)
        if bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = tuple(bounds)
        self._bound_labels = tuple(floatToGoString(b) for b in bounds)  # type: ignore[no-untyped-call,unused-ignore]
        self.registry = registry
        self._methods: dict[str, _Method] = {}
        registry.register(self)

    def method(self, name: str, grpc_type: str, *, authenticate: bool, limited: bool) -> _Method:
        method = self._methods.get(name)
        if method is None:
            method = self._methods[name] = _Method(name, grpc_type, self.bounds, authenticate, limited)
        return method

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> list[Metric]:
        started, handled, seconds = self._families()
        for method in list(self._methods.values()):  # list(): atomic under the GIL
            labels = list(method.labels)
            started.add_metric(labels, method.started)
            handled.add_metric([*labels, "OK"], method.ok)
            for code, count in list(method.handled.items()):
                handled.add_metric([*labels, code.name], count)
            cumulative, buckets = 0, []
            for bound, count in zip(self._bound_labels, list(method.buckets), strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            seconds.add_metric(labels, buckets, method.seconds_sum)
        return [started, handled, seconds]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily("grpc_server_started", "RPCs started on the server.", labels=_LABELS),
            CounterMetricFamily(
                "grpc_server_handled",
                "RPCs completed on the server, regardless of success or failure.",
                labels=(*_LABELS, "grpc_code"),
            ),
            HistogramMetricFamily(
                "grpc_server_handling_seconds",
                "Latency (seconds) of RPCs handled by the server, until the status was set.",
                labels=_LABELS,
            ),
        )


class _RateLimiter:
    """Token buckets keyed by caller; `take` returns 0.0 when allowed, else seconds until a token is due."""

    MAX_KEYS = 10_000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill time]

    def take(self, key: str) -> float:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:
                self._prune(now)
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget callers whose bucket has refilled: they are indistinguishable from new ones."""
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.MAX_KEYS:  # all busy: start over rather than grow without bound
            self._buckets.clear()


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

    def __init__(self, handler: Handler, behavior: Behavior) -> None:
        self.handler = handler  # the handler the chain wraps
        self._behavior = behavior  # behavior(metadata, request, context)
        fields: list[Any] = [
            handler.request_streaming,
            handler.response_streaming,
            handler.request_deserializer,
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


def _peer_host(peer: str) -> str:
    """`ipv4:10.0.0.1:5123` -> `ipv4:10.0.0.1`: one bucket per client address, not per connection."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rpartition(":")[0]
    return peer


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


# Request ids are uuid4-shaped: a random 80-bit prefix per process (forks get their own), then a 48-bit
# counter from a random start. Unique within a process and, by the prefix, across processes; a
# concatenation per id, where formatting 128 fresh random bits as a uuid costs ~10 times as much.
_id_prefix = ""
_id_next = 0


def _reseed_request_ids() -> None:
    global _id_prefix, _id_next
    bits = random.SystemRandom().getrandbits(128)
    h = f"{bits:032x}"
    _id_prefix = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-"
    _id_next = bits & 0xFFFF_FFFF_FFFF


_reseed_request_ids()
os.register_at_fork(after_in_child=_reseed_request_ids)


def new_request_id() -> str:
    """A new uuid4-shaped request id (see above)."""
    global _id_next
    _id_next = n = (_id_next + 1) & 0xFFFF_FFFF_FFFF
    return _id_prefix + n.to_bytes(6, "big").hex()  # half the cost of f"{n:012x}"


def _valid_request_id(value: str) -> bool:
    return 0 < len(value) <= 128 and value.isascii() and value.isprintable()


# A client whose deadline passes cancels the stream itself (RST_STREAM carries no reason), and that cancel
# reaches the server a little before the server's own copy of the deadline: the server started its clock
# when the headers arrived. A cancel this close to the deadline is counted as the deadline.
DEADLINE_SLACK_SECONDS = 0.1


def _cancel_code(context: Context) -> grpc.StatusCode:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= DEADLINE_SLACK_SECONDS:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


def _grpc_type(handler: Handler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


class Chain(grpc.aio.ServerInterceptor):
    """Logging, metrics, auth, rate limiting, validation and error mapping (see the module doc).

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
    ) -> None:
        self.metrics = metrics
        self.request_log: RequestLog = LoggingRequestLog() if request_log is None else request_log
        self.verifier = verifier
        self.public_methods = frozenset(public_methods)
        self.errors = dict(errors or {})
        self.limiter = _RateLimiter(rate_limit, rate_burst) if rate_limit else None
        self.validator = protovalidate.Validator()
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
        infrastructure = name.startswith(ALWAYS_PUBLIC_PREFIXES)
        public = infrastructure or name in self.public_methods
        method = self.metrics.method(
            name,
            _grpc_type(handler),
            authenticate=self.verifier is not None and not public,
            limited=self.limiter is not None and not infrastructure,
        )
        # Without a deserializer requests are raw bytes: nothing to validate.
        validate = handler.request_deserializer is not None
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
        return ChainedMethod(handler, behavior)

    # -- the wrappers: one per response shape -------------------------------------------------------------

    def _unary(self, method: _Method, behavior: Behavior, request_streaming: bool, validate: bool) -> Behavior:
        begin, admit, finish, classify = self._begin, self._admit, self._finish, self._classify
        collect, reject, validated = self.validator.collect_violations, self._reject, self._validated
        is_coroutine = inspect.iscoroutinefunction(behavior)

        async def unary_behavior(metadata: Metadata, request: Any, context: Context) -> Any:
            started = _perf_counter()
            method.started += 1
            rid, authorization, trailer = begin(metadata, context)
            principal_token = None
            code = None
            try:
                if method.admit:
                    principal = await admit(method, context, authorization)
                    if principal is not None:
                        principal_token = _PRINCIPAL.set(principal)
                if not validate:
                    pass
                elif request_streaming:
                    request = validated(request, context, trailer)
                else:
                    violations = collect(request)
                    if violations:
                        await reject(context, request, violations, trailer)
                response = behavior(request, context)
                if is_coroutine or _isawaitable(response):
                    response = await response
                code = context.code() or _OK
                return response
            except _AbortError:
                code = context.code() or _UNKNOWN
                raise
            except _CancelledError:
                code = _cancel_code(context)
                raise
            except Exception as exc:
                code, details = classify(method, exc, rid)
                await context.abort(code, details)
            finally:
                finish(method, context, started, rid, code or _UNKNOWN, trailer)
                if principal_token is not None:
                    _PRINCIPAL.reset(principal_token)

        return unary_behavior

    def _streaming(self, method: _Method, behavior: Behavior, request_streaming: bool, validate: bool) -> Behavior:
        begin, admit, finish, classify = self._begin, self._admit, self._finish, self._classify
        collect, reject, validated = self.validator.collect_violations, self._reject, self._validated

        async def streaming_behavior(metadata: Metadata, request: Any, context: Context) -> AsyncIterator[Any]:
            started = _perf_counter()
            method.started += 1
            rid, authorization, trailer = begin(metadata, context)
            principal_token = None
            code = None
            try:
                if method.admit:
                    principal = await admit(method, context, authorization)
                    if principal is not None:
                        principal_token = _PRINCIPAL.set(principal)
                if not validate:
                    pass
                elif request_streaming:
                    request = validated(request, context, trailer)
                else:
                    violations = collect(request)
                    if violations:
                        await reject(context, request, violations, trailer)
                responses = behavior(request, context)
                if hasattr(responses, "__aiter__"):  # async generator handler
                    async for response in responses:
                        yield response
                elif _isawaitable(responses):  # coroutine handler writing with context.write()
                    await responses
                elif responses is not None:  # plain generator
                    for response in responses:
                        yield response
                code = context.code() or _OK
            except _AbortError:
                code = context.code() or _UNKNOWN
                raise
            except (_CancelledError, GeneratorExit):
                code = _cancel_code(context)
                raise
            except Exception as exc:
                code, details = classify(method, exc, rid)
                await context.abort(code, details)
            finally:
                finish(method, context, started, rid, code or _UNKNOWN, trailer)
                if principal_token is not None:
                    _PRINCIPAL.reset(principal_token)

        return streaming_behavior

    # -- stages -------------------------------------------------------------------------------------------

    @staticmethod
    def _begin(metadata: Metadata, context: Context) -> tuple[str, str | None, tuple[tuple[str, str], ...]]:
        """Request id and authorization header from the metadata; the request id trailer is set."""
        rid = authorization = None
        for key, value in metadata or ():
            if key == REQUEST_ID_KEY:
                rid = value
            elif key == "authorization":
                authorization = value
        if not isinstance(rid, str) or not _valid_request_id(rid):
            rid = new_request_id()
        trailer = ((REQUEST_ID_KEY, rid),)
        context.set_trailing_metadata(trailer)
        return rid, authorization if isinstance(authorization, str) else None, trailer

    async def _admit(self, method: _Method, context: Context, authorization: str | None) -> Principal | None:
        """Authentication, then rate limiting; aborts the RPC when either says no."""
        principal = None
        if method.authenticate:
            assert self.verifier is not None
            scheme, _, token = (authorization or "").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
            principal = await self.verifier(token)
            if principal is None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        if method.limited:
            assert self.limiter is not None
            key = principal.subject if principal is not None else _peer_host(context.peer())
            wait = self.limiter.take(key)
            if wait:
                await self._throttle(context, wait)
        return principal

    async def _throttle(self, context: Context, wait: float) -> None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, math.ceil(wait * 1e9)))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status = rpc_status.to_status(
            status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="rate limit exceeded", details=[detail])
        )
        await context.abort(status.code, status.details, (*status.trailing_metadata, *context.trailing_metadata()))

    async def _validated(
        self, requests: AsyncIterator[Any], context: Context, trailer: tuple[tuple[str, str], ...]
    ) -> AsyncIterator[Any]:
        collect = self.validator.collect_violations
        async for request in requests:
            violations = collect(request)
            if violations:
                await self._reject(context, request, violations, trailer)
            yield request

    @staticmethod
    async def _reject(
        context: Context, request: Any, violations: Sequence[Any], trailer: tuple[tuple[str, str], ...]
    ) -> None:
        """Abort with INVALID_ARGUMENT and a google.rpc.BadRequest naming every violated field."""
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
        status = rpc_status.to_status(
            status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
        )
        await context.abort(status.code, status.details, (*status.trailing_metadata, *trailer))

    def _classify(self, method: _Method, exc: Exception, rid: str) -> tuple[grpc.StatusCode, str]:
        """The status code and details an exception from a handler is sent as."""
        if isinstance(exc, DomainError):
            return exc.code, str(exc) or exc.code.value[1]
        for klass in type(exc).__mro__:
            mapped = self.errors.get(klass)
            if mapped is not None:
                return mapped, mapped.value[1]
        logger.error("%s failed (request_id=%s)", method.name, rid, exc_info=exc)
        return grpc.StatusCode.INTERNAL, "internal error"

    def _finish(
        self,
        method: _Method,
        context: Context,
        started: float,
        rid: str,
        code: grpc.StatusCode,
        trailer: tuple[tuple[str, str], ...],
    ) -> None:
        elapsed = _perf_counter() - started
        if code is _OK:
            method.ok += 1
        else:
            handled = method.handled
            handled[code] = handled.get(code, 0) + 1
        method.buckets[_bisect_left(method.bounds, elapsed)] += 1
        method.seconds_sum += elapsed
        trailing: Any = context.trailing_metadata()
        if trailing is trailer:
            if code is _OK:
                # The id goes back with failures only, where a caller quotes it: on every success the trailer
                # cost ~3% of the server's instructions per unary call (most in grpc's core), and the client's.
                context.set_trailing_metadata(())
        elif code is not _OK and not any(key == REQUEST_ID_KEY for key, _ in trailing):
            # The handler replaced the trailer: add the request id back (too late only after an abort).
            context.set_trailing_metadata((*trailing, *trailer))
        self.request_log(method.name, context, code.name, elapsed, rid)
