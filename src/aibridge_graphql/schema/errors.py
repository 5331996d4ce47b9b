"""GraphQL errors with a stable `extensions.code`: the core's `describe` in GraphQL's shape.

`ErrorCodes` rewrites the finished result so every error carries a code and nothing internal
(an upstream URL, a token, a traceback, an unexpected exception's text) reaches the client.
Unexpected exceptions are logged with the request id, once, by `log_errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from aibridge_graphql.core.errors import (
    BAD_USER_INPUT,
    INTERNAL_SERVER_ERROR,
    MASKED_MESSAGE,
    describe,
)

logger = logging.getLogger("aibridge_graphql.gateway")

GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"

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


def drop_tracebacks(errors: Sequence[GraphQLError]) -> None:
    """Forget the tracebacks of logged errors (and of the exceptions they chained from).

    A traceback holds the frames that raised it, and those the executor and the request's
    context: a reference cycle that kept every failed request for the cycle collector.
    """
    for error in errors:
        pending: list[BaseException | None] = [error, error.original_error]
        seen: set[int] = set()
        while pending:
            exc = pending.pop()
            if exc is None or id(exc) in seen:
                continue
            seen.add(id(exc))
            exc.__traceback__ = None
            pending += (exc.__cause__, exc.__context__)


class ErrorCodes(SchemaExtension):
    """Rewrite the result's errors with `format_error` once the operation is done."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [format_error(error) for error in errors]
