"""Deterministic synthetic AI Bridge traffic for the stand-in.

Everything comes from `random.Random(seed_value)` and a fixed time anchor, so the same seed value
(and admin token) gives byte-identical database content. Every user gets a token derived from the
RNG: anyone who knows the seed value can sign in as them, which is fine for a development server
and wrong for anything else.
"""

from __future__ import annotations

import json
import random
import sqlite3
import string
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import accumulate

from aibridge_graphql.standin import catalogue as cat
from aibridge_graphql.standin.records import (
    BoundaryLogRecord,
    InterceptionRecord,
    Metadata,
    ModelThoughtRecord,
    TokenUsageRecord,
    ToolUsageRecord,
    UserPromptRecord,
    UserRecord,
    insert_api_key,
    insert_interceptions,
    insert_providers,
    insert_users,
)
from aibridge_graphql.standin.store import bulk_load

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# "Now" for the synthetic data: traffic spreads over the WINDOW before it.
ANCHOR = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()) * SECOND
WINDOW = 30 * DAY
KEY_LIFETIME = 3650 * DAY
# Every IN_FLIGHT_EVERY-th session is still running at the anchor (ended_at NULL).
IN_FLIGHT_EVERY = 40
ALNUM = string.ascii_letters + string.digits

# (username, name, role, initiator weight); members' avatars and emails are derived.
USERS: tuple[tuple[str, str, str, int], ...] = (
    ("admin", "Ada Admin", "owner", 2),
    ("auditor", "Audrey Tor", "auditor", 1),
    ("alice", "Alice Nakamura", "member", 4),
    ("bogdan", "Bogdan Petrov", "member", 3),
    ("chen", "Chen Wei", "member", 3),
    ("dara", "Dara O'Neill", "member", 2),
    ("emeka", "Emeka Obi", "member", 2),
    ("farah", "", "member", 1),
)


@dataclass(frozen=True)
class SeedUser:
    """A generated user, its token, and how often it starts sessions."""

    record: UserRecord
    token: str
    weight: int

    @property
    def key_id(self) -> str:
        """The API key id part of the token."""
        return self.token.split("-", 1)[0]


def seed_database(
    conn: sqlite3.Connection,
    count: int,
    seed_value: int,
    admin_token: str,
    *,
    awkward_session_ids: bool = True,
) -> None:
    """Insert users, their tokens, providers and `count` interceptions (no commit).

    `awkward_session_ids` gives some sessions client ids holding `:`, `@`, `+`, `=` and spaces
    (for clients that must encode them in a path); off, those sessions keep plain ids.
    """
    rng = random.Random(seed_value)
    users = make_users(rng, admin_token)
    if not conn.in_transaction:  # one transaction even on an autocommit connection
        conn.execute("BEGIN")
    insert_users(conn, [u.record for u in users])
    for user in users:
        insert_api_key(conn, user.record.id, user.token, ANCHOR + KEY_LIFETIME)
    insert_providers(conn, cat.PROVIDERS)
    extras = Extras(seed_value, awkward_session_ids=awkward_session_ids)
    with bulk_load(conn):
        insert_interceptions(conn, generate_interceptions(rng, users, count, extras))


def make_users(rng: random.Random, admin_token: str) -> list[SeedUser]:
    """The owner `admin` (with admin_token), an auditor and members, with RNG-derived tokens."""
    users = []
    for username, name, role, weight in USERS:
        avatar = f"{cat.AVATAR_BASE}{_between(rng, 10**6, 10**8)}?v=4" if rng.random() < 0.8 else ""
        record = UserRecord(_uuid(rng), username, f"{username}@example.com", name, avatar, role)
        token = f"{_alnum(rng, 10)}-{_alnum(rng, 22)}"
        users.append(SeedUser(record, admin_token if role == "owner" else token, weight))
    return users


def generate_interceptions(
    rng: random.Random, users: list[SeedUser], count: int, extras: Extras | None = None
) -> Iterator[InterceptionRecord]:
    """Exactly `count` interceptions, session by session."""
    produced = 0
    index = 0
    while produced < count:
        records = _session(rng, users, index)
        if extras is not None:
            records = extras.apply(index, records)
        for record in records[: count - produced]:
            yield record
            produced += 1
        index += 1


# random.choices accumulates the weights on every call; the same sums, once.
_CLIENT_WEIGHTS = list(accumulate(c.weight for c in cat.CLIENTS))


