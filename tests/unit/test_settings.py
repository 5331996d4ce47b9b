"""`AIBRIDGE_CORS_ORIGINS`: read as comma-separated text, each origin normalized the way a browser
serializes `Origin`, anything that is not an origin refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aibridge_graphql.settings import Settings, normalize_origin


@pytest.mark.parametrize(
    ("written", "origin"),
    [
        ("https://dash.example.com", "https://dash.example.com"),
        ("HTTPS://Dash.Example.COM", "https://dash.example.com"),
        ("https://dash.example.com/", "https://dash.example.com"),
        ("https://dash.example.com:443", "https://dash.example.com"),
        ("http://dash.example.com:80", "http://dash.example.com"),
        ("http://dash.example.com:443", "http://dash.example.com:443"),
        ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ],
)
def test_an_origin_is_normalized_as_browsers_send_it(written: str, origin: str) -> None:
    assert normalize_origin(written) == origin


@pytest.mark.parametrize(
    "written",
    [
        "null",
        "dash.example.com",
        "ftp://dash.example.com",
        "file:///tmp/page.html",
        "https://dash.example.com/app",
        "https://dash.example.com?x=1",
        "https://dash.example.com?",
        "https://dash.example.com#top",
        "https://user@dash.example.com",
        "https://user:secret@dash.example.com",
        "https://dash.example.com:99999",
        "https://dash.example.com:port",
        "https://bücher.example",
        "https://dash example.com",
        "https://",
        "*.example.com",
    ],
)
def test_anything_else_is_refused(written: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        normalize_origin(written)


def test_the_variable_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIBRIDGE_CORS_ORIGINS", " http://127.0.0.1:5173 ,, https://A.example/ ")
    assert Settings().cors_origins == ("http://127.0.0.1:5173", "https://a.example")
    monkeypatch.setenv("AIBRIDGE_CORS_ORIGINS", "https://a.example,https://A.example:443")
    assert Settings().cors_origins == ("https://a.example",)


@pytest.mark.parametrize("empty", ["", " ", ",", " , "])
def test_empty_is_off(empty: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIBRIDGE_CORS_ORIGINS", empty)
    assert Settings().cors_origins is None


def test_any_origin_stands_alone() -> None:
    assert Settings(cors_origins=" * ").cors_origins == ("*",)
    with pytest.raises(ValidationError, match="give it alone"):
        Settings(cors_origins="*,https://a.example")


def test_the_bad_entry_is_named_by_position() -> None:
    with pytest.raises(ValidationError, match="entry 2: the `null` origin"):
        Settings(cors_origins="https://a.example,null")
