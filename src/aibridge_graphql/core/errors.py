"""What goes wrong, as protocol-neutral codes: each face turns `describe(exc)` into its own shape.

Loaders and resolvers let typed exceptions propagate (upstream errors from the client,
`GatewayError`s of our own); `describe` gives each known one a safe message and extensions with a
stable `code` (GraphQL's `extensions.code`, gRPC's `ErrorInfo.reason`). Anything it does not know
is a bug: the faces mask it and log it with the request id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from aibridge_graphql.core.call_budget import CallBudgetExceeded
from aibridge_graphql.upstream.errors import (
    DeadlineExceeded,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamForbidden,
    UpstreamHTTPError,
    UpstreamNotFound,
    UpstreamOutcomeUnknown,
    UpstreamResponseTooLarge,
    UpstreamUnauthorized,
)
from aibridge_graphql.upstream.search_query import SearchValueError

BAD_USER_INPUT = "BAD_USER_INPUT"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
UPSTREAM_UNSUPPORTED = "UPSTREAM_UNSUPPORTED"
# Over a gateway limit that frees itself (live streams): retry later (gRPC RESOURCE_EXHAUSTED).
RATE_LIMITED = "RATE_LIMITED"
# The request's deadline passed before the field's upstream call finished (retry or not).
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
# `extensions.reason` of an UPSTREAM_UNAVAILABLE error whose upstream body was over the cap.
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
# A non-idempotent write may have been done upstream, but its answer was lost: read the state
# back before trying again. Distinct from UPSTREAM_UNAVAILABLE (nothing was done).
UPSTREAM_OUTCOME_UNKNOWN = "UPSTREAM_OUTCOME_UNKNOWN"
OUTCOME_UNKNOWN_MESSAGE = (
    "The AI Bridge API may or may not have made this change: its answer did not arrive. Read "
    "the state back before trying again."
)
# Demand control: a document refused before it runs, and a call refused while it runs.
COST_ESTIMATED_TOO_EXPENSIVE = "COST_ESTIMATED_TOO_EXPENSIVE"
UPSTREAM_CALL_BUDGET_EXCEEDED = "UPSTREAM_CALL_BUDGET_EXCEEDED"
MASKED_MESSAGE = "Internal server error"
UNAVAILABLE_MESSAGE = "The AI Bridge API is unavailable; try again later."


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


class Unauthenticated(GatewayError):
    """The request carries no credentials where the gateway itself needs them (live views)."""

    code = UNAUTHENTICATED


class RateLimited(GatewayError):
    """Over one of the gateway's own limits (open live streams)."""

    code = RATE_LIMITED


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
        code = RATE_LIMITED if exc.status == 429 else BAD_USER_INPUT
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
    if isinstance(exc, UpstreamOutcomeUnknown):
        return OUTCOME_UNKNOWN_MESSAGE, {"code": UPSTREAM_OUTCOME_UNKNOWN}
    if isinstance(exc, UpstreamError):
        # 5xx, timeouts, connection failures, unparseable bodies: no detail, it may hold internals.
        return UNAVAILABLE_MESSAGE, {"code": UPSTREAM_UNAVAILABLE}
    return None
