"""Run `relay-compiler` on the operations in `relay/` and read the operation texts it generates."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.support.frontend_schema import FRONTEND_DIR
from tests.support.node_tools import run_node_bin

OPERATIONS_DIR = FRONTEND_DIR / "relay"
CONFIG_FILE = FRONTEND_DIR / "relay.config.json"
# The operation text in a generated artifact: `"text": "<a JSON string>"`.
_TEXT = re.compile(r'"text": ("(?:[^"\\]|\\.)*")')


def compile_relay(
    node_modules: Path, schema: Path, work_dir: Path, src: Path = OPERATIONS_DIR
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Compile `src` against `schema` with relay.config.json's options; artifacts go to work_dir.

    The committed config's paths are replaced by absolute ones, so nothing is written into the
    repository. Runs without `--validate` (that only checks artifacts are up to date).
    """
    artifacts = work_dir / "__generated__"
    artifacts.mkdir(parents=True, exist_ok=True)  # relay-compiler requires it to exist
    config = json.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    config.update(src=str(src), schema=str(schema), artifactDirectory=str(artifacts))
    config_file = work_dir / "relay.config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    return run_node_bin(node_modules, "relay-compiler", str(config_file)), artifacts


def operation_text(artifacts: Path, name: str) -> str:
    """The GraphQL text Relay sends for operation `name` (from its generated artifact)."""
    artifact = (artifacts / f"{name}.graphql.js").read_text(encoding="utf-8")
    match = _TEXT.search(artifact)
    assert match, f"{name}: no operation text in the artifact"
    text: str = json.loads(match.group(1))
    return text
