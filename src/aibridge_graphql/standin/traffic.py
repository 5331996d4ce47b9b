"""Live traffic for the stand-in: interceptions appended as Coder's data plane records them.

Coder's data plane inserts an interception when a request starts, without `ended_at` (in
flight: no route serves it), records its prompt, token and tool usages, and sets `ended_at`
when the response ends (`InsertAIBridgeInterception`, `UpdateAIBridgeInterceptionEnded` in
coderd/database/queries/aibridge.sql). A continuation's parent is the interception whose client
tool call it answers. Coder stores no end of a session: a session is *running* while one of its
interceptions is in flight, its `ended_at` is the latest end of its interceptions, and once
nothing is in flight and nothing new comes it has *ended*.

Every value is drawn from the `random.Random` and the clock passed in, so the same database,
seed value and steps give the same records. The functions below take a connection and never
commit; `Traffic` owns a connection and runs each call as one numbered step in its own
transaction (the step counter and clock live in the database, so several processes, or
restarts, continue one sequence) and prices the appended token usage for the AI Gateway era's
spend, as `prepare_spend` prices the seed's.
"""

from __future__ import annotations

import enum
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from aibridge_graphql.standin import catalogue as cat
from aibridge_graphql.standin.records import (
    InterceptionRecord,
    UserRecord,
    finish_interception,
    insert_interceptions,
)
from aibridge_graphql.standin.seed import (
    SECOND,
    USERS,
    SeedUser,
    _between,
    _boundary_log,
    _client_session_id,
    _credential,
    _interception_metadata,
    _prompt,
    _spread,
    _Thread,
    _uuid,
    _with_error,
)
from aibridge_graphql.standin.spend_data import price_token_usages

T = TypeVar("T")
ThreadChoice = Literal["auto", "continue", "new"]
THREAD_CHOICES: tuple[ThreadChoice, ...] = ("auto", "continue", "new")

# Simulated seconds between two ticks (the live mode passes its interval).
TICK_SECONDS = 5.0
# Per tick, each running session's request is still streaming, or the session ends, or it
# sends its next request (the rest); then a new session may start, up to MAX_RUNNING at once.
WAIT_CHANCE = 0.3
END_CHANCE = 0.15
START_CHANCE = 0.6
MAX_RUNNING = 8
# An appended interception makes client tool calls (so the next request continues its thread)
# this often, when its client has tools.
CONTINUE_CHANCE = 0.6
# As seed.py draws them: request durations, and the behind-the-firewall share of sessions.
MIN_DURATION = 1500 * 1000
MAX_DURATION = 90 * SECOND
FIREWALL_CHANCE = 0.3
BLOCKED_CHANCE = 0.1

STATE_SQL = """
CREATE TABLE IF NOT EXISTS traffic_state (
    seed_value  INTEGER PRIMARY KEY,
    next_step   INTEGER NOT NULL,
    clock       INTEGER NOT NULL
);
"""

_COLUMNS = (
    "id, api_key_id, initiator_id, provider, provider_name, model, client, started_at, "
    "ended_at, client_session_id, thread_parent_id, thread_root_id, credential_kind, "
    "credential_hint, agent_firewall_session_id, agent_firewall_sequence_number"
)
_FALLBACK_TOOLS = ("read_file", "edit_file", "terminal", "grep")
_WEIGHTS = {username: weight for username, _, _, weight in USERS}


class Draw(enum.Enum):
    """A value the generator draws (the default of `start_session`'s choices)."""

    DRAW = "draw"


DRAW = Draw.DRAW


