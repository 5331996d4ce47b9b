"""The stand-in's aiohttp application: Coder's AI Bridge management API under /api/v2/aibridge.

Each request authenticates, parses its parameters and runs all of its queries in one read
transaction on a worker thread (the event loop never touches SQLite), in the order Coder's
handlers validate things, so the first error reported is the one Coder would report.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiMapping

from aibridge_graphql.standin import render
from aibridge_graphql.standin.auth import (
    Caller,
    authenticate,
    token_from_request,
    www_authenticate,
)
from aibridge_graphql.standin.errors import ApiError, FieldError
from aibridge_graphql.standin.goparse import go_quote
from aibridge_graphql.standin.params import (
    INVALID_PARAMS,
    check_list_limit,
    first_value,
    parse_pagination,
    parse_thread_page,
)
from aibridge_graphql.standin.search import (
    SearchError,
    SessionSearch,
    parse_clients_query,
    parse_interceptions_query,
    parse_models_query,
    parse_sessions_query,
)
from aibridge_graphql.standin.store import (
    DbLookups,
    ReadPool,
    children_by_interception,
    count_interceptions,
    count_sessions,
    interception_position,
    interception_session_id,
    list_clients,
    list_interceptions,
    list_models,
    list_sessions,
    prepare_for_serving,
    search_where,
    session_cursor_position,
    session_exists,
    thread_rows,
)
from aibridge_graphql.standin.threads import ThreadData, session_item, session_threads

API_PREFIX = "/api/v2/aibridge"
POOL = web.AppKey("pool", ReadPool)
Query = MultiMapping[str]
Json = Any
T = TypeVar("T")
Work = Callable[[sqlite3.Connection, Caller, Query], Json]

log = logging.getLogger(__name__)

# Route name → the message of an unexpected error on it (Coder's per-handler 500 messages).
_INTERNAL_MESSAGES = {
    "interceptions": "Internal error getting AI Bridge interceptions.",
    "sessions": "Internal error getting AI Bridge sessions.",
    "session": "Internal error fetching session threads.",
    "models": "Internal error getting AI Bridge models.",
    "clients": "Internal error getting AI Bridge clients.",
}


def _dumps(body: Json) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _json_response(body: Json, status: int = 200) -> web.Response:
    return web.Response(text=_dumps(body), status=status, content_type="application/json")


def _search(parse: Callable[[], T], message: str) -> T:
    """Run a `q` parser, turning its validation errors into the endpoint's 400."""
    try:
        return parse()
    except SearchError as exc:
        validations = [FieldError(v.field, v.detail) for v in exc.validations]
        raise ApiError(400, message, validations=validations) from None


