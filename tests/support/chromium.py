"""Headless Debian Chromium for the browser tests (tests/e2e): find it, and run a driver script.

A driver is a Node script under tests/e2e that requires `tests/e2e/chromium.cjs` (playwright-core
from tests/frontend, no browser download), takes one JSON argument and prints one JSON report.
Without Chromium the test skips locally and fails in CI (`missing_tool`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.node_tools import (
    REPO_ROOT,
    ensure_node_modules,
    missing_tool,
    require_executable,
)

CHROMIUM = Path("/usr/bin/chromium")
DRIVER_TIMEOUT_S = 120.0


def require_chromium() -> Path:
    """Debian's Chromium, or skip (fail in CI) naming the package to install."""
    if not CHROMIUM.is_file():
        missing_tool(f"{CHROMIUM} not found: `apt-get install -y chromium` (.ci/run does it)")
    return CHROMIUM


def run_driver(driver: Path, options: Mapping[str, Any], home: Path) -> dict[str, Any]:
    """Run `driver` with `options` (JSON); its report. A failing driver fails the test."""
    node = require_executable("node", "install Node.js 20+")
    node_modules = ensure_node_modules(REPO_ROOT / "tests" / "frontend")
    result = subprocess.run(
        [node, str(driver), json.dumps(dict(options))],
        # A minimal environment: no proxy variables reach Chromium, and its profile stays in `home`.
        env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(node_modules), "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"the browser driver failed:\n{result.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report
