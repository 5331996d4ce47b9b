"""`python -m bench.upstream_call`: the client's CPU per upstream GET, against raw aiohttp.

A local aiohttp server (its own process, pinned to CPU 1) answers a ~300 B and a ~60 KB JSON
body; each mode runs in a fresh process pinned to CPU 0 and makes `-n` GETs sequentially and
`-n` at concurrency 16, timing only its own CPU (`time.process_time`), after a warm-up. Modes:

- `client`: `UpstreamClient.get_bytes` with its default pool (the production path);
- `httpx`: the same client over httpx's API (`transport=pooled_transport(...)`, httpx_aiohttp);
- `lean`: the same client over the leanest httpx transport over aiohttp we could write;
- `raw`: `aiohttp.ClientSession.get` with the same headers, body read in chunks.

Runs are interleaved (`--repeat` rounds over the modes) and their median and minimum printed; on
a shared machine they are noisy (10-20%). `--baseline SRC` adds `client` as another source tree
has it (before/after in one run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from statistics import median

import aiohttp
import httpx
import yarl
from aiohttp import web

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient, pooled_transport
from aibridge_graphql.upstream.requests import UpstreamRequest

MODES = ("client", "httpx", "lean", "raw")
BODIES = {
    "/models": json.dumps([f"model-{i:03d}-some-name" for i in range(12)]).encode(),
    "/sessions": json.dumps(
        [{"id": i, "name": f"n{i:06d}" * 3, "v": i} for i in range(1100)]
    ).encode(),
}
TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - not a secret
HTTPX_HEADERS = {
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"python-httpx/{httpx.__version__}",
}


def serve(port: int) -> None:
    """The upstream: fixed JSON bodies under the default API prefix."""

    def answer(body: bytes) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        return handler

    app = web.Application()
    for path, body in BODIES.items():
        app.router.add_get("/api/v2/ai-gateway" + path, answer(body))
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _session(settings: Settings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections, limit_per_host=0, keepalive_timeout=5.0
    )
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk

    async def aclose(self) -> None:
        self._response.release()


class LeanTransport(httpx.AsyncBaseTransport):
    """httpx over aiohttp without httpx_aiohttp's generic conversions: one session, one timeout,
    URLs parsed once, headers passed as pairs, the body as aiohttp buffers it (no re-chunking).
    Error translation is left out: it costs nothing unless a call fails."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
            connect=settings.pool_timeout,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """One GET through the session; the body streams from aiohttp's buffer."""
        if self._client is None:
            self._client = _session(self._settings)
        text = str(request.url)
        url = self._urls.get(text)
        if url is None:
            url = self._urls[text] = yarl.URL(text)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        response = await self._client.get(
            url,
            headers=headers,
            allow_redirects=False,
            auto_decompress=False,  # httpx decodes, as with httpx_aiohttp
            timeout=self._timeout,
        )
        return httpx.Response(response.status, headers=response.raw_headers, stream=_Body(response))

    async def aclose(self) -> None:
        """Close the session."""
        if self._client is not None:
            await self._client.close()


async def run(mode: str, url: str, path: str, calls: int, concurrency: int) -> float:
    """CPU microseconds per call of `mode` (after a warm-up)."""
    settings = Settings(upstream_url=url)
    request = UpstreamRequest.make(path, {"limit": 25})
    call: Callable[[], Awaitable[bytes]]
    close: Callable[[], Awaitable[None]]
    if mode == "raw":
        session = _session(settings)
        target = yarl.URL(settings.api_base_url.rstrip("/") + request.url_path)
        headers = {**HTTPX_HEADERS, "Accept": "application/json", "Coder-Session-Token": TOKEN}
        timeout = aiohttp.ClientTimeout(sock_connect=3, sock_read=10, connect=5)

        async def raw() -> bytes:
            async with session.get(
                target, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                return b"".join([chunk async for chunk in response.content.iter_any()])

        call, close = raw, session.close
    else:
        transport: httpx.AsyncBaseTransport | None = None
        if mode == "httpx":
            transport = pooled_transport(settings)
        elif mode == "lean":
            transport = LeanTransport(settings)
        client = UpstreamClient(settings, transport=transport)
        credentials = Credentials(TOKEN)

        def get() -> Awaitable[bytes]:
            return client.get_bytes(request, credentials)

        call, close = get, client.aclose

    async def batch(total: int) -> None:
        async def worker() -> None:
            for _ in range(total // concurrency):
                await call()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    assert await call() == BODIES[path]
    await batch(max(20 * concurrency, 400))  # connections, caches
    started = time.process_time()
    await batch(calls)
    cpu = time.process_time() - started
    await close()
    return cpu / calls * 1e6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated")
    parser.add_argument("-n", type=int, default=5000, help="calls per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also time `client` from this source tree (e.g. `git archive REV src` unpacked)",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # mode,url,path,concurrency
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.one:
        mode, url, path, concurrency = args.one.split(",")
        print(asyncio.run(run(mode, url, path, args.n, int(concurrency))))
        return
    port = _free_port()
    me = [sys.executable, "-m", "bench.upstream_call"]
    server = subprocess.Popen(["taskset", "-c", "1", *me, "--serve", str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        modes = args.modes.split(",") + (["baseline"] if args.baseline else [])

        def once(mode: str, path: str, concurrency: int) -> float:
            env = dict(os.environ)
            if mode == "baseline":  # the client of another source tree, first on the path
                mode, env["PYTHONPATH"] = "client", args.baseline
            one = f"{mode},{url},{path},{concurrency}"
            command = ["taskset", "-c", "0", *me, "--one", one, "-n", str(args.n)]
            return float(subprocess.run(command, check=True, capture_output=True, env=env).stdout)

        print("CPU us per GET, client process only: median (min) of runs, interleaved")
        for path in BODIES:
            for concurrency in (1, 16):
                runs: dict[str, list[float]] = {mode: [] for mode in modes}
                for _ in range(args.repeat):  # round-robin, so load from others hits all alike
                    for mode in modes:
                        runs[mode].append(once(mode, path, concurrency))
                raw = median(runs["raw"]) if "raw" in runs else None
                cells = [
                    f"{mode} {median(us):4.0f} ({min(us):4.0f})"
                    + (f" {median(us) / raw:.2f}x raw" if raw else "")
                    for mode, us in runs.items()
                ]
                size = len(BODIES[path])
                print(f"{size:>6} B c{concurrency:<2}  " + "  ".join(cells), flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
