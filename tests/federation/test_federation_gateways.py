"""Apollo Federation 2 through real gateways: our subgraph composed with a teams subgraph.

Queries cross both subgraphs in each direction through Apollo Gateway and Hive Gateway, and must
return exactly what our gateway alone returns; without a valid token, entity data is an
UNAUTHENTICATED error, never data. Directly against our subgraph: the SDL is public but reads no
upstream data, and `_entities` goes through the per-request loaders with the caller's token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.federation.conftest import GraphQLServer
from tests.support.federation import compose
from tests.support.node_tools import REPO_ROOT
from tests.support.teams_subgraph import Roster

USER_FIELDS = "id username name avatarUrl"
SESSION_FIELDS = f"id sessionId client threadCount lastActiveAt initiator {{ {USER_FIELDS} }}"
INTERCEPTION_FIELDS = f"id interceptionId model provider startedAt initiator {{ {USER_FIELDS} }}"

_ENTITIES = f"""
query Entities($representations: [_Any!]!) {{
  _entities(representations: $representations) {{
    ... on User {{ {USER_FIELDS} }}
    ... on Session {{ {SESSION_FIELDS} }}
    ... on Interception {{ {INTERCEPTION_FIELDS} }}
  }}
}}
"""

_NODES = f"""
query Nodes($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on User {{ {USER_FIELDS} sessions(first: 2) {{ totalCount nodes {{ id sessionId }} }} }}
    ... on Session {{ {SESSION_FIELDS} }}
    ... on Interception {{ {INTERCEPTION_FIELDS} }}
  }}
}}
"""


# Fields only our subgraph can answer: their values must never appear without access.
_ENTITY_DATA = frozenset({"username", "sessionId", "interceptionId"})


def _codes(body: dict[str, Any]) -> set[str]:
    return {error.get("extensions", {}).get("code") for error in body.get("errors", [])}


def _values(tree: Any, keys: frozenset[str]) -> list[Any]:
    """Every non-null value under one of `keys` anywhere in a JSON tree."""
    if isinstance(tree, dict):
        found = [v for k, v in tree.items() if k in keys and v is not None]
        return found + [x for v in tree.values() for x in _values(v, keys)]
    if isinstance(tree, list):
        return [x for item in tree for x in _values(item, keys)]
    return []


def _nodes_by_id(ours: GraphQLServer, token: str, ids: list[str]) -> dict[str, Any]:
    nodes = ours.data(_NODES, token, ids=ids)["nodes"]
    assert all(node is not None for node in nodes), nodes
    return {node["id"]: node for node in nodes}


def _team(roster: Roster, user_id: str) -> dict[str, str] | None:
    """What the teams subgraph answers for `User.team { name }`."""
    team = roster.team_of(user_id)
    return {"name": team.name} if team else None


def _without(key: str, entity: dict[str, Any]) -> dict[str, Any]:
    """`entity` less one field (what `_NODES` asks beyond `_ENTITIES`)."""
    return {k: v for k, v in entity.items() if k != key}


def _with_team(roster: Roster, session: dict[str, Any]) -> dict[str, Any]:
    initiator = {**session["initiator"], "team": _team(roster, session["initiator"]["id"])}
    return {**session, "initiator": initiator}


# -- our subgraph alone ---------------------------------------------------------------------------


def test_sdl_is_public_and_reads_no_upstream_data(ours: GraphQLServer) -> None:
    ours.calls.clear()
    body = ours.post("{ _service { sdl } }")
    assert "errors" not in body, body["errors"]
    sdl = body["data"]["_service"]["sdl"]
    for entity in ("User", "Session", "Interception"):
        assert f'type {entity} implements Node @key(fields: "id")' in sdl
    assert ours.calls == []


def test_sdl_opens_no_data_without_a_token(ours: GraphQLServer) -> None:
    body = ours.post("{ _service { sdl } sessions(first: 1) { totalCount } }")
    assert body["data"]["_service"]["sdl"]
    assert body["data"]["sessions"] is None
    assert _codes(body) == {"UNAUTHENTICATED"}


def test_entities_resolve_through_the_loaders_with_the_callers_token(
    ours: GraphQLServer, token: str, roster: Roster
) -> None:
    team = roster.teams[0]
    user_id = team.member_ids[0]
    representations = [
        {"__typename": "User", "id": user_id},
        {"__typename": "Session", "id": team.pinned_session_ids[0]},
        {"__typename": "Interception", "id": team.pinned_interception_ids[0]},
    ]
    expected = _nodes_by_id(ours, token, [rep["id"] for rep in representations])
    ours.calls.clear()

    entities = ours.data(_ENTITIES, token, representations=representations)["_entities"]

    for entity, rep in zip(entities, representations, strict=True):
        assert entity == _without("sessions", expected[rep["id"]])
    assert ours.calls, "the entities must come from the upstream"
    assert {call.token for call in ours.calls} == {token}
    targets = [call.target for call in ours.calls]
    assert len(targets) == len(set(targets)), f"an upstream request was repeated: {targets}"


def test_repeated_representations_cost_one_upstream_call(
    ours: GraphQLServer, token: str, roster: Roster
) -> None:
    user_id = roster.teams[1].member_ids[0]
    ours.calls.clear()

    entities = ours.data(
        _ENTITIES, token, representations=[{"__typename": "User", "id": user_id}] * 3
    )["_entities"]

    assert [entity["id"] for entity in entities] == [user_id] * 3
    assert len(ours.calls) == 1, ours.calls


@pytest.mark.parametrize("credential", [None, "not-a-valid-token"], ids=["none", "invalid"])
def test_entities_need_a_valid_token(
    ours: GraphQLServer, roster: Roster, credential: str | None
) -> None:
    team = roster.teams[0]
    representations = [
        {"__typename": "User", "id": team.member_ids[0]},
        {"__typename": "Session", "id": team.pinned_session_ids[0]},
        {"__typename": "Interception", "id": team.pinned_interception_ids[0]},
    ]
    body = ours.post(_ENTITIES, credential, representations=representations)
    assert body["data"]["_entities"] == [None, None, None]
    assert _codes(body) == {"UNAUTHENTICATED"}


# -- composition -----------------------------------------------------------------------------------


def test_committed_schema_composes_like_the_running_subgraph(
    supergraph: Path, subgraphs: dict[str, str], tmp_path: Path
) -> None:
    """`schema.graphql` is our subgraph SDL: a supergraph composes with no gateway running."""
    committed = {"aibridge": REPO_ROOT / "schema.graphql"}
    offline = compose(subgraphs, tmp_path / "supergraph.graphql", sdl_files=committed)
    assert offline == supergraph.read_text()


# -- through Apollo Gateway and Hive Gateway ------------------------------------------------------

_SESSIONS = """
query Sessions {
  sessions(first: 6) {
    totalCount
    nodes {
      id sessionId client threadCount lastActiveAt
      initiator { id username name avatarUrl %s }
    }
  }
}
"""

_TEAMS = """
query Teams {
  teams {
    name
    members { id username name avatarUrl sessions(first: 2) { totalCount nodes { id sessionId } } }
    pinnedSessions {
      id sessionId client threadCount lastActiveAt
      initiator { id username name avatarUrl team { name } }
    }
    pinnedInterceptions {
      id interceptionId model provider startedAt
      initiator { id username name avatarUrl }
    }
  }
}
"""


def test_our_sessions_cross_into_their_teams(
    gateway: GraphQLServer, ours: GraphQLServer, token: str, roster: Roster
) -> None:
    expected = ours.data(_SESSIONS % "", token)
    for node in expected["sessions"]["nodes"]:
        node["initiator"]["team"] = _team(roster, node["initiator"]["id"])
    ours.calls.clear()

    assert gateway.data(_SESSIONS % "team { name }", token) == expected
    assert ours.calls, "the gateway must have queried our subgraph"
    assert {call.token for call in ours.calls} == {token}, "the caller's token, forwarded"


def test_their_teams_cross_into_our_entities(
    gateway: GraphQLServer, ours: GraphQLServer, token: str, roster: Roster
) -> None:
    ids = [
        ref
        for team in roster.teams
        for refs in (team.member_ids, team.pinned_session_ids, team.pinned_interception_ids)
        for ref in refs
    ]
    node = _nodes_by_id(ours, token, ids)
    expected = {
        "teams": [
            {
                "name": team.name,
                "members": [node[ref] for ref in team.member_ids],
                "pinnedSessions": [
                    _with_team(roster, node[ref]) for ref in team.pinned_session_ids
                ],
                "pinnedInterceptions": [node[ref] for ref in team.pinned_interception_ids],
            }
            for team in roster.teams
        ]
    }
    ours.calls.clear()

    assert gateway.data(_TEAMS, token) == expected
    assert {call.token for call in ours.calls} == {token}, "the caller's token, forwarded"


def test_each_caller_sees_only_what_their_own_token_allows(
    gateway: GraphQLServer, ours: GraphQLServer, token: str, tokens: dict[str, str]
) -> None:
    # A member sees no one's AI Bridge data (the owner sees everyone's).
    member = tokens["alice"]
    owners_view = gateway.data(_SESSIONS % "team { name }", token)
    assert owners_view["sessions"]["totalCount"] > 0

    members_view = gateway.data(_SESSIONS % "team { name }", member)
    assert members_view == ours.data(_SESSIONS % "", member)
    assert members_view["sessions"] == {"totalCount": 0, "nodes": []}

    # Their references to entities the member cannot see resolve to errors, never to data.
    body = gateway.post(_TEAMS, member)
    assert _codes(body) == {"NOT_FOUND"}
    assert _values(body.get("data"), _ENTITY_DATA) == []


@pytest.mark.parametrize("scheme", ["session-token", "bearer"])
def test_only_the_callers_credentials_reach_our_subgraph(
    gateway: GraphQLServer, ours: GraphQLServer, token: str, scheme: str
) -> None:
    credential = (
        {"Coder-Session-Token": token}
        if scheme == "session-token"
        else {"Authorization": f"Bearer {token}"}
    )
    ours.received.clear()
    ours.calls.clear()

    body = gateway.post(
        _SESSIONS % "team { name }", headers={**credential, "X-Not-Forwarded": "secret"}
    )

    assert "errors" not in body, body["errors"]
    assert ours.received, "the gateway must have queried our subgraph"
    for headers in ours.received:
        assert {k.lower(): v for k, v in credential.items()}.items() <= headers.items()
        assert "x-not-forwarded" not in headers
    assert {call.token for call in ours.calls} == {token}


@pytest.mark.parametrize("credential", [None, "not-a-valid-token"], ids=["none", "invalid"])
def test_without_a_valid_token_entities_are_unauthenticated(
    gateway: GraphQLServer, roster: Roster, credential: str | None
) -> None:
    body = gateway.post(_TEAMS, credential)
    assert body.get("errors"), body
    assert _codes(body) == {"UNAUTHENTICATED"}
    assert _values(body.get("data"), _ENTITY_DATA) == []

    # The teams subgraph's own data needs no token: only ours is withheld (partial data).
    body = gateway.post("{ teams { name } sessions(first: 1) { totalCount } }", credential)
    assert body["data"] == {
        "teams": [{"name": team.name} for team in roster.teams],
        "sessions": None,
    }
    assert _codes(body) == {"UNAUTHENTICATED"}
