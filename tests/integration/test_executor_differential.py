"""The gateway's executor answers every document byte for byte as graphql-core's executor does.

Two gateways on loopback in front of the same stand-in, with the same real schema: one as the
app builds it (the plan executor, pages parsed without unread record lists), one whose schema
executes on graphql-core's executor (Strawberry's, with neither the plan nor the projection).
Both build their response in `PlanExecutor.build_response`, which sorts the errors by path, then
location, so equal answers are equal bytes; every executed answer is checked to be in that order.
The documents, in both API eras: every ```graphql block of README.md and docs/, documents the
plan leaves to graphql-core or that fail in several places at once, and documents that
hypothesis-graphql draws from the introspected schema (derandomized, bounded).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest
from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutableDefinitionNode,
    GraphQLSchema,
    GraphQLSyntaxError,
    IntValueNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    TypeNode,
    ValueNode,
    Visitor,
    build_client_schema,
    introspection_from_schema,
    parse,
    print_ast,
    visit,
)
from graphql.language.visitor import REMOVE
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from aibridge_graphql.core.refs import SessionRef, ThreadRef
from aibridge_graphql.schema import GatewaySchema, build_schema
from aibridge_graphql.schema.engine.executor import PlanExecutor
from aibridge_graphql.schema.engine.projection import RecordProjection
from aibridge_graphql.schema.ids import encode_global_id
from aibridge_graphql.server.app import GatewayView
from aibridge_graphql.settings import Settings
from tests.support.gateway_helpers import Gateway, serve_gateway

ROOT = Path(__file__).resolve().parents[2]
# Draws of generated documents (about 295 distinct), drawn once and run in each era: about 10 s
# of the file's ~30 s on a loaded 2-core machine.
GENERATED = 450
# The roots a dashboard reads (the list roots twice as often), and those that fail by era or by
# argument, or that the plan leaves to graphql-core (`node`, `nodes`: interfaces).
GENERATED_ROOTS = (
    *("sessions", "session", "interceptions") * 2,
    *("usage", "node", "nodes", "models", "clients", "providers", "aiSpend"),
)


class GraphQLCoreExecutor(PlanExecutor):
    """graphql-core's executor as Strawberry runs it: no plan (and the reference's schema runs
    no projection: every record list is parsed); the response is built where the gateway's is,
    so its errors come sorted alike."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        return StrawberryGraphQLCoreExecutionContext.execute_operation(self, serially)


def _is_projection(factory: object) -> bool:
    return getattr(factory, "func", factory) is RecordProjection


def _schema_of(gateway: Gateway) -> GatewaySchema:
    views = {route.handler for route in gateway.http.app.router.routes()}
    (view,) = (handler for handler in views if isinstance(handler, GatewayView))
    schema = view.schema
    assert isinstance(schema, GatewaySchema)
    return schema


@dataclass
class Tally:
    """What the compared documents exercised, to show the comparison is not vacuous."""

    compared: int = 0
    executed: int = 0
    planned: int = 0
    errors: int = 0
    several_errors: int = 0
    with_data: int = 0
    codes: set[str] = field(default_factory=set)


