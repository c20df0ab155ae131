"""Soak test: the example UserService as a real server process under mixed, concurrent load.

The server runs exactly as `make serve` runs it (`python -m userservice`, PYTHONPATH=generated:examples/userservice,
PORT, default settings, the request log on), with its store in a fresh sqlite file and stderr in a file (plus
PYTHONFAULTHANDLER=1, so that a crash leaves the Python stacks there). For
SOAK_SECONDS (default 45) asyncio/grpc.aio clients mix, concurrently:

- unary load: CreateUser (unique names), GetUser, UpdateUser, DeleteUser, and invalid requests;
- ListUsers streams read fully (and the next page fetched), cancelled after the first message, or invalid;
- BatchCreateUsers with small batches, batches cancelled midway (never half-closed) and rejected batches;
- WatchUsers: reading watchers, plus a slow watcher that never reads (own connection, no BDP window growth);
- client processes that open ListUsers / WatchUsers / BatchCreateUsers streams and are SIGKILLed mid-stream;
- malformed wire data (garbage, truncated messages, invalid UTF-8) on unary and streaming methods.

Asserted at the end (every failed assertion is listed, with the figures): the server never exited and still
answers; no acknowledged write is lost or stale, and nothing of a cancelled/killed/rejected batch was stored;
every status code is in the expected set for its operation (UNKNOWN or INTERNAL never is); ListUsers streams one
page, with next_page_token on the last message only; the reading watchers saw every create while the slow
watcher existed; the slow watcher ends with RESOURCE_EXHAUSTED once it was sent far more than any bounded
backlog holds; RSS growth stays under MAX_RSS_GROWTH_MB; the server's stderr holds no traceback.

Figures (requests by operation, codes, RSS, durations) are printed and written as JSON to $SOAK_REPORT if set.
Run with `make soak`; SOAK_SEED repeats a run's random choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import string
import subprocess
import sys
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from conftest import REPO, free_port, wait_for_reflection

sys.path[:0] = [str(REPO / "generated")]

from user.v1 import user_service_pb2 as pb  # noqa: E402
from user.v1 import user_service_pb2_grpc as pb_grpc  # noqa: E402

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "45"))
WARMUP_SECONDS = 3.0
# Each call's deadline: generous, the machine has 2 cores and the server hashes every password with scrypt
# (~45 ms of CPU per created user). Nothing here asserts latency.
CALL_TIMEOUT = 10.0
# Malformed calls should fail at once; a stream the server ignores would otherwise hold the worker this long.
MALFORMED_TIMEOUT = 5.0
# Server RSS growth allowed from the start of the soak (after warm-up) to its end. The steady state needs little:
# sqlite's page cache (~2 MB), grpc's per-connection buffers, a bounded backlog per watcher (1000 events of < 1 KB),
# scrypt's 16 MiB work buffer per hashing thread (malloc's per-thread arenas keep them: most of the ~140 MB the
# server has at the start; ~20 MB more as other threads get to hash). 150 MB is far above that, and it catches a
# leak of >= ~25 KB per request (a 45 s soak makes ~6-7k requests): smaller leaks need a longer SOAK_SECONDS.
MAX_RSS_GROWTH_MB = 150.0
# The slow watcher's backlog is bounded (PROTOKIT_STREAM_BUFFER, 1000 events) and its transport holds at most
# its 64 KB HTTP/2 window (BDP probing off): < 300 of this test's events (~300 bytes each). So it overflows by
# ~1300 events; once this many were published while it existed, it must have ended with RESOURCE_EXHAUSTED.
# Below it, being cancelled at the end is fine (a slow machine may publish fewer events in the soak).
SLOW_WATCHER_MUST_OVERFLOW_AFTER = 2000
# The whole test (server start to exit) must stay under this (the soak itself is SOAK_SECONDS of it).
TIME_BOUND_SECONDS = SOAK_SECONDS + 40.0

UNARY_WORKERS = 3
# The unary mix, by weight: mostly updates (cheap for the server, and each one an event for every watcher),
# few creates (each one hashes a password with scrypt, ~45 ms of CPU). "gone": GetUser/DeleteUser of a user
# this test deleted; "never": GetUser of an id never created; "invalid": a request validation rejects.
UNARY_MIX = {"create": 6, "get": 24, "update": 45, "delete": 5, "gone": 4, "never": 3, "invalid": 13}
READING_WATCHERS = 3
VERIFY_CONCURRENCY = 8
PASSWORD = "correct horse battery"
SERVICE = "/user.v1.UserService/"

C = grpc.StatusCode
# The status codes each operation may end with. Anything else (UNKNOWN and INTERNAL are never expected) fails.
EXPECTED: dict[str, frozenset[grpc.StatusCode]] = {
    "CreateUser": frozenset({C.OK}),
    "CreateUser invalid": frozenset({C.INVALID_ARGUMENT}),
    "GetUser": frozenset({C.OK}),
    "GetUser deleted": frozenset({C.NOT_FOUND}),
    "GetUser never created": frozenset({C.NOT_FOUND}),
    "GetUser invalid": frozenset({C.INVALID_ARGUMENT}),
    "UpdateUser": frozenset({C.OK}),
    "UpdateUser invalid": frozenset({C.INVALID_ARGUMENT}),
    "DeleteUser": frozenset({C.OK}),
    "DeleteUser deleted": frozenset({C.NOT_FOUND}),
    "DeleteUser invalid": frozenset({C.INVALID_ARGUMENT}),
    "ListUsers read fully": frozenset({C.OK}),
    "ListUsers next page": frozenset({C.OK}),
    # OK: the stream had already ended when the cancel came (a one-message page).
    "ListUsers cancelled after first message": frozenset({C.CANCELLED, C.OK}),
    "ListUsers invalid page_size": frozenset({C.INVALID_ARGUMENT}),
    "ListUsers foreign page_token": frozenset({C.INVALID_ARGUMENT}),
    "BatchCreateUsers": frozenset({C.OK}),
    "BatchCreateUsers cancelled midway": frozenset({C.CANCELLED}),
    "BatchCreateUsers invalid item": frozenset({C.INVALID_ARGUMENT}),
    "WatchUsers reader": frozenset({C.CANCELLED}),
    "WatchUsers slow watcher": frozenset({C.RESOURCE_EXHAUSTED, C.CANCELLED}),
    "malformed GetUser: garbage": frozenset({C.INVALID_ARGUMENT}),
    "malformed GetUser: truncated": frozenset({C.INVALID_ARGUMENT}),
    "malformed GetUser: invalid UTF-8": frozenset({C.INVALID_ARGUMENT}),
    "malformed ListUsers: garbage": frozenset({C.INVALID_ARGUMENT}),
    "malformed ListUsers: truncated": frozenset({C.INVALID_ARGUMENT}),
    "malformed ListUsers: invalid UTF-8": frozenset({C.INVALID_ARGUMENT}),
    "malformed BatchCreateUsers: garbage": frozenset({C.INVALID_ARGUMENT}),
    "malformed BatchCreateUsers: truncated": frozenset({C.INVALID_ARGUMENT}),
    "malformed BatchCreateUsers: invalid UTF-8": frozenset({C.INVALID_ARGUMENT}),
    "malformed WatchUsers: garbage": frozenset({C.INVALID_ARGUMENT}),
    "malformed WatchUsers: invalid UTF-8": frozenset({C.INVALID_ARGUMENT}),
    "marker CreateUser": frozenset({C.OK}),
    "final probe": frozenset({C.OK}),
    "final GetUser": frozenset({C.OK}),
    "final GetUser deleted": frozenset({C.NOT_FOUND}),
    "final ListUsers page": frozenset({C.OK}),
    "final liveness": frozenset({C.OK}),
}

# A client process that opens a stream, says "ready" mid-stream, and waits to be SIGKILLed.
# argv: mode (ListUsers | WatchUsers | BatchCreateUsers), port, username prefix (for BatchCreateUsers).
KILLED_CLIENT = """
import sys, time
import grpc
from user.v1 import user_service_pb2 as pb, user_service_pb2_grpc as pb_grpc

