"""docker/haproxy.cfg checked by `haproxy -c` (Debian's HAProxy), and against compose, the app's
routes and the settings: the balancer the replicas test runs (tests/integration/test_replicas.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from aibridge_graphql.settings import Settings
from tests.support.docker_checks import COMPOSE_FILE, gateway_get_routes, load_yaml_documents
from tests.support.haproxy import (
    BACKEND,
    DRAIN_DELAY_S,
    HAPROXY_CFG,
    check_config,
    loopback_config,
    sections,
)

GATEWAYS = ("gateway-1", "gateway-2")
# What `haproxy -c` may warn about here: the compose services' names do not resolve outside
# compose, and a machine without nameservers leaves the `resolvers` section empty.
UNRESOLVED = re.compile(r"could not resolve address '(gateway-\d)'")
NO_NAMESERVER = "has no nameservers configured"


@pytest.fixture(scope="module")
def config() -> dict[str, list[list[str]]]:
    return sections(HAPROXY_CFG.read_text())


@pytest.fixture(scope="module")
def backend(config: dict[str, list[list[str]]]) -> list[list[str]]:
    return config[f"backend {BACKEND}"]


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    (document,) = load_yaml_documents(COMPOSE_FILE)
    result: dict[str, Any] = document["services"]
    return result


def directive(directives: list[list[str]], *words: str) -> list[str]:
    """The one directive starting with `words`, whole."""
    found = [d for d in directives if d[: len(words)] == list(words)]
    assert len(found) == 1, (words, found)
    return found[0]


def seconds(value: str) -> float:
    """An HAProxy time (`250ms`, `1s`, `2m`; a bare number is milliseconds)."""
    match = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", value)
    assert match, value
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    return int(match.group(1)) * unit[match.group(2) or "ms"]


def server_option(backend: list[list[str]], name: str) -> str:
    words = directive(backend, "default-server")
    return words[words.index(name) + 1]


def test_haproxy_accepts_the_shipped_config(tmp_path: Path) -> None:
    code, warnings = check_config(HAPROXY_CFG.read_text(), tmp_path)
    assert code == 0, warnings
    unresolved = {m.group(1) for w in warnings if (m := UNRESOLVED.search(w))}
    assert unresolved <= set(GATEWAYS)
    assert all(UNRESOLVED.search(w) or NO_NAMESERVER in w for w in warnings), warnings


def test_haproxy_rejects_a_broken_config(tmp_path: Path) -> None:
    broken = HAPROXY_CFG.read_text().replace("balance leastconn", "balance leastconns")
    code, _ = check_config(broken, tmp_path)
    assert code != 0


def test_the_replicas_test_config_is_valid_and_quiet(tmp_path: Path) -> None:
    servers = {"r1": 1, "r2": 2, "r3": 3}
    text = loopback_config(HAPROXY_CFG.read_text(), 4, servers, tmp_path / "api.sock")
    code, warnings = check_config(text, tmp_path)
    assert code == 0, warnings
    assert all(NO_NAMESERVER in w for w in warnings), warnings
    # Only the addresses and the two test hooks differ from the shipped file.
    assert sections(text)[f"backend {BACKEND}"][-3:] == [
        ["server", name, f"127.0.0.1:{port}"] for name, port in servers.items()
    ]


def test_it_balances_over_the_compose_gateways(
    backend: list[list[str]], services: dict[str, Any]
) -> None:
    servers = {d[1]: d[2] for d in backend if d[0] == "server"}
    assert servers == {name: f"{name}:{services[name]['expose'][0]}" for name in GATEWAYS}


def test_it_listens_where_compose_publishes_the_balancer(
    config: dict[str, list[list[str]]], services: dict[str, Any]
) -> None:
    frontend = config["frontend graphql"]
    (published,) = services["lb"]["ports"]
    assert directive(frontend, "bind") == ["bind", f":{published.rsplit(':', 1)[1]}"]
    lb_health = urlsplit(next(p for p in services["lb"]["healthcheck"]["test"] if "://" in p))
    assert directive(frontend, "monitor-uri") == ["monitor-uri", lb_health.path]
    assert directive(frontend, "default_backend") == ["default_backend", BACKEND]


def test_the_health_check_is_readiness(backend: list[list[str]]) -> None:
    assert directive(backend, "option", "httpchk") == ["option", "httpchk", "GET", "/readyz"]
    assert "/readyz" in gateway_get_routes()
    assert directive(backend, "http-check") == ["http-check", "expect", "status", "200"]
    assert "check" in directive(backend, "default-server")


def test_the_drain_delay_outlasts_marking_a_replica_down(backend: list[list[str]]) -> None:
    # A replica given SIGTERM fails its next check, then `fall - 1` more at `fastinter`; each
    # of those 503s is answered at once (no upstream call). Half a second is left for them.
    inter = seconds(server_option(backend, "inter"))
    fastinter = seconds(server_option(backend, "fastinter"))
    fall = int(server_option(backend, "fall"))
    assert inter + (fall - 1) * fastinter + 0.5 <= DRAIN_DELAY_S


def test_only_requests_that_never_reached_a_replica_are_retried(
    config: dict[str, list[list[str]]],
) -> None:
    defaults = config["defaults"]
    # A retry-on beyond conn-failure would replay requests a replica may have acted on.
    assert directive(defaults, "retry-on") == ["retry-on", "conn-failure"]
    assert int(directive(defaults, "retries")[1]) >= 1
    assert directive(defaults, "option", "redispatch") == ["option", "redispatch", "1"]


def test_a_replica_gets_longer_than_the_request_deadline(
    config: dict[str, list[list[str]]],
) -> None:
    timeout = seconds(directive(config["defaults"], "timeout", "server")[2])
    assert timeout > Settings().request_deadline
