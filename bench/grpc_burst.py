"""A burst of concurrent gRPC calls on one HTTP/2 connection and on several (issue 20, item 5).

Starts the seeded stand-in and `serve` (as `make bench` does), then fires `--calls` concurrent
`ListSessions` calls at once, spread round-robin over `--connections` channels, each with a
`--deadline`, and prints per configuration: calls OK, the status codes of the others, latency
p50/p95/max and the burst's wall time. `--max-streams` and the keepalive settings reach the
gateway as its AIBRIDGE_GRPC_* settings. A measurement, not a test: run it on a quiet machine.

    .venv/bin/python -m bench.grpc_burst --calls 500 --connections 1 5 --max-streams 100 1000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from aibridge_graphql.standin.tokens import generate_token
from bench.grpc_face import grpc_address
from bench.harness import (
    API,
    GRPC_ANY_PORT,
    READY_TIMEOUT,
    Proc,
    cli_path,
    free_port,
    percentile,
    seed,
    spawn,
    stop,
    wait_ready,
)


async def burst(address: str, token: str, calls: int, connections: int, deadline: float) -> str:
    """One burst; its summary line."""
    # A local subchannel pool each: channels to one target otherwise share one connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(connections)]
    try:
        stubs = [session_grpc.SessionServiceStub(channel) for channel in channels]
        # Connected before the clock starts: the burst measures calls, not handshakes.
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        metadata = (("coder-session-token", token),)

        async def one(index: int) -> tuple[str, float]:
            # A code with the start of its message: REFUSED_STREAM and an upstream failure are
            # both UNAVAILABLE.
            started = time.perf_counter()
            try:
                await stubs[index % connections].ListSessions(
                    session_pb.ListSessionsRequest(page_size=5), metadata=metadata, timeout=deadline
                )
                code = "OK"
            except grpc.aio.AioRpcError as error:
                code = f"{error.code().name} ({(error.details() or '')[:40]})"
            return code, (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(calls)))
        wall = time.perf_counter() - started
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))
    codes = collections.Counter(code for code, _ in results)
    ms = [elapsed for _, elapsed in results]
    others = ", ".join(f"{c} {n}" for c, n in sorted(codes.items()) if c != "OK") or "none"
    return (
        f"{connections} conn: OK {codes['OK']}/{calls}, others: {others}; "
        f"p50 {percentile(ms, 0.5):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms, "
        f"max {max(ms):.0f} ms; wall {wall:.2f} s ({calls / wall:.0f} calls/s)"
    )


def running(proc: Proc) -> Callable[[], bool]:
    """True while `proc` runs (for `grpc_address`, which reads its log)."""
    return lambda: proc.popen.poll() is None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--max-streams", type=int, nargs="+", default=[1000])
    parser.add_argument("--deadline", type=float, default=10.0, help="seconds per call")
    parser.add_argument("--interceptions", type=int, default=200, help="seeded rows")
    args = parser.parse_args()
    cli = cli_path()
    token = generate_token()
    with tempfile.TemporaryDirectory(prefix="aibridge-burst-") as tmp:
        work = Path(tmp)
        db = work / "standin.db"
        seed(db, args.interceptions, token)
        env = {**os.environ, "AIBRIDGE_LOG_LEVEL": "WARNING"}
        procs: list[Proc] = []
        try:
            port = free_port()
            standin_url = f"http://127.0.0.1:{port}"
            standin = spawn(
                "stand-in",
                [cli, "standin", "--host", "127.0.0.1", "--port", str(port), "--db", str(db)],
                work / "standin.log",
                None,
                env,
            )
            procs.append(standin)
            wait_ready(standin, f"{standin_url}{API}/models", {"Coder-Session-Token": token})
            for streams in args.max_streams:
                gateway_port = free_port()
                gateway_env = {**env, "AIBRIDGE_GRPC_MAX_CONCURRENT_STREAMS": str(streams)}
                log = work / f"gateway-{streams}.log"
                gateway = spawn(
                    "gateway",
                    [
                        cli,
                        "serve",
                        "--upstream",
                        standin_url,
                        "--port",
                        str(gateway_port),
                        *GRPC_ANY_PORT,
                    ],
                    log,
                    None,
                    gateway_env,
                )
                procs.append(gateway)
                wait_ready(gateway, f"http://127.0.0.1:{gateway_port}/readyz")
                address = grpc_address(log, running(gateway), READY_TIMEOUT)
                # One warm-up burst (era probe, pools), then the measured ones.
                asyncio.run(burst(address, token, 50, 1, args.deadline))
                for connections in args.connections:
                    line = asyncio.run(
                        burst(address, token, args.calls, connections, args.deadline)
                    )
                    print(f"max_concurrent_streams {streams}, {args.calls} calls, {line}")
                stop(gateway)
        finally:
            for proc in procs:
                stop(proc)


if __name__ == "__main__":
    main()
