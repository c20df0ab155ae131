"""Throughput of protokit.runtime's interceptor chain against a bare grpc.aio servicer doing the same work.

    python bench/runtime_bench.py            # prints JSON: unary calls/s and stream messages/s, both servers

The server runs in its own process (the client load would otherwise share its core); the client
keeps a fixed number of calls in flight over one channel for a fixed time, servers interleaved.
The full server logs one INFO line per RPC, as `run()` does in production; BENCH_RUNTIME_LOG=0 measures
the chain without a log handler (the logging stage then builds nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
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


async def serve(kind: str, port: int) -> None:
    if kind == "bare":
        server = grpc.aio.server()
        Work().add_to_server(server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()
        return
    from protokit.runtime import Principal, ServerSettings, build_server

    async def verify(token: str) -> Principal | None:
        return Principal("bench") if token == TOKEN else None

    # As `run()` serves in production: one INFO log line per RPC (to /dev/null here, so the cost measured
    # is the logging itself, not a terminal). gzip off on both sides: the same bytes on the wire.
    if os.environ.get("BENCH_RUNTIME_LOG", "1") == "1":
        logging.basicConfig(level=logging.INFO, stream=open(os.devnull, "w"))  # noqa: SIM115
    full = build_server([Work()], ServerSettings(port=port, gzip=False), verifier=verify)
    await full.serve()


async def load(port: int, seconds: float, concurrency: int) -> tuple[float, float]:
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.UserServiceStub(channel)
        request = pb.GetUserRequest(id=USER.id)
        await stub.GetUser(request, metadata=metadata)  # warm up
        stop = time.perf_counter() + seconds
        count = 0

        async def unary_worker() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                await stub.GetUser(request, metadata=metadata)
                count += 1

        start = time.perf_counter()
        await asyncio.gather(*(unary_worker() for _ in range(concurrency)))
        unary = count / (time.perf_counter() - start)

        messages = 0
        stop = time.perf_counter() + seconds

        async def stream_worker() -> None:
            nonlocal messages
            while time.perf_counter() < stop:
                async for _ in stub.ListUsers(pb.ListUsersRequest(), metadata=metadata):
                    messages += 1

        start = time.perf_counter()
        await asyncio.gather(*(stream_worker() for _ in range(4)))
        stream = messages / (time.perf_counter() - start)
    return unary, stream


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def measure(kind: str, seconds: float, concurrency: int) -> tuple[float, float]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "generated"), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)], env=env)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        return asyncio.run(load(port, seconds, concurrency))
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["bare", "full"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.port))
        return
    results: dict[str, list[float]] = {"bare_unary": [], "full_unary": [], "bare_stream": [], "full_stream": []}
    for _ in range(args.repeat):  # interleaved: both servers see the same machine weather
        for kind in ("bare", "full"):
            unary, stream = measure(kind, args.seconds, args.concurrency)
            results[f"{kind}_unary"].append(unary)
            results[f"{kind}_stream"].append(stream)
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
    print(
        json.dumps(
            {
                "unary_calls_per_second_bare": med["bare_unary"],
                "unary_calls_per_second_full": med["full_unary"],
                "runtime_unary_ratio": med["full_unary"] / med["bare_unary"],
                "stream_messages_per_second_bare": med["bare_stream"],
                "stream_messages_per_second_full": med["full_stream"],
                "runtime_stream_ratio": med["full_stream"] / med["bare_stream"],
            }
        )
    )


if __name__ == "__main__":
    main()
