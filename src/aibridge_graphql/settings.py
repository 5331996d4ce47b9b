"""The gateway's configuration: one pydantic settings object, read from `AIBRIDGE_*` variables."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the gateway; validated once at start."""

    model_config = SettingsConfigDict(env_prefix="AIBRIDGE_", frozen=True, extra="ignore")

    # Upstream: the Coder deployment URL as the coder CLI takes it; the API path is derived.
    upstream_url: AnyHttpUrl = Field(default=AnyHttpUrl("http://127.0.0.1:8081"))
    api_base_path: str = "/api/v2/aibridge"
    connect_timeout: float = Field(default=3.0, gt=0)
    read_timeout: float = Field(default=15.0, gt=0)
    pool_timeout: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    max_keepalive_connections: int = Field(default=20, ge=0)
    retries: int = Field(default=2, ge=0, le=10)
    retry_backoff: float = Field(default=0.1, ge=0)
    # Distinct upstream requests of one GraphQL request that may be in flight at once.
    upstream_concurrency: int = Field(default=16, ge=1)

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

    @field_validator("api_base_path")
    @classmethod
    def _normalize_base_path(cls, value: str) -> str:
        return "/" + value.strip("/")

    @property
    def api_base_url(self) -> str:
        """The absolute URL of the AI Bridge API root, e.g. `https://coder.example.com/api/v2/aibridge`."""
        return str(self.upstream_url).rstrip("/") + self.api_base_path
