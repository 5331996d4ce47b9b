"""Normalized upstream requests: the loader key, its params and path encoding."""

from __future__ import annotations

from uuid import UUID

import pytest

from aibridge_graphql.standin.goparse import chi_path_param
from aibridge_graphql.upstream.requests import (
    UpstreamRequest,
    clients_request,
    interceptions_request,
    models_request,
    session_path,
    session_path_exact,
    session_threads_request,
    sessions_request,
)
from aibridge_graphql.upstream.search_query import InterceptionFilter, SessionFilter

CURSOR = UUID("00000000-0000-0000-0000-000000000007")


def test_same_params_in_any_order_make_equal_keys() -> None:
    a = UpstreamRequest.make("/sessions", {"limit": 20, "q": 'model:"m"', "offset": None})
    b = UpstreamRequest.make("/sessions", {"offset": None, "q": 'model:"m"', "limit": "20"})
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a.params == (("limit", "20"), ("q", 'model:"m"'))


def test_url_path_renders_encoded_query() -> None:
    request = UpstreamRequest.make("/models", {"q": 'model:"gpt 4"', "limit": 5})
    assert request.url_path == "/models?limit=5&q=model%3A%22gpt+4%22"
    assert UpstreamRequest.make("/clients").url_path == "/clients"


def test_interceptions_request_omits_empty_q_and_zero_offset() -> None:
    request = interceptions_request(None, limit=10, offset=0)
    assert request == UpstreamRequest("/interceptions", (("limit", "10"),))
    request = interceptions_request(InterceptionFilter(model="m"), limit=10, after_id=CURSOR)
    assert dict(request.params) == {"limit": "10", "q": 'model:"m"', "after_id": str(CURSOR)}
    assert dict(interceptions_request(None, limit=1, offset=40).params)["offset"] == "40"


def test_sessions_request_uses_the_session_cursor() -> None:
    request = sessions_request(SessionFilter(session_id="s 1"), limit=20, after_session_id="x/y")
    assert request.path == "/sessions"
    assert dict(request.params) == {
        "limit": "20",
        "q": 'session_id:"s 1"',
        "after_session_id": "x/y",
    }


@pytest.mark.parametrize(
    ("session_id", "path"),
    [
        ("plain", "/sessions/plain"),
        ("with space", "/sessions/with%20space"),
        ("a/b/../c", "/sessions/a%2Fb%2F..%2Fc"),
        # `=` is a sub-delim: legal raw in a segment, and Coder matches the raw path.
        ("?q=1#x", "/sessions/%3Fq=1%23x"),
        ("sessión-✓", "/sessions/sessi%C3%B3n-%E2%9C%93"),
        ("claude:2025@host+x=y", "/sessions/claude:2025@host+x=y"),
        ("!$&'()*+,;~._-", "/sessions/!$&'()*+,;~._-"),
        ("100%", "/sessions/100%25"),
        ("tab\tnl\n", "/sessions/tab%09nl%0A"),
        (".", "/sessions/%2E"),
        ("..", "/sessions/%2E%2E"),
    ],
)
def test_session_id_is_one_encoded_path_segment(session_id: str, path: str) -> None:
    request = session_threads_request(session_id, limit=3)
    assert request.path == path
    assert request.params == (("limit", "3"),)


@pytest.mark.parametrize(
    ("session_id", "exact"),
    [
        ("plain", True),
        ("with space", True),
        ("claude:2025@host+x=y", True),
        ("!$&'()*+,;~._-", True),  # sent raw; chi routes on the raw path, which is the id
        ("100%", True),
        ("sessión-✓", True),
        ("?q=1#x", True),
        ("a/b", False),  # `%2F` is not Go's encoding of "/": the handler sees "a%2Fb"
        (".", False),
        ("..", False),
        ("(x) y", False),  # Go escapes `()`, so the raw path is used, still holding `%20`
        ("\ud800", False),  # not encodable: no path at all
    ],
)
def test_session_path_exact_says_whether_the_handler_sees_the_id(
    session_id: str, exact: bool
) -> None:
    assert session_path_exact(session_id) is exact
    if exact:
        # The stand-in models Coder's router (goparse.chi_path_param): the id arrives unchanged.
        assert chi_path_param(session_path(session_id).removeprefix("/sessions/")) == session_id
    elif session_id != "\ud800":
        assert chi_path_param(session_path(session_id).removeprefix("/sessions/")) != session_id


def test_session_threads_cursors() -> None:
    request = session_threads_request("s", limit=3, before_id=CURSOR)
    assert dict(request.params) == {"limit": "3", "before_id": str(CURSOR)}
    with pytest.raises(ValueError, match="empty"):
        session_threads_request("", limit=3)


def test_models_and_clients_prefix() -> None:
    assert dict(models_request("gpt", limit=50).params) == {"limit": "50", "q": 'model:"gpt"'}
    assert dict(clients_request(None, limit=50).params) == {"limit": "50"}
    assert dict(clients_request("", limit=50, offset=0).params) == {"limit": "50"}
    assert dict(clients_request("Cl", limit=5).params)["q"] == 'client:"Cl"'
    with pytest.raises(ValueError, match="double quote"):
        models_request('x"', limit=5)
