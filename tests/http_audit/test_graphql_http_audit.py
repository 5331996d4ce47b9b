"""The GraphQL-over-HTTP spec's reference audit (`graphql-http`'s `auditServer`) against the real
gateway in front of the real stand-in: 0 warnings and 0 errors, and no log record above INFO
(the audit sends malformed requests on purpose). `npm ci` installs the audit from the lock file.

It runs twice: as it always did, and with CORS on and every request from the allowed origin (as a
browser page there sends them), which must answer the same."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from tests.support.node_tools import ensure_node_modules, require_executable
from tests.support.servers import run_app_in_thread

HERE = Path(__file__).parent
AUDIT_TIMEOUT_S = 120.0


# A dashboard's origin (server/cors.py): allowed in the CORS run.
ORIGIN = "http://127.0.0.1:5173"


def run_audit(
    url: str, token: str, origin: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    node = require_executable("node", "install Node.js 20+ (the audit runs in Node)")
    ensure_node_modules(HERE)
    done = subprocess.run(
        [node, str(HERE / "audit.mjs"), url, token, *([origin] if origin else [])],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    summary: dict[str, int] = lines[-1]["summary"]
    return lines[:-1], summary


@pytest.mark.parametrize("origin", [None, ORIGIN], ids=["plain", "cors"])
def test_graphql_http_audit_has_no_warnings_or_errors(
    origin: str | None,
    standin_url: str,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings(upstream_url=standin_url, cors_origins=origin)
    with run_app_in_thread(lambda: create_app(settings)) as gateway_url:
        results, summary = run_audit(f"{gateway_url}/graphql", tokens["admin"], origin)
    not_ok = [result for result in results if result["status"] != "ok"]
    print(json.dumps(summary))
    for result in not_ok:
        print(json.dumps(result, indent=2))
    assert len(results) == sum(summary.values())
    assert summary["ok"] > 50  # the audit ran in full (61 audits in graphql-http 1.23)
    assert summary["warn"] == 0, not_ok
    assert summary["error"] == 0, not_ok
    loud = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records if r.levelno > 20]
    assert not loud, loud
