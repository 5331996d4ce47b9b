"""Coder's error body (`codersdk.Response`) as an exception the stand-in's handlers raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One entry of `validations`: the offending field and what is wrong with it."""

    field: str
    detail: str


@dataclass(eq=False)
class ApiError(Exception):
    """An HTTP error rendered as `{message, detail?, validations?}` (empty parts omitted)."""

    status: int
    message: str
    detail: str = ""
    validations: list[FieldError] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The JSON body, with Go's omitempty on `detail` and `validations`."""
        body: dict[str, Any] = {"message": self.message}
        if self.detail:
            body["detail"] = self.detail
        if self.validations:
            body["validations"] = [{"field": v.field, "detail": v.detail} for v in self.validations]
        return body
