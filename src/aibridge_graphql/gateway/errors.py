"""Turn what goes wrong into GraphQL errors with a stable `extensions.code`.

Resolvers let typed exceptions propagate (upstream errors from the client, `GatewayError`s of our
own); `ErrorCodes` rewrites the finished result so every error carries a code and nothing internal
(an upstream URL, a token, a traceback, an unexpected exception's text) reaches the client.
Unexpected exceptions are logged with the request id, once, by `log_errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from aibridge_graphql.gateway.budget import CallBudgetExceeded
from aibridge_graphql.upstream.errors import (
    DeadlineExceeded,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamForbidden,
    UpstreamHTTPError,
    UpstreamNotFound,
    UpstreamResponseTooLarge,
    UpstreamUnauthorized,
)
from aibridge_graphql.upstream.query import SearchValueError

logger = logging.getLogger("aibridge_graphql.gateway")

BAD_USER_INPUT = "BAD_USER_INPUT"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
UPSTREAM_UNSUPPORTED = "UPSTREAM_UNSUPPORTED"
# The request's deadline passed before the field's upstream call finished (retry or not).
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
# `extensions.reason` of an UPSTREAM_UNAVAILABLE error whose upstream body was over the cap.
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_REQUEST = "BAD_REQUEST"
# Demand control: a document refused before it runs, and a call refused while it runs.
COST_ESTIMATED_TOO_EXPENSIVE = "COST_ESTIMATED_TOO_EXPENSIVE"
UPSTREAM_CALL_BUDGET_EXCEEDED = "UPSTREAM_CALL_BUDGET_EXCEEDED"
# Requests refused at the HTTP layer, before GraphQL sees them: code by status (else BAD_REQUEST).
_HTTP_ERROR_CODES = {
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}

MASKED_MESSAGE = "Internal server error"
UNAVAILABLE_MESSAGE = "The AI Bridge API is unavailable; try again later."


def http_error_code(status: int) -> str:
    """The `extensions.code` of a request refused with HTTP `status` before GraphQL ran."""
    return _HTTP_ERROR_CODES.get(status, BAD_REQUEST)


class GatewayError(Exception):
    """An error the gateway raises on purpose; its message is safe to show."""

    code: ClassVar[str] = INTERNAL_SERVER_ERROR

    def __init__(self, message: str, *, extensions: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = dict(extensions or {})


class BadUserInput(GatewayError):
    """The caller's arguments are invalid (page size, cursor, ID...)."""

    code = BAD_USER_INPUT


class NotFound(GatewayError):
    """The entity asked for does not exist or is not visible to the caller."""

    code = NOT_FOUND


class UpstreamUnsupported(GatewayError):
    """The upstream (its Coder release) does not serve what the request needs.

    A domain error, not a GraphQL one: every face maps it (GraphQL: `UPSTREAM_UNSUPPORTED`).
    """

    code = UPSTREAM_UNSUPPORTED

    def __init__(self, message: str, *, missing: str, instead: str | None = None) -> None:
        extensions = {"missing": missing, **({"instead": instead} if instead else {})}
        super().__init__(message, extensions=extensions)
        self.missing = missing
        self.instead = instead


def _validations(error: UpstreamHTTPError) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for item in error.validations or ():
        if isinstance(item, Mapping):
            out.append({"field": str(item.get("field", "")), "detail": str(item.get("detail", ""))})
        else:
            out.append({"field": str(item.field), "detail": str(item.detail)})
    return out


def _upstream_message(error: UpstreamHTTPError, fallback: str) -> str:
    message = error.message or fallback
    return f"{message} {error.detail}" if error.detail else message


