"""A request's loaders, built one way for every face: GraphQL, gRPC and `/usage.csv`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aibridge_graphql.core.cache import bypass_from, cache_for
from aibridge_graphql.core.call_budget import CallBudget
from aibridge_graphql.core.loaders.pages import Loaders
from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.deadline import Deadline


def loaders_for_request(
    client: UpstreamClient,
    settings: Settings,
    headers: Mapping[str, str],
    *,
    pricer: Pricer | None = None,
    within_seconds: float | None = None,
    skip_records: frozenset[str] = frozenset(),
    close_with_task: bool = True,
) -> Loaders:
    """Fresh loaders for one request or call: the caller's credentials and what its
    `Cache-Control` asks of the response cache, both read from `headers` (HTTP headers, or gRPC
    metadata: a mapping whose lookups of lower-case names find any case), the settings'
    concurrency and call budget, and one deadline (`request_deadline`, or `within_seconds` when
    the caller's own is sooner); `skip_records`: the record lists the request never reads.

    They are closed when the task that asked for them ends, answered or cancelled (its client
    went away): aiodataloader runs the upstream calls in tasks of its own, which cancelling the
    request's task does not reach. A caller that builds them from another task
    (`close_with_task=False`) closes them itself.
    """
    credentials = Credentials.from_headers(headers)
    seconds = settings.request_deadline
    if within_seconds is not None:
        seconds = min(seconds, within_seconds)
    shared = cache_for(client, settings)
    cache = None
    if shared is not None:
        cache = shared.view(client, credentials, bypass_from(headers.get("cache-control")))
    loaders = Loaders(
        client,
        credentials,
        concurrency=settings.upstream_concurrency,
        deadline=Deadline.after(seconds),
        call_budget=CallBudget(settings.upstream_call_budget),
        pricer=pricer,
        cache=cache,
        skip_records=skip_records,
    )
    task = asyncio.current_task() if close_with_task else None
    if task is not None:
        task.add_done_callback(lambda _: loaders.close())
    return loaders
