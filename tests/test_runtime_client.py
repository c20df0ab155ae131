"""protokit.runtime client helpers and ServerSettings, against real grpc.aio servers."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from conftest import free_port

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "generated"))

from user.v1 import user_service_pb2 as pb  # noqa: E402
from user.v1 import user_service_pb2_grpc as pb_grpc  # noqa: E402

from protokit.runtime import (  # noqa: E402
    MethodPolicy,
    RetryPolicy,
    ServerSettings,
    TlsConfig,
    bearer,
    build_server,
    channel,
    close_channels,
    service_config,
)
from protokit.runtime.client import _static_target  # noqa: E402

SERVICE = "user.v1.UserService"


class Users(pb_grpc.UserServiceServicer):
    """Counts calls; fails the first `unavailable` calls of each method with UNAVAILABLE."""

    SERVICE_NAME = SERVICE

    def __init__(self, unavailable: int = 0, delay: float = 0.0) -> None:
        self.calls: dict[str, int] = {}
        self.unavailable = unavailable
        self.delay = delay

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_UserServiceServicer_to_server(self, server)

    async def _enter(self, method: str, context: Any) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.calls[method] <= self.unavailable:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        if self.delay:
            await asyncio.sleep(self.delay)

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.GetUserResponse:
        await self._enter("GetUser", context)
        return pb.GetUserResponse(user=pb.User(id=request.id, username="found"))

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: Any) -> pb.DeleteUserResponse:
        await self._enter("DeleteUser", context)
        return pb.DeleteUserResponse()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


async def start(service: Users) -> tuple[Any, str]:
    server = build_server([service], ServerSettings(port=0, reflection=False))
    port = await server.start()
    return server, f"127.0.0.1:{port}"


GET = pb.GetUserRequest(id=str(uuid.uuid4()))
DELETE = pb.DeleteUserRequest(id=str(uuid.uuid4()))


# -- service_config --------------------------------------------------------------------------------------


def test_service_config_retries_only_idempotent_methods() -> None:
    config = service_config(
        SERVICE,
        {
            "GetUser": MethodPolicy(timeout=1.5, idempotent=True),
            "CreateUser": MethodPolicy(timeout=5),
            "DeleteUser": MethodPolicy(idempotent=True),
        },
        retry=RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=1, backoff_multiplier=3),
        round_robin=True,
    )
    json.dumps(config)  # it is plain JSON data
    get, create, delete = config["methodConfig"]
    assert get == {
        "name": [{"service": SERVICE, "method": "GetUser"}],
        "timeout": "1.5s",
        "retryPolicy": {
            "maxAttempts": 3,
            "initialBackoff": "0.05s",
            "maxBackoff": "1s",
            "backoffMultiplier": 3,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }
    assert create == {"name": [{"service": SERVICE, "method": "CreateUser"}], "timeout": "5s"}
    assert "timeout" not in delete and delete["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]

    default = service_config(SERVICE, {"*": MethodPolicy(timeout=0.25)})
    assert default == {"methodConfig": [{"name": [{"service": SERVICE}], "timeout": "0.25s"}]}
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=1)
    with pytest.raises(ValueError):
        MethodPolicy(timeout=0)


def test_retries_happen_for_idempotent_methods_only() -> None:
    async def test() -> None:
        service = Users(unavailable=2)
        server, target = await start(service)
        policies = {"GetUser": MethodPolicy(idempotent=True), "DeleteUser": MethodPolicy()}
        config = service_config(SERVICE, policies, retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.05))
        stub = pb_grpc.UserServiceStub(channel(target, service_config=config))
        assert (await stub.GetUser(GET)).user.username == "found"
        assert service.calls["GetUser"] == 3  # two UNAVAILABLE, then success
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.DeleteUser(DELETE)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert service.calls["DeleteUser"] == 1  # not idempotent: never retried
        await close_channels()
        await server.stop(0)

    run(test)


def test_an_idempotent_call_reaches_a_server_that_comes_back_within_its_retries() -> None:
    """A restart (protokit dev, a rolling deploy): the first attempt finds no server, which is back 0.3 s
    later. The retries (default policy, within ~0.7 s) must not all fail while the channel waits out
    gRPC's 1 s reconnect backoff."""

    async def test() -> None:
        port = free_port()
        service = Users()
        config = service_config(SERVICE, {"GetUser": MethodPolicy(idempotent=True)})
        stub = pb_grpc.UserServiceStub(channel(f"127.0.0.1:{port}", service_config=config))

        async def come_back() -> Any:
            await asyncio.sleep(0.3)
            server = build_server([service], ServerSettings(port=port, reflection=False))
            await server.start()
            return server

        later = asyncio.ensure_future(come_back())
        assert (await stub.GetUser(GET, timeout=10)).user.username == "found"
        await close_channels()
        await (await later).stop(0)

    run(test)


