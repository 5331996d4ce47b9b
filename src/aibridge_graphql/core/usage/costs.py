"""The cost of each upstream usage shape, preferring Coder's own figure where it reports one.

Newest Coder releases price AI Gateway usage themselves (`cost_micros`, micro-dollars). Where an
upstream object carries an integer `cost_micros`, that figure is the cost (`source: coder`);
otherwise the gateway's `Pricer` prices the tokens. The upstream models gain the field when the
era work adds it; until then every cost here is the gateway's.
"""

from __future__ import annotations

from typing import Any

from aibridge_graphql.core.errors import UPSTREAM_CALL_BUDGET_EXCEEDED, GatewayError
from aibridge_graphql.core.loaders import THREADS_LIMIT_MAX, Loaders
from aibridge_graphql.core.pricing import Cost, Pricer, TokenCounts
from aibridge_graphql.upstream import models as m

# A session of more than 200 x 50 threads is priced as far as this walk goes, then the
# `CallBudget` or this bound stops it (the field fails rather than returning a partial sum).
MAX_THREAD_PAGES = 50


class SessionTooLarge(GatewayError):
    """A session has more thread pages than one cost lookup walks."""

    code = UPSTREAM_CALL_BUDGET_EXCEEDED


def coder_cost(usage: Any) -> Cost | None:
    """Coder's own price of a usage (`cost_micros`), or None when it reports none."""
    micros = getattr(usage, "cost_micros", None)
    if isinstance(micros, int) and not isinstance(micros, bool) and micros >= 0:
        return Cost.from_coder(micros, TokenCounts.of(usage))
    return None


def token_usage_cost(pricer: Pricer, usage: m.TokenUsage, interception: m.Interception) -> Cost:
    """One token usage row of an interception."""
    return coder_cost(usage) or pricer.price_token_usage(usage, interception)


def interception_cost(pricer: Pricer, interception: m.Interception) -> Cost:
    """The sum of an interception's token usages."""
    return Cost.sum(token_usage_cost(pricer, u, interception) for u in interception.token_usages)


def action_cost(pricer: Pricer, action: m.AgenticAction, thread: m.Thread) -> Cost:
    """One agentic action of a thread."""
    return coder_cost(action.token_usage) or pricer.price_action(action, thread)


def remainder_cost(pricer: Pricer, thread: m.Thread) -> Cost | None:
    """The thread's tokens outside its actions (interceptions without tool calls), if any."""
    return pricer.price_remainder(thread)


def thread_cost(pricer: Pricer, thread: m.Thread) -> Cost:
    """A thread: Coder's figure for the whole thread if it gives one, else actions + remainder."""
    whole = coder_cost(thread.token_usage)
    if whole is not None:
        return whole
    actions = Cost.sum(action_cost(pricer, a, thread) for a in thread.agentic_actions)
    remainder = remainder_cost(pricer, thread)
    return actions if remainder is None else actions + remainder


async def session_threads(loaders: Loaders, session_id: str) -> list[m.Thread]:
    """Every thread of a session (`GET /sessions/{id}` pages of 200, bounded)."""
    threads: list[m.Thread] = []
    after = None
    for _ in range(MAX_THREAD_PAGES):
        page = await loaders.threads_page(session_id, limit=THREADS_LIMIT_MAX, after_id=after)
        threads.extend(page.threads)
        if len(page.threads) < THREADS_LIMIT_MAX:
            return threads
        after = page.threads[-1].id
    raise SessionTooLarge(
        f"Session {session_id!r} has more than {MAX_THREAD_PAGES * THREADS_LIMIT_MAX} threads."
    )


async def session_cost(loaders: Loaders, session_id: str) -> Cost:
    """A whole session: the sum of its threads' costs (all of them, whatever a list filtered)."""
    pricer = loaders.pricer
    return Cost.sum(thread_cost(pricer, t) for t in await session_threads(loaders, session_id))
