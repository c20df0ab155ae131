"""protokit.runtime under hostile or unlucky clients: early stream ends, stalled consumers, malformed bytes,
deadlines, connection limits, shutdown and auth from settings. Real servers (in-process on 127.0.0.1:0, or
`run()` in a subprocess where a crash or an exit status is the point) and real clients; no mocks of grpc.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import prometheus_client
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "generated"))

from user.v1 import user_service_pb2 as pb  # noqa: E402
from user.v1 import user_service_pb2_grpc as pb_grpc  # noqa: E402

from protokit.runtime import ConfigError, Fanout, ServerSettings, bearer, build_server  # noqa: E402
from protokit.runtime.tokens import TokenFile, digest_line  # noqa: E402

SERVICE_SCRIPT = Path(__file__).resolve().parent / "servers" / "streaming_service.py"
USER_ID = "6b1f0c3e-9a0e-4f5a-8c1e-2b3c4d5e6f70"
BATCH_ITEM = pb.BatchCreateUsersRequest(
    request=pb.CreateUserRequest(
        username="ada",
        email="ada@example.com",
        password="correct horse battery",
        profile=pb.UserProfile(display_name="Ada"),
    )
)
SERVING = re.compile(r"serving user\.v1\.UserService on 127\.0\.0\.1:(\d+)")


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"the server exited with {self.proc.returncode}:\n{self.output()[-3000:]}"


@contextlib.contextmanager
def server_process(tmp_path: Path, **env: str) -> Iterator[ServerProcess]:
    """tests/servers/streaming_service.py under run(), at the default log level (INFO: request log on)."""
    log = tmp_path / f"server-{uuid.uuid4().hex[:8]}.log"
    full_env = {"PATH": os.environ.get("PATH", ""), "PROTOKIT_PORT": "0", **env}
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, str(SERVICE_SCRIPT)], env=full_env, stderr=sink)
    try:
        deadline = time.monotonic() + 30
        while not (match := SERVING.search(log.read_text(errors="replace"))):
            assert proc.poll() is None, f"the server exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, "no 'serving' line"
            time.sleep(0.05)
        yield ServerProcess(proc, int(match.group(1)), log)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def _get(stub: pb_grpc.UserServiceStub) -> str:
    reply = await stub.GetUser(pb.GetUserRequest(id=USER_ID), timeout=10)
    return str(reply.user.username)


async def _requests(*items: Any, then_wait: float = 0.0) -> AsyncIterator[Any]:
    for item in items:
        yield item
    if then_wait:
        await asyncio.sleep(then_wait)


CLIENT_SCRIPT = """
import sys, time
sys.path.insert(0, {generated!r})
import grpc
from user.v1 import user_service_pb2 as pb, user_service_pb2_grpc as pb_grpc
stub = pb_grpc.UserServiceStub(grpc.insecure_channel("127.0.0.1:{port}"))
def forever(first):
    yield first
    while True:
        time.sleep(1)
kind = sys.argv[1]
if kind == "list":
    calls = stub.ListUsers(pb.ListUsersRequest())
elif kind == "watch":
    calls = stub.WatchUsers(forever(pb.WatchUsersRequest()))
else:
    calls = iter([stub.BatchCreateUsers.future(forever(pb.BatchCreateUsersRequest.FromString({item!r})))])
for _ in calls:
    print("got one", flush=True)
    break
