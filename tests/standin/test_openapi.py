"""The stand-in's OpenAPI document: valid, in line with Coder's swagger, and true to the server.

Three checks: (a) the document is valid OpenAPI 3.0; (b) every property of every definition in
../shared/upstream/aibridge-swagger-excerpt.json exists here with a compatible type, and its
paths keep their operation ids, tags and parameters; (c) real responses of the served stand-in
validate against the document, use every field it declares, and use no field it does not.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import OpenAPIV30SpecValidator

Json = Any

DOC: dict[str, Json] = json.loads(
    resources.files("aibridge_graphql.standin").joinpath("openapi.json").read_text()
)
SCHEMAS: dict[str, Json] = DOC["components"]["schemas"]
EXCERPT = Path(__file__).resolve().parents[3] / "shared/upstream/aibridge-swagger-excerpt.json"
API = "/api/v2/aibridge"

OPERATION_IDS = {
    "/aibridge/interceptions": "list-ai-bridge-interceptions",
    "/aibridge/sessions": "list-ai-bridge-sessions",
    "/aibridge/sessions/{session_id}": "get-ai-bridge-session-threads",
    "/aibridge/models": "list-ai-bridge-models",
    "/aibridge/clients": "list-ai-bridge-clients",
}


def _ref_name(schema: Json) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[1]


# ---- (a) a valid OpenAPI document -----------------------------------------------------------


def test_document_is_valid_openapi_3() -> None:
    errors = [error.message for error in OpenAPIV30SpecValidator(DOC).iter_errors()]
    assert errors == []


def test_operations_are_coders() -> None:
    for path, operation_id in OPERATION_IDS.items():
        operation = DOC["paths"][path]["get"]
        assert (operation["operationId"], operation["tags"]) == (operation_id, ["AI Bridge"])
    schemes = DOC["components"]["securitySchemes"]
    carriers = {(s.get("in"), s.get("name")) for s in schemes.values()}
    assert {
        ("header", "Coder-Session-Token"),
        ("cookie", "coder_session_token"),
        ("query", "coder_session_token"),
    } <= carriers


# ---- (b) agreement with Coder's swagger ------------------------------------------------------


@pytest.fixture(scope="module")
def excerpt() -> Json:
    if not EXCERPT.is_file():
        message = f"the upstream swagger excerpt is not at {EXCERPT} (../shared is missing)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI always has it")
        pytest.skip(message)
    return json.loads(EXCERPT.read_text())


def _sections(excerpt: Json) -> Iterator[tuple[str, Json]]:
    yield "verbatim", excerpt["verbatim"]
    yield "reconstructed_sessions_era", excerpt["reconstructed_sessions_era"]


def _incompatibility(theirs: Json, ours: Json) -> str | None:
    """Why a swagger 2.0 schema and ours disagree, or None. Ours may be nullable or narrower."""
    if "$ref" in theirs:
        if "$ref" not in ours or _ref_name(ours) != _ref_name(theirs):
            return f"expected a reference to {_ref_name(theirs)}, found {ours}"
        return None
    if ours.get("type") != theirs.get("type"):
        return f"type {ours.get('type')!r} is not {theirs.get('type')!r}"
    if "format" in theirs and ours.get("format") != theirs["format"]:
        return f"format {ours.get('format')!r} is not {theirs['format']!r}"
    if theirs.get("type") == "array":
        return _incompatibility(theirs["items"], ours["items"])
    if theirs.get("type") == "object" and theirs.get("additionalProperties") not in (None, {}):
        return _incompatibility(theirs["additionalProperties"], ours["additionalProperties"])
    return None


def test_every_excerpt_property_is_declared_compatibly(excerpt: Json) -> None:
    problems = []
    for section, content in _sections(excerpt):
        for name, definition in content["definitions"].items():
            ours = SCHEMAS.get(name)
            if ours is None:
                problems.append(f"{section}: {name} is missing")
                continue
            missing_required = set(definition.get("required", [])) - set(ours.get("required", []))
            if missing_required:
                problems.append(f"{section}: {name} does not require {sorted(missing_required)}")
            for prop, theirs in definition["properties"].items():
                if prop not in ours["properties"]:
                    problems.append(f"{section}: {name}.{prop} is missing")
                elif why := _incompatibility(theirs, ours["properties"][prop]):
                    problems.append(f"{section}: {name}.{prop}: {why}")
    assert problems == []


def test_excerpt_paths_agree(excerpt: Json) -> None:
    problems = []
    for section, content in _sections(excerpt):
        for path, item in content["paths"].items():
            theirs, ours = item["get"], DOC["paths"][path]["get"]
            for key in ("operationId", "tags"):
                if theirs[key] != ours[key]:
                    problems.append(f"{section}: {path} {key} {ours[key]!r} != {theirs[key]!r}")
            our_params = {(p["name"], p["in"]): p for p in ours["parameters"]}
            for param in theirs.get("parameters", []):
                mine = our_params.get((param["name"], param["in"]))
                if mine is None:
                    problems.append(f"{section}: {path} lacks parameter {param['name']}")
                elif mine["schema"]["type"] != param["type"] or mine.get("required", False) != (
                    param.get("required", False)
                ):
                    problems.append(f"{section}: {path} parameter {param['name']} differs")
            their_ok = theirs["responses"]["200"]["schema"]
            our_ok = ours["responses"]["200"]["content"]["application/json"]["schema"]
            if why := _incompatibility(their_ok, our_ok):
                problems.append(f"{section}: {path} 200: {why}")
    assert problems == []


def test_excerpt_security_scheme_is_kept(excerpt: Json) -> None:
    for name, scheme in excerpt["securityDefinitions"].items():
        assert DOC["components"]["securitySchemes"][name] == scheme


# ---- (c) the served stand-in -----------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One real response and the document path whose operation produced it."""

    path: str
    status: int
    body: Json

    @property
    def schema(self) -> Json:
        response = DOC["paths"][self.path]["get"]["responses"][str(self.status)]
        return response["content"]["application/json"]["schema"]