def _session(rng: random.Random, users: list[SeedUser], index: int) -> list[InterceptionRecord]:
    user = rng.choices(users, weights=[u.weight for u in users])[0]
    profile = rng.choices(cat.CLIENTS, cum_weights=_CLIENT_WEIGHTS)[0]
    in_flight = index % IN_FLIGHT_EVERY == 1
    multi = profile.sends_session_id and rng.random() < 0.85
    session_key = _client_session_id(rng, profile) if multi else None
    threads = rng.choice((1, 1, 2, 2, 3, 4, 5, 8)) if multi else 1
    back = _between(rng, 2 * MINUTE, 40 * MINUTE) if in_flight else _between(rng, 3 * HOUR, WINDOW)
    clock = ANCHOR - back
    provider_name = rng.choice(profile.provider_names)
    records: list[InterceptionRecord] = []
    for _ in range(threads):
        if len(profile.provider_names) > 2 and rng.random() < 0.2:
            provider_name = rng.choice(profile.provider_names)
        loop = 1 + rng.choice((0, 0, 0, 1, 1, 2, 3, 5)) if multi else 1
        thread = _Thread(rng, user, profile, provider_name, session_key)
        records += thread.interceptions(clock, loop)
        clock = records[-1].ended_at or clock
        clock += _between(rng, 20 * SECOND, 15 * MINUTE)
    if in_flight:
        records[-1] = replace(records[-1], ended_at=None)
    return records


@dataclass(frozen=True)
class _Rows:
    """The child rows of one interception."""

    token_usages: tuple[TokenUsageRecord, ...]
    user_prompts: tuple[UserPromptRecord, ...]
    tool_usages: tuple[ToolUsageRecord, ...]
    model_thoughts: tuple[ModelThoughtRecord, ...]


@dataclass
class _Thread:
    """One thread: a root interception and the agentic-loop continuations it led to."""

    rng: random.Random
    user: SeedUser
    profile: cat.ClientProfile
    provider_name: str
    session_key: str | None

    def interceptions(self, clock: int, loop: int) -> list[InterceptionRecord]:
        """`loop` interceptions chained parent → child, starting at `clock`."""
        rng = self.rng
        models = cat.MODELS[self.provider_name]
        model = models[0] if rng.random() < 0.7 else rng.choice(models)
        kind, hint = _credential(rng)
        records: list[InterceptionRecord] = []
        for step in range(loop):
            started = clock
            ended = started + _between(rng, 1500 * 1000, 90 * SECOND)
            provider = cat.RUNTIME_PROVIDER[self.provider_name]
            interception_id = _uuid(rng)
            rows = self._rows(provider, model, started, ended, step == 0, step < loop - 1)
            records.append(
                InterceptionRecord(
                    id=interception_id,
                    api_key_id=self.user.key_id if rng.random() < 0.97 else None,
                    initiator_id=self.user.record.id,
                    provider=provider,
                    provider_name=self.provider_name,
                    model=model,
                    client=self.profile.name,
                    metadata=_interception_metadata(rng),
                    started_at=started,
                    ended_at=ended,
                    client_session_id=self.session_key,
                    thread_parent_id=records[-1].id if records else None,
                    thread_root_id=records[0].id if records else None,
                    credential_kind=kind,
                    credential_hint=hint,
                    token_usages=rows.token_usages,
                    user_prompts=rows.user_prompts,
                    tool_usages=rows.tool_usages,
                    model_thoughts=rows.model_thoughts,
                )
            )
            clock = ended + _between(rng, 50 * 1000, 3 * SECOND)
        return records

    def _rows(
        self, provider: str, model: str, started: int, ended: int, root: bool, continues: bool
    ) -> _Rows:
        """An interception's responses, prompt, tool calls and thoughts."""
        rng = self.rng
        injected = rng.choice((0, 0, 0, 0, 1, 2)) if self.profile.tools else 0
        client_calls = _between(rng, 1, 3) if continues else int(rng.random() < 0.1)
        if not self.profile.tools:
            client_calls = 0
        times = _spread(rng, started, ended, injected + 1)
        responses = [_response_id(rng, provider) for _ in times]
        tools = [self._mcp_call(responses[i], times[i]) for i in range(injected)]
        tools += [self._client_call(responses[-1], times[-1]) for _ in range(client_calls)]
        prompts: tuple[UserPromptRecord, ...] = ()
        if root and rng.random() < 0.95:
            prompts = (_prompt(rng, responses[0], started),)
        usages = tuple(
            _token_usage(rng, provider, r, t) for r, t in zip(responses, times, strict=True)
        )
        return _Rows(usages, prompts, tuple(tools), _thoughts(rng, model, started))

    def _mcp_call(self, response_id: str, at: int) -> ToolUsageRecord:
        rng = self.rng
        server_url, tool = rng.choice(cat.MCP_TOOLS)
        error = rng.choice(cat.INVOCATION_ERRORS) if rng.random() < 0.12 else None
        return self._tool(response_id, at, server_url, tool, error)

    def _client_call(self, response_id: str, at: int) -> ToolUsageRecord:
        return self._tool(response_id, at, None, self.rng.choice(self.profile.tools), None)

    def _tool(
        self, response_id: str, at: int, server_url: str | None, tool: str, error: str | None
    ) -> ToolUsageRecord:
        rng = self.rng
        prefix = "toolu_01" if self.provider_name in ("anthropic", "bedrock") else "call_"
        call_id = prefix + _alnum(rng, 22) if rng.random() < 0.95 else None
        return ToolUsageRecord(
            id=_uuid(rng),
            provider_response_id=response_id,
            provider_tool_call_id=call_id,
            server_url=server_url,
            tool=tool,
            input=_tool_input(rng, tool),
            injected=server_url is not None,
            invocation_error=error,
            metadata={} if rng.random() < 0.8 else None,
            created_at=at,
        )


