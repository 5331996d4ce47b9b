"""`serve --workers N`: N gateway processes sharing the HTTP and gRPC ports, under one master.

- **Processes.** Each worker is a fresh interpreter (multiprocessing's `spawn`) running
  `run_gateway` as a single `serve` would: its own event loop, upstream pool, caches and gRPC
  server. Nothing crosses from the master but the validated settings, so no event loop, socket
  pool or grpcio state is ever forked (grpcio is not fork-safe once imported).
- **Ports.** Shared with SO_REUSEPORT: each worker binds its own listening sockets and the kernel
  spreads new connections over them. grpcio cannot serve a listening socket handed to it, so a
  master accepting on one socket for all could not share the gRPC port anyway. The master first
  checks each port is free, then holds it bound (never listening) with SO_REUSEPORT for its whole
  life: port 0 resolves once for every worker, and nothing else takes the port while a worker
  restarts.
- **Metrics.** prometheus_client's multiprocess mode, in a directory the master makes (and
  removes at exit) and names in `PROMETHEUS_MULTIPROC_DIR` for the workers: a scrape answered by
  any worker shows the whole group (core/metrics.py).
- **Control.** A pipe per worker: the worker says `ready` once both faces listen; the master says
  `stop` (graceful) or `now`. A worker whose pipe closes (the master died) stops gracefully.
- **Master.** SIGTERM or SIGINT: every worker stops gracefully, a second signal makes them stop at
  once; the master waits (at most drain + grace + a margin, then SIGKILL) and exits 0 when every
  worker stopped cleanly. A worker that exits while the master serves (a crash, SIGKILL, the OOM
  killer) is restarted: at once if it had served a while, else after a pause that doubles while
  it keeps dying. A worker that dies before its first `ready` at start stops the whole group.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final

from prometheus_client.multiprocess import mark_process_dead

from aibridge_graphql.core.metrics import MULTIPROCESS_DIR_ENV
from aibridge_graphql.server.jsonlog import configure_logging
from aibridge_graphql.server.shutdown import ShutdownSignals
from aibridge_graphql.settings import Settings

logger = logging.getLogger("aibridge_graphql.workers")

READY: Final = b"ready"
STOP: Final = b"stop"
NOW: Final = b"now"
# What a worker's stop may take beyond the drain delay and the grace (cancelled work unwinding,
# pools closing, the interpreter exiting) before the master kills it.
STOP_MARGIN_S: Final = 10.0
# A worker that served this long before it died is restarted at once; one dying sooner waits
# FIRST_BACKOFF_S, doubling up to MAX_BACKOFF_S, so a crash loop does not spin the CPU.
STABLE_AFTER_S: Final = 10.0
FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 10.0
# Exit status of the master when a worker failed to start or did not stop cleanly.
FAILED: Final = 1


def restart_delay(previous: float, lived: float) -> float:
    """Seconds before restarting a worker that died after `lived` seconds; `previous`: the
    delay of its slot's last restart."""
    if lived >= STABLE_AFTER_S:
        return 0.0
    return min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, previous * 2))


def describe_exit(code: int | None) -> str:
    """`exit code 1`, or `signal SIGKILL` for a worker killed by a signal."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


# ---------------------------------------------------------------------------------------------
# The ports: checked free, then held with SO_REUSEPORT for the workers to share.


def _passive_addresses(host: str, port: int) -> list[tuple[socket.AddressFamily, tuple[str, int]]]:
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )
    seen: list[tuple[socket.AddressFamily, tuple[str, int]]] = []
    for family, _, _, _, address in infos:
        entry = (family, (str(address[0]), int(address[1])))
        if entry not in seen:
            seen.append(entry)
    return seen


def _check_free(family: socket.AddressFamily, address: tuple[str, int]) -> None:
    """Raise EADDRINUSE when something listens there, even with SO_REUSEPORT (which would
    otherwise let this group share a port silently with another gateway)."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the servers bind: a port left in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"port {address[1]} is in use") from None
            raise


def reserve_port(host: str, port: int) -> tuple[list[socket.socket], int]:
    """Hold `host:port` (0: a free port) for the workers: bound with SO_REUSEPORT, not listening,
    so connections only ever reach the workers. The sockets and the port."""
    held: list[socket.socket] = []
    try:
        for family, address in _passive_addresses(host, port):
            address = (address[0], port)
            if port != 0:
                _check_free(family, address)
            sock = socket.socket(family, socket.SOCK_STREAM)
            held.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            # Every address of the host on the same port, as the servers bind them.
            port = int(sock.getsockname()[1])
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held, port


@dataclass
class Reserved:
    """The held ports and the settings that name them (port 0 resolved)."""

    settings: Settings
    sockets: list[socket.socket]

    def close(self) -> None:
        """Release the ports."""
        for sock in self.sockets:
            sock.close()


