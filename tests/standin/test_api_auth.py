"""Authentication, authorization and error shapes of the stand-in API, over real HTTP."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aibridge_graphql.standin.records import UserRecord
from tests.support.standin_api import (
    API,
    add_api_key,
    api_client,
    build_database,
    error,
    get_json,
    serve,
)

SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
ENDPOINTS = ["/interceptions", "/sessions", "/sessions/some-session", "/models", "/clients"]

OWNER = UserRecord(
    "11111111-1111-4111-8111-111111111111", "root", "root@example.com", "", "", "owner"
)
OWNER_TOKEN = "RootToken1-abcdefghijklmnopqrstuv"
EXPIRED_TOKEN = "OldToken99-abcdefghijklmnopqrstuv"
EXPIRED_AT = 1_700_000_000_123_400  # 2023-11-14T22:13:20.1234Z


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "auth.db"
    build_database(path, [(OWNER, OWNER_TOKEN)], [])
    add_api_key(path, OWNER.id, EXPIRED_TOKEN, EXPIRED_AT)
    return path


@pytest.fixture(scope="module")
def small_url(small_db: Path) -> Iterator[str]:
    with serve(small_db) as url:
        yield url


def test_every_token_carrier_is_accepted(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    url = f"{standin_url}{API}/models"
    carriers = [
        {"headers": {"Coder-Session-Token": token}},
        {"cookies": {"coder_session_token": token}},
        {"params": {"coder_session_token": token}},
        {"headers": {"Authorization": f"bearer  {token}"}},
        {"params": {"access_token": token}},
    ]
    for carrier in carriers:
        response = httpx.get(url, **carrier)  # type: ignore[arg-type]
        assert response.status_code == 200, (carrier, response.text)
        assert response.json()


def test_carrier_precedence_is_cookie_query_header(
    standin_url: str, tokens: dict[str, str]
) -> None:
    good, bad = tokens["admin"], "abcdefghij-0123456789012345678901"
    url = f"{standin_url}{API}/models"
    cookie_wins = httpx.get(
        url, cookies={"coder_session_token": good}, headers={"Coder-Session-Token": bad}
    )
    assert cookie_wins.status_code == 200
    query_wins = httpx.get(
        url, params={"coder_session_token": bad}, headers={"Coder-Session-Token": good}
    )
    assert query_wins.status_code == 401
    empty_cookie = httpx.get(
        url, cookies={"coder_session_token": ""}, headers={"Coder-Session-Token": good}
    )
    assert empty_cookie.status_code == 200


@pytest.mark.parametrize("path", ENDPOINTS)
def test_missing_token_is_401_everywhere(standin_url: str, path: str) -> None:
    with api_client(standin_url) as anonymous:
        # Authentication comes before parameter validation, as in Coder's middleware chain.
        assert error(anonymous, path, 401, limit=-1) == {
            "message": SIGNED_OUT,
            "detail": 'Cookie "coder_session_token" or query parameter must be provided.',
        }


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        ("nodash", "Invalid API key format: incorrect amount of API key parts, expected 2 got 1"),
        ("a-b-c", "Invalid API key format: incorrect amount of API key parts, expected 2 got 3"),
        (
            "short-0123456789012345678901",
            "Invalid API key format: invalid API key ID length, expected 10 got 5",
        ),
        (
            "abcdefghij-tooshort",
            "Invalid API key format: invalid API key secret length, expected 22 got 8",
        ),
        ("abcdefghij-0123456789012345678901", "API key is invalid."),
    ],
)
def test_bad_tokens_are_401(standin_url: str, token: str, detail: str) -> None:
    with api_client(standin_url, token) as client:
        response = client.get("/sessions")
    assert response.status_code == 401
    assert response.json() == {"message": SIGNED_OUT, "detail": detail}
    # Coder's challenge; its signed-out message mentions "expired", hence that wording.
    host = standin_url.removeprefix("http://")
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="coder", error="invalid_token", error_description="The access token has '
        f'expired", resource_metadata="http://{host}/.well-known/oauth-protected-resource"'
    )


def test_wrong_secret_and_expired_key(small_url: str) -> None:
    wrong = OWNER_TOKEN.split("-")[0] + "-" + "x" * 22
    with api_client(small_url, wrong) as client:
        assert error(client, "/models", 401)["detail"] == "API key secret is invalid."
    with api_client(small_url, EXPIRED_TOKEN) as client:
        assert error(client, "/models", 401) == {
            "message": SIGNED_OUT,
            "detail": 'API key expired at "2023-11-14 22:13:20.1234 +0000 UTC".',
        }
    with api_client(small_url, OWNER_TOKEN) as client:
        assert get_json(client, "/interceptions") == {"count": 0, "results": []}
        assert get_json(client, "/sessions") == {"count": 0, "sessions": []}
        assert get_json(client, "/models") == []


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        # Go counts bytes and looks the raw id up: bytes that are not UTF-8 are just unknown.
        (b"\xff" * 10 + b"-" + b"s" * 22, "API key is invalid."),
        (OWNER_TOKEN.split("-")[0].encode() + b"-" + b"\xe9" * 22, "API key secret is invalid."),
        (b"\xe9" * 9 + b"-" + b"s" * 22, "Invalid API key format: invalid API key ID length, "
         "expected 10 got 9"),
    ],
)  # fmt: skip
def test_token_bytes_that_are_not_utf8_are_counted_and_refused_as_go_does(
    small_url: str, token: bytes, detail: str
) -> None:
    # Found while fuzzing the stand-in: the detail was Python's "'utf-8' codec can't
    # encode characters ...", and an id passing the length check would reach SQLite.
    headers = [(b"Coder-Session-Token", token)]
    response = httpx.get(f"{small_url}{API}/models", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": SIGNED_OUT, "detail": detail}


def test_unknown_routes_and_methods(standin_url: str, tokens: dict[str, str]) -> None:
    with api_client(standin_url, tokens["admin"]) as client:
        for path in ("/nope", "/sessions/a/b", "/interceptions/x"):
            assert error(client, path, 404) == {"message": "Route not found."}
        response = client.post("/sessions")
        assert response.status_code == 405
        assert response.json() == {"message": "Method not allowed."}
        assert "GET" in response.headers["Allow"]


def test_unexpected_failure_is_a_coder_500_without_traceback(
    tmp_path: Path, small_db: Path
) -> None:
    broken = tmp_path / "broken.db"
    with (
        contextlib.closing(sqlite3.connect(small_db)) as source,
        contextlib.closing(sqlite3.connect(broken)) as target,
    ):
        source.backup(target)
    with serve(broken) as url, api_client(url, OWNER_TOKEN) as client:
        with contextlib.closing(sqlite3.connect(broken)) as conn:
            # The table the sessions list reads its pages from.
            conn.execute("DROP TABLE session_summaries")
            conn.commit()
        body = error(client, "/sessions", 500)
        assert body == {
            "message": "Internal error getting AI Bridge sessions.",
            "detail": "no such table: session_summaries",
        }
        assert "Traceback" not in str(body)
