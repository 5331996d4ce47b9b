"""docker/Dockerfile: hadolint clean, and consistent with the package, settings and GraphiQL."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from aibridge_graphql.cli import main as cli_main
from aibridge_graphql.server.graphiql import with_sse_subscriptions
from aibridge_graphql.settings import Settings
from tests.support.docker_checks import (
    DOCKER_DIR,
    DOCKERFILE,
    ROOT,
    Instruction,
    Stage,
    exec_form,
    read_stages,
    resolve_base,
    shell_words,
    venv_tool,
)

HADOLINT_CONFIG = DOCKER_DIR / ".hadolint.yaml"
UNPKG = re.compile(r"https://unpkg\.com/((?:@[^/@]+/)?[^/@]+)@([^/]+)/([^\"']+)")


def hadolint(path: Path) -> list[dict[str, object]]:
    """hadolint's findings for a Dockerfile (JSON output)."""
    result = subprocess.run(
        [venv_tool("hadolint"), "--config", str(HADOLINT_CONFIG), "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip(), f"hadolint printed nothing: {result.stderr}"
    findings = json.loads(result.stdout)
    assert isinstance(findings, list)
    return findings


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return read_stages(DOCKERFILE)[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def env_of(stage: Stage) -> dict[str, str]:
    """The stage's `ENV key=value` pairs."""
    pairs: dict[str, str] = {}
    for item in stage.all("ENV"):
        for word in shell_words(item.args):
            key, _, value = word.partition("=")
            pairs[key] = value
    return pairs


def context_copies(stage: Stage) -> list[Instruction]:
    """`COPY` instructions that read from the build context (no `--from`)."""
    return [item for item in stage.all("COPY") if not item.args.startswith("--from")]


def cdn_assets() -> dict[str, str]:
    """GraphiQL page assets: node_modules-relative path -> the exact version on the page (as the
    gateway serves it: Strawberry's 7 files and graphql-sse's client)."""
    html = (resources.files("strawberry") / "static" / "graphiql.html").read_text()
    found = {f"{pkg}/{path}": version for pkg, version, path in UNPKG.findall(html)}
    assert len(found) == 7, f"Strawberry's GraphiQL page changed: {sorted(found)}"
    served = with_sse_subscriptions(html)
    found = {f"{pkg}/{path}": version for pkg, version, path in UNPKG.findall(served)}
    assert len(found) == 8, f"the page gained no SSE client: {sorted(found)}"
    return found


def test_hadolint_reports_nothing() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n")
    codes = {str(finding["code"]) for finding in hadolint(bad)}
    assert {"DL3007", "DL3008", "DL3025"} <= codes


def test_base_images_are_pinned_python_311_slim(stages: list[Stage]) -> None:
    global_args, _ = read_stages(DOCKERFILE)
    names = {stage.name for stage in stages if stage.name}
    external = [resolve_base(s.base, global_args) for s in stages if s.base not in names]
    for image in external:
        assert "$" not in image, f"unresolved base image {image}"
        _, _, tag = image.partition(":")
        assert re.fullmatch(r"\d+\.\d+\.\d+-[a-z-]+", tag), f"{image}: pin an exact version tag"
    assert resolve_base(stages[-1].base, global_args).startswith("python:3.11.")
    assert "slim" in resolve_base(stages[-1].base, global_args)


def makefile_uv_version() -> str:
    """The uv that `make install` bootstraps (the Makefile's UV_VERSION)."""
    found = re.search(r"^UV_VERSION\s*:=\s*(\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, "the Makefile sets no UV_VERSION"
    return found.group(1)


def test_builder_installs_the_lock_into_a_venv(stages: list[Stage], final: Stage) -> None:
    builder = next(stage for stage in stages if stage.name == "builder")
    pairs = (item.args.partition("=") for item in builder.all("ARG"))
    args = {key: value for key, _, value in pairs}
    # The uv that wrote uv.lock for `make install` also reads it here.
    assert args["UV_VERSION"] == makefile_uv_version()
    runs = [item.args for item in builder.all("RUN")]
    assert 'pip install "uv==${UV_VERSION}"' in runs
    assert env_of(builder)["UV_PROJECT_ENVIRONMENT"] == "/opt/venv"
    copied = {word for item in context_copies(builder) for word in shell_words(item.args)[:-1]}
    assert {"pyproject.toml", "uv.lock"} <= copied
    syncs = [shell_words(run) for run in runs if run.startswith("uv sync")]
    assert syncs, "the builder does not install from uv.lock"
    for words in syncs:
        # --locked: a lock out of step with pyproject.toml fails the build instead of re-resolving.
        assert "--locked" in words
        assert "--no-editable" in words
        # With the [otel] extra (AIBRIDGE_TRACING=true works without a rebuild), not [dev].
        assert "--extra" in words
        assert words[words.index("--extra") + 1] == "otel"
        assert "--all-extras" not in words
    assert "--no-install-project" not in syncs[-1], "the package itself is never installed"
    assert any(item.args == "--from=builder /opt/venv /opt/venv" for item in final.all("COPY"))
    # The runtime stage installs nothing itself: no compilers or caches in the final image.
    assert final.all("RUN") == []


def test_runs_as_numeric_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].args.partition(":")
    assert uid.isdigit(), "USER must be numeric for runAsNonRoot"
    assert int(uid) > 0
    assert not gid or int(gid) > 0
    entry = final.all("ENTRYPOINT")[0]
    assert users[-1].line < entry.line


def test_entrypoint_and_cmd_are_real_cli_commands(final: Stage) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert exec_form(final.all("ENTRYPOINT")[-1].args) == list(project["scripts"])
    command = exec_form(final.all("CMD")[-1].args)
    assert command[0] in cli_main.commands, f"unknown command {command[0]}"


def test_listens_on_all_interfaces_on_the_settings_port(final: Stage) -> None:
    env = env_of(final)
    # Inside a container the gateway must listen beyond loopback to be reachable at all.
    assert env["AIBRIDGE_HOST"] == "0.0.0.0"  # noqa: S104
    assert Settings(host=env["AIBRIDGE_HOST"], port=int(env["AIBRIDGE_PORT"])).port == 8080
    exposed = {int(port) for item in final.all("EXPOSE") for port in item.args.split()}
    assert int(env["AIBRIDGE_PORT"]) in exposed
    assert Settings.model_fields["port"].default in exposed


def test_healthcheck_runs_the_shipped_python_probe(final: Stage) -> None:
    checks = final.all("HEALTHCHECK")
    assert len(checks) == 1
    _, _, command = checks[0].args.partition("CMD ")
    assert exec_form(command) == ["python", "/app/healthcheck.py"]
    copies = [shell_words(item.args) for item in context_copies(final)]
    assert ["docker/healthcheck.py", "/app/healthcheck.py"] in copies


def test_only_the_graphiql_page_assets_are_copied(final: Stage) -> None:
    assets_dir = env_of(final)["AIBRIDGE_GRAPHIQL_ASSETS_DIR"]
    prefix = "/src/web/node_modules/"
    copied: dict[str, str] = {}
    for item in final.all("COPY"):
        words = shell_words(item.args)
        if words[0] != "--from=assets":
            continue
        *sources, target = words[1:]
        for source in sources:
            assert source.startswith(prefix), source
            relative = source.removeprefix(prefix)
            copied[relative] = target
            assert target == f"{assets_dir}/{relative.rsplit('/', 1)[0]}/"
    assert set(copied) == set(cdn_assets())


def test_web_lock_file_pins_the_page_versions() -> None:
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    packages = lock["packages"]
    for relative, version in cdn_assets().items():
        name = relative.split("/", 2 if relative.startswith("@") else 1)
        package = "/".join(name[:-1])
        assert packages[f"node_modules/{package}"]["version"] == version, package


def test_build_context_is_allow_listed(stages: list[Stage]) -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "**", ".dockerignore must exclude everything, then allow what is copied"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for stage in stages:
        for item in context_copies(stage):
            *sources, _ = shell_words(item.args)
            for source in sources:
                assert source.rstrip("/") in allowed, f"{source} is not in .dockerignore"
                assert (ROOT / source).exists(), f"line {item.line}: {source} does not exist"


def test_no_secrets_baked_into_the_image(stages: list[Stage]) -> None:
    secret = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|CREDENTIAL", re.IGNORECASE)
    for stage in stages:
        for item in stage.all("ENV") + stage.all("ARG"):
            assert not secret.search(item.args), f"line {item.line}: {item.args}"