mode, port, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
stub = pb_grpc.UserServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

def ready():
    print("ready", flush=True)

def hold():
    while True:
        time.sleep(60)

if mode == "ListUsers":
    stream = stub.ListUsers(pb.ListUsersRequest(page_size=1000))
    next(stream)
    ready()
    hold()
elif mode == "WatchUsers":
    def requests():
        yield pb.WatchUsersRequest()
        hold()
    stream = stub.WatchUsers(requests())
    next(stream)
    ready()
    hold()
elif mode == "BatchCreateUsers":
    def requests():
        for i in range(3):
            name = f"{prefix}_{i}"
            create = pb.CreateUserRequest(
                username=name, email=f"{name}@example.com", password="correct horse battery",
                profile=pb.UserProfile(display_name=name),
            )
            yield pb.BatchCreateUsersRequest(request=create)
        ready()  # grpc asks for a 4th message once the 3rd was sent; the stream is never half-closed
        hold()
    stub.BatchCreateUsers(requests())
else:
    sys.exit(f"unknown mode {mode}")
"""
KILL_MODES = ("ListUsers", "WatchUsers", "BatchCreateUsers")


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"{returncode} ({signal.Signals(-returncode).name})"
    return str(returncode)


def _rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc/<pid>/stat (utime and stime, in clock ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _create_request(name: str, bio: str = "") -> pb.CreateUserRequest:
    return pb.CreateUserRequest(
        username=name,
        email=f"{name}@example.com",
        password=PASSWORD,
        profile=pb.UserProfile(display_name=name.title(), bio=bio),
    )


@dataclass
class Expected:
    """What GetUser must return for a user whose writes were acknowledged."""

    username: str
    email: str
    bio: str

    @classmethod
    def of(cls, user: pb.User) -> Expected:
        return cls(user.username, user.email, user.profile.bio)

    def differs(self, user: pb.User) -> str | None:
        got = Expected.of(user)
        return None if got == self else f"expected {self}, got {got}"


@dataclass
class Reader:
    """A WatchUsers stream that reads everything."""

    name: str
    events: Counter[str] = field(default_factory=Counter)
    created: set[str] = field(default_factory=set)
    while_slow_open: int = 0
    call: Any = None
    code: str | None = None


class Soak:
    """The clients, their bookkeeping and the checks, against one server process."""

    def __init__(self, port: int, server: subprocess.Popen[bytes], seed: int) -> None:
        self.port = port
        self.server = server
        self.seed = seed
        self.rng = random.Random(seed)
        self.names = itertools.count(1)
        self.loop_start = 0.0
        # Status codes
        self.calls: Counter[str] = Counter()
        self.codes: dict[str, Counter[str]] = defaultdict(Counter)
        self.unexpected: Counter[str] = Counter()
        self.unexpected_examples: dict[str, str] = {}
        # Findings that are not a status code (stale reads, stream shapes, harness errors), by kind.
        self.problems: Counter[str] = Counter()
        self.problem_examples: dict[str, list[str]] = defaultdict(list)
        # Writes
        self.expected: dict[str, Expected] = {}  # acknowledged, not deleted
        self.deleted: set[str] = set()  # deleted by this test (acknowledged)
        self.uncertain: set[str] = set()  # a write to it failed unexpectedly: its state is unknown
        self.must_not_exist: set[str] = set()  # usernames of cancelled / killed / rejected batches
        self.soak_created: set[str] = set()  # ids acknowledged while the reading watchers were subscribed
        self.phase = "start"
        # Server
        self.server_exit: int | None = None
        self.server_exit_at: float | None = None
        self.abort = asyncio.Event()
        self.rss: dict[str, float | None] = {"start": None, "end": None, "max": None}
        # Streams
        self.readers: list[Reader] = []
        self.slow_call: Any = None
        self.slow_open = False
        self.slow: dict[str, Any] = {}
        self.closing = asyncio.Event()
        self.kills: Counter[str] = Counter()
        self.kill_procs: set[asyncio.subprocess.Process] = set()
        self.durations: dict[str, float] = {}
        self.cpu: dict[str, float | None] = {"server": None, "test_process": None}
        self.writes: dict[str, int] = {}

    # -- bookkeeping --------------------------------------------------------------------------------------

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.loop_start

    def record(self, op: str, code: grpc.StatusCode, details: str = "") -> None:
        self.calls[op] += 1
        self.codes[op][code.name] += 1
        if code in EXPECTED[op]:
            return
        if self.server_exited():  # after the server died every call fails: that is reported once
            return
        key = f"{op} -> {code.name}"
        self.unexpected[key] += 1
        self.unexpected_examples.setdefault(key, f"at {self.now():.1f}s ({self.phase}): {details[:300]!r}")

    def problem(self, kind: str, example: str) -> None:
        self.problems[kind] += 1
        if len(self.problem_examples[kind]) < 3:
            self.problem_examples[kind].append(f"at {self.now():.1f}s ({self.phase}): {example[:600]}")

    async def call(self, op: str, coro: Awaitable[Any]) -> tuple[grpc.StatusCode, Any]:
        """Await one unary (or client-streaming) call and record its status code."""
        try:
            reply = await coro
        except grpc.aio.AioRpcError as exc:
            self.record(op, exc.code(), exc.details() or "")
            return exc.code(), None
        self.record(op, C.OK)
        return C.OK, reply

    def new_name(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def bio(self, rng: random.Random) -> str:
        return "".join(rng.choices(string.ascii_letters + string.digits + " ", k=rng.randrange(0, 300)))

    def stopping(self, until: float) -> bool:
        return self.abort.is_set() or self.now() >= until

    async def guarded(self, name: str, work: Awaitable[None]) -> None:
        """Run a worker; an exception out of it is a harness error (reported, not raised)."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.problem(f"harness: worker raised ({name})", "".join(traceback.format_exception(exc))[-1500:])

    # -- the server ---------------------------------------------------------------------------------------

    def server_exited(self) -> bool:
        """Whether the server process has exited (noted, and the load stopped, the first time)."""
        if self.server_exit is None:
            returncode = self.server.poll()
            if returncode is None:
                return False
            self.server_exit, self.server_exit_at = returncode, self.now()
            self.abort.set()
        return True

    async def monitor(self) -> None:
        """Every 0.25 s: is the server alive (poll), its RSS, and has the slow watcher ended."""
        while True:
            self.server_exited()
            rss = _rss_mb(self.server.pid)
            self.cpu["server"] = _cpu_seconds(self.server.pid) or self.cpu["server"]
            if rss is not None and self.rss["start"] is not None:
                self.rss["max"] = max(self.rss["max"] or 0.0, rss)
            if self.slow_call is not None and self.slow_open and self.slow_call.done():
                self.slow_open = False
                self.slow["ended_at_s"] = round(self.now(), 1)
            await asyncio.sleep(0.25)

    # -- unary load ---------------------------------------------------------------------------------------

    async def create(
        self, stub: pb_grpc.UserServiceAsyncStub, rng: random.Random, op: str = "CreateUser"
    ) -> str | None:
        name = self.new_name("usr")
        code, reply = await self.call(op, stub.CreateUser(_create_request(name, self.bio(rng)), timeout=CALL_TIMEOUT))
        if code != C.OK:
            return None
        user = reply.user
        if user.username != name or not user.id:
            self.problem("CreateUser reply is not the created user", f"sent {name}, got {user}")
        self.expected[user.id] = Expected.of(user)
        if self.phase == "soak":
            self.soak_created.add(user.id)
        return str(user.id)

    async def unary_worker(self, stub: pb_grpc.UserServiceAsyncStub, rng: random.Random, until: float) -> None:
        """A mix of unary calls (UNARY_MIX) on users this worker created (no other worker touches them)."""
        mine: list[str] = []
        gone: list[str] = []
        kinds, weights = list(UNARY_MIX), list(UNARY_MIX.values())
        while not self.stopping(until):
            kind = rng.choices(kinds, weights)[0] if mine else "create"
            if kind == "create" or (kind == "delete" and len(mine) < 2):
                uid = await self.create(stub, rng)
                if uid is not None:
                    mine.append(uid)
            elif kind == "get" or (kind == "gone" and not gone):
                uid = rng.choice(mine)
                code, reply = await self.call("GetUser", stub.GetUser(pb.GetUserRequest(id=uid), timeout=CALL_TIMEOUT))
                if code == C.OK and uid not in self.uncertain and (diff := self.expected[uid].differs(reply.user)):
                    self.problem("GetUser read a stale or wrong user", f"{uid}: {diff}")
            elif kind == "update":
                await self.update(stub, rng, rng.choice(mine))
            elif kind == "delete":
                uid = mine.pop(rng.randrange(len(mine)))
                delete = stub.DeleteUser(pb.DeleteUserRequest(id=uid), timeout=CALL_TIMEOUT)
                code, _ = await self.call("DeleteUser", delete)
                self.expected.pop(uid, None)
                if code == C.OK:
                    self.deleted.add(uid)
                    gone.append(uid)
                else:
                    self.uncertain.add(uid)
            elif kind == "gone":
                uid = rng.choice(gone)
                if rng.random() < 0.7:
                    await self.call("GetUser deleted", stub.GetUser(pb.GetUserRequest(id=uid), timeout=CALL_TIMEOUT))
                else:
                    delete = stub.DeleteUser(pb.DeleteUserRequest(id=uid), timeout=CALL_TIMEOUT)
                    await self.call("DeleteUser deleted", delete)
            elif kind == "never":
                get = stub.GetUser(pb.GetUserRequest(id=str(uuid.uuid4())), timeout=CALL_TIMEOUT)
                await self.call("GetUser never created", get)
            else:
                await self.invalid_unary(stub, rng, rng.choice(mine))

    async def update(self, stub: pb_grpc.UserServiceAsyncStub, rng: random.Random, uid: str) -> None:
        request = pb.UpdateUserRequest(id=uid, profile=pb.UserProfile(bio=self.bio(rng)))
        if rng.random() < 0.5:
            request.username = self.new_name("ren")
        if rng.random() < 0.3:
            request.email = f"{self.new_name('mail')}@example.org"
        code, reply = await self.call("UpdateUser", stub.UpdateUser(request, timeout=CALL_TIMEOUT))
        if code != C.OK:
            self.uncertain.add(uid)  # applied or not: unknown
            return
        before = self.expected[uid]
        want = Expected(
            request.username if request.HasField("username") else before.username,
            request.email if request.HasField("email") else before.email,
            request.profile.bio,
        )
        if diff := want.differs(reply.user):
            self.problem("UpdateUser reply does not show the update", f"{uid}: {diff}")
        self.expected[uid] = want

    async def invalid_unary(self, stub: pb_grpc.UserServiceAsyncStub, rng: random.Random, uid: str) -> None:
        kind = rng.randrange(4)
        if kind == 0:
            await self.call("GetUser invalid", stub.GetUser(pb.GetUserRequest(id="not-a-uuid"), timeout=CALL_TIMEOUT))
        elif kind == 1:
            bad = _create_request(self.new_name("bad"))
            bad.email = "not-an-email"
            self.must_not_exist.add(bad.username)
            await self.call("CreateUser invalid", stub.CreateUser(bad, timeout=CALL_TIMEOUT))
        elif kind == 2:  # an existing user: the rejected update must leave it unchanged (checked at the end)
            request = pb.UpdateUserRequest(id=uid, username="Not Valid!")
            await self.call("UpdateUser invalid", stub.UpdateUser(request, timeout=CALL_TIMEOUT))
        else:
            await self.call("DeleteUser invalid", stub.DeleteUser(pb.DeleteUserRequest(id=""), timeout=CALL_TIMEOUT))

    # -- server streaming ---------------------------------------------------------------------------------

    async def list_worker(self, stub: pb_grpc.UserServiceAsyncStub, rng: random.Random, until: float) -> None:
        while not self.stopping(until):
            roll = rng.random()
            if roll < 0.5:
                page_size = rng.choice([0, 10, 50, 200])
                messages = await self.read_list("ListUsers read fully", stub, pb.ListUsersRequest(page_size=page_size))
                if messages and messages[-1].next_page_token and rng.random() < 0.5:
                    seen = {u.id for m in messages for u in m.users}
                    following = pb.ListUsersRequest(page_size=page_size, page_token=messages[-1].next_page_token)
                    nxt = await self.read_list("ListUsers next page", stub, following)
                    overlap = seen & {u.id for m in nxt or () for u in m.users}
                    if overlap:
                        self.problem("ListUsers next page repeats users of the previous page", f"{len(overlap)} ids")
            elif roll < 0.85:
                call = stub.ListUsers(pb.ListUsersRequest(page_size=rng.choice([0, 10])), timeout=CALL_TIMEOUT)
                with contextlib.suppress(grpc.aio.AioRpcError):  # its code is recorded below
                    await call.read()
                call.cancel()
                self.record("ListUsers cancelled after first message", await call.code(), await call.details())
            elif roll < 0.93:
                await self.read_list("ListUsers invalid page_size", stub, pb.ListUsersRequest(page_size=5000))
            else:
                request = pb.ListUsersRequest(page_size=10, page_token="not-a-token-this-server-issued")
                await self.read_list("ListUsers foreign page_token", stub, request)
            await asyncio.sleep(rng.uniform(0.05, 0.2))

    async def read_list(
        self, op: str, stub: pb_grpc.UserServiceAsyncStub, request: pb.ListUsersRequest
    ) -> list[pb.ListUsersResponse] | None:
        """A whole ListUsers stream; checks it is one page with next_page_token on its last message only."""
        messages: list[pb.ListUsersResponse] = []
        try:
            async for message in stub.ListUsers(request, timeout=CALL_TIMEOUT):
                messages.append(message)
        except grpc.aio.AioRpcError as exc:
            self.record(op, exc.code(), exc.details() or "")
            return None
        self.record(op, C.OK)
        tokens = [m.next_page_token for m in messages]
        if any(tokens[:-1]):
            self.problem(
                "ListUsers: next_page_token on a message that is not the stream's last",
                f"page_size={request.page_size}: {len(messages)} messages, tokens on {sum(map(bool, tokens))}",
            )
        count = sum(len(m.users) for m in messages)
        if count > (request.page_size or 1000):
            self.problem("ListUsers: one call streamed more than one page", f"page_size={request.page_size}: {count}")
        return messages

    # -- client streaming ---------------------------------------------------------------------------------

    async def batch_worker(self, stub: pb_grpc.UserServiceAsyncStub, rng: random.Random, until: float) -> None:
        while not self.stopping(until):
            roll = rng.random()
            if roll < 0.6:
                names = [self.new_name("bat") for _ in range(rng.randint(2, 4))]
                items = [pb.BatchCreateUsersRequest(request=_create_request(n, self.bio(rng))) for n in names]
                code, reply = await self.call(
                    "BatchCreateUsers", stub.BatchCreateUsers(iter(items), timeout=CALL_TIMEOUT)
                )
                if code == C.OK:
                    got = [u.username for u in reply.users]
                    if got != names or reply.created_count != len(names):
                        self.problem(
                            "BatchCreateUsers reply does not match the batch",
                            f"sent {names}, created_count={reply.created_count}, users {got}",
                        )
                    for user in reply.users:
                        self.expected[user.id] = Expected.of(user)
                        if self.phase == "soak":
                            self.soak_created.add(user.id)
            elif roll < 0.85:
                await self.cancelled_batch(stub, rng)
            else:  # an invalid first item: the whole batch is rejected and stores nothing
                bad = _create_request(self.new_name("inv"))
                bad.password = "short"
                good = _create_request(self.new_name("inv"))
                self.must_not_exist.update({bad.username, good.username})
                items = [pb.BatchCreateUsersRequest(request=r) for r in (bad, good)]
                await self.call(
                    "BatchCreateUsers invalid item", stub.BatchCreateUsers(iter(items), timeout=CALL_TIMEOUT)
                )
            await asyncio.sleep(rng.uniform(0.3, 0.8))

    async def cancelled_batch(self, stub: pb_grpc.UserServiceAsyncStub, rng: random.Random) -> None:
        """Send a few items, never half-close, give the server time to read them, cancel: nothing is stored."""
        names = [self.new_name("cxl") for _ in range(rng.randint(1, 3))]
        self.must_not_exist.update(names)
        call = stub.BatchCreateUsers(timeout=CALL_TIMEOUT)
        try:
            for name in names:
                await call.write(pb.BatchCreateUsersRequest(request=_create_request(name)))
            await asyncio.sleep(rng.uniform(0.2, 0.5))
        except grpc.aio.AioRpcError:
            pass  # the server ended the call early: its code is recorded below
        call.cancel()
        self.record("BatchCreateUsers cancelled midway", await call.code(), await call.details())

    # -- bidi ---------------------------------------------------------------------------------------------

    async def read_watch(self, stub: pb_grpc.UserServiceAsyncStub, reader: Reader) -> None:
        async def requests() -> AsyncIterator[pb.WatchUsersRequest]:
            yield pb.WatchUsersRequest()  # no filter: every event
            await self.closing.wait()

        call = reader.call = stub.WatchUsers(requests())
        try:
            async for reply in call:
                event = reply.event
                reader.events[pb.UserEvent.Type.Name(event.type)] += 1
                if event.type == pb.UserEvent.TYPE_CREATED:
                    reader.created.add(event.user.id)
                if self.slow_open:
                    reader.while_slow_open += 1
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not call.cancelled() or (task is not None and task.cancelling()):
                raise  # not our cancel of the call: the task itself is being cancelled
        except grpc.aio.AioRpcError:
            pass
        code = await call.code()
        reader.code = code.name
        self.record("WatchUsers reader", code, await call.details())

    async def wait_seen(self, uid: str, timeout: float) -> list[str]:
        """Wait until every reading watcher has seen the creation of `uid`; returns the ones that have not."""
        deadline = self.now() + timeout
        while True:
            missing = [r.name for r in self.readers if uid not in r.created]
            if not missing or self.now() >= deadline or self.abort.is_set():
                return missing
            await asyncio.sleep(0.05)

    async def marker(self, stub: pb_grpc.UserServiceAsyncStub, label: str, attempts: int = 1) -> None:
        """Create a user and check every reading watcher gets its event (within 10 s in all).

        With several attempts, a marker not seen within 1 s is followed by another: a stream only subscribes
        once its handler runs, which can be after a marker created just after the stream was opened."""
        deadline = self.now() + CALL_TIMEOUT
        for attempt in range(attempts, 0, -1):
            name = self.new_name("mark")
            request = _create_request(name)
            code, reply = await self.call("marker CreateUser", stub.CreateUser(request, timeout=CALL_TIMEOUT))
            if code != C.OK:
                return
            self.expected[reply.user.id] = Expected.of(reply.user)
            wait = max(0.0, deadline - self.now()) if attempt == 1 else 1.0
            missing = await self.wait_seen(reply.user.id, wait)
            if not missing:
                return
        self.problem(
            "reading watchers did not get an event within 10 s",
            f"{label} marker {name}: not seen by {missing} (slow watcher open: {self.slow_open})",
        )

    def open_slow_watcher(self, channel: grpc.aio.Channel) -> None:
        """A WatchUsers call whose responses are never read (a raw call: nothing iterates it)."""

        async def requests() -> AsyncIterator[pb.WatchUsersRequest]:
            yield pb.WatchUsersRequest()
            await self.closing.wait()

        method = channel.stream_stream(
            SERVICE + "WatchUsers",
            request_serializer=pb.WatchUsersRequest.SerializeToString,
            response_deserializer=pb.WatchUsersResponse.FromString,
        )
        self.slow_call = method(requests())
        self.slow_open = True
        self.slow["opened_at_s"] = round(self.now(), 1)

    async def close_slow_watcher(self) -> None:
        """Read what the slow watcher has buffered: a server that ended it sends RESOURCE_EXHAUSTED after the
        buffered messages. A stream still live (idle for 2 s) is cancelled."""
        call = self.slow_call
        drained = 0
        deadline = self.now() + CALL_TIMEOUT
        try:
            while not call.done() and self.now() < deadline:
                message = await asyncio.wait_for(call.read(), timeout=2.0)  # a timeout cancels the call
                if message is grpc.aio.EOF:
                    break
                drained += 1
        except (TimeoutError, grpc.aio.AioRpcError):
            pass
        if not call.done():
            call.cancel()
        self.slow_open = False
        self.slow.setdefault("ended_at_s", round(self.now(), 1))
        code = await call.code()
        self.slow.update(code=code.name, messages_drained_at_end=drained)
        self.record("WatchUsers slow watcher", code, await call.details())

    # -- malformed wire data ------------------------------------------------------------------------------

    async def malformed_worker(self, channel: grpc.aio.Channel, rng: random.Random, until: float) -> None:
        """Raw bytes (identity serializers) the server cannot parse, on each kind of method."""
        garbage = b"\xff\xff\xff"
        bad_utf8_field1 = b"\x0a\x02\xff\xfe"  # field 1 (a string), length 2, not UTF-8
        raw: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}  # bytes in, bytes out
        unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(SERVICE + "GetUser", **raw)
        server_stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            SERVICE + "ListUsers", **raw
        )
        client_stream: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(
            SERVICE + "BatchCreateUsers", **raw
        )
        bidi: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(SERVICE + "WatchUsers", **raw)

        async def unary_case(op: str, body: bytes) -> None:
            await self.call(op, unary(body, timeout=MALFORMED_TIMEOUT))

        async def server_stream_case(op: str, body: bytes) -> None:
            try:
                async for _ in server_stream(body, timeout=MALFORMED_TIMEOUT):
                    pass
            except grpc.aio.AioRpcError as exc:
                self.record(op, exc.code(), exc.details() or "")
            else:
                self.record(op, C.OK)

        async def client_stream_case(op: str, body: bytes) -> None:
            await self.call(op, client_stream(iter([body]), timeout=MALFORMED_TIMEOUT))

        async def bidi_case(op: str, body: bytes) -> None:
            async def requests() -> AsyncIterator[bytes]:
                yield body
                await self.closing.wait()  # keep the request side open: only the bad message can end the call

            try:
                async for _ in bidi(requests(), timeout=MALFORMED_TIMEOUT):
                    pass
            except grpc.aio.AioRpcError as exc:
                self.record(op, exc.code(), exc.details() or "")
            else:
                self.record(op, C.OK)

        def batch_item(prefix: str) -> bytes:
            name = self.new_name(prefix)
            self.must_not_exist.add(name)
            return pb.BatchCreateUsersRequest(request=_create_request(name)).SerializeToString()

        cases: list[tuple[str, Callable[[str, bytes], Awaitable[None]], Callable[[], bytes]]] = [
            ("malformed GetUser: garbage", unary_case, lambda: garbage),
            (
                "malformed GetUser: truncated",
                unary_case,
                lambda: pb.GetUserRequest(id=str(uuid.uuid4())).SerializeToString()[:-5],
            ),
            ("malformed GetUser: invalid UTF-8", unary_case, lambda: bad_utf8_field1),
            ("malformed ListUsers: garbage", server_stream_case, lambda: garbage),
            (
                "malformed ListUsers: truncated",
                server_stream_case,
                lambda: pb.ListUsersRequest(page_size=5, page_token="abcdefgh").SerializeToString()[:-3],
            ),
            ("malformed ListUsers: invalid UTF-8", server_stream_case, lambda: b"\x12\x02\xff\xfe"),  # page_token
            ("malformed BatchCreateUsers: garbage", client_stream_case, lambda: garbage),
            ("malformed BatchCreateUsers: truncated", client_stream_case, lambda: batch_item("mal")[:-4]),
            (  # request (field 1) holding a username (field 1) that is not UTF-8
                "malformed BatchCreateUsers: invalid UTF-8",
                client_stream_case,
                lambda: b"\x0a" + bytes([len(bad_utf8_field1)]) + bad_utf8_field1,
            ),
            ("malformed WatchUsers: garbage", bidi_case, lambda: garbage),
            ("malformed WatchUsers: invalid UTF-8", bidi_case, lambda: bad_utf8_field1),  # user_ids
        ]
        for op, run, body in itertools.cycle(cases):
            if self.stopping(until):
                return
            await run(op, body())
            await asyncio.sleep(rng.uniform(0.05, 0.15))

    # -- client processes killed mid-stream ---------------------------------------------------------------

    async def kill_worker(self, rng: random.Random, until: float) -> None:
        env = {**os.environ, "PYTHONPATH": "generated"}
        for mode in itertools.cycle(KILL_MODES):
            if self.stopping(until):
                return
            prefix = self.new_name("kil")
            if mode == "BatchCreateUsers":
                self.must_not_exist.update(f"{prefix}_{i}" for i in range(3))
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                KILLED_CLIENT,
                mode,
                str(self.port),
                prefix,
                cwd=REPO,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            self.kill_procs.add(proc)
            try:
                assert proc.stdout is not None and proc.stderr is not None
                try:
                    line = await asyncio.wait_for(proc.stdout.readline(), timeout=CALL_TIMEOUT)
                except TimeoutError:
                    line = b""
                if line.strip() == b"ready":
                    # A batch: let the server read the items it was sent before the client dies.
                    await asyncio.sleep(rng.uniform(0.3, 0.6) if mode == "BatchCreateUsers" else rng.uniform(0, 0.2))
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                returncode = await proc.wait()
                stderr = (await proc.stderr.read()).decode(errors="replace")
                if returncode == -signal.SIGKILL:
                    self.kills[mode if line.strip() == b"ready" else f"{mode} (killed before ready)"] += 1
                elif not self.server_exited():
                    self.problem(
                        "a client process ended before it was killed",
                        f"{mode}: exit {_signal_name(returncode)}: {stderr[-800:]}",
                    )
            finally:
                self.kill_procs.discard(proc)
            await asyncio.sleep(rng.uniform(1.0, 2.0))  # a client process costs ~0.3 s of CPU to start

    # -- phases -------------------------------------------------------------------------------------------

    async def load(self, seconds: float, stub: pb_grpc.UserServiceAsyncStub, extra: dict[str, Awaitable[None]]) -> None:
        """Unary, ListUsers and BatchCreateUsers workers (plus `extra`) for `seconds`."""
        until = self.now() + seconds
        workers = {
            **{f"unary {i}": self.unary_worker(stub, self.fork_rng(), until) for i in range(UNARY_WORKERS)},
            "ListUsers": self.list_worker(stub, self.fork_rng(), until),
            "BatchCreateUsers": self.batch_worker(stub, self.fork_rng(), until),
            **extra,
        }
        tasks = [asyncio.create_task(self.guarded(name, work)) for name, work in workers.items()]
        # Each worker stops at `until` after its current call (which has a deadline); allow for the slowest.
        _, pending = await asyncio.wait(tasks, timeout=seconds + CALL_TIMEOUT + 10)
        if pending:
            self.problem("harness: workers did not stop in time", f"{len(pending)} still running; cancelled")
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def fork_rng(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))

    async def verify_writes(self, stub: pb_grpc.UserServiceAsyncStub) -> None:
        """Every acknowledged user is there as last written; deleted ones are gone; nothing of a
        cancelled, killed or rejected batch was stored."""
        missing: list[str] = []
        stale: list[str] = []
        resurrected: list[str] = []
        semaphore = asyncio.Semaphore(VERIFY_CONCURRENCY)

        async def check(uid: str, want: Expected | None) -> None:
            async with semaphore:
                op = "final GetUser" if want is not None else "final GetUser deleted"
                code, reply = await self.call(op, stub.GetUser(pb.GetUserRequest(id=uid), timeout=CALL_TIMEOUT))
            if want is not None and code == C.NOT_FOUND:
                missing.append(uid)
            elif want is not None and code == C.OK and uid not in self.uncertain and (diff := want.differs(reply.user)):
                stale.append(f"{uid}: {diff}")
            elif want is None and code == C.OK:
                resurrected.append(uid)

        alive = {uid: want for uid, want in self.expected.items()}
        await asyncio.gather(
            *(check(uid, want) for uid, want in alive.items()),
            *(check(uid, None) for uid in self.deleted if uid not in self.uncertain),
        )
        listed = await self.list_everything(stub)
        listed_names = {user.username for user in listed.values()}
        leaked = sorted(self.must_not_exist & listed_names)
        unlisted = sorted(set(alive) - set(listed) - self.uncertain)
        unacknowledged = sorted(set(listed) - set(alive) - self.uncertain)
        self.writes = {
            "acknowledged_alive": len(alive),
            "deleted_by_test": len(self.deleted),
            "uncertain": len(self.uncertain),
            "missing": len(missing),
            "stale": len(stale),
            "resurrected": len(resurrected),
            "listed": len(listed),
            "acknowledged_but_not_listed": len(unlisted),
            "must_not_exist": len(self.must_not_exist),
            "stored_from_cancelled_killed_or_rejected_batches": len(leaked),
            "listed_but_never_acknowledged": len(unacknowledged),
        }
        if missing:
            self.problem("acknowledged users lost", f"{len(missing)} of {len(alive)}, e.g. {missing[:3]}")
        if stale:
            self.problem("acknowledged updates lost", f"{len(stale)}, e.g. {stale[:2]}")
        if resurrected:
            self.problem("deleted users came back", f"{len(resurrected)}, e.g. {resurrected[:3]}")
        if unlisted:
            self.problem("acknowledged users missing from ListUsers", f"{len(unlisted)}, e.g. {unlisted[:3]}")
        if leaked:
            self.problem(
                "cancelled / killed / rejected batches stored users",
                f"{len(leaked)} of {len(self.must_not_exist)} usernames, e.g. {leaked[:5]}",
            )

    async def list_everything(self, stub: pb_grpc.UserServiceAsyncStub) -> dict[str, pb.User]:
        """All users, page after page (following the last message's next_page_token)."""
        users: dict[str, pb.User] = {}
        token = ""
        for _ in range(1000):
            messages: list[pb.ListUsersResponse] = []
            try:
                async for message in stub.ListUsers(pb.ListUsersRequest(page_size=1000, page_token=token), timeout=30):
                    messages.append(message)
            except grpc.aio.AioRpcError as exc:
                self.record("final ListUsers page", exc.code(), exc.details() or "")
                return users
            self.record("final ListUsers page", C.OK)
            for message in messages:
                for user in message.users:
                    if user.id in users:
                        self.problem("ListUsers listed a user twice", user.id)
                    users[user.id] = user
            next_token = messages[-1].next_page_token if messages else ""
            if not next_token:
                return users
            if next_token == token:
                self.problem("ListUsers paging does not advance", f"token {token!r} again")
                return users
            token = next_token
        self.problem("ListUsers paging does not end", "1000 pages")
        return users

    async def answers(self, stub: pb_grpc.UserServiceAsyncStub) -> bool:
        """Whether the server still answers once the load has stopped (a GetUser of a user that exists)."""
        uid = next(iter(self.expected), None)
        if uid is None:
            return True
        code, _ = await self.call("final probe", stub.GetUser(pb.GetUserRequest(id=uid), timeout=CALL_TIMEOUT))
        if code != C.OK and not self.server_exited():
            self.problem("server stopped answering after the soak", f"GetUser of an existing user: {code.name}")
        return code == C.OK

    async def liveness(self, stub: pb_grpc.UserServiceAsyncStub) -> None:
        """After every stream is gone: the server still creates, reads and deletes."""
        code, reply = await self.call(
            "final liveness", stub.CreateUser(_create_request(self.new_name("live")), timeout=CALL_TIMEOUT)
        )
        if code == C.OK:
            uid = reply.user.id
            await self.call("final liveness", stub.GetUser(pb.GetUserRequest(id=uid), timeout=CALL_TIMEOUT))
            await self.call("final liveness", stub.DeleteUser(pb.DeleteUserRequest(id=uid), timeout=CALL_TIMEOUT))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop_start = loop.time()
        target = f"127.0.0.1:{self.port}"
        main = grpc.aio.insecure_channel(target)
        watch = grpc.aio.insecure_channel(target)
        raw = grpc.aio.insecure_channel(target)
        # The slow client: its own connection, and no BDP probing, so its receive window stays at 64 KB.
        slow = grpc.aio.insecure_channel(target, options=[("grpc.http2.bdp_probe", 0)])
        stub = pb_grpc.UserServiceStub(main)
        monitor = asyncio.create_task(self.monitor())
        cpu_start = time.process_time()
        reader_tasks: list[asyncio.Task[None]] = []
        try:
            self.phase = "warm-up"
            await self.load(WARMUP_SECONDS, stub, {})
            self.durations["warm_up"] = round(self.now(), 1)
            if self.abort.is_set():
                return

            self.phase = "watchers"
            watch_stub = pb_grpc.UserServiceStub(watch)
            self.readers = [Reader(f"reader {i}") for i in range(READING_WATCHERS)]
            reader_tasks = [
                asyncio.create_task(self.guarded(r.name, self.read_watch(watch_stub, r))) for r in self.readers
            ]
            self.open_slow_watcher(slow)
            await self.marker(stub, "start", attempts=5)  # every reader is subscribed once it has seen one
            self.rss["start"] = self.rss["max"] = _rss_mb(self.server.pid)
            if self.abort.is_set():
                return

            self.phase = "soak"
            started = self.now()
            until = started + SOAK_SECONDS
            await self.load(
                SOAK_SECONDS,
                stub,
                {
                    "malformed": self.malformed_worker(raw, self.fork_rng(), until),
                    "client kills": self.kill_worker(self.fork_rng(), until),
                },
            )
            self.durations["soak"] = round(self.now() - started, 1)
            if self.abort.is_set():
                return

            self.phase = "final checks"
            started = self.now()
            if not await self.answers(stub):
                return
            await self.marker(stub, "end")
            await self.verify_writes(stub)
            self.rss["end"] = _rss_mb(self.server.pid)
            if self.rss["end"] is not None:
                self.rss["max"] = max(self.rss["max"] or 0.0, self.rss["end"])
            await self.close_slow_watcher()
            self.slow["events_published_while_open"] = max((r.while_slow_open for r in self.readers), default=0)
            for reader in self.readers:
                if reader.call is not None:
                    reader.call.cancel()
            await asyncio.wait(reader_tasks, timeout=CALL_TIMEOUT)
            missed = {}
            for reader in self.readers:
                if reader.code == "CANCELLED":  # subscribed throughout: must have seen every create
                    missed[reader.name] = len(self.soak_created - reader.created)
            if any(missed.values()):
                self.problem("reading watchers missed create events", f"of {len(self.soak_created)}: {missed}")
            self.closing.set()
            await self.liveness(stub)
            self.durations["final_checks"] = round(self.now() - started, 1)
        finally:
            self.closing.set()
            for task in reader_tasks:
                task.cancel()
            await asyncio.gather(*reader_tasks, return_exceptions=True)
            for proc in list(self.kill_procs):
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)
            self.cpu["test_process"] = round(time.process_time() - cpu_start, 1)
            for channel in (main, watch, raw, slow):
                await channel.close()

    # -- the report ---------------------------------------------------------------------------------------

    def figures(self, server_stderr: str, shutdown_exit: int | None, total: float) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        for counts in self.codes.values():
            for code, n in counts.items():
                if code != "OK":
                    errors[code] += n
        rss = {k: None if v is None else round(v, 1) for k, v in self.rss.items()}
        growth = None if self.rss["start"] is None or self.rss["end"] is None else self.rss["end"] - self.rss["start"]
        return {
            "seed": self.seed,
            "duration_s": {"total": round(total, 1), "soak_setting": SOAK_SECONDS, **self.durations},
            "requests_total": sum(self.calls.values()),
            "requests_by_operation": dict(sorted(self.calls.items())),
            "codes_by_operation": {op: dict(c) for op, c in sorted(self.codes.items())},
            "errors_by_code": dict(errors.most_common()),
            "unexpected_codes": dict(self.unexpected),
            "cpu_s": {k: None if v is None else round(v, 1) for k, v in self.cpu.items()},
            "rss_mb": {**rss, "growth": None if growth is None else round(growth, 1), "bound": MAX_RSS_GROWTH_MB},
            "server": {
                "exited_during_soak": None if self.server_exit is None else _signal_name(self.server_exit),
                "exited_at_s": self.server_exit_at,
                "exit_on_sigterm": None if shutdown_exit is None else _signal_name(shutdown_exit),
                "stderr_tracebacks": server_stderr.count("Traceback"),
                "request_log_lines": server_stderr.count(" rpc /"),
            },
            "writes": self.writes,
            "watchers": {
                "readers": {
                    r.name: {"events": dict(r.events), "while_slow_watcher_open": r.while_slow_open, "code": r.code}
                    for r in self.readers
                },
                "slow": self.slow,
            },
            "client_processes_killed": dict(self.kills),
            "problems": dict(self.problems),
        }

    def failures(self, figures: dict[str, Any], server_stderr: str) -> list[str]:
        out = []
        if self.server_exit is not None:
            fatal = server_stderr.rfind("Fatal Python error")  # PYTHONFAULTHANDLER's dump: the crashing thread last
            if fatal >= 0:
                head = server_stderr[fatal:].partition("\n")[0]
                current = server_stderr.rfind("Current thread", fatal)
                tail = f"{head}\n...\n{server_stderr[current if current >= 0 else fatal :][:4000]}"
            else:
                tail = server_stderr[-2500:]
            out.append(
                f"[server alive] the server exited during the soak ({self.phase}) at {self.server_exit_at:.1f}s "
                f"with {_signal_name(self.server_exit)}; its stderr:\n{tail}"
            )
        unexpected = self.unexpected.most_common()
        if self.server_exit is not None:  # calls failing as the server went down are its consequence
            unexpected = [(key, n) for key, n in unexpected if not key.endswith("-> UNAVAILABLE")]
        if unexpected:
            lines = "\n".join(f"  {key}: {n} (first {self.unexpected_examples[key]})" for key, n in unexpected)
            out.append(f"[status codes] codes outside the expected set of their operation:\n{lines}")
        for kind, n in self.problems.most_common():
            examples = "\n".join(f"    {e}" for e in self.problem_examples[kind])
            out.append(f"[{kind}] {n} time(s):\n{examples}")
        rss = figures["rss_mb"]
        if rss["growth"] is not None and rss["growth"] > MAX_RSS_GROWTH_MB:
            out.append(
                f"[RSS] server RSS grew {rss['growth']} MB (start {rss['start']}, end {rss['end']}, "
                f"max {rss['max']}), more than the {MAX_RSS_GROWTH_MB} MB bound"
            )
        slow = self.slow
        published = slow.get("events_published_while_open", 0)
        if slow.get("code") == "CANCELLED" and published > SLOW_WATCHER_MUST_OVERFLOW_AFTER:
            out.append(
                f"[slow watcher] {published} events were published while it never read, more than "
                f"{SLOW_WATCHER_MUST_OVERFLOW_AFTER} (a 1000-event backlog + 64 KB window overflow by ~1300), yet it "
                f"was not ended with RESOURCE_EXHAUSTED ({slow.get('messages_drained_at_end')} messages were still "
                "queued for it)"
            )
        if self.readers and self.slow_call is not None and self.server_exit is None:
            starved = [r.name for r in self.readers if r.while_slow_open == 0]
            if starved:
                out.append(f"[watchers] got no event while the slow watcher existed: {starved}")
        if "Traceback" in server_stderr:
            start = server_stderr.index("Traceback")
            start = server_stderr.rfind("\n", 0, max(0, server_stderr.rfind("\n", 0, start))) + 1  # the line before
            out.append(
                f"[stderr] the server's stderr holds {server_stderr.count('Traceback')} traceback(s); the first:\n"
                f"{server_stderr[start : start + 2500]}"
            )
        return out


