"""A leaner executor for the queries the gateway serves: same results, a fraction of the CPU.

graphql-core's executor re-derives everything per field and per request (field collection, the
resolver wrapper, a resolve-info object, the completion type switch), which is most of the CPU
of a list or dashboard query. `PlanExecutor` compiles each operation once into a plan of its
fields and their completion, then executes it: plain attributes are read directly, scalars of
the built-in types are checked with a type test, and only fields with a resolver get a
resolve-info object and graphql-core's argument coercion. Resolvers are Strawberry's own
(argument conversion, `Info`), errors are located, propagated and collected by graphql-core's
helpers, sibling awaitables are gathered in one wave as graphql-core does, so dataloaders batch
the same way.

Operations the plan does not cover run on graphql-core's executor unchanged: mutations and
subscriptions, any directive (`@skip`, `@include`, `@defer`, ...), interfaces and unions
(`node`, `_entities`), introspection other than `__typename`, fragment variables, middleware
and abort signals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    located_error,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined, is_iterable
from graphql.type import GraphQLSchema
from graphql.utilities import get_operation_ast
from strawberry.types.field import StrawberryField

from aibridge_graphql.schema.engine import compat
from aibridge_graphql.schema.engine.compat import (
    ExecutionContextBase,
    convert_arguments,
    gather_with_cancel,
)
from aibridge_graphql.schema.engine.operations import OperationCache
from aibridge_graphql.schema.engine.selections import Selection, collect_fields

__all__ = ["PlanExecutor", "is_planned", "plan_executor_class"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# A completion: (executor, value, path) -> the completed value or an awaitable of it. It raises
# for a value the type refuses; the field it belongs to locates and collects the error.
Complete = Callable[["PlanExecutor", Any, Path], Any]
# What a leaf completion gets for a path: it reads none (errors are located by the caller).
_NO_PATH: Final = cast(Path, None)


class NotPlannable(Exception):
    """The operation uses something the plan does not cover: graphql-core executes it."""


@dataclass(slots=True)
class _Field:
    key: str
    name: str
    parent: GraphQLObjectType
    definition: GraphQLField
    nodes: list[FieldNode]
    complete: Complete
    # A plain Strawberry field: the Python attribute to read; None for a resolver.
    attribute: str | None
    has_args: bool
    non_null: bool
    # `__typename`: the constant answer.
    typename: str | None = None
    # A resolver Strawberry would call with no field extension or exception handler around it:
    # called directly, with a Strawberry `Info` only when it asks for one.
    direct: _Direct | None = None
    # `attribute` again when the field is a scalar or enum (nullable or not): its completion
    # reads no path, so none is made unless it fails (most fields of most documents).
    leaf_attribute: str | None = None


@dataclass(slots=True)
class _Direct:
    """How to call a Strawberry resolver the way Strawberry's own wrapper does."""

    field: StrawberryField
    info_class: Any
    config: Any
    scalar_registry: Any
    pass_self: bool
    # Keyword parameters given the source (`root`/`parent`) or the `Info`.
    source_params: tuple[str, ...]
    info_param: str | None
    # The arguments are literals (no variables): converted once, on first use.
    constant: bool
    converted: dict[str, Any] | None = None

    def call(self, executor: PlanExecutor, source: Any, field: _Field, path: Path) -> Any:
        info = None
        if self.info_param is not None:
            raw = executor.build_resolve_info(field.definition, field.nodes, field.parent, path)
            info = compat.make_info(self.info_class, raw, self.field)
        kwargs = self._kwargs(executor, field, info)
        for name in self.source_params:
            kwargs[name] = source
        if self.info_param is not None:
            kwargs[self.info_param] = info
        return self.field.get_result(
            source, info=info, args=[source] if self.pass_self else [], kwargs=kwargs
        )

    def _kwargs(self, executor: PlanExecutor, field: _Field, info: Any) -> dict[str, Any]:
        if self.converted is not None:
            return dict(self.converted)
        values = (
            get_argument_values(
                field.definition,
                field.nodes[0],
                executor.variable_values,
                None,
                executor.hide_suggestions,
            )
            if field.has_args
            else {}
        )
        kwargs = convert_arguments(
            values, self.field.arguments, self.scalar_registry, self.config, info
        )
        if self.constant and all(type(v) in _IMMUTABLE for v in kwargs.values()):
            self.converted = dict(kwargs)
        return kwargs