class UnknownSession(LookupError):
    """No interception has this session id."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session with id {session_id!r}")
        self.session_id = session_id


class CannotGrow(ValueError):
    """The session cannot take the interception asked for (its client sends no session id)."""


@dataclass(frozen=True)
class Appended:
    """An interception appended to a session (a new one, or a running one)."""

    session_id: str
    interception_id: str
    thread_id: str  # the thread root's id; the interception's own for a new thread
    initiator_id: str
    new_thread: bool
    new_session: bool
    in_flight: bool  # True: not served until it ends (end_session, or a later tick)
    started_at: int
    ended_at: int | None
    # In-flight interceptions of the session ended first (the request before this one).
    finished: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ended:
    """A session whose in-flight interceptions were ended: nothing of it is running now."""

    session_id: str
    finished: tuple[str, ...]
    ended_at: int | None  # the session's `ended_at` as served; None if nothing of it ended


@dataclass(frozen=True)
class TickReport:
    """What one tick did, at simulated time `at` (microseconds)."""

    at: int
    started: tuple[Appended, ...] = ()  # new sessions, their first request in flight
    extended: tuple[Appended, ...] = ()  # running sessions' next requests (in flight)
    ended: tuple[Ended, ...] = ()

    @property
    def finished(self) -> tuple[str, ...]:
        """Interceptions that ended in this tick, so the API serves them from now on."""
        return tuple(i for r in self.extended for i in r.finished) + tuple(
            i for e in self.ended for i in e.finished
        )


def traffic_rng(seed_value: int, step: int) -> random.Random:
    """The RNG of one step: independent of every other step's (a str seed is SHA-512'd)."""
    return random.Random(f"{seed_value}/traffic/{step}")


# --- reading the database -------------------------------------------------------------------


def latest_time(conn: sqlite3.Connection) -> int:
    """The latest start or end of any interception (0 on an empty database)."""
    row = conn.execute(
        "SELECT MAX(COALESCE(MAX(started_at), 0), COALESCE(MAX(ended_at), 0)) FROM interceptions"
    ).fetchone()
    return int(row[0])


def running_sessions(conn: sqlite3.Connection) -> list[str]:
    """Ids of the sessions with an interception in flight, oldest request first."""
    rows = conn.execute(
        "SELECT session_id FROM interceptions WHERE ended_at IS NULL "
        "GROUP BY session_id ORDER BY MIN(started_at), session_id"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _record(row: tuple[Any, ...]) -> InterceptionRecord:
    """An interception row (`_COLUMNS`) as a record without child rows: what continuing it
    needs."""
    (id_, key, initiator, provider, name, model, client, started, ended, csid, parent, root,
     kind, hint, fw_id, fw_seq) = row  # fmt: skip
    return InterceptionRecord(
        id=id_,
        api_key_id=key,
        initiator_id=initiator,
        provider=provider,
        provider_name=name,
        model=model,
        client=client,
        metadata=None,
        started_at=started,
        ended_at=ended,
        client_session_id=csid,
        thread_parent_id=parent,
        thread_root_id=root,
        credential_kind=kind,
        credential_hint=hint,
        agent_firewall_session_id=fw_id,
        agent_firewall_sequence_number=fw_seq,
    )


def _session(conn: sqlite3.Connection, session_id: str) -> list[InterceptionRecord]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM interceptions WHERE session_id = ? "  # noqa: S608
        "ORDER BY started_at, id",
        (session_id,),
    ).fetchall()
    if not rows:
        raise UnknownSession(session_id)
    return [_record(row) for row in rows]


def _last_child_time(conn: sqlite3.Connection, interception_id: str) -> int:
    row = conn.execute(
        "SELECT MAX(at) FROM (SELECT MAX(created_at) AS at FROM token_usages "
        "WHERE interception_id = ?1 UNION ALL SELECT MAX(created_at) FROM user_prompts "
        "WHERE interception_id = ?1 UNION ALL SELECT MAX(created_at) FROM tool_usages "
        "WHERE interception_id = ?1 UNION ALL SELECT MAX(created_at) FROM model_thoughts "
        "WHERE interception_id = ?1)",
        (interception_id,),
    ).fetchone()
    return 0 if row[0] is None else int(row[0])


def _makes_client_call(conn: sqlite3.Connection, interception_id: str) -> bool:
    """Whether the interception asked the client to run a tool (its answer continues the
    thread: Coder links a continuation through that tool call's id)."""
    row = conn.execute(
        "SELECT 1 FROM tool_usages WHERE interception_id = ? AND NOT injected "
        "AND provider_tool_call_id IS NOT NULL LIMIT 1",
        (interception_id,),
    ).fetchone()
    return row is not None


def _users(conn: sqlite3.Connection, where: str = "1", *params: object) -> list[SeedUser]:
    """Users with their first API key (a token shape without the secret; "" when none)."""
    rows = conn.execute(
        "SELECT u.id, u.username, u.email, u.name, u.avatar_url, u.role, "  # noqa: S608
        "(SELECT k.id FROM api_keys AS k WHERE k.user_id = u.id ORDER BY k.id LIMIT 1) "
        f"FROM users AS u WHERE {where} ORDER BY u.username, u.id",
        params,
    ).fetchall()
    return [
        SeedUser(
            UserRecord(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5])),
            "" if r[6] is None else f"{r[6]}-",
            _WEIGHTS.get(str(r[1]), 1),
        )
        for r in rows
    ]


