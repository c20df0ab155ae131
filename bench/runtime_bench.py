"""Throughput of protokit.runtime's interceptor chain against a bare grpc.aio servicer doing the same work.

    python bench/runtime_bench.py            # prints JSON: unary calls/s and stream messages/s, both servers

Both servers run for the whole benchmark in their own processes, pinned to the first CPU, with this client
pinned to the others; the client keeps a fixed number of calls in flight over one channel per server and
alternates short runs between the servers (ABBA), reporting the median of the per-round ratios over
several sessions, each with freshly started servers.
The full server logs one INFO line per RPC, set up as `run()` does in production; BENCH_RUNTIME_LOG=0
measures the chain without a log handler (the logging stage then builds nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "generated"))

import grpc  # noqa: E402
from user.v1 import user_service_pb2 as pb  # noqa: E402
from user.v1 import user_service_pb2_grpc as pb_grpc  # noqa: E402

TOKEN = "bench-token"
KINDS = ("bare", "bare_generic", "full")
STREAM_MESSAGES = 500
USER = pb.User(id="6b1f0c3e-9a0e-4f5a-8c1e-2b3c4d5e6f70", username="ada", email="ada@example.com")


class Work(pb_grpc.UserServiceServicer):  # type: ignore[misc]
    """The same work for both servers: answer GetUser, stream ListUsers pages."""

    SERVICE_NAME = "user.v1.UserService"

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.GetUserResponse:
        return pb.GetUserResponse(user=USER)

    async def ListUsers(self, request: pb.ListUsersRequest, context: Any) -> AsyncIterator[pb.ListUsersResponse]:
        page = pb.ListUsersResponse(users=[USER])
        for _ in range(STREAM_MESSAGES):
            yield page

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_UserServiceServicer_to_server(self, server)


class GenericOnly:
    """Registers handlers as generic ones only, as protokit's server does (see runtime/server.py)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.add_generic_rpc_handlers = server.add_generic_rpc_handlers

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        pass


async def serve(kind: str, port: int) -> None:
    if kind.startswith("bare"):
        server = grpc.aio.server()
        Work().add_to_server(server if kind == "bare" else GenericOnly(server))  # type: ignore[arg-type]
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()
        return
    from protokit.runtime import Principal, ServerSettings, build_server
    from protokit.runtime.requestlog import configure_logging

    async def verify(token: str) -> Principal | None:
        return Principal("bench") if token == TOKEN else None

    # As `run()` serves in production: its logging set-up and one INFO line per RPC (to /dev/null here, so
    # the cost measured is the logging itself, not a terminal). gzip off on both sides: the same bytes on
    # the wire.
    request_log = None
    if os.environ.get("BENCH_RUNTIME_LOG", "1") == "1":
        request_log = configure_logging(logging.INFO, open(os.devnull, "w"))  # noqa: SIM115
    settings = ServerSettings(port=port, gzip=False)
    full = build_server([Work()], settings, verifier=verify, request_log=request_log)
    await full.serve()


async def unary_rate(stub: Any, seconds: float, concurrency: int) -> float:
    """GetUser calls/s with `concurrency` calls in flight."""
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    request = pb.GetUserRequest(id=USER.id)
    stop = time.perf_counter() + seconds
    count = 0

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await stub.GetUser(request, metadata=metadata)
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - start)


async def stream_rate(stub: Any, seconds: float) -> float:
    """ListUsers messages/s over 4 concurrent streams."""
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    stop = time.perf_counter() + seconds
    messages = 0

    async def worker() -> None:
        nonlocal messages
        while time.perf_counter() < stop:
            async for _ in stub.ListUsers(pb.ListUsersRequest(), metadata=metadata):
                messages += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(4)))
    return messages / (time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(kind: str, cpus: set[int] | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "generated"), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)], env=env)
    if cpus:
        os.sched_setaffinity(server.pid, cpus)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server, port
        time.sleep(0.1)
    raise RuntimeError(f"the {kind} server did not start")


async def compare(ports: dict[str, int], rounds: int, seconds: float, concurrency: int) -> dict[str, list[float]]:
    """Alternate short runs between the servers (ABBA order) so both see the same machine weather."""
    results: dict[str, list[float]] = {f"{kind}_{what}": [] for kind in ports for what in ("unary", "stream")}
    channels = {kind: grpc.aio.insecure_channel(f"127.0.0.1:{port}") for kind, port in ports.items()}
    stubs = {kind: pb_grpc.UserServiceStub(ch) for kind, ch in channels.items()}
    try:
        for stub in stubs.values():  # warm up: connection, handler caches
            await unary_rate(stub, 0.3, concurrency)
            await stream_rate(stub, 0.3)
        kinds = list(ports)
        for r in range(rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                results[f"{kind}_unary"].append(await unary_rate(stubs[kind], seconds, concurrency))
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                results[f"{kind}_stream"].append(await stream_rate(stubs[kind], seconds))
    finally:
        for ch in channels.values():
            await ch.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=KINDS)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sessions", type=int, default=3, help="times every server process is started afresh")
    # Many short rounds: this machine's steal comes in bursts of about a second, which made single
    # 1-second rounds range from 0.55 to 1.14 while 0.25 s rounds agree within 0.02 between runs.
    parser.add_argument("--rounds", type=int, default=12, help="ABBA rounds per session")
    parser.add_argument("--seconds", type=float, default=0.25, help="per server per round")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.port))
        return
    # Servers on the first CPU, this client on the others: no migrations, no fight for one core.
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpus = {cpus[0]} if len(cpus) >= 2 else None
    if server_cpus:
        os.sched_setaffinity(0, set(cpus[1:]))
    results: dict[str, list[float]] = {}
    # Fresh processes per session: one process's memory layout can make it a few % faster or slower
    # for its whole life (seen: +-8% between otherwise identical runs), which rounds cannot average out.
    for _ in range(args.sessions):
        servers = {kind: start_server(kind, server_cpus) for kind in KINDS}
        try:
            ports = {kind: port for kind, (_, port) in servers.items()}
            for key, values in asyncio.run(compare(ports, args.rounds, args.seconds, args.concurrency)).items():
                results.setdefault(key, []).extend(values)
        finally:
            for server, _ in servers.values():
                server.terminate()
                server.wait(timeout=30)
    med = {k: statistics.median(v) for k, v in results.items()}

    def ratio(what: str, reference: str = "bare") -> float:
        # The ratio of each round's pair, then the median: drift between rounds cancels out.
        pairs = zip(results[f"full_{what}"], results[f"{reference}_{what}"], strict=True)
        return statistics.median(full / ref for full, ref in pairs)

    print(
        json.dumps(
            {
                "unary_calls_per_second_bare": med["bare_unary"],
                "unary_calls_per_second_full": med["full_unary"],
                "runtime_unary_ratio": ratio("unary"),
                "stream_messages_per_second_bare": med["bare_stream"],
                "stream_messages_per_second_full": med["full_stream"],
                "runtime_stream_ratio": ratio("stream"),
                # Against a bare servicer registered as protokit registers (generic handlers only): the
                # chain's own cost, without the registration saving.
                "runtime_unary_ratio_same_registration": ratio("unary", "bare_generic"),
                "runtime_stream_ratio_same_registration": ratio("stream", "bare_generic"),
            }
        )
    )


if __name__ == "__main__":
    main()