def test_service_config_timeout_is_honoured() -> None:
    async def test() -> None:
        service = Users(delay=2.0)
        server, target = await start(service)
        config = service_config(SERVICE, {"GetUser": MethodPolicy(timeout=0.2, idempotent=True)})
        stub = pb_grpc.UserServiceStub(channel(target, service_config=config))
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetUser(GET)  # no per-call timeout: the service config's applies
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 1.5
        await close_channels()
        await server.stop(0)

    run(test)


# -- channel() -----------------------------------------------------------------------------------------------


def test_two_targets_share_one_round_robin_channel() -> None:
    async def test() -> None:
        first, second = Users(), Users()
        server1, target1 = await start(first)
        server2, target2 = await start(second)
        ch = channel([target1, target2])
        stub = pb_grpc.UserServiceStub(ch)
        for _ in range(40):
            await stub.GetUser(GET, wait_for_ready=True, timeout=5)
        assert first.calls["GetUser"] + second.calls["GetUser"] == 40
        assert first.calls["GetUser"] >= 5 and second.calls["GetUser"] >= 5, (first.calls, second.calls)
        await close_channels()
        await server1.stop(0)
        await server2.stop(0)

    run(test)


def test_one_shared_channel_per_arguments_and_event_loop() -> None:
    seen: list[grpc.aio.Channel] = []

    async def test() -> None:
        ch = channel("127.0.0.1:1")
        assert channel("127.0.0.1:1") is ch
        config = service_config(SERVICE, {"GetUser": MethodPolicy(timeout=1)})
        with_config = channel("127.0.0.1:1", service_config=config)
        assert with_config is not ch
        assert channel("127.0.0.1:1", service_config=service_config(SERVICE, {"GetUser": MethodPolicy(1)})) is (
            with_config
        )
        assert channel("127.0.0.1:1", gzip=False) is not ch
        assert channel("127.0.0.1:1", tls=TlsConfig()) is not ch
        assert channel("127.0.0.1:1", options=[("grpc.primary_user_agent", "x")]) is not ch
        assert channel(["127.0.0.1:1", "127.0.0.1:2"]) is channel(("127.0.0.1:1", "127.0.0.1:2"))
        seen.append(ch)
        await close_channels()
        assert channel("127.0.0.1:1") is not ch  # closed channels are forgotten
        await close_channels()

    run(test)

    async def other_loop() -> None:
        assert channel("127.0.0.1:1") is not seen[0]  # aio channels belong to their event loop
        await close_channels()

    run(other_loop)
    with pytest.raises(RuntimeError):
        channel("127.0.0.1:1")  # no running loop


def test_static_targets() -> None:
    assert _static_target(["127.0.0.1:5001", "127.0.0.1:5002"]) == "ipv4:127.0.0.1:5001,127.0.0.1:5002"
    assert _static_target(["[::1]:5001", "[::1]:5002"]) == "ipv6:[::1]:5001,[::1]:5002"
    with pytest.raises(ValueError, match="dns:///"):
        _static_target(["users-1:5001", "users-2:5001"])
    with pytest.raises(ValueError, match="all be IPv4"):
        _static_target(["127.0.0.1:5001", "[::1]:5002"])
    with pytest.raises(ValueError, match="host:port"):
        _static_target(["127.0.0.1", "127.0.0.2"])


def test_bearer_and_tls_config() -> None:
    assert bearer("abc") == (("authorization", "Bearer abc"),)
    with pytest.raises(ValueError, match="together"):
        TlsConfig(cert_file="client.pem")


