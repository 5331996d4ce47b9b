"""The live watches through clients we did not write, in both eras: @grpc/grpc-js (with
@grpc/proto-loader reading the .proto files) and `buf curl` (through server reflection), each
seeing events for records appended to the stand-in while it watches.

The test appends a record once the hub's poll counters say the view's previous answer was taken
(its first, the baseline; then the one that saw the last record), never after a sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.support.grpc_face import RunningGrpc
from tests.support.grpc_live import ALICE, IDLE_S, TOKENS, Appender
from tests.support.node_tools import ensure_node_modules, require_executable
from tests.support.serve_process import poll_until

PACKAGE_DIR = Path(__file__).resolve().parent
SERVICE = "aibridge.v1.SessionService"
RUN_S = 90.0


def _json_values(text: str) -> list[Any]:
    """The JSON values printed one after another (buf curl prints each message indented)."""
    decoder = json.JSONDecoder()
    values, at = [], 0
    while (at := _skip_space(text, at)) < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _started(watch: RunningGrpc, process: subprocess.Popen[str], view: str, before: float) -> float:
    """Wait for the client's stream to be open and its view's first poll answered."""
    poll_until(lambda: process.poll() is not None or watch.live_counts()[0] == 1, "stream open")
    assert process.poll() is None, process.communicate(timeout=RUN_S)
    return watch.wait_polls(view, before)


def test_grpc_js_watches_sessions_and_a_timeline(watch: RunningGrpc, appender: Appender) -> None:
    node = require_executable("node", "install Node.js 20+")
    ensure_node_modules(PACKAGE_DIR)
    session_id = "live-grpc-js"
    before = watch.polls("sessions")
    process = subprocess.Popen(
        [node, "grpc_js_watch.mjs", watch.address, TOKENS["alice"], session_id],
        cwd=PACKAGE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _started(watch, process, "sessions", before)
        changed = watch.polls("sessions", "changed")
        thread_id = appender.thread(ALICE, session_id)
        # The poll that saw the new session (ADDED sent), then an agentic action (UPDATED).
        watch.wait_polls("sessions", changed, "changed")
        appender.action(ALICE, session_id, thread_id)
        stdout, stderr = process.communicate(timeout=RUN_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    out = json.loads(stdout)
    kinds = [event["kind"] for event in out["sessions"]]
    assert kinds == [
        "SESSION_EVENT_KIND_ADDED",
        "SESSION_EVENT_KIND_UPDATED",
        "SESSION_EVENT_KIND_ENDED",
    ], out
    assert all(event["observed"] and event["thread_count"] == 1 for event in out["sessions"])
    assert out["sessions_status"] == {"code": "CANCELLED", "reason": None}
    # The session is idle by now: its existing thread, ENDED at once, then OK.
    assert out["timeline"] == [
        {"kind": "TIMELINE_EVENT_KIND_EXISTING", "session_id": session_id, "thread_id": thread_id},
        {"kind": "TIMELINE_EVENT_KIND_ENDED", "session_id": session_id, "thread_id": None},
    ]
    assert out["timeline_status"] == {"code": "OK", "reason": None}
    assert out["unknown_status"] == {"code": "NOT_FOUND", "reason": "NOT_FOUND"}


def test_buf_curl_watches_a_timeline_to_its_end(watch: RunningGrpc, appender: Appender) -> None:
    node_modules = ensure_node_modules(PACKAGE_DIR)
    require_executable("node", "install Node.js 20+")
    session_id = "live-buf-curl"
    first = appender.thread(ALICE, session_id)
    before = watch.polls("timeline")
    body = json.dumps({"sessionId": session_id, "includeExisting": True})
    process = subprocess.Popen(
        [
            str(node_modules / ".bin" / "buf"),
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "-H",
            f"coder-session-token: {TOKENS['alice']}",
            "-d",
            body,
            f"http://{watch.address}/{SERVICE}/WatchSession",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # `.bin/buf` is node's shim running the buf binary: a group of its own, killed whole.
        start_new_session=True,
    )
    try:
        _started(watch, process, "timeline", before)
        second = appender.thread(ALICE, session_id)
        stdout, stderr = process.communicate(timeout=RUN_S + IDLE_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, stderr  # the call completed (OK) after ENDED
    events = _json_values(stdout)
    assert [(e["kind"], e.get("thread", {}).get("threadId")) for e in events] == [
        ("TIMELINE_EVENT_KIND_EXISTING", first),
        ("TIMELINE_EVENT_KIND_ADDED", second),
        ("TIMELINE_EVENT_KIND_ENDED", None),
    ]
    assert all(e["session"]["sessionId"] == session_id and e["observeTime"] for e in events)
