"""`python -m bench.huge_bodies`: gateway RSS when every thread page upstream is 50 MB.

Seeds a stand-in and starts it and the gateway (default settings, so the default body cap) as
separate processes; between them a loopback hop forwards every call except `GET /sessions/{id}`,
which it answers with a 50 MB JSON body (chunked, as fast as the gateway reads). Runs the README's
dashboard sequentially and then several at once, and prints the gateway's RSS before, its peak
(VmHWM) and after, with what each dashboard answered (partial data and error codes).
Done-when (issue 7): the dashboards answer, and RSS afterwards is under 500 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from aiohttp import ClientSession, web

from aibridge_graphql.server.graphiql import EXAMPLE_QUERY
from aibridge_graphql.standin.tokens import generate_token
from bench.harness import API, Proc, cli_path, free_port, rss_mb, seed, spawn, stop, wait_ready
from bench.report import add_results_option, recorded

HUGE = 50 * 1024 * 1024
CHUNK = 256 * 1024
RSS_LIMIT_MB = 500.0
# A session's threads page under either era's prefix (the gateway detects which one answers).
_THREADS = re.compile(r"/api/v2/(?:aibridge|ai-gateway)/sessions/[^/]+")
DASHBOARD = EXAMPLE_QUERY


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class HugeHop:
    """The loopback hop: 50 MB for every threads page, the stand-in's answer for the rest."""

    def __init__(self, standin_url: str) -> None:
        self.standin_url = standin_url
        self.url = ""
        self.thread_calls = 0
        self.sent = 0

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        self.thread_calls += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"threads": [')
        chunk = b" " * CHUNK
        with contextlib.suppress(ConnectionError):
            for _ in range(HUGE // CHUNK):
                await response.write(chunk)
                self.sent += CHUNK
            await response.write(b"]}")
        return response

    @contextlib.contextmanager
    def running(self) -> Iterator[HugeHop]:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        stop_event: list[asyncio.Event] = []

        async def serve() -> None:
            async with ClientSession() as session:

                async def forward(request: web.Request) -> web.StreamResponse:
                    if _THREADS.fullmatch(request.path):
                        return await self._huge(request)
                    headers = {
                        k: v
                        for k, v in request.headers.items()
                        if k.lower() == "coder-session-token"
                    }
                    url = self.standin_url + request.path_qs
                    async with session.get(url, headers=headers) as answer:
                        return web.Response(
                            status=answer.status,
                            body=await answer.read(),
                            content_type=answer.content_type,
                        )

                app = web.Application()
                app.router.add_get("/{tail:.*}", forward)
                runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
                await runner.setup()
                port = free_port()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                self.url = f"http://127.0.0.1:{port}"
                stop_event.append(asyncio.Event())
                ready.set()
                await stop_event[0].wait()
                await runner.cleanup()

        thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
        thread.start()
        if not ready.wait(30):
            raise RuntimeError("the hop did not start")
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(stop_event[0].set)
            thread.join(30)


def summarize(body: dict[str, Any]) -> str:
    nodes = (body.get("data") or {}).get("sessions", {}).get("nodes") or []
    with_threads = sum(1 for node in nodes if node.get("threads") is not None)
    codes = Counter(
        "/".join(str(v) for k, v in e.get("extensions", {}).items() if k in ("code", "reason"))
        for e in body.get("errors", [])
    )
    return f"{len(nodes)} sessions ({with_threads} with threads), errors {dict(codes)}"


async def dashboards(url: str, headers: dict[str, str], concurrent: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:

        async def one() -> dict[str, Any]:
            response = await client.post("/graphql", json={"query": DASHBOARD})
            body: dict[str, Any] = response.json()
            return body

        return list(await asyncio.gather(*(one() for _ in range(concurrent))))


def run(args: argparse.Namespace) -> bool:
    env = {**os.environ, "AIBRIDGE_LOG_LEVEL": "ERROR"}
    admin_token = generate_token()
    auth = {"Coder-Session-Token": admin_token}
    cli = cli_path()
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="aibridge-huge-") as tmp:
        work = Path(tmp)
        db = work / "standin.db"
        seed(db, 2000, admin_token)
        try:
            standin_port, gateway_port = free_port(), free_port()
            standin_url = f"http://127.0.0.1:{standin_port}"
            standin = spawn(
                "stand-in",
                [
                    cli,
                    "standin",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(standin_port),
                    "--db",
                    str(db),
                ],
                work / "standin.log",
                None,
                env,
            )
            procs.append(standin)
            wait_ready(standin, f"{standin_url}{API}/models", auth)
            with HugeHop(standin_url).running() as hop:
                gateway = spawn(
                    "gateway",
                    [
                        cli,
                        "serve",
                        "--upstream",
                        hop.url,
                        "--port",
                        str(gateway_port),
                        "--grpc-port",
                        "0",
                    ],
                    work / "gateway.log",
                    None,
                    env,
                )
                procs.append(gateway)
                gateway_url = f"http://127.0.0.1:{gateway_port}"
                wait_ready(gateway, f"{gateway_url}/readyz")
                pid = gateway.popen.pid
                before = rss_mb(pid)
                print(f"gateway RSS before: {before:.0f} MB (cap: the default setting)")
                for round_ in range(args.rounds):
                    started = time.perf_counter()
                    (body,) = asyncio.run(dashboards(gateway_url, auth, 1))
                    print(
                        f"dashboard {round_ + 1}: {time.perf_counter() - started:.2f}s, "
                        f"{summarize(body)}; RSS {rss_mb(pid):.0f} MB"
                    )
                bodies: list[dict[str, Any]] = []
                for batch in range(args.batches):
                    started = time.perf_counter()
                    found = asyncio.run(dashboards(gateway_url, auth, args.concurrent))
                    bodies.extend(found)
                    print(
                        f"batch {batch + 1}: {args.concurrent} dashboards at once, "
                        f"{time.perf_counter() - started:.2f}s, first: {summarize(found[0])}; "
                        f"RSS {rss_mb(pid):.0f} MB"
                    )
                after, peak = rss_mb(pid), peak_rss_mb(pid)
                print(
                    f"hop: {hop.thread_calls} thread pages asked, {hop.sent / 2**20:.0f} MB sent "
                    f"(of {hop.thread_calls * HUGE / 2**20:.0f} MB offered)"
                )
                print(
                    f"gateway RSS after: {after:.0f} MB, peak {peak:.0f} MB "
                    f"(limit {RSS_LIMIT_MB:.0f} MB)"
                )
                answered = all(b.get("data", {}).get("sessions") for b in bodies)
                if hop.thread_calls == 0:
                    print("the hop answered no thread page: nothing was measured")
                    return False
                return answered and after < RSS_LIMIT_MB
        finally:
            for proc in reversed(procs):
                stop(proc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.huge_bodies", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="sequential dashboards")
    parser.add_argument("--concurrent", type=int, default=4, help="dashboards at once, after")
    parser.add_argument("--batches", type=int, default=3, help="batches of concurrent dashboards")
    add_results_option(parser, "huge_bodies")
    args = parser.parse_args(argv)
    with recorded(args.results, "bench.huge_bodies", argv):
        ok = run(args)
        print("Met: partial data, RSS under the limit." if ok else "MISSED (see above).")


if __name__ == "__main__":
    main()