def reserve_ports(settings: Settings) -> Reserved:
    """Hold the HTTP port and (when the face is on) the gRPC port; `OSError` when one is taken."""
    sockets, http = reserve_port(settings.host, settings.port)
    update = {"port": http}
    if settings.grpc_enabled:
        try:
            grpc_sockets, grpc = reserve_port(settings.host, settings.grpc_port)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        sockets += grpc_sockets
        update["grpc_port"] = grpc
    return Reserved(settings.model_copy(update=update), sockets)


@contextlib.contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh directory for the workers' metric files, named in `PROMETHEUS_MULTIPROC_DIR`
    for the processes started inside (and removed after: the values are the group's, not the
    next run's)."""
    path = tempfile.mkdtemp(prefix="aibridge-metrics-")
    previous = os.environ.get(MULTIPROCESS_DIR_ENV)
    os.environ[MULTIPROCESS_DIR_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        else:
            os.environ[MULTIPROCESS_DIR_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A worker.


@dataclass
class PipeSupervisor:
    """The worker's side of its pipe to the master (`serving.Supervisor`)."""

    control: Connection

    def ready(self) -> None:
        """Tell the master both faces listen."""
        # A master already gone: the pipe's end of file stops this worker (`follow`).
        with contextlib.suppress(OSError):
            self.control.send_bytes(READY)

    @contextlib.contextmanager
    def follow(self, signals: ShutdownSignals) -> Iterator[None]:
        """While inside, the master's `stop`/`now`, or its death, reaches `signals`."""
        loop = asyncio.get_running_loop()
        fd = self.control.fileno()

        def readable() -> None:
            try:
                message = self.control.recv_bytes()
            except (EOFError, OSError):
                loop.remove_reader(fd)
                signals.ask(urgent=False, why="the master is gone")
                return
            if message in (STOP, NOW):
                signals.ask(urgent=message == NOW, why="the master asks")

        loop.add_reader(fd, readable)
        try:
            yield
        finally:
            loop.remove_reader(fd)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process starts from (pickled to it): the settings, ports resolved."""

    settings: Settings
    index: int


def worker_main(spec: WorkerSpec, control: Connection) -> None:
    """A worker process: one `run_gateway` on the shared ports, until the master says stop."""
    # Ctrl-C reaches the whole process group; the master turns it into a stop for everyone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = spec.settings
    level = logging.getLevelName(settings.log_level.upper())  # checked by the master
    configure_logging(level, settings.log_format, with_pid=True)
    from aibridge_graphql.core.pricing import pricer_from_settings
    from aibridge_graphql.server.serving import run_gateway

    try:
        asyncio.run(run_gateway(settings, pricer_from_settings(settings), PipeSupervisor(control)))
    except OSError as error:
        logger.error("worker %d cannot listen on %s: %s", spec.index, settings.host, error)
        raise SystemExit(FAILED) from None


# ---------------------------------------------------------------------------------------------
# The master.


@dataclass
class Worker:
    """One started worker process, as the master sees it."""

    index: int
    process: BaseProcess
    control: Connection
    started: float = field(default_factory=time.monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        """The worker's process id (it has started)."""
        assert self.process.pid is not None
        return self.process.pid

    def tell(self, message: bytes) -> None:
        """Send `message` unless the worker is gone."""
        if not self.gone.is_set():
            with contextlib.suppress(OSError):
                self.control.send_bytes(message)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    # An ignored signal stays ignored across exec, and Python then keeps it so: a Ctrl-C while a
    # worker is still importing does not interrupt it (the master stops it instead).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def _first(*waits: asyncio.Future[object], seconds: float | None = None) -> None:
    """Wait until one of `waits` is done (or `seconds` pass); cancel the others."""
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


def _on(event: asyncio.Event) -> asyncio.Future[object]:
    return asyncio.ensure_future(event.wait())


class Master:
    """Starts `count` workers on the reserved ports, restarts those that die, stops them all."""

    def __init__(self, settings: Settings, count: int, metrics_dir: str) -> None:
        self.settings = settings
        self.count = count
        self.metrics_dir = metrics_dir
        self.workers: dict[int, Worker] = {}
        self._delays: dict[int, float] = {}
        self._restarts: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._context = multiprocessing.get_context("spawn")

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit status (0: every worker started and stopped
        cleanly)."""
        with ShutdownSignals().installed() as signals:
            logger.info("starting %d workers", self.count)
            for index in range(self.count):
                self._start(index)
            if not await self._started(signals):
                await self._stop_all(signals)
                return FAILED
            if not signals.requested.is_set():
                self._announce()
                await self._supervise(signals)
            return await self._stop_all(signals)

    def _announce(self) -> None:
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        # The lines a single `serve` prints, once every worker listens.
        print(f"Gateway listening on http://{host}:{self.settings.port}/graphql", flush=True)
        if self.settings.grpc_enabled:
            print(f"gRPC listening on {host}:{self.settings.grpc_port}", flush=True)

    def _start(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=worker_main,
            args=(WorkerSpec(self.settings, index), theirs),
            name=f"aibridge-graphql worker {index}",
        )
        with _sigint_ignored():
            process.start()
        theirs.close()  # the worker's end: held by the worker alone, so its death closes the pipe
        worker = Worker(index, process, ours)
        self.workers[index] = worker
        loop.add_reader(process.sentinel, self._exited, worker)
        loop.add_reader(ours.fileno(), self._message, worker)
        logger.info(
            "worker %d started (pid %d)",
            index,
            worker.pid,
            extra={"worker": index, "worker_pid": worker.pid},
        )

    def _message(self, worker: Worker) -> None:
        try:
            message = worker.control.recv_bytes()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(worker.control.fileno())
            return
        if message == READY and not worker.ready.is_set():
            worker.ready.set()
            self._changed.set()
            logger.info(
                "worker %d ready (pid %d)",
                worker.index,
                worker.pid,
                extra={"worker": worker.index, "worker_pid": worker.pid},
            )

    def _exited(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.process.sentinel)
        loop.remove_reader(worker.control.fileno())
        worker.process.join()  # it has exited: this only reaps it
        worker.control.close()
        # Its in-flight gauge is no longer the group's; its counters stay in the totals.
        mark_process_dead(worker.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        worker.gone.set()
        self._changed.set()

    async def _started(self, signals: ShutdownSignals) -> bool:
        """Wait until every worker is ready (True) or one died first (False), or a stop."""
        while not signals.requested.is_set():
            workers = list(self.workers.values())
            failed = [w for w in workers if w.gone.is_set()]
            if failed:
                worker = failed[0]
                logger.error(
                    "worker %d exited before it was ready (%s); stopping",
                    worker.index,
                    describe_exit(worker.process.exitcode),
                )
                return False
            if all(w.ready.is_set() for w in workers):
                return True
            self._changed.clear()
            await _first(_on(self._changed), _on(signals.requested))
        return True

    async def _supervise(self, signals: ShutdownSignals) -> None:
        """Restart each worker that exits, until a stop is asked for."""
        while not signals.requested.is_set():
            for worker in list(self.workers.values()):
                if worker.gone.is_set():
                    del self.workers[worker.index]
                    self._schedule_restart(worker, signals)
            self._changed.clear()
            await _first(_on(self._changed), _on(signals.requested))

    def _schedule_restart(self, worker: Worker, signals: ShutdownSignals) -> None:
        lived = time.monotonic() - worker.started
        delay = restart_delay(self._delays.get(worker.index, 0.0), lived)
        self._delays[worker.index] = delay
        logger.warning(
            "worker %d (pid %d) exited (%s) after %.1fs; restarting it in %gs",
            worker.index,
            worker.pid,
            describe_exit(worker.process.exitcode),
            lived,
            delay,
            extra={"worker": worker.index, "worker_pid": worker.pid},
        )
        task = asyncio.create_task(self._restart(worker.index, delay, signals))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, index: int, delay: float, signals: ShutdownSignals) -> None:
        if delay:
            await _first(_on(signals.requested), seconds=delay)
        if not signals.requested.is_set():
            self._start(index)

    async def _stop_all(self, signals: ShutdownSignals) -> int:
        """Ask every worker to stop, wait for them (bounded), kill what is left; the status."""
        for task in list(self._restarts):
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        workers = list(self.workers.values())
        logger.info("stopping %d workers", sum(not w.gone.is_set() for w in workers))
        urgent = signals.urgent.is_set()
        for worker in workers:
            worker.tell(NOW if urgent else STOP)
        settings = self.settings
        deadline = time.monotonic() + (
            settings.shutdown_drain_delay + settings.shutdown_grace + STOP_MARGIN_S
        )
        all_gone: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(w.gone.wait() for w in workers))
        )
        hurry = _on(signals.urgent)
        try:
            while not all_gone.done() and (left := deadline - time.monotonic()) > 0:
                waits = {all_gone} if urgent else {all_gone, hurry}
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if not urgent and hurry.done():
                    urgent = True
                    for worker in workers:
                        worker.tell(NOW)
        finally:
            all_gone.cancel()
            hurry.cancel()
            await asyncio.gather(all_gone, hurry, return_exceptions=True)
        return self._reap(workers)

    def _reap(self, workers: list[Worker]) -> int:
        status = 0
        for worker in workers:
            if not worker.gone.is_set():
                logger.warning("worker %d (pid %d) did not stop in time: killed", *_ids(worker))
                worker.process.kill()
                worker.process.join()
                self._exited(worker)
            code = worker.process.exitcode
            if code != 0:
                logger.warning(
                    "worker %d (pid %d) stopped with %s", *_ids(worker), describe_exit(code)
                )
                status = FAILED
        logger.info("all workers stopped")
        return status


def _ids(worker: Worker) -> tuple[int, int]:
    return worker.index, worker.pid


def run_workers(settings: Settings, count: int) -> int:
    """Serve with `count` worker processes until SIGTERM/SIGINT; the master's exit status.

    Raises `OSError` (before any worker starts) when a port is taken."""
    reserved = reserve_ports(settings)
    try:
        with metrics_directory() as metrics_dir:
            return asyncio.run(Master(reserved.settings, count, metrics_dir).run())
    finally:
        reserved.close()