def _user(conn: sqlite3.Connection, user: str) -> SeedUser:
    """A user by id or username (case-insensitive, as Coder matches usernames)."""
    found = _users(conn, "u.id = ? OR lower(u.username) = lower(?)", user, user)
    if not found:
        raise ValueError(f"no user with id or username {user!r}")
    return found[0]


def _profile(client: str | None) -> cat.ClientProfile:
    """How the named client behaves; a client the catalogue does not know gets generic tools."""
    for profile in cat.CLIENTS:
        if profile.name == client:
            return profile
    return cat.ClientProfile(client, 1, cat.ANY_PROVIDER, _FALLBACK_TOOLS, True)


# --- building records -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """What one new interception is: whose, through which provider, where in its thread."""

    user: SeedUser
    profile: cat.ClientProfile
    provider: str
    provider_name: str
    model: str
    credential: tuple[str, str]
    session_key: str | None
    root_id: str | None = None  # None: a thread root
    parent_id: str | None = None
    api_key_id: str | None = None


def _key_id(rng: random.Random, user: SeedUser) -> str | None:
    # As the seed: a few requests carry no API key id.
    return (user.key_id or None) if rng.random() < 0.97 else None


def _gap(rng: random.Random, low: int, high: int, longest: int) -> int:
    """A pause of [low, high], shortened to fit half of `longest`."""
    high = min(high, longest // 2)
    return _between(rng, min(low, high), high)


def _interception(
    rng: random.Random, request: _Request, started: int, *, in_flight: bool, longest: int
) -> InterceptionRecord:
    """One interception with its child rows, drawn the way seed.py draws them, lasting at most
    `longest`; a thread root always carries its user's prompt (a new thread is a prompt)."""
    root = request.root_id is None
    thread = _Thread(rng, request.user, request.profile, request.provider_name, request.session_key)
    ended = started + _between(rng, MIN_DURATION, max(MIN_DURATION, longest))
    continues = bool(request.profile.tools) and rng.random() < CONTINUE_CHANCE
    interception_id = _uuid(rng)
    rows = thread._rows(request.provider, request.model, started, ended, root, continues)
    prompts = rows.user_prompts
    if root and not prompts:
        prompts = (_prompt(rng, rows.token_usages[0].provider_response_id, started),)
    kind, hint = request.credential
    record = InterceptionRecord(
        id=interception_id,
        api_key_id=_key_id(rng, request.user) if root else request.api_key_id,
        initiator_id=request.user.record.id,
        provider=request.provider,
        provider_name=request.provider_name,
        model=request.model,
        client=request.profile.name,
        metadata=_interception_metadata(rng),
        started_at=started,
        ended_at=None if in_flight else ended,
        client_session_id=request.session_key,
        thread_parent_id=request.parent_id,
        thread_root_id=request.root_id,
        credential_kind=kind,
        credential_hint=hint,
        token_usages=rows.token_usages,
        user_prompts=prompts,
        tool_usages=rows.tool_usages,
        model_thoughts=rows.model_thoughts,
    )
    return _with_error(rng, record) if root else record


def _behind_firewall(
    rng: random.Random, record: InterceptionRecord, firewall_id: str, mark: int
) -> InterceptionRecord:
    """The interception's LLM call logged at sequence `mark`, and the egress after it (its
    window), as seed.py's `_with_firewall` logs them."""
    calls = _between(rng, 0, 6)
    end = record.ended_at or max(
        [record.started_at + SECOND, *(t.created_at for t in record.token_usages)]
    )
    times = _spread(rng, record.started_at, end, calls + 1)
    llm = cat.LLM_HOSTS.get(record.provider, cat.LLM_HOSTS["openai"])
    own_call = ("http", "POST", llm, llm.split("/")[2])
    logs = [_boundary_log(rng, firewall_id, mark, times[0], own_call)]
    for offset in range(1, calls + 1):
        blocked = rng.random() < BLOCKED_CHANCE
        entry = rng.choice([e for e in cat.EGRESS if (e[3] is None) == blocked])
        logs.append(_boundary_log(rng, firewall_id, mark + offset, times[offset], entry))
    return replace(
        record,
        agent_firewall_session_id=firewall_id,
        agent_firewall_sequence_number=mark,
        boundary_logs=tuple(logs),
    )


def _next_mark(conn: sqlite3.Connection, firewall_id: str) -> int:
    """The firewall session's next sequence number."""
    row = conn.execute(
        "SELECT MAX(COALESCE((SELECT MAX(sequence_number) FROM boundary_logs "
        "WHERE session_id = ?1), -1), COALESCE((SELECT MAX(agent_firewall_sequence_number) "
        "FROM interceptions WHERE agent_firewall_session_id = ?1), -1))",
        (firewall_id,),
    ).fetchone()
    return int(row[0]) + 1


def _write(conn: sqlite3.Connection, record: InterceptionRecord) -> None:
    """Insert the record and price its token usage where the database keeps spend."""
    insert_interceptions(conn, [record])
    keeps_spend = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'token_usage_costs'"
    ).fetchone()
    if keeps_spend is not None:
        price_token_usages(conn, [record.id])


