"""Every type, field and argument of our schema is described; the surface has the issue's names."""

from __future__ import annotations

from graphql import (
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from aibridge_graphql.schema import build_schema
from aibridge_graphql.settings import Settings


def _graphql_schema() -> GraphQLSchema:
    return build_schema(Settings())._schema


def _ours(name: str) -> bool:
    # Federation's own types (`_Service`, `link__Import`...) and the built-in scalars are not.
    return (
        not name.startswith("_")
        and "__" not in name
        and name not in {"Boolean", "String", "Int", "ID", "Float"}
    )


def test_everything_is_described() -> None:
    missing: list[str] = []
    for name, gql_type in _graphql_schema().type_map.items():
        if not _ours(name):
            continue
        if not gql_type.description:
            missing.append(name)
        if isinstance(gql_type, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in gql_type.fields.items():
                if field_name.startswith("_"):
                    continue
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
    assert missing == []


def test_the_issue_surface_is_there() -> None:
    schema = _graphql_schema()
    expected = {
        "Query": {"node", "nodes", "sessions", "session", "interceptions", "models", "clients"},
        "SessionFilter": {
            "initiator",
            "provider",
            "providerName",
            "model",
            "client",
            "sessionId",
            "startedAfter",
            "startedBefore",
        },
        "InterceptionFilter": {
            "initiator",
            "provider",
            "providerName",
            "model",
            "client",
            "startedAfter",
            "startedBefore",
        },
        "Session": {
            "id",
            "sessionId",
            "client",
            "initiator",
            "providers",
            "models",
            "startedAt",
            "endedAt",
            "lastActiveAt",
            "lastPrompt",
            "threadCount",
            "tokenUsage",
            "metadata",
            "threads",
        },
        "Thread": {
            "id",
            "threadId",
            "prompt",
            "model",
            "provider",
            "credentialKind",
            "credentialHint",
            "startedAt",
            "endedAt",
            "tokenUsage",
            "agenticActions",
            "session",
        },
        "AgenticAction": {"model", "thinking", "tokenUsage", "toolCalls"},
        "Interception": {
            "id",
            "interceptionId",
            "apiKeyId",
            "client",
            "initiator",
            "provider",
            "providerName",
            "model",
            "startedAt",
            "endedAt",
            "metadata",
            "tokenUsages",
            "userPrompts",
            "toolUsages",
        },
        "User": {"id", "username", "name", "avatarUrl"},
        "PageInfo": {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"},
        "SessionConnection": {"edges", "nodes", "pageInfo", "totalCount"},
        "ThreadConnection": {"edges", "nodes", "pageInfo", "totalCount"},
        "InterceptionConnection": {"edges", "nodes", "pageInfo", "totalCount"},
    }
    for type_name, fields in expected.items():
        gql_type = schema.type_map[type_name]
        assert isinstance(gql_type, GraphQLObjectType | GraphQLInputObjectType)
        assert fields <= set(gql_type.fields), type_name
    session = schema.type_map["Session"]
    assert isinstance(session, GraphQLObjectType)
    assert set(session.fields["threads"].args) == {"first", "after", "last", "before"}
    for node_type in ("Session", "Thread", "Interception", "User"):
        gql_type = schema.type_map[node_type]
        assert isinstance(gql_type, GraphQLObjectType)
        assert [i.name for i in gql_type.interfaces] == ["Node"]
