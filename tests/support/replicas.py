"""Gateway replicas (`serve` processes) behind HAProxy, and a bounded load through the balancer
that records each request's outcome and the replica that answered it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.haproxy import REPLICA_HEADER, HAProxy
from tests.support.serve_process import WAIT_S, ServeProcess, spawn_serve


@dataclass
class Replicas:
    """Named `serve` processes before one upstream; each is killed, if still running, when
    `stack` closes."""

    upstream: str
    env: Mapping[str, str]
    stack: contextlib.ExitStack
    running: dict[str, ServeProcess] = field(default_factory=dict)

    def spawn(self, name: str) -> ServeProcess:
        """A new `serve` on free ports, to be replica `name` once it listens."""
        process = spawn_serve(self.upstream, dict(self.env))
        self.stack.callback(process.kill)
        return process

    def start(self, names: Iterable[str]) -> None:
        """Start these replicas side by side; return once every one listens."""
        spawned = {name: self.spawn(name) for name in names}
        for name, process in spawned.items():
            self.running[name] = process.wait_listening()

    def port(self, name: str) -> int:
        return int(self.running[name].base_url.rsplit(":", 1)[1])

    def replace(self, name: str, new: ServeProcess, balancer: HAProxy) -> None:
        """`new` as replica `name` (the old one has exited), once it listens and HAProxy has
        it UP."""
        self.running[name] = new.wait_listening()
        balancer.point(name, self.port(name))
        balancer.wait_state(name, "UP")

    def heal(self, balancer: HAProxy) -> None:
        """Replace every replica whose process has exited."""
        for name, process in list(self.running.items()):
            if process.process.poll() is not None:
                self.replace(name, self.spawn(name), balancer)


@dataclass(frozen=True)
class Outcome:
    """One request through the balancer: when it was sent and answered (monotonic clock), its
    HTTP status or the transport error's name, and the replica HAProxy gave it to."""

    request_id: str
    started: float
    ended: float
    status: int | str
    replica: str


@dataclass
class Load:
    """`workers` clients sending `body` to `url` in a loop, on a thread of their own, until
    stopped, `limit` requests in all, or `within` seconds."""

    url: str
    body: dict[str, Any]
    headers: Mapping[str, str]
    workers: int = 4
    limit: int = 20_000
    within: float = 120.0
    outcomes: list[Outcome] = field(default_factory=list)
    # In every request id: ids stay unique across loads in the logs of one balancer.
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    _stop: threading.Event = field(default_factory=threading.Event)
    _errors: list[BaseException] = field(default_factory=list)

    async def _worker(self, client: httpx.AsyncClient, worker: int, deadline: float) -> None:
        sent = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            if len(self.outcomes) >= self.limit:
                return
            sent += 1
            request_id = f"load-{self.tag}-{worker}-{sent}"
            headers = {"X-Request-Id": request_id}
            started = time.monotonic()
            status: int | str
            try:
                response = await client.post(self.url, json=self.body, headers=headers)
            except httpx.TransportError as error:
                status, replica = type(error).__name__, ""
            else:
                status, replica = response.status_code, response.headers.get(REPLICA_HEADER, "")
            self.outcomes.append(Outcome(request_id, started, time.monotonic(), status, replica))

    async def _run(self) -> None:
        deadline = time.monotonic() + self.within
        limits = httpx.Limits(max_connections=self.workers)
        async with httpx.AsyncClient(headers=dict(self.headers), timeout=30, limits=limits) as c:
            await asyncio.gather(*(self._worker(c, n, deadline) for n in range(self.workers)))

    def _thread(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # re-raised by `running` in the test's thread
            self._errors.append(error)

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        """The load runs while inside; on leaving it stops and every request has its outcome."""
        thread = threading.Thread(target=self._thread, name="load", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(WAIT_S + self.within)
        assert not thread.is_alive(), "the load did not stop"
        if self._errors:
            raise self._errors[0]

    def wait_for(
        self, more: int, since: float = 0.0, replica: str = "", within: float = WAIT_S
    ) -> None:
        """Poll until `more` requests sent after `since` (and answered by `replica`, when
        given) have their outcome (bounded)."""
        deadline = time.monotonic() + within
        while (
            sum(o.started >= since and (not replica or o.replica == replica) for o in self.outcomes)
            < more
        ):
            if self._errors:
                raise self._errors[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {more} requests after {within:g}s")
            if len(self.outcomes) >= self.limit:
                raise AssertionError(f"the load reached its limit of {self.limit} requests")
            time.sleep(0.02)  # between polls only; the loop is bounded by the deadline