def _finish(
    conn: sqlite3.Connection, records: list[InterceptionRecord], now: int
) -> tuple[list[InterceptionRecord], tuple[str, ...]]:
    """End the in-flight interceptions at `now` (not before what they recorded)."""
    finished = []
    updated = []
    for record in records:
        if record.ended_at is None:
            ended = max(now, record.started_at + MIN_DURATION, _last_child_time(conn, record.id))
            finish_interception(conn, record.id, ended)
            record = replace(record, ended_at=ended)
            finished.append(record.id)
        updated.append(record)
    return updated, tuple(finished)


# --- the operations (no commit) -------------------------------------------------------------


def append_interception(
    conn: sqlite3.Connection,
    rng: random.Random,
    session_id: str,
    *,
    now: int,
    thread: ThreadChoice = "auto",
    in_flight: bool = False,
    longest: int = MAX_DURATION,
) -> Appended:
    """Append the session's next request: its in-flight ones end first (at `now`), then one
    interception starts just after, ended (served at once) unless `in_flight`. It lasts at
    most `longest` microseconds, and starts at most half of that after the one before.

    `thread`: "continue" extends the latest thread (a child of its latest interception);
    "new" starts a thread (a root with a prompt; needs a client session id, else it would be a
    session of its own: CannotGrow); "auto" continues when the latest interception made a
    client tool call, else starts a thread, else raises CannotGrow. UnknownSession when no
    interception has this session id.
    """
    if thread not in THREAD_CHOICES:
        raise ValueError(f"thread must be one of {THREAD_CHOICES}, not {thread!r}")
    records = _session(conn, session_id)
    latest = records[-1]
    session_key = next((r.client_session_id for r in records if r.client_session_id), None)
    if thread == "auto":
        if _makes_client_call(conn, latest.id):
            thread = "continue"
        elif session_key is not None:
            thread = "new"
        else:
            raise CannotGrow(
                f"session {session_id!r} cannot grow: its last request made no client tool "
                "call and its client sends no session id (a new prompt is a new session)"
            )
    if thread == "new" and session_key is None:
        raise CannotGrow(
            f"session {session_id!r} has no client session id: a new thread would be a "
            "session of its own (start_session)"
        )
    user = _user(conn, latest.initiator_id)
    profile = _profile(latest.client)
    # Checked first, written now: a refused request leaves the session as it was.
    records, finished = _finish(conn, records, now)
    latest = records[-1]
    base = max(now, *(r.ended_at or r.started_at for r in records))
    if thread == "continue":
        root_id = latest.thread_root_id or latest.id
        root = next(r for r in records if r.id == root_id)
        request = _Request(
            user, profile, root.provider, root.provider_name, root.model,
            (root.credential_kind, root.credential_hint), root.client_session_id,
            root_id=root.id, parent_id=latest.id, api_key_id=root.api_key_id,
        )  # fmt: skip
        started = base + _gap(rng, 50 * 1000, 3 * SECOND, longest)
    else:
        request = _thread_request(rng, user, profile, latest, session_key)
        started = base + _gap(rng, 2 * SECOND, 20 * SECOND, longest)
    record = _interception(rng, request, started, in_flight=in_flight, longest=longest)
    firewall_id = next(
        (r.agent_firewall_session_id for r in reversed(records) if r.agent_firewall_session_id),
        None,
    )
    if firewall_id is not None:
        record = _behind_firewall(rng, record, firewall_id, _next_mark(conn, firewall_id))
    _write(conn, record)
    return Appended(
        session_id=record.session_id,
        interception_id=record.id,
        thread_id=record.thread_root_id or record.id,
        initiator_id=record.initiator_id,
        new_thread=record.thread_root_id is None,
        new_session=False,
        in_flight=in_flight,
        started_at=record.started_at,
        ended_at=record.ended_at,
        finished=finished,
    )


