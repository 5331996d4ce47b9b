"""Gateway commands: `serve`, `export-schema` and `demo`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource
from pydantic import ValidationError

from aibridge_graphql.settings import Settings
from aibridge_graphql.standin.cli import check_live_interval, era_option, live_options

if TYPE_CHECKING:
    from aibridge_graphql.standin.eras import ApiEra

# Click's usage errors exit 2; invalid settings are usage errors too.
USAGE_ERROR = 2


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each invalid setting, its environment variable and why (never the value)."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "settings"
        env = f"AIBRIDGE_{field.upper()}" if item["loc"] else ""
        where = f"{field} ({env})" if env else field
        parts.append(f"{where}: {item['msg']}")
    return "invalid settings: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """`Settings` from `AIBRIDGE_*` under the given CLI values; invalid → one line, exit 2."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        click.echo(f"Error: {describe_validation_error(error)}", err=True)
        raise SystemExit(USAGE_ERROR) from None


def _configure_logging(settings: Settings, *, with_pid: bool = False) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        click.echo(
            "Error: invalid settings: log_level (AIBRIDGE_LOG_LEVEL): unknown level", err=True
        )
        raise SystemExit(USAGE_ERROR)
    from aibridge_graphql.server.jsonlog import configure_logging

    configure_logging(level, settings.log_format, with_pid=with_pid)


@click.command()
@click.option(
    "--upstream",
    metavar="URL",
    help="The Coder deployment URL, e.g. https://coder.example.com [env AIBRIDGE_UPSTREAM_URL].",
)
@click.option("--host", help="Address to listen on [env AIBRIDGE_HOST; default 127.0.0.1].")
@click.option(
    "--port", type=int, help="Port to listen on, 0 for any [env AIBRIDGE_PORT; default 8080]."
)
@click.option(
    "--grpc-port",
    type=int,
    help="gRPC port (aibridge.v1), 0 for any [env AIBRIDGE_GRPC_PORT; default 9090; "
    "AIBRIDGE_GRPC_ENABLED=false turns it off].",
)
@click.option(
    "--cors-origins",
    metavar="ORIGINS",
    help="Browser origins allowed to call /graphql and /usage.csv, comma-separated "
    "(e.g. http://127.0.0.1:5173), or * for any, without credentials "
    "[env AIBRIDGE_CORS_ORIGINS; default: none, CORS off].",
)
@click.option(
    "--workers",
    metavar="N|auto",
    help="Processes sharing both ports, auto for one per available core "
    "[env AIBRIDGE_WORKERS; default 1].",
)
def serve(
    upstream: str | None,
    host: str | None,
    port: int | None,
    grpc_port: int | None,
    cors_origins: str | None,
    workers: str | None,
) -> None:
    """Serve the GraphQL gateway, and its gRPC face on --grpc-port.

    \b
    Endpoints:
      POST /graphql   GraphQL over HTTP (also GET /graphql?query=...)
      GET  /graphql   GraphiQL, in a browser
      GET  /usage.csv token usage and cost as CSV (?groupBy=USER,MODEL&...)
      GET  /healthz   liveness: the process answers
      GET  /readyz    readiness: the upstream answers
      GET  /metrics   Prometheus metrics
      GET  /          this list, as JSON
      gRPC            aibridge.v1 services, reflection and health on --grpc-port

    Every other setting comes from AIBRIDGE_* environment variables (docs/configuration.md).

    SIGTERM or SIGINT stops it gracefully: not ready at once, listeners closed after
    AIBRIDGE_SHUTDOWN_DRAIN_DELAY, work in flight given AIBRIDGE_SHUTDOWN_GRACE, exit 0; a
    second signal stops at once (docs/operations.md#graceful-shutdown).

    With --workers N a master process starts N workers, restarts any that dies and passes the
    signals on (docs/operations.md#workers).
    """
    settings = load_settings(
        upstream_url=upstream,
        host=host,
        port=port,
        grpc_port=grpc_port,
        cors_origins=cors_origins,
        workers=workers,
    )
    count = settings.worker_count
    _configure_logging(settings, with_pid=count > 1)
    from aibridge_graphql.core.pricing import PricesFileError, pricer_from_settings

    try:
        # Once, before listening: a bad prices file stops the gateway with its one line.
        pricer = pricer_from_settings(settings)
    except PricesFileError as error:
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(USAGE_ERROR) from None
    try:
        if count == 1:
            from aibridge_graphql.server.serving import run_gateway

            asyncio.run(run_gateway(settings, pricer))
            return
        from aibridge_graphql.server.workers import run_workers

        # Each worker builds its own pricer from the settings, as checked here.
        status = run_workers(settings, count)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {settings.host}: {error}") from None
    if status:
        raise SystemExit(status)


