"""`GET /`: a pointer to the gateway's endpoints instead of a bare 404."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.Response]]


def endpoints(graphiql: bool) -> dict[str, str]:
    """Each path the gateway serves and what it is."""
    graphql = "GraphQL over HTTP: POST, or GET ?query=…"
    return {
        "/graphql": graphql + ("; GraphiQL in a browser" if graphiql else ""),
        "/healthz": "liveness: the process answers",
        "/usage.csv": "token usage and cost as CSV: GET ?groupBy=USER,MODEL… with the token",
        "/readyz": "readiness: the upstream answers",
        "/metrics": "Prometheus metrics",
    }


def _page(listed: dict[str, str]) -> str:
    items = "".join(
        f'<li><a href="{path}">{path}</a> — {html.escape(what)}</li>'
        for path, what in listed.items()
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>aibridge-graphql</title></head>'
        f"<body><h1>aibridge-graphql</h1><ul>{items}</ul></body></html>"
    )


def index_handler(graphiql: bool) -> Handler:
    """The `GET /` handler: JSON, or a page of links for a browser (`Accept: text/html`)."""
    listed = endpoints(graphiql)
    body = {"service": "aibridge-graphql", "graphql": "/graphql", "endpoints": listed}
    page = _page(listed)

    async def index(request: web.Request) -> web.Response:
        if "text/html" in request.headers.get("Accept", ""):
            return web.Response(text=page, content_type="text/html")
        return web.json_response(body)

    return index