def _thread_request(
    rng: random.Random,
    user: SeedUser,
    profile: cat.ClientProfile,
    latest: InterceptionRecord,
    session_key: str | None,
) -> _Request:
    """A new thread of a session: mostly the provider of its latest request (clients with
    several providers switch now and then, as in the seed), a model of it, a credential."""
    provider_name = latest.provider_name
    if len(profile.provider_names) > 2 and rng.random() < 0.2:
        provider_name = rng.choice(profile.provider_names)
    if provider_name not in cat.MODELS:  # imported data: keep what the session used
        return _Request(
            user, profile, latest.provider, provider_name, latest.model, _credential(rng),
            session_key,
        )  # fmt: skip
    return _Request(
        user, profile, cat.RUNTIME_PROVIDER[provider_name], provider_name,
        _model(rng, provider_name), _credential(rng), session_key,
    )  # fmt: skip


def _model(rng: random.Random, provider_name: str) -> str:
    models = cat.MODELS[provider_name]
    return models[0] if rng.random() < 0.7 else rng.choice(models)


def start_session(
    conn: sqlite3.Connection,
    rng: random.Random,
    *,
    now: int,
    user: str,
    client: str | Draw | None = DRAW,
    provider_name: str | Draw = DRAW,
    client_session_id: str | Draw | None = DRAW,
    in_flight: bool = False,
    longest: int = MAX_DURATION,
) -> Appended:
    """A new session of `user` (id or username): one thread root with a prompt, at `now`;
    ended (served at once) unless `in_flight`; lasting at most `longest` microseconds.

    `client` is a client name (None: a script, no client); `provider_name` a configured
    provider the catalogue knows; `client_session_id` the client's id (None: none, so the
    session id is the interception's). Each is drawn as the seed draws it when not given.
    """
    initiator = _user(conn, user)
    if isinstance(client, Draw):
        profile = rng.choices(cat.CLIENTS, weights=[c.weight for c in cat.CLIENTS])[0]
    else:
        profile = _profile(client)
    if isinstance(provider_name, Draw):
        provider_name = rng.choice(profile.provider_names)
    elif provider_name not in cat.MODELS:
        raise ValueError(f"unknown provider name {provider_name!r}; known: {sorted(cat.MODELS)}")
    if isinstance(client_session_id, Draw):
        multi = profile.sends_session_id and rng.random() < 0.85
        client_session_id = _client_session_id(rng, profile) if multi else None
    elif client_session_id is not None:
        if not client_session_id:
            raise ValueError("client_session_id must not be empty (None: no session id)")
        taken = conn.execute(
            "SELECT 1 FROM interceptions WHERE session_id = ? LIMIT 1", (client_session_id,)
        ).fetchone()
        if taken is not None:
            raise ValueError(
                f"session {client_session_id!r} exists: append_interception(thread='new') "
                "adds a thread to it"
            )
    request = _Request(
        initiator, profile, cat.RUNTIME_PROVIDER[provider_name], provider_name,
        _model(rng, provider_name), _credential(rng), client_session_id,
    )  # fmt: skip
    record = _interception(rng, request, now, in_flight=in_flight, longest=longest)
    if record.client is not None and rng.random() < FIREWALL_CHANCE:
        record = _behind_firewall(rng, record, _uuid(rng), _between(rng, 0, 40))
    _write(conn, record)
    return Appended(
        session_id=record.session_id,
        interception_id=record.id,
        thread_id=record.id,
        initiator_id=record.initiator_id,
        new_thread=True,
        new_session=True,
        in_flight=in_flight,
        started_at=record.started_at,
        ended_at=record.ended_at,
    )


