"""Value types carried inside interceptions and threads: token usage, prompts, tool calls.

None of these are Nodes, so their raw upstream ids are exposed as `<type>Id` rather than `id`:
Relay normalizes any object with an `id` field by that value, and a tool call and the tool usage
it comes from share one upstream id.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from aibridge_graphql.core.loaders import Loaders
from aibridge_graphql.core.pricing import Cost as CostValue
from aibridge_graphql.core.usage import action_cost, session_cost, thread_cost, token_usage_cost
from aibridge_graphql.schema.amounts import Cost
from aibridge_graphql.schema.engine.needs import needs
from aibridge_graphql.schema.node import Info, computed, json_value, loaders_of, resolver
from aibridge_graphql.upstream import models as m

# How a summary finds its cost: at once (a thread's, an action's) or by a walk (a session's).
CostOf = Callable[[Loaders], CostValue | Awaitable[CostValue]]

_SUMMARY_COST = (
    "What these tokens cost (see `Cost`). A thread's is the sum of its actions' plus its tokens "
    "outside them (interceptions without tool calls, at the thread's model); a session's is the "
    "sum of all its threads' (`GET /sessions/{id}` pages of 200: one upstream call per 200 "
    "threads, and it covers the whole session even after a filtered list). Null with an error "
    "when that call fails."
)


@strawberry.type(
    description=(
        "Summed token counts. `metadata` sums the integer leaves of the providers' token metadata "
        "by dotted key (e.g. `cache_read_input`); it is null where the REST API does not report it "
        "(the session list)."
    )
)
class TokenUsageSummary:
    input_tokens: int = strawberry.field(description="Input (prompt) tokens.")
    output_tokens: int = strawberry.field(description="Output (completion) tokens.")
    cache_read_input_tokens: int = strawberry.field(description="Input tokens read from cache.")
    cache_write_input_tokens: int = strawberry.field(description="Input tokens written to cache.")
    metadata: JSON | None = strawberry.field(description="Summed numeric token metadata.")
    cost_of: strawberry.Private[CostOf | None] = None

    # A session's summary walks its threads (counted by `Session.tokenUsage`); a thread's and an
    # action's price their agentic actions.
    @resolver(_SUMMARY_COST, needs(reads=frozenset({"agentic_actions"})))
    async def cost(self, info: Info) -> Cost | None:
        if self.cost_of is None:  # pragma: no cover - every constructor gives one
            return None
        value = self.cost_of(loaders_of(info))
        return Cost.of(await value if inspect.isawaitable(value) else value)

    @classmethod
    def from_session(
        cls,
        raw: m.SessionTokenUsageSummary | m.ThreadsTokenUsage,
        session_id: str | None = None,
    ) -> TokenUsageSummary:
        """A session's summary, as its list item has it (no metadata: a detail response's, whose
        numbers are the same, gives none either); its cost walks the session's threads."""

        def cost_of(loaders: Loaders) -> Awaitable[CostValue]:
            return session_cost(loaders, session_id or "")

        return cls(
            input_tokens=raw.input_tokens,
            output_tokens=raw.output_tokens,
            cache_read_input_tokens=raw.cache_read_input_tokens,
            cache_write_input_tokens=raw.cache_write_input_tokens,
            metadata=None,
            cost_of=cost_of if session_id is not None else None,
        )

    @classmethod
    def from_threads(
        cls, raw: m.ThreadsTokenUsage, cost_of: CostOf | None = None
    ) -> TokenUsageSummary:
        return cls(
            input_tokens=raw.input_tokens,
            output_tokens=raw.output_tokens,
            cache_read_input_tokens=raw.cache_read_input_tokens,
            cache_write_input_tokens=raw.cache_write_input_tokens,
            metadata=json_value(raw.metadata),
            cost_of=cost_of,
        )

    @classmethod
    def of_thread(cls, raw: m.Thread) -> TokenUsageSummary:
        """A thread's summary, priced as the thread."""
        return cls.from_threads(raw.token_usage, lambda loaders: thread_cost(loaders.pricer, raw))


@strawberry.type(description="One token usage record reported by the provider for a response.")
class TokenUsage:
    token_usage_id: strawberry.ID = strawberry.field(description="The upstream record id (UUID).")
    interception_id: strawberry.ID = strawberry.field(description="The interception's UUID.")
    provider_response_id: str = strawberry.field(description="The provider's response id.")
    input_tokens: int = strawberry.field(description="Input (prompt) tokens.")
    output_tokens: int = strawberry.field(description="Output (completion) tokens.")
    cache_read_input_tokens: int = strawberry.field(description="Input tokens read from cache.")
    cache_write_input_tokens: int = strawberry.field(description="Input tokens written to cache.")
    metadata: JSON | None = strawberry.field(description="Provider-specific token metadata.")
    created_at: datetime = strawberry.field(description="When it was recorded.")
    raw: strawberry.Private[m.TokenUsage | None] = None
    interception: strawberry.Private[m.Interception | None] = None

    @resolver(
        "What this response's tokens cost, at the interception's provider, provider name and "
        "model and the rates in force at `createdAt` (see `Cost`).",
        needs(),  # priced from the token usage itself
    )
    def cost(self, info: Info) -> Cost | None:
        if self.raw is None or self.interception is None:  # pragma: no cover
            return None
        return Cost.of(token_usage_cost(loaders_of(info).pricer, self.raw, self.interception))

    @classmethod
    def from_model(
        cls, raw: m.TokenUsage, interception: m.Interception | None = None
    ) -> TokenUsage:
        return cls(
            token_usage_id=strawberry.ID(str(raw.id)),
            interception_id=strawberry.ID(str(raw.interception_id)),
            provider_response_id=raw.provider_response_id,
            input_tokens=raw.input_tokens,
            output_tokens=raw.output_tokens,
            cache_read_input_tokens=raw.cache_read_input_tokens,
            cache_write_input_tokens=raw.cache_write_input_tokens,
            metadata=json_value(raw.metadata),
            created_at=raw.created_at,
            raw=raw,
            interception=interception,
        )


