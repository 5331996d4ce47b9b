"""The repository's Markdown as tests read it: its pages, their links, headings and code blocks.

A small reader of the Markdown the docs use (ATX headings, inline links and images, reference
definitions, fenced code blocks), not a renderer: code blocks and code spans are left out before
links and headings are looked for, as a renderer would not make links of them either.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# `[text](target)` and `![alt](target)`, the target optionally in <> and followed by a title.
_INLINE_LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\(\s*(?P<target><[^>]*>|[^)\s]*)[^)]*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(?P<target><[^>]*>|\S+)")


def documents(root: Path = REPO) -> list[Path]:
    """The user-facing Markdown: the README, every page under docs/, the docker and bench notes."""
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    pages += [root / "docker" / "README.md", root / "bench" / "results" / "README.md"]
    return [p for p in pages if p.is_file()]


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string (`graphql`, `sh`, ...) and its text."""

    info: str
    text: str


def split_fences(text: str) -> tuple[list[str], list[Block]]:
    """The lines outside fenced code blocks (blanks where a block was), and the blocks."""
    prose: list[str] = []
    blocks: list[Block] = []
    fence: str | None = None
    info = ""
    body: list[str] = []
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence, info, body = opening.group(1), line.strip()[len(opening.group(1)) :], []
            prose.append("")
        elif fence is not None and line.strip().startswith(fence[0] * len(fence)):
            if line.strip().strip(fence[0]) == "":
                blocks.append(Block(info.strip(), "".join(f"{b}\n" for b in body)))
                fence = None
            else:
                body.append(line)
            prose.append("")
        elif fence is not None:
            body.append(line)
            prose.append("")
        else:
            prose.append(line)
    return prose, blocks


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: its text lowercased, punctuation dropped, spaces to `-`."""
    text = _INLINE_LINK.sub(lambda m: m.group("text"), heading)
    text = _CODE_SPAN.sub(lambda m: m.group(2), text).replace("*", "")
    kept = "".join(
        c for c in text.lower() if c in " -_" or unicodedata.category(c)[0] in ("L", "N", "M")
    )
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, repeated headings numbered as GitHub does."""
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose:
        heading = _HEADING.match(line)
        if heading is None:
            continue
        base = anchor(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link and image outside code."""
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    for number, line in enumerate(prose, start=1):
        line = _CODE_SPAN.sub("", line)
        for match in _INLINE_LINK.finditer(line):
            yield number, match.group("target").strip("<>")
        reference = _REFERENCE.match(line)
        if reference:
            yield number, reference.group("target").strip("<>")


def broken_link(page: Path, target: str, root: Path = REPO) -> str | None:
    """Why `target`, linked from `page`, does not resolve inside `root`; None when it does."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
        scheme = target.split(":", 1)[0].lower()
        return None if scheme in ("http", "https") else f"not a web URL: {target}"
    if target.startswith("//"):
        return f"protocol-relative URL: {target}"
    file_part, _, fragment = target.partition("#")
    resolved = (page.parent / file_part).resolve() if file_part else page
    if not resolved.is_relative_to(root.resolve()):
        return f"points outside the repository: {target}"
    if not resolved.exists():
        return f"no such file: {target}"
    if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
        return f"no heading #{fragment} in {resolved.relative_to(root.resolve())}"
    if fragment and resolved.suffix != ".md":
        return f"an anchor into a file that is not Markdown: {target}"
    return None


def graphql_queries(root: Path = REPO) -> dict[str, str]:
    """The named GraphQL queries of the docs' ```graphql blocks, by operation name."""
    return graphql_operations("query", root)


def graphql_subscriptions(root: Path = REPO) -> dict[str, str]:
    """The named GraphQL subscriptions of the docs' ```graphql blocks, by operation name."""
    return graphql_operations("subscription", root)


def graphql_operations(kind: str, root: Path = REPO) -> dict[str, str]:
    """The docs' ```graphql blocks that are `kind` operations (each one named), by name."""
    found: dict[str, str] = {}
    for page in documents(root):
        _, blocks = split_fences(page.read_text(encoding="utf-8"))
        for block in blocks:
            if block.info != "graphql":
                continue
            name = re.match(r"\s*(query|subscription) (\w+)", block.text)
            assert name, f"{page}: a graphql block without a named operation:\n{block.text}"
            if name[1] != kind:
                continue
            earlier = found.setdefault(name[2], block.text)
            assert earlier == block.text, f"{page}: {kind} {name[2]} differs from its other copy"
    return found