def describe(exc: BaseException) -> tuple[str, dict[str, Any]] | None:
    """(safe message, extensions) for a known exception; None for an unexpected one."""
    if isinstance(exc, GatewayError):
        return exc.message, {"code": exc.code, **exc.extensions}
    if isinstance(exc, CallBudgetExceeded):
        return str(exc), {"code": UPSTREAM_CALL_BUDGET_EXCEEDED, "budget": exc.limit}
    if isinstance(exc, SearchValueError):
        detail = "The AI Bridge search syntax cannot express a value holding a double quote."
        validations = [{"field": exc.key, "detail": detail}]
        return f"Invalid filter value for {exc.key!r}: {detail}", {
            "code": BAD_USER_INPUT,
            "validations": validations,
        }
    if isinstance(exc, UpstreamBadRequest):
        extensions: dict[str, Any] = {"code": BAD_USER_INPUT, "validations": _validations(exc)}
        if exc.detail:
            extensions["detail"] = exc.detail
        return _upstream_message(exc, "Bad request."), extensions
    if isinstance(exc, UpstreamUnauthorized):
        return _upstream_message(exc, "Not authenticated."), {"code": UNAUTHENTICATED}
    if isinstance(exc, UpstreamForbidden):
        return _upstream_message(exc, "Forbidden."), {"code": FORBIDDEN}
    if isinstance(exc, UpstreamNotFound):
        return _upstream_message(exc, "Not found."), {"code": NOT_FOUND}
    if isinstance(exc, UpstreamHTTPError) and 400 <= exc.status < 500:
        # Another client error (e.g. 429): the upstream's own message, never its detail.
        code = "RATE_LIMITED" if exc.status == 429 else BAD_USER_INPUT
        return exc.message or "The AI Bridge API rejected the request.", {"code": code}
    if isinstance(exc, DeadlineExceeded):
        message = f"The request's deadline ({exc.seconds:g}s) passed before this field was loaded."
        return message, {"code": DEADLINE_EXCEEDED}
    if isinstance(exc, UpstreamResponseTooLarge):
        message = "The AI Bridge API answered more data than the gateway accepts for one call."
        return message, {
            "code": UPSTREAM_UNAVAILABLE,
            "reason": RESPONSE_TOO_LARGE,
            "maxBytes": exc.max_bytes,
        }
    if isinstance(exc, UpstreamError):
        # 5xx, timeouts, connection failures, unparseable bodies: no detail, it may hold internals.
        return UNAVAILABLE_MESSAGE, {"code": UPSTREAM_UNAVAILABLE}
    return None


_LIMIT_MARKERS = ("exceeds maximum operation depth", "aliases found. Allowed", "tokens. Parsing")


def _code_for_request_error(error: GraphQLError) -> str:
    if any(marker in error.message for marker in _LIMIT_MARKERS):
        return GRAPHQL_VALIDATION_FAILED
    if isinstance(error, GraphQLSyntaxError):
        return GRAPHQL_PARSE_FAILED
    return GRAPHQL_VALIDATION_FAILED


def _is_variable_error(error: GraphQLError) -> bool:
    # graphql-core reports a bad variable value as a request error (no path) wrapping the
    # scalar's own GraphQLError: it describes the caller's input, never our internals.
    return error.path is None and isinstance(error.original_error, GraphQLError)


def format_error(error: GraphQLError) -> GraphQLError:
    """The client-facing copy of one error: coded, and masked when unexpected."""
    original = error.original_error
    if _is_variable_error(error):
        message, extensions = error.message, {**(error.extensions or {}), "code": BAD_USER_INPUT}
    elif original is None:
        if error.extensions and "code" in error.extensions:
            return error
        # Parse and validation errors have no path; execution-time GraphQL errors do.
        code = _code_for_request_error(error) if error.path is None else INTERNAL_SERVER_ERROR
        message, extensions = error.message, {**(error.extensions or {}), "code": code}
    else:
        described = describe(original)
        message, extensions = described or (MASKED_MESSAGE, {"code": INTERNAL_SERVER_ERROR})
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def is_unexpected(error: GraphQLError) -> bool:
    """True when the error comes from an exception we did not plan for (a bug)."""
    return (
        error.original_error is not None
        and not _is_variable_error(error)
        and describe(error.original_error) is None
    )


def log_errors(errors: Sequence[GraphQLError], request_id: str | None) -> None:
    """Log unexpected errors with their traceback and the request id; expected ones briefly."""
    for error in errors:
        original = error.original_error
        if original is not None and is_unexpected(error):
            logger.error(
                "unexpected error in %s (request %s)",
                ".".join(str(p) for p in error.path or ()),
                request_id,
                exc_info=(type(original), original, original.__traceback__),
            )
        else:
            logger.debug("graphql error (request %s): %s", request_id, error.message)


class ErrorCodes(SchemaExtension):
    """Rewrite the result's errors with `format_error` once the operation is done."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [format_error(error) for error in errors]
