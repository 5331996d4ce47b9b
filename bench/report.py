"""A benchmark's printed report, also kept as a file: bench/results/<name>.txt by default.

What a run prints stays what it prints; `recorded` copies it, and on a run that finishes (targets
met or missed) writes it to the file under a header saying what ran, when, on which commit and
how busy the machine was. A run that crashes or is interrupted writes nothing, so the file keeps
the last finished run. docs/benchmarks.md links the files.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"


def add_results_option(parser: argparse.ArgumentParser, name: str) -> None:
    """`--results FILE` (default bench/results/<name>.txt) and `--no-results`."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--results",
        type=Path,
        default=RESULTS_DIR / f"{name}.txt",
        metavar="FILE",
        help=f"also write the printed report to FILE (default bench/results/{name}.txt)",
    )
    group.add_argument(
        "--no-results", dest="results", action="store_const", const=None, help="write no file"
    )


class _Tee(io.StringIO):
    """Keeps what is written while passing it on to the real stdout."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text)
        return super().write(text)

    def flush(self) -> None:
        self._out.flush()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def header(module: str, argv: Sequence[str]) -> str:
    """Which command ran, when, on which commit (and whether the tree had local changes)."""
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown (no git)"
    # The results themselves change with every run: they do not make the tree dirty.
    changes = _git("status", "--porcelain", "--", ".", ":(exclude)bench/results")
    dirty = " with local changes" if changes else ""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = " ".join(["python -m", module, *argv])
    return (
        f"# {command}\n"
        f"# {when}, commit {commit}{dirty}, {os.cpu_count()} CPUs, "
        f"load average {load} at start\n\n"
    )


@contextmanager
def recorded(path: Path | None, module: str, argv: Sequence[str] | None) -> Iterator[None]:
    """Copy what the block prints to `path` (None: nowhere) once the block finishes."""
    if path is None:
        yield
        return
    head = header(module, sys.argv[1:] if argv is None else argv)
    tee = _Tee(sys.stdout)
    with redirect_stdout(tee):
        yield
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + tee.getvalue(), encoding="utf-8")
    print(f"(report written to {path})")
