"""One DataLoader per upstream resource, keyed by the normalized `UpstreamRequest`.

The same key costs one call however many fields ask for it; distinct keys of one tick go out
concurrently, bounded by the request's slots (resources.py); a failing key fails only itself.
Each list page is noted in the request's entity index (index.py) before its key resolves, so a
lookup waiting for it finds its entities. Each loader is built on first use: most requests need
one or two.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

from aiodataloader import DataLoader
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from aibridge_graphql.core.errors import UpstreamUnsupported
from aibridge_graphql.core.loaders.index import EntityIndex
from aibridge_graphql.core.loaders.resources import RequestResources
from aibridge_graphql.core.scope import observe_batch
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.errors import UpstreamProtocolError
from aibridge_graphql.upstream.requests import UpstreamRequest

K = TypeVar("K")
V = TypeVar("V")
ModelT = TypeVar("ModelT", bound=BaseModel)

# `GET /providers` answers bare names (generated docs) or objects (after coder/coder#28966).
_PROVIDERS = TypeAdapter(list[m.Provider | str])


def _loader(
    name: str, batch: Callable[[list[K]], Awaitable[list[V | Exception]]]
) -> DataLoader[K, V]:
    async def batch_load(keys: list[K]) -> list[V]:
        observe_batch(name, len(keys))
        # aiodataloader fails a key whose value is an Exception; its types do not say so.
        return cast(list[V], await batch(keys))

    return DataLoader(batch_load_fn=batch_load)


class UpstreamLoaders:
    """The request's DataLoaders of upstream resources (see the module docstring)."""

    def __init__(
        self,
        resources: RequestResources,
        index: EntityIndex,
        skip_records: frozenset[str] = frozenset(),
    ) -> None:
        self._resources = resources
        self._client = resources.client
        self._index = index
        # Record lists (upstream/projection.py) this request never reads: its pages are parsed
        # without them. Fixed at construction (the face chose them before building the loaders).
        self._skip_records = skip_records

    @functools.cached_property
    def interceptions(self) -> DataLoader[UpstreamRequest, m.ListInterceptionsResponse]:
        return _loader(
            "interceptions",
            self._model_batch(m.ListInterceptionsResponse, self._index.saw_interceptions),
        )

    @functools.cached_property
    def sessions(self) -> DataLoader[UpstreamRequest, m.ListSessionsResponse]:
        return _loader(
            "sessions", self._model_batch(m.ListSessionsResponse, self._index.saw_sessions)
        )

    @functools.cached_property
    def session_threads(self) -> DataLoader[UpstreamRequest, m.SessionThreadsResponse]:
        return _loader(
            "session_threads",
            self._model_batch(m.SessionThreadsResponse, self._index.saw_threads),
        )

    @functools.cached_property
    def models(self) -> DataLoader[UpstreamRequest, list[str]]:
        return _loader("models", self._strings_batch)

    @functools.cached_property
    def clients(self) -> DataLoader[UpstreamRequest, list[str]]:
        return _loader("clients", self._strings_batch)

    @functools.cached_property
    def providers(self) -> DataLoader[UpstreamRequest, list[m.Provider]]:
        return self.each("providers", self._fetch_providers)

    @functools.cached_property
    def ai_spend(self) -> DataLoader[UpstreamRequest, m.UserAISpendStatus]:
        # Coder's spend routes (AI Gateway era, outside its prefix), one call per distinct key.
        return self.each("ai_spend", self._spend_fetcher(m.UserAISpendStatus))

    @functools.cached_property
    def groups_ai_spend(self) -> DataLoader[UpstreamRequest, m.OrganizationGroupsAISpend]:
        return self.each("groups_ai_spend", self._spend_fetcher(m.OrganizationGroupsAISpend))

    def each(self, name: str, find: Callable[[K], Coroutine[Any, Any, V]]) -> DataLoader[K, V]:
        """A loader whose keys are found one `find` each, concurrently, as the request's work."""

        async def batch(keys: list[K]) -> list[V | Exception]:
            return await self._resources.settle(find(key) for key in keys)

        return _loader(name, batch)

    def clear(self) -> None:
        """Drop the loaders and what they hold: their batch functions refer back to this object
        (a reference cycle), so without this the request's pages, models and futures would wait
        for the cycle collector; dropped, they are freed at once."""
        drop(self)

    # -- the fetches --------------------------------------------------------------------------

    async def _fetch(self, request: UpstreamRequest, model_type: type[ModelT]) -> ModelT:
        return await self._resources.load(
            request,
            lambda content: self._client.parse_model(
                request, content, model_type, self._skip_records
            ),
        )

    def _model_batch(
        self, model_type: type[ModelT], saw: Callable[[UpstreamRequest, ModelT], None]
    ) -> Callable[[list[UpstreamRequest]], Awaitable[list[ModelT | Exception]]]:
        async def fetch_and_note(request: UpstreamRequest) -> ModelT:
            response = await self._fetch(request, model_type)
            # Noted before the key's future resolves, so waiting lookups find the entities.
            self._index.note(functools.partial(saw, request, response))
            return response

        async def batch(keys: list[UpstreamRequest]) -> list[ModelT | Exception]:
            return await self._resources.settle(fetch_and_note(key) for key in keys)

        return batch

    async def _strings_batch(self, keys: list[UpstreamRequest]) -> list[list[str] | Exception]:
        return await self._resources.settle(self._fetch_strings(key) for key in keys)

    async def _fetch_strings(self, request: UpstreamRequest) -> list[str]:
        return await self._resources.load(
            request, functools.partial(self._client.parse_strings, request)
        )

    async def _fetch_providers(self, request: UpstreamRequest) -> list[m.Provider]:
        if (await self._resources.capabilities()).providers is False:
            raise UpstreamUnsupported(
                "This Coder release has no `GET /providers` (added with the AI Gateway API); "
                "the providers in use are listed on each session (`Session.providers`).",
                missing="GET /providers",
                # The providers are on the sessions (GraphQL `Session.providers`, gRPC
                # `aibridge.v1.Session.providers`), not `sessions` itself.
                instead="Session.providers",
            )

        def parse(content: bytes) -> list[m.Provider]:
            try:
                items = _PROVIDERS.validate_python(self._client.parse_json(request, content))
            except PydanticValidationError:
                raise UpstreamProtocolError("upstream /providers: not a provider list") from None
            return [m.Provider(name=item) if isinstance(item, str) else item for item in items]

        return await self._resources.load(request, parse)

    def _spend_fetcher(
        self, model_type: type[ModelT]
    ) -> Callable[[UpstreamRequest], Coroutine[Any, Any, ModelT]]:
        async def fetch(request: UpstreamRequest) -> ModelT:
            await self._resources.require_spend_routes("GET", request)
            return await self._fetch(request, model_type)

        return fetch


def drop(owner: object) -> None:
    """Clear and forget the DataLoaders an object built with `cached_property`."""
    for name, loader in list(vars(owner).items()):
        if isinstance(loader, DataLoader):
            loader.clear_all()
            del owner.__dict__[name]
