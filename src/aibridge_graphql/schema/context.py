"""The per-request GraphQL context every resolver sees as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aibridge_graphql.core.loaders import Loaders
from aibridge_graphql.settings import Settings


@dataclass(slots=True)
class GatewayContext:
    """Lives exactly as long as one request; built by the server for each one.

    The caller's credentials are held only by `loaders` (never logged, never cached beyond it).
    `request`/`response` are the HTTP layer's own objects, opaque to resolvers.
    """

    request: Any
    response: Any
    settings: Settings
    loaders: Loaders
    request_id: str