@pytest.mark.slow
@pytest.mark.soak
def test_soak_userservice_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("SOAK_SEED") or random.randrange(1 << 32))
    port = free_port()
    stderr_path = tmp_path / "server.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROTOKIT_")}  # default settings
    env.update(
        PYTHONPATH="generated:examples/userservice",
        PORT=str(port),
        USERSERVICE_DB=str(tmp_path / "users.sqlite3"),
        PYTHONFAULTHANDLER="1",  # a crash (SIGSEGV, SIGABRT) prints every thread's Python stack to stderr
    )
    started = time.monotonic()
    with stderr_path.open("wb") as stderr_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "userservice"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stderr_file,
            stderr=stderr_file,
            start_new_session=True,
        )
    shutdown_exit: int | None = None
    try:

        def alive() -> str | None:
            if server.poll() is None:
                return None
            return (
                f"the server exited at start with {_signal_name(server.returncode)}: {stderr_path.read_text()[-2000:]}"
            )

        wait_for_reflection(port, alive, timeout=30)
        soak = Soak(port, server, seed)
        harness_error = None
        try:
            asyncio.run(asyncio.wait_for(soak.run(), timeout=TIME_BOUND_SECONDS - (time.monotonic() - started) - 15))
        except TimeoutError:
            harness_error = f"[time bound] the soak did not finish within {TIME_BOUND_SECONDS:.0f} s"
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)  # graceful stop, as on a deploy
            try:
                shutdown_exit = server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    total = time.monotonic() - started
    server_stderr = stderr_path.read_text(errors="replace")
    figures = soak.figures(server_stderr, shutdown_exit, total)
    report = json.dumps(figures, indent=2)
    with capsys.disabled():
        print(f"\nsoak figures:\n{report}")
    if os.environ.get("SOAK_REPORT"):
        Path(os.environ["SOAK_REPORT"]).write_text(report + "\n")

    failures = soak.failures(figures, server_stderr)
    if harness_error:
        failures.insert(0, harness_error)
    if shutdown_exit is not None and shutdown_exit < 0:
        failures.append(f"[shutdown] the server died on SIGTERM after the soak: {_signal_name(shutdown_exit)}")
    if total > TIME_BOUND_SECONDS:
        failures.append(f"[time bound] the test took {total:.0f} s, over its {TIME_BOUND_SECONDS:.0f} s bound")
    summary = {
        k: figures[k]
        for k in (
            "seed",
            "duration_s",
            "requests_total",
            "errors_by_code",
            "rss_mb",
            "writes",
            "client_processes_killed",
        )
    }
    if failures:
        pytest.fail(
            f"{len(failures)} soak assertion(s) failed:\n\n"
            + "\n\n".join(failures)
            + f"\n\nfigures: {json.dumps(summary)}",
            pytrace=False,
        )
