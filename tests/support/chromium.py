"""Headless Debian Chromium for the browser tests (tests/e2e): find it, and run a driver script.

A driver is a Node script under tests/e2e that requires `tests/e2e/chromium.cjs` (playwright-core
from tests/frontend, no browser download), takes one JSON argument and prints one JSON report.
Mid-run it may ask the test something (a `{"ask": …}` line): `answer` answers it (JSON, on the
driver's stdin). Without Chromium the test skips locally and fails in CI (`missing_tool`).
"""

from __future__ import annotations

import json
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

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


Answer = Callable[[Any], Any]


def _no_answer(question: Any) -> Any:
    raise AssertionError(f"the browser driver asked {question!r}, and this test answers nothing")


def _read_lines(stream: IO[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _lines(stream: IO[str], deadline: float) -> Iterator[str]:
    """The lines of `stream` until it closes; past `deadline`, an assertion error."""
    received: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(stream, received), daemon=True).start()
    while True:
        try:
            line = received.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"the browser driver took over {DRIVER_TIMEOUT_S} s") from None
        if line is None:
            return
        yield line


def _converse(process: subprocess.Popen[str], answer: Answer, deadline: float) -> str | None:
    """Answer each `{"ask": …}` line; the report line (the first other one), if any."""
    assert process.stdin is not None
    assert process.stdout is not None
    for line in _lines(process.stdout, deadline):
        message = json.loads(line)
        if not (isinstance(message, dict) and set(message) == {"ask"}):
            return line
        process.stdin.write(json.dumps(answer(message["ask"])) + "\n")
        process.stdin.flush()
    return None


def run_driver(
    driver: Path, options: Mapping[str, Any], home: Path, answer: Answer = _no_answer
) -> dict[str, Any]:
    """Run `driver` with `options` (JSON), answering what it asks; its report. A failing driver
    fails the test."""
    node = require_executable("node", "install Node.js 20+")
    node_modules = ensure_node_modules(REPO_ROOT / "tests" / "frontend")
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    with (
        tempfile.TemporaryFile("w+") as stderr,
        subprocess.Popen(
            [node, str(driver), json.dumps(dict(options))],
            # A minimal environment: no proxy variables reach Chromium, its profile stays in `home`.
            env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(node_modules), "HOME": str(home)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as process,
    ):
        try:
            report_line = _converse(process, answer, deadline)
            assert process.stdin is not None
            process.stdin.close()  # no more answers: nothing keeps the driver waiting
            returncode = process.wait(max(1.0, deadline - time.monotonic()))
        except BaseException:
            process.kill()
            raise
        stderr.seek(0)
        assert returncode == 0, f"the browser driver failed:\n{stderr.read()[-4000:]}"
    assert report_line is not None, "the browser driver printed no report"
    report: dict[str, Any] = json.loads(report_line)
    return report
