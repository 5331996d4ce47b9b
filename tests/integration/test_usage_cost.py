"""Cost and usage against the real stand-in in both eras: the gateway's figures against the REST
data priced in the test, an unpriced model in every sum, a prices file, `/usage.csv`, the budget.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aibridge_graphql.core.pricing import Cost, Pricer, TokenCounts, cache_write_1h_of
from aibridge_graphql.server.cli import serve
from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.ingest import import_interceptions
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import read_tokens
from aibridge_graphql.upstream import models as m
from tests.support.gateway_helpers import rest_json, serve_gateway
from tests.support.servers import run_app_in_thread

ADMIN_TOKEN = "AdminUsag1-0123456789abcdefghijkl"
MYSTERY_MODEL = "mystery-model-9000"
MYSTERY_ID = "3f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60"
ERAS = {"sessions": "/api/v2/aibridge", "ai-gateway": "/api/v2/ai-gateway"}
# Enough for the sessions walk (1 + one call per session) over this small seed.
BUDGET = 400


def _mystery() -> dict[str, Any]:
    """An interception of a model no price list knows (imported: its own session and thread)."""
    return {
        "id": MYSTERY_ID,
        "initiator": {"id": "1f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60", "username": "mallory"},
        "provider": "anthropic",
        "provider_name": "anthropic",
        "model": MYSTERY_MODEL,
        "client": '=HYPERLINK("x")',
        "started_at": "2025-06-01T00:00:00Z",
        "ended_at": "2025-06-01T00:00:01Z",
        "token_usages": [
            {
                "id": "2f3c1c8e-3a57-4a2f-9a4c-1c2b3d4e5f60",
                "interception_id": MYSTERY_ID,
                "provider_response_id": "r",
                "input_tokens": 7_000,
                "output_tokens": 700,
                "created_at": "2025-06-01T00:00:00Z",
            }
        ],
    }


@pytest.fixture(scope="module")
def usage_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("usage") / "standin.db"
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 150, 11, ADMIN_TOKEN, awkward_session_ids=False)
        conn.commit()
        import_interceptions(conn, [_mystery()])
    return path


@pytest.fixture(scope="module")
def admin(usage_db: Path) -> str:
    with contextlib.closing(sqlite3.connect(usage_db)) as conn:
        return next(u.token for u in read_tokens(conn) if u.username == "admin")


@pytest.fixture(scope="module", params=list(ERAS))
def era(request: pytest.FixtureRequest, usage_db: Path) -> Iterator[tuple[str, str]]:
    """(era name, stand-in base URL) for each era, serving the same data."""
    name = request.param
    with run_app_in_thread(lambda: create_app(usage_db, api_era=name)) as url:
        yield name, url


# -- ground truth: the REST data, priced here ------------------------------------------------


async def _rest_interceptions(url: str, token: str) -> list[m.Interception]:
    from tests.support.gateway_helpers import rest_client

    out: list[m.Interception] = []
    async with rest_client(url, token) as client:
        after = None
        while True:
            page = await rest_json(client, "/interceptions", limit=1000, after_id=after)
            out += [m.Interception.model_validate(item) for item in page["results"]]
            if len(page["results"]) < 1000:
                return out
            after = page["results"][-1]["id"]


async def _rest_threads(url: str, token: str, api: str) -> list[m.Thread]:
    import httpx

    threads: list[m.Thread] = []
    headers = {"Coder-Session-Token": token}
    async with httpx.AsyncClient(base_url=url + api, headers=headers) as client:
        sessions = await rest_json(client, "/sessions", limit=1000)
        assert len(sessions["sessions"]) < 1000
        for session in sessions["sessions"]:
            page = await rest_json(client, f"/sessions/{session['id']}", limit=200)
            assert len(page["threads"]) < 200
            threads += [m.Thread.model_validate(t) for t in page["threads"]]
    return threads


def _independent_thread(pricer: Pricer, thread: m.Thread) -> Cost:
    # Each action as one request, plus the thread's tokens outside its actions, untiered.
    parts = [pricer.price_action(a, thread) for a in thread.agentic_actions]
    action_tokens = sum(
        (TokenCounts.of(a.token_usage) for a in thread.agentic_actions), TokenCounts()
    )
    rest = TokenCounts.of(thread.token_usage)
    remainder = TokenCounts(
        rest.input - action_tokens.input,
        rest.output - action_tokens.output,
        rest.cache_read - action_tokens.cache_read,
        rest.cache_write - action_tokens.cache_write,
    )
    if remainder.total:
        # Anthropic's 1-hour cache writes of the interceptions outside the actions.
        one_hour = cache_write_1h_of(thread.token_usage) - sum(
            cache_write_1h_of(a.token_usage) for a in thread.agentic_actions
        )
        parts.append(
            pricer.price(
                remainder,
                provider=thread.provider,
                model=thread.model,
                at=thread.started_at,
                cache_write_1h=one_hour,
                aggregated=True,
            )
        )
    return Cost.sum(parts)


async def _truth(name: str, url: str, token: str, pricer: Pricer) -> tuple[Cost, TokenCounts]:
    if name == "sessions":
        items = await _rest_interceptions(url, token)
        cost = Cost.sum(pricer.price_token_usage(u, i) for i in items for u in i.token_usages)
        tokens = sum((TokenCounts.of(u) for i in items for u in i.token_usages), TokenCounts())
        return cost, tokens
    threads = await _rest_threads(url, token, ERAS[name])
    tokens = sum((TokenCounts.of(t.token_usage) for t in threads), TokenCounts())
    return Cost.sum(_independent_thread(pricer, t) for t in threads), tokens


COST = "cost { micros amount currency source complete pricedUsages unpricedUsages reason"
COST += " unpricedTokens { input output total } breakdown { input output cacheRead cacheWrite } }"
ROW = (
    "userId username model provider providerName client day sessions threads interceptions"
    f" inputTokens outputTokens cacheReadInputTokens cacheWriteInputTokens totalTokens {COST}"
)
USAGE = (
    "query($by: [UsageDimension!]!, $f: SessionFilter, $max: Int) {"
    " usage(groupBy: $by, filter: $f, maxUpstreamCalls: $max) { groupBy source complete"
    f" incompleteReason scanned {{ upstreamCalls interceptions sessions threads }}"
    f" rows {{ {ROW} }} totals {{ {ROW} }} }} }}"
)


def _gw(url: str, token: str, name: str, **overrides: Any) -> Any:
    return serve_gateway(
        url, token, api_base_path=ERAS[name], upstream_call_budget=BUDGET, **overrides
    )


async def test_totals_equal_the_rest_data_priced_independently(
    era: tuple[str, str], admin: str
) -> None:
    name, url = era
    expected, tokens = await _truth(name, url, admin, Pricer())
    async with _gw(url, admin, name) as gw:
        usage = (await gw.data(USAGE, {"by": []}))["usage"]
    assert usage["complete"] is True
    assert usage["incompleteReason"] is None
    assert usage["source"] == ("INTERCEPTIONS" if name == "sessions" else "SESSIONS")
    assert usage["rows"] == [] or len(usage["rows"]) == 1
    totals = usage["totals"]
    assert int(totals["inputTokens"]) == tokens.input
    assert int(totals["outputTokens"]) == tokens.output
    assert int(totals["cacheReadInputTokens"]) == tokens.cache_read
    assert int(totals["cacheWriteInputTokens"]) == tokens.cache_write
    assert expected.micros is not None
    assert expected.micros > 0
    assert totals["cost"]["micros"] == str(expected.micros)
    assert totals["cost"]["amount"] == f"{expected.decimal:f}"
    assert totals["cost"]["pricedUsages"] == expected.priced_usages
    # The unknown model is in the sum, unpriced, never free.
    assert expected.unpriced_usages == 1
    assert totals["cost"]["unpricedUsages"] == 1
    assert totals["cost"]["complete"] is False
    assert totals["cost"]["reason"] == "UNKNOWN_MODEL"
    assert totals["cost"]["unpricedTokens"]["input"] == "7000"
    if name == "sessions":
        count = len(await _rest_interceptions(url, admin))
        assert usage["scanned"]["interceptions"] == totals["interceptions"] == count
        assert totals["sessions"] is None
    else:
        assert totals["interceptions"] is None
        assert totals["sessions"] == usage["scanned"]["sessions"]
        assert usage["scanned"]["upstreamCalls"] == 1 + usage["scanned"]["sessions"]


async def test_groups_sum_to_the_totals_and_show_the_unpriced_model(
    era: tuple[str, str], admin: str
) -> None:
    name, url = era
    by = ["USER", "MODEL", "PROVIDER", "CLIENT", "DAY"]
    if name == "sessions":
        by.append("PROVIDER_NAME")
    async with _gw(url, admin, name) as gw:
        usage = (await gw.data(USAGE, {"by": by}))["usage"]
    rows, totals = usage["rows"], usage["totals"]
    assert usage["groupBy"] == by
    assert len(rows) > 5
    micros = sum(int(r["cost"]["micros"]) for r in rows if r["cost"]["micros"] is not None)
    assert str(micros) == totals["cost"]["micros"]
    assert sum(int(r["totalTokens"]) for r in rows) == int(totals["totalTokens"])
    mystery = [r for r in rows if r["model"] == MYSTERY_MODEL]
    assert len(mystery) == 1
    row = mystery[0]
    assert row["cost"]["micros"] is None
    assert row["cost"]["amount"] is None
    assert row["cost"]["reason"] == "UNKNOWN_MODEL"
    assert row["cost"]["source"] is None
    assert row["username"] == "mallory"
    assert row["day"] == "2025-06-01"
    assert all(r["cost"]["complete"] for r in rows if r is not row)
    # Rows come ordered by their dimension values, every dimension filled.
    assert all(r["username"] and r["model"] and r["provider"] and r["day"] for r in rows)


async def test_session_cost_is_the_sum_of_its_threads_and_actions(
    era: tuple[str, str], admin: str
) -> None:
    name, url = era
    query = f"""{{ sessions(first: 20) {{ nodes {{ sessionId threadCount
      tokenUsage {{ inputTokens {COST} }}
      threads(first: 100) {{ nodes {{ model tokenUsage {{ inputTokens {COST} }}
        agenticActions {{ model tokenUsage {{ inputTokens {COST} }} }} }} }} }} }} }}"""
    async with _gw(url, admin, name) as gw:
        sessions = (await gw.data(query))["sessions"]["nodes"]
    pricer = Pricer()
    with_actions = 0
    for session in sessions:
        threads = session["threads"]["nodes"]
        assert len(threads) == session["threadCount"]
        thread_micros = [int(t["tokenUsage"]["cost"]["micros"] or 0) for t in threads]
        assert int(session["tokenUsage"]["cost"]["micros"] or 0) == sum(thread_micros)
        assert session["tokenUsage"]["cost"]["unpricedUsages"] == sum(
            t["tokenUsage"]["cost"]["unpricedUsages"] for t in threads
        )
        for thread in threads:
            actions = thread["agenticActions"]
            action_micros = sum(int(a["tokenUsage"]["cost"]["micros"] or 0) for a in actions)
            action_input = sum(a["tokenUsage"]["inputTokens"] for a in actions)
            rest = thread["tokenUsage"]["inputTokens"] - action_input
            if actions and rest == 0:
                with_actions += 1
                assert int(thread["tokenUsage"]["cost"]["micros"] or 0) == action_micros
            assert int(thread["tokenUsage"]["cost"]["micros"] or 0) >= action_micros
    assert with_actions > 0, "the seed must have threads made only of actions"
    del pricer


async def test_a_prices_file_changes_the_figures(
    era: tuple[str, str], admin: str, tmp_path: Path
) -> None:
    name, url = era
    prices = tmp_path / "prices.json"
    # $1 per million tokens of every kind, for every model: one micro-dollar per token.
    prices.write_text(
        json.dumps(
            {
                "prices": [
                    {
                        "provider": "*",
                        "model": "*",
                        "valid_from": "2000-01-01",
                        "input": 1,
                        "output": 1,
                    }
                ]
            }
        )
    )
    async with _gw(url, admin, name, prices_file=str(prices)) as gw:
        totals = (await gw.data(USAGE, {"by": []}))["usage"]["totals"]
    assert totals["cost"]["source"] == "OVERRIDE"
    assert totals["cost"]["complete"] is True
    assert totals["cost"]["unpricedUsages"] == 0
    assert totals["cost"]["micros"] == totals["totalTokens"]


def test_a_malformed_prices_file_stops_serve_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text(
        "prices:\n  - provider: openai\n    model: gpt-*\n    valid_from: 2025-01-01\n"
        "    input: -1\n    output: 2\n"
    )
    result = CliRunner().invoke(
        serve, ["--port", "0", "--grpc-port", "0"], env={"AIBRIDGE_PRICES_FILE": str(bad)}
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: prices file {bad}: entry 0 field 'input'")


async def test_usage_csv_opens_as_the_query_rows(era: tuple[str, str], admin: str) -> None:
    name, url = era
    by = ["USER", "MODEL", "CLIENT"]
    async with _gw(url, admin, name) as gw:
        rows = (await gw.data(USAGE, {"by": by}))["usage"]["rows"]
        response = await gw.http.get(
            "/usage.csv", params={"groupBy": ",".join(by)}, headers={"Coder-Session-Token": admin}
        )
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert response.headers["X-Usage-Complete"] == "true"
        text = await response.text()
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0])[:4] == ["user_id", "username", "model", "client"]
    assert len(table) == len(rows)
    for line, row in zip(table, rows, strict=True):
        assert line["user_id"] == row["userId"]
        assert line["username"] == row["username"]
        assert line["model"] == row["model"]
        client = row["client"] or ""
        # A formula-looking cell is quoted with ' as Coder's export does.
        assert line["client"] == ("'" + client if client.startswith("=") else client)
        assert line["input_tokens"] == row["inputTokens"]
        assert line["cost_micros"] == (row["cost"]["micros"] or "")
        assert line["cost"] == (row["cost"]["amount"] or "")
        assert line["cost_complete"] == str(row["cost"]["complete"]).lower()
    assert any(line["client"].startswith("'=") for line in table)


async def test_usage_csv_errors_are_json_4xx(era: tuple[str, str], admin: str) -> None:
    name, url = era
    async with _gw(url, admin, name) as gw:
        bad_dim = await gw.http.get(
            "/usage.csv", params={"groupBy": "COLOR"}, headers={"Coder-Session-Token": admin}
        )
        anonymous = await gw.http.get("/usage.csv", params={"groupBy": "USER"})
        bad_time = await gw.http.get(
            "/usage.csv",
            params={"startedAfter": "yesterday"},
            headers={"Coder-Session-Token": admin},
        )
        assert bad_dim.status == 400
        assert "COLOR" in (await bad_dim.json())["message"]
        assert anonymous.status == 401
        assert (await anonymous.json())["message"]
        assert bad_time.status == 400


async def test_a_small_allowance_gives_an_incomplete_answer(admin: str, usage_db: Path) -> None:
    with run_app_in_thread(lambda: create_app(usage_db, api_era="ai-gateway")) as url:
        async with _gw(url, admin, "ai-gateway") as gw:
            usage = (await gw.data(USAGE, {"by": ["USER"], "max": 3}))["usage"]
            calls = len(gw.calls)
    assert usage["complete"] is False
    assert "allowance" in usage["incompleteReason"]
    assert usage["scanned"]["upstreamCalls"] == 3 == calls


async def test_usage_counts_its_whole_allowance_in_the_estimate(
    era: tuple[str, str], admin: str
) -> None:
    name, url = era
    async with serve_gateway(url, admin, api_base_path=ERAS[name]) as gw:
        body = await gw.query("{ usage(groupBy: []) { complete } models }")
        fits = await gw.query("{ usage(groupBy: [], maxUpstreamCalls: 99) { complete } models }")
        calls = len(gw.calls)
    assert body["errors"][0]["extensions"]["code"] == "COST_ESTIMATED_TOO_EXPENSIVE"
    assert body["errors"][0]["extensions"]["estimate"] == 101
    assert "errors" not in fits, fits
    assert calls <= 100


async def test_provider_name_is_refused_without_interceptions(admin: str, usage_db: Path) -> None:
    with run_app_in_thread(lambda: create_app(usage_db, api_era="ai-gateway")) as url:
        async with _gw(url, admin, "ai-gateway") as gw:
            body = await gw.query(USAGE, {"by": ["PROVIDER_NAME"]})
    assert body["data"]["usage"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
