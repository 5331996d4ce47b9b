"""docs/configuration.md's settings table lists every setting, by its variable, with its default.

Each row names one or more `AIBRIDGE_*` variables (`AIBRIDGE_HOST` / `AIBRIDGE_PORT`, or
`AIBRIDGE_CACHE_TTL_MODELS` / `_CLIENTS` sharing the first one's stem) and their defaults (one
for all, or one each); a default in parentheses means "not set". A documented default is checked
by giving it to `Settings` as the environment would and comparing with the real default.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from aibridge_graphql.settings import Settings
from tests.support.docs import REPO, split_fences

CONFIGURATION = REPO / "docs" / "configuration.md"
_ROW = re.compile(r"^\| (?P<names>`AIBRIDGE_[^|]*) \| (?P<default>[^|]*) \| .* \|$")
_UPSTREAM = "http://upstream.invalid"


def documented() -> dict[str, str | None]:
    """Each documented variable and its default as written (None: documented as not set)."""
    prose, _ = split_fences(CONFIGURATION.read_text(encoding="utf-8"))
    table: dict[str, str | None] = {}
    for line in prose:
        row = _ROW.match(line)
        if row is None:
            continue
        tokens = re.findall(r"`([^`]+)`", row["names"])
        names = [tokens[0]]
        for token in tokens[1:]:
            names.append(
                token if token.startswith("AIBRIDGE_") else names[0].rsplit("_", 1)[0] + token
            )
        cell = row["default"].strip()
        defaults: list[str | None]
        if cell.startswith("("):
            defaults = [None] * len(names)
        else:
            values = re.findall(r"`([^`]*)`", cell)
            defaults = list(values) if len(values) == len(names) else [values[0]] * len(names)
        for name, default in zip(names, defaults, strict=True):
            assert name not in table, f"{name} documented twice"
            table[name] = default
    return table


DOCUMENTED = documented()


def test_every_setting_is_documented_and_nothing_else() -> None:
    variables = {f"AIBRIDGE_{name.upper()}" for name in Settings.model_fields}
    assert sorted(variables - set(DOCUMENTED)) == [], "settings missing from the table"
    assert sorted(set(DOCUMENTED) - variables) == [], "documented variables that are no setting"


@pytest.mark.parametrize("variable", sorted(DOCUMENTED))
def test_the_documented_default_is_the_default(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    field = variable.removeprefix("AIBRIDGE_").lower()
    real: Any = Settings.model_fields[field].default
    text = DOCUMENTED[variable]
    if text is None:
        assert real is None, f"{variable}: documented as not set, default {real!r}"
        return
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"AIBRIDGE_{name.upper()}", raising=False)
    monkeypatch.setenv(variable, text)
    settings = Settings() if field == "upstream_url" else Settings(upstream_url=_UPSTREAM)
    read = getattr(settings, field)
    assert read == real, f"{variable}: documented {text!r}, default {real!r}"
