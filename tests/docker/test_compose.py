"""docker/compose.yaml against the compose-spec schema, and against nginx.conf and the CLI."""

from __future__ import annotations

import copy
import json
import re
import secrets
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import crossplane
import jsonschema
import pytest

from aibridge_graphql.cli import main
from aibridge_graphql.settings import Settings
from aibridge_graphql.standin.tokens import TOKEN_PATTERN
from tests.support.docker_checks import (
    COMPOSE_FILE,
    DOCKER_DIR,
    K8S_DIR,
    NGINX_CONF,
    click_options,
    gateway_get_routes,
    load_yaml_documents,
)

GATEWAYS = ("gateway-1", "gateway-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (document,) = load_yaml_documents(COMPOSE_FILE)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


@pytest.fixture(scope="module")
def nginx() -> list[dict[str, Any]]:
    """nginx.conf parsed by crossplane (NGINX's own parser, in Python)."""
    # `map` entries are data, not directives: crossplane cannot check them strictly.
    parsed = crossplane.parse(str(NGINX_CONF), single=True, strict=True, ignore=("map",))
    assert parsed["status"] == "ok", parsed["errors"]
    directives: list[dict[str, Any]] = parsed["config"][0]["parsed"]
    return directives


def compose_errors(document: dict[str, Any]) -> list[str]:
    """Violations of the Compose Specification schema (vendored by check-jsonschema)."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(document)]


def find(directives: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Every directive called `name`, at any depth."""
    found: list[dict[str, Any]] = []
    for directive in directives:
        if directive["directive"] == name:
            found.append(directive)
        found.extend(find(directive.get("block", []), name))
    return found


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def healthcheck_url(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD"
    urls = [part for part in test if part.startswith("http://")]
    assert len(urls) == 1, test
    return str(urls[0])


def test_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    assert compose_errors(compose) == []


def test_schema_check_rejects_a_wrong_condition(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["gateway-1"]["depends_on"]["standin"]["condition"] = "service_up"
    assert compose_errors(broken)


def test_topology_standin_two_gateways_one_balancer(services: dict[str, Any]) -> None:
    assert set(services) == {"standin", *GATEWAYS, "lb"}
    for name in GATEWAYS:
        assert services[name]["depends_on"] == {"standin": {"condition": "service_healthy"}}
    lb_deps = services["lb"]["depends_on"]
    assert lb_deps == {name: {"condition": "service_healthy"} for name in GATEWAYS}
    for name, service in services.items():
        assert service["healthcheck"]["test"], f"{name} has no healthcheck"


def test_only_the_balancer_is_published_on_loopback(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name != "lb":
            assert "ports" not in service, f"{name} must be reached through the balancer"
    (published,) = services["lb"]["ports"]
    assert published.startswith("127.0.0.1:")


def test_containers_are_hardened(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service.get("user", "10001") != "0", name


def test_gateway_environment_is_valid_settings(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    standin_port = int(option(services["standin"]["command"], "--port"))
    for name in GATEWAYS:
        environment: dict[str, str] = services[name]["environment"]
        for key, value in environment.items():
            field = key.removeprefix("AIBRIDGE_").lower()
            assert key.startswith("AIBRIDGE_"), key
            assert field in Settings.model_fields, f"{key} is no gateway setting"
            monkeypatch.setenv(key, value)
        settings = Settings()
        upstream = urlsplit(str(settings.upstream_url))
        assert (upstream.hostname, upstream.port) == ("standin", standin_port)
        assert services[name]["expose"] == [str(settings.port), str(settings.grpc_port)]


def test_gateways_get_their_shutdown_grace_before_sigkill(services: dict[str, Any]) -> None:
    for name in GATEWAYS:
        environment: dict[str, str] = services[name]["environment"]
        settings = Settings.model_validate(
            {key.removeprefix("AIBRIDGE_").lower(): value for key, value in environment.items()}
        )
        match = re.fullmatch(r"(\d+)s", services[name]["stop_grace_period"])
        assert match is not None, services[name]["stop_grace_period"]
        # SIGKILL must come after the drain and the grace, with room for closing.
        assert int(match.group(1)) >= settings.shutdown_drain_delay + settings.shutdown_grace + 5


def test_gateway_healthcheck_probes_readiness(services: dict[str, Any]) -> None:
    for name in GATEWAYS:
        url = urlsplit(healthcheck_url(services[name]))
        assert url.port == int(services[name]["environment"]["AIBRIDGE_PORT"])
        assert url.path == "/readyz"


def test_gateway_probe_paths_are_routes() -> None:
    assert {"/healthz", "/readyz"} <= gateway_get_routes()


def test_standin_command_uses_real_options(services: dict[str, Any]) -> None:
    command: list[str] = services["standin"]["command"]
    assert command[0] == "standin"
    used = {word for word in command[1:] if word.startswith("--")}
    assert used <= click_options("standin")
    assert option(command, "--host") == "0.0.0.0"  # noqa: S104 (reachable from the gateways)
    url = urlsplit(healthcheck_url(services["standin"]))
    assert url.port == int(option(command, "--port"))


def test_admin_token_comes_from_the_environment(services: dict[str, Any]) -> None:
    token = option(services["standin"]["command"], "--admin-token")
    match = re.fullmatch(r"\$\{AIBRIDGE_ADMIN_TOKEN:-([\w-]+)\}", token)
    assert match, token
    # The stand-in refuses a token not shaped like Coder's: the demo default must pass its
    # own option parsing (click runs the checks without starting the server).
    command = services["standin"]["command"]
    args = [match.group(1) if word == token else word for word in command[1:]]
    params = main.commands["standin"].make_context("standin", args).params
    assert params["admin_token"] == match.group(1)


def test_documented_token_commands_make_valid_tokens() -> None:
    # `$(openssl rand -hex 5)-$(openssl rand -hex 11)`: 10 and 22 hexadecimal characters.
    documented = "$(openssl rand -hex 5)-$(openssl rand -hex 11)"
    for path in (COMPOSE_FILE, DOCKER_DIR / "README.md", K8S_DIR / "demo" / "standin.yaml"):
        text = path.read_text()
        assert "openssl rand -hex 16" not in text, path
        assert documented in text, path
    # What those commands print, made the same way (5 and 11 random bytes, in hexadecimal).
    assert TOKEN_PATTERN.fullmatch(f"{secrets.token_hex(5)}-{secrets.token_hex(11)}")


def test_nginx_balances_over_the_gateway_services(
    services: dict[str, Any], nginx: list[dict[str, Any]]
) -> None:
    (upstream,) = find(nginx, "upstream")
    servers = {d["args"][0] for d in find(upstream["block"], "server")}
    assert servers == {f"{name}:{services[name]['expose'][0]}" for name in GATEWAYS}
    proxied = {d["args"][0] for d in find(nginx, "proxy_pass")}
    assert proxied == {f"http://{upstream['args'][0]}"}


def test_nginx_listens_where_compose_publishes(
    services: dict[str, Any], nginx: list[dict[str, Any]]
) -> None:
    (listen,) = find(nginx, "listen")
    (published,) = services["lb"]["ports"]
    assert published.rsplit(":", 1)[1] == listen["args"][0]
    health = urlsplit(healthcheck_url(services["lb"]))
    locations = {tuple(d["args"]) for d in find(nginx, "location")}
    assert ("=", health.path) in locations
    assert str(health.port) == listen["args"][0]


def test_nginx_runs_unprivileged(services: dict[str, Any], nginx: list[dict[str, Any]]) -> None:
    # A non-root nginx can only write to the tmpfs compose mounts.
    (writable,) = services["lb"]["tmpfs"]
    assert find(nginx, "user") == []
    for name in ("pid", "client_body_temp_path", "proxy_temp_path"):
        (directive,) = find(nginx, name)
        assert directive["args"][0].startswith(writable + "/"), name