time.sleep(60)
"""


def test_no_crash_on_any_early_stream_end(tmp_path: Path) -> None:
    """Cancels, killed client processes and oversized messages on every streaming kind, request log on:
    the server keeps serving and logs each call once. (Before: exit -11 from context.peer() on a released
    call while the request log wrote the line of a stream that ended early.)"""
    with server_process(tmp_path, POST_EVENTS="200") as server:

        async def clients() -> None:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
                stub = pb_grpc.UserServiceStub(ch)
                for _ in range(5):
                    # server streaming: read one message of a stream that never ends, then cancel
                    listing = stub.ListUsers(pb.ListUsersRequest())
                    await listing.read()
                    listing.cancel()
                    # bidi: one response, then cancel while the server is sending events
                    watching = stub.WatchUsers(_requests(pb.WatchUsersRequest(), then_wait=30))
                    await watching.read()
                    await watching.read()
                    watching.cancel()
                    # client streaming: cancel midway
                    batch = stub.BatchCreateUsers(_requests(BATCH_ITEM, then_wait=30))
                    await asyncio.sleep(0.05)
                    batch.cancel()
                    # a response larger than the maximum message size
                    huge = stub.ListUsers(pb.ListUsersRequest(page_token="huge"))
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await huge.read()
                    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    # requests larger than the server takes, on a client stream and a bidi stream
                    huge_item = pb.BatchCreateUsersRequest(request=pb.CreateUserRequest(username="x" * (5 << 20)))
                    err = await rpc_error(stub.BatchCreateUsers(_requests(BATCH_ITEM, huge_item, then_wait=30)))
                    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    huge_filter = pb.WatchUsersRequest(user_ids=["x" * (5 << 20)])
                    err = await rpc_error(_drain(stub.WatchUsers(_requests(huge_filter, then_wait=30))))
                    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    await asyncio.sleep(0.1)
                    server.assert_alive()
                assert await _get(stub) == "served"

        asyncio.run(clients())
        # client processes killed while they hold a stream
        script = CLIENT_SCRIPT.format(
            generated=str(REPO / "generated"), port=server.port, item=BATCH_ITEM.SerializeToString()
        )
        for kind in ("list", "watch", "batch"):
            client = subprocess.Popen([sys.executable, "-c", script, kind], stdout=subprocess.PIPE, text=True)
            assert client.stdout is not None
            assert client.stdout.readline() == "got one\n"
            time.sleep(0.3)
            client.kill()
            client.wait()
        time.sleep(1.0)
        server.assert_alive()
        assert asyncio.run(_get_once(server.port)) == "served"
        out = server.output()
        assert "Traceback" not in out, out
        assert len(re.findall(r"rpc /user\.v1\.UserService/ListUsers .*code=CANCELLED", out)) >= 5
        assert len(re.findall(r"rpc /user\.v1\.UserService/WatchUsers .*code=CANCELLED", out)) >= 5
        assert len(re.findall(r"rpc /user\.v1\.UserService/BatchCreateUsers .*code=CANCELLED", out)) >= 5
        assert len(re.findall(r"rpc /user\.v1\.UserService/ListUsers .*code=RESOURCE_EXHAUSTED", out)) == 5


async def _get_once(port: int) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        return await _get(pb_grpc.UserServiceStub(ch))


# -- in-process servers -------------------------------------------------------------------------------------

sys.path.insert(0, str(SERVICE_SCRIPT.parent))
from streaming_service import BIG, Streaming  # noqa: E402


class Service(Streaming):
    """tests/servers/streaming_service.py's service, with knobs for in-process tests."""

    def __init__(self, max_pending: int | None = None) -> None:
        super().__init__()
        self.events = Fanout(max_pending)
        self.delay = 0.0
        self.blocking_delay = 0.0
        self.active = 0
        self.most_active = 0
        self.profiles: list[pb.UserProfile] = []

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.GetUserResponse:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            if self.blocking_delay:
                time.sleep(self.blocking_delay)  # the event loop too: grpc cannot cancel the call
            await asyncio.sleep(self.delay)
            return pb.GetUserResponse(user=pb.User(id=request.id, username="served"))
        finally:
            self.active -= 1

    async def CreateUser(self, request: pb.CreateUserRequest, context: Any) -> pb.CreateUserResponse:
        self.profiles.append(request.profile)
        return await super().CreateUser(request, context)


