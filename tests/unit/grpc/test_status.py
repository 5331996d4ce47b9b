"""Every error code the core gives has its gRPC status (none falls through to UNKNOWN)."""

from __future__ import annotations

import grpc
import pytest

from aibridge_graphql.core.call_budget import CallBudget, CallBudgetExceeded
from aibridge_graphql.grpc.status import status_for


def _budget_exceeded() -> CallBudgetExceeded:
    budget = CallBudget(0)
    with pytest.raises(CallBudgetExceeded) as raised:
        budget.spend()
    return raised.value


def test_a_call_over_the_budget_is_resource_exhausted() -> None:
    status = status_for(_budget_exceeded(), "req-1", "/aibridge.v1.SessionService/ListSessions")
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
