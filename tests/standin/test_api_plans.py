"""Every list query of the stand-in is answered from an index (no full table scan)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from aibridge_graphql.standin.store import explain_list_queries, open_database, prepare_for_serving


def test_every_list_query_uses_an_index(standin_db: Path) -> None:
    prepare_for_serving(standin_db)  # the statistics the server plans with
    with contextlib.closing(open_database(standin_db)) as conn:
        plans = explain_list_queries(conn)
    assert set(plans) >= {
        "interceptions.list",
        "sessions.list",
        "sessions.list model",
        "sessions.list period",
        "sessions.network",
        "models",
        "clients",
    }
    for name, lines in plans.items():
        assert any(" INDEX " in line for line in lines), (name, lines)
        # The only index-less scans allowed are of what the query built itself (its CTEs and
        # subqueries), and of the page's session keys bound as one JSON array (json_each).
        bare = [line for line in lines if line.startswith("SCAN") and "USING" not in line]
        allowed = ("SCAN (subquery", "SCAN json_each VIRTUAL TABLE")
        built = {
            f"SCAN {line.split(' ', 1)[1]}"
            for line in lines
            if line.startswith(("MATERIALIZE ", "CO-ROUTINE "))
        }
        assert all(line in built or line.startswith(allowed) for line in bare), (
            name,
            lines,
        )