@dataclass
class Served:
    server: Any
    service: Service
    channel: grpc.aio.Channel
    stub: pb_grpc.UserServiceStub
    registry: prometheus_client.CollectorRegistry

    def handled(self, method: str, code: str) -> float:
        """grpc_server_handled_total of `method` with `code`, whatever its grpc_type."""
        return sum(
            sample.value
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name == "grpc_server_handled_total"
            and sample.labels["grpc_method"] == method
            and sample.labels["grpc_code"] == code
        )


@contextlib.asynccontextmanager
async def serving(service: Service | None = None, **settings: Any) -> AsyncIterator[Served]:
    service = Service() if service is None else service
    registry = prometheus_client.CollectorRegistry()
    server = build_server([service], ServerSettings(port=0, **settings), registry=registry)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(server, service, channel, pb_grpc.UserServiceStub(channel), registry)
    finally:
        await channel.close()
        await server.stop(0)


async def rpc_error(awaitable: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value


# -- bounded memory per stream ----------------------------------------------------------------------------


def test_a_stalled_watcher_ends_with_resource_exhausted_and_the_others_get_every_event() -> None:
    """A client that stops reading costs at most max_pending queued events (plus what HTTP/2 windows hold),
    then its stream ends; a reading watcher sees every event."""
    events = 300

    async def test() -> None:
        async with serving(Service(max_pending=20), gzip=False) as s:  # gzip: 64 KiB of "x" is a few bytes
            stalled = s.stub.WatchUsers(_requests(pb.WatchUsersRequest(), then_wait=60))
            reading = s.stub.WatchUsers(_requests(pb.WatchUsersRequest(), then_wait=60))
            await stalled.read()
            await reading.read()  # both subscribed
            assert len(s.service.events) == 2
            received = 0
            user = pb.User(username=BIG)
            for _ in range(events):
                s.service.events.publish(pb.UserEvent(type=pb.UserEvent.TYPE_UPDATED, user=user))
                await reading.read()
                received += 1
                await asyncio.sleep(0)
            assert received == events
            assert len(s.service.events) == 1  # the stalled one was dropped; its backlog with it
            # What the stalled client finds once it reads again: what fit in the windows, then the status.
            err = await rpc_error(_drain(stalled))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "fell 20 events behind" in (err.details() or "")
            assert s.handled("WatchUsers", "RESOURCE_EXHAUSTED") == 1
            reading.cancel()

    asyncio.run(test())


async def _drain(call: Any) -> int:
    """Read a call to its end with read() (grpc.aio forbids mixing it with iteration on one call)."""
    count = 0
    while await call.read() is not grpc.aio.EOF:
        count += 1
    return count


# -- malformed and unknown input ----------------------------------------------------------------------------

GARBAGE = b"\xff\xff\xff\xff"
TRUNCATED = pb.GetUserRequest(id=USER_ID).SerializeToString()[:-5]
NOT_UTF8 = b"\x02\xff\xfe"  # a length-delimited value of two bytes that are not UTF-8
# A proto3 string field of each request holding NOT_UTF8: GetUserRequest.id, ListUsersRequest.page_token,
# BatchCreateUsersRequest.request.username, WatchUsersRequest.user_ids.
BAD_UTF8 = {
    "GetUser": b"\x0a" + NOT_UTF8,
    "ListUsers": b"\x12" + NOT_UTF8,
    "BatchCreateUsers": b"\x0a\x04\x0a" + NOT_UTF8,
    "WatchUsers": b"\x0a" + NOT_UTF8,
}


def test_malformed_requests_are_invalid_argument_logged_and_counted_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)

    async def test() -> None:
        async with serving() as s:
            get = s.channel.unary_unary("/user.v1.UserService/GetUser")
            listing = s.channel.unary_stream("/user.v1.UserService/ListUsers")
            batch = s.channel.stream_unary("/user.v1.UserService/BatchCreateUsers")
            watch = s.channel.stream_stream("/user.v1.UserService/WatchUsers")
            for bad in (GARBAGE, TRUNCATED, None):
                calls = (
                    get(bad or BAD_UTF8["GetUser"]),
                    _drain(listing(bad or BAD_UTF8["ListUsers"])),
                    batch(_requests(bad or BAD_UTF8["BatchCreateUsers"])),
                    _drain(watch(_requests(bad or BAD_UTF8["WatchUsers"]))),
                )
                for call in calls:
                    err = await asyncio.wait_for(rpc_error(call), 10)
                    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
                    assert err.details() == "malformed request message"
            # A stream whose second message is malformed: the first one was read.
            good = BATCH_ITEM.SerializeToString()
            err = await rpc_error(batch(_requests(good, GARBAGE)))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            for method in ("GetUser", "ListUsers", "BatchCreateUsers", "WatchUsers"):
                assert s.handled(method, "INVALID_ARGUMENT") == (4 if method == "BatchCreateUsers" else 3)
            assert await _get(s.stub) == "served"

    asyncio.run(test())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rpc ")]
    assert sum("code=INVALID_ARGUMENT" in line for line in lines) == 13
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "no tracebacks, no errors"


