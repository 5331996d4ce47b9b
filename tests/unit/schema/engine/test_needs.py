"""Every field that could call the upstream or read a record list declares its needs
(schema/engine/needs.py): the estimate and the projection know nothing else."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from types import CodeType
from typing import Any, cast

from graphql import GraphQLField, GraphQLObjectType

from aibridge_graphql.schema import build_schema
from aibridge_graphql.schema.engine import compat
from aibridge_graphql.schema.engine.needs import needs_of
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.projection import ALL_RECORDS

SCHEMA = build_schema(Settings(upstream_url="http://upstream.invalid"))._schema


def _fields() -> Iterator[tuple[str, GraphQLField]]:
    for type_name, type_ in SCHEMA.type_map.items():
        if isinstance(type_, GraphQLObjectType) and not type_name.startswith("__"):
            for name, definition in type_.fields.items():
                yield f"{type_name}.{name}", definition


def _function(definition: GraphQLField) -> Callable[..., Any] | None:
    """What computes the field's value: its resolver, or a `computed` field's function."""
    field = compat.strawberry_field_of(definition)
    if field is None:
        return None
    if field.base_resolver is not None:
        return cast(Callable[..., Any], field.base_resolver.wrapped_func)
    return getattr(field.default, "_compute", None)


def _names(code: CodeType) -> set[str]:
    """Attribute and global names the code (and the functions and lambdas inside it) reads."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return names


def _record_lists(function: Callable[..., Any]) -> set[str]:
    code = getattr(inspect.unwrap(function), "__code__", None)
    return _names(code) & ALL_RECORDS if code is not None else set()


def _calls_upstream(definition: GraphQLField) -> bool:
    """Could call upstream: an async resolver, or one that asks for the `Info` (the loaders)."""
    field = compat.strawberry_field_of(definition)
    resolver = field.base_resolver if field is not None else None
    if resolver is None:
        return False
    return inspect.iscoroutinefunction(resolver.wrapped_func) or resolver.info_parameter is not None


def test_every_field_that_may_call_upstream_declares_its_needs() -> None:
    undeclared = [
        name
        for name, definition in _fields()
        if _calls_upstream(definition) and needs_of(definition) is None
    ]
    assert undeclared == []


def test_every_field_built_from_a_record_list_declares_that_it_reads_it() -> None:
    missing = {}
    for name, definition in _fields():
        function = _function(definition)
        read = _record_lists(function) if function is not None else set()
        declared = needs_of(definition)
        if read - (declared.reads if declared is not None else frozenset()):
            missing[name] = read
    assert missing == {}


def test_declared_reads_name_real_record_lists() -> None:
    for name, definition in _fields():
        declared = needs_of(definition)
        if declared is not None:
            assert declared.reads <= ALL_RECORDS, name


def test_the_checks_see_the_fields_they_are_about() -> None:
    """The detection is not vacuous: it finds the fields known to call upstream or read."""
    fields = dict(_fields())
    calling = {name for name, definition in fields.items() if _calls_upstream(definition)}
    assert {"Query.sessions", "Session.threads", "User.aiSpend", "Query.models"} <= calling
    assert _record_lists(_function(fields["Interception.tokenUsages"])) == {"token_usages"}  # type: ignore[arg-type]
    assert _record_lists(_function(fields["Thread.agenticActions"])) == {"agentic_actions"}  # type: ignore[arg-type]
    # Federation's `_entities` is Strawberry's: declared where the schema is built.
    assert needs_of(fields["Query._entities"]) is not None