_IMMUTABLE: Final = frozenset({int, str, bool, float, type(None)})


def _has_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    children = getattr(value, "values", None) or getattr(value, "fields", None) or ()
    return any(_has_variable(getattr(child, "value", child)) for child in children)


def _direct(schema: GraphQLSchema, definition: GraphQLField, node: FieldNode) -> _Direct | None:
    """How to call this field's resolver directly, or None to go through Strawberry's wrapper."""
    field = compat.strawberry_field_of(definition)
    handlers = compat.exception_handlers(schema)
    if (
        field is None
        or field.base_resolver is None
        or field.extensions
        or handlers is None  # not the Strawberry this was written for: use its wrapper
        or handlers
    ):
        return None
    resolver = field.base_resolver
    info = resolver.info_parameter
    config = compat.strawberry_config(schema)
    return _Direct(
        field,
        config.info_class,
        config,
        compat.scalar_registry(schema),
        resolver.self_parameter is not None,
        tuple(
            param.name
            for param in (resolver.parent_parameter, resolver.root_parameter)
            if param is not None
        ),
        info.name if info is not None else None,
        not any(_has_variable(argument.value) for argument in node.arguments or ()),
    )


@dataclass(slots=True)
class _Plan:
    operation: OperationDefinitionNode
    root: GraphQLObjectType
    fields: list[_Field]


