"""Stand-in commands. Placeholder: replaced by the stand-in implementation."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
def standin() -> None:
    """Serve the AI Bridge REST API stand-in."""
    raise click.ClickException("not implemented yet")
