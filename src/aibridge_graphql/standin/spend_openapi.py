"""The OpenAPI paths and schemas of the AI Gateway era's spend and budget routes (spend_api.py).

Paths are relative to the document's `/api/v2` server, like the others.
"""

from __future__ import annotations

import copy
from typing import Any

Json = Any
_S = "#/components/schemas/"
_TIME = {"type": "string", "format": "date-time"}
_UUID = {"type": "string", "format": "uuid"}
_INT64 = {"type": "integer", "format": "int64"}


def _ref(name: str) -> Json:
    return {"$ref": _S + name}


def _nullable_int64(description: str) -> Json:
    return {**_INT64, "nullable": True, "description": description}


SCHEMAS: dict[str, Json] = {
    "codersdk.AIBudgetLimit": {
        "type": "object",
        "required": ["spend_limit_micros", "limit_source"],
        "properties": {
            "spend_limit_micros": _INT64,
            "limit_source": {"type": "string", "enum": ["group", "user_override"]},
        },
    },
    "codersdk.UserAISpendStatus": {
        "type": "object",
        "required": [
            "user_id", "effective_group_id", "effective_budget", "current_spend_micros",
            "period_start", "period_end",
        ],
        "properties": {
            "user_id": _UUID,
            "effective_group_id": {**_UUID, "nullable": True},
            "effective_budget": {
                "allOf": [_ref("codersdk.AIBudgetLimit")],
                "nullable": True,
                "description": "Null when no budget applies (unlimited).",
            },
            "current_spend_micros": _INT64,
            "period_start": _TIME,
            "period_end": _TIME,
        },
    },
    "codersdk.GroupAIBudget": {
        "type": "object",
        "required": ["group_id", "spend_limit_micros", "created_at", "updated_at"],
        "properties": {
            "group_id": _UUID,
            "spend_limit_micros": _INT64,
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "codersdk.UpsertGroupAIBudgetRequest": {
        "type": "object",
        "required": ["spend_limit_micros"],
        "properties": {"spend_limit_micros": {**_INT64, "minimum": 0}},
    },
    "codersdk.UserAIBudgetOverride": {
        "type": "object",
        "required": ["user_id", "group_id", "spend_limit_micros", "created_at", "updated_at"],
        "properties": {
            "user_id": _UUID,
            "group_id": _UUID,
            "spend_limit_micros": _INT64,
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "codersdk.UpsertUserAIBudgetOverrideRequest": {
        "type": "object",
        "required": ["group_id", "spend_limit_micros"],
        "properties": {"group_id": _UUID, "spend_limit_micros": {**_INT64, "minimum": 0}},
    },
    "codersdk.OrganizationGroupAISpend": {
        "type": "object",
        "required": [
            "group_id", "spend_limit_micros", "total_spend_limit_micros", "current_spend_micros",
        ],
        "properties": {
            "group_id": _UUID,
            "spend_limit_micros": _nullable_int64("Per-member limit; null without a budget."),
            "total_spend_limit_micros": _nullable_int64(
                "Combined limit of the members attributed to the group (overrides replace "
                "their share); null without a budget."
            ),
            "current_spend_micros": _INT64,
        },
    },
    "codersdk.GroupAISpend": {
        "type": "object",
        "required": [
            "period_start", "period_end", "group_id", "spend_limit_micros",
            "total_spend_limit_micros", "current_spend_micros",
        ],
        "properties": {
            "period_start": _TIME,
            "period_end": _TIME,
            "group_id": _UUID,
            "spend_limit_micros": _nullable_int64("Per-member limit; null without a budget."),
            "total_spend_limit_micros": _nullable_int64(
                "Combined limit of the members attributed to the group; null without a budget."
            ),
            "current_spend_micros": _INT64,
        },
    },
    "codersdk.OrganizationGroupsAISpend": {
        "type": "object",
        "required": ["period_start", "period_end", "groups"],
        "properties": {
            "period_start": _TIME,
            "period_end": _TIME,
            "groups": {"type": "array", "items": _ref("codersdk.OrganizationGroupAISpend")},
        },
    },
}  # fmt: skip


def _param(name: str, where: str, description: str, **schema: Json) -> Json:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": {"type": "string", **schema},
    }


_USER = _param("user", "path", "User ID, username, or me")
_GROUP = _param("group", "path", "Group ID", format="uuid")
_ORG = _param("organization", "path", "Organization ID or name")


def _operation(
    operation_id: str, summary: str, params: list[Json], ok: Json | None, error: Json
) -> Json:
    responses: Json = {
        "400": {"description": "Invalid input.", "content": error},
        "401": {"description": "Not signed in.", "content": error},
        "403": {"description": "Unlicensed (Premium), or not allowed.", "content": error},
        "404": {"description": "Not found, or not readable by the caller.", "content": error},
    }
    if ok is None:
        responses["204"] = {"description": "Deleted."}
    else:
        responses["200"] = {"description": "OK", "content": {"application/json": {"schema": ok}}}
    return {
        "tags": ["Enterprise"],
        "summary": summary,
        "operationId": operation_id,
        "security": [{"CoderSessionToken": []}],
        "parameters": copy.deepcopy(params),
        "responses": responses,
    }


def _body(name: str) -> Json:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def paths(error_content: Json) -> dict[str, Json]:
    """The spend routes' path items; `error_content` is the document's error media type."""
    e = error_content
    group_put = _operation(
        "upsert-group-ai-budget",
        "Upsert group AI budget",
        [_GROUP],
        _ref("codersdk.GroupAIBudget"),
        e,
    )
    group_put["requestBody"] = _body("codersdk.UpsertGroupAIBudgetRequest")
    override_put = _operation(
        "upsert-user-ai-budget-override",
        "Upsert user AI budget override",
        [_USER],
        _ref("codersdk.UserAIBudgetOverride"),
        e,
    )
    override_put["requestBody"] = _body("codersdk.UpsertUserAIBudgetOverrideRequest")
    override_put["responses"]["403"]["description"] = "Unlicensed (Premium), or a system user."
    export = _operation(
        "export-organization-ai-spend-as-csv",
        "Export organization AI spend as CSV",
        [
            _ORG,
            _param("period_start", "query", "Inclusive lower bound (RFC3339)", format="date-time"),
            _param("period_end", "query", "Exclusive upper bound (RFC3339)", format="date-time"),
        ],
        None,
        e,
    )
    del export["responses"]["204"]
    export["responses"]["200"] = {
        "description": "user_id, username, group_id, group_name, organization_id, "
        "organization_name, model, provider, provider_name, input_tokens, output_tokens, "
        "cache_read_tokens, cache_write_tokens, cost_micros, period_start, period_end.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
    return {
        "/users/{user}/ai/spend": {
            "get": _operation(
                "get-user-ai-spend", "Get user AI spend", [_USER],
                _ref("codersdk.UserAISpendStatus"), e,
            )
        },
        "/groups/{group}/ai/budget": {
            "get": _operation(
                "get-group-ai-budget", "Get group AI budget", [_GROUP],
                _ref("codersdk.GroupAIBudget"), e,
            ),
            "put": group_put,
            "delete": _operation(
                "delete-group-ai-budget", "Delete group AI budget", [_GROUP], None, e
            ),
        },
        "/groups/{group}/ai/spend": {
            "get": _operation(
                "get-group-ai-spend", "Get group AI spend", [_GROUP],
                _ref("codersdk.GroupAISpend"), e,
            )
        },
        "/users/{user}/ai/budget/override": {
            "get": _operation(
                "get-user-ai-budget-override", "Get user AI budget override", [_USER],
                _ref("codersdk.UserAIBudgetOverride"), e,
            ),
            "put": override_put,
            "delete": _operation(
                "delete-user-ai-budget-override", "Delete user AI budget override", [_USER],
                None, e,
            ),
        },
        "/organizations/{organization}/groups/ai/spend": {
            "get": _operation(
                "get-organization-groups-ai-spend", "Get organization groups AI spend",
                [
                    _ORG,
                    {
                        **_param("group_ids", "query", "Comma-separated group IDs (at most 100)"),
                        "required": True,
                    },
                ],
                _ref("codersdk.OrganizationGroupsAISpend"), e,
            )
        },
        "/organizations/{organization}/ai/spend/export": {"get": export},
    }  # fmt: skip
