"""Live-view tests' subscribers (their stand-in: `live_standin`, tests/support/live_standin.py).

`NodeSubscriber` runs a real client (tests/live/live_client.mjs: graphql-sse, or Apollo Client
over multipart HTTP) and reads its events line by line; `SseReader` reads the same stream with
aiohttp, for the checks that need no particular client. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, ClientSession, ClientTimeout

from tests.support.node_tools import ensure_node_modules, require_executable

LIVE_DIR = Path(__file__).resolve().parents[1] / "live"
EVENT_WAIT_S = 20.0


def node_modules() -> Path:
    """tests/live's Node packages (graphql-sse, Apollo Client), installed from its lock file."""
    require_executable("node", "install Node.js 20+ (the subscription clients run in Node)")
    return ensure_node_modules(LIVE_DIR)


@dataclass
class NodeSubscriber:
    """One subscription through a real client; `next()` is its next event (a dict)."""

    process: asyncio.subprocess.Process
    events: list[dict[str, Any]] = field(default_factory=list)

    async def next(self, within_s: float = EVENT_WAIT_S) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within_s)
        if not line:
            assert self.process.stderr is not None
            stderr = (await self.process.stderr.read()).decode(errors="replace")
            raise AssertionError(f"the client exited without another event:\n{stderr[-2000:]}")
        event: dict[str, Any] = json.loads(line)
        self.events.append(event)
        return event

    async def until(
        self, matches: Callable[[dict[str, Any]], bool], within_s: float = EVENT_WAIT_S
    ) -> dict[str, Any]:
        """The first event from now that `matches` (others are kept in `events`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            event = await self.next(max(0.01, deadline - loop.time()))
            if matches(event):
                return event

    async def hang_up(self) -> None:
        """Close the client's stdin: it exits, dropping its connection."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), EVENT_WAIT_S)


@contextlib.asynccontextmanager
async def node_subscriber(
    mode: str, url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> AsyncIterator[NodeSubscriber]:
    """`mode` is `sse` (graphql-sse) or `apollo` (Apollo Client, multipart HTTP)."""
    modules = node_modules()
    process = await asyncio.create_subprocess_exec(
        require_executable("node", "install Node.js 20+"),
        str(LIVE_DIR / "live_client.mjs"),
        mode,
        url,
        token,
        query,
        json.dumps(variables or {}),
        cwd=modules.parent,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    subscriber = NodeSubscriber(process)
    try:
        yield subscriber
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@dataclass
class SseReader:
    """A subscription read as raw SSE with aiohttp: `next()` is the next `next` event's data."""

    response: ClientResponse

    async def next(self, within_s: float = EVENT_WAIT_S) -> dict[str, Any] | None:
        """The next result, or None when the stream completed."""
        event = data = None
        async with asyncio.timeout(within_s):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return None
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = line.removeprefix("data: ")
                elif not line and event is not None:
                    if event == "complete":
                        return None
                    assert data is not None
                    result: dict[str, Any] = json.loads(data)
                    return result


@contextlib.asynccontextmanager
async def sse_subscription(
    url: str, query: str, headers: dict[str, str], variables: dict[str, Any] | None = None
) -> AsyncIterator[SseReader]:
    """One subscription over SSE (POST, `Accept: text/event-stream`)."""
    async with (
        ClientSession(timeout=ClientTimeout(total=None, sock_read=EVENT_WAIT_S)) as session,
        session.post(
            url,
            json={"query": query, "variables": variables or {}},
            headers={**headers, "Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        try:
            yield SseReader(response)
        finally:
            response.close()  # hang up: the connection is dropped, not kept for reuse


def metric(text: str, name: str) -> float:
    """A sample's value in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
