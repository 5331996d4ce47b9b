"""The prices file (`AIBRIDGE_PRICES_FILE`): negotiated prices that win over genai-prices.

YAML or JSON (by extension: `.json` is JSON, anything else YAML), read and validated once at
start; any problem is one `PricesFileError` line naming the file, the entry and the field.
"""

from __future__ import annotations

import bisect
import fnmatch
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import yaml
from genai_prices.data_snapshot import get_snapshot
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from aibridge_graphql.pricing.money import DEFAULT_CURRENCY
from aibridge_graphql.pricing.rates import KindRates


class PricesFileError(ValueError):
    """A prices file that cannot be used; the message is one line."""


def _decimal(value: Any) -> Any:
    # YAML and JSON numbers arrive as float: go through their shortest repr (0.3 -> "0.3"),
    # never through the binary value. Booleans are not prices.
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    if isinstance(value, int | str):
        try:
            parsed = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError("must be a number") from None
        if not parsed.is_finite():
            raise ValueError("must be a finite number")
        return parsed
    return value


PerMillion = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Name
    model: Name
    valid_from: date
    input: PerMillion
    output: PerMillion
    cache_read: PerMillion | None = None
    cache_write: PerMillion | None = None
    currency: Currency | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Currency = DEFAULT_CURRENCY
    providers: dict[Name, Name] = Field(default_factory=dict)
    prices: list[_Entry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Override:
    """One prices-file entry: which usages it prices, from when, at what rates."""

    index: int
    provider: str  # lower-case; `*` for any
    model: str  # the glob as written
    valid_from: date
    rates: KindRates
    currency: str
    _pattern: re.Pattern[str]

    def matches(self, provider_keys: Sequence[str], model: str) -> bool:
        """Whether this entry applies to a usage of `model` under any of `provider_keys`."""
        if self.provider != "*" and self.provider not in provider_keys:
            return False
        return self._pattern.fullmatch(model.lower()) is not None


@dataclass(frozen=True, slots=True)
class Candidates:
    """The overrides matching one (provider, model), by `valid_from`, ready for a time lookup."""

    starts: tuple[date, ...]
    entries: tuple[Override, ...]

    def at(self, when: datetime) -> Override | None:
        """The entry in force at `when`: the newest `valid_from` on or before its UTC date."""
        day = _utc(when).date()
        position = bisect.bisect_right(self.starts, day)
        return self.entries[position - 1] if position else None


NO_CANDIDATES = Candidates((), ())


@dataclass(frozen=True, slots=True)
class PriceOverrides:
    """A validated prices file: provider aliases and override entries."""

    path: str | None
    aliases: Mapping[str, str]
    entries: tuple[Override, ...]

    def candidates(self, provider_keys: Sequence[str], model: str) -> Candidates:
        """The entries for this usage, ordered so that `Candidates.at` picks the right one.

        Among entries with the same `valid_from` the earlier one in the file wins.
        """
        matching = [entry for entry in self.entries if entry.matches(provider_keys, model)]
        if not matching:
            return NO_CANDIDATES
        # Sorted by date, ties with the earliest file entry last so bisect lands on it.
        matching.sort(key=lambda entry: (entry.valid_from, -entry.index))
        return Candidates(tuple(e.valid_from for e in matching), tuple(matching))


EMPTY_OVERRIDES = PriceOverrides(None, {}, ())


def load_prices_file(path: str | Path) -> PriceOverrides:
    """Read and validate a prices file; raise `PricesFileError` (one line) on any problem."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PricesFileError(f"prices file {where}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PricesFileError(f"prices file {where}: not UTF-8 text") from None
    raw = _parse(where, text)
    if raw is None:
        raise PricesFileError(f"prices file {where}: empty; expected a mapping with 'prices'")
    if isinstance(raw, list):
        raw = {"prices": raw}
    if not isinstance(raw, dict):
        raise PricesFileError(f"prices file {where}: expected a mapping with 'prices' or a list")
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        raise PricesFileError(f"prices file {where}: {_describe(exc)}") from None
    return _build(where, parsed)


def _parse(where: str, text: str) -> Any:
    if where.lower().endswith(".json"):
        try:
            # parse_float keeps prices exact from the first character.
            return json.loads(text, parse_float=Decimal) if text.strip() else None
        except json.JSONDecodeError as exc:
            raise PricesFileError(
                f"prices file {where}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                f"{exc.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "cannot parse"
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise PricesFileError(f"prices file {where}: invalid YAML{at}: {problem}") from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    loc = list(error["loc"])
    message = " ".join(str(error["msg"]).split())
    if len(loc) >= 2 and loc[0] == "prices" and isinstance(loc[1], int):
        field = ".".join(str(part) for part in loc[2:]) or "(entry)"
        if error["type"] == "missing":
            return f"entry {loc[1]} field '{field}': missing (required)"
        if error["type"] == "extra_forbidden":
            return f"entry {loc[1]} field '{field}': unknown field"
        return f"entry {loc[1]} field '{field}': {message}"
    field = ".".join(str(part) for part in loc) or "(file)"
    if error["type"] == "extra_forbidden":
        return f"field '{field}': unknown field (expected currency, providers, prices)"
    return f"field '{field}': {message}"


def _build(where: str, parsed: _File) -> PriceOverrides:
    seen: dict[tuple[str, str, date], int] = {}
    entries = []
    for index, entry in enumerate(parsed.prices):
        provider = entry.provider.lower()
        key = (provider, entry.model.lower(), entry.valid_from)
        if key in seen:
            raise PricesFileError(
                f"prices file {where}: entry {index} field 'valid_from': same provider, model and "
                f"valid_from as entry {seen[key]}"
            )
        seen[key] = index
        pattern = re.compile(fnmatch.translate(entry.model.lower()))
        entries.append(
            Override(
                index=index,
                provider=provider,
                model=entry.model,
                valid_from=entry.valid_from,
                rates=KindRates.flat(
                    entry.input, entry.output, entry.cache_read, entry.cache_write
                ),
                currency=entry.currency or parsed.currency,
                _pattern=pattern,
            )
        )
    known = {provider.id for provider in get_snapshot().providers}
    aliases = {}
    for name, target in parsed.providers.items():
        if target.lower() not in known:
            raise PricesFileError(
                f"prices file {where}: field 'providers.{name}': unknown genai-prices provider "
                f"{target!r}"
            )
        aliases[name.lower()] = target.lower()
    return PriceOverrides(where, aliases, tuple(entries))


def _utc(when: datetime) -> datetime:
    # Coder's timestamps carry an offset; a naive one is taken as UTC, as genai-prices does.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
