"""protokit.runtime: the small library generated servicers and clients import (no tooling imports).

Server:

    from protokit.runtime import ServerSettings, build_server, run

    run([UserService()])                     # __main__: settings from PROTOKIT_* variables, SIGTERM = graceful stop

    server = build_server([UserService()], ServerSettings(port=0), verifier=verify_token)
    port = await server.start()
    ...
    await server.stop(grace=5)

Every RPC passes, outermost first: OpenTelemetry (if settings.tracing), then 1) request logging,
2) Prometheus metrics, 3) the failed-login throttle and bearer-token authentication, 4) rate limiting,
5) reading (malformed bytes: INVALID_ARGUMENT; unknown fields dropped) and protovalidate validation of
every request message, 6) exception mapping (`DomainError` -> its code), then `extra_interceptors`.
See `protokit.runtime.chain` for the details of each stage. Health and reflection are served too.

Streams: `Fanout` fans events out to WatchX handlers with a bounded backlog per subscriber; `end_call`
ends a call from outside its handler. Auth without code: `PROTOKIT_AUTH_TOKENS_FILE` (see
`protokit.runtime.tokens`). Settings and their variables: `ServerSettings` and the README's table.

Client: `channel()`, `service_config()`, `MethodPolicy`, `RetryPolicy`, `TlsConfig`, `bearer()`,
`close_channels()` (in `protokit.runtime.client`).
"""

from .auth import Principal, TokenVerifier, current_principal
from .calls import end_call
from .chain import REQUEST_ID_KEY
from .client import MethodPolicy, RetryPolicy, TlsConfig, bearer, channel, close_channels, service_config
from .errors import AlreadyExists, DomainError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from .fanout import Fanout, SlowConsumer, Subscription
from .server import Server, Service, build_server, run
from .settings import ConfigError, ServerSettings

__all__ = [
    "REQUEST_ID_KEY",
    "AlreadyExists",
    "ConfigError",
    "DomainError",
    "FailedPrecondition",
    "Fanout",
    "InvalidArgument",
    "MethodPolicy",
    "NotFound",
    "PermissionDenied",
    "Principal",
    "RetryPolicy",
    "Server",
    "ServerSettings",
    "Service",
    "SlowConsumer",
    "Subscription",
    "TlsConfig",
    "TokenVerifier",
    "bearer",
    "build_server",
    "channel",
    "close_channels",
    "current_principal",
    "end_call",
    "run",
    "service_config",
]
