"""The per-request GraphQL context every resolver sees as `info.context`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aibridge_graphql.core.live import Watch
from aibridge_graphql.core.loaders import Loaders
from aibridge_graphql.settings import Settings


@dataclass(slots=True)
class GatewayContext:
    """Lives exactly as long as one request; built by the server for each one.

    The caller's credentials are held only by the loaders (never logged, never cached beyond
    them), which `new_loaders` builds on first use: by then the engine's record projection has
    set `skip_records` (the record lists the operation never reads), which they are built with.
    `request`/`response` are the HTTP layer's own objects, opaque to resolvers. `watch` opens a
    live view's stream for this caller (None where live views are not served); a subscription
    `renew`s the scope before each event.
    """

    request: Any
    response: Any
    settings: Settings
    new_loaders: Callable[[frozenset[str]], Loaders]
    request_id: str
    skip_records: frozenset[str] = frozenset()
    watch: Watch | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def loaders(self) -> Loaders:
        """The request's loaders (built on first use)."""
        loaders = self._loaders
        if loaders is None:
            loaders = self._loaders = self.new_loaders(self.skip_records)
        return loaders

    def close(self) -> None:
        """Cancel the request's upstream work still running and free what it loaded."""
        if self._loaders is not None:
            self._loaders.close()

    def renew(self) -> None:
        """A new scope for the next event of a stream: the previous event's loaders are closed,
        the next use builds fresh ones (a new deadline and call budget)."""
        self.close()
        self._loaders = None
