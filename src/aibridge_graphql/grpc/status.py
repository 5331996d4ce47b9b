"""Exceptions to `google.rpc.Status`: the GraphQL face's error codes, as gRPC codes with details.

`describe()` (the domain error table both faces share) gives the safe message and the code that
GraphQL puts in `extensions.code`; here that code becomes the `ErrorInfo.reason`, Coder's
validations become `BadRequest` field violations, and `GRPC_CODES` picks the status code.
The hook for codes this table does not know yet (new domain errors): `GRPC_CODES` — an unknown
code still reaches the client as its `ErrorInfo.reason`, under `UNKNOWN`, with its safe message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from aibridge_graphql.core import errors
from aibridge_graphql.core.errors import MASKED_MESSAGE, describe

logger = logging.getLogger("aibridge_graphql.grpc")

ERROR_DOMAIN: Final = "aibridge-graphql"
INTERNAL_REASON: Final = "INTERNAL_SERVER_ERROR"
DEADLINE_REASON: Final = "DEADLINE_EXCEEDED"

# GraphQL `extensions.code` → gRPC status code. UPSTREAM_UNSUPPORTED (an upstream era without
# the endpoint, e.g. `/interceptions` on today's Coder) is UNIMPLEMENTED: the method exists in
# the contract but this deployment's backend does not serve it, and no client-side change of
# state (FAILED_PRECONDITION's meaning) can make it work.
GRPC_CODES: dict[str, grpc.StatusCode] = {
    errors.BAD_USER_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    errors.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    errors.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    errors.UPSTREAM_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    "RATE_LIMITED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    # The upstream-call budget: refused before or while running.
    errors.COST_ESTIMATED_TOO_EXPENSIVE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.UPSTREAM_CALL_BUDGET_EXCEEDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.UPSTREAM_UNSUPPORTED: grpc.StatusCode.UNIMPLEMENTED,
    # A write whose answer was lost: gRPC's UNKNOWN, never UNAVAILABLE (which invites a retry).
    errors.UPSTREAM_OUTCOME_UNKNOWN: grpc.StatusCode.UNKNOWN,
    INTERNAL_REASON: grpc.StatusCode.INTERNAL,
}


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _violations(validations: Any) -> list[error_details_pb2.BadRequest.FieldViolation]:
    out = []
    for item in validations or ():
        if isinstance(item, Mapping):
            field, detail = item.get("field", ""), item.get("detail", "")
        else:
            field, detail = getattr(item, "field", ""), getattr(item, "detail", "")
        out.append(
            error_details_pb2.BadRequest.FieldViolation(field=str(field), description=str(detail))
        )
    return out


def build_status(
    code: grpc.StatusCode, reason: str, message: str, extensions: Mapping[str, Any]
) -> status_pb2.Status:
    """A `google.rpc.Status` with an `ErrorInfo` (and `BadRequest` when there are validations)."""
    metadata = {
        key: str(value)
        for key, value in extensions.items()
        if key not in ("code", "validations") and value is not None
    }
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata))
    ]
    violations = _violations(extensions.get("validations"))
    if violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=violations)))
    return status_pb2.Status(code=code.value[0], message=message, details=details)


def status_for(exc: BaseException, request_id: str, method: str) -> status_pb2.Status:
    """The client-facing status of an exception; unexpected ones are masked and logged."""
    described = describe(exc)
    if described is None:
        logger.error(
            "unexpected error in %s (request %s)",
            method,
            request_id,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return build_status(
            grpc.StatusCode.INTERNAL,
            INTERNAL_REASON,
            MASKED_MESSAGE,
            {"request_id": request_id},
        )
    message, extensions = described
    reason = str(extensions.get("code", INTERNAL_REASON))
    code = GRPC_CODES.get(reason, grpc.StatusCode.UNKNOWN)
    logger.debug("rpc %s failed (request %s): %s %s", method, request_id, reason, message)
    return build_status(code, reason, message, extensions)


def deadline_status() -> status_pb2.Status:
    """The status when the caller's deadline passed before the upstream calls finished."""
    return build_status(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        DEADLINE_REASON,
        "The call's deadline passed before the AI Bridge API answered.",
        {},
    )


def code_name(status: status_pb2.Status) -> str:
    """`NOT_FOUND`, `OK`... of a status (the metrics label)."""
    return str(code_pb2.Code.Name(status.code))
