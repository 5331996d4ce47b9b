"""Pydantic models of the AI Bridge REST shapes (codersdk/aibridge.go, both eras).

The AI Gateway era's additions (agent-firewall network calls, thread errors, `GET /providers`;
docs/upstream.md) are optional: the sessions era does not send them, and Coder omits
`network_calls` when the agent firewall is not in use.

Fields that Coder omits when empty (`omitempty`) are optional here; fields it always sends are
required, so a contract change upstream fails loudly at the parse instead of deep in a resolver.

Nested record lists (an interception's token usages, prompts and tool usages, a thread's agentic
actions) are the bulk of a page but rarely selected: `upstream/projection.py` parses a page
without the ones a request does not read, into these same classes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.dataclasses import dataclass

# Newer servers add fields (firewall, errors): ignore what we do not model.
_IGNORE_EXTRA = ConfigDict(extra="ignore")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# The many small records of a page (sessions, users, token usages, prompts, tool calls, thoughts,
# network calls) are slotted frozen dataclasses, validated alike: one object each where a model is
# three (instance, `__dict__`, fields set), and the cycle collector walks every one while a
# request is in flight. Models remain for pages and for what upstream/projection.py parses without
# its record lists (interceptions, threads).


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class MinimalUser:
    id: UUID
    username: str
    name: str = ""
    avatar_url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class TokenUsage:
    id: UUID
    interception_id: UUID
    provider_response_id: str
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    metadata: dict[str, Any] | None = None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class UserPrompt:
    id: UUID
    interception_id: UUID
    provider_response_id: str
    prompt: str
    metadata: dict[str, Any] | None = None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class ToolUsage:
    id: UUID
    interception_id: UUID
    provider_response_id: str
    server_url: str = ""
    tool: str
    input: str
    injected: bool
    invocation_error: str = ""
    metadata: dict[str, Any] | None = None
    created_at: datetime


class Interception(_Model):
    id: UUID
    api_key_id: str | None = None
    initiator: MinimalUser
    provider: str
    provider_name: str = ""
    model: str
    client: str | None = None
    metadata: dict[str, Any] | None = None
    started_at: datetime
    ended_at: datetime | None = None
    # Record lists (Coder omits empty ones); absent when parsed without them (projection.py).
    token_usages: list[TokenUsage] = Field(default_factory=list)
    user_prompts: list[UserPrompt] = Field(default_factory=list)
    tool_usages: list[ToolUsage] = Field(default_factory=list)


class ListInterceptionsResponse(_Model):
    count: int
    results: list[Interception]


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class SessionTokenUsageSummary:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class NetworkCalls:
    """A session's agent-firewall network calls: how many, and how many were blocked."""

    total: int = 0
    blocked: int = 0


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class NetworkCallLog:
    """One agent-firewall network call of a session (session detail, at most 1000)."""

    id: str
    session_id: str = ""
    sequence_number: int = 0
    captured_at: datetime | None = None
    created_at: datetime | None = None
    proto: str = ""
    method: str = ""
    detail: str = ""
    allowed: bool
    matched_rule: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class NetworkDomain:
    domain: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class Provider:
    """An item of `GET /providers` (after coder/coder#28966; before it a bare name string)."""

    name: str
    type: str | None = None
    display_name: str | None = None
    icon: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class Session:
    """One item of `GET /sessions`."""

    id: str
    initiator: MinimalUser
    providers: list[str]
    models: list[str]
    client: str | None = None
    metadata: dict[str, Any] | None = None
    started_at: datetime
    ended_at: datetime | None = None
    threads: int
    token_usage_summary: SessionTokenUsageSummary
    last_prompt: str | None = None
    last_active_at: datetime | None = None
    network_calls: NetworkCalls | None = None


class ListSessionsResponse(_Model):
    count: int
    sessions: list[Session]


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class ThreadsTokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class ModelThought:
    text: str


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class ToolCall:
    id: UUID
    interception_id: UUID
    provider_response_id: str
    server_url: str = ""
    tool: str
    injected: bool
    input: str
    metadata: dict[str, Any] | None = None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True, config=_IGNORE_EXTRA)