_UUID_VARIANT_CLEAR, _UUID_VARIANT = ~(0xC000 << 48), 0x8000 << 48
_UUID_VERSION_CLEAR, _UUID_VERSION_4 = ~(0xF000 << 64), 4 << 76


def _uuid(rng: random.Random) -> str:
    """str(uuid.UUID(int=rng.getrandbits(128), version=4)), without the object (the seed
    draws one per row)."""
    bits = rng.getrandbits(128) & _UUID_VARIANT_CLEAR | _UUID_VARIANT
    text = f"{bits & _UUID_VERSION_CLEAR | _UUID_VERSION_4:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _between(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high]; cheaper than `randint`, which dominates generation time."""
    return low + int(rng.random() * (high - low + 1))


def _alnum(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(ALNUM, k=length))


def _client_session_id(rng: random.Random, profile: cat.ClientProfile) -> str:
    # Most clients send a UUID; some send their own shape of id.
    if profile.name in ("Zed", "Kilo Code"):
        return f"{profile.name.split()[0].lower()}-{rng.getrandbits(64):016x}"
    return _uuid(rng)


def _credential(rng: random.Random) -> tuple[str, str]:
    """(kind, hint): masked hints, long raw ones (masked to "..." by the API) and empty ones."""
    kind = "byok" if rng.random() < 0.2 else "centralized"
    roll = rng.random()
    if roll < 0.55:
        return kind, f"{rng.choice(('sk-a', 'sk-p', 'ghu_'))}...{_alnum(rng, 4)}"
    if roll < 0.7:
        return kind, f"sk-ant-api03-{_alnum(rng, 24)}"
    return kind, ""


def _interception_metadata(rng: random.Random) -> Metadata:
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.25:
        return {}
    return {"stream": rng.random() < 0.9, "workspace": f"ws-{rng.choice(cat.SYMBOLS).lower()}"}


def _spread(rng: random.Random, start: int, end: int, n: int) -> list[int]:
    """n ascending instants inside [start, end]."""
    return sorted(_between(rng, start, end) for _ in range(n))


def _response_id(rng: random.Random, provider: str) -> str:
    if provider == "anthropic":
        return "msg_01" + _alnum(rng, 22)
    if provider == "openai":
        return f"resp_{rng.getrandbits(192):048x}"
    return "chatcmpl-" + _alnum(rng, 29)


def _token_usage(rng: random.Random, provider: str, response_id: str, at: int) -> TokenUsageRecord:
    inputs = _between(rng, 800, 60_000)
    outputs = _between(rng, 20, 4_000)
    cached = _between(rng, 0, inputs) if rng.random() < 0.7 else 0
    written = _between(rng, 0, inputs - cached) if provider == "anthropic" else 0
    return TokenUsageRecord(
        id=_uuid(rng),
        provider_response_id=response_id,
        input_tokens=inputs,
        output_tokens=outputs,
        cache_read_input_tokens=cached,
        cache_write_input_tokens=written,
        metadata=_token_metadata(rng, provider, cached, written, outputs),
        created_at=at,
    )


