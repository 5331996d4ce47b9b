"""Gateway commands. Placeholder: replaced by the gateway implementation."""

from __future__ import annotations

import click


@click.command()
def serve() -> None:
    """Serve the GraphQL gateway."""
    raise click.ClickException("not implemented yet")


@click.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL schema (SDL)."""
    raise click.ClickException("not implemented yet")


@click.command()
def demo() -> None:
    """Start the stand-in and the gateway for a demo."""
    raise click.ClickException("not implemented yet")
