"""The per-request GraphQL context: settings, request id and fresh `Loaders` (with credentials
and the request's deadline)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from aibridge_graphql.gateway.budget import CallBudget
from aibridge_graphql.gateway.loaders import Loaders
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.deadline import Deadline

# Where a request-id middleware stores the id (taken from or added as `X-Request-Id`).
REQUEST_ID_KEY = web.RequestKey("aibridge_request_id", str)


@dataclass(slots=True)
class GatewayContext:
    """What every resolver sees as `info.context`; lives exactly as long as one HTTP request.

    The caller's credentials are held only by `loaders` (never logged, never cached beyond it).
    """

    request: web.Request
    response: web.StreamResponse
    settings: Settings
    loaders: Loaders
    request_id: str
    extras: dict[str, Any] = field(default_factory=dict)


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
) -> GatewayContext:
    """Read the caller's credentials and build fresh loaders for this request only."""
    credentials = Credentials.from_headers(request.headers)
    loaders = Loaders(
        client,
        credentials,
        concurrency=settings.upstream_concurrency,
        deadline=Deadline.after(settings.request_deadline),
        budget=CallBudget(settings.upstream_call_budget),
    )
    # aiohttp serves each request in a task of its own: when it ends (answered, or cancelled
    # because the client went away), upstream calls nobody awaits any more are cancelled.
    task = asyncio.current_task()
    if task is not None:
        task.add_done_callback(lambda _: loaders.close())
    return GatewayContext(
        request=request,
        response=response,
        settings=settings,
        loaders=loaders,
        request_id=request_id_of(request),
    )
