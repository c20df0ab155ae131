"""The gRPC server: generated servicers plus health, reflection, metrics, TLS and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

import grpc
import grpc.aio
import prometheus_client
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped,unused-ignore]
from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped,unused-ignore]
from grpc_reflection.v1alpha import (  # type: ignore[import-untyped,unused-ignore]
    reflection,
    reflection_pb2,
    reflection_pb2_grpc,
)

from .auth import TokenVerifier
from .chain import Chain, ChainedHandler, ChainedMethod, Handler
from .metrics import Metrics
from .requestlog import RequestLog, configure_logging, logger
from .settings import ConfigError, ServerSettings, activate
from .tokens import TokenFile

__all__ = ["BindError", "Server", "Service", "build_server", "run"]


@runtime_checkable
class Service(Protocol):
    """A servicer the server can host; generated base servicers implement it.

    `SERVICE_NAME` is the full proto name ("user.v1.UserService"), used for health and reflection;
    `add_to_server` registers the servicer (`add_XServicer_to_server(self, server)`).
    """

    SERVICE_NAME: ClassVar[str]

    def add_to_server(self, server: grpc.aio.Server) -> None: ...


class _MethodTable(grpc.GenericRpcHandler):
    """Every registered method's handler, found with one dict lookup per call."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}  # as registered (the chain runs as an interceptor)
        self.chained: dict[str, ChainedMethod] = {}  # wrapped in the chain, bound to each call's metadata

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        chained = self.chained.get(handler_call_details.method)
        if chained is not None:
            return chained.bind(handler_call_details.invocation_metadata)
        return self.handlers.get(handler_call_details.method)


class _Registrar:
    """Stands in for the grpc.aio server while services register; everything else is delegated.

    Methods handed to `add_registered_method_handlers` go into one `_MethodTable`, a generic handler
    ahead of all others, and are never registered with grpc as "registered methods": grpc.aio keeps a
    pending call request per registered method and waits on all of them for every call, so each one
    makes every call on the server dearer (measured with cachegrind on grpcio 1.85: ~6k instructions
    per registered method per call; health, reflection and UserService's seven methods ~13% of a bare
    servicer's call). With `chain`, handlers are registered with it already wrapped around them, so
    calls need no interceptor hop.
    """

    def __init__(self, server: grpc.aio.Server, chain: Chain | None) -> None:
        self._server = server
        self._chain = chain
        self._table = _MethodTable()
        server.add_generic_rpc_handlers([self._table])

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        chain = self._chain
        handlers = [h if chain is None else ChainedHandler(h, chain) for h in generic_rpc_handlers]
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Mapping[str, Handler]) -> None:
        for name, handler in method_handlers.items():
            method = f"/{service_name}/{name}"
            if self._chain is None:
                self._table.handlers[method] = handler
            else:
                self._table.chained[method] = self._chain.wrapped(method, handler)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class _Health(health_aio.HealthServicer):  # type: ignore[misc,unused-ignore]
    """grpcio-health-checking's aio servicer, plus the List method of health.proto it lacks (its base
    raises NotImplementedError there, which answered INTERNAL)."""

    async def List(self, request: Any, context: Any) -> Any:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status) for name, status in self._server_status.items()
            }
        )


class BindError(RuntimeError):
    """The server could not listen on its address (busy port, bad host)."""


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    return f"{host}:{port}"


