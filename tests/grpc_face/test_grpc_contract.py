"""The gRPC contract: `buf lint` (STANDARD), `buf breaking` against the committed baseline,
the committed stubs equal to what `make proto` generates, and the face's imports."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pytest

from aibridge_graphql.grpc import codegen
from tests.support.node_tools import REPO_ROOT, ensure_node_modules, run_node_bin

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO = REPO_ROOT / "proto"
BASELINE = "baseline/aibridge-v1.json"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return ensure_node_modules(PACKAGE_DIR)


def test_buf_lint_standard(node_modules: Path) -> None:
    result = run_node_bin(node_modules, "buf", "lint", cwd=PROTO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_against_baseline(node_modules: Path) -> None:
    result = run_node_bin(node_modules, "buf", "breaking", "--against", BASELINE, cwd=PROTO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_catches_a_removed_field(node_modules: Path, tmp_path: Path) -> None:
    # The check can fail: a copy of the module without a field is a breaking change.
    copy = tmp_path / "proto"
    (copy / "aibridge" / "v1").mkdir(parents=True)
    (copy / "buf.yaml").write_text((PROTO / "buf.yaml").read_text())
    shutil.copytree(PROTO / "google", copy / "google")
    for source in (PROTO / "aibridge" / "v1").glob("*.proto"):
        text = source.read_text()
        if source.name == "resources.proto":
            text = text.replace("  int64 thread_count = 11;\n", "")
        (copy / "aibridge" / "v1" / source.name).write_text(text)
    result = run_node_bin(
        node_modules, "buf", "breaking", "--against", str(PROTO / BASELINE), cwd=copy
    )
    assert result.returncode != 0
    assert "thread_count" in result.stdout + result.stderr


def test_vendored_status_proto_is_the_runtime_one() -> None:
    # The stubs import googleapis-common-protos' `google.rpc.status_pb2`; buf and grpc-js read
    # proto/google/rpc/status.proto: they must describe the same message.
    from google.protobuf import descriptor_pb2
    from google.rpc import status_pb2

    from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2

    runtime = descriptor_pb2.FileDescriptorProto()
    status_pb2.DESCRIPTOR.CopyToProto(runtime)
    assert "google/rpc/status.proto" in session_service_pb2.DESCRIPTOR.serialized_pb.decode(
        "latin-1"
    )
    vendored = (PROTO / "google" / "rpc" / "status.proto").read_text()
    assert "package google.rpc;" in vendored
    for field in runtime.message_type[0].field:
        assert f" {field.name} = {field.number};" in vendored, field.name


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    codegen.generate(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(codegen.GEN_DIR)
        for p in codegen.GEN_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert generated == committed, "run `make proto`"
    drifted = [
        str(p) for p in generated if not filecmp.cmp(tmp_path / p, codegen.GEN_DIR / p, False)
    ]
    assert not drifted, f"stale stubs {drifted}: run `make proto`"
