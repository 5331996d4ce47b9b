"""The benchmark's replay upstream (`python -m bench.replay`): each distinct request, per caller
token, reaches the real upstream once, later ones are answered from memory byte for byte, and the
request counter counts every answer (the peer benchmark's upstream-calls column relies on it)."""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.support.servers import run_app_in_thread

REPO = Path(__file__).resolve().parents[2]
READY_WITHIN_S = 30.0


def upstream_app(hits: Counter[str]) -> web.Application:
    """An upstream that counts its hits and shows which token asked (and 404s on /missing)."""

    async def handle(request: web.Request) -> web.Response:
        hits[request.path_qs] += 1
        if request.path == "/missing":
            return web.json_response({"message": "not found"}, status=404)
        token = request.headers.get("Coder-Session-Token", "")
        return web.json_response({"path": request.path_qs, "token": token})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


@pytest.fixture
def replay() -> Iterator[tuple[str, Counter[str]]]:
    hits: Counter[str] = Counter()
    with run_app_in_thread(lambda: upstream_app(hits)) as upstream:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.replay", "--upstream", upstream],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            # The replay prints one line once it listens; wait for it, bounded.
            readable, _, _ = select.select([proc.stdout], [], [], READY_WITHIN_S)
            line = proc.stdout.readline() if readable else ""
            assert "listening on " in line, f"replay did not start: {line!r}"
            yield line.split("listening on ")[1].strip(), hits
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_each_request_reaches_upstream_once_per_token(replay: tuple[str, Counter[str]]) -> None:
    url, hits = replay
    with httpx.Client(base_url=url, timeout=10) as client:
        a = {"Coder-Session-Token": "token-a"}
        b = {"Coder-Session-Token": "token-b"}
        first = client.get("/api/x?limit=3", headers=a)
        again = [client.get("/api/x?limit=3", headers=a) for _ in range(5)]
        other_query = client.get("/api/x?limit=4", headers=a)
        other_token = client.get("/api/x?limit=3", headers=b)
        missing = [client.get("/missing", headers=a) for _ in range(2)]
        calls = client.get("/__replay/calls").json()["calls"]

    assert first.status_code == 200
    assert first.json() == {"path": "/api/x?limit=3", "token": "token-a"}
    assert all(r.content == first.content and r.status_code == 200 for r in again)
    assert other_query.json()["path"] == "/api/x?limit=4"
    # Another caller's answer is fetched with that caller's token, never served from A's.
    assert other_token.json()["token"] == "token-b"
    assert [r.status_code for r in missing] == [404, 404]  # errors are replayed as sent
    assert hits == Counter({"/api/x?limit=3": 2, "/api/x?limit=4": 1, "/missing": 1})
    assert calls == 10  # every answer counts, from memory or not; the counter itself does not


async def test_concurrent_first_requests_share_one_fetch(
    replay: tuple[str, Counter[str]],
) -> None:
    url, hits = replay
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        responses = await asyncio.gather(*(client.get("/api/burst") for _ in range(8)))
    assert {r.status_code for r in responses} == {200}
    assert hits["/api/burst"] == 1