class _Compiler:
    """Builds the plan of one operation from the schema and the document's fragments."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self._schema = schema
        self._fragments = fragments

    def plan(self, operation: OperationDefinitionNode) -> _Plan:
        if operation.operation is not OperationType.QUERY or operation.directives:
            raise NotPlannable
        root = self._schema.query_type
        if root is None:
            raise NotPlannable
        return _Plan(operation, root, self._fields(root, [operation.selection_set]))

    def _fields(self, parent: GraphQLObjectType, sets: list[SelectionSetNode]) -> list[_Field]:
        grouped: dict[str, list[FieldNode]] = {}
        seen: set[str] = set()
        for selection_set in sets:
            collect_fields(
                self._schema, self._fragments, parent, selection_set, grouped, self._plain, seen
            )
        return [self._field(parent, key, nodes) for key, nodes in grouped.items()]

    def _plain(self, selection: Selection) -> bool:
        """Every selection counts; a directive anywhere (or a fragment with variables or one
        unknown) is graphql-core's to run."""
        if selection.directives:
            raise NotPlannable
        if isinstance(selection, FragmentSpreadNode):
            fragment = self._fragments.get(selection.name.value)
            if fragment is None or fragment.variable_definitions or fragment.directives:
                raise NotPlannable
        return True

    def _field(self, parent: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> _Field:
        name = nodes[0].name.value
        if name == "__typename":
            typename = GraphQLField(GraphQLNonNull(GraphQLString))
            return _Field(
                key, name, parent, typename, nodes, _leaf_string, None, False, True, parent.name
            )
        if name.startswith("__"):
            raise NotPlannable
        definition = parent.fields.get(name)
        if definition is None:
            raise NotPlannable
        strawberry_field = compat.strawberry_field_of(definition)
        basic = strawberry_field is not None and compat.is_default_resolver(definition)
        complete = self._completion(parent, name, definition.type, nodes)
        direct = None if basic else _direct(self._schema, definition, nodes[0])
        attribute = strawberry_field.python_name if basic and strawberry_field else None
        nullable = definition.type
        if isinstance(nullable, GraphQLNonNull):
            nullable = nullable.of_type
        leaf = isinstance(nullable, GraphQLScalarType | GraphQLEnumType)
        return _Field(
            key,
            name,
            parent,
            definition,
            nodes,
            complete,
            attribute,
            bool(definition.args or nodes[0].arguments),
            isinstance(definition.type, GraphQLNonNull),
            direct=direct,
            leaf_attribute=attribute if leaf else None,
        )

    def _completion(
        self, parent: GraphQLObjectType, name: str, type_: GraphQLOutputType, nodes: list[FieldNode]
    ) -> Complete:
        if isinstance(type_, GraphQLNonNull):
            return _non_null(self._completion(parent, name, type_.of_type, nodes), parent, name)
        if isinstance(type_, GraphQLList):
            item_type = type_.of_type
            inner = self._completion(parent, name, item_type, nodes)
            return _list(inner, isinstance(item_type, GraphQLNonNull), nodes, parent, name)
        if isinstance(type_, GraphQLScalarType):
            return _SCALARS.get(type_.name) or _leaf(type_)
        if isinstance(type_, GraphQLEnumType):
            return _leaf(type_)
        if isinstance(type_, GraphQLObjectType):
            sets = [node.selection_set for node in nodes if node.selection_set is not None]
            return _object(type_, self._fields(type_, sets), nodes)
        raise NotPlannable  # interfaces and unions


# ---------------------------------------------------------------------------------------------
# Completions, as graphql-core's `complete_value` does them, specialised per type.


def _leaf(type_: GraphQLScalarType | GraphQLEnumType) -> Complete:
    coerce = type_.coerce_output_value

    def complete(_: PlanExecutor, value: Any, __: Path) -> Any:
        if value is None:
            return None
        if isinstance(value, Exception):
            raise value
        coerced = coerce(value)
        if coerced is Undefined or coerced is None:
            # graphql-core's wording (complete_leaf_value).
            msg = (
                f"Expected `{type_}.coerce_output_value({value!r})` to return non-nullable "
                f"value, returned: {coerced!r}"
            )
            raise TypeError(msg)
        return coerced

    return complete


def _fast_scalar(name: str, accepts: Callable[[Any], bool]) -> Complete:
    """A built-in scalar: values of its own Python type pass as they are, others coerce."""
    slow: Complete | None = None

    def complete(executor: PlanExecutor, value: Any, path: Path) -> Any:
        nonlocal slow
        if accepts(value):
            return value
        if slow is None:
            slow = _leaf(executor.schema.type_map[name])  # type: ignore[arg-type]
        return slow(executor, value, path)

    return complete


_leaf_string = _fast_scalar("String", lambda v: type(v) is str)
_SCALARS: Final[dict[str, Complete]] = {
    "String": _leaf_string,
    "ID": _fast_scalar("ID", lambda v: type(v) is str),
    "Boolean": _fast_scalar("Boolean", lambda v: type(v) is bool),
    "Int": _fast_scalar("Int", lambda v: type(v) is int and _INT_MIN <= v <= _INT_MAX),
}


def _non_null(inner: Complete, parent: GraphQLObjectType, name: str) -> Complete:
    message = f"Cannot return null for non-nullable field {parent.name}.{name}."

    def complete(executor: PlanExecutor, value: Any, path: Path) -> Any:
        if value is None:
            raise TypeError(message)
        # An awaitable completion (an object's or a list's) never resolves to null.
        completed = inner(executor, value, path)
        if completed is None:
            raise TypeError(message)
        return completed

    return complete


def _list(
    inner: Complete,
    items_non_null: bool,
    nodes: list[FieldNode],
    parent: GraphQLObjectType,
    name: str,
) -> Complete:
    message = f"Expected Iterable, but did not find one for field '{parent.name}.{name}'."

    def complete(executor: PlanExecutor, value: Any, path: Path) -> Any:
        if value is None:
            return None
        if isinstance(value, Exception):
            raise value
        if not is_iterable(value):
            raise GraphQLError(message)
        return executor.complete_items(value, inner, items_non_null, nodes, path)

    return complete


def _object(type_: GraphQLObjectType, fields: list[_Field], nodes: list[FieldNode]) -> Complete:
    def complete(executor: PlanExecutor, value: Any, path: Path) -> Any:
        if value is None:
            return None
        if isinstance(value, Exception):
            raise value
        if not compat.is_type_of(type_, value):
            msg = f"Expected value of type '{type_.name}' but got: {value!r}."
            raise GraphQLError(msg, nodes)
        return executor.execute_plan_fields(fields, value, path)

    return complete


# ---------------------------------------------------------------------------------------------


class PlanExecutor(ExecutionContextBase):
    """Strawberry's graphql-core executor, running planned operations through their plan."""

    # Set per schema by `plan_executor_class`: each operation's plan, or None to fall back.
    plans: OperationCache[_Plan | None]

    def execute_operation(self, serially: bool | None = None) -> Any:
        plan = self._plan()
        if plan is None or serially or self._wraps_resolvers():
            return super().execute_operation(serially)
        try:
            data = self.execute_plan_fields(plan.fields, self.root_value, None)
        except GraphQLError as error:
            self.collected_errors.add(error, None)
            return self._respond(None)
        if self.is_awaitable(data):
            return self._await_data(data)
        return self._respond(data)

    async def _await_data(self, data: Awaitable[dict[str, Any]]) -> Any:
        try:
            result = await data
        except GraphQLError as error:
            self.collected_errors.add(error, None)
            return self._respond(None)
        return self._respond(result)

    def build_response(self, data: dict[str, Any] | None) -> Any:
        """graphql-core's response (both the plan and the fallback build it here), with its errors
        sorted by path, then location: concurrent fields fail in whatever order their upstream
        calls answer, and equal answers should be equal bytes."""
        errors = self.collected_errors.errors
        if len(errors) > 1:
            errors.sort(key=_error_order)
        return super().build_response(data)

    def _respond(self, data: dict[str, Any] | None) -> Any:
        response = self.build_response(data)
        # graphql-core's executor holds bound methods of itself: a cycle that would keep the
        # request's context, loaders and request for the cycle collector. A plan has no
        # deferred work that could still need them once the response is built.
        compat.drop_async_helpers(self)
        return response

    def _wraps_resolvers(self) -> bool:
        """True when extensions wrap resolvers: only graphql-core's executor applies them."""
        manager = self.middleware_manager
        return manager is not None and bool(manager.middlewares)

    def _plan(self) -> _Plan | None:
        operation = self.operation
        # The plan propagates nulls the spec's way only, and knows no abort signal.
        if self.abort_signal is not None or not self.error_propagation:
            return None
        return self.plans.get(operation, self._compile)

    def _compile(self) -> _Plan | None:
        fragments = {name: details.definition for name, details in self.fragments.items()}
        return _compiled(self.schema, fragments, self.operation)

    def execute_plan_fields(self, fields: list[_Field], source: Any, path: Path | None) -> Any:
        """Execute one object's planned fields; a dict, or an awaitable when a field awaits."""
        results: dict[str, Any] = {}
        awaiting: list[str] | None = None
        is_awaitable = self.is_awaitable
        try:
            for field in fields:
                key = field.key
                if field.typename is not None:
                    results[key] = field.typename
                    continue
                if field.leaf_attribute is not None:
                    try:
                        value = getattr(source, field.leaf_attribute)
                        results[key] = field.complete(self, value, _NO_PATH)
                    except Exception as raw_error:
                        where = Path(path, key, field.parent.name)
                        self._field_error(raw_error, field.non_null, field.nodes, where)
                        results[key] = None
                    continue
                field_path = Path(path, key, field.parent.name)
                value = self._execute_field(field, source, field_path)
                results[key] = value
                if is_awaitable(value):
                    if awaiting is None:
                        awaiting = []
                    awaiting.append(key)
        except Exception:
            if awaiting:
                self.settle_in_background([results[key] for key in awaiting])
            raise
        if awaiting is None:
            return results
        return _gathered(results, awaiting)

    def _execute_field(self, field: _Field, source: Any, path: Path) -> Any:
        try:
            if field.attribute is not None:
                value = getattr(source, field.attribute)
            elif field.direct is not None:
                value = field.direct.call(self, source, field, path)
                if self.is_awaitable(value):
                    return self._complete_awaitable(
                        value, field.complete, field.non_null, field.nodes, path
                    )
            else:
                definition = field.definition
                info = self.build_resolve_info(definition, field.nodes, field.parent, path)
                args = (
                    get_argument_values(
                        definition,
                        field.nodes[0],
                        self.variable_values,
                        None,
                        self.hide_suggestions,
                    )
                    if field.has_args
                    else {}
                )
                value = definition.resolve(source, info, **args)  # type: ignore[misc]
                if self.is_awaitable(value):
                    return self._complete_awaitable(
                        value, field.complete, field.non_null, field.nodes, path
                    )
            completed = field.complete(self, value, path)
            if self.is_awaitable(completed):
                return self._await_completed(completed, field.non_null, field.nodes, path)
            return completed
        except Exception as raw_error:
            self._field_error(raw_error, field.non_null, field.nodes, path)
            return None

    async def _complete_awaitable(
        self,
        value: Awaitable[Any],
        complete: Complete,
        non_null: bool,
        nodes: list[FieldNode],
        path: Path,
    ) -> Any:
        """Await a resolver's (or a list item's) value, then complete it; errors are located."""
        try:
            completed = complete(self, await value, path)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self._field_error(raw_error, non_null, nodes, path)
            return None
        return completed

    async def _await_completed(
        self, completed: Awaitable[Any], non_null: bool, nodes: list[FieldNode], path: Path
    ) -> Any:
        """Await a completion that went asynchronous (a sub-object or list with awaitables)."""
        try:
            return await completed
        except Exception as raw_error:
            self._field_error(raw_error, non_null, nodes, path)
            return None

    def _field_error(
        self, raw_error: Exception, non_null: bool, nodes: list[FieldNode], path: Path
    ) -> None:
        """graphql-core's `handle_field_error`: locate, then raise (non-null) or collect."""
        error = located_error(raw_error, nodes, path.as_list())
        if non_null:
            raise error
        self.collected_errors.add(error, path)

    def complete_items(
        self,
        items: Iterable[Any],
        inner: Complete,
        items_non_null: bool,
        nodes: list[FieldNode],
        path: Path,
    ) -> Any:
        """Complete a list's items, as graphql-core's `complete_iterable_value` does."""
        completed: list[Any] = []
        awaiting: list[int] | None = None
        is_awaitable = self.is_awaitable
        try:
            for index, item in enumerate(items):
                item_path = Path(path, index, None)
                if is_awaitable(item):
                    completed.append(
                        self._complete_awaitable(item, inner, items_non_null, nodes, item_path)
                    )
                else:
                    try:
                        value = inner(self, item, item_path)
                        if is_awaitable(value):
                            value = self._await_completed(value, items_non_null, nodes, item_path)
                    except Exception as raw_error:
                        self._field_error(raw_error, items_non_null, nodes, item_path)
                        value = None
                    completed.append(value)
                    if not is_awaitable(value):
                        continue
                if awaiting is None:
                    awaiting = []
                awaiting.append(index)
        except Exception:
            if awaiting:
                self.settle_in_background([completed[index] for index in awaiting])
            raise
        if awaiting is None:
            return completed
        return _gathered(completed, awaiting)


def _error_order(error: GraphQLError) -> tuple[Any, ...]:
    """An error's place in the response: no path first, then by path (indexes before keys at a
    step, which one object or list never mixes), then by (line, column)."""
    path = error.path
    steps = () if path is None else tuple((type(step) is str, step) for step in path)
    locations = tuple((location.line, location.column) for location in error.locations or ())
    return path is not None, steps, locations


Slots = TypeVar("Slots", dict[str, Any], list[Any])
E = TypeVar("E", bound=PlanExecutor)
V = TypeVar("V")


async def _gathered(values: Slots, awaiting: list[Any]) -> Slots:
    """Await the awaitables at `awaiting` (an object's keys or a list's indexes) in one wave,
    as graphql-core does, replacing each with its value."""
    if len(awaiting) == 1:
        key = awaiting[0]
        values[key] = await values[key]
    else:
        done = await gather_with_cancel(*(values[key] for key in awaiting))
        for key, value in zip(awaiting, done, strict=True):
            values[key] = value
    return values


def _compiled(
    schema: GraphQLSchema,
    fragments: dict[str, FragmentDefinitionNode],
    operation: OperationDefinitionNode,
) -> _Plan | None:
    try:
        return _Compiler(schema, fragments).plan(operation)
    except (NotPlannable, RecursionError):  # graphql-core reports a too-deep selection
        return None


def is_planned(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> bool:
    """Whether the plan runs this operation (else graphql-core's executor does)."""
    operation = get_operation_ast(document, operation_name)
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    return operation is not None and _compiled(schema, fragments, operation) is not None


def plan_executor_class() -> type[PlanExecutor]:
    """A `PlanExecutor` class with a plan cache of its own (one per schema)."""
    return type("SchemaPlanExecutor", (PlanExecutor,), {"plans": OperationCache()})
