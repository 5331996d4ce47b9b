"""Which genai-prices provider prices a Coder usage: Coder's provider names mapped to the library's.

Coder records two provider fields: `provider`, the runtime type the request went through
(`anthropic`, `openai`, `copilot`; Bedrock routes through `anthropic`, Azure, OpenRouter,
Google and Vercel through `openai`), and on interceptions `provider_name`, the configured
provider row, named by the deployment's admin. So the configured name decides when it says
something, then the model id's shape, then the runtime type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

# Substrings of a configured provider name, tried in order before the library's own matching
# (which would read `azure-openai` as OpenAI and knows no `openrouter` or `vercel` by substring).
_NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("bedrock", "aws"),
    ("azure", "azure"),
    ("openrouter", "openrouter"),
    ("copilot", "github-copilot"),
    ("vertex", "google"),
    ("gemini", "google"),
    ("google", "google"),
)
# Vercel's AI Gateway names models `vendor/model` and bills the vendor's list price.
_VENDOR_PREFIXED = ("vercel",)
# A generic OpenAI-compatible endpoint says nothing about who serves or bills the model.
_NO_HINT = ("compat",)

# Bedrock inference profile and model ids: `us.anthropic.claude-…-v1:0`, `anthropic.claude-…`.
_BEDROCK_MODEL = re.compile(
    r"^((us|eu|apac|jp|au|ca|us-gov|global)\.)?"
    r"(anthropic|amazon|meta|mistral|cohere|deepseek|ai21|openai|qwen|writer)\.[\w.:-]+$"
)

# Runtime provider types (Coder's `provider`) and the library provider each stands for.
_RUNTIME: Mapping[str, str] = {
    "anthropic": "anthropic",
    "openai": "openai",
    "copilot": "github-copilot",
    "bedrock": "aws",
    "azure": "azure",
    "openrouter": "openrouter",
    "google": "google",
    "vertex": "google",
}


@dataclass(frozen=True, slots=True)
class Route:
    """Where to look a usage up in genai-prices: a provider id (None: unknown) and a model ref."""

    provider_id: str | None
    model_ref: str


def route(
    provider: str,
    provider_name: str | None,
    model: str,
    aliases: Mapping[str, str] | None = None,
) -> Route:
    """The genai-prices provider and model ref for Coder's (provider, provider_name, model).

    `aliases` (from the prices file) map configured provider names to library provider ids
    and win over every rule here.
    """
    model = model.strip()
    runtime = provider.strip().lower()
    name = (provider_name or "").strip().lower()
    for key in (name, runtime):
        if key and aliases and key in aliases:
            return Route(aliases[key], model)
    if name:
        from_name = _from_name(name, model)
        if from_name is not None:
            return from_name
    if _BEDROCK_MODEL.match(model.lower()):
        return Route("aws", model)
    if runtime == "openai" and "/" in model:
        # `vendor/model` through the OpenAI runtime is OpenRouter's naming.
        return Route("openrouter", model)
    if runtime in _RUNTIME:
        return Route(_RUNTIME[runtime], model)
    library = _library_provider(runtime) if runtime else None
    return Route(library, model)


def _from_name(name: str, model: str) -> Route | None:
    if any(hint in name for hint in _VENDOR_PREFIXED):
        vendor, sep, rest = model.partition("/")
        if sep and rest:
            return Route(_library_provider(vendor), rest)
        return None
    if any(hint in name for hint in _NO_HINT):
        return None
    for hint, provider_id in _NAME_HINTS:
        if hint in name:
            return Route(provider_id, model)
    library = _library_provider(name)
    return None if library is None else Route(library, model)


def _library_provider(name: str) -> str | None:
    # The library's own provider matching (ids, plus e.g. `bedrock`, `xai`, `mistral…`).
    found = find_provider_by_id(get_snapshot().providers, name)
    return None if found is None else found.id
