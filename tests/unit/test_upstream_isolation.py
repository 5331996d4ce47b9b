"""The upstream package stands alone: no Strawberry, gateway, schema or stand-in imports."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import aibridge_graphql.upstream.client, aibridge_graphql.upstream.requests
bad = sorted(
    name for name in sys.modules
    if name.split(".")[0] == "strawberry"
    or name.startswith(("aibridge_graphql.gateway", "aibridge_graphql.schema",
                        "aibridge_graphql.standin"))
)
print(",".join(bad))
"""


def test_upstream_imports_nothing_of_the_gateway() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
