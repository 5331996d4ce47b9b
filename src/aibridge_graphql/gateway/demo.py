"""`aibridge-graphql demo`: the seeded stand-in and the gateway in one process, on loopback."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from aibridge_graphql.gateway.graphiql import EXAMPLE_QUERY, PLACEHOLDER_HEADERS, offline_graphiql
from aibridge_graphql.gateway.serving import (
    Started,
    build_gateway,
    start_app,
    wait_for_shutdown_signal,
    wait_until_ok,
)
from aibridge_graphql.settings import Settings
from aibridge_graphql.standin.tokens import UserToken, read_tokens

HOST = "127.0.0.1"
API_PATH = "/api/v2/aibridge"

# The README's dashboard query, also what GraphiQL opens on.
FIRST_QUERY = EXAMPLE_QUERY.rstrip("\n")

_ROLE_NOTE = {"owner": "sees everything", "auditor": "sees everything", "member": "sees nothing"}


@dataclass(frozen=True)
class DemoOptions:
    """What `demo` was asked for."""

    gateway_port: int
    standin_port: int
    db: Path
    count: int
    seed_value: int
    admin_token: str | None
    api_era: str = "ai-gateway"
    # A busy port falls back to a free one (printed) unless the port was asked for explicitly.
    fallback_gateway_port: bool = False
    fallback_standin_port: bool = False


class PortBusyError(OSError):
    """A port asked for explicitly is taken."""


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


async def start_on_port(
    factory: Callable[[], web.Application], what: str, port: int, fallback: bool
) -> tuple[Started, str | None]:
    """Start `factory()` on `port`; when it is busy and `fallback`, on a free port instead.

    Returns the started app and, after a fallback, a line saying so. A fresh app is built for the
    second try: an aiohttp app that was started once cannot start again.
    """
    try:
        return await start_app(factory(), HOST, port), None
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        if not fallback or port == 0:
            option = "--gateway-port" if what == "gateway" else "--standin-port"
            variable = "GATEWAY_PORT" if what == "gateway" else "STANDIN_PORT"
            raise PortBusyError(
                error.errno,
                f"port {port} for the {what} is busy: pick another with {option} "
                f"(make demo {variable}=…), or 0 for any free port",
            ) from None
    started = await start_app(factory(), HOST, 0)
    return started, f"Port {port} is busy: the {what} listens on {started.port} instead."


def render_banner(
    gateway: Started,
    standin: Started,
    options: DemoOptions,
    tokens: list[UserToken],
    local: bool,
    notes: list[str] | None = None,
) -> str:
    """What the demo prints once both servers answer."""
    owner = next((t for t in tokens if t.role == "owner"), None)
    others = [t for t in tokens if t is not owner]
    auditors = [t for t in others if t.role == "auditor"][:1]
    members = [t for t in others if t.role == "member"][:1]
    assets = "local assets" if local else "assets from the CDN (run `make install` with npm)"
    lines = [
        "",
        "aibridge-graphql demo",
        *(f"  {note}" for note in notes or []),
        f"  GraphiQL:  {gateway.base_url}/graphql   ({assets})",
        f"  Stand-in:  {standin.base_url}{API_PATH}   "
        f"({options.db}, {_count_interceptions(options.db)} interceptions)",
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
        "Ctrl-C to stop.",
    ]
    return "\n".join(lines)


async def run_demo(options: DemoOptions, echo: Callable[[str], None]) -> None:
    """Seed, start both servers, wait until both answer, print the banner, serve until Ctrl-C."""
    from aibridge_graphql.standin.app import create_app as create_standin

    tokens = prepare_database(options)
    notes: list[str] = []
    standin, note = await start_on_port(
        lambda: create_standin(options.db, api_era=options.api_era),  # type: ignore[arg-type]
        "stand-in",
        options.standin_port,
        options.fallback_standin_port,
    )
    notes += [note] if note else []
    gateway: Started | None = None
    try:
        settings = Settings(upstream_url=standin.base_url, host=HOST, port=options.gateway_port)
        owner = next((t for t in tokens if t.role == "owner"), None)
        # The admin token in GraphiQL's Headers pane, as the banner prints it (a loopback demo).
        headers = owner.headers_json if owner else PLACEHOLDER_HEADERS
        graphiql = offline_graphiql(settings, default_headers=headers)
        gateway, note = await start_on_port(
            lambda: build_gateway(settings, graphiql),
            "gateway",
            settings.port,
            options.fallback_gateway_port,
        )
        notes += [note] if note else []
        auth = {"Coder-Session-Token": tokens[0].token} if tokens else {}
        await wait_until_ok(f"{standin.base_url}{API_PATH}/models", headers=auth)
        await wait_until_ok(f"{gateway.base_url}/readyz")
        echo(render_banner(gateway, standin, options, tokens, graphiql.enabled, notes))
        await wait_for_shutdown_signal()
    finally:
        if gateway is not None:
            await gateway.runner.cleanup()
        await standin.runner.cleanup()
