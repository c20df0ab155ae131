"""Client side: shared grpc.aio channels with timeouts, retries, load balancing, TLS and bearer tokens.

    config = service_config(
        "user.v1.UserService",
        {"GetUser": MethodPolicy(timeout=1.5, idempotent=True), "CreateUser": MethodPolicy(timeout=5)},
    )
    stub = UserServiceStub(channel("users:50051", service_config=config))
    await stub.GetUser(request, metadata=bearer(token))

`channel()` returns ONE shared channel per (targets, settings, event loop): call it wherever a stub is
needed instead of keeping channels around, and `await close_channels()` at shutdown.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

__all__ = [
    "MethodPolicy",
    "RetryPolicy",
    "TlsConfig",
    "bearer",
    "channel",
    "close_channels",
    "service_config",
]


@dataclass(frozen=True)
class MethodPolicy:
    """Per-method client behaviour: a deadline, and whether the method may be retried (is idempotent)."""

    timeout: float | None = None
    idempotent: bool = False

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"MethodPolicy.timeout must be > 0 seconds, got {self.timeout}")


_INITIAL_RECONNECT_MS = 100


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for idempotent methods; only UNAVAILABLE is retried. gRPC caps attempts at 5."""

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 2:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 2 (1 is no retry), got {self.max_attempts}")
        if not (self.initial_backoff > 0 and self.max_backoff > 0 and self.backoff_multiplier > 0):
            raise ValueError("RetryPolicy backoffs and multiplier must be > 0")


@dataclass(frozen=True)
class TlsConfig:
    """TLS for a channel: `ca_file` verifies the server (system roots if None); `cert_file` + `key_file`
    present a client certificate (mTLS); `server_name` overrides the name checked in the server's certificate.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("TlsConfig.cert_file and TlsConfig.key_file must be set together")

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file),
            private_key=read(self.key_file),
            certificate_chain=read(self.cert_file),
        )


def _duration(seconds: float) -> str:
    """Seconds as a google.protobuf.Duration JSON string: 1.5 -> "1.5s"."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


_ROUND_ROBIN: list[dict[str, Any]] = [{"round_robin": {}}]


def service_config(
    service: str,
    methods: Mapping[str, MethodPolicy],
    *,
    retry: RetryPolicy = RetryPolicy(),  # frozen: a shared default is safe
    round_robin: bool = False,
) -> dict[str, Any]:
    """A gRPC service config (the dict form of its JSON) for the methods of `service`.

    `methods` maps method names ("GetUser", or "*" for every method of the service) to their policy:
    `timeout` becomes the method's deadline, `idempotent` adds a retry policy (UNAVAILABLE only,
    exponential backoff from `retry`). `round_robin` spreads calls over all resolved addresses.
    """
    method_config: list[dict[str, Any]] = []
    for method, policy in methods.items():
        name = {"service": service} if method in ("", "*") else {"service": service, "method": method}
        entry: dict[str, Any] = {"name": [name]}
        if policy.timeout is not None:
            entry["timeout"] = _duration(policy.timeout)
        if policy.idempotent:
            entry["retryPolicy"] = {
                "maxAttempts": retry.max_attempts,
                "initialBackoff": _duration(retry.initial_backoff),
                "maxBackoff": _duration(retry.max_backoff),
                "backoffMultiplier": retry.backoff_multiplier,
                "retryableStatusCodes": ["UNAVAILABLE"],
            }
        method_config.append(entry)
    config: dict[str, Any] = {"methodConfig": method_config}
    if round_robin:
        config["loadBalancingConfig"] = list(_ROUND_ROBIN)
    return config


def _split_host_port(target: str) -> tuple[str, str]:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"target {target!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), port


def _static_target(targets: Sequence[str]) -> str:
    """Several `ip:port` targets as one static address list: `ipv4:10.0.0.1:80,10.0.0.2:80`."""
    families: set[int] = set()
    addresses: list[str] = []
    for target in targets:
        host, port = _split_host_port(target)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"target {target!r}: several targets must be IP addresses; for host names use one "
                "'dns:///name:port' target that resolves to all of them"
            ) from None
        families.add(ip.version)
        addresses.append(f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}")
    if len(families) > 1:
        raise ValueError("several targets must all be IPv4 or all be IPv6 addresses")
    return f"ipv{families.pop()}:{','.join(addresses)}"


_ChannelKey = tuple[Any, ...]
_channels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_ChannelKey, grpc.aio.Channel]] = (
    weakref.WeakKeyDictionary()
)


def channel(
    target: str | Sequence[str],
    *,
    service_config: Mapping[str, Any] | None = None,
    tls: TlsConfig | None = None,
    gzip: bool = True,
    keepalive_time: float | None = 30.0,
    max_message_bytes: int = 4 * 1024 * 1024,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """The shared grpc.aio channel to `target` with these settings, created on first use.

    `target` is anything grpc accepts ("host:port", "dns:///name:port", "unix:/path") or several
    "ip:port" strings, which become one channel over a static address list; several targets use
    round_robin unless `service_config` names a load-balancing policy. Channels belong to the running
    event loop, so this must be called from a coroutine; each loop gets its own channels.
    `keepalive_time` (seconds) pings the server during calls to detect dead connections; None disables.
    """
    loop = asyncio.get_running_loop()  # RuntimeError outside a coroutine: aio channels need a loop
    targets = (target,) if isinstance(target, str) else tuple(target)
    if not targets:
        raise ValueError("channel() needs at least one target")
    config = dict(service_config or {})
    if len(targets) > 1 and "loadBalancingConfig" not in config and "loadBalancingPolicy" not in config:
        config["loadBalancingConfig"] = list(_ROUND_ROBIN)
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":")) if config else ""
    extra = tuple((str(k), v) for k, v in options)
    key = (targets, config_json, tls, gzip, keepalive_time, max_message_bytes, extra)
    per_loop = _channels.setdefault(loop, {})
    existing = per_loop.get(key)
    if existing is not None:
        return existing

    opts: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.enable_retries", 1),
        # While a connection is down, calls fail at once until the channel tries again, after gRPC's default
        # 1 s: longer than a RetryPolicy's attempts last (~0.7 s by default), so a server back from a restart
        # (protokit dev, a rolling deploy) was never retried into. The backoff still grows to its maximum.
        ("grpc.initial_reconnect_backoff_ms", _INITIAL_RECONNECT_MS),
    ]
    if config_json:
        opts.append(("grpc.service_config", config_json))
    if keepalive_time is not None:
        opts.append(("grpc.keepalive_time_ms", round(keepalive_time * 1000)))
    if tls is not None and tls.server_name:
        opts.append(("grpc.ssl_target_name_override", tls.server_name))
        opts.append(("grpc.default_authority", tls.server_name))
    opts.extend(extra)
    address = targets[0] if len(targets) == 1 else _static_target(targets)
    compression = grpc.Compression.Gzip if gzip else None
    if tls is not None:
        created = grpc.aio.secure_channel(address, tls.credentials(), options=opts, compression=compression)
    else:
        created = grpc.aio.insecure_channel(address, options=opts, compression=compression)
    per_loop[key] = created
    return created


async def close_channels(grace: float | None = None) -> None:
    """Close every channel `channel()` created on the running event loop (pending calls get `grace` s)."""
    loop = asyncio.get_running_loop()
    per_loop = _channels.pop(loop, {})
    await asyncio.gather(*(ch.close(grace) for ch in per_loop.values()))


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token`: `stub.GetUser(request, metadata=bearer(token))`."""
    return (("authorization", f"Bearer {token}"),)