@strawberry.type(description="A prompt the user sent, as recorded by AI Bridge.")
class UserPrompt:
    user_prompt_id: strawberry.ID = strawberry.field(description="The upstream record id (UUID).")
    interception_id: strawberry.ID = strawberry.field(description="The interception's UUID.")
    provider_response_id: str = strawberry.field(description="The provider's response id.")
    prompt: str = strawberry.field(description="The prompt text.")
    metadata: JSON | None = strawberry.field(description="Prompt metadata.")
    created_at: datetime = strawberry.field(description="When it was recorded.")

    @classmethod
    def from_model(cls, raw: m.UserPrompt) -> UserPrompt:
        return cls(
            user_prompt_id=strawberry.ID(str(raw.id)),
            interception_id=strawberry.ID(str(raw.interception_id)),
            provider_response_id=raw.provider_response_id,
            prompt=raw.prompt,
            metadata=json_value(raw.metadata),
            created_at=raw.created_at,
        )


@strawberry.type(description="A tool invocation recorded on an interception.")
class ToolUsage:
    tool_usage_id: strawberry.ID = strawberry.field(description="The upstream record id (UUID).")
    interception_id: strawberry.ID = strawberry.field(description="The interception's UUID.")
    provider_response_id: str = strawberry.field(description="The provider's response id.")
    server_url: str = strawberry.field(
        description="The MCP server URL; empty for a client-defined tool."
    )
    tool: str = strawberry.field(description="The tool name.")
    input: str = strawberry.field(description="The tool input as raw JSON text.")
    injected: bool = strawberry.field(description="Whether AI Bridge injected the tool (MCP).")
    invocation_error: str = strawberry.field(description="The invocation error; empty if none.")
    metadata: JSON | None = strawberry.field(description="Tool usage metadata.")
    created_at: datetime = strawberry.field(description="When it was recorded.")

    @classmethod
    def from_model(cls, raw: m.ToolUsage) -> ToolUsage:
        return cls(
            tool_usage_id=strawberry.ID(str(raw.id)),
            interception_id=strawberry.ID(str(raw.interception_id)),
            provider_response_id=raw.provider_response_id,
            server_url=raw.server_url,
            tool=raw.tool,
            input=raw.input,
            injected=raw.injected,
            invocation_error=raw.invocation_error,
            metadata=json_value(raw.metadata),
            created_at=raw.created_at,
        )


def _tool_call_id(call: ToolCall) -> strawberry.ID:
    return strawberry.ID(str(call.raw.id))


def _call_interception_id(call: ToolCall) -> strawberry.ID:
    return strawberry.ID(str(call.raw.interception_id))


def _call_metadata(call: ToolCall) -> JSON | None:
    return json_value(call.raw.metadata)


@strawberry.type(description="A tool call made during an agentic action of a thread.")
class ToolCall:
    # `computed` fields are made from `raw` only when selected (a session view shows few).
    tool_call_id: strawberry.ID = computed(_tool_call_id, "The upstream record id (UUID).")
    interception_id: strawberry.ID = computed(_call_interception_id, "The interception's UUID.")
    provider_response_id: str = strawberry.field(description="The provider's response id.")
    server_url: str = strawberry.field(
        description="The MCP server URL; empty for a client-defined tool."
    )
    tool: str = strawberry.field(description="The tool name.")
    injected: bool = strawberry.field(description="Whether AI Bridge injected the tool (MCP).")
    input: str = strawberry.field(description="The tool input as raw JSON text.")
    metadata: JSON | None = computed(_call_metadata, "Tool call metadata.")
    created_at: datetime = strawberry.field(description="When it was recorded.")
    raw: strawberry.Private[m.ToolCall]

    @classmethod
    def from_model(cls, raw: m.ToolCall) -> ToolCall:
        return cls(
            provider_response_id=raw.provider_response_id,
            server_url=raw.server_url,
            tool=raw.tool,
            injected=raw.injected,
            input=raw.input,
            created_at=raw.created_at,
            raw=raw,
        )


def _action_token_usage(action: AgenticAction) -> TokenUsageSummary:
    raw, thread = action.raw, action.thread

    def cost_of(loaders: Loaders) -> CostValue:
        assert thread is not None
        return action_cost(loaders.pricer, raw, thread)

    return TokenUsageSummary.from_threads(raw.token_usage, cost_of if thread is not None else None)


@strawberry.type(
    description="One interception of a thread that called tools: its model, thoughts and calls."
)
class AgenticAction:
    model: str = strawberry.field(description="The model of that interception.")
    thinking: list[str] = strawberry.field(description="The model's thoughts, oldest first.")
    token_usage: TokenUsageSummary = computed(
        _action_token_usage, "Tokens used by that interception."
    )
    tool_calls: list[ToolCall] = strawberry.field(description="Its tool calls, oldest first.")
    raw: strawberry.Private[m.AgenticAction]
    thread: strawberry.Private[m.Thread | None]

    @classmethod
    def from_model(cls, raw: m.AgenticAction, thread: m.Thread | None = None) -> AgenticAction:
        """An action of `thread` (priced at the thread's start time and provider)."""
        return cls(
            model=raw.model,
            thinking=[thought.text for thought in raw.thinking],
            tool_calls=[ToolCall.from_model(call) for call in raw.tool_calls],
            raw=raw,
            thread=thread,
        )