def end_session(conn: sqlite3.Connection, session_id: str, *, now: int) -> Ended:
    """End the session's in-flight interceptions at `now` (not before what they recorded):
    nothing of it runs any more, so the generator leaves it alone. UnknownSession when no
    interception has this id; a session with nothing in flight stays as it was."""
    records, finished = _finish(conn, _session(conn, session_id), now)
    ends = [r.ended_at for r in records if r.ended_at is not None]
    return Ended(
        session_id=session_id,
        finished=finished,
        ended_at=max(ends) if ends else None,
    )


def tick(
    conn: sqlite3.Connection,
    rng: random.Random,
    *,
    now: int,
    span: int = int(TICK_SECONDS * SECOND),
    max_running: int = MAX_RUNNING,
) -> TickReport:
    """One tick of the data plane at `now`: each running session waits on its request, ends,
    or sends its next one (which ends the one before; a session that cannot grow ends); then a
    new session may start. New requests start in flight, the API serves them once they end;
    they last at most half of `span` (the time to the next tick), so each ends before the next
    tick and simulated time keeps its pace."""
    longest = max(span // 2, MIN_DURATION)
    started: list[Appended] = []
    extended: list[Appended] = []
    ended: list[Ended] = []
    running = running_sessions(conn)
    for session_id in running:
        roll = rng.random()
        if roll < WAIT_CHANCE:
            continue
        if roll < WAIT_CHANCE + END_CHANCE:
            ended.append(end_session(conn, session_id, now=now))
            continue
        try:
            extended.append(
                append_interception(conn, rng, session_id, now=now, in_flight=True, longest=longest)
            )
        except CannotGrow:
            ended.append(end_session(conn, session_id, now=now))
    users = [u for u in _users(conn) if u.token]  # who can sign in (not imported or system)
    if users and len(running) - len(ended) < max_running and rng.random() < START_CHANCE:
        user = rng.choices(users, weights=[u.weight for u in users])[0]
        started.append(
            start_session(conn, rng, now=now, user=user.record.id, in_flight=True, longest=longest)
        )
    return TickReport(now, tuple(started), tuple(extended), tuple(ended))


# --- one step at a time, committed ------------------------------------------------------------


@dataclass
class Traffic:
    """Appends traffic to the stand-in database at `path`, committed, one step per call.

    Step n of seed value s draws from `traffic_rng(s, n)`; steps and the simulated clock are
    kept in the database (`traffic_state`), so another process appending to the same file
    continues the sequence. Each call's clock is a moment after everything recorded so far
    (a tick: `tick_seconds` after). Use one instance from one thread at a time.
    """

    path: str | Path
    seed_value: int = 1
    tick_seconds: float = TICK_SECONDS
    _conn: sqlite3.Connection = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tick_seconds <= 0:
            raise ValueError("tick_seconds must be positive")
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'interceptions'"
            ).fetchone()
            if found is None:
                raise ValueError(f"{self.path}: not a stand-in database (no interceptions)")
            conn.executescript(STATE_SQL)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @property
    def next_step(self) -> int:
        """The step the next call takes."""
        row = self._conn.execute(
            "SELECT next_step FROM traffic_state WHERE seed_value = ?", (self.seed_value,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def running_sessions(self) -> list[str]:
        """Ids of the sessions with a request in flight."""
        return running_sessions(self._conn)

    def append_interception(
        self, session_id: str, *, thread: ThreadChoice = "auto", in_flight: bool = False
    ) -> Appended:
        """`append_interception` (module function) as one committed step."""
        return self._step(
            lambda rng, now: append_interception(
                self._conn, rng, session_id, now=now, thread=thread, in_flight=in_flight
            ),
        )

    def start_session(
        self,
        user: str,
        *,
        client: str | Draw | None = DRAW,
        provider_name: str | Draw = DRAW,
        client_session_id: str | Draw | None = DRAW,
        in_flight: bool = False,
    ) -> Appended:
        """`start_session` (module function) as one committed step."""
        return self._step(
            lambda rng, now: start_session(
                self._conn, rng, now=now, user=user, client=client,
                provider_name=provider_name, client_session_id=client_session_id,
                in_flight=in_flight,
            ),
        )  # fmt: skip

    def end_session(self, session_id: str) -> Ended:
        """`end_session` (module function) as one committed step."""
        return self._step(
            lambda _, now: end_session(self._conn, session_id, now=now),
        )

    def tick(self) -> TickReport:
        """One tick, `tick_seconds` of simulated time after the last step, committed."""
        span = int(self.tick_seconds * SECOND)
        return self._step(
            lambda rng, now: tick(self._conn, rng, now=now, span=span),
            advance=span,
        )

    def run(self, ticks: int) -> list[TickReport]:
        """`ticks` ticks, each committed."""
        return [self.tick() for _ in range(ticks)]

    def _step(self, work: Callable[[random.Random, int], T], advance: int | None = None) -> T:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")  # the step counter is read and bumped atomically
        try:
            state = conn.execute(
                "SELECT next_step, clock FROM traffic_state WHERE seed_value = ?",
                (self.seed_value,),
            ).fetchone()
            step, clock = (0, 0) if state is None else (int(state[0]), int(state[1]))
            rng = traffic_rng(self.seed_value, step)
            latest = latest_time(conn)
            # After the last step and whatever else was recorded since (a seed, an import,
            # another seed value's traffic); a tick keeps its pace: `advance` after the last.
            if advance is None:
                now = max(clock, latest) + _between(rng, SECOND, 5 * SECOND)
            else:
                now = max(clock + advance, latest + 1)
            result = work(rng, now)
            conn.execute(
                "INSERT INTO traffic_state (seed_value, next_step, clock) VALUES (?, ?, ?) "
                "ON CONFLICT (seed_value) DO UPDATE SET next_step = excluded.next_step, "
                "clock = excluded.clock",
                (self.seed_value, step + 1, now),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
