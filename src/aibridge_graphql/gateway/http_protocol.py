"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): media types and requests.

`negotiate` picks the response media type from `Accept`; `parse_get` / `parse_post` turn a request
into Strawberry's `GraphQLRequestData` or raise `RequestRejected` (a 4xx with a safe message).
Nothing a client sends may reach the executor in a shape it does not expect: every parameter is
type-checked here, the body must be UTF-8 JSON, and JSON values are bounded in nesting depth.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from strawberry.http import GraphQLRequestData

GRAPHQL_RESPONSE_JSON: Final = "application/graphql-response+json"
APPLICATION_JSON: Final = "application/json"
# Deep enough for any real variables (the schema's inputs nest two levels; federation
# representations a few more), shallow enough that no recursive walk can overflow.
MAX_JSON_DEPTH: Final = 32

_WILDCARDS: Final = frozenset({"*/*", "application/*"})


class RequestRejected(Exception):
    """The request is not a GraphQL-over-HTTP request we can run: a 4xx with a safe message."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _quality(params: list[str]) -> float | None:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            return q if 0.0 <= q <= 1.0 else None
    return 1.0


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with, or None when `Accept` allows neither of ours (406).

    No `Accept` means `application/json` (the spec's legacy default); `*/*` and
    `application/*` also mean `application/json`. The highest `q` wins; on a tie an exact media
    type beats a wildcard, then the one listed first.
    """
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    best: tuple[float, bool, int] | None = None
    chosen: str | None = None
    for index, item in enumerate(accept.split(",")):
        media, *params = item.split(";")
        media = media.strip().lower()
        if media in (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON):
            candidate, exact = media, True
        elif media in _WILDCARDS:
            candidate, exact = APPLICATION_JSON, False
        else:
            continue
        q = _quality(params)
        if q is None or q == 0.0:
            continue
        rank = (q, exact, -index)
        if best is None or rank > best:
            best, chosen = rank, candidate
    return chosen


def _check_json_depth(value: object, what: str) -> None:
    """Refuse nesting deeper than `MAX_JSON_DEPTH` and strings that are not valid Unicode.

    A lone surrogate (`"\\ud800"`) is valid JSON but not encodable as UTF-8: it would fail
    wherever the value is sent upstream. Iterative, so depth itself cannot overflow the stack.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, what)
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise RequestRejected(400, f"`{what}` is nested more than {MAX_JSON_DEPTH} deep.")
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestRejected(400, f"`{what}` holds a string that is not valid Unicode.") from None


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not.
    raise ValueError(f"{name} is not JSON")


def decode_json(raw: str | bytes, what: str) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, bounded nesting; else `RequestRejected` (400)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestRejected(400, f"The {what} is not UTF-8.") from None
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise RequestRejected(
            400, f"The {what} is nested more than {MAX_JSON_DEPTH} deep."
        ) from None
    except ValueError:  # JSONDecodeError and the constants above
        raise RequestRejected(400, f"The {what} is not valid JSON.") from None


def _request_data(params: Mapping[str, Any]) -> GraphQLRequestData:
    """Type-check the four GraphQL-over-HTTP parameters."""
    query = params.get("query")
    if query is not None and not isinstance(query, str):
        raise RequestRejected(400, "`query` must be a string.")
    if query is not None:
        _check_text(query, "query")
    operation_name = params.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestRejected(400, "`operationName` must be a string or null.")
    if operation_name is not None:
        _check_text(operation_name, "operationName")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestRejected(400, "`variables` must be an object or null.")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestRejected(400, "`extensions` must be an object or null.")
    _check_json_depth(variables, "variables")
    _check_json_depth(extensions, "extensions")
    return GraphQLRequestData(
        query=query,
        variables=variables,
        # The spec allows an empty operationName to mean none (some clients send "").
        operation_name=operation_name or None,
        extensions=extensions,
    )


def parse_get(query_params: Mapping[str, str]) -> GraphQLRequestData:
    """A GET request's parameters (`variables` and `extensions` are JSON-encoded strings)."""
    params: dict[str, Any] = dict(query_params)
    for name in ("variables", "extensions"):
        value = params.get(name)
        if value == "":
            params[name] = None
        elif value is not None:
            params[name] = decode_json(value, f"`{name}` parameter")
    return _request_data(params)


def parse_post(content_type: str | None, body: bytes) -> GraphQLRequestData:
    """A POST request's JSON body; other media types are 415."""
    media, *params = (content_type or "").split(";")
    if media.strip().lower() != APPLICATION_JSON:
        raise RequestRejected(
            415,
            "POST bodies must be `application/json`.",
            headers={"Accept-Post": APPLICATION_JSON},
        )
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise RequestRejected(415, "The request body must be UTF-8.")
    if not body.strip():
        raise RequestRejected(400, "The request body is empty.")
    data = decode_json(body, "request body")
    if isinstance(data, list):
        raise RequestRejected(400, "Batched requests (a JSON array) are not supported.")
    if not isinstance(data, dict):
        raise RequestRejected(400, "The request body must be a JSON object.")
    return _request_data(data)