def _with_unknown_field(profile: pb.UserProfile, size: int) -> pb.UserProfile:
    profile.MergeFromString(b"\xfa\x3f" + _varint(size) + b"u" * size)  # field 1023, length-delimited
    return profile


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_unknown_fields_are_dropped_before_validation_and_the_handler_unless_kept() -> None:
    request = pb.CreateUserRequest(username="ada", email="ada@example.com", password="correct horse battery")
    _with_unknown_field(request.profile, 1 << 20)
    assert request.ByteSize() > 1 << 20

    async def test() -> None:
        async with serving() as s:
            reply = await s.stub.CreateUser(request)
            assert s.service.profiles[0].ByteSize() == 0 and reply.user.profile.ByteSize() == 0
        async with serving(keep_unknown_fields=True) as s:
            reply = await s.stub.CreateUser(request)
            assert s.service.profiles[0].ByteSize() > 1 << 20 and reply.user.profile.ByteSize() > 1 << 20

    asyncio.run(test())


# -- deadlines ----------------------------------------------------------------------------------------------


def test_the_server_maximum_deadline_ends_calls_without_or_with_longer_client_deadlines() -> None:
    async def test() -> None:
        async with serving(max_deadline=0.3, max_stream_deadline=0.5) as s:
            s.service.delay = 30
            for timeout in (None, 60.0):
                err = await rpc_error(s.stub.GetUser(pb.GetUserRequest(id=USER_ID), timeout=timeout))
                assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert "maximum deadline of 0.3s" in (err.details() or "")
            assert s.handled("GetUser", "DEADLINE_EXCEEDED") == 2
            # A client deadline below the maximum is the client's: it fails first, counted the same way.
            err = await rpc_error(s.stub.GetUser(pb.GetUserRequest(id=USER_ID), timeout=0.1))
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # Response streams: a reading client, and one that stopped reading (the handler is stuck sending).
            err = await rpc_error(_drain(s.stub.ListUsers(pb.ListUsersRequest())))
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            stalled = s.stub.ListUsers(pb.ListUsersRequest())
            await stalled.read()
            await asyncio.sleep(1.0)
            assert s.handled("ListUsers", "DEADLINE_EXCEEDED") == 2
            err = await rpc_error(_drain(stalled))
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            s.service.delay = 0
            assert await _get(s.stub) == "served"
            await asyncio.sleep(0.2)
            assert s.handled("GetUser", "DEADLINE_EXCEEDED") == 3

    asyncio.run(test())