def _token_metadata(
    rng: random.Random, provider: str, cached: int, written: int, outputs: int
) -> Metadata:
    """Provider-specific keys, some nested objects, a string leaf (not summed) and empty ones."""
    if rng.random() < 0.1:
        return {}
    if provider == "anthropic":
        short = _between(rng, 0, written)
        return {
            "cache_read_input": cached,
            "cache_creation_input": written,
            "cache_ephemeral_5m_input": short,
            "cache_ephemeral_1h_input": written - short,
        }
    metadata: dict[str, object] = {"prompt_cached": cached}
    if rng.random() < 0.4:
        reasoning = _between(rng, 0, outputs)
        metadata["output_tokens_details"] = {"reasoning_tokens": reasoning}
    if rng.random() < 0.2:
        metadata["service_tier"] = "default"
    return metadata


def _prompt(rng: random.Random, response_id: str, at: int) -> UserPromptRecord:
    text = rng.choice(cat.PROMPTS).format(
        file=rng.choice(cat.FILES), symbol=rng.choice(cat.SYMBOLS), error=rng.choice(cat.ERRORS)
    )
    return UserPromptRecord(_uuid(rng), response_id, text, {} if rng.random() < 0.9 else None, at)


def _tool_input(rng: random.Random, tool: str) -> str:
    """JSON arguments shaped by what the tool does (read, run, search, or a workspace action)."""
    name = tool.lower()
    arguments: dict[str, object]
    if any(word in name for word in ("bash", "shell", "terminal")):
        arguments = {"command": rng.choice(cat.COMMANDS)}
    elif any(word in name for word in ("grep", "search", "glob")):
        arguments = {"pattern": rng.choice(cat.SYMBOLS), "limit": _between(rng, 1, 50)}
    elif any(word in name for word in ("edit", "patch", "replace", "write")):
        arguments = {"path": rng.choice(cat.FILES), "old": rng.choice(cat.SYMBOLS), "new": "..."}
    elif "workspace" in name or "issue" in name or "pull_request" in name:
        arguments = {"name": f"ws-{rng.choice(cat.SYMBOLS).lower()}", "owner": "me"}
    else:
        arguments = {"path": rng.choice(cat.FILES)}
    return json.dumps(arguments)


def _thoughts(rng: random.Random, model: str, at: int) -> tuple[ModelThoughtRecord, ...]:
    if not model.startswith(cat.REASONING_PREFIXES) or rng.random() < 0.4:
        return ()
    picks = rng.sample(cat.THOUGHTS, _between(rng, 1, 2))
    return tuple(ModelThoughtRecord(text, None, at + i * SECOND) for i, text in enumerate(picks))


class Extras:
    """What the AI Gateway era added, drawn from a per-session RNG of its own.

    The main generator's stream is left exactly as it was, so the same seed value keeps giving
    the same sessions, prompts and tokens; this only decorates them: agentic loops of clients
    that send no session id, agent firewall network calls, upstream errors on thread roots, and
    client session ids that need percent-encoding in a path.
    """

    def __init__(self, seed_value: int, *, awkward_session_ids: bool = True) -> None:
        self._seed_value = seed_value
        self._awkward = awkward_session_ids

    def apply(self, index: int, records: list[InterceptionRecord]) -> list[InterceptionRecord]:
        """The session's records with the extras of session number `index`."""
        # A str seed is hashed with SHA-512 by `random`: stable across runs and platforms.
        rng = random.Random(f"{self._seed_value}/extras/{index}")
        in_flight = records[-1].ended_at is None
        root = records[0]
        if root.client_session_id is None and not in_flight and rng.random() < 0.5:
            records = _loop_without_session_id(rng, root)
        elif root.client_session_id is not None and self._awkward and rng.random() < 0.12:
            awkward = _awkward_session_id(rng, root.client or "")
            records = [replace(r, client_session_id=awkward) for r in records]
        records = [_with_error(rng, r) if r.thread_root_id is None else r for r in records]
        if root.client is not None and rng.random() < 0.3:
            records = _with_firewall(rng, records)
        return records


def _loop_without_session_id(
    rng: random.Random, root: InterceptionRecord
) -> list[InterceptionRecord]:
    """A root that led to continuations although the client sent no session id: in Coder those
    belong to the root's session (its id), not to sessions of their own."""
    records = [_with_client_call(rng, root)]
    clock = root.ended_at or root.started_at
    steps = _between(rng, 1, 3)
    for step in range(steps):
        started = clock + _between(rng, 50 * 1000, 3 * SECOND)
        ended = started + _between(rng, 1500 * 1000, 60 * SECOND)
        child_id = _uuid(rng)
        usage = _token_usage(rng, root.provider, _response_id(rng, root.provider), started)
        child = replace(
            root,
            id=child_id,
            started_at=started,
            ended_at=ended,
            thread_parent_id=records[-1].id,
            thread_root_id=root.id,
            token_usages=(usage,),
            user_prompts=(),
            tool_usages=(),
            model_thoughts=(),
        )
        # Every parent made the tool call its continuation answers.
        records.append(_with_client_call(rng, child) if step < steps - 1 else child)
        clock = ended
    return records


