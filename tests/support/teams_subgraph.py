"""A second federation subgraph for the tests: teams of Coder users, owned by another service.

It extends our `User` entity with `team` (so a query crosses from our subgraph into this one) and
exposes `teams`, whose members and pinned sessions/interceptions are references to our entities (so
a query crosses from this subgraph into ours). It holds no AI Bridge data and needs no token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import strawberry
from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.types import Info

from aibridge_graphql.schema.node import resolver

__all__ = ["Roster", "TeamSpec", "create_app", "schema"]


@dataclass(frozen=True, slots=True)
class TeamSpec:
    """One team: its members (our `User` ids) and what it pinned (our global IDs)."""

    name: str
    member_ids: Sequence[str]
    pinned_session_ids: Sequence[str] = ()
    pinned_interception_ids: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Roster:
    """Every team, in display order; the context of each request."""

    teams: Sequence[TeamSpec]

    def team_of(self, user_id: str) -> TeamSpec | None:
        """The first team listing this user, if any."""
        return next((team for team in self.teams if user_id in team.member_ids), None)


RosterInfo = Info[Roster, None]
_REFERENCE_ONLY = Key(fields=FieldSet("id"), resolvable=False)


# References to entities the AI Bridge subgraph owns (and describes): ids only, not resolvable here.
@strawberry.federation.type(keys=[_REFERENCE_ONLY])
class Session:
    id: strawberry.ID


@strawberry.federation.type(keys=[_REFERENCE_ONLY])
class Interception:
    id: strawberry.ID


@strawberry.type(description="A team of Coder users.")
class Team:
    name: str = strawberry.field(description="The team's name.")
    members: list[User] = strawberry.field(description="Its members, as the roster lists them.")
    pinned_sessions: list[Session] = strawberry.field(description="Sessions the team pinned.")
    pinned_interceptions: list[Interception] = strawberry.field(
        description="Interceptions the team pinned."
    )

    @classmethod
    def from_spec(cls, spec: TeamSpec) -> Team:
        """The team with references (ids only) to the entities it lists."""
        return cls(
            name=spec.name,
            members=[User(id=strawberry.ID(member)) for member in spec.member_ids],
            pinned_sessions=[Session(id=strawberry.ID(ref)) for ref in spec.pinned_session_ids],
            pinned_interceptions=[
                Interception(id=strawberry.ID(ref)) for ref in spec.pinned_interception_ids
            ],
        )


# The AI Bridge subgraph owns `User` and its description; this one adds `team`.
@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID

    @resolver("The user's team; null when the roster lists them nowhere.")
    def team(self, info: RosterInfo) -> Team | None:
        spec = info.context.team_of(str(self.id))
        return Team.from_spec(spec) if spec else None

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        """Any user id is a valid reference: a user without a team has a null `team`."""
        return cls(id=id)


@strawberry.type
class Query:
    @resolver("Every team, in roster order.")
    def teams(self, info: RosterInfo) -> list[Team]:
        return [Team.from_spec(spec) for spec in info.context.teams]


schema = strawberry.federation.Schema(query=Query, types=[User], federation_version="2.11")


class _RosterView(GraphQLView[Roster, None]):
    def __init__(self, roster: Roster) -> None:
        super().__init__(schema=schema, graphql_ide=None)
        self._roster = roster

    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Roster:
        return self._roster


def create_app(roster: Roster) -> web.Application:
    """The subgraph on `/graphql`, serving this roster."""
    app = web.Application()
    app.router.add_route("*", "/graphql", _RosterView(roster))
    return app