class AgenticAction:
    model: str
    token_usage: ThreadsTokenUsage
    thinking: list[ModelThought] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)


class Thread(_Model):
    id: UUID
    prompt: str | None = None
    model: str
    provider: str
    credential_kind: str = ""
    credential_hint: str = ""
    started_at: datetime
    ended_at: datetime | None = None
    token_usage: ThreadsTokenUsage
    # One action per interception that called tools; absent when parsed without it.
    agentic_actions: list[AgenticAction] = Field(default_factory=list)
    agent_firewall_session_id: UUID | None = None
    agent_firewall_sequence_number: int | None = None
    error_type: str | None = None
    error_message: str | None = None


class SessionThreadsResponse(_Model):
    """The body of `GET /sessions/{session_id}`: the session header and one page of threads."""

    id: str
    initiator: MinimalUser
    providers: list[str]
    models: list[str]
    client: str | None = None
    metadata: dict[str, Any] | None = None
    page_started_at: datetime | None = None
    page_ended_at: datetime | None = None
    started_at: datetime
    ended_at: datetime | None = None
    token_usage_summary: ThreadsTokenUsage
    threads: list[Thread]
    network_calls: NetworkCalls | None = None
    network_call_logs: list[NetworkCallLog] | None = None
    network_top_domains: list[NetworkDomain] | None = None
    network_domain_count: int | None = None


class ValidationError(_Model):
    field: str
    detail: str


class ErrorResponse(_Model):
    """Coder's `codersdk.Response` error body."""

    message: str
    detail: str | None = None
    validations: list[ValidationError] = Field(default_factory=list)


# --- AI spend and budgets (enterprise, AI Gateway era; outside the AI Gateway prefix) ----------


class AIBudgetLimit(_Model):
    """`AIBudgetLimit`: the limit in force and where it comes from (`group`, `user_override`)."""

    spend_limit_micros: int
    limit_source: str


class UserAISpendStatus(_Model):
    """`GET /api/v2/users/{user}/ai/spend` (enterprise/coderd/aibridge.go `userAISpendStatus`)."""

    user_id: UUID
    effective_group_id: UUID | None = None
    effective_budget: AIBudgetLimit | None = None
    current_spend_micros: int
    period_start: datetime
    period_end: datetime


class OrganizationGroupAISpend(_Model):
    """One group of `GET /api/v2/organizations/{org}/groups/ai/spend`."""

    group_id: UUID
    spend_limit_micros: int | None = None
    total_spend_limit_micros: int | None = None
    current_spend_micros: int


class OrganizationGroupsAISpend(_Model):
    """`GET /api/v2/organizations/{org}/groups/ai/spend?group_ids=`: the period and the groups."""

    period_start: datetime
    period_end: datetime
    groups: list[OrganizationGroupAISpend]


class GroupAIBudget(_Model):
    """`PUT /api/v2/groups/{group}/ai/budget`'s answer (codersdk.GroupAIBudget)."""

    group_id: UUID
    spend_limit_micros: int
    created_at: datetime
    updated_at: datetime


class UserAIBudgetOverride(_Model):
    """`PUT /api/v2/users/{user}/ai/budget/override`'s answer (codersdk.UserAIBudgetOverride)."""

    user_id: UUID
    group_id: UUID
    spend_limit_micros: int
    created_at: datetime
    updated_at: datetime


class AIGatewayKey(_Model):
    """One item of `GET /api/v2/ai-gateway/keys` (codersdk.AIGatewayKey): never its secret."""

    id: UUID
    name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None = None


class CreatedAIGatewayKey(_Model):
    """`POST /api/v2/ai-gateway/keys`'s 201 (codersdk.CreateAIGatewayKeyResponse): the only
    answer holding the secret, kept as a `SecretStr` so no repr or log shows it."""

    id: UUID
    name: str
    key: SecretStr
    key_prefix: str
    created_at: datetime
