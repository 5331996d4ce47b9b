"""Parse upstream bodies without the record lists a request does not read.

A 25-row interceptions page is 51 KB, most of it token usages, prompts and tool usages; a view
that selects three fields of each row should not build thousands of objects for them. A
projected validator is the model's own pydantic-core schema with those fields removed: pydantic
then skips their JSON without making Python objects and returns the same model classes, the
fields absent (`AttributeError` if read: a projection that was too narrow fails loudly instead of
answering with empty lists). What is parsed is still validated as the contract says.

pydantic-core's schema layout is an internal: `core_schema_of` and `construct_model` are the only
places that know it, checked by the engine's canary test (tests/unit/schema/engine/test_compat.py).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import SchemaValidator

from aibridge_graphql.upstream import models as m

T = TypeVar("T", bound=BaseModel)

# Which model holds which record lists.
RECORD_LISTS: Mapping[type[BaseModel], frozenset[str]] = {
    m.Interception: frozenset({"token_usages", "user_prompts", "tool_usages"}),
    m.Thread: frozenset({"agentic_actions"}),
}
ALL_RECORDS: frozenset[str] = frozenset().union(*RECORD_LISTS.values())


def parse_json(model_type: type[T], content: bytes, skip: frozenset[str]) -> T:
    """`model_type.model_validate_json(content)`, leaving out the record lists named in `skip`."""
    if not skip:
        return model_type.model_validate_json(content)
    result: T = _validator(model_type, skip & ALL_RECORDS).validate_json(content)
    return result


@functools.cache
def _validator(model_type: type[BaseModel], skip: frozenset[str]) -> SchemaValidator:
    schema = copy.deepcopy(core_schema_of(model_type))
    config = schema.get("config")
    _project(schema, skip)
    return SchemaValidator(schema, config)


def _project(node: Any, skip: frozenset[str]) -> bool:
    """Remove the `skip` record lists from the model schemas in `node`, in place; True when
    something under `node` was removed.

    pydantic-core swaps a model schema for the class's own prebuilt validator (with every field),
    so each model on the way down to a removed field is rebuilt as its fields' schema followed by
    the same construction pydantic does (`construct_model`).
    """
    if isinstance(node, list):
        changed = False
        for item in node:  # every item, not only up to the first change
            changed = _project(item, skip) or changed
        return changed
    if not isinstance(node, dict):
        return False
    changed = False
    if node.get("type") == "model":
        fields = node["schema"]["fields"]
        for name in RECORD_LISTS.get(node["cls"], frozenset()) & skip:
            del fields[name]
            changed = True
    for key, value in list(node.items()):
        if key not in ("cls", "metadata", "serialization", "config"):
            changed = _project(value, skip) or changed
    if changed and node.get("type") == "model":
        cls = node["cls"]
        inner = node["schema"]
        node.clear()
        node.update(
            type="function-after",
            function={"type": "no-info", "function": functools.partial(construct_model, cls)},
            schema=inner,
        )
    return changed


def core_schema_of(model_type: type[BaseModel]) -> Any:
    """The model's pydantic-core schema (a dict tree: `type`, `cls`, `schema.fields`, ...)."""
    return model_type.__pydantic_core_schema__


def construct_model(cls: type[T], validated: tuple[dict[str, Any], Any, set[str]]) -> T:
    """What pydantic-core's model validator does with its fields' output (no `__init__` run)."""
    values, extra, fields_set = validated
    instance = cls.__new__(cls)
    set_ = object.__setattr__
    set_(instance, "__dict__", values)
    set_(instance, "__pydantic_extra__", extra)
    set_(instance, "__pydantic_fields_set__", fields_set)
    set_(instance, "__pydantic_private__", None)
    return instance
