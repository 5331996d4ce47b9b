"""Node tools of the tests: `npm ci` from a committed lock file, then run a package's binary.

A missing tool skips the test locally with the reason, but fails it in CI (`CI` set), where the
project's own files (`.ci/run`, the lock files) must have installed everything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NPM_CI_TIMEOUT_S = 300.0
RUN_TIMEOUT_S = 120.0
# The same stamp as the Makefile's `web-assets` target: node_modules is current when the stamp is
# newer than the lock file.
STAMP = ".installed"


def missing_tool(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where a missing tool is an install bug, not a given."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def require_executable(name: str, hint: str) -> str:
    """The absolute path of `name` on PATH (or a path given as is), else skip/fail with `hint`."""
    found = shutil.which(name)
    if found is None:
        missing_tool(f"{name} not found: {hint}")
    return found


def ensure_node_modules(package_dir: Path) -> Path:
    """`npm ci` in `package_dir` unless its node_modules is newer than the lock; returns it."""
    node_modules = package_dir / "node_modules"
    stamp = node_modules / STAMP
    lock = package_dir / "package-lock.json"
    if stamp.is_file() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return node_modules
    npm = require_executable("npm", "install Node.js 20+ with npm")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=package_dir,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci in {package_dir} failed:\n{result.stderr[-4000:]}")
    stamp.touch()
    return node_modules


def run_node_bin(
    node_modules: Path,
    name: str,
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = RUN_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run `node_modules/.bin/<name>` with `args`; the result is returned whatever the exit code."""
    require_executable("node", "install Node.js 20+")
    binary = node_modules / ".bin" / name
    if not binary.is_file():
        pytest.fail(f"{binary} is missing although npm ci succeeded: is {name} in package.json?")
    return subprocess.run(
        [str(binary), *args],
        cwd=cwd or node_modules.parent,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
