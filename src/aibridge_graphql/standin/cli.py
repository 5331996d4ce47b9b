"""`aibridge-graphql standin`: serve, list tokens of, and import into the AI Bridge stand-in."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click

from aibridge_graphql.standin.eras import API_ERAS, DEFAULT_API_ERA, ApiEra, era
from aibridge_graphql.standin.records import UserRecord, insert_api_key, insert_users
from aibridge_graphql.standin.seed import ANCHOR, KEY_LIFETIME, seed_database
from aibridge_graphql.standin.tokens import UserToken, generate_token, read_tokens, split_token

API_PATH = "/api/v2/aibridge"
ERA_HELP = (
    "Which Coder API to serve: 'ai-gateway' (Coder since mid-2026: /api/v2/ai-gateway plus the "
    "/api/v2/aibridge alias, no /interceptions, /providers and the new fields) or 'sessions' "
    "(the earlier AI Bridge API under /api/v2/aibridge)."
)
UNLICENSED_HELP = "Answer every route with Coder's 403 'Premium feature' message."
LIVE_HELP = (
    "Append generated traffic while serving: every --live-interval seconds the data plane's "
    "requests advance (running sessions grow or end, new ones start), drawn from --seed-value."
)
LIVE_INTERVAL_HELP = "Seconds between two live traffic ticks (with --live)."
# live.DEFAULT_INTERVAL and live.MIN_INTERVAL, not imported: live.py loads the pricing library,
# which `--help` need not wait for (tests/standin/test_live.py checks they agree).
DEFAULT_LIVE_INTERVAL = 5.0
MIN_LIVE_INTERVAL = 0.05


def live_options(function: Callable[..., None]) -> Callable[..., None]:
    """The `--live` and `--live-interval` options (also used by `demo`)."""
    interval = click.option(
        "--live-interval",
        type=click.FloatRange(min=MIN_LIVE_INTERVAL),
        default=DEFAULT_LIVE_INTERVAL,
        show_default=True,
        help=LIVE_INTERVAL_HELP,
    )
    return click.option("--live/--no-live", default=False, help=LIVE_HELP)(interval(function))


def check_live_interval(ctx: click.Context, live: bool) -> None:
    """An explicit --live-interval without --live is a mistake worth saying."""
    source = ctx.get_parameter_source("live_interval")
    if not live and source not in (None, click.core.ParameterSource.DEFAULT):
        raise click.UsageError("--live-interval needs --live", ctx=ctx)


def live_note(seed_value: int, interval: float) -> str:
    """The banner's line about live traffic."""
    return (
        f"live: the stand-in appends traffic every {interval:g} s (seed value {seed_value}): "
        "sessions start, grow and end"
    )


def era_option(function: Callable[..., None]) -> Callable[..., None]:
    """The `--api-era` option (also used by `demo`)."""
    return click.option(
        "--api-era",
        type=click.Choice(API_ERAS),
        default=DEFAULT_API_ERA,
        show_default=True,
        help=ERA_HELP,
    )(function)


DEFAULT_DB = Path("aibridge-standin.db")
_DB_HELP = "The stand-in's SQLite file (created when missing)."


