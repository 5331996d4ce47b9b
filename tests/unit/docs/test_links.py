"""Every relative link of the README, docs/ and docker/README.md resolves.

A link must name a file or folder of the repository (nothing outside it: a clone has nothing
beside it) or be a public web URL; a `#anchor` must be a heading of the Markdown file it names,
by GitHub's rules (lowercase, punctuation dropped, spaces to `-`, repeats numbered).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.docs import REPO, anchor, anchors, broken_link, documents, links

PAGES = documents()


def test_the_docs_are_all_read() -> None:
    names = {str(page.relative_to(REPO)) for page in PAGES}
    assert {"README.md", "docker/README.md", "docs/design.md", "docs/configuration.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves(page: Path) -> None:
    problems = [
        f"line {line}: {why}"
        for line, target in links(page)
        if (why := broken_link(page, target)) is not None
    ]
    assert not problems, f"{page.relative_to(REPO)}: {problems}"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Coder versions: the two API eras", "coder-versions-the-two-api-eras"),
        ("Coder's spend and budgets (AI Gateway era)", "coders-spend-and-budgets-ai-gateway-era"),
        ("Against GraphQL Mesh + Hive Gateway", "against-graphql-mesh--hive-gateway"),
        ("`AIBRIDGE_CACHE_URL` and [Redis](https://redis.io)", "aibridge_cache_url-and-redis"),
        ("**Bold** étapes 2", "bold-étapes-2"),
    ],
)
def test_anchors_follow_githubs_rules(heading: str, expected: str) -> None:
    assert anchor(heading) == expected


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n## Twice\n\n## Twice\n\n```md\n# Not a heading\n[in code](nowhere.md)\n```\n"
        "See [here](#twice-1), [there](other.md#a-b), `[code](nowhere.md)` and\n"
        "[gone](missing.md), [wrong](other.md#nope), [up](../../outside.md),\n"
        "[file](file:///etc/passwd), [web](https://example.com/x#y), [self](#not-a-heading).\n"
        "[ref]: other.md#missing\n",
        encoding="utf-8",
    )
    (tmp_path / "docs" / "other.md").write_text("# A: b\n", encoding="utf-8")
    assert anchors(page) == {"page", "twice", "twice-1"}
    found = {target: broken_link(page, target, root=tmp_path) for _, target in links(page)}
    assert {target for target, why in found.items() if why is None} == {
        "#twice-1",
        "other.md#a-b",
        "https://example.com/x#y",
    }
    assert set(found) == {
        "#twice-1",
        "other.md#a-b",
        "missing.md",
        "other.md#nope",
        "../../outside.md",
        "file:///etc/passwd",
        "https://example.com/x#y",
        "#not-a-heading",
        "other.md#missing",
    }