# -- ServerSettings.from_env ---------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = ServerSettings.from_env({})
    assert settings == ServerSettings()
    assert (settings.host, settings.port, settings.reflection, settings.gzip) == ("127.0.0.1", 50051, True, True)
    assert settings.metrics_port is None and settings.rate_limit is None and settings.tls_cert is None
    assert settings.tracing is False
    assert settings.grace_period == 10 and settings.max_message_bytes == 4 * 1024 * 1024
    assert settings.log_level == "INFO"


def test_settings_from_env_and_overrides() -> None:
    env = {
        "PROTOKIT_HOST": "0.0.0.0",
        "PROTOKIT_PORT": "6000",
        "PORT": "7000",
        "PROTOKIT_REFLECTION": "false",
        "PROTOKIT_METRICS_PORT": "9100",
        "PROTOKIT_GRACE_PERIOD": "2.5",
        "PROTOKIT_MAX_MESSAGE_BYTES": "1024",
        "PROTOKIT_KEEPALIVE_TIME": "30",
        "PROTOKIT_KEEPALIVE_TIMEOUT": "5",
        "PROTOKIT_GZIP": "off",
        "PROTOKIT_LOG_LEVEL": "debug",
        "PROTOKIT_RATE_LIMIT": "5.5",
        "PROTOKIT_RATE_BURST": "20",
        "PROTOKIT_TRACING": "1",
        "PROTOKIT_TLS_CERT": "server.pem",
        "PROTOKIT_TLS_KEY": "server.key",
        "PROTOKIT_TLS_CLIENT_CA": "ca.pem",
    }
    s = ServerSettings.from_env(env)
    assert (s.host, s.port, s.reflection, s.metrics_port, s.grace_period) == ("0.0.0.0", 6000, False, 9100, 2.5)
    assert (s.max_message_bytes, s.keepalive_time, s.keepalive_timeout, s.gzip) == (1024, 30, 5, False)
    assert (s.log_level, s.rate_limit, s.rate_burst, s.tracing) == ("debug", 5.5, 20, True)
    assert (s.tls_cert, s.tls_key, s.tls_client_ca) == ("server.pem", "server.key", "ca.pem")
    assert ServerSettings.from_env({"PORT": "7000"}).port == 7000  # the platform's PORT as a fallback
    assert ServerSettings.from_env({"PROTOKIT_PORT": ""}).port == 50051  # empty is unset
    overridden = ServerSettings.from_env(env, port=0, gzip=True)
    assert (overridden.port, overridden.gzip, overridden.host) == (0, True, "0.0.0.0")
    assert ServerSettings(rate_limit=2.5).effective_rate_burst == 3
    with pytest.raises(TypeError, match="no field colour"):
        ServerSettings.from_env({}, colour="blue")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PROTOKIT_PORT": "fifty"}, "PROTOKIT_PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PROTOKIT_REFLECTION": "maybe"}, "PROTOKIT_REFLECTION"),
        ({"PROTOKIT_GRACE_PERIOD": "-1"}, "PROTOKIT_GRACE_PERIOD"),
        ({"PROTOKIT_RATE_LIMIT": "nan"}, "PROTOKIT_RATE_LIMIT"),
        ({"PROTOKIT_RATE_BURST": "0"}, "PROTOKIT_RATE_BURST"),
        ({"PROTOKIT_LOG_LEVEL": "LOUD"}, "PROTOKIT_LOG_LEVEL"),
        ({"PROTOKIT_MAX_MESSAGE_BYTES": "0"}, "PROTOKIT_MAX_MESSAGE_BYTES"),
        ({"PROTOKIT_TLS_CERT": "server.pem"}, "PROTOKIT_TLS_KEY"),
        ({"PROTOKIT_TLS_CLIENT_CA": "ca.pem"}, "PROTOKIT_TLS_CLIENT_CA"),
    ],
)
def test_settings_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        ServerSettings.from_env(env)


def test_settings_validate_direct_construction() -> None:
    with pytest.raises(ValueError, match=r"ServerSettings\.port"):
        ServerSettings(port=-1)
    with pytest.raises(ValueError, match="tls_key"):
        ServerSettings(tls_cert="server.pem")