def test_a_response_after_the_deadline_is_counted_as_deadline_exceeded_not_ok() -> None:
    async def test() -> None:
        async with serving() as s:
            s.service.blocking_delay = 0.4
            err = await rpc_error(s.stub.GetUser(pb.GetUserRequest(id=USER_ID), timeout=0.2))
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            await asyncio.sleep(0.3)
            assert s.handled("GetUser", "DEADLINE_EXCEEDED") == 1
            assert s.handled("GetUser", "OK") == 0

    asyncio.run(test())


# -- connections --------------------------------------------------------------------------------------------


def test_max_concurrent_streams_per_connection() -> None:
    """At most max_concurrent_streams calls of one connection run at once; the server refuses streams beyond
    it (REFUSED_STREAM, never started: the client sees UNAVAILABLE and may retry; grpc-go and Java clients
    queue instead). Before: 5,000 concurrent streams on one connection were accepted."""

    async def test() -> None:
        async with serving(max_concurrent_streams=5) as s:
            assert await _get(s.stub) == "served"
            s.service.delay = 0.3
            calls = [s.stub.GetUser(pb.GetUserRequest(id=USER_ID)) for _ in range(12)]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            served = [o for o in outcomes if isinstance(o, pb.GetUserResponse)]
            refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
            assert len(served) + len(refused) == 12 and len(served) >= 5
            assert {err.code() for err in refused} <= {grpc.StatusCode.UNAVAILABLE}
            assert s.service.most_active == 5
            assert s.handled("GetUser", "OK") == 1 + len(served)  # refused streams never reached a handler

    asyncio.run(test())


def test_max_connection_age_ends_long_streams_after_the_grace() -> None:
    async def test() -> None:
        async with serving(max_connection_age=0.5, max_connection_age_grace=0.5) as s:
            watching = s.stub.WatchUsers(_requests(pb.WatchUsersRequest(), then_wait=60))
            await watching.read()
            err = await asyncio.wait_for(rpc_error(_drain(watching)), 10)
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            assert await _get(s.stub) == "served"  # the client simply reconnects

    asyncio.run(test())


def test_max_connection_idle_closes_connections_without_calls() -> None:
    async def test() -> None:
        async with serving(max_connection_idle=0.3) as s:
            assert await _get(s.stub) == "served"
            await asyncio.sleep(1.5)
            assert s.channel.get_state() == grpc.ChannelConnectivity.IDLE  # the server said GOAWAY
            assert await _get(s.stub) == "served"

    asyncio.run(test())


def test_health_list_answers() -> None:
    async def test() -> None:
        async with serving() as s:
            reply = await health_pb2_grpc.HealthStub(s.channel).List(health_pb2.HealthListRequest())
            assert dict(reply.statuses) == {
                "": health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING),
                "user.v1.UserService": health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING),
            }

    asyncio.run(test())


# -- auth from settings -------------------------------------------------------------------------------------


def test_bearer_auth_from_a_tokens_file(tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "protokit.runtime.tokens", "billing"], capture_output=True, text=True, check=True
    )
    token, line = made.stdout.splitlines()
    assert line == digest_line("billing", token) and token not in line
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# callers\n{line}\n{digest_line('reports', 'reports-token')}  # nightly job\n")

    async def test() -> None:
        async with serving(auth_tokens_file=str(tokens)) as s:
            assert await s.stub.GetUser(pb.GetUserRequest(id=USER_ID), metadata=bearer(token))
            assert await s.stub.GetUser(pb.GetUserRequest(id=USER_ID), metadata=bearer("reports-token"))
            err = await rpc_error(s.stub.GetUser(pb.GetUserRequest(id=USER_ID), metadata=bearer(token + "x")))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            # Reflection needs a token too; health does not.
            health = health_pb2_grpc.HealthStub(s.channel)
            assert (await health.Check(health_pb2.HealthCheckRequest())).status == 1

    asyncio.run(test())
    assert asyncio.run(TokenFile.load(tokens)(token)).subject == "billing"  # type: ignore[union-attr]
    for content, problem in [
        ("billing sha256:abc\n", f"{tokens}:1: expected 'SUBJECT sha256:<64 hex digits>'"),
        (f"{line}\n{line}\n", f"{tokens}:2: subject 'billing' is already on line 1"),
        ("# nobody\n", f"{tokens}: no tokens"),
    ]:
        tokens.write_text(content)
        with pytest.raises(ConfigError, match=re.escape(problem)):
            build_server([Service()], ServerSettings(port=0, auth_tokens_file=str(tokens)))
    tokens.write_text(line)
    with pytest.raises(ConfigError, match="both a verifier and a tokens file"):
        build_server([Service()], ServerSettings(port=0, auth_tokens_file=str(tokens)), verifier=TokenFile([]))
    with pytest.raises(ConfigError, match="cannot read the tokens file"):
        build_server([Service()], ServerSettings(port=0, auth_tokens_file=str(tmp_path / "missing")))