@dataclass
class Pair:
    """The gateway as built, and the same gateway on graphql-core's executor."""

    gateway: Gateway
    reference: Gateway
    tally: Tally = field(default_factory=Tally)

    def newest_plan(self) -> tuple[int, bool] | None:
        """The plan cache's newest entry: (operation node id, whether it has a plan)."""
        executor = _schema_of(self.gateway).execution_context_class
        assert issubclass(executor, PlanExecutor)
        newest = cast(type[PlanExecutor], executor).plans.latest()
        return None if newest is None else (id(newest[0]), newest[1] is not None)

    async def compare(
        self, query: str, variables: dict[str, Any] | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """Both answers to one request: equal bytes, or the assertion shows both bodies."""
        payload = {"query": query, "variables": variables or {}, "operationName": name}
        before = self.newest_plan()
        got, expected = await asyncio.gather(
            _post(self.gateway, payload), _post(self.reference, payload)
        )
        assert json.loads(got) == json.loads(expected), (query, variables)
        assert got == expected, (query, variables)
        body: dict[str, Any] = json.loads(got)
        # The executed operation is the plan cache's newest entry (documents come deduplicated);
        # one refused before execution (validation, budget) leaves the cache as it was.
        after = self.newest_plan()
        executed = after is not None and after != before
        if executed:  # graphql-core's errors and the plan's come in one order
            errors = body.get("errors") or []
            assert errors == sorted(errors, key=_place), (query, variables)
        self._count(body, executed=executed, planned=after is not None and executed and after[1])
        return body

    def _count(self, body: dict[str, Any], *, executed: bool, planned: bool) -> None:
        tally = self.tally
        tally.compared += 1
        tally.executed += executed
        tally.planned += planned
        errors = body.get("errors") or []
        tally.errors += bool(errors)
        tally.several_errors += len(errors) > 1
        tally.with_data += any(value is not None for value in (body.get("data") or {}).values())
        tally.codes.update(error.get("extensions", {}).get("code", "") for error in errors)


def _place(error: dict[str, Any]) -> tuple[Any, ...]:
    """`PlanExecutor`'s order of errors, on their JSON: no path first, then path, location."""
    path = error.get("path")
    steps = () if path is None else tuple((isinstance(step, str), step) for step in path)
    at = tuple((location["line"], location["column"]) for location in error.get("locations", ()))
    return path is not None, steps, at


async def _post(gateway: Gateway, payload: dict[str, Any]) -> bytes:
    token = gateway.default_token
    assert token is not None
    response = await gateway.http.post(
        "/graphql", json=payload, headers={"Coder-Session-Token": token}
    )
    assert response.status == 200, await response.text()
    return await response.read()


@pytest.fixture
async def pair(standin_url: str, tokens: dict[str, str]) -> AsyncIterator[Pair]:
    async with (
        serve_gateway(standin_url, tokens["admin"]) as gateway,
        serve_gateway(standin_url, tokens["admin"]) as reference,
    ):
        built = _schema_of(gateway)
        assert issubclass(built.execution_context_class, PlanExecutor)  # what the app runs
        assert any(_is_projection(factory) for factory in built.extensions)
        plain = _schema_of(reference)
        plain.execution_context_class = GraphQLCoreExecutor
        plain.extensions = tuple(f for f in plain.extensions if not _is_projection(f))
        yield Pair(gateway, reference)


# -- What the stand-in holds, for the documents' variables and arguments -----------------------


@dataclass(frozen=True)
class Known:
    """Real ids and cursors of the stand-in's data, read through the gateway."""

    session_ids: tuple[str, ...]
    session_node_ids: tuple[str, ...]
    thread_node_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    # Well-formed global ids of a session and a thread that do not exist.
    unknown_node_ids: tuple[str, str]
    username: str
    sessions_cursor: str

    def variables(self) -> dict[tuple[str, str], Any]:
        """Values by (variable name, type), then by type alone (name "")."""
        return {
            ("id", "String!"): self.session_ids[0],
            ("sessionId", "String!"): self.session_ids[0],
            ("id", "ID!"): self.session_node_ids[0],
            ("ids", "[ID!]!"): [*self.session_node_ids, *self.thread_node_ids],
            ("initiator", "String"): self.username,
            ("user", "String!"): self.username,
            ("", "String!"): self.session_ids[0],
            ("", "ID!"): self.session_node_ids[0],
            ("", "[ID!]!"): list(self.session_node_ids),
            ("", "Int!"): 3,
            ("", "Boolean!"): True,
        }


KNOWN_QUERY = """{ sessions(first: 4) {
  pageInfo { endCursor }
  nodes { id sessionId initiator { id username } threads(first: 2) { nodes { id } } } } }"""


async def _known(gateway: Gateway) -> Known:
    data = await gateway.data(KNOWN_QUERY)
    sessions = data["sessions"]["nodes"]
    assert len(sessions) == 4, data
    nobody = UUID(int=7)
    nowhere = SessionRef("no-such-session", UUID(sessions[0]["initiator"]["id"]))
    return Known(
        session_ids=tuple(s["sessionId"] for s in sessions),
        session_node_ids=tuple(s["id"] for s in sessions),
        thread_node_ids=tuple(t["id"] for s in sessions for t in s["threads"]["nodes"]),
        user_ids=tuple(sorted({s["initiator"]["id"] for s in sessions})),
        unknown_node_ids=(encode_global_id(nowhere), encode_global_id(ThreadRef(nowhere, nobody))),
        username=sessions[0]["initiator"]["username"],
        sessions_cursor=data["sessions"]["pageInfo"]["endCursor"],
    )


# -- The documents of README.md and docs/ ------------------------------------------------------

FENCE = re.compile(r"^[ \t]*```graphql[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)


def documented_operations() -> Iterator[tuple[str, str, OperationDefinitionNode]]:
    """(file, block, operation) for every operation of every ```graphql block; blocks that are
    not executable documents (SDL, a bare selection) are not requests."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    for path in files:
        if not path.is_file():
            continue
        for block in FENCE.findall(path.read_text(encoding="utf-8")):
            try:
                document = parse(block)
            except GraphQLSyntaxError:
                continue
            if not all(isinstance(d, ExecutableDefinitionNode) for d in document.definitions):
                continue
            for definition in document.definitions:
                # Subscriptions stream (tests/live): the plan executor answers only requests.
                if (
                    isinstance(definition, OperationDefinitionNode)
                    and definition.operation != OperationType.SUBSCRIPTION
                ):
                    yield path.relative_to(ROOT).as_posix(), block, definition


def _type_text(type_: TypeNode) -> str:
    if isinstance(type_, NonNullTypeNode):
        return _type_text(type_.type) + "!"
    if isinstance(type_, ListTypeNode):
        return f"[{_type_text(type_.type)}]"
    assert isinstance(type_, NamedTypeNode)
    return type_.name.value


def variables_for(where: str, operation: OperationDefinitionNode, known: Known) -> dict[str, Any]:
    """Values for the operation's variables: from the stand-in's data; optional ones left out
    when nothing fits; a required one nothing fits fails, naming the document."""
    values: dict[str, Any] = {}
    table = known.variables()
    for definition in operation.variable_definitions or ():
        name, type_ = definition.variable.name.value, _type_text(definition.type)
        for key in ((name, type_), ("", type_)):
            if key in table:
                values[name] = table[key]
                break
        else:
            required = type_.endswith("!") and definition.default_value is None
            assert not required, f"{where}: no value for ${name}: {type_}; add one to Known"
    return values


async def test_documented_queries_answer_alike(pair: Pair) -> None:
    known = await _known(pair.gateway)
    operations = list(documented_operations())
    assert operations, "README.md has ```graphql examples"
    for where, block, operation in operations:
        name = operation.name.value if operation.name else None
        await pair.compare(block, variables_for(where, operation, known), name)
    assert pair.tally.compared == len(operations)
    assert pair.tally.with_data, "some documented query answers data"


# -- Documents the plan leaves to graphql-core, or that fail in several places -----------------

SESSION_FIELDS = "id sessionId client models threadCount initiator { id username }"
HANDWRITTEN: dict[str, tuple[str, Callable[[Known], dict[str, Any]]]] = {
    "directives": (
        """query D($yes: Boolean!, $no: Boolean!) { sessions(first: 3) {
            nodes { sessionId client @include(if: $yes) models @skip(if: $yes)
                    threads(first: 2) @include(if: $no) { totalCount } } } }""",
        lambda _: {"yes": True, "no": False},
    ),
    "fragments on an interface and its members": (
        """query N($ids: [ID!]!) { nodes(ids: $ids) { id __typename
            ... on Session { sessionId threadCount }
            ... on Thread { threadId model session { sessionId } }
            ...U } }
           fragment U on User { username }""",
        lambda k: {"ids": [*k.session_node_ids[:2], *k.thread_node_ids[:2], *k.user_ids[:1]]},
    ),
    "node by id": (
        f"query N($id: ID!) {{ node(id: $id) {{ id ... on Session {{ {SESSION_FIELDS} }} }} }}",
        lambda k: {"id": k.session_node_ids[1]},
    ),
    "nodes that fail concurrently": (
        """query N($ids: [ID!]!) { nodes(ids: $ids) { id ... on Session { sessionId } } }""",
        lambda k: {
            "ids": [
                "not-a-global-id",
                k.session_node_ids[0],
                k.unknown_node_ids[0],
                k.thread_node_ids[0],
                "",
                k.unknown_node_ids[1],
                str(UUID(int=7)),
            ]
        },
    ),
    "federation entities (a union)": (
        """query E($reps: [_Any!]!) { _entities(representations: $reps) {
            __typename ... on Session { sessionId } ... on User { id username }
            ... on Interception { interceptionId } } }""",
        lambda k: {
            "reps": [
                {"__typename": "User", "id": k.user_ids[0]},
                {"__typename": "Session", "id": k.session_node_ids[0]},
                {"__typename": "Session", "id": k.unknown_node_ids[0]},
                {"__typename": "Interception", "id": "nope"},
                {"__typename": "Nope", "id": "x"},
            ]
        },
    ),
    "introspection": (
        """{ __schema { queryType { name } types { name kind } }
             __type(name: "Session") { fields { name type { name kind ofType { name } } } } }""",
        lambda _: {},
    ),
    "unknown sessions, concurrently": (
        f"""query S($id: String!) {{
            b: session(sessionId: "no-such-session-b") {{ sessionId }}
            a: session(sessionId: "no-such-session-a") {{ sessionId }}
            real: session(sessionId: $id) {{ {SESSION_FIELDS} threads(first: 2) {{ totalCount }} }}
            c: session(sessionId: "no-such-session-c", initiator: "nobody") {{ sessionId }} }}""",
        lambda k: {"id": k.session_ids[2]},
    ),
    "bad cursors and page sizes": (
        """{ a: sessions(first: 2, after: "garbage") { totalCount }
             b: interceptions(first: 2, after: "garbage") { totalCount }
             c: sessions(first: 100000) { totalCount }
             d: sessions(first: 2) { nodes { threads(first: -1) { totalCount } } } }""",
        lambda _: {},
    ),
    "the next page by cursor": (
        f"""query P($after: String) {{ sessions(first: 3, after: $after) {{
            pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
            edges {{ cursor node {{ {SESSION_FIELDS} }} }} }} }}""",
        lambda k: {"after": k.sessions_cursor},
    ),
    "a filter from variables, aliases, __typename": (
        f"""query F($filter: SessionFilter) {{ __typename
            mine: sessions(first: 3, filter: $filter) {{ __typename totalCount
              nodes {{ ...S }} }}
            all: sessions(first: 1) {{ nodes {{ ...S tokenUsage {{ inputTokens }} }} }} }}
           fragment S on Session {{ {SESSION_FIELDS} lastActiveAt lastPrompt metadata }}""",
        lambda k: {"filter": {"initiator": k.username, "startedAfter": "2020-01-01T00:00:00Z"}},
    ),
    # Record lists without `cost` (which reads them all): pages are parsed without the others.
    "threads in full": (
        """query T($id: String!) { session(sessionId: $id) { sessionId networkDomainCount
            threads(first: 3) { nodes { threadId prompt model provider errorType
              tokenUsage { inputTokens outputTokens metadata }
              agenticActions { model thinking toolCalls { toolCallId tool input injected } }
            } } } }""",
        lambda k: {"id": k.session_ids[0]},
    ),
    "interceptions with records": (
        """{ interceptions(first: 3) { totalCount nodes { interceptionId model provider
            tokenUsages { inputTokens outputTokens } toolUsages { tool injected } } } }""",
        lambda _: {},
    ),
    "costs": (
        """query C($id: String!) { session(sessionId: $id) {
            tokenUsage { cost { micros amount currency complete reason } }
            threads(first: 2) { nodes { tokenUsage { cost { micros breakdown { input } } } } } }
          interceptions(first: 2) { nodes { userPrompts { prompt }
            tokenUsages { cost { micros source } } } } }""",
        lambda k: {"id": k.session_ids[1]},
    ),
    "usage cut short by its call limit": (
        """{ usage(groupBy: [MODEL, CLIENT], maxUpstreamCalls: 2) { complete incompleteReason
            scanned { upstreamCalls sessions } rows { model client inputTokens } } }""",
        lambda _: {},
    ),
    "catalogues and era-only roots": (
        """{ models clients(prefix: "c") providers { name }
             me: aiSpend { userId currentSpend { micros } }
             other: aiSpend(user: "no-such-user") { userId }
             aiGroupSpend(organization: "default", groupIds: ["nope"]) { groups { groupId } } }""",
        lambda _: {},
    ),
}


async def test_fallbacks_and_failures_answer_alike(pair: Pair) -> None:
    known = await _known(pair.gateway)
    for query, variables in HANDWRITTEN.values():
        await pair.compare(query, variables(known))
    tally = pair.tally
    assert tally.compared == len(HANDWRITTEN)
    # Some ran through the plan, some through graphql-core; several failed in several places.
    assert 0 < tally.planned < tally.compared, tally
    assert tally.several_errors >= 3, tally
    assert "INTERNAL_SERVER_ERROR" not in tally.codes, tally


# -- Documents drawn by hypothesis-graphql from the introspected schema ------------------------

# Valid literals for the custom scalars: refusing bad ones is validation's (test_gateway_fuzz.py).
DATETIME = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1))
CUSTOM_SCALARS = {
    "DateTime": DATETIME.map(lambda value: nodes.String(value.isoformat() + "Z")),
    "JSON": st.just(nodes.Null),
    "_Any": st.just(nodes.Null),
}
# Page sizes and call limits the generator would draw from all of Int: kept small (modulo), so
# documents mostly execute within the call budget instead of all failing its check.
SMALL_INTS = {"first": 5, "last": 5, "maxUpstreamCalls": 6}


# Arguments whose drawn values (random text) mostly select nothing: dropped two times in three
# (by the drawn value's length), so most lists hold the stand-in's records.
NARROWING = frozenset({"filter", "initiator", "prefix", "after", "before"})


class _SmallPages(Visitor):
    """Small page sizes and call limits; most random filters and cursors left out."""

    def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
        name, value = node.name.value, node.value
        if name in SMALL_INTS and isinstance(value, IntValueNode):
            small = IntValueNode(value=str(abs(int(value.value)) % SMALL_INTS[name]))
            return ArgumentNode(name=node.name, value=small)
        if name in NARROWING and len(print_ast(value)) % 3:
            return REMOVE
        return None


class _RealIds(Visitor):
    """Most drawn session ids and global ids replaced by real ones (picked by the drawn value's
    length), so lookups find something as often as they do not."""

    def __init__(self, known: Known) -> None:
        super().__init__()
        self._ids = {
            "sessionId": known.session_ids,
            "id": (*known.session_node_ids, *known.thread_node_ids),
        }

    def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
        name = node.name.value
        if name in self._ids:
            return ArgumentNode(name=node.name, value=self._real(self._ids[name], node.value))
        if name == "ids" and isinstance(node.value, ListValueNode):
            ids = self._ids["id"]
            items = tuple(self._real(ids, item) for item in node.value.values)
            return ArgumentNode(name=node.name, value=ListValueNode(values=items))
        return None

    @staticmethod
    def _real(ids: tuple[str, ...], value: ValueNode) -> ValueNode:
        if not isinstance(value, StringValueNode):
            return value
        pick = len(value.value) % (len(ids) + 1)
        return StringValueNode(value=ids[pick]) if pick < len(ids) else value


def with_real_ids(document: str, known: Known) -> str:
    return print_ast(visit(parse(document), _RealIds(known)))


def introspected_schema() -> GraphQLSchema:
    """The real schema as a client sees it (introspection), which hypothesis-graphql reads."""
    return build_client_schema(introspection_from_schema(build_schema(Settings())._schema))


def generated_documents(schema: GraphQLSchema) -> list[str]:
    """Up to `GENERATED` distinct documents, the same on every run (derandomized, no database)."""

    def printed(document: DocumentNode) -> str:
        return print_ast(visit(document, _SmallPages()))

    def drawn_from(roots: list[str]) -> st.SearchStrategy[str]:
        return queries(
            schema, fields=roots, custom_scalars=CUSTOM_SCALARS, print_ast=printed, allow_x00=False
        )

    # One root at a time (each reached with varied arguments), or several side by side (their
    # lookups run concurrently, and fail concurrently).
    documents = st.one_of(
        st.sampled_from(GENERATED_ROOTS).flatmap(lambda root: drawn_from([root])),
        drawn_from(sorted(set(GENERATED_ROOTS) - {"node", "nodes", "usage"})),
    )
    drawn: dict[str, None] = {}

    @settings(
        max_examples=GENERATED,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(documents)
    def draw(document: str) -> None:
        drawn[document] = None

    draw()
    return list(drawn)


@pytest.fixture(scope="module")
def generated() -> list[str]:
    """Drawn once for both eras (the real ids go in per era)."""
    return generated_documents(introspected_schema())


async def test_generated_documents_answer_alike(pair: Pair, generated: list[str]) -> None:
    known = await _known(pair.gateway)
    # Repeats are dropped as drawn: about two draws in three are new.
    assert len(generated) > GENERATED / 2, len(generated)
    documents = dict.fromkeys(with_real_ids(document, known) for document in generated)
    for document in documents:
        await pair.compare(document)
    tally = pair.tally
    # Most answer data, most through the plan, some through graphql-core (`node`, `nodes`), and
    # errors come several at a time.
    assert tally.with_data > tally.compared / 2, tally
    assert tally.compared / 2 < tally.planned < tally.executed, tally
    assert tally.several_errors > 5, tally
    assert "INTERNAL_SERVER_ERROR" not in tally.codes, tally