def _check_token(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            split_token(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


@contextmanager
def _database(path: Path) -> Iterator[sqlite3.Connection]:
    """The opened (and schema-initialised) database; a click error when it cannot be."""
    from aibridge_graphql.standin.store import open_database

    if not path.parent.is_dir():
        raise click.BadParameter(
            f"directory {str(path.parent)!r} does not exist", param_hint="--db"
        )
    try:
        conn = open_database(path)
    except sqlite3.Error as error:
        raise click.ClickException(f"cannot open database {str(path)!r}: {error}") from None
    try:
        yield conn
    except sqlite3.DatabaseError as error:
        raise click.ClickException(f"database {str(path)!r}: {error}") from None
    finally:
        conn.close()


def prepare(conn: sqlite3.Connection, count: int, seed_value: int, admin_token: str | None) -> bool:
    """Seed an empty database; give a database without an owner token one. True when seeded."""
    if conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0]:
        if not any(t.role == "owner" for t in read_tokens(conn)):
            _add_owner(conn, admin_token or generate_token())
            conn.commit()
        return False
    seed_database(conn, count, seed_value, admin_token or generate_token())
    conn.commit()
    return True


def _add_owner(conn: sqlite3.Connection, token: str) -> None:
    """An owner for a database that has users but no owner token (e.g. after an import)."""
    taken = {str(row[0]) for row in conn.execute("SELECT username FROM users")}
    username, suffix = "admin", 0
    while username in taken:  # ends: `taken` is finite
        suffix += 1
        username = f"admin{suffix}"
    record = UserRecord(
        str(uuid.uuid4()), username, f"{username}@example.com", "Stand-in Admin", "", "owner"
    )
    insert_users(conn, [record])
    insert_api_key(conn, record.id, token, ANCHOR + KEY_LIFETIME)


def _banner(
    base_url: str,
    db: Path,
    seeded: bool,
    tokens: list[UserToken],
    api_era: ApiEra,
    traffic: str | None = None,
) -> str:
    owner = next(t for t in tokens if t.role == "owner")
    state = "seeded now" if seeded else "existing"
    prefixes = era(api_era).prefixes
    also = f"; legacy alias {base_url}{prefixes[1]}" if len(prefixes) > 1 else ""
    lines = [
        f"Stand-in listening on {base_url}{prefixes[0]}",
        f"API era: {api_era}{also}",
        f"Database: {db} ({state})",
        f"Admin token ({owner.username}, owner): {owner.token}",
        f"Every user's token: aibridge-graphql standin tokens --db {db}",
    ]
    if traffic is not None:
        lines.append(f"Traffic: {traffic}")
    return "\n".join(lines)


async def _serve(
    db: Path,
    host: str,
    port: int,
    banner: Callable[[str], str],
    app_options: dict[str, object],
) -> None:
    # A small runner of our own: the stand-in must not import the gateway's GraphQL stack.
    from aiohttp import web

    from aibridge_graphql.standin.app import create_app

    app = create_app(db, **app_options)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        shown = f"[{host}]" if ":" in host else host
        # Printed once bound, so a caller that asked for port 0 can read the real port.
        click.echo(banner(f"http://{shown}:{runner.addresses[0][1]}"))
        await _wait_for_signal()
    finally:
        await runner.cleanup()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8081,
    show_default=True,
    help="Port to listen on; 0 picks a free one (printed).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help=_DB_HELP + " Seeded when it has no users.",
)
@click.option(
    "--seed",
    "count",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Synthetic interceptions to generate into an empty database.",
)
@click.option("--seed-value", type=int, default=1, show_default=True, help="The generator's seed.")
@click.option(
    "--admin-token",
    callback=_check_token,
    help="The owner's token, shaped like Coder's (10-char id '-' 22-char secret); "
    "generated when omitted. Ignored when the database already has an owner.",
)
@era_option
@click.option("--unlicensed", is_flag=True, help=UNLICENSED_HELP)
@click.option(
    "--providers-shape",
    type=click.Choice(("objects", "names")),
    default="objects",
    hidden=True,  # for testing clients against both documented shapes of GET /providers
)
@live_options
@click.pass_context
def standin(
    ctx: click.Context,
    host: str,
    port: int,
    db: Path,
    count: int,
    seed_value: int,
    admin_token: str | None,
    api_era: ApiEra,
    unlicensed: bool,
    providers_shape: str,
    live: bool,
    live_interval: float,
) -> None:
    """Serve Coder's AI Gateway / AI Bridge REST API stand-in on a seeded SQLite database.

    Same --seed and --seed-value give the same data (and, with --live, the same traffic);
    every user's token is printed by `standin tokens`. This is a development server: tokens
    are stored readable.
    """
    if ctx.invoked_subcommand is not None:
        return
    check_live_interval(ctx, live)
    from aibridge_graphql.standin.live import LiveOptions

    with _database(db) as conn:
        seeded = prepare(conn, count, seed_value, admin_token)
        users = read_tokens(conn)
    options: dict[str, object] = {
        "api_era": api_era,
        "unlicensed": unlicensed,
        "providers_shape": providers_shape,
        "live": LiveOptions(seed_value, live_interval) if live else None,
    }
    traffic = live_note(seed_value, live_interval) if live else None

    def banner(url: str) -> str:
        return _banner(url, db, seeded, users, api_era, traffic)

    try:
        asyncio.run(_serve(db, host, port, banner, options))
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None


@standin.command()
@click.option(
    "--db",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="The stand-in's SQLite file.",
)
def tokens(db: Path) -> None:
    """Print every user's username, role and token (owner first)."""
    with _database(db) as conn:
        rows = [("USERNAME", "ROLE", "TOKEN")]
        rows += [(t.username, t.role, t.token) for t in read_tokens(conn)]
    width = max(len(r[0]) for r in rows)
    for username, role, token in rows:
        click.echo(f"{username:<{width}}  {role:<7}  {token}")


