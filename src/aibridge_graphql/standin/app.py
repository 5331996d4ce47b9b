"""The stand-in's aiohttp application: Coder's AI Bridge / AI Gateway management API.

The sessions era serves /api/v2/aibridge; the AI Gateway era serves /api/v2/ai-gateway and the
legacy alias /api/v2/aibridge, without `/interceptions` (that path falls to the LLM proxy data
plane, as on a Coder of that era) and with `/providers` and the new fields (eras.py).

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
from aibridge_graphql.standin.eras import DEFAULT_API_ERA, ApiEra, Era, era
from aibridge_graphql.standin.errors import ApiError, FieldError
from aibridge_graphql.standin.goparse import chi_path_param, go_quote
from aibridge_graphql.standin.keys_api import add_key_routes
from aibridge_graphql.standin.live import LiveOptions, add_live_traffic
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
from aibridge_graphql.standin.spend_api import SPEND_PATHS, add_spend_routes
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
    list_providers,
    list_sessions,
    network_logs,
    prepare_for_serving,
    search_where,
    session_cursor_position,
    session_exists,
    thread_rows,
)
from aibridge_graphql.standin.threads import ThreadData, session_item, session_threads

API_PREFIX = "/api/v2/aibridge"
POOL = web.AppKey("pool", ReadPool)
ERA = web.AppKey("era", Era)
PROVIDERS_SHAPE = web.AppKey("providers_shape", str)
Query = MultiMapping[str]
Json = Any
T = TypeVar("T")
Work = Callable[[sqlite3.Connection, Caller, Query, Era], Json]
# `GET /providers` answers objects (after coder/coder PR #28966) or, as the generated docs
# show, an array of names.
PROVIDER_SHAPES = ("objects", "names")
RESOURCE_NOT_FOUND = "Resource not found or you do not have access to this resource"

log = logging.getLogger(__name__)


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


def _lookups(conn: sqlite3.Connection, caller: Caller, api: Era) -> DbLookups:
    # Sessions era: provider_name resolves through authorization (only owners read providers);
    # AI Gateway era (coder/coder PR #28966): a plain string match.
    if api.ai_gateway:
        return DbLookups(conn, provider_names="any")
    return DbLookups(conn, can_read_providers=caller.role == "owner")


def _endpoint(work: Work) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler that authenticates, then runs `work` in one read transaction off the loop."""

    async def handler(request: web.Request) -> web.Response:
        token = token_from_request(request)
        query = request.query
        api = request.app[ERA]

        def run(conn: sqlite3.Connection) -> str:
            caller = authenticate(conn, token, time.time_ns() // 1000)
            # Serialized on the worker too: a 1000-item page is megabytes of JSON.
            return _dumps(work(conn, caller, query, api))

        text = await request.app[POOL].run(run)
        return web.Response(text=text, content_type="application/json")

    return handler


# --- handlers ------------------------------------------------------------------------------


def _interceptions(conn: sqlite3.Connection, caller: Caller, query: Query, api: Era) -> Json:
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
            first_value(query, "q"), caller_id=caller.user_id, lookups=_lookups(conn, caller, api)
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
    count = count_interceptions(conn, search, authorized=caller.authorized)
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


def _sessions(conn: sqlite3.Connection, caller: Caller, query: Query, api: Era) -> Json:
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
            first_value(query, "q"), caller_id=caller.user_id, lookups=_lookups(conn, caller, api)
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
    count = count_sessions(conn, search, authorized=caller.authorized)
    sessions = list_sessions(
        conn,
        search,
        authorized=caller.authorized,
        cursor=cursor,
        limit=limit,
        offset=page.offset,
        network=api.ai_gateway,
    )
    return {
        "count": count,
        "sessions": [session_item(s, ai_gateway=api.ai_gateway) for s in sessions],
    }


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
    conn: sqlite3.Connection, caller: Caller, query: Query, api: Era, session_id: str
) -> Json:
    page = parse_thread_page(query)
    found = list_sessions(
        conn,
        SessionSearch(session_id=session_id),
        authorized=caller.authorized,
        cursor=None,
        limit=1,
        offset=0,
        network=api.ai_gateway,
    )
    if not found:
        raise ApiError(404, "Session not found.")
    _check_thread_cursor(conn, caller, "after_id", page.after_id, session_id)
    _check_thread_cursor(conn, caller, "before_id", page.before_id, session_id)
    # The sessions era's "all threads" query has limit 0, which its SQL turns into 50: the
    # summary's metadata covers the first 50 threads only. The AI Gateway era lists them all
    # (-1: no LIMIT in SQLite).
    first_rows = thread_rows(conn, session_id, limit=-1 if api.ai_gateway else 0)
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
        ai_gateway=api.ai_gateway,
    )
    summary_metadata = [t["metadata"] for i in first_ids for t in tokens.get(i, [])]
    session = found[0]
    logs = network_logs(conn, session.session_id, session.initiator_id) if api.ai_gateway else []
    return session_threads(session, data, summary_metadata, logs)


def _models(conn: sqlite3.Connection, caller: Caller, query: Query, api: Era) -> Json:
    page = parse_pagination(query)
    limit = check_list_limit(page)
    prefix = _search(
        lambda: parse_models_query(first_value(query, "q")), api.search_message("models")
    )
    return list_models(conn, prefix, authorized=caller.authorized, limit=limit, offset=page.offset)


def _clients(conn: sqlite3.Connection, caller: Caller, query: Query, api: Era) -> Json:
    page = parse_pagination(query)
    limit = check_list_limit(page)
    prefix = _search(
        lambda: parse_clients_query(first_value(query, "q")), api.search_message("clients")
    )
    return list_clients(conn, prefix, authorized=caller.authorized, limit=limit, offset=page.offset)


