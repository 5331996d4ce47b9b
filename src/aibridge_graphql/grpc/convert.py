"""Upstream models to `aibridge.v1` messages, and request filters to the upstream's `q` filters.

Era-dependent fields (thread `error_type`, session `network_calls`, the session detail's network
activity...) are set when the upstream sends them and unset (or empty) otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.inputs import checked_text, preview
from aibridge_graphql.grpc.gen.aibridge.v1 import (
    catalog_service_pb2 as catalog_pb,
)
from aibridge_graphql.grpc.gen.aibridge.v1 import (
    interception_service_pb2 as interception_pb,
)
from aibridge_graphql.grpc.gen.aibridge.v1 import resources_pb2 as pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream import search_query as q
from aibridge_graphql.upstream.projection import ALL_RECORDS

# Session fields that cost upstream calls: returned only when the read_mask names them.
THREAD_FIELDS = frozenset({"threads", "threads_next_page_token"})
# From the session-detail call (`GET /sessions/{id}`), shared with `threads` when both are named.
NETWORK_DETAIL_FIELDS = frozenset(
    {"network_call_logs", "network_top_domains", "network_domain_count"}
)
SESSION_FIELDS = frozenset(field.name for field in pb.Session.DESCRIPTOR.fields)
# Only a `GET /sessions` item has these: a mask without them can be read from the detail alone.
LIST_ONLY_FIELDS = frozenset({"last_active_time", "last_prompt", "thread_count"})


def timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp of an aware datetime (None stays None)."""
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return out


def struct(value: Mapping[str, Any] | None) -> Struct | None:
    """A protobuf Struct of a JSON object (None stays None)."""
    if value is None:
        return None
    out = Struct()
    out.update(dict(value))
    return out


def user(raw: m.MinimalUser) -> pb.User:
    """The initiator message."""
    return pb.User(id=str(raw.id), username=raw.username, name=raw.name, avatar_url=raw.avatar_url)


def usage_summary(raw: m.SessionTokenUsageSummary | m.ThreadsTokenUsage) -> pb.TokenUsageSummary:
    """Token counts (with metadata when the upstream sums it)."""
    return pb.TokenUsageSummary(
        input_tokens=raw.input_tokens,
        output_tokens=raw.output_tokens,
        cache_read_input_tokens=raw.cache_read_input_tokens,
        cache_write_input_tokens=raw.cache_write_input_tokens,
        metadata=struct(getattr(raw, "metadata", None)),
    )


def _network_calls(raw: m.NetworkCalls | None) -> pb.NetworkCalls | None:
    return None if raw is None else pb.NetworkCalls(total=raw.total, blocked=raw.blocked)


def _network_call_log(raw: m.NetworkCallLog) -> pb.NetworkCallLog:
    return pb.NetworkCallLog(
        id=raw.id,
        firewall_session_id=raw.session_id,
        sequence_number=raw.sequence_number,
        capture_time=timestamp(raw.captured_at),
        create_time=timestamp(raw.created_at),
        proto=raw.proto,
        method=raw.method,
        detail=raw.detail,
        allowed=raw.allowed,
        matched_rule=raw.matched_rule,
    )


def add_network_detail(message: pb.Session, detail: m.SessionThreadsResponse) -> None:
    """Set the session detail's network fields (AI Gateway era) on `message`."""
    message.network_call_logs.extend(
        _network_call_log(log) for log in detail.network_call_logs or ()
    )
    message.network_top_domains.extend(
        pb.NetworkDomain(domain=d.domain, count=d.count) for d in detail.network_top_domains or ()
    )
    if detail.network_domain_count is not None:
        message.network_domain_count = detail.network_domain_count


def session(raw: m.Session | m.SessionThreadsResponse) -> pb.Session:
    """A `GET /sessions` item (without threads), or the session header of a `GET /sessions/{id}`
    page: that lacks `LIST_ONLY_FIELDS`, and its token summary is given as the list's (the same
    numbers, no metadata)."""
    if isinstance(raw, m.Session):
        listed: dict[str, Any] = {
            "last_active_time": timestamp(raw.last_active_at),
            "last_prompt": raw.last_prompt,
            "thread_count": raw.threads,
        }
        summary = raw.token_usage_summary
    else:
        listed = {}
        totals = raw.token_usage_summary
        summary = m.SessionTokenUsageSummary(
            input_tokens=totals.input_tokens,
            output_tokens=totals.output_tokens,
            cache_read_input_tokens=totals.cache_read_input_tokens,
            cache_write_input_tokens=totals.cache_write_input_tokens,
        )
    return pb.Session(
        session_id=raw.id,
        initiator=user(raw.initiator),
        providers=list(raw.providers),
        models=list(raw.models),
        client=raw.client,
        metadata=struct(raw.metadata),
        start_time=timestamp(raw.started_at),
        end_time=timestamp(raw.ended_at),
        token_usage=usage_summary(summary),
        network_calls=_network_calls(raw.network_calls),
        **listed,
    )


