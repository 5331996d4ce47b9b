"""The Strawberry schema (Relay connections, Apollo Federation 2).

`build_schema(settings)` builds it with the settings' limits; `schema` (built on first access
with settings from the environment) is what `strawberry export-schema` and tools import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info

from aibridge_graphql.schema.amounts import SCALAR_MAP
from aibridge_graphql.schema.engine.compat import graphql_core_schema
from aibridge_graphql.schema.engine.estimate import EstimateCache, UpstreamCallBudget
from aibridge_graphql.schema.engine.executor import plan_executor_class
from aibridge_graphql.schema.engine.hooks import CachedHooksRunner, HookCache
from aibridge_graphql.schema.engine.needs import NEEDS_KEY, FieldEstimate, Needs
from aibridge_graphql.schema.engine.operations import OperationCache
from aibridge_graphql.schema.engine.projection import RecordProjection
from aibridge_graphql.schema.errors import ErrorCodes, drop_tracebacks, log_errors
from aibridge_graphql.schema.guards import representation_error, tolerate_unknown_fragments
from aibridge_graphql.schema.interception import Interception
from aibridge_graphql.schema.live import Subscription
from aibridge_graphql.schema.mutation import Mutation
from aibridge_graphql.schema.query import Query
from aibridge_graphql.schema.session import Session
from aibridge_graphql.schema.thread import Thread
from aibridge_graphql.schema.user import User
from aibridge_graphql.settings import Settings

__all__ = ["GatewaySchema", "build_schema", "default_extensions", "schema"]

FEDERATION_VERSION: Final = "2.11"
_CACHE_SIZE = 256

ExtensionFactory = type[SchemaExtension] | Callable[[], SchemaExtension]


_ENTITIES: Final = (User, Session, Interception)
_ENTITY_NAMES: Final = frozenset(
    entity.__strawberry_definition__.name  # type: ignore[union-attr]
    for entity in _ENTITIES
)


def _representation_calls(estimate: FieldEstimate, representation: object) -> int:
    if not isinstance(representation, Mapping):
        return 0
    type_name = representation.get("__typename")
    if not isinstance(type_name, str) or type_name not in _ENTITY_NAMES:
        return 0  # no loader behind it: refused without an upstream call
    return 1 + estimate.cost_as(type_name)  # `resolve_reference`: one lookup each


def _entities_calls(estimate: FieldEstimate) -> int:
    return sum(
        _representation_calls(estimate, item) for item in estimate.list_arg("representations")
    )


class GatewaySchema(strawberry.federation.Schema):
    """The federation schema, logging unexpected errors once with the request id."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hooks = HookCache()
        # Strawberry makes `_entities`: its needs are declared here, beside its resolver.
        entities = graphql_core_schema(self).query_type.fields.get("_entities")  # type: ignore[union-attr]
        if entities is not None:
            entities.extensions[NEEDS_KEY] = Needs(_entities_calls)

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Strawberry's `_entities`, after refusing malformed representations one by one."""
        problems = [representation_error(item, _ENTITY_NAMES) for item in representations]
        # Strawberry pops `__typename` from what it is given: hand it copies.
        pairs = zip(representations, problems, strict=True)
        valid = [FederationAny(dict(item)) for item, problem in pairs if problem is None]  # type: ignore[call-overload]
        resolved = iter(super().entities_resolver(info, valid))
        # Strawberry's own resolver puts exceptions in the list the same way (one null each).
        return [next(resolved) if problem is None else problem for problem in problems]  # type: ignore[misc]

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        """Strawberry's runner, finding each extension class's hooks once (schema/hooks.py)."""
        return CachedHooksRunner(execution_context, extensions, cache=self._hooks)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context else None
        log_errors(errors, getattr(context, "request_id", None))
        drop_tracebacks(errors)


def default_extensions(settings: Settings) -> list[ExtensionFactory]:
    """Limits, caches, the upstream-call budget and error codes; a list so later layers
    (metrics, APQ) can add theirs.

    Validation rules are created once so the validation cache, keyed by the rule classes, hits.
    """
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    rules = [tolerate_unknown_fragments(rule) for rule in rules]  # type: ignore[arg-type]
    return [
        ErrorCodes,
        functools.partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
        functools.partial(ParserCache, maxsize=_CACHE_SIZE),
        functools.partial(AddValidationRules, rules),
        functools.partial(ValidationCache, maxsize=_CACHE_SIZE),
        # After validation: the estimate needs a valid document and the request's variables.
        functools.partial(UpstreamCallBudget, settings=settings, estimates=EstimateCache()),
        functools.partial(RecordProjection, cache=OperationCache()),
    ]


def build_schema(
    settings: Settings, *, extra_extensions: Sequence[ExtensionFactory] = ()
) -> GatewaySchema:
    """The gateway schema with `settings`' limits plus any extra extensions (run after ours)."""
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[*_ENTITIES, Thread],
        extensions=[*default_extensions(settings), *extra_extensions],
        federation_version=FEDERATION_VERSION,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=plan_executor_class(),
    )


@functools.cache
def _default_schema() -> GatewaySchema:
    return build_schema(Settings())


def __getattr__(name: str) -> Any:
    if name == "schema":
        return _default_schema()
    raise AttributeError(name)
