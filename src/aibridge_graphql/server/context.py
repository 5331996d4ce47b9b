"""Building the per-request GraphQL context from an aiohttp request: request id and fresh
`Loaders` (the caller's credentials and `Cache-Control`, the request's deadline and call budget)."""

from __future__ import annotations

import asyncio
import functools
import uuid

from aiohttp import web

from aibridge_graphql.core.live import LiveHub
from aibridge_graphql.core.loaders import Loaders, loaders_for_request
from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.schema.context import GatewayContext
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

# Where a request-id middleware stores the id (taken from or added as `X-Request-Id`).
REQUEST_ID_KEY = web.RequestKey("aibridge_request_id", str)


def request_id_of(request: web.Request) -> str:
    """The request id a middleware stored on the request, or a fresh one."""
    existing = request.get(REQUEST_ID_KEY)
    if isinstance(existing, str) and existing:
        return existing
    new_id = uuid.uuid4().hex
    request[REQUEST_ID_KEY] = new_id
    return new_id


def build_context(
    request: web.Request,
    response: web.StreamResponse,
    *,
    settings: Settings,
    client: UpstreamClient,
    pricer: Pricer | None = None,
    live: LiveHub | None = None,
) -> GatewayContext:
    """Read the caller's credentials; the loaders, for this request only, are built on first use
    (after the engine's record projection) and closed when aiohttp's task for it ends. With
    `live`, subscriptions watch its views with the request's credentials."""

    def new_loaders(skip_records: frozenset[str]) -> Loaders:
        return loaders_for_request(
            client,
            settings,
            request.headers,
            pricer=pricer,
            skip_records=skip_records,
            close_with_task=False,  # first used in whichever task resolves first: closed below
        )

    context = GatewayContext(
        request=request,
        response=response,
        settings=settings,
        new_loaders=new_loaders,
        request_id=request_id_of(request),
        watch=None if live is None else functools.partial(live.watch, request.headers),
    )
    # aiohttp serves each request in a task of its own: when it ends (answered, or cancelled
    # because the client went away), upstream calls nobody awaits any more are cancelled.
    task = asyncio.current_task()
    if task is not None:
        task.add_done_callback(lambda _: context.close())
    return context