@pytest.mark.parametrize("rate_limit", [5.0, None])
def test_token_guessing_is_throttled(tmp_path: Path, rate_limit: float | None) -> None:
    """Failed logins take from the client address's bucket, checked before the token is: guesses run at
    the rate limit (or 1/s after a burst of 10 without one), not at the server's full speed."""
    tokens = tmp_path / "tokens"
    tokens.write_text(digest_line("billing", "the-real-token"))

    async def test() -> None:
        async with serving(auth_tokens_file=str(tokens), rate_limit=rate_limit) as s:
            started = time.monotonic()
            codes: Counter[str] = Counter()
            for n in range(400):
                call = s.stub.GetUser(pb.GetUserRequest(id=USER_ID), metadata=bearer(f"guess-{n}"))
                codes[(await rpc_error(call)).code().name] += 1
            elapsed = time.monotonic() - started
            burst, rate = (5, 5.0) if rate_limit else (10, 1.0)
            assert codes["UNAUTHENTICATED"] <= burst + rate * elapsed + 1, (codes, elapsed)
            assert codes["RESOURCE_EXHAUSTED"] >= 400 - burst - rate * elapsed - 1
            # Once the bucket has refilled, the real token works from the same address.
            await asyncio.sleep(1.0 / rate + 0.1)
            assert await s.stub.GetUser(pb.GetUserRequest(id=USER_ID), metadata=bearer("the-real-token"))

    asyncio.run(test())


# -- shutdown and logs (run() in a subprocess) ----------------------------------------------------------------


def test_sigterm_lets_every_in_flight_call_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    """32 unary calls in flight (sent, some not yet taken in by the server) when SIGTERM arrives: all OK;
    a call made during the drain gets UNAVAILABLE. (Before: most ended CANCELLED, as with bare grpc.aio.)"""
    with server_process(tmp_path, GET_DELAY="1.0", PROTOKIT_GRACE_PERIOD="5") as server:

        async def clients() -> tuple[Counter[str], str]:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
                stub = pb_grpc.UserServiceStub(ch)
                await ch.channel_ready()

                async def one() -> str:
                    try:
                        return await _get(stub)
                    except grpc.aio.AioRpcError as err:
                        return err.code().name

                calls = [asyncio.create_task(one()) for _ in range(32)]
                await asyncio.sleep(0.01)
                server.proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                late = await one()
                return Counter(await asyncio.gather(*calls)), late

        codes, late = asyncio.run(clients())
        assert codes == Counter({"served": 32}), codes
        assert late == "UNAVAILABLE"
        assert server.proc.wait(timeout=15) == 0
        out = server.output()
        assert "Traceback" not in out
        assert len(re.findall(r"GetUser .*code=OK", out)) == 32
        assert len(re.findall(r"GetUser .*code=UNAVAILABLE", out)) == 1


