"""The gateway's configuration: one pydantic settings object, read from `AIBRIDGE_*` variables."""

from __future__ import annotations

import os
import re
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Coder's AI Bridge API prefixes: today's, and the legacy alias older releases only have.
PREFERRED_API_BASE_PATH = "/api/v2/ai-gateway"
LEGACY_API_BASE_PATH = "/api/v2/aibridge"
# `AIBRIDGE_CORS_ORIGINS=*`: every origin, without credentials (server/cors.py).
ANY_ORIGIN = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A DNS name or IPv4 address (urlsplit lowercases it), or an IPv6 address (its brackets removed).
_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*|[0-9a-f:.]*:[0-9a-f:.]*")

_NOT_AN_ORIGIN = (
    "an origin is http(s)://host[:port], with no path, query or user info "
    "(a non-ASCII host in its punycode form)"
)


def normalize_origin(text: str) -> str:
    """`scheme://host[:port]` as a browser sends it in `Origin` (lowercase, no default port).

    Raises `ValueError` for anything else: a path, a query, user info, another scheme, a bad
    port, a non-ASCII host (its punycode form is the origin), and `null` (every sandboxed page
    and `file:` URL sends it, so allowing it would allow them all).
    """
    if text == "null":
        raise ValueError("the `null` origin cannot be allowed (every sandboxed page sends it)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a port that is no number from 0 to 65535
        raise ValueError(_NOT_AN_ORIGIN) from None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if (
        scheme not in _DEFAULT_PORTS
        or not _HOST.fullmatch(host)
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or "?" in text
        or "#" in text
    ):
        raise ValueError(_NOT_AN_ORIGIN)
    if ":" in host:
        host = f"[{host}]"
    suffix = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{suffix}"


# More `serve` worker processes than this is a typo, not a deployment.
MAX_WORKERS: Final = 1024
_ASCII_NUMBER = re.compile(r"[0-9]{1,5}")


def available_cores() -> int:
    """The CPUs this process may run on (its affinity mask; CPU quotas are not seen)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Settings(BaseSettings):
    """Every knob of the gateway; validated once at start."""

    model_config = SettingsConfigDict(env_prefix="AIBRIDGE_", frozen=True, extra="ignore")

    # Upstream: the Coder deployment URL as the coder CLI takes it; the API path is derived.
    upstream_url: AnyHttpUrl = Field(default=AnyHttpUrl("http://127.0.0.1:8081"))
    # None (`auto`): detect the prefix (upstream/capabilities.py); a path forces that prefix.
    api_base_path: str | None = None
    connect_timeout: float = Field(default=3.0, gt=0)
    # Per read of one attempt; the request deadline bounds the whole call anyway, so a longer
    # read timeout than the deadline would never fire.
    read_timeout: float = Field(default=10.0, gt=0)
    pool_timeout: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    retries: int = Field(default=2, ge=0, le=10)
    retry_backoff: float = Field(default=0.1, ge=0)
    # Distinct upstream requests of one GraphQL request that may be in flight at once: enough to
    # overlap round trips, few enough that one query cannot monopolize the upstream.
    # 32 sends a dashboard's 20 thread calls in one wave (8 took three round trips).
    upstream_concurrency: int = Field(default=32, ge=1)
    # Upstream attempts in flight at once for the whole process, all requests together: what
    # protects the upstream from many concurrent dashboards (below the connection pool's size,
    # so that a waiting call waits under its request deadline rather than the pool timeout).
    upstream_global_concurrency: int = Field(default=64, ge=1)
    # The largest upstream body read (decoded), in bytes: 8 MiB is several times the largest page
    # a real deployment serves, and 20 of them at once still fit a 500 MB process (README).
    max_upstream_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # One deadline for each GraphQL request, shared by all its upstream calls, retries and
    # backoff sleeps (seconds): fields not done by then are null with DEADLINE_EXCEEDED.
    request_deadline: float = Field(default=10.0, gt=0, le=600)

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # `serve` processes sharing the two ports (server/workers.py): a number, or `auto` for one per
    # core this process may use. 1: one process, no supervisor (as before workers existed).
    workers: int | Literal["auto"] = 1
    graphiql: bool = True
    # The gRPC face (grpc/), on the same host and event loop: 0 picks a free port.
    grpc_enabled: bool = True
    grpc_port: int = Field(default=9090, ge=0, le=65535)
    grpc_max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Calls in flight per HTTP/2 connection. grpc-core clients do not queue past the server's
    # limit: a burst beyond it on one connection fails (UNAVAILABLE, RST_STREAM). 1000 takes a
    # burst of 500 on one connection (docs/grpc.md#bursts-and-keepalive); the loaders' upstream
    # limits, not this one, bound the work behind them.
    grpc_max_concurrent_streams: int = Field(default=1000, ge=1, le=2**31 - 1)
    # Seconds: the server pings idle connections every keepalive_time and drops them when a ping
    # is not answered within keepalive_timeout; clients pinging more often than
    # keepalive_min_ping_interval are disconnected (too_many_pings). 10 s is the shortest
    # keepalive grpc-go and grpc-java clients allow, so none of their settings is refused.
    grpc_keepalive_time: float = Field(default=60.0, gt=0)
    grpc_keepalive_timeout: float = Field(default=20.0, gt=0)
    grpc_keepalive_min_ping_interval: float = Field(default=10.0, gt=0)
    # Clients may ping a connection with no call in flight (and the server pings it): a bursty
    # client keeps its connection warm between bursts instead of being sent GOAWAY for it.
    grpc_keepalive_permit_without_calls: bool = True
    graphiql_assets_dir: str | None = None
    # Browser pages on these origins may call /graphql and the exports (server/cors.py): exact
    # origins, comma-separated, or `*` alone (any origin, never with credentials); None: off.
    cors_origins: Annotated[tuple[str, ...] | None, NoDecode] = None
    # Seconds a browser may reuse a preflight's answer; Chromium caps it at 7200, Firefox 86400.
    cors_max_age: int = Field(default=600, ge=0, le=86400)
    # Graceful shutdown (server/shutdown.py), seconds. On SIGTERM/SIGINT both faces turn
    # not-ready at once, keep serving for the drain delay (so a balancer polling `/readyz` or gRPC
    # health moves traffic away first, and requests already on the wire are read), then close
    # their listeners; what is in flight then has the grace to finish and is cancelled after it.
    # 15 s: longer than the 10 s request deadline, so every GraphQL request accepted finishes;
    # with Kubernetes' 5 s preStop and the 1 s drain it fits the 30 s termination grace.
    shutdown_grace: float = Field(default=15.0, ge=0, le=3600)
    shutdown_drain_delay: float = Field(default=1.0, ge=0, le=600)

    # Pagination and query limits.
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1, le=1000)
    max_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2000, ge=1)
    # Upstream calls one request may cause: documents estimated above it are refused before they
    # run (schema/engine/estimate.py), and the loaders refuse calls beyond it
    # (core/call_budget.py). 100 leaves the README's views (21, 2 and 3 calls) far inside and
    # stops fan-out attacks (2,828).
    upstream_call_budget: int = Field(default=100, ge=1)

    # Live views (core/live/, docs/live.md): GraphQL subscriptions and gRPC watches, one shared
    # poller per caller and upstream request. Seconds between polls (at least 1: every poll is
    # an upstream call); failed polls back off exponentially up to `live_max_backoff`.
    live_poll_interval: float = Field(default=5.0, ge=1.0, le=3600)
    live_max_backoff: float = Field(default=60.0, ge=1.0, le=3600)
    # Open streams allowed in the process and per caller (token); more are refused RATE_LIMITED.
    live_max_streams: int = Field(default=10_000, ge=0)
    live_max_streams_per_caller: int = Field(default=1_000, ge=0)
    # Seconds without new activity after which a session counts as ended (Coder has no end
    # marker: a session stops growing). 5 minutes: agents pause between turns for less.
    live_session_idle: float = Field(default=300.0, ge=1.0, le=86_400)
    # Seconds between SSE keep-alive comments (and multipart heartbeats), so that proxies keep
    # an idle stream open.
    live_heartbeat_interval: float = Field(default=15.0, ge=1.0, le=300)

    log_level: str = "INFO"
    # JSON lines (one object per record, with the request id) or plain text.
    log_format: Literal["json", "text"] = "json"

    # Automatic persisted queries (server/apq.py). `apq_manifest`: a JSON file of operations
    # registered at start (never evicted); `apq_persisted_only`: run only those.
    apq_enabled: bool = True
    apq_cache_size: int = Field(default=1000, ge=1)
    apq_manifest: str | None = None
    apq_persisted_only: bool = False

    # Where registered queries live: this process (`memory`) or the Redis at `cache_url`
    # (`redis`), so that every replica behind a load balancer knows a hash one of them registered.
    apq_store: Literal["memory", "redis"] = "memory"

    # The shared response cache (core/cache.py), opt-in: raw upstream bodies per caller and
    # request. In process (an LRU bounded in entries and bytes) unless `cache_url` names a
    # Redis/Valkey (`redis://` or `rediss://`). Keys are an HMAC of the caller's token with
    # `cache_secret` (required when the cache is on), never the token.
    cache_enabled: bool = False
    cache_url: str | None = None
    cache_secret: SecretStr | None = None
    cache_max_entries: int = Field(default=10_000, ge=1)
    cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Seconds a Redis command may take before the cache counts as down (then: no cache).
    cache_timeout: float = Field(default=0.5, gt=0)
    # Seconds each resource's answers are served from the cache (0: never cached). Catalogues
    # change rarely; sessions, threads and interceptions grow while agents run.
    cache_ttl_models: float = Field(default=300.0, ge=0)
    cache_ttl_clients: float = Field(default=300.0, ge=0)
    cache_ttl_providers: float = Field(default=300.0, ge=0)
    cache_ttl_sessions: float = Field(default=10.0, ge=0)
    cache_ttl_threads: float = Field(default=10.0, ge=0)
    cache_ttl_interceptions: float = Field(default=10.0, ge=0)
    # Coder's spend figures (`aiSpend`, `aiGroupSpend`); off by default, since spend grows with
    # every priced call. A budget write through the gateway invalidates the writer's entries.
    cache_ttl_spend: float = Field(default=0.0, ge=0)

    # Negotiated prices (YAML or JSON) that win over genai-prices; validated at start
    # (aibridge_graphql.core.pricing.load_prices_file).
    prices_file: str | None = None

    # OpenTelemetry spans (needs the `[otel]` extra); exported per the OTEL_* variables.
    tracing: bool = False

    @field_validator("api_base_path")
    @classmethod
    def _normalize_base_path(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "auto"):
            return None
        return "/" + value.strip().strip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list | tuple):
            value = tuple(part for part in value if part)
            return value or None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _normalize_origins(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if ANY_ORIGIN in value:
            if len(value) > 1:
                raise ValueError("`*` allows every origin: give it alone, or only exact origins")
            return value
        normalized = []
        for position, origin in enumerate(value, start=1):
            try:
                normalized.append(normalize_origin(origin))
            except ValueError as error:
                raise ValueError(f"entry {position}: {error}") from None
        return tuple(dict.fromkeys(normalized))

    @field_validator("workers", mode="before")
    @classmethod
    def _parse_workers(cls, value: object) -> int | str:
        # Parsed here rather than by the union, so a bad value gets one message, not one per
        # member; ASCII digits only (`str.isdigit` accepts "²", which `int` refuses).
        text = value.strip().lower() if isinstance(value, str) else value
        if text == "auto":
            return "auto"
        if isinstance(text, str) and _ASCII_NUMBER.fullmatch(text):
            text = int(text)
        if isinstance(text, int) and not isinstance(text, bool) and 1 <= text <= MAX_WORKERS:
            return text
        raise ValueError(f"must be a whole number from 1 to {MAX_WORKERS}, or auto")

    @model_validator(mode="after")
    def _persisted_only_needs_a_manifest(self) -> Settings:
        if self.apq_persisted_only and not self.apq_manifest:
            raise ValueError("apq_persisted_only needs apq_manifest (the operations to allow)")
        return self

    @model_validator(mode="after")
    def _cache_needs_a_secret(self) -> Settings:
        if self.cache_enabled and not (self.cache_secret and self.cache_secret.get_secret_value()):
            raise ValueError("cache_enabled needs cache_secret (AIBRIDGE_CACHE_SECRET)")
        if self.cache_url is not None and not self.cache_url.startswith(("redis://", "rediss://")):
            raise ValueError("cache_url must be a redis:// or rediss:// URL")
        if self.apq_store == "redis" and not self.cache_url:
            raise ValueError("apq_store=redis needs cache_url (the Redis to share)")
        return self

    @property
    def worker_count(self) -> int:
        """How many `serve` processes `workers` asks for (`auto`: the cores available now)."""
        return available_cores() if self.workers == "auto" else self.workers

    @property
    def api_base_url(self) -> str:
        """The AI Bridge API root before detection: the forced prefix, else today's prefix."""
        return str(self.upstream_url).rstrip("/") + (self.api_base_path or PREFERRED_API_BASE_PATH)
