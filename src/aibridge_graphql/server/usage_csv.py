"""`GET /usage.csv`: the `usage` query's rows as CSV, with the caller's token.

Query parameters mirror the GraphQL arguments: `groupBy` (comma-separated `UsageDimension`s,
repeatable), the `SessionFilter` keys (`initiator`, `provider`, `providerName`, `model`,
`client`, `sessionId`, `startedAfter`, `startedBefore`) and `maxUpstreamCalls`. Whether the scan
was whole is in the `X-Usage-Complete` header (and `X-Usage-Incomplete-Reason`); errors are
JSON `{"message": ...}` with a 4xx status (502/504 when the upstream fails).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from aibridge_graphql.core.errors import (
    BAD_USER_INPUT,
    DEADLINE_EXCEEDED,
    FORBIDDEN,
    NOT_FOUND,
    UNAUTHENTICATED,
    BadUserInput,
    describe,
)
from aibridge_graphql.core.loaders import loaders_for_request
from aibridge_graphql.core.usage import Dimension, aggregate_usage, render_csv, source_for
from aibridge_graphql.server.keys import CLIENT_KEY, PRICER_KEY, SETTINGS_KEY
from aibridge_graphql.upstream.search_query import SessionFilter

logger = logging.getLogger("aibridge_graphql.gateway")

_FILTER_PARAMS = {
    "initiator": "initiator",
    "provider": "provider",
    "providerName": "provider_name",
    "model": "model",
    "client": "client",
    "sessionId": "session_id",
}
_TIME_PARAMS = {"startedAfter": "started_after", "startedBefore": "started_before"}
# The headers that describe the scan; a browser page on another origin may read them
# (server/cors.py exposes them).
COMPLETE_HEADER: Final = "X-Usage-Complete"
INCOMPLETE_REASON_HEADER: Final = "X-Usage-Incomplete-Reason"
UPSTREAM_CALLS_HEADER: Final = "X-Usage-Upstream-Calls"
SOURCE_HEADER: Final = "X-Usage-Source"
USAGE_HEADERS: Final = (
    COMPLETE_HEADER,
    INCOMPLETE_REASON_HEADER,
    UPSTREAM_CALLS_HEADER,
    SOURCE_HEADER,
)
_KNOWN = {"groupBy", "maxUpstreamCalls", *_FILTER_PARAMS, *_TIME_PARAMS}
_STATUS = {
    BAD_USER_INPUT: 400,
    UNAUTHENTICATED: 401,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    "RATE_LIMITED": 429,
    DEADLINE_EXCEEDED: 504,
}


def _one(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadUserInput(f"Query parameter {name!r} is given more than once.")
    return values[0] if values else None


def _time(name: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadUserInput(f"Query parameter {name!r} is not an RFC 3339 time.") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_group_by(values: list[str]) -> list[Dimension]:
    """`groupBy=USER,MODEL&groupBy=DAY` → dimensions, case-insensitive; unknown → 400."""
    out: list[Dimension] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().upper()
            if not name:
                continue
            try:
                out.append(Dimension(name))
            except ValueError:
                known = ", ".join(d.value for d in Dimension)
                raise BadUserInput(
                    f"Unknown groupBy dimension {part!r} (one of {known})."
                ) from None
    return out


def parse_filter(request: web.Request) -> SessionFilter:
    """The `SessionFilter` the query parameters describe."""
    unknown = sorted(set(request.query) - _KNOWN)
    if unknown:
        raise BadUserInput(f"Unknown query parameter {unknown[0]!r}.")
    values: dict[str, object] = {}
    for param, key in _FILTER_PARAMS.items():
        text = _one(request, param)
        if text is not None:
            values[key] = text
    for param, key in _TIME_PARAMS.items():
        text = _one(request, param)
        if text is not None:
            values[key] = _time(param, text)
    return SessionFilter(**values)  # type: ignore[arg-type]


def _max_calls(request: web.Request, call_budget: int) -> int:
    text = _one(request, "maxUpstreamCalls")
    if text is None:
        return call_budget
    # ASCII digits only: `str.isdigit` also accepts `²`, which `int()` refuses.
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= call_budget:
        raise BadUserInput(f"`maxUpstreamCalls` must be between 1 and {call_budget}.")
    return int(text)


def _error(exc: BaseException) -> web.Response:
    described = describe(exc)
    if described is None:
        raise exc
    message, extensions = described
    status = _STATUS.get(str(extensions.get("code")), 502)
    return web.json_response({"message": message}, status=status)


async def usage_csv(request: web.Request) -> web.StreamResponse:
    """The handler (module docstring)."""
    settings = request.app[SETTINGS_KEY]
    loaders = loaders_for_request(
        request.app[CLIENT_KEY], settings, request.headers, pricer=request.app[PRICER_KEY]
    )
    try:
        group_by = parse_group_by(request.query.getall("groupBy", []))
        search = parse_filter(request)
        report = await aggregate_usage(
            loaders,
            search,
            group_by,
            source=await source_for(loaders),
            max_calls=_max_calls(request, settings.upstream_call_budget),
        )
    except Exception as exc:  # known failures become JSON; anything else is a bug (500)
        logger.debug("usage.csv failed: %s", type(exc).__name__)
        return _error(exc)
    finally:
        loaders.close()
    headers = {
        "Content-Disposition": 'attachment; filename="usage.csv"',
        COMPLETE_HEADER: "true" if report.complete else "false",
        UPSTREAM_CALLS_HEADER: str(report.scanned.upstream_calls),
        SOURCE_HEADER: report.source,
    }
    if report.incomplete_reason:
        headers[INCOMPLETE_REASON_HEADER] = report.incomplete_reason
    return web.Response(
        text=render_csv(report), content_type="text/csv", charset="utf-8", headers=headers
    )
