"""The OpenAPI document the stand-in serves at `<prefix>/openapi.json`, per era.

openapi.json describes the sessions era. The AI Gateway era's document is derived from it:
paths under /ai-gateway (the /aibridge alias serves the same operations), no interceptions,
`GET /providers`, and the new session, session detail and thread fields.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from aibridge_graphql.standin import spend_openapi
from aibridge_graphql.standin.eras import Era

Json = Any
_SCHEMAS = "#/components/schemas/"


def _sessions_document() -> Json:
    text = resources.files("aibridge_graphql.standin").joinpath("openapi.json").read_text()
    return json.loads(text)


def _ref(name: str) -> Json:
    return {"$ref": _SCHEMAS + name}


def _int(fmt: str, description: str = "") -> Json:
    schema: Json = {"type": "integer", "format": fmt}
    if description:
        schema["description"] = description
    return schema


def _new_schemas() -> dict[str, Json]:
    time = {"type": "string", "format": "date-time"}
    return {
        "codersdk.AIBridgeSessionNetworkCalls": {
            "type": "object",
            "description": "Agent firewall network calls of a session.",
            "required": ["total", "blocked"],
            "properties": {"total": _int("int64"), "blocked": _int("int64")},
        },
        "codersdk.AIBridgeNetworkCallLog": {
            "type": "object",
            "description": "One network call the agent firewall logged.",
            "required": [
                "id", "session_id", "sequence_number", "captured_at", "created_at",
                "proto", "method", "detail", "allowed", "matched_rule",
            ],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "session_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "The agent firewall session.",
                },
                "sequence_number": _int("int32"),
                "captured_at": time,
                "created_at": time,
                "proto": {"type": "string", "description": "e.g. http, dns."},
                "method": {"type": "string"},
                "detail": {"type": "string", "description": "URL or domain."},
                "allowed": {"type": "boolean"},
                "matched_rule": {
                    "type": "string",
                    "nullable": True,
                    "description": "The allowing rule; null when blocked.",
                },
            },
        },
        "codersdk.AIBridgeNetworkTopDomain": {
            "type": "object",
            "required": ["domain", "count"],
            "properties": {"domain": {"type": "string"}, "count": _int("int64")},
        },
        "codersdk.AIProvider": {
            "type": "object",
            "description": "A configured AI provider (the shape after coder/coder PR #28966).",
            "required": ["name", "type", "display_name", "icon"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string"},
                "display_name": {"type": "string"},
                "icon": {"type": "string"},
            },
        },
    }  # fmt: skip


def _ai_gateway_document() -> Json:
    doc = copy.deepcopy(_sessions_document())
    doc["info"]["title"] = "AI Gateway REST API (aibridge-graphql stand-in)"
    doc["info"]["version"] = "ai-gateway-era"
    doc["info"]["description"] = (
        "The AI Gateway management API of Coder (mid-2026 on) as served by the aibridge-graphql "
        "stand-in. Every path is also served under /api/v2/aibridge (the legacy alias). "
        "There is no /interceptions: other paths under the prefix are the LLM proxy data plane."
    )
    doc["tags"] = [
        {"name": "AI Gateway", "description": "AI Gateway sessions, models, clients, providers."},
        *[t for t in doc["tags"] if t["name"] != "AI Bridge"],
    ]
    schemas = doc["components"]["schemas"]
    for name in ("codersdk.AIBridgeInterception", "codersdk.AIBridgeListInterceptionsResponse"):
        del schemas[name]
    for name in ("codersdk.AIBridgeTokenUsage", "codersdk.AIBridgeUserPrompt",
                 "codersdk.AIBridgeToolUsage"):  # fmt: skip
        del schemas[name]  # only interceptions used these
    schemas.update(_new_schemas())
    network = _ref("codersdk.AIBridgeSessionNetworkCalls") | {}
    schemas["codersdk.AIBridgeSession"]["properties"]["network_calls"] = {
        "allOf": [network],
        "description": "Omitted when the agent firewall was not in use.",
    }
    detail = schemas["codersdk.AIBridgeSessionThreadsResponse"]
    detail["properties"] |= {
        "network_calls": {"allOf": [network], "description": "Omitted without the firewall."},
        "network_call_logs": {
            "type": "array",
            "items": _ref("codersdk.AIBridgeNetworkCallLog"),
            "description": "The earliest 1,000 calls of the session.",
        },
        "network_top_domains": {
            "type": "array",
            "items": _ref("codersdk.AIBridgeNetworkTopDomain"),
            "maxItems": 1,
            "description": "The most called HTTP domain (at most one row).",
        },
        "network_domain_count": _int("int64", "Distinct HTTP domains called."),
    }
    detail["required"] = sorted(
        {*detail["required"], "network_call_logs", "network_top_domains", "network_domain_count"}
    )
    schemas["codersdk.AIBridgeThread"]["properties"] |= {
        "agent_firewall_session_id": {"type": "string", "format": "uuid"},
        "agent_firewall_sequence_number": _int("int32"),
        "error_type": {"type": "string", "description": "From the root interception."},
        "error_message": {"type": "string", "description": "From the root interception."},
    }
    paths: Json = {}
    for path, item in doc["paths"].items():
        if path == "/aibridge/interceptions":
            continue
        item = copy.deepcopy(item)
        operation = item["get"]
        operation["tags"] = [
            "AI Gateway" if tag == "AI Bridge" else tag for tag in operation["tags"]
        ]
        if "operationId" in operation:
            operation["operationId"] = operation["operationId"].replace("ai-bridge", "ai-gateway")
        operation["summary"] = operation.get("summary", "").replace("AI Bridge", "AI Gateway")
        paths[path.replace("/aibridge/", "/ai-gateway/", 1)] = item
    models = paths["/ai-gateway/models"]["get"]
    providers = copy.deepcopy(models)
    providers |= {
        "summary": "List AI Gateway providers",
        "description": "Configured providers, by name. Owners and auditors; others get 404.",
        "operationId": "list-ai-gateway-providers",
        "parameters": [],
    }
    providers["responses"]["200"]["content"]["application/json"]["schema"] = {
        "type": "array",
        "items": _ref("codersdk.AIProvider"),
    }
    providers["responses"]["404"] = copy.deepcopy(providers["responses"]["401"])
    providers["responses"]["404"]["description"] = "The caller may not read providers."
    del providers["responses"]["400"]
    paths["/ai-gateway/providers"] = {"get": providers}
    # Coder's enterprise spend and budget routes (spend_api.py, spend_openapi.py).
    schemas.update(spend_openapi.SCHEMAS)
    error = {"application/json": {"schema": _ref("codersdk.Response")}}
    paths.update(spend_openapi.paths(error))
    doc["tags"].append({"name": "Enterprise", "description": "AI spend and budgets."})
    doc["paths"] = paths
    return doc


@functools.cache
def document(era_name: str) -> Json:
    """The OpenAPI document of an era ("sessions" or "ai-gateway")."""
    return _ai_gateway_document() if era_name == "ai-gateway" else _sessions_document()


@functools.cache
def _text(era_name: str) -> str:
    return json.dumps(document(era_name), indent=2)


def document_text(api: Era) -> str:
    """The served JSON text of the era's document."""
    return _text(api.name)
