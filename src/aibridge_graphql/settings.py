"""The gateway's configuration: one pydantic settings object, read from `AIBRIDGE_*` variables."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Coder's AI Bridge API prefixes: today's, and the legacy alias older releases only have.
PREFERRED_API_BASE_PATH = "/api/v2/ai-gateway"
LEGACY_API_BASE_PATH = "/api/v2/aibridge"


class Settings(BaseSettings):
    """Every knob of the gateway; validated once at start."""

    model_config = SettingsConfigDict(env_prefix="AIBRIDGE_", frozen=True, extra="ignore")

    # Upstream: the Coder deployment URL as the coder CLI takes it; the API path is derived.
    upstream_url: AnyHttpUrl = Field(default=AnyHttpUrl("http://127.0.0.1:8081"))
    # None (`auto`): detect the prefix (upstream/capabilities.py); a path forces that prefix.
    api_base_path: str | None = None
    connect_timeout: float = Field(default=3.0, gt=0)
    read_timeout: float = Field(default=15.0, gt=0)
    pool_timeout: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    retries: int = Field(default=2, ge=0, le=10)
    retry_backoff: float = Field(default=0.1, ge=0)
    # Distinct upstream requests of one GraphQL request that may be in flight at once: enough to
    # overlap round trips, few enough that one query cannot monopolize the upstream.
    upstream_concurrency: int = Field(default=8, ge=1)

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    graphiql: bool = True
    graphiql_assets_dir: str | None = None

    # Pagination and query limits.
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1, le=1000)
    max_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2000, ge=1)

    log_level: str = "INFO"
    # JSON lines (one object per record, with the request id) or plain text.
    log_format: Literal["json", "text"] = "json"

    # Automatic persisted queries (gateway/apq.py). `apq_manifest`: a JSON file of operations
    # registered at start (never evicted); `apq_persisted_only`: run only those.
    apq_enabled: bool = True
    apq_cache_size: int = Field(default=1000, ge=1)
    apq_manifest: str | None = None
    apq_persisted_only: bool = False

    # OpenTelemetry spans (needs the `[otel]` extra); exported per the OTEL_* variables.
    tracing: bool = False

    @field_validator("api_base_path")
    @classmethod
    def _normalize_base_path(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "auto"):
            return None
        return "/" + value.strip().strip("/")

    @model_validator(mode="after")
    def _persisted_only_needs_a_manifest(self) -> Settings:
        if self.apq_persisted_only and not self.apq_manifest:
            raise ValueError("apq_persisted_only needs apq_manifest (the operations to allow)")
        return self

    @property
    def api_base_url(self) -> str:
        """The AI Bridge API root before detection: the forced prefix, else today's prefix."""
        return str(self.upstream_url).rstrip("/") + (self.api_base_path or PREFERRED_API_BASE_PATH)
