"""What each lower layer pulls in when imported alone: no GraphQL, gRPC, face, server or stand-in.

`test_layers.py` reads the import statements; this imports the modules for real in a fresh
interpreter, so an indirect import (a module importing one that imports Strawberry) shows too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import importlib, sys
for name in {modules!r}:
    importlib.import_module(name)
bad = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("strawberry", "graphql", "grpc")
    or name.startswith({forbidden!r})
)
print(",".join(bad))
"""

LAYERS = {
    "upstream": (
        ["aibridge_graphql.upstream.client", "aibridge_graphql.upstream.requests"],
        (
            "aibridge_graphql.core",
            "aibridge_graphql.schema",
            "aibridge_graphql.grpc",
            "aibridge_graphql.server",
            "aibridge_graphql.standin",
        ),
    ),
    "core": (
        [
            "aibridge_graphql.core.loaders",
            "aibridge_graphql.core.cache",
            "aibridge_graphql.core.errors",
            "aibridge_graphql.core.scope",
            "aibridge_graphql.core.usage",
        ],
        (
            "aibridge_graphql.schema",
            "aibridge_graphql.grpc",
            "aibridge_graphql.server",
            "aibridge_graphql.standin",
        ),
    ),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_lower_layer_imports_nothing_above_it(layer: str) -> None:
    modules, forbidden = LAYERS[layer]
    script = CHECK.format(modules=modules, forbidden=forbidden)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
