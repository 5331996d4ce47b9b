"""An in-memory replay of the stand-in, so a benchmark measures the gateways and not the stand-in.

`python -m bench.replay --upstream URL --port N` answers every `GET`: the first time a distinct
request (path and query string, per caller token) is asked for, it is fetched from `URL` and kept;
after that it is answered from memory. The stand-in costs ~5 ms of CPU for `/models` and ~100 ms
for a 20-session page, which would otherwise dominate what a gateway costs.

It is a raw asyncio protocol (HTTP/1.1 keep-alive, GET only, no request bodies), far cheaper than an
aiohttp app. It counts every request it answers; `GET /__replay/calls` returns the total as JSON
(that request itself is not counted), so a caller can count a gateway's upstream calls per query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

CALLS_PATH = "/__replay/calls"
TOKEN_HEADERS = (b"coder-session-token", b"authorization")
MAX_HEAD_BYTES = 65_536


@dataclass(frozen=True)
class Answer:
    """A recorded upstream answer, kept as the ready-to-send head and body."""

    head: bytes
    body: bytes


@dataclass
class Replay:
    """The recorded answers and the request counter, shared by all connections."""

    upstream: str
    answers: dict[tuple[bytes, bytes], Answer] = field(default_factory=dict)
    pending: dict[tuple[bytes, bytes], asyncio.Future[Answer]] = field(default_factory=dict)
    calls: int = 0
    fetched: int = 0

    async def answer(self, target: bytes, token_header: tuple[bytes, bytes] | None) -> Answer:
        """The recorded answer for this request, fetching it once when it is new."""
        key = (target, token_header[1] if token_header else b"")
        known = self.answers.get(key)
        if known is not None:
            return known
        waiting = self.pending.get(key)
        if waiting is not None:  # fetched by a concurrent request right now: share its answer
            return await waiting
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        try:
            answer = await asyncio.to_thread(self._fetch, target, token_header)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self.pending[key]
        self.answers[key] = answer
        self.fetched += 1
        future.set_result(answer)
        return answer

    def _fetch(self, target: bytes, token_header: tuple[bytes, bytes] | None) -> Answer:
        headers = {token_header[0].decode(): token_header[1].decode()} if token_header else {}
        # The scheme is checked in `serve` (http or https only).
        request = urllib.request.Request(self.upstream + target.decode(), headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                status, body = response.status, response.read()
                content_type = response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as error:  # 4xx/5xx are answers too: replay them as sent
            status, body = error.code, error.read()
            content_type = error.headers.get("Content-Type", "application/json")
        return Answer(_head(status, content_type, len(body)), body)


def _head(status: int, content_type: str, length: int) -> bytes:
    return (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Replayed'}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode("latin-1")


class ReplayProtocol(asyncio.Protocol):
    """One keep-alive connection. A recorded answer is written straight from `data_received`
    (no task per request); only a request not yet recorded starts a task, and requests behind it
    wait in order."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.backlog: list[bytes] = []
        self.fetching: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.fetching is not None:
            self.fetching.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES and self.transport is not None:
                    self.transport.close()
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            if self.fetching is not None:
                self.backlog.append(head)
            else:
                self._handle(head)

    def _handle(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        target = parts[1] if len(parts) == 3 else b"/"
        if target == CALLS_PATH.encode():
            body = json.dumps({"calls": self.replay.calls}).encode()
            self._write(_head(200, "application/json", len(body)) + body)
            return
        token: tuple[bytes, bytes] | None = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name in TOKEN_HEADERS:
                token = (name, value.strip())
                break
        self.replay.calls += 1
        known = self.replay.answers.get((target, token[1] if token else b""))
        if known is not None:
            self._write(known.head + known.body)
            return
        self.fetching = asyncio.get_running_loop().create_task(self._fetch(target, token))

    async def _fetch(self, target: bytes, token: tuple[bytes, bytes] | None) -> None:
        try:
            answer = await self.replay.answer(target, token)
        except Exception:  # the stand-in is unreachable: a 502, as a proxy would say
            self._write(_head(502, "text/plain", 0))
        else:
            self._write(answer.head + answer.body)
        self.fetching = None
        while self.backlog and self.fetching is None:
            self._handle(self.backlog.pop(0))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def start_replay(
    upstream: str, host: str = "127.0.0.1", port: int = 0
) -> tuple[asyncio.Server, Replay, int]:
    """Start a replay of `upstream` on `host:port` (0: any free port); return it and its port."""
    if urllib.parse.urlsplit(upstream).scheme not in ("http", "https"):
        raise ValueError(f"the upstream must be an http(s) URL, not {upstream!r}")
    replay = Replay(upstream.rstrip("/"))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ReplayProtocol(replay), host, port, backlog=1024)
    return server, replay, int(server.sockets[0].getsockname()[1])


async def serve(upstream: str, host: str, port: int) -> None:
    """Serve the replay of `upstream` on `host:port` until cancelled; prints the bound port."""
    server, _, bound = await start_replay(upstream, host, port)
    print(f"replay of {upstream} listening on http://{host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__)
    parser.add_argument("--upstream", required=True, help="the stand-in's base URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.upstream, args.host, args.port))


if __name__ == "__main__":
    main()
