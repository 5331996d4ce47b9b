"""The prices file: YAML and JSON, overrides win, valid_from selection, aliases, one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from aibridge_graphql.core.pricing import (
    Pricer,
    PricesFileError,
    TokenCounts,
    UnpricedReason,
    load_prices_file,
    pricer_from_settings,
)
from aibridge_graphql.settings import Settings
from tests.support.docs import REPO, split_fences

TOKENS = TokenCounts(input=1_000_000, output=1_000_000, cache_read=1_000_000, cache_write=1_000_000)

YAML = """\
currency: USD
providers:
  corp-llm: openai
prices:
  - provider: anthropic
    model: "claude-sonnet-4-5*"
    valid_from: 2025-01-01
    input: 2.5
    output: 12
    cache_read: 0.25
    cache_write: 3.1
  - provider: anthropic
    model: "claude-sonnet-4-5*"
    valid_from: 2026-01-01
    input: "2.0"
    output: 10
  - provider: selfhosted
    model: "llama-*"
    valid_from: 2020-01-01
    input: 0.1
    output: 0.2
    cache_read: 0
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_win_and_valid_from_selects_the_newest_in_force(tmp_path: Path) -> None:
    pricer = Pricer(load_prices_file(write(tmp_path, "prices.yaml", YAML)))
    library = Pricer()

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    def price(when: str, model: str = "claude-sonnet-4-5-20250929") -> int | None:
        return pricer.price(TOKENS, provider="anthropic", model=model, at=at(when)).micros

    # 1M tokens of each kind at $/MTok rates: micros = rate x 1,000,000.
    assert price("2025-06-01T10:00") == 2_500_000 + 12_000_000 + 250_000 + 3_100_000
    assert price("2025-12-31T23:59:59") == 2_500_000 + 12_000_000 + 250_000 + 3_100_000
    # From 2026: no cache rates given, so cache tokens pay the input rate.
    assert price("2026-01-01T00:00") == 2_000_000 + 10_000_000 + 2_000_000 + 2_000_000
    cost = pricer.price(
        TOKENS, provider="anthropic", model="claude-sonnet-4-5", at=at("2026-02-01")
    )
    assert cost.source == "override"
    # Before any valid_from the library applies again.
    before = pricer.price(
        TOKENS, provider="anthropic", model="claude-sonnet-4-5", at=at("2024-06-01")
    )
    assert before.source == "gateway"
    assert before == library.price(
        TOKENS, provider="anthropic", model="claude-sonnet-4-5", at=at("2024-06-01")
    )
    # Other models are untouched.
    other = pricer.price(TOKENS, provider="openai", model="gpt-5", at=at("2026-02-01"))
    assert other == library.price(TOKENS, provider="openai", model="gpt-5", at=at("2026-02-01"))


def test_overrides_price_what_the_library_cannot(tmp_path: Path) -> None:
    pricer = Pricer(load_prices_file(write(tmp_path, "prices.yaml", YAML)))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert Pricer().price(TOKENS, provider="selfhosted", model="llama-3", at=at).reason is (
        UnpricedReason.UNKNOWN_PROVIDER
    )
    cost = pricer.price(TOKENS, provider="selfhosted", model="LLAMA-3-70b", at=at)
    assert cost.micros == 100_000 + 200_000 + 0 + 100_000
    # The entry's provider may be the configured name as well as the runtime type.
    named = pricer.price(
        TOKENS, provider="openai", provider_name="selfhosted", model="llama-3", at=at
    )
    assert named.micros == cost.micros


def test_provider_aliases_map_configured_names(tmp_path: Path) -> None:
    pricer = Pricer(load_prices_file(write(tmp_path, "prices.yaml", YAML)))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    aliased = pricer.price(TOKENS, provider="weird", provider_name="corp-llm", model="gpt-5", at=at)
    direct = Pricer().price(TOKENS, provider="openai", model="gpt-5", at=at)
    assert aliased.micros == direct.micros is not None


