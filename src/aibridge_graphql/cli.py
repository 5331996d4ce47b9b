"""The `aibridge-graphql` command: the gateway (serve, export-schema, demo), the stand-in."""

from __future__ import annotations

import click

from aibridge_graphql import __version__
from aibridge_graphql.server.cli import demo, export_schema, serve
from aibridge_graphql.standin.cli import standin


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aibridge-graphql")
def main() -> None:
    """A GraphQL gateway over Coder's AI Bridge REST API, and a stand-in of that API."""


main.add_command(serve)
main.add_command(export_schema)
main.add_command(demo)
main.add_command(standin)
