"""What differs between the stand-in's two API eras, and what both now do as Coder does.

Served over a seeded database with awkward session ids (`:@+=` and spaces), in each era.
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import OpenAPIV30SpecValidator

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.eras import API_ERAS
from aibridge_graphql.standin.ingest import ImportFailed, import_interceptions
from aibridge_graphql.standin.openapi import document
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import read_tokens
from tests.support.servers import run_app_in_thread

ADMIN = "AdminEraTk-0123456789abcdefghijkl"
GATEWAY, LEGACY = "/api/v2/ai-gateway", "/api/v2/aibridge"


@pytest.fixture(scope="module")
def era_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eras") / "eras.db"
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 600, 7, ADMIN)
        conn.commit()
    return path


@pytest.fixture(scope="module")
def users(era_db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(era_db)) as conn:
        return {u.username: u.token for u in read_tokens(conn)}


@contextlib.contextmanager
def _serve(db: Path, **options: Any) -> Iterator[httpx.Client]:
    with (
        run_app_in_thread(lambda: create_app(db, **options)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def gateway(era_db: Path) -> Iterator[httpx.Client]:
    with _serve(era_db, api_era="ai-gateway") as client:
        yield client


@pytest.fixture(scope="module")
def sessions_era(era_db: Path) -> Iterator[httpx.Client]:
    with _serve(era_db, api_era="sessions") as client:
        yield client


def _auth(token: str) -> dict[str, str]:
    return {"Coder-Session-Token": token}


def _all_sessions(client: httpx.Client, prefix: str) -> list[dict[str, Any]]:
    response = client.get(f"{prefix}/sessions", params={"limit": 1000}, headers=_auth(ADMIN))
    assert response.status_code == 200, response.text
    sessions: list[dict[str, Any]] = response.json()["sessions"]
    return sessions


def test_ai_gateway_serves_both_prefixes_alike(gateway: httpx.Client) -> None:
    assert _all_sessions(gateway, GATEWAY) == _all_sessions(gateway, LEGACY)


def test_sessions_era_serves_only_the_legacy_prefix(sessions_era: httpx.Client) -> None:
    assert sessions_era.get(f"{GATEWAY}/sessions", headers=_auth(ADMIN)).status_code == 404
    ok = sessions_era.get(f"{LEGACY}/interceptions", headers=_auth(ADMIN))
    assert ok.status_code == 200
    assert all("network_calls" not in s for s in _all_sessions(sessions_era, LEGACY))


@pytest.mark.parametrize("prefix", [GATEWAY, LEGACY])
def test_interceptions_fall_to_the_data_plane(gateway: httpx.Client, prefix: str) -> None:
    path = f"{prefix}/interceptions"
    # The data plane ignores Coder's session token carriers...
    refused = gateway.get(path, headers=_auth(ADMIN))
    assert (refused.status_code, refused.text) == (401, "unauthorized\n")
    assert refused.headers["content-type"].startswith("text/plain")
    # ...and with an API key it knows, it still has nothing to proxy there.
    proxied = gateway.get(path, headers={"X-Api-Key": ADMIN})
    assert (proxied.status_code, proxied.text) == (404, "404 page not found\n")
    bearer = gateway.get(path, headers={"Authorization": f"Bearer {ADMIN}"})
    assert bearer.status_code == 404
    assert not bearer.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("prefix", [GATEWAY, LEGACY])
def test_providers_for_owners_and_auditors(
    gateway: httpx.Client, users: dict[str, str], prefix: str
) -> None:
    owner = gateway.get(f"{prefix}/providers", headers=_auth(ADMIN))
    assert owner.status_code == 200
    providers = owner.json()
    assert [p["name"] for p in providers] == sorted(p["name"] for p in providers)
    assert {"name": "anthropic", "type": "anthropic", "display_name": "Anthropic",
            "icon": "/icon/claude.svg"} in providers  # fmt: skip
    assert gateway.get(f"{prefix}/providers", headers=_auth(users["auditor"])).json() == providers
    member = gateway.get(f"{prefix}/providers", headers=_auth(users["alice"]))
    assert member.status_code == 404
    assert member.json() == {
        "message": "Resource not found or you do not have access to this resource"
    }


def test_providers_as_names(era_db: Path) -> None:
    with _serve(era_db, providers_shape="names") as client:
        names = client.get(f"{GATEWAY}/providers", headers=_auth(ADMIN)).json()
    assert names == sorted(names)
    assert "anthropic" in names


@pytest.mark.parametrize(
    ("api_era", "message"),
    [
        ("sessions", "AI Bridge is a Premium feature. Contact sales!"),
        ("ai-gateway", "AI Gateway is a Premium feature. Contact sales!"),
    ],
)
def test_unlicensed_refuses_before_authentication(era_db: Path, api_era: str, message: str) -> None:
    with _serve(era_db, api_era=api_era, unlicensed=True) as client:
        for path in ("/sessions", "/models", "/sessions/x", "/interceptions", "/openapi.json"):
            for headers in ({}, _auth(ADMIN), _auth("garbage")):
                response = client.get(LEGACY + path, headers=headers)
                assert (response.status_code, response.json()) == (403, {"message": message})


@pytest.mark.parametrize("api_era", API_ERAS)
def test_session_ids_match_the_raw_path(era_db: Path, api_era: str) -> None:
    with _serve(era_db, api_era=api_era) as client:
        ids = [s["id"] for s in _all_sessions(client, LEGACY)]
        awkward = [i for i in ids if any(c in i for c in ":@+= ")]
        assert any(" " in i for i in awkward)
        assert any(":" in i and "@" in i for i in awkward)
        for session_id in awkward:
            # Encoded as a path segment needs (Go's default): found.
            plain = client.get(f"{LEGACY}/sessions/{quote(session_id, safe=':@+=')}",
                               headers=_auth(ADMIN))  # fmt: skip
            assert plain.status_code == 200, session_id
            assert plain.json()["id"] == session_id
            # Over-encoded: Coder matches the raw path and does not decode it.
            over = client.get(f"{LEGACY}/sessions/{quote(session_id, safe='')}",
                              headers=_auth(ADMIN))  # fmt: skip
            assert (over.status_code, over.json()) == (404, {"message": "Session not found."})


def test_network_calls_and_thread_errors(gateway: httpx.Client) -> None:
    sessions = _all_sessions(gateway, GATEWAY)
    with_firewall = [s for s in sessions if "network_calls" in s]
    assert with_firewall
    assert len(with_firewall) < len(sessions)
    assert any(s["network_calls"]["blocked"] for s in with_firewall)
    errors = 0
    for session in sessions:
        detail = gateway.get(
            f"{GATEWAY}/sessions/{quote(session['id'], safe=':@+=')}",
            params={"limit": 200},
            headers=_auth(ADMIN),
        ).json()
        logs = detail["network_call_logs"]
        assert detail.get("network_calls") == session.get("network_calls")
        assert len(detail["network_top_domains"]) <= 1
        if "network_calls" not in session:
            assert (logs, detail["network_top_domains"], detail["network_domain_count"]) == (
                [],
                [],
                0,
            )
            assert all("agent_firewall_session_id" not in t for t in detail["threads"])
            continue
        calls = session["network_calls"]
        assert len(logs) == min(calls["total"], 1000)
        assert sum(not log["allowed"] for log in logs) == calls["blocked"]
        assert all((log["matched_rule"] is None) == (not log["allowed"]) for log in logs)
        seqs = [log["sequence_number"] for log in logs]
        assert seqs == sorted(seqs)
        marks = {t["agent_firewall_sequence_number"] for t in detail["threads"]}
        assert not marks & set(seqs), "an interception's own LLM call is outside its window"
        if detail["network_domain_count"]:
            top = detail["network_top_domains"][0]
            assert ":" not in top["domain"]
            assert top["count"] >= 1
        errors += sum("error_type" in t for t in detail["threads"])
        assert all(("error_type" in t) == ("error_message" in t) for t in detail["threads"])
    assert errors or any(
        "error_type" in t
        for s in sessions
        for t in gateway.get(
            f"{GATEWAY}/sessions/{quote(s['id'], safe=':@+=')}", headers=_auth(ADMIN)
        ).json()["threads"]
    )


@pytest.mark.parametrize(("api_era", "auditor_status"), [("sessions", 400), ("ai-gateway", 200)])
def test_provider_name_filter_per_era(
    era_db: Path, users: dict[str, str], api_era: str, auditor_status: int
) -> None:
    with _serve(era_db, api_era=api_era) as client:
        q = {"q": "provider_name:anthropic"}
        assert client.get(f"{LEGACY}/sessions", params=q, headers=_auth(ADMIN)).status_code == 200
        auditor = client.get(f"{LEGACY}/sessions", params=q, headers=_auth(users["auditor"]))
        assert auditor.status_code == auditor_status
        if auditor_status == 400:
            assert auditor.json()["validations"] == [
                {
                    "field": "provider_name",
                    "detail": 'Query param "provider_name" has invalid value: provider not '
                    "found or unauthorized",
                }
            ]
        unknown = client.get(
            f"{LEGACY}/sessions", params={"q": "provider_name:nope"}, headers=_auth(ADMIN)
        )
        if api_era == "ai-gateway":
            assert unknown.json() == {"count": 0, "sessions": []}
        else:
            assert unknown.status_code == 400


@pytest.mark.parametrize(
    ("api_era", "feature"), [("sessions", "AI Bridge"), ("ai-gateway", "AI Gateway")]
)
def test_search_messages_per_era(era_db: Path, api_era: str, feature: str) -> None:
    with _serve(era_db, api_era=api_era) as client:
        for what in ("models", "clients"):
            body = client.get(f"{LEGACY}/{what}", params={"q": "x:y"}, headers=_auth(ADMIN)).json()
            assert body["message"] == f"Invalid {feature} {what} search query."


def test_summary_metadata_covers_every_thread_in_the_ai_gateway_era(
    era_db: Path, gateway: httpx.Client, sessions_era: httpx.Client
) -> None:
    # One page of one thread: the AI Gateway summary still sums every thread's metadata.
    busiest = max(_all_sessions(gateway, GATEWAY), key=lambda s: s["threads"])
    assert busiest["threads"] > 1
    path = f"/sessions/{quote(busiest['id'], safe=':@+=')}"
    whole = gateway.get(GATEWAY + path, params={"limit": 200}, headers=_auth(ADMIN)).json()
    paged = gateway.get(GATEWAY + path, params={"limit": 1}, headers=_auth(ADMIN)).json()
    expected: dict[str, int] = {}
    for thread in whole["threads"]:
        for key, value in thread["token_usage"]["metadata"].items():
            expected[key] = expected.get(key, 0) + value
    assert paged["token_usage_summary"]["metadata"] == dict(sorted(expected.items()))
    assert len(paged["threads"]) == 1


def _item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "3f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60",
        "initiator": {"id": "1f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60", "username": "bob"},
        "provider": "openai",
        "model": "gpt-4.1",
        "started_at": "2025-01-01T00:00:00Z",
        "ended_at": "2025-01-01T00:00:01Z",
        "token_usages": [
            {
                "id": "2f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60",
                "interception_id": "3f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60",
                "provider_response_id": "r",
                "input_tokens": 1,
                "output_tokens": 1,
                "metadata": {"big": 2**70},
                "created_at": "2025-01-01T00:00:00Z",
            }
        ],
    }
    return item | changes


def test_import_refuses_int64_overflow_and_nul_bytes_per_record(tmp_path: Path) -> None:
    bad_tokens = _item()
    bad_tokens["token_usages"][0]["input_tokens"] = 2**70
    nul = _item(id="4f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60", model="gpt\x00", token_usages=[])
    documents = [nul, bad_tokens]
    with contextlib.closing(open_database(tmp_path / "i.db")) as conn:
        with pytest.raises(ImportFailed) as failure:
            import_interceptions(conn, documents)
        assert [(e.index, e.record_id, e.field) for e in failure.value.errors] == [
            (0, "4f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60", "model"),
            (1, "3f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60", "token_usages.0.input_tokens"),
        ]
        assert "NUL" in failure.value.errors[0].reason
        assert "out of range" in failure.value.errors[1].reason
        assert conn.execute("SELECT count(*) FROM interceptions").fetchone()[0] == 0
        # A big number inside metadata is fine (jsonb keeps it); a clean record loads.
        assert import_interceptions(conn, [_item()]).interceptions == 1


def test_ai_gateway_openapi_document_describes_what_is_served(gateway: httpx.Client) -> None:
    doc = document("ai-gateway")
    assert [e.message for e in OpenAPIV30SpecValidator(doc).iter_errors()] == []
    assert gateway.get(f"{GATEWAY}/openapi.json").json() == doc
    assert "/ai-gateway/interceptions" not in doc["paths"]
    strict = copy.deepcopy(doc["components"]["schemas"])
    for schema in strict.values():
        if "properties" in schema:
            schema["additionalProperties"] = False
    sessions = _all_sessions(gateway, GATEWAY)
    samples = [
        ("/ai-gateway/sessions", {"count": len(sessions), "sessions": sessions}),
        ("/ai-gateway/providers", gateway.get(f"{GATEWAY}/providers", headers=_auth(ADMIN)).json()),
    ]
    for session in [s for s in sessions if "network_calls" in s][:10] + sessions[:10]:
        path = f"{GATEWAY}/sessions/{quote(session['id'], safe=':@+=')}"
        samples.append(
            ("/ai-gateway/sessions/{session_id}", gateway.get(path, headers=_auth(ADMIN)).json())
        )
    problems = []
    for path, body in samples:
        ok = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        validator = OAS30Validator(
            {**ok["schema"], "components": {"schemas": strict}},
            format_checker=oas30_format_checker,
        )
        problems += [f"{path}: {e.message}" for e in validator.iter_errors(body)]
    assert problems[:10] == []