def _with_client_call(rng: random.Random, record: InterceptionRecord) -> InterceptionRecord:
    if record.tool_usages:
        return record
    tool = rng.choice(("read_file", "edit_file", "terminal", "grep"))
    at = record.ended_at or record.started_at
    response_id = record.token_usages[-1].provider_response_id if record.token_usages else ""
    call = ToolUsageRecord(
        id=_uuid(rng),
        provider_response_id=response_id,
        provider_tool_call_id="call_" + _alnum(rng, 22),
        server_url=None,
        tool=tool,
        input=_tool_input(rng, tool),
        injected=False,
        invocation_error=None,
        metadata={},
        created_at=at,
    )
    return replace(record, tool_usages=(call,))


def _awkward_session_id(rng: random.Random, client: str) -> str:
    """A client session id with characters a path segment may carry raw (`:@+=`) or must
    percent-encode (space)."""
    slug = (client.split()[0] if client else "script").lower()
    tag = f"{rng.getrandbits(32):08x}"
    forms = (
        f"{slug}:{tag}@ws-{rng.choice(cat.SYMBOLS).lower()} +{_between(rng, 1, 9)}=retry",
        f"{slug}:{tag}@{rng.choice(('dev', 'ci', 'laptop'))}",
        f"run {tag} + attempt={_between(rng, 1, 5)}",
        f"ses_{_alnum(rng, 12)}==",
    )
    return forms[_between(rng, 0, len(forms) - 1)]


def _with_error(rng: random.Random, record: InterceptionRecord) -> InterceptionRecord:
    """Some thread roots failed upstream; the API shows the root's error on the thread."""
    errors = cat.UPSTREAM_ERRORS.get(record.provider, ())
    if not errors or rng.random() >= 0.08:
        return record
    error_type, error_message = rng.choice(errors)
    return replace(record, error_type=error_type, error_message=error_message)


def _with_firewall(
    rng: random.Random, records: list[InterceptionRecord]
) -> list[InterceptionRecord]:
    """The workspace ran behind the agent firewall: each interception marks its own LLM call's
    sequence number, and the egress logged after it (some of it blocked) is its window."""
    firewall_id = _uuid(rng)
    sequence = _between(rng, 0, 40)
    locked_down = rng.random() < 0.3
    decorated = []
    for record in records:
        mark = sequence
        calls = _between(rng, 0, 6)
        end = record.ended_at or record.started_at + SECOND
        times = _spread(rng, record.started_at, end, calls + 1)
        llm = cat.LLM_HOSTS.get(record.provider, cat.LLM_HOSTS["openai"])
        host = llm.split("/")[2]
        logs = [_boundary_log(rng, firewall_id, mark, times[0], ("http", "POST", llm, host))]
        for offset in range(1, calls + 1):
            blocked = rng.random() < (0.5 if locked_down else 0.1)
            pool = [e for e in cat.EGRESS if (e[3] is None) == blocked]
            entry = rng.choice(pool)
            logs.append(_boundary_log(rng, firewall_id, mark + offset, times[offset], entry))
        sequence = mark + calls + 1
        decorated.append(
            replace(
                record,
                agent_firewall_session_id=firewall_id,
                agent_firewall_sequence_number=mark,
                boundary_logs=tuple(logs),
            )
        )
    return decorated


def _boundary_log(
    rng: random.Random,
    firewall_id: str,
    sequence: int,
    at: int,
    entry: tuple[str, str, str, str | None],
) -> BoundaryLogRecord:
    proto, method, detail, rule = entry
    if rule is not None and "=" not in rule:
        rule = f"domain={rule}"
    return BoundaryLogRecord(
        id=_uuid(rng),
        session_id=firewall_id,
        sequence_number=sequence,
        captured_at=at,
        created_at=at + _between(rng, 5 * 1000, 500 * 1000),
        proto=proto,
        method=method,
        detail=detail,
        allowed=rule is not None,
        matched_rule=rule,
    )
