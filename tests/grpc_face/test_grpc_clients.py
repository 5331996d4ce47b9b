"""Clients we did not write: `buf curl` through server reflection and @grpc/grpc-js with
@grpc/proto-loader, each paging sessions, getting a session with threads and checking errors;
the results equal the REST API's."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.rpc import error_details_pb2

from aibridge_graphql.standin.eras import ApiEra
from tests.grpc_face.test_grpc_face import rest
from tests.support.grpc_face import RunningGrpc
from tests.support.node_tools import ensure_node_modules, require_executable, run_node_bin

PACKAGE_DIR = Path(__file__).resolve().parent
SERVICE = "aibridge.v1.SessionService"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return ensure_node_modules(PACKAGE_DIR)


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def buf_curl(
    node_modules: Path, face: RunningGrpc, method: str, body: dict[str, Any], token: str | None
) -> tuple[int, Any, str]:
    """`buf curl` one call; (exit code, parsed JSON output or None, stderr)."""
    args = ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", json.dumps(body)]
    if token is not None:
        args += ["-H", f"coder-session-token: {token}"]
    args.append(f"http://{face.address}/{method}")
    result = run_node_bin(node_modules, "buf", *args)
    try:
        parsed = json.loads(result.stdout or result.stderr)
    except ValueError:
        parsed = None
    return result.returncode, parsed, result.stderr


def test_buf_curl_lists_services_through_reflection(node_modules: Path, face: RunningGrpc) -> None:
    result = run_node_bin(
        node_modules,
        "buf",
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--list-services",
        f"http://{face.address}",
    )
    assert result.returncode == 0, result.stderr
    listed = set(result.stdout.split())
    assert {SERVICE, "aibridge.v1.InterceptionService", "aibridge.v1.CatalogService"} <= listed
    assert "grpc.health.v1.Health" in listed


def test_buf_curl_pages_gets_and_fails_like_rest(
    node_modules: Path, face: RunningGrpc, tokens: dict[str, str], standin_url: str
) -> None:
    admin = tokens["admin"]
    seen: list[str] = []
    page_token = ""
    for _ in range(100):
        code, reply, err = buf_curl(
            node_modules,
            face,
            f"{SERVICE}/ListSessions",
            {"pageSize": 60, "pageToken": page_token},
            admin,
        )
        assert code == 0, err
        seen += [s["sessionId"] for s in reply.get("sessions", [])]
        page_token = reply.get("nextPageToken", "")
        if not page_token:
            break
    expected = rest(standin_url, admin, "/sessions", limit=1000)
    assert seen == [s["id"] for s in expected["sessions"]]
    assert int(reply["totalSize"]) == expected["count"]

    target = max(expected["sessions"][:30], key=lambda s: s["threads"])
    code, reply, err = buf_curl(
        node_modules,
        face,
        f"{SERVICE}/GetSession",
        {
            "sessionId": target["id"],
            "readMask": "sessionId,threadCount,threads",
            "threadPageSize": 4,
        },
        admin,
    )
    assert code == 0, err
    detail = rest(standin_url, admin, f"/sessions/{target['id']}", limit=4)
    assert [t["threadId"] for t in reply["session"]["threads"]] == [
        t["id"] for t in detail["threads"]
    ]
    assert int(reply["session"]["threadCount"]) == target["threads"]

    code, reply, _ = buf_curl(node_modules, face, f"{SERVICE}/ListSessions", {}, None)
    assert code != 0
    assert reply["code"] == "unauthenticated"
    # buf curl prints the ErrorInfo detail as base64 (its type is not in the reflected files).
    assert reply["details"][0]["type"] == "google.rpc.ErrorInfo"
    info = error_details_pb2.ErrorInfo.FromString(_b64(reply["details"][0]["value"]))
    assert info.reason == "UNAUTHENTICATED"
    code, reply, _ = buf_curl(
        node_modules, face, f"{SERVICE}/GetSession", {"sessionId": "no-such-session"}, admin
    )
    assert code != 0
    assert reply["code"] == "not_found"


def test_grpc_js_client_pages_gets_and_fails_like_rest(
    node_modules: Path, face: RunningGrpc, tokens: dict[str, str], standin_url: str
) -> None:
    admin = tokens["admin"]
    expected = rest(standin_url, admin, "/sessions", limit=1000)
    target = max(expected["sessions"][:30], key=lambda s: s["threads"])
    node = require_executable("node", "install Node.js 20+")
    run = subprocess.run(
        [node, "grpc_js_client.mjs", face.address, admin, target["id"]],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert [sid for page in out["pages"] for sid in page] == [s["id"] for s in expected["sessions"]]
    assert all(len(page) <= 50 for page in out["pages"])
    assert len(out["pages"]) > 1
    assert out["total"] == expected["count"]
    detail = rest(standin_url, admin, f"/sessions/{target['id']}", limit=5)
    assert out["session"]["session_id"] == target["id"]
    assert out["session"]["thread_ids"] == [t["id"] for t in detail["threads"]]
    assert out["session"]["thread_count"] == target["threads"]
    assert out["errors"] == {
        "unauthenticated": {"code": "UNAUTHENTICATED", "reason": "UNAUTHENTICATED"},
        "not_found": {"code": "NOT_FOUND", "reason": "NOT_FOUND"},
        "bad_page_size": {"code": "INVALID_ARGUMENT", "reason": "BAD_USER_INPUT"},
    }


def _reason(reply: Any) -> str:
    info = error_details_pb2.ErrorInfo.FromString(_b64(str(reply["details"][0]["value"])))
    reason: str = info.reason
    return reason


def test_buf_curl_every_other_method_in_this_era(
    node_modules: Path, face: RunningGrpc, tokens: dict[str, str], standin_url: str, api_era: ApiEra
) -> None:
    """The methods the paging test leaves out, through buf curl: equal to REST where the era
    serves them, UNIMPLEMENTED with UPSTREAM_UNSUPPORTED where it does not."""
    admin = tokens["admin"]
    sessions = rest(standin_url, admin, "/sessions", limit=30)["sessions"]
    target = max(sessions, key=lambda s: s["threads"])
    code, reply, err = buf_curl(
        node_modules,
        face,
        f"{SERVICE}/ListSessionThreads",
        {"sessionId": target["id"], "pageSize": 3},
        admin,
    )
    assert code == 0, err
    detail = rest(standin_url, admin, f"/sessions/{target['id']}", limit=3)
    assert [t["threadId"] for t in reply["threads"]] == [t["id"] for t in detail["threads"]]
    assert int(reply["totalSize"]) == target["threads"]

    catalog = "aibridge.v1.CatalogService"
    code, reply, err = buf_curl(node_modules, face, f"{catalog}/ListModels", {}, admin)
    assert code == 0, err
    models = rest(standin_url, admin, "/models", limit=1000)
    assert reply["models"] == models[: len(reply["models"])]
    assert int(reply["totalSize"]) == len(models)
    code, reply, err = buf_curl(
        node_modules, face, f"{catalog}/ListClients", {"pageSize": 100}, admin
    )
    assert code == 0, err
    assert sorted(reply["clients"]) == sorted(rest(standin_url, admin, "/clients"))

    code, reply, err = buf_curl(node_modules, face, f"{catalog}/ListProviders", {}, admin)
    if api_era == "ai-gateway":
        assert code == 0, err
        assert [p["name"] for p in reply["providers"]] == [
            p["name"] for p in rest(standin_url, admin, "/providers")
        ]
    else:
        assert code != 0
        assert reply["code"] == "unimplemented"
        assert _reason(reply) == "UPSTREAM_UNSUPPORTED"

    code, reply, err = buf_curl(
        node_modules,
        face,
        "aibridge.v1.InterceptionService/ListInterceptions",
        {"pageSize": 5},
        admin,
    )
    if api_era == "sessions":
        assert code == 0, err
        assert [i["id"] for i in reply["interceptions"]] == [
            r["id"] for r in rest(standin_url, admin, "/interceptions", limit=5)["results"]
        ]
    else:
        assert code != 0
        assert reply["code"] == "unimplemented"
        assert _reason(reply) == "UPSTREAM_UNSUPPORTED"