def _providers(shape: str) -> Work:
    def work(conn: sqlite3.Connection, caller: Caller, query: Query, api: Era) -> Json:
        # Owners and auditors read providers; for anyone else they do not exist.
        if not caller.authorized:
            raise ApiError(404, RESOURCE_NOT_FOUND)
        rows = list_providers(conn)
        if shape == "names":
            return [row["name"] for row in rows]
        return [
            {
                "name": row["name"],
                "type": row["type"],
                "display_name": row["display_name"] or row["name"],
                "icon": row["icon"],
            }
            for row in rows
        ]

    return work


def _raw_session_id(request: web.Request) -> str:
    """The `{session_id}` segment as Coder's handler sees it: chi routes on the raw path
    whenever it is not encoded the default way, and the handler does not decode it."""
    raw_path = request.raw_path.split("?", 1)[0]
    return chi_path_param(raw_path.rsplit("/sessions/", 1)[1])


async def _session_handler(request: web.Request) -> web.Response:
    session_id = _raw_session_id(request)

    def work(conn: sqlite3.Connection, caller: Caller, query: Query, api: Era) -> Json:
        return _session_threads(conn, caller, query, api, session_id)

    return await _endpoint(work)(request)


async def _openapi(request: web.Request) -> web.Response:
    from aibridge_graphql.standin.openapi import document_text

    return web.Response(text=document_text(request.app[ERA]), content_type="application/json")


# The data plane (LLM proxy) reads the provider API key a client sends, not Coder's session
# token carriers. Its exact answer to a path it does not proxy is not confirmed (contract):
# a plain-text 401 without a usable key, Go's plain-text 404 with one.
async def _data_plane(request: web.Request) -> web.Response:
    authorization = request.headers.get("Authorization", "")
    key = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    key = key or request.headers.get("X-Api-Key", "").strip()

    def known(conn: sqlite3.Connection) -> bool:
        try:
            authenticate(conn, key, time.time_ns() // 1000)
        except ApiError:
            return False
        return True

    if not key or not await request.app[POOL].run(known):
        return web.Response(status=401, text="unauthorized\n", content_type="text/plain")
    return web.Response(status=404, text="404 page not found\n", content_type="text/plain")


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
        route = (request.match_info.route.name or "").split(".")[0]
        log.exception("stand-in request failed: %s %s", request.method, request.path)
        message = request.app[ERA].internal_message(route)
        return _json_response({"message": message, "detail": str(exc)}, 500)


def _licence_gate(api: Era) -> Callable[..., Awaitable[web.StreamResponse]]:
    """RequireFeatureMW without the entitlement: every route under the prefixes is a 403,
    before authentication."""

    @web.middleware
    async def gate(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        prefixed = any(request.path == p or request.path.startswith(p + "/") for p in api.prefixes)
        # The AI Gateway era's spend and budget routes (spend_api.py) are premium too.
        if prefixed or (api.ai_gateway and SPEND_PATHS.match(request.path)):
            return _json_response({"message": api.premium_message}, 403)
        return await handler(request)

    return gate


async def _read_pool(app: web.Application, path: Path) -> AsyncIterator[None]:
    app[POOL] = ReadPool(path)
    yield
    app[POOL].close()


def create_app(
    db_path: str | Path,
    *,
    api_era: ApiEra = DEFAULT_API_ERA,
    unlicensed: bool = False,
    providers_shape: str = "objects",
    live: LiveOptions | None = None,
) -> web.Application:
    """The stand-in application over the SQLite database at `db_path` (schema applied).

    `api_era` picks the API served (eras.py); `unlicensed` answers Coder's premium 403
    everywhere; `providers_shape` is "objects" or "names" (the two `GET /providers` shapes);
    `live` appends generated traffic while the app runs (live.py).
    """
    if providers_shape not in PROVIDER_SHAPES:
        raise ValueError(f"providers_shape must be one of {PROVIDER_SHAPES}")
    api = era(api_era)
    path = Path(db_path)
    prepare_for_serving(path)
    middlewares = [_licence_gate(api)] if unlicensed else []
    app = web.Application(middlewares=[*middlewares, _coder_errors])
    app[ERA] = api
    app[PROVIDERS_SHAPE] = providers_shape
    app.cleanup_ctx.append(lambda a: _read_pool(a, path))
    routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
        ("sessions", "/sessions", _endpoint(_sessions)),
        ("session", "/sessions/{session_id}", _session_handler),
        ("models", "/models", _endpoint(_models)),
        ("clients", "/clients", _endpoint(_clients)),
        ("openapi", "/openapi.json", _openapi),
    ]
    if api.ai_gateway:
        routes.append(("providers", "/providers", _endpoint(_providers(providers_shape))))
    else:
        routes.insert(0, ("interceptions", "/interceptions", _endpoint(_interceptions)))
    for index, prefix in enumerate(api.prefixes):
        for name, route, handler in routes:
            app.router.add_get(prefix + route, handler, name=f"{name}.p{index}")
    if api.ai_gateway:
        add_spend_routes(app, path, POOL)
        add_key_routes(app, api.prefixes)
        # Everything else under a prefix is the LLM proxy data plane, `/interceptions` too.
        for index, prefix in enumerate(api.prefixes):
            app.router.add_route("*", prefix + "/{tail:.*}", _data_plane, name=f"data.p{index}")
    if live is not None:
        add_live_traffic(app, path, live)
    return app
