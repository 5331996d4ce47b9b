"""The stand-in's `q` parser: splitting, filters, exact messages, and the 400s served with them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from aibridge_graphql.standin.search import (
    InterceptionSearch,
    SearchError,
    SessionSearch,
    Validation,
    parse_clients_query,
    parse_interceptions_query,
    parse_models_query,
    parse_sessions_query,
)

CALLER = "0b0b0b0b-0000-4000-8000-000000000001"
ALICE = "a11ce000-0000-4000-8000-000000000002"


class FakeLookups:
    """Users and provider names the parser may resolve; records what it asked for."""

    def __init__(self) -> None:
        self.usernames: list[str] = []

    def user_id_by_username(self, username: str) -> str | None:
        self.usernames.append(username)
        return ALICE if username.lower() == "alice" else None

    def provider_name_exists(self, name: str) -> bool:
        return name == "anthropic-main"


def interceptions(q: str, lookups: FakeLookups | None = None) -> InterceptionSearch:
    return parse_interceptions_query(q, caller_id=CALLER, lookups=lookups or FakeLookups())


def sessions(q: str) -> SessionSearch:
    return parse_sessions_query(q, caller_id=CALLER, lookups=FakeLookups())


def errors_of(parse: Callable[[str], object], q: str) -> list[tuple[str, str]]:
    with pytest.raises(SearchError) as caught:
        parse(q)
    return [(v.field, v.detail) for v in caught.value.validations]


def us(text: str) -> int:
    stamp = datetime.fromisoformat(text)
    return (stamp - datetime(1970, 1, 1, tzinfo=UTC)) // datetime.resolution


def dup(key: str, times: int = 2) -> str:
    return (
        f'Query param "{key}" provided more than once, found {times} times.'
        " Only provide 1 instance of this query param."
    )


DATE_PREFIX = (
    'Query param "started_after" must be a valid date format'
    " (2006-01-02T15:04:05.999999999Z07:00): "
)


# ---- no filters ------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["", " ", "   "])
def test_empty_queries_filter_nothing(q: str) -> None:
    assert interceptions(q) == InterceptionSearch()
    assert sessions(q) == SessionSearch()
    assert parse_models_query(q) is None
    assert parse_clients_query(q) is None


# ---- interceptions ---------------------------------------------------------------------------


def test_every_interception_key_is_parsed() -> None:
    q = (
        "initiator:alice provider:anthropic provider_name:anthropic-main model:claude-sonnet-4"
        ' client:"Claude Code" started_after:"2025-01-01T00:00:00Z"'
        ' started_before:"2025-02-01T12:30:00.5Z"'
    )
    assert interceptions(q) == InterceptionSearch(
        initiator_id=ALICE,
        provider="anthropic",
        provider_name="anthropic-main",
        model="claude-sonnet-4",
        client="Claude Code",
        started_after=us("2025-01-01T00:00:00+00:00"),
        started_before=us("2025-02-01T12:30:00.500000+00:00"),
    )


def test_keys_are_lowercased_values_keep_their_case() -> None:
    assert interceptions("MODEL:GPT-4.1 Client:Cursor") == InterceptionSearch(
        model="GPT-4.1", client="Cursor"
    )


def test_bare_terms_are_joined_into_one_initiator() -> None:
    lookups = FakeLookups()
    with pytest.raises(SearchError) as caught:
        interceptions("ali model:x ce", lookups)
    assert lookups.usernames == ["ali ce"]
    assert caught.value.validations == [
        Validation(
            "initiator",
            'Query param "initiator" has invalid value: user "ali ce" either does not exist,'
            " or you are unauthorized to view them",
        )
    ]


def test_bare_term_resolves_a_username() -> None:
    assert interceptions("Alice") == InterceptionSearch(initiator_id=ALICE)


def test_initiator_me_is_the_caller() -> None:
    assert interceptions("initiator:me") == InterceptionSearch(initiator_id=CALLER)


def test_initiator_uuid_is_used_without_lookup() -> None:
    lookups = FakeLookups()
    upper = "{A11CE000-0000-4000-8000-0000000000FF}"
    assert interceptions(f"initiator:{upper}", lookups).initiator_id == (
        "a11ce000-0000-4000-8000-0000000000ff"
    )
    assert lookups.usernames == []


def test_nil_uuid_initiator_means_no_filter() -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    assert interceptions(f"initiator:{nil}") == InterceptionSearch()


def test_quoted_bare_term_keeps_its_quotes() -> None:
    # Coder hands the whole element (quotes included) to the default key.
    assert errors_of(interceptions, '"alice"') == [
        (
            "initiator",
            'Query param "initiator" has invalid value: user "\\"alice\\"" either does not'
            " exist, or you are unauthorized to view them",
        )
    ]


def test_quoted_colon_value_is_one_element() -> None:
    assert interceptions('client:"a:b"') == InterceptionSearch(client="a:b")


def test_unknown_provider_name() -> None:
    assert errors_of(interceptions, "provider_name:nope") == [
        (
            "provider_name",
            'Query param "provider_name" has invalid value: provider not found or unauthorized',
        )
    ]


def test_session_id_is_not_an_interception_key() -> None:
    assert errors_of(interceptions, "session_id:abc") == [
        ("session_id", '"session_id" is not a valid query param')
    ]


# ---- term-level errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "detail"),
    [
        (
            "started_after:2025-01-01T00:00:00Z",
            "Query element \"started_after:2025-01-01T00:00:00Z\" can only contain 1 ':'",
        ),
        ("a:b:c", "Query element \"a:b:c\" can only contain 1 ':'"),
        ("model:", "Query element \"model:\" cannot start or end with ':'"),
        (":model", "Query element \":model\" cannot start or end with ':'"),
        # Only the first bad element is reported, and key:value elements come before bare terms.
        ("x:y:z model: bare", "Query element \"x:y:z\" can only contain 1 ':'"),
    ],
)
def test_term_errors_stop_at_the_first(q: str, detail: str) -> None:
    assert errors_of(interceptions, q) == [("q", detail)]
    assert errors_of(sessions, q) == [("q", detail)]


# ---- parameter-level errors ------------------------------------------------------------------


def test_unknown_keys_are_each_reported_in_order() -> None:
    assert errors_of(interceptions, "zeta:1 model:m alpha:2") == [
        ("zeta", '"zeta" is not a valid query param'),
        ("alpha", '"alpha" is not a valid query param'),
    ]


def test_duplicate_keys() -> None:
    assert errors_of(interceptions, "model:a model:b MODEL:c") == [("model", dup("model", 3))]
    # A bare term is an initiator too.
    assert errors_of(interceptions, "alice initiator:me") == [("initiator", dup("initiator"))]


def test_duplicate_is_ignored_when_the_first_value_is_empty() -> None:
    # Coder's parser reads the first value and treats "" as absent before counting.
    assert interceptions('model:"" model:b') == InterceptionSearch()


def test_errors_are_collected_in_parse_order() -> None:
    q = 'zz:1 started_after:"nope" provider_name:nope initiator:ghost model:a model:b'
    assert [field for field, _ in errors_of(interceptions, q)] == [
        "initiator",
        "provider_name",
        "model",
        "started_after",
        "zz",
    ]


# ---- dates -----------------------------------------------------------------------------------


def test_dates_with_offsets_become_utc_microseconds() -> None:
    found = interceptions(
        'started_after:"2025-03-01T10:00:00.123456+02:00"'
        ' started_before:"2025-03-01T23:00:00-05:30"'
    )
    assert found.started_after == us("2025-03-01T08:00:00.123456+00:00")
    assert found.started_before == us("2025-03-02T04:30:00+00:00")


def test_lowercase_t_and_z_are_accepted() -> None:
    assert interceptions('started_after:"2025-01-01t00:00:00z"').started_after == us(
        "2025-01-01T00:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("fraction", "micros"),
    [("1234564", 123456), ("1234565", 123456), ("1234566", 123457), ("9999996", 1_000_000)],
)
def test_sub_microsecond_fractions_round_like_postgres(fraction: str, micros: int) -> None:
    found = interceptions(f'started_after:"2025-01-01T00:00:00.{fraction}Z"')
    assert found.started_after == us("2025-01-01T00:00:00+00:00") + micros


def test_go_zero_time_means_no_bound() -> None:
    found = interceptions(
        'started_after:"0001-01-01T00:00:00Z" started_before:"0001-01-01T00:00:00Z"'
    )
    assert found == InterceptionSearch()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (
            "2025-01-01",
            'parsing time "2025-01-01" as "2006-01-02T15:04:05.999999999Z07:00":'
            ' cannot parse "" as "T"',
        ),
        ("2025-13-01t00:00:00z", 'parsing time "2025-13-01T00:00:00Z": month out of range'),
        (
            "yesterday",
            'parsing time "YESTERDAY" as "2006-01-02T15:04:05.999999999Z07:00":'
            ' cannot parse "YESTERDAY" as "2006"',
        ),
    ],
)
def test_bad_dates_carry_gos_parse_error(value: str, error: str) -> None:
    assert errors_of(interceptions, f'started_after:"{value}"') == [
        ("started_after", DATE_PREFIX + error)
    ]


@pytest.mark.parametrize("before", ["2025-01-01T00:00:00Z", "2024-12-31T23:59:59.999999999Z"])
def test_started_before_must_be_after_started_after(before: str) -> None:
    q = f'started_after:"2025-01-01T00:00:00Z" started_before:"{before}"'
    assert errors_of(sessions, q) == [
        (
            "started_before",
            'Query param "started_before" has invalid value: "started_before" must be after'
            ' "started_after" if set',
        )
    ]


def test_both_bad_dates_are_reported_without_the_order_check() -> None:
    fields = [f for f, _ in errors_of(interceptions, "started_after:x started_before:y")]
    assert fields == ["started_after", "started_before"]


# ---- sessions --------------------------------------------------------------------------------


def test_sessions_take_session_id_and_the_interception_keys() -> None:
    assert sessions('session_id:"sess 1" initiator:me provider:openai') == SessionSearch(
        session_id="sess 1", initiator_id=CALLER, provider="openai"
    )


@pytest.mark.parametrize("q", ["alice", "model:x alice", '"quoted words"'])
def test_sessions_reject_bare_terms(q: str) -> None:
    assert errors_of(sessions, q) == [("q", "no search key specified")]


# ---- models and clients ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "key"), [(parse_models_query, "model"), (parse_clients_query, "client")]
)
def test_single_key_endpoints(parse: Callable[[str], str | None], key: str) -> None:
    assert parse("Claude") == "Claude"
    assert parse("Claude Code") == "Claude Code"
    assert parse(f'{key.upper()}:"Claude Co"') == "Claude Co"
    assert errors_of(parse, f"Claude {key}:x") == [(key, dup(key))]
    assert errors_of(parse, "initiator:me") == [
        ("initiator", '"initiator" is not a valid query param')
    ]


def test_search_error_text_joins_the_details() -> None:
    with pytest.raises(SearchError, match="no search key specified"):
        sessions("x")


# ---- over HTTP: the served stand-in wraps these in each endpoint's 400 -----------------------

_QUOTE_DATE = "Query element \"started_after:2025-01-01T00:00:00Z\" can only contain 1 ':'"


@pytest.mark.parametrize(
    ("path", "q", "message", "validations"),
    [
        (
            "/interceptions",
            "started_after:2025-01-01T00:00:00Z",
            "Invalid workspace search query.",
            [("q", _QUOTE_DATE)],
        ),
        (
            "/sessions",
            "model:",
            "Invalid session search query.",
            [("q", "Query element \"model:\" cannot start or end with ':'")],
        ),
        (
            "/interceptions",
            'started_after:"2025-01-01"',
            "Invalid workspace search query.",
            [
                (
                    "started_after",
                    DATE_PREFIX + 'parsing time "2025-01-01" as'
                    ' "2006-01-02T15:04:05.999999999Z07:00": cannot parse "" as "T"',
                )
            ],
        ),
        (
            "/sessions",
            'started_after:"2025-01-02T00:00:00Z" started_before:"2025-01-01T00:00:00+00:00"',
            "Invalid session search query.",
            [
                (
                    "started_before",
                    'Query param "started_before" has invalid value: "started_before" must be'
                    ' after "started_after" if set',
                )
            ],
        ),
        (
            "/sessions",
            "session_id:a SESSION_ID:b",
            "Invalid session search query.",
            [("session_id", dup("session_id"))],
        ),
        (
            "/models",
            "claude model:gpt",
            "Invalid AI Bridge models search query.",
            [("model", dup("model"))],
        ),
        (
            "/clients",
            "client:a client:b",
            "Invalid AI Bridge clients search query.",
            [("client", dup("client"))],
        ),
        (
            "/interceptions",
            "colour:red provider_name:nope initiator:nobody",
            "Invalid workspace search query.",
            [
                (
                    "initiator",
                    'Query param "initiator" has invalid value: user "nobody" either does not'
                    " exist, or you are unauthorized to view them",
                ),
                (
                    "provider_name",
                    'Query param "provider_name" has invalid value: provider not found or'
                    " unauthorized",
                ),
                ("colour", '"colour" is not a valid query param'),
            ],
        ),
    ],
)
def test_served_search_errors(
    standin_url: str,
    tokens: dict[str, str],
    path: str,
    q: str,
    message: str,
    validations: list[tuple[str, str]],
) -> None:
    response = httpx.get(
        f"{standin_url}/api/v2/aibridge{path}",
        params={"q": q},
        headers={"Coder-Session-Token": tokens["admin"]},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": message,
        "validations": [{"field": field, "detail": detail} for field, detail in validations],
    }