@standin.command("seed")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help=_DB_HELP + " It must have no users yet.",
)
@click.option(
    "--count",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Synthetic interceptions to generate (1,000,000 take a few minutes).",
)
@click.option("--seed-value", type=int, default=1, show_default=True, help="The generator's seed.")
@click.option(
    "--admin-token",
    callback=_check_token,
    help="The owner's token (generated when omitted); `standin tokens` prints every token.",
)
def seed(db: Path, count: int, seed_value: int, admin_token: str | None) -> None:
    """Generate synthetic interceptions into a new database without serving it.

    The same data `standin --seed COUNT --seed-value V` would generate on first start.
    """
    with _database(db) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0]:
            raise click.ClickException(f"{db} already has data; seed a new file")
        started = time.perf_counter()
        seed_database(conn, count, seed_value, admin_token or generate_token())
        conn.commit()
        seconds = time.perf_counter() - started
        sessions = conn.execute("SELECT COUNT(*) FROM session_summaries").fetchone()[0]
    click.echo(
        f"Seeded {count:,} interceptions ({sessions:,} sessions) into {db} in {seconds:.1f}s."
    )


@standin.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help=_DB_HELP,
)
def import_(file: TextIO, db: Path) -> None:
    """Load interceptions from FILE ('-' for stdin) into the database.

    FILE holds a `GET /api/v2/aibridge/interceptions` response ({"count", "results"}) or a JSON
    array of interceptions. Every record is validated first; if any is invalid, each problem is
    printed (record index, id, field, reason) and nothing is loaded. Initiators missing from the
    database are created as members (without tokens). That shape has no session or thread links,
    so each imported interception becomes its own session and thread root.
    """
    from aibridge_graphql.standin.ingest import ImportFailed, import_interceptions, parse_document

    with _database(db) as conn:
        try:
            result = import_interceptions(conn, parse_document(file.read()))
        except ImportFailed as failure:
            for error in failure.errors:
                click.echo(f"  {error}", err=True)
            raise click.ClickException(f"{file.name}: {failure}") from None
    click.echo(f"Imported {result.interceptions} interceptions into {db}.")
    if result.new_users:
        click.echo(f"Created {len(result.new_users)} member(s): {', '.join(result.new_users)}.")


@standin.command()
@click.option(
    "--db",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="The stand-in's SQLite file (seeded; a running stand-in may be serving it).",
)
@click.option(
    "--ticks",
    type=click.IntRange(min=1, max=100_000),
    default=1,
    show_default=True,
    help="How many ticks of traffic to append.",
)
@click.option(
    "--seed-value", type=int, default=1, show_default=True, help="The traffic generator's seed."
)
@click.option(
    "--tick-seconds",
    type=click.FloatRange(min=MIN_LIVE_INTERVAL),
    default=DEFAULT_LIVE_INTERVAL,
    show_default=True,
    help="Simulated seconds per tick.",
)
def simulate(db: Path, ticks: int, seed_value: int, tick_seconds: float) -> None:
    """Append TICKS ticks of generated traffic to the database, as --live does while serving.

    Each tick, running sessions send their next request (ending the one before), wait on it
    or end, and a new session may start. A stand-in serving the file sees every tick at once
    (each is committed; it reads in a fresh transaction per request). The same database and
    --seed-value give the same traffic; steps continue where the last run (any process)
    stopped.
    """
    from aibridge_graphql.standin.traffic import Traffic

    with _database(db) as conn:
        if not conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0]:
            raise click.ClickException(
                f"{db} has no users: serve it once (or import into it) before simulating"
            )
    try:
        with Traffic(db, seed_value, tick_seconds=tick_seconds) as traffic:
            first = traffic.next_step
            reports = []
            for _ in range(ticks):
                report = traffic.tick()
                reports.append(report)
                click.echo(
                    f"step {first + len(reports) - 1}: {len(report.started)} started, "
                    f"{len(report.extended)} extended, {len(report.ended)} ended; "
                    f"{len(report.finished)} interception(s) now served"
                )
    except sqlite3.Error as error:
        raise click.ClickException(f"database {str(db)!r}: {error}") from None
    served = sum(len(r.finished) for r in reports)
    click.echo(f"Appended {ticks} tick(s) to {db}: {served} interception(s) now served.")
