"""`aibridge-graphql demo`: the seeded stand-in and the gateway in one process, on loopback."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aibridge_graphql.gateway.graphiql import offline_graphiql
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

FIRST_QUERY = """\
query Dashboard {
  sessions(first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      sessionId
      client
      initiator { username }
      models
      lastActiveAt
      lastPrompt
      threadCount
      tokenUsage { inputTokens outputTokens }
      threads(first: 3) {
        nodes {
          threadId
          model
          prompt
          agenticActions { model toolCalls { tool injected } }
        }
      }
    }
  }
}"""

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


def render_banner(
    gateway: Started, standin: Started, options: DemoOptions, tokens: list[UserToken], local: bool
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
        f"  GraphiQL:  {gateway.base_url}/graphql   ({assets})",
        f"  Stand-in:  {standin.base_url}{API_PATH}   "
        f"({options.db}, {_count_interceptions(options.db)} interceptions)",
        "",
    ]
    if owner is not None:
        lines += [
            f"Admin token ({owner.username}, owner, sees everything): {owner.token}",
            "Paste this into GraphiQL's Headers pane:",
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
        "A first query to try (a sessions dashboard):",
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
    standin_app = create_standin(options.db, api_era=options.api_era)  # type: ignore[arg-type]
    standin = await start_app(standin_app, HOST, options.standin_port)
    gateway: Started | None = None
    try:
        settings = Settings(upstream_url=standin.base_url, host=HOST, port=options.gateway_port)
        graphiql = offline_graphiql(settings)
        gateway = await start_app(build_gateway(settings, graphiql), HOST, settings.port)
        auth = {"Coder-Session-Token": tokens[0].token} if tokens else {}
        await wait_until_ok(f"{standin.base_url}{API_PATH}/models", headers=auth)
        await wait_until_ok(f"{gateway.base_url}/readyz")
        echo(render_banner(gateway, standin, options, tokens, graphiql.enabled))
        await wait_for_shutdown_signal()
    finally:
        if gateway is not None:
            await gateway.runner.cleanup()
        await standin.runner.cleanup()