# Session detail pages fetched, the sessions with the most threads first: enough to see every
# optional field of threads, actions and tool calls without fetching all of them.
_DETAIL_SESSIONS = 25


def _get(client: httpx.Client, path: str, token: str | None, **params: str) -> httpx.Response:
    headers = {"Coder-Session-Token": token} if token else {}
    return client.get(API + path, params=params, headers=headers)


def _sample(path: str, response: httpx.Response) -> Sample:
    return Sample(path, response.status_code, response.json())


@pytest.fixture(scope="module")
def samples(standin_url: str, tokens: dict[str, str]) -> list[Sample]:
    owner = tokens["admin"]
    member = next(token for name, token in tokens.items() if name not in ("admin", "auditor"))
    with httpx.Client(base_url=standin_url, timeout=30) as client:
        sessions = _get(client, "/sessions", owner, limit="1000")
        busiest = sorted(sessions.json()["sessions"], key=lambda s: (-s["threads"], s["id"]))
        found = [
            _sample("/aibridge/interceptions", _get(client, "/interceptions", owner, limit="1000")),
            _sample("/aibridge/sessions", sessions),
            _sample("/aibridge/models", _get(client, "/models", owner)),
            _sample("/aibridge/clients", _get(client, "/clients", owner)),
            _sample("/aibridge/interceptions", _get(client, "/interceptions", member)),
            _sample("/aibridge/sessions", _get(client, "/sessions", member)),
            _sample("/aibridge/interceptions", _get(client, "/interceptions", owner, q="x:y")),
            _sample("/aibridge/sessions", _get(client, "/sessions", None)),
            _sample("/aibridge/sessions/{session_id}", _get(client, "/sessions/none", owner)),
            _sample("/aibridge/openapi.json", _get(client, "/openapi.json", None)),
        ]
        found += [
            _sample("/aibridge/sessions/{session_id}", _get(client, f"/sessions/{s['id']}", owner))
            for s in busiest[:_DETAIL_SESSIONS]
        ]
    return found


def test_samples_cover_the_statuses_they_should(samples: list[Sample]) -> None:
    statuses = {(s.path, s.status) for s in samples}
    assert {
        ("/aibridge/interceptions", 200),
        ("/aibridge/interceptions", 400),
        ("/aibridge/sessions", 200),
        ("/aibridge/sessions", 401),
        ("/aibridge/sessions/{session_id}", 200),
        ("/aibridge/sessions/{session_id}", 404),
        ("/aibridge/models", 200),
        ("/aibridge/clients", 200),
        ("/aibridge/openapi.json", 200),
    } == statuses


def test_served_document_is_this_document(samples: list[Sample]) -> None:
    served = next(s for s in samples if s.path == "/aibridge/openapi.json")
    assert served.body == DOC


def _strict(schemas: Json) -> Json:
    """The schemas with undeclared properties forbidden, so validation reports extra fields."""
    strict = copy.deepcopy(schemas)
    for schema in strict.values():
        if "properties" in schema:
            schema["additionalProperties"] = False
    return strict


def test_responses_validate_against_the_document(samples: list[Sample]) -> None:
    strict = {"schemas": _strict(SCHEMAS)}
    problems = []
    for sample in samples:
        validator = OAS30Validator(
            {**sample.schema, "components": strict}, format_checker=oas30_format_checker
        )
        problems += [
            f"{sample.path} {sample.status} at {list(e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(sample.body)
        ]
    assert problems[:20] == []


def _walk(schema: Json, value: Json, seen: set[tuple[str, str]], owner: str = "") -> None:
    """Record (component, property) for every property present in `value`."""
    if "$ref" in schema:
        name = _ref_name(schema)
        _walk(SCHEMAS[name], value, seen, name)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _walk(schema["items"], item, seen)
    elif isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            seen.add((owner, key))
            if key in schema["properties"]:
                _walk(schema["properties"][key], item, seen)


def _declared(schema: Json, found: set[tuple[str, str]]) -> None:
    """Every (component, property) reachable from `schema`."""
    if "$ref" in schema:
        name = _ref_name(schema)
        pairs = {(name, prop) for prop in SCHEMAS[name].get("properties", {})}
        if not pairs <= found:
            found |= pairs
            for prop in SCHEMAS[name]["properties"].values():
                _declared(prop, found)
    elif "items" in schema:
        _declared(schema["items"], found)


def test_every_declared_field_is_served_and_no_other(samples: list[Sample]) -> None:
    declared: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    for sample in samples:
        _declared(sample.schema, declared)
        _walk(sample.schema, sample.body, seen)
    assert sorted(declared - seen) == [], "declared but never served"
    assert sorted(seen - declared) == [], "served but not declared"