def _endpoint(work: Work) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler that authenticates, then runs `work` in one read transaction off the loop."""

    async def handler(request: web.Request) -> web.Response:
        token = token_from_request(request)
        query = request.query

        def run(conn: sqlite3.Connection) -> str:
            caller = authenticate(conn, token, time.time_ns() // 1000)
            # Serialized on the worker too: a 1000-item page is megabytes of JSON.
            return _dumps(work(conn, caller, query))

        text = await request.app[POOL].run(run)
        return web.Response(text=text, content_type="application/json")

    return handler


# --- handlers ------------------------------------------------------------------------------


def _interceptions(conn: sqlite3.Connection, caller: Caller, query: Query) -> Json:
    page = parse_pagination(query)
    if page.after_id is not None and page.offset:
        raise ApiError(
            400,
            INVALID_PARAMS,
            "Cannot use both after_id and offset pagination in the same request.",
        )
    limit = check_list_limit(page)
    search = _search(
        lambda: parse_interceptions_query(
            first_value(query, "q"), caller_id=caller.user_id, lookups=DbLookups(conn)
        ),
        "Invalid workspace search query.",  # sic: Coder's own (copy-pasted) message
    )
    where = search_where(search, authorized=caller.authorized)
    cursor = None
    if page.after_id is not None:
        cursor = interception_position(conn, page.after_id, authorized=caller.authorized)
        if cursor is None:
            raise ApiError(
                400,
                "Invalid pagination cursor.",
                f"after_id: interception {page.after_id} not found: invalid pagination cursor",
            )
    count = count_interceptions(conn, where)
    rows = list_interceptions(conn, where, cursor=cursor, limit=limit, offset=page.offset)
    ids = [row["id"] for row in rows]
    tokens, prompts, tools = (
        children_by_interception(conn, table, ids)
        for table in ("token_usages", "user_prompts", "tool_usages")
    )
    results = [
        render.interception(
            row, tokens.get(row["id"], []), prompts.get(row["id"], []), tools.get(row["id"], [])
        )
        for row in rows
    ]
    return {"count": count, "results": results}


def _sessions(conn: sqlite3.Connection, caller: Caller, query: Query) -> Json:
    page = parse_pagination(query)  # after_id is validated, then ignored
    after_session_id = first_value(query, "after_session_id")
    if after_session_id and page.offset:
        raise ApiError(
            400,
            INVALID_PARAMS,
            "Cannot use both after_session_id and offset pagination in the same request.",
        )
    limit = check_list_limit(page)
    search = _search(
        lambda: parse_sessions_query(
            first_value(query, "q"), caller_id=caller.user_id, lookups=DbLookups(conn)
        ),
        "Invalid session search query.",
    )
    cursor = None
    if after_session_id:
        target = search_where(
            SessionSearch(session_id=after_session_id), authorized=caller.authorized
        )
        position = session_cursor_position(conn, after_session_id)
        if position is None or not session_exists(conn, target):
            raise ApiError(
                400,
                "Query parameter has invalid value.",
                f"after_session_id: session {go_quote(after_session_id)} not found",
            )
        cursor = (position, after_session_id)
    where = search_where(search, authorized=caller.authorized)
    count = count_sessions(conn, where)
    sessions = list_sessions(conn, where, cursor=cursor, limit=limit, offset=page.offset)
    return {"count": count, "sessions": [session_item(s) for s in sessions]}


def _check_thread_cursor(
    conn: sqlite3.Connection, caller: Caller, name: str, cursor: str | None, session_id: str
) -> None:
    """validateInterceptionCursor: the cursor must be an interception of this session."""
    if cursor is None:
        return
    owner = interception_session_id(conn, cursor, authorized=caller.authorized)
    if owner is None:
        detail = f"{name}: interception {cursor} not found: invalid pagination cursor"
    elif owner != session_id:
        detail = (
            f"{name}: interception {cursor} does not belong to session {session_id}: "
            "invalid pagination cursor"
        )
    else:
        return
    raise ApiError(400, "Invalid pagination cursor.", detail)


def _session_threads(
    conn: sqlite3.Connection, caller: Caller, query: Query, session_id: str
) -> Json:
    page = parse_thread_page(query)
    where = search_where(SessionSearch(session_id=session_id), authorized=caller.authorized)
    found = list_sessions(conn, where, cursor=None, limit=1, offset=0)
    if not found:
        raise ApiError(404, "Session not found.")
    _check_thread_cursor(conn, caller, "after_id", page.after_id, session_id)
    _check_thread_cursor(conn, caller, "before_id", page.before_id, session_id)
    # Upstream's "all threads" query has limit 0, which its SQL turns into 50: the summary's
    # metadata covers the first 50 threads only.
    first_rows = thread_rows(conn, session_id)
    rows = thread_rows(
        conn, session_id, after_id=page.after_id, before_id=page.before_id, limit=page.limit
    )
    first_ids = [row["id"] for row in first_rows]
    page_ids = [row["id"] for row in rows]
    tokens = children_by_interception(
        conn, "token_usages", list(dict.fromkeys(first_ids + page_ids))
    )
    data = ThreadData(
        rows=rows,
        tokens=tokens,
        tools=children_by_interception(conn, "tool_usages", page_ids),
        prompts=children_by_interception(conn, "user_prompts", page_ids),
        thoughts=children_by_interception(conn, "model_thoughts", page_ids),
    )
    summary_metadata = [t["metadata"] for i in first_ids for t in tokens.get(i, [])]
    return session_threads(found[0], data, summary_metadata)


def _models(conn: sqlite3.Connection, caller: Caller, query: Query) -> Json:
    page = parse_pagination(query)
    limit = check_list_limit(page)
    prefix = _search(
        lambda: parse_models_query(first_value(query, "q")),
        "Invalid AI Bridge models search query.",
    )
    return list_models(conn, prefix, authorized=caller.authorized, limit=limit, offset=page.offset)


def _clients(conn: sqlite3.Connection, caller: Caller, query: Query) -> Json:
    page = parse_pagination(query)
    limit = check_list_limit(page)
    prefix = _search(
        lambda: parse_clients_query(first_value(query, "q")),
        "Invalid AI Bridge clients search query.",
    )
    return list_clients(conn, prefix, authorized=caller.authorized, limit=limit, offset=page.offset)


async def _session_handler(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]

    def work(conn: sqlite3.Connection, caller: Caller, query: Query) -> Json:
        return _session_threads(conn, caller, query, session_id)

    return await _endpoint(work)(request)


async def _openapi(_: web.Request) -> web.Response:
    document = resources.files("aibridge_graphql.standin").joinpath("openapi.json")
    if not document.is_file():
        raise ApiError(404, "Route not found.")
    return web.Response(text=document.read_text(), content_type="application/json")


# --- errors and wiring ---------------------------------------------------------------------


@web.middleware
async def _coder_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error in Coder's `{message, detail?, validations?}` shape, never a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        response = _json_response(exc.body(), exc.status)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = www_authenticate(request, exc)
        return response
    except web.HTTPMethodNotAllowed as exc:
        response = _json_response({"message": "Method not allowed."}, 405)
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPNotFound:
        return _json_response({"message": "Route not found."}, 404)
    except web.HTTPException:
        raise
    except Exception as exc:
        route = request.match_info.route.name or ""
        log.exception("stand-in request failed: %s %s", request.method, request.path)
        message = _INTERNAL_MESSAGES.get(route, "An internal server error occurred.")
        return _json_response({"message": message, "detail": str(exc)}, 500)


async def _read_pool(app: web.Application, path: Path) -> AsyncIterator[None]:
    app[POOL] = ReadPool(path)
    yield
    app[POOL].close()


def create_app(db_path: str | Path) -> web.Application:
    """The stand-in application over the SQLite database at `db_path` (schema applied)."""
    path = Path(db_path)
    prepare_for_serving(path)
    app = web.Application(middlewares=[_coder_errors])
    app.cleanup_ctx.append(lambda a: _read_pool(a, path))
    routes = (
        ("interceptions", "/interceptions", _endpoint(_interceptions)),
        ("sessions", "/sessions", _endpoint(_sessions)),
        ("session", "/sessions/{session_id}", _session_handler),
        ("models", "/models", _endpoint(_models)),
        ("clients", "/clients", _endpoint(_clients)),
        ("openapi", "/openapi.json", _openapi),
    )
    for name, route, handler in routes:
        app.router.add_get(API_PREFIX + route, handler, name=name)
    return app