class Server:
    """A grpc.aio server hosting `services`, built by `build_server`.

    Interceptors, outermost first: OpenTelemetry (when `settings.tracing`), then protokit's chain -
    1) request logging, 2) Prometheus metrics, 3) authentication, 4) rate limiting, 5) protovalidate
    validation, 6) exception mapping (see `protokit.runtime.chain`) - then `extra_interceptors`, nearest
    the handler. Without extra interceptors the chain is wrapped around each handler at registration
    (services get a stand-in for the grpc.aio server in `add_to_server`), saving the interceptor hop.

    Health (`grpc.health.v1.Health`) is SERVING for "" and every service from `start()` and NOT_SERVING
    from the start of `stop()`; reflection (v1 and v1alpha) lists the services, health and reflection itself
    unless `settings.reflection` is false.

    The grpc.aio server is created in `start()`, on the running event loop.
    """

    def __init__(
        self,
        services: Sequence[Service],
        settings: ServerSettings,
        chain: Chain,
        interceptors: Sequence[grpc.aio.ServerInterceptor],
        registry: prometheus_client.CollectorRegistry,
        credentials: grpc.ServerCredentials | None,
    ) -> None:
        self.settings = settings
        self._services = tuple(services)
        self._chain = chain
        self._interceptors = tuple(interceptors)
        self._registry = registry
        self._credentials = credentials
        self._health = _Health()
        self._server: grpc.aio.Server | None = None
        self._port: int | None = None
        self._metrics_http: Any = None
        self._metrics_port: int | None = None
        self._stopping: asyncio.Future[None] | None = None

    # -- properties ---------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound gRPC port (the real one when settings.port is 0); RuntimeError before `start()`."""
        if self._port is None:
            raise RuntimeError("the server has not been started")
        return self._port

    @property
    def metrics_port(self) -> int | None:
        """The bound /metrics HTTP port, or None when metrics are not served over HTTP (or not started)."""
        return self._metrics_port

    @property
    def health(self) -> health_aio.HealthServicer:
        """The health servicer: `await server.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)`."""
        return self._health

    @property
    def metrics_registry(self) -> prometheus_client.CollectorRegistry:
        return self._registry

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.SERVICE_NAME for s in self._services)

    # -- lifecycle ----------------------------------------------------------------------------------------

    def _options(self) -> list[tuple[str, Any]]:
        s = self.settings
        return [
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.keepalive_time_ms", round(s.keepalive_time * 1000)),
            ("grpc.keepalive_timeout_ms", round(s.keepalive_timeout * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            # Accept client keepalive pings every 10 s (protokit clients ping every 30 s) instead of
            # answering them with GOAWAY "too_many_pings" after the 5 minute default.
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            # What one client may hold: streams (each with a message buffer) on one connection, and for how
            # long a connection lives (age: clients reconnect and rebalance; idle: no RPCs at all).
            ("grpc.max_concurrent_streams", s.max_concurrent_streams),
            *_milliseconds("grpc.max_connection_idle_ms", s.max_connection_idle),
            *_milliseconds("grpc.max_connection_age_ms", s.max_connection_age),
            *_milliseconds(
                "grpc.max_connection_age_grace_ms", s.max_connection_age_grace if s.max_connection_age else 0
            ),
            # Two servers on one port would split the traffic silently (unless asked: protokit dev).
            ("grpc.so_reuseport", 1 if s.reuse_port else 0),
        ]

    async def start(self) -> int:
        """Bind, start serving and mark every service SERVING; returns the bound port."""
        if self._server is not None:
            raise RuntimeError("the server was already started")
        s = self.settings
        server = grpc.aio.server(
            interceptors=self._interceptors or None,
            options=self._options(),
            compression=grpc.Compression.Gzip if s.gzip else None,
        )
        # The chain is either among the interceptors (with extra_interceptors, to keep the order) or
        # wrapped around every handler as it is registered.
        chain = None if self._chain in self._interceptors else self._chain
        target = cast(grpc.aio.Server, _Registrar(server, chain))
        for service in self._services:
            service.add_to_server(target)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, target)
        if s.reflection:
            names = (*self.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
            servicer = reflection.aio.ReflectionServicer((*names, reflection.SERVICE_NAME, REFLECTION_V1))
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, target)
            # buf curl, grpcurl and Postman ask grpc.reflection.v1 first. grpcio-reflection serves only
            # v1alpha, which v1 copies message for message under another package name: same servicer,
            # same bytes on the wire.
            v1 = grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
            target.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": v1}),)
            )
        address = _address(s.host, s.port)
        if self._credentials is not None:
            port = server.add_secure_port(address, self._credentials)
        else:
            port = server.add_insecure_port(address)
        if not port:
            raise BindError(f"cannot listen on {address} (is the port in use?)")
        activate(s)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        for name in self.service_names:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if s.metrics_port is not None:  # before serving gRPC: a busy port must not leave a half-started server
            httpd, _ = prometheus_client.start_http_server(s.metrics_port, addr=s.host, registry=self._registry)
            self._metrics_http, self._metrics_port = httpd, httpd.server_port
        try:
            await server.start()
        except BaseException:
            if self._metrics_http is not None:
                self._metrics_http.shutdown()
                self._metrics_http.server_close()
                self._metrics_http = self._metrics_port = None
            raise
        self._server, self._port = server, port
        logger.info(
            "serving %s on %s (%s)%s",
            ", ".join(self.service_names) or "no services",
            _address(s.host, port),
            ("mTLS" if s.tls_client_ca else "TLS") if self._credentials is not None else "plaintext",
            f", metrics on :{self._metrics_port}/metrics" if self._metrics_port is not None else "",
        )
        return port

    # The drain's settle phase: calls grpc has received but not yet handed to Python are dispatched one per
    # event-loop turn, and grpc's own stop cancels them (they never started, but the client sent them before
    # the stop). So the server keeps dispatching until no new call has started for SETTLE_QUIET seconds (at
    # most SETTLE_MAX), and only then refuses new calls.
    SETTLE_QUIET = 0.05
    SETTLE_MAX = 1.0
    # After the grace period, how long the calls still in flight get to send their UNAVAILABLE status.
    END_CALLS_SECONDS = 0.5

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown: health NOT_SERVING; calls already sent are taken in and every call in flight
        (streams included) gets up to `grace` seconds (default settings.grace_period) to finish, while new
        calls get UNAVAILABLE; then grpc stops, cancelling what is left.

        Calling it again, or concurrently, waits for the first call to finish.
        """
        if self._stopping is not None:
            await asyncio.shield(self._stopping)
            return
        self._stopping = asyncio.get_running_loop().create_future()
        try:
            await self._health.enter_graceful_shutdown()
            if self._server is not None:
                seconds = self.settings.grace_period if grace is None else grace
                logger.info("stopping: %.1fs grace for in-flight RPCs", seconds)
                deadline = time.monotonic() + seconds
                await self._drain(deadline)
                await self._server.stop(max(0.0, deadline - time.monotonic()))
            if self._metrics_http is not None:
                httpd, self._metrics_http = self._metrics_http, None
                await asyncio.to_thread(httpd.shutdown)
                httpd.server_close()
        finally:
            self._chain.request_log.flush()
            self._stopping.set_result(None)

    async def _drain(self, deadline: float) -> None:
        """Settle (see SETTLE_QUIET), refuse new calls, wait for the calls in flight until `deadline`, then end
        what is left with UNAVAILABLE."""
        chain = self._chain
        settle_end = min(deadline, time.monotonic() + self.SETTLE_MAX)
        started = sum(m.started for m in chain.metrics.methods())
        while time.monotonic() < settle_end:
            await asyncio.sleep(self.SETTLE_QUIET)
            now_started = sum(m.started for m in chain.metrics.methods())
            if now_started == started:
                break
            started = now_started
        chain.refuse_new_calls()
        remaining = deadline - time.monotonic()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(chain.wait_idle(), remaining)
        if chain.in_flight:
            # UNAVAILABLE, not grpc's CANCELLED: the client's cue to reconnect (a watch) or retry elsewhere.
            logger.warning("grace period over: ending %d RPC(s) still in flight", chain.in_flight)
            chain.end_calls(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(chain.wait_idle(), self.END_CALLS_SECONDS)

    async def wait_for_termination(self) -> None:
        """Return once the server has stopped."""
        if self._server is None:
            raise RuntimeError("the server has not been started")
        await self._server.wait_for_termination()
        if self._stopping is not None:
            await asyncio.shield(self._stopping)

    async def serve(self) -> None:
        """`start()`, then serve until SIGTERM or SIGINT, which stop the server gracefully."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop_task: asyncio.Task[None] | None = None
        forced: list[asyncio.Task[None]] = []

        def on_signal(signum: signal.Signals) -> None:
            nonlocal stop_task
            if stop_task is None:
                logger.info("%s received: stopping gracefully (send it again to stop now)", signum.name)
                stop_task = loop.create_task(self.stop())
            elif self._server is not None and not stop_task.done():
                logger.info("%s received again: cancelling in-flight RPCs", signum.name)
                forced.append(loop.create_task(self._server.stop(0)))

        installed = []
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(signum, on_signal, signum)
                except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not on Windows
                    continue
                installed.append(signum)
        try:
            await self.wait_for_termination()
            if stop_task is not None:
                await stop_task
            for task in forced:
                await task
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            if self._stopping is None:  # cancelled: still shut down cleanly
                await self.stop()