def test_streams_left_at_the_end_of_the_grace_period_end_unavailable() -> None:
    """A watch still open when the grace period is over ends with UNAVAILABLE (reconnect), not CANCELLED."""

    async def test() -> None:
        async with serving() as s:
            watching = s.stub.WatchUsers(_requests(pb.WatchUsersRequest(), then_wait=60))
            await watching.read()
            stopping = asyncio.ensure_future(s.server.stop(0.3))
            err = await asyncio.wait_for(rpc_error(_drain(watching)), 10)
            assert err.code() == grpc.StatusCode.UNAVAILABLE and err.details() == "the server is shutting down"
            await stopping
            assert s.handled("WatchUsers", "UNAVAILABLE") == 1

    asyncio.run(test())


def test_json_log_format(tmp_path: Path) -> None:
    with server_process(tmp_path, PROTOKIT_LOG_FORMAT="json") as server:
        assert asyncio.run(_get_once(server.port)) == "served"
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0
    entries = [json.loads(line) for line in server.output().splitlines()]
    [rpc] = [e for e in entries if e.get("method") == "/user.v1.UserService/GetUser"]
    assert rpc["code"] == "OK" and rpc["level"] == "INFO" and rpc["logger"] == "protokit.runtime"
    assert rpc["peer"].startswith("ipv4:127.0.0.1:") and re.fullmatch(r"[0-9a-f]{32}", rpc["request_id"])
    assert isinstance(rpc["duration_ms"], float) and rpc["message"].startswith("rpc /user.v1.UserService/GetUser ")
    assert any(e["message"].startswith("serving user.v1.UserService") for e in entries)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]) for e in entries)


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for env, message in [
        ({"PROTOKIT_MAX_DEADLINE": "-1"}, "error: PROTOKIT_MAX_DEADLINE must be >= 0 (0 turns it off), got -1.0"),
        ({"PROTOKIT_LOG_FORMAT": "xml"}, "error: PROTOKIT_LOG_FORMAT must be one of text, json, got 'xml'"),
        ({"PROTOKIT_AUTH_TOKENS_FILE": str(tmp_path / "none")}, "error: cannot read the tokens file"),
    ]:
        proc = subprocess.run(
            [sys.executable, str(SERVICE_SCRIPT)],
            env={"PATH": os.environ.get("PATH", ""), "PROTOKIT_PORT": "0", **env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr


def test_the_readme_table_lists_every_setting_with_its_variable_and_default() -> None:
    readme = (REPO / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    defaults = ServerSettings()
    for field in dataclasses.fields(ServerSettings):
        [row] = [r for r in rows if f"`{field.name}`" in r.split("|")[1]]
        assert f"PROTOKIT_{field.name.upper()}" in row, row
        value = getattr(defaults, field.name)
        if value is None:
            assert "off" in row.split("|")[3], row
        elif field.name not in ("rate_burst",):
            shown = (
                str(value).lower()
                if isinstance(value, bool)
                else f"{value:g}"
                if isinstance(value, float)
                else str(value)
            )
            assert f"`{shown}`" in row.split("|")[3], (field.name, shown, row)


def test_fanout_without_a_call() -> None:
    """The library part of Fanout: filters, the bound, get() from one task at a time, close()."""
    from protokit.runtime import SlowConsumer

    async def test() -> None:
        fanout: Fanout[int] = Fanout(max_pending=3)
        evens = fanout.subscribe(wants=lambda n: n % 2 == 0)
        everything = fanout.subscribe()
        for n in range(4):
            fanout.publish(n)
        assert [await evens.get(), await evens.get()] == [0, 2]
        assert len(fanout) == 1 and everything.pending == 0  # 4 > 3: dropped, its backlog freed
        with pytest.raises(SlowConsumer, match="fell 3 events behind"):
            await everything.get()
        waiting = asyncio.ensure_future(evens.get())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already being awaited"):
            await evens.get()
        fanout.publish(6)
        assert await waiting == 6
        evens.close()
        assert [n async for n in evens] == [] and len(fanout) == 0

    asyncio.run(test())
