"""`aibridge-graphql demo`: the seeded stand-in and the gateway (both faces) in one process."""

from __future__ import annotations

import contextlib
import errno
import json
import shlex
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from aibridge_graphql.server.graphiql import EXAMPLE_QUERY, PLACEHOLDER_HEADERS, offline_graphiql
from aibridge_graphql.server.serving import (
    Started,
    listen,
    setup_runner,
    shared_serving,
    wait_for_shutdown_signal,
    wait_until_ok,
)
from aibridge_graphql.settings import Settings
from aibridge_graphql.standin.cli import live_note
from aibridge_graphql.standin.eras import ApiEra, era
from aibridge_graphql.standin.spend_data import OrganizationGroups, default_organization_groups
from aibridge_graphql.standin.tokens import UserToken, read_tokens

HOST = "127.0.0.1"

# The README's dashboard query, also what GraphiQL opens on.
FIRST_QUERY = EXAMPLE_QUERY.rstrip("\n")

_ROLE_NOTE = {"owner": "sees everything", "auditor": "sees everything", "member": "sees nothing"}
_ERA_NOTE: dict[ApiEra, str] = {
    "ai-gateway": "Coder's AI Gateway API, mid-2026 on; --api-era sessions for the earlier one",
    "sessions": "Coder's earlier AI Bridge API, with /interceptions",
}


@dataclass(frozen=True)
class DemoOptions:
    """What `demo` was asked for."""

    gateway_port: int
    standin_port: int
    db: Path
    count: int
    seed_value: int
    admin_token: str | None
    api_era: ApiEra = "ai-gateway"
    grpc_port: int = 9090
    # A busy port falls back to a free one (printed) unless the port was asked for explicitly.
    fallback_gateway_port: bool = False
    fallback_standin_port: bool = False
    fallback_grpc_port: bool = False
    # Seconds between the stand-in's live traffic ticks (seeded by seed_value); None: off.
    live_interval: float | None = None


@dataclass(frozen=True)
class Listener:
    """One of the demo's servers, as its messages name it and its port option."""

    what: str
    option: str
    variable: str  # the `make demo` variable


STANDIN = Listener("stand-in", "--standin-port", "STANDIN_PORT")
GATEWAY = Listener("gateway", "--gateway-port", "GATEWAY_PORT")
GRPC = Listener("gRPC face", "--grpc-port", "GRPC_PORT")


@dataclass(frozen=True)
class Running:
    """Where the demo's servers listen."""

    standin: Started
    gateway: Started
    grpc_address: str | None  # `host:port`; None when AIBRIDGE_GRPC_ENABLED=false


class PortBusyError(OSError):
    """A port asked for explicitly is taken."""


class _Listening(Protocol):
    @property
    def port(self) -> int: ...


ListeningT = TypeVar("ListeningT", bound=_Listening)


def prepare_database(options: DemoOptions) -> list[UserToken]:
    """Create and seed the database when empty (as `standin` does); return its users' tokens."""
    from aibridge_graphql.standin.cli import prepare
    from aibridge_graphql.standin.store import open_database

    options.db.parent.mkdir(parents=True, exist_ok=True)
    conn = open_database(options.db)
    try:
        prepare(conn, options.count, options.seed_value, options.admin_token)
        return read_tokens(conn)
    finally:
        conn.close()


