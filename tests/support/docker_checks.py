"""Shared helpers for the tests of docker/: paths, a Dockerfile reader and YAML loading."""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
NGINX_CONF = DOCKER_DIR / "nginx.conf"
HEALTHCHECK = DOCKER_DIR / "healthcheck.py"
K8S_DIR = DOCKER_DIR / "k8s"


def venv_tool(name: str) -> str:
    """A console script installed next to this interpreter (the `dev` extra), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: run `make install`")
    return found


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    """A build stage: its `FROM` arguments and its instructions."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """This stage's instructions with `keyword`."""
        return [item for item in self.instructions if item.keyword == keyword]


def read_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, without comments, continuations joined."""
    result: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped by Docker too
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, args = pending.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    return result


def read_stages(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global `ARG` defaults (before the first `FROM`) and the build stages."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for item in read_instructions(path):
        if item.keyword == "FROM":
            words = item.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            if item.keyword == "ARG":
                key, _, value = item.args.partition("=")
                global_args[key] = value
        else:
            stages[-1].instructions.append(item)
    return global_args, stages


def exec_form(args: str) -> list[str]:
    """The argument list of an exec-form (JSON array) instruction such as `CMD`."""
    value = yaml.safe_load(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return [str(part) for part in value]


def resolve_base(base: str, global_args: dict[str, str]) -> str:
    """A `FROM` image with `${ARG}` references replaced by the global defaults."""
    for key, value in global_args.items():
        base = base.replace("${" + key + "}", value).replace("$" + key, value)
    return base


def shell_words(args: str) -> list[str]:
    """Shell-split arguments of a shell-form instruction."""
    return shlex.split(args)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file, each a mapping."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in documents:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return documents


def k8s_files() -> list[Path]:
    """Every Kubernetes manifest under docker/k8s/."""
    return sorted(K8S_DIR.rglob("*.yaml"))


def k8s_objects() -> list[dict[str, Any]]:
    """Every Kubernetes object under docker/k8s/."""
    return [doc for path in k8s_files() for doc in load_yaml_documents(path)]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    """The one object of `kind` named `name`."""
    found = [
        obj for obj in k8s_objects() if obj["kind"] == kind and obj["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def gateway_get_routes() -> set[str]:
    """The GET paths the gateway app serves (from `create_app`, not from reading its source)."""
    from aibridge_graphql.server.app import create_app
    from aibridge_graphql.settings import Settings

    app = create_app(Settings(upstream_url="http://upstream.invalid"))
    return {
        route.resource.canonical
        for route in app.router.routes()
        if route.method == "GET" and route.resource is not None
    }


def click_options(command_name: str) -> set[str]:
    """Every option string (`--port`, ...) of an `aibridge-graphql` subcommand."""
    from aibridge_graphql.cli import main

    command = main.commands[command_name]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