def test_json_file_and_bare_list(tmp_path: Path) -> None:
    entries = [
        {
            "provider": "*",
            "model": "gpt-5",
            "valid_from": "2025-01-01",
            "input": 1.1,
            "output": 0.1,
            "currency": "EUR",
        }
    ]
    path = write(tmp_path, "prices.json", json.dumps(entries))
    overrides = load_prices_file(path)
    assert overrides.entries[0].rates.input == Decimal("1.1")
    cost = Pricer(overrides).price(
        TokenCounts(input=3), provider="openai", model="gpt-5", at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    # 1.1 x 3 = 3.3 micros -> 3; no binary float crept in.
    assert cost.micros == 3
    assert cost.currency == "EUR"
    yaml_list = write(
        tmp_path,
        "prices.yml",
        "- {provider: openai, model: x, valid_from: 2025-01-01, input: 1, output: 1}\n",
    )
    assert len(load_prices_file(yaml_list).entries) == 1


def test_same_valid_from_earlier_entry_wins(tmp_path: Path) -> None:
    text = """\
prices:
  - {provider: openai, model: "gpt-5*", valid_from: 2025-01-01, input: 1, output: 1}
  - {provider: openai, model: "gpt-*", valid_from: 2025-01-01, input: 9, output: 9}
"""
    pricer = Pricer(load_prices_file(write(tmp_path, "p.yaml", text)))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    tokens = TokenCounts(input=1_000_000)
    assert pricer.price(tokens, provider="openai", model="gpt-5-mini", at=at).micros == 1_000_000
    assert pricer.price(tokens, provider="openai", model="gpt-4.1", at=at).micros == 9_000_000


def test_settings_build_the_pricer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "prices.yaml", YAML)
    monkeypatch.setenv("AIBRIDGE_PRICES_FILE", str(path))
    assert Settings().prices_file == str(path)
    pricer = pricer_from_settings(Settings())
    monkeypatch.delenv("AIBRIDGE_PRICES_FILE")
    assert len(pricer.overrides.entries) == 3
    assert pricer_from_settings(Settings()).overrides.entries == ()
    bad = write(tmp_path, "bad.yaml", "prices: [{provider: a}]\n")
    with pytest.raises(PricesFileError):
        pricer_from_settings(Settings(prices_file=str(bad)))


def entry(**fields: str) -> str:
    """One YAML flow-mapping entry: a valid one, with `fields` changed (an empty value drops it)."""
    values = {"provider": "openai", "model": "gpt-5", "valid_from": "2025-01-01"}
    values |= {"input": "1", "output": "2"} | fields
    return "{" + ", ".join(f"{k}: {v}" for k, v in values.items() if v != "") + "}"


def prices(*entries: str) -> str:
    return "prices:\n" + "".join(f"  - {e}\n" for e in entries)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("p.yaml", prices(entry(input_price="3")), "entry 0 field 'input_price': unknown field"),
        ("p.yaml", prices(entry(), entry(valid_from="")), "entry 1 field 'valid_from': missing"),
        ("p.yaml", prices(entry(cache_read="-1")), "entry 0 field 'cache_read': Input should be"),
        ("p.yaml", prices(entry(input="abc")), "entry 0 field 'input': Value error, must be a"),
        ("p.yaml", prices(entry(input=".nan")), "entry 0 field 'input': Value error, must be"),
        ("p.yaml", prices(entry(input="true")), "entry 0 field 'input': Value error, must be"),
        ("p.yaml", prices(entry(valid_from="someday")), "entry 0 field 'valid_from':"),
        ("p.yaml", prices(entry(provider="''")), "entry 0 field 'provider':"),
        ("p.yaml", prices(entry(currency="usd")), "entry 0 field 'currency':"),
        (
            "p.yaml",
            prices(entry(), entry()),
            "entry 1 field 'valid_from': same provider, model and valid_from as entry 0",
        ),
        ("p.yaml", prices("42"), "entry 0 field '(entry)':"),
        ("p.yaml", "price:\n  - " + entry() + "\n", "field 'price': unknown field"),
        (
            "p.yaml",
            "providers: {corp: nosuchprovider}\n",
            "field 'providers.corp': unknown genai-prices provider",
        ),
        ("p.yaml", "prices: [\n  {provider: openai\n", "invalid YAML at line"),
        ("p.yaml", "", "empty"),
        ("p.yaml", "just a string\n", "expected a mapping"),
        ("p.json", '{"prices": [ {"provider": "openai",, } ]}', "invalid JSON at line 1 column"),
        (
            "p.json",
            json.dumps(
                {
                    "prices": [
                        {"provider": "o", "model": "m", "valid_from": "2025-01-01", "input": 1}
                    ]
                }
            ),
            "entry 0 field 'output': missing",
        ),
    ],
)
def test_malformed_files_fail_with_one_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(PricesFileError) as caught:
        load_prices_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"prices file {path}: ")
    assert expected in message
    assert isinstance(caught.value, ValueError)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        PricesFileError, match=r"^prices file .*nope\.yaml: cannot read: "
    ) as caught:
        load_prices_file(tmp_path / "nope.yaml")
    assert "\n" not in str(caught.value)


def test_documented_example_prices_file_loads(tmp_path: Path) -> None:
    page = (REPO / "docs" / "cost-and-usage.md").read_text(encoding="utf-8")
    _, blocks = split_fences(page[page.index("**Negotiated prices.**") :])
    example = next(block.text for block in blocks if block.info == "yaml")
    overrides = load_prices_file(write(tmp_path, "prices.yaml", example))
    assert [e.provider for e in overrides.entries] == ["bedrock", "selfhosted"]
    assert overrides.aliases == {"corp-gateway": "anthropic"}
    at = datetime(2026, 2, 1, tzinfo=UTC)
    cost = Pricer(overrides).price(
        TokenCounts(input=1_000_000),
        provider="anthropic",
        provider_name="bedrock",
        model="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        at=at,
    )
    assert cost.micros == 2_700_000
    assert cost.source == "override"