def schema_sdl() -> str:
    """The schema's SDL as `strawberry export-schema` prints it, with a final newline."""
    from strawberry.printer import print_schema

    from aibridge_graphql.schema import build_schema

    # Defaults, not the environment: the SDL must not depend on who runs the export.
    return print_schema(build_schema(Settings.model_construct())).rstrip("\n") + "\n"


@click.command("export-schema")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the SDL to FILE instead of standard output.",
)
def export_schema(output: Path | None) -> None:
    """Print the GraphQL schema (SDL); `make schema` writes it to schema.graphql."""
    sdl = schema_sdl()
    if output is None:
        click.echo(sdl, nl=False)
        return
    output.write_text(sdl, encoding="utf-8")
    click.echo(f"Wrote {output}", err=True)


@click.command()
@click.option(
    "--gateway-port",
    type=int,
    default=8080,
    show_default=True,
    help="0 for any; the default falls back to a free port when busy.",
)
@click.option(
    "--standin-port",
    type=int,
    default=8081,
    show_default=True,
    help="0 for any; the default falls back to a free port when busy.",
)
@click.option(
    "--grpc-port",
    type=int,
    default=9090,
    show_default=True,
    help="The gRPC face's port (aibridge.v1); 0 for any; the default falls back to a free port "
    "when busy. AIBRIDGE_GRPC_ENABLED=false turns it off.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".demo/standin.db"),
    show_default=True,
    help="The stand-in's SQLite file; seeded when empty, reused otherwise.",
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
@click.option("--admin-token", help="The owner's token (generated when omitted).")
@era_option
@live_options
def demo(
    gateway_port: int,
    standin_port: int,
    grpc_port: int,
    db: Path,
    count: int,
    seed_value: int,
    admin_token: str | None,
    api_era: ApiEra,
    live: bool,
    live_interval: float,
) -> None:
    """Start the seeded stand-in and the gateway (GraphQL and gRPC), print their addresses, the
    era, tokens, a first query and a gRPC call. `make demo` adds --live.

    Logs go to stderr as `serve` writes them (JSON lines with access lines; AIBRIDGE_LOG_*).
    """
    from aibridge_graphql.server.demo import DemoOptions, run_demo

    # A port given explicitly must be that port; a default one may fall back to a free one.
    context = click.get_current_context()
    check_live_interval(context, live)
    defaulted = {ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP}

    options = DemoOptions(
        gateway_port=gateway_port,
        standin_port=standin_port,
        db=db,
        count=count,
        seed_value=seed_value,
        admin_token=admin_token,
        api_era=api_era,
        grpc_port=grpc_port,
        fallback_gateway_port=context.get_parameter_source("gateway_port") in defaulted,
        fallback_standin_port=context.get_parameter_source("standin_port") in defaulted,
        fallback_grpc_port=context.get_parameter_source("grpc_port") in defaulted,
        live_interval=live_interval if live else None,
    )
    _configure_logging(load_settings())
    try:
        asyncio.run(run_demo(options, click.echo))
    except (OSError, TimeoutError) as error:
        raise click.ClickException(str(error)) from None