def _tool_call(raw: m.ToolCall) -> pb.ToolCall:
    return pb.ToolCall(
        id=str(raw.id),
        interception_id=str(raw.interception_id),
        provider_response_id=raw.provider_response_id,
        server_url=raw.server_url,
        tool=raw.tool,
        injected=raw.injected,
        input=raw.input,
        metadata=struct(raw.metadata),
        create_time=timestamp(raw.created_at),
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def thread(raw: m.Thread) -> pb.Thread:
    """A thread of `GET /sessions/{id}`."""
    return pb.Thread(
        thread_id=str(raw.id),
        prompt=raw.prompt,
        model=raw.model,
        provider=raw.provider,
        credential_kind=raw.credential_kind,
        credential_hint=raw.credential_hint,
        start_time=timestamp(raw.started_at),
        end_time=timestamp(raw.ended_at),
        token_usage=usage_summary(raw.token_usage),
        agentic_actions=[
            pb.AgenticAction(
                model=action.model,
                token_usage=usage_summary(action.token_usage),
                thinking=[pb.ModelThought(text=t.text) for t in action.thinking],
                tool_calls=[_tool_call(call) for call in action.tool_calls],
            )
            for action in raw.agentic_actions
        ],
        error_type=raw.error_type,
        error_message=raw.error_message,
        agent_firewall_session_id=_optional_str(raw.agent_firewall_session_id),
        agent_firewall_sequence_number=raw.agent_firewall_sequence_number,
    )


def interception(raw: m.Interception) -> pb.Interception:
    """An item of `GET /interceptions`."""
    return pb.Interception(
        id=str(raw.id),
        api_key_id=raw.api_key_id,
        initiator=user(raw.initiator),
        provider=raw.provider,
        provider_name=raw.provider_name,
        model=raw.model,
        client=raw.client,
        metadata=struct(raw.metadata),
        start_time=timestamp(raw.started_at),
        end_time=timestamp(raw.ended_at),
        token_usages=[
            pb.TokenUsage(
                id=str(t.id),
                provider_response_id=t.provider_response_id,
                input_tokens=t.input_tokens,
                output_tokens=t.output_tokens,
                cache_read_input_tokens=t.cache_read_input_tokens,
                cache_write_input_tokens=t.cache_write_input_tokens,
                metadata=struct(t.metadata),
                create_time=timestamp(t.created_at),
            )
            for t in raw.token_usages
        ],
        user_prompts=[
            pb.UserPrompt(
                id=str(p.id),
                provider_response_id=p.provider_response_id,
                prompt=p.prompt,
                metadata=struct(p.metadata),
                create_time=timestamp(p.created_at),
            )
            for p in raw.user_prompts
        ],
        tool_usages=[
            pb.ToolUsage(
                id=str(t.id),
                provider_response_id=t.provider_response_id,
                server_url=t.server_url,
                tool=t.tool,
                input=t.input,
                injected=t.injected,
                invocation_error=t.invocation_error,
                metadata=struct(t.metadata),
                create_time=timestamp(t.created_at),
            )
            for t in raw.tool_usages
        ],
    )


def provider(raw: m.Provider) -> catalog_pb.Provider:
    """A `GET /providers` item (the loaders turn a bare name of older servers into `name` only)."""
    return catalog_pb.Provider(
        name=raw.name, type=raw.type or "", display_name=raw.display_name or "", icon=raw.icon or ""
    )


# -- filters -----------------------------------------------------------------------------------


# What `Timestamp.ToDatetime` takes (AIP-142: 0001-01-01 to 9999-12-31, nanos in [0, 1e9)).
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_MAX_NANOS = 999_999_999


def _time(message: Any, name: str, prefix: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos <= _MAX_NANOS):
        field = f"{prefix}.{name}"
        detail = "must be a valid Timestamp: 0001-01-01 to 9999-12-31, nanos in [0, 999999999]"
        raise BadUserInput(
            f"`{field}` {detail}.",
            extensions={"validations": [{"field": field, "detail": detail}]},
        )
    value: datetime = stamp.ToDatetime(tzinfo=UTC)
    return value


def _text(message: Any, name: str, prefix: str) -> str | None:
    """A set string field, within the limits GraphQL's filters have (core/inputs.py)."""
    if not message.HasField(name):
        return None
    return checked_text(f"{prefix}.{name}", getattr(message, name))


def session_filter(message: session_pb.SessionFilter) -> q.SessionFilter:
    """The upstream filter of a ListSessions request."""
    return q.SessionFilter(
        initiator=_text(message, "initiator", "filter"),
        provider=_text(message, "provider", "filter"),
        provider_name=_text(message, "provider_name", "filter"),
        model=_text(message, "model", "filter"),
        client=_text(message, "client", "filter"),
        session_id=_text(message, "session_id", "filter"),
        started_after=_time(message, "started_after", "filter"),
        started_before=_time(message, "started_before", "filter"),
    )


def interception_filter(message: interception_pb.InterceptionFilter) -> q.InterceptionFilter:
    """The upstream filter of a ListInterceptions request."""
    return q.InterceptionFilter(
        initiator=_text(message, "initiator", "filter"),
        provider=_text(message, "provider", "filter"),
        provider_name=_text(message, "provider_name", "filter"),
        model=_text(message, "model", "filter"),
        client=_text(message, "client", "filter"),
        started_after=_time(message, "started_after", "filter"),
        started_before=_time(message, "started_before", "filter"),
    )


# -- read masks (AIP-157) ----------------------------------------------------------------------


# A path is dotted proto field names. upb checks a path only up to a NUL, so `session_id\x00`
# passed the descriptor check and then failed inside `MergeMessage`: the shape is checked first.
_MASK_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# How many refused paths an error lists (a mask may hold thousands).
_MAX_LISTED_PATHS = 5


def _bad_path(path: str) -> bool:
    return _MASK_PATH.fullmatch(path) is None or not FieldMask(paths=[path]).IsValidForDescriptor(
        pb.Session.DESCRIPTOR
    )


def read_mask(mask: FieldMask, has_mask: bool) -> FieldMask | None:
    """The validated mask (None: every field but the threads and the network detail); unknown
    or malformed paths are an error that quotes a few of them, each cut short."""
    if not has_mask or not mask.paths:
        return None
    bad = [path for path in mask.paths if _bad_path(path)]
    if not bad:
        return mask
    listed = [preview(path) for path in bad[:_MAX_LISTED_PATHS]]
    more = len(bad) - len(listed)
    shown = ", ".join(repr(path) for path in listed) + (f" and {more} more" if more else "")
    raise BadUserInput(
        f"read_mask names unknown Session fields: {shown}.",
        extensions={
            "validations": [
                {"field": "read_mask", "detail": f"unknown path {path!r}"} for path in listed
            ]
        },
    )


def wants_threads(mask: FieldMask | None) -> bool:
    """True when the mask names the threads (they cost a call per session)."""
    return mask is not None and any(path.split(".")[0] == "threads" for path in mask.paths)


def wants_network_detail(mask: FieldMask | None) -> bool:
    """True when the mask names a network field of the session detail (a call per session,
    the threads' own when they are named too)."""
    return mask is not None and any(
        path.split(".")[0] in NETWORK_DETAIL_FIELDS for path in mask.paths
    )


def detail_answers(mask: FieldMask | None) -> bool:
    """True when the mask names the threads or a network field, whose `GET /sessions/{id}` also
    has everything else it names (see GraphQL's `cost.session_by_detail`)."""
    if mask is None or not (wants_threads(mask) or wants_network_detail(mask)):
        return False
    return not any(path.split(".")[0] in LIST_ONLY_FIELDS for path in mask.paths)


def unread_records(mask: FieldMask | None) -> frozenset[str]:
    """The record lists (upstream/projection.py) a session call with this mask never reads:
    its threads' agentic actions unless it names `threads` (the session-detail call that serves
    the network fields or the lookup parses its threads without them). The same projection as
    GraphQL's, chosen before the loaders are built."""
    return ALL_RECORDS - {"agentic_actions"} if wants_threads(mask) else ALL_RECORDS


def masked(message: pb.Session, mask: FieldMask | None) -> pb.Session:
    """The session with only the mask's fields (unset mask: everything already built)."""
    if mask is None:
        return message
    out = pb.Session()
    if wants_threads(mask):
        # The token that continues the threads is part of the threads' view.
        mask = FieldMask(paths=[*mask.paths, "threads_next_page_token"])
    mask.MergeMessage(message, out)
    return out