def _count_interceptions(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM interceptions").fetchone()[0])
    finally:
        conn.close()


def _spend_groups(db: Path) -> OrganizationGroups | None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return default_organization_groups(conn)


async def start_on_port(
    start: Callable[[int], Awaitable[ListeningT]], listener: Listener, port: int, fallback: bool
) -> tuple[ListeningT, str | None]:
    """`start(port)`; when the port is busy and `fallback`, `start(0)` (any free port) instead.

    Returns what started and, after a fallback, a line saying so. `start` must be callable again
    after it failed on a busy port.
    """
    try:
        return await start(port), None
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        if not fallback or port == 0:
            raise PortBusyError(
                error.errno,
                f"port {port} for the {listener.what} is busy: pick another with "
                f"{listener.option} (make demo {listener.variable}=…), or 0 for any free port",
            ) from None
    started = await start(0)
    return started, f"Port {port} is busy: the {listener.what} listens on {started.port} instead."


def grpc_example(address: str, token: str) -> str:
    """A shell command listing two sessions over gRPC with the grpcio `make install` installs."""
    code = "\n".join(
        [
            "import grpc",
            "from aibridge_graphql.grpc.gen.aibridge.v1 import "
            "session_service_pb2 as pb, session_service_pb2_grpc as rpc",
            f'stub = rpc.SessionServiceStub(grpc.insecure_channel("{address}"))',
            "print(stub.ListSessions(pb.ListSessionsRequest(page_size=2), "
            f'metadata=[("coder-session-token", "{token}")]))',
        ]
    )
    # Single quotes for the shell: the code holds none, and nothing in it expands.
    return f"{shlex.quote(sys.executable)} -c '{code}'"


def _spend_lines(api_era: ApiEra, db: Path) -> list[str]:
    """The organization and group ids the spend example takes, in the era that has spend."""
    if api_era == "sessions":
        return [
            "Spend and budgets: none in the sessions era (aiSpend and aiGroupSpend answer "
            "UPSTREAM_UNSUPPORTED); --api-era ai-gateway (make demo API_ERA=ai-gateway) has them.",
            "",
        ]
    spend = _spend_groups(db)
    if spend is None or not spend.groups:
        return []
    width = max(len(name) for name, _ in spend.groups)
    variables = json.dumps({"groups": [group_id for _, group_id in spend.groups]})
    return [
        f'Spend and budgets: organization "{spend.organization}" '
        f'(aiGroupSpend(organization: "{spend.organization}", groupIds: …)), its groups:',
        *(f"  {name.ljust(width)}  {group_id}" for name, group_id in spend.groups),
        "The spend example's variables (query Spend($groups: [ID!]!), GraphiQL's Variables pane):",
        f"  {variables}",
        "",
    ]


def render_banner(
    running: Running,
    options: DemoOptions,
    tokens: list[UserToken],
    local: bool,
    notes: list[str] | None = None,
) -> str:
    """What the demo prints once its servers answer."""
    owner = next((t for t in tokens if t.role == "owner"), None)
    others = [t for t in tokens if t is not owner]
    auditors = [t for t in others if t.role == "auditor"][:1]
    members = [t for t in others if t.role == "member"][:1]
    assets = "local assets" if local else "assets from the CDN (run `make install` with npm)"
    prefix, *aliases = era(options.api_era).prefixes
    also = "".join(f"also {alias}; " for alias in aliases)
    grpc = (
        f"{running.grpc_address}   (aibridge.v1, with reflection and health)"
        if running.grpc_address
        else "off (AIBRIDGE_GRPC_ENABLED=false)"
    )
    traffic = (
        live_note(options.seed_value, options.live_interval)
        if options.live_interval is not None
        else "a fixed snapshot (make demo, or --live, appends live traffic)"
    )
    lines = [
        "",
        "aibridge-graphql demo",
        *(f"  {note}" for note in notes or []),
        f"  Era:       {options.api_era} ({_ERA_NOTE[options.api_era]})",
        f"  Traffic:   {traffic}",
        f"  GraphiQL:  {running.gateway.base_url}/graphql   ({assets})",
        f"  gRPC:      {grpc}",
        f"  Stand-in:  {running.standin.base_url}{prefix}   "
        f"({also}{options.db}, {_count_interceptions(options.db)} interceptions)",
        "",
    ]
    if owner is not None:
        lines += [
            f"Admin token ({owner.username}, owner, sees everything): {owner.token}",
            "GraphiQL opens with it in its Headers pane; for curl or another client:",
            f"  {owner.headers_json}",
            "",
        ]
    if auditors or members:
        lines.append("Other users, to compare:")
        for user in auditors + members:
            note = _ROLE_NOTE.get(user.role, "")
            lines.append(f"  {user.username} ({user.role}, {note}):  {user.headers_json}")
        lines.append("")
    lines += [
        "A first query to try (a sessions dashboard; GraphiQL opens on it):",
        "",
        FIRST_QUERY,
        "",
    ]
    if running.grpc_address:
        token = owner.token if owner else "TOKEN"
        lines += [
            "Two sessions over gRPC (grpcio, which `make install` installs; buf curl and "
            "grpcurl work too, through reflection):",
            "",
            grpc_example(running.grpc_address, token),
            "",
        ]
    lines += _spend_lines(options.api_era, options.db)
    lines.append("Ctrl-C to stop.")
    return "\n".join(lines)


async def run_demo(options: DemoOptions, echo: Callable[[str], None]) -> None:
    """Seed, start the stand-in and both faces, wait until they answer, print the banner, serve
    until Ctrl-C."""
    from aibridge_graphql.standin.app import create_app as create_standin
    from aibridge_graphql.standin.live import LiveOptions

    tokens = prepare_database(options)
    live = None
    if options.live_interval is not None:
        live = LiveOptions(options.seed_value, options.live_interval)
    notes: list[str] = []

    def noted(started_note: tuple[ListeningT, str | None]) -> ListeningT:
        started, note = started_note
        notes.extend([note] if note else [])
        return started

    # Closed in reverse: the gRPC face, the gateway, their shared client, then the stand-in.
    async with contextlib.AsyncExitStack() as stack:
        runner = await setup_runner(create_standin(options.db, api_era=options.api_era, live=live))
        stack.push_async_callback(runner.cleanup)
        standin = noted(
            await start_on_port(
                lambda port: listen(runner, HOST, port),
                STANDIN,
                options.standin_port,
                options.fallback_standin_port,
            )
        )
        settings = Settings(
            upstream_url=standin.base_url,
            host=HOST,
            port=options.gateway_port,
            grpc_port=options.grpc_port,
        )
        shared = await stack.enter_async_context(shared_serving(settings))
        owner = next((t for t in tokens if t.role == "owner"), None)
        # The admin token in GraphiQL's Headers pane, as the banner prints it (a loopback demo).
        headers = owner.headers_json if owner else PLACEHOLDER_HEADERS
        graphiql = offline_graphiql(settings, default_headers=headers)
        gateway_runner = await setup_runner(shared.gateway_app(graphiql))
        stack.push_async_callback(gateway_runner.cleanup)
        gateway = noted(
            await start_on_port(
                lambda port: listen(gateway_runner, HOST, port),
                GATEWAY,
                options.gateway_port,
                options.fallback_gateway_port,
            )
        )
        grpc_address = None
        if settings.grpc_enabled:
            grpc_server = noted(
                await start_on_port(
                    shared.prepare_grpc().listen,
                    GRPC,
                    options.grpc_port,
                    options.fallback_grpc_port,
                )
            )
            stack.push_async_callback(grpc_server.stop)
            grpc_address = grpc_server.address
        auth = {"Coder-Session-Token": tokens[0].token} if tokens else {}
        prefix = era(options.api_era).prefixes[0]
        await wait_until_ok(f"{standin.base_url}{prefix}/models", headers=auth)
        await wait_until_ok(f"{gateway.base_url}/readyz")
        running = Running(standin, gateway, grpc_address)
        echo(render_banner(running, options, tokens, graphiql.enabled, notes))
        await wait_for_shutdown_signal()