def _milliseconds(option: str, seconds: float) -> list[tuple[str, int]]:
    """A grpc duration option, or none at all for 0 (grpc's own default: no limit)."""
    return [(option, round(seconds * 1000))] if seconds else []


def _read(path: str, what: str, marker: bytes) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data or marker not in data:
        raise ConfigError(f"{what} {path} is not PEM (no '-----BEGIN ...{marker.decode()}' block)")
    return data


def _credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials, checked here with Python's ssl module: grpc reports a bad key or certificate only
    as "Failed to bind to address" when the server starts."""
    if not settings.tls_cert or not settings.tls_key:
        return None
    cert = _read(settings.tls_cert, "TLS certificate", b"CERTIFICATE-----")
    key = _read(settings.tls_key, "TLS key", b"PRIVATE KEY-----")
    client_ca = _read(settings.tls_client_ca, "TLS client CA", b"CERTIFICATE-----") if settings.tls_client_ca else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # No password: grpc cannot use an encrypted key, and OpenSSL would otherwise prompt on the terminal.
        context.load_cert_chain(settings.tls_cert, settings.tls_key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"TLS key {settings.tls_key} does not match the certificate {settings.tls_cert}"
            ) from None
        raise ConfigError(
            f"TLS certificate {settings.tls_cert} or key {settings.tls_key} cannot be loaded ({exc.reason})"
        ) from None
    if settings.tls_client_ca:
        try:
            context.load_verify_locations(settings.tls_client_ca)
        except ssl.SSLError as exc:
            raise ConfigError(f"TLS client CA {settings.tls_client_ca} cannot be loaded ({exc.reason})") from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _tracing_interceptor() -> grpc.aio.ServerInterceptor:
    try:
        from opentelemetry.instrumentation.grpc import aio_server_interceptor
    except ImportError as exc:
        raise RuntimeError(
            "tracing is on (PROTOKIT_TRACING) but opentelemetry-instrumentation-grpc is not installed: "
            "install the `otel` extra, e.g. pip install 'protokit-runtime[otel]'"
        ) from exc
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor()  # type: ignore[no-untyped-call,unused-ignore]
    return interceptor


def build_server(
    services: Sequence[Service],
    settings: ServerSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    public_methods: Collection[str] = (),
    errors: Mapping[type[BaseException], grpc.StatusCode] | None = None,
    registry: prometheus_client.CollectorRegistry | None = None,
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    request_log: RequestLog | None = None,
) -> Server:
    """A `Server` for `services` (not started).

    settings: None reads `ServerSettings.from_env()`. verifier: checks bearer tokens; None takes the
    tokens file of settings.auth_tokens_file, if any, else authentication is off (not both: ConfigError).
    public_methods: full method names ("/user.v1.UserService/GetUser") callable without a token.
    errors: exception type -> status code for exceptions that are not `DomainError`s.
    registry: where the metrics live; None creates a fresh CollectorRegistry for this server.
    extra_interceptors: run after protokit's chain, nearest the handler.
    request_log: where each RPC's log line goes; None logs records on the "protokit.runtime" logger
    (see `protokit.runtime.requestlog`).
    """
    settings = ServerSettings.from_env() if settings is None else settings
    names = [s.SERVICE_NAME for s in services]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"service registered twice: {', '.join(duplicates)}")
    for method in public_methods:
        if not method.startswith("/") or method.count("/") != 2:
            raise ValueError(f"public method {method!r} is not a full method name like '/pkg.v1.Service/Method'")
    if settings.auth_tokens_file:
        if verifier is not None:
            raise ConfigError("both a verifier and a tokens file (PROTOKIT_AUTH_TOKENS_FILE) are set: pick one")
        verifier = TokenFile.load(settings.auth_tokens_file)
    logging.getLogger(logger.name).setLevel(settings.log_level_number)
    registry = prometheus_client.CollectorRegistry() if registry is None else registry
    chain = Chain(
        Metrics(registry),
        verifier=verifier,
        public_methods=public_methods,
        errors=errors,
        rate_limit=settings.rate_limit,
        rate_burst=settings.effective_rate_burst,
        request_log=request_log,
        authenticate_reflection=not settings.reflection_public,
        keep_unknown_fields=settings.keep_unknown_fields,
        max_deadline=settings.max_deadline,
        max_stream_deadline=settings.max_stream_deadline,
        max_message_bytes=settings.max_message_bytes,
    )
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if settings.tracing:
        interceptors.append(_tracing_interceptor())
    if extra_interceptors:  # else the chain wraps the handlers directly: same order, no interceptor hop
        interceptors.append(chain)
        interceptors.extend(extra_interceptors)
    return Server(services, settings, chain, interceptors, registry, _credentials(settings))


def _die_with_parent() -> None:
    """Under a supervisor that asks for it (`protokit dev` sets PROTOKIT_PARENT_PID), end with it: Linux sends
    SIGTERM when the parent dies, even by SIGKILL, so no orphan server keeps the port."""
    wanted = os.environ.get("PROTOKIT_PARENT_PID")
    if not wanted or not wanted.isdigit():
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != int(wanted):  # the parent died before the request took effect
        raise SystemExit(1)


def run(services: Sequence[Service], settings: ServerSettings | None = None, **kwargs: Any) -> None:
    """Serve `services` until SIGTERM/SIGINT: the body of a service's `__main__`.

    settings: None reads `ServerSettings.from_env()`; kwargs go to `build_server`. Configures logging
    to stderr at settings.log_level (in settings.log_format) when the application has not configured
    logging itself, and then writes the request log to stderr directly (`StreamRequestLog`, same layout,
    a fraction of the cost).

    A configuration problem (a bad PROTOKIT_* value, an unreadable or mismatched TLS file, a bad tokens
    file, a port in use) is one line on stderr and exit status 2; PROTOKIT_DEBUG=1 shows the traceback.
    """
    _die_with_parent()
    try:
        settings = ServerSettings.from_env() if settings is None else settings
        request_log = configure_logging(settings.log_level_number, sys.stderr, settings.log_format)
        kwargs.setdefault("request_log", request_log)
        server = build_server(services, settings, **kwargs)
        asyncio.run(server.serve())
    except (ConfigError, BindError) as exc:
        if os.environ.get("PROTOKIT_DEBUG"):
            raise
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
