"""The README and docs/ hold together: every relative link reaches a file, every ``#anchor`` a heading of its target
(GitHub's heading slugs), and the README stays a short front door."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README_LIMIT = 250  # lines

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
# [text](target) or ![alt](target), the target optionally <bracketed> and followed by a "title"; one level of
# parentheses inside the target, as in https://pve.proxmox.com/wiki/PCI(e)_Passthrough
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?((?:[^()\s<>]|\([^()\s]*\))*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HREF = re.compile(r"<a\s[^>]*href=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def prose_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, line with inline code spans blanked out, line as written) for every line outside fenced code
    blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        marker = FENCE.match(line)
        if fence is None:
            if marker:
                fence = marker.group(1)
                continue
            yield number, CODE_SPAN.sub(lambda span: " " * len(span.group(0)), line), line
        elif marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence) \
                and not line[marker.end():].strip():
            fence = None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor, repeated headings numbered as GitHub numbers them (``-1``, ``-2`` …)."""
    seen: dict[str, int] = {}
    found = set()
    for _number, _prose, line in prose_lines(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link in a markdown file's prose (not in code)."""
    for number, prose, _line in prose_lines(path.read_text(encoding="utf-8")):
        for pattern in (INLINE_LINK, HREF):
            for match in pattern.finditer(prose):
                yield number, match.group(1)
        definition = REFERENCE_DEFINITION.match(prose)
        if definition:
            yield number, definition.group(1)


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    """One sentence per relative link of ``path`` that does not resolve (paths named relative to ``root``)."""
    problems = []
    for number, target in links(path):
        if not target or SCHEME.match(target):
            continue  # absolute URLs (https:, mailto:) are not checked here
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not destination.exists():
            problems.append(f"{where}: no such file {file_part}")
        elif anchor and destination.suffix != ".md":
            problems.append(f"{where}: an anchor into a file that is not markdown")
        elif anchor and anchor not in anchors(destination):
            problems.append(f"{where}: no heading with anchor #{anchor} in {destination.relative_to(root)}")
    return problems


def test_every_relative_link_in_the_docs_resolves():
    problems = [problem for path in doc_files() for problem in broken_links(path)]
    assert problems == [], "\n".join(problems)


def test_every_page_under_docs_can_be_reached_from_the_readme():
    reached, queue = set(), [REPO / "README.md"]
    while queue:
        page = queue.pop()
        if page in reached:
            continue
        reached.add(page)
        for _number, target in links(page):
            file_part = target.partition("#")[0]
            if file_part.endswith(".md") and not SCHEME.match(file_part):
                destination = (page.parent / file_part).resolve()
                if destination.exists():
                    queue.append(destination)
    unreached = [str(path.relative_to(REPO)) for path in doc_files() if path not in reached]
    assert unreached == []


def test_the_readme_is_under_250_lines():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_LIMIT, f"README.md has {len(lines)} lines; move reference material to docs/"


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Writing stacks", "writing-stacks"),
    ("What `make lab` does", "what-make-lab-does"),
    ("The vSphere simulator's hosts", "the-vsphere-simulators-hosts"),
    ("GPUs, SR-IOV and nested virtualization", "gpus-sr-iov-and-nested-virtualization"),
    ("Inventory (`virtplane inventory`, schema `virtplane.inventory/1`)",
     "inventory-virtplane-inventory-schema-virtplaneinventory1"),
    ("Quick start — the two commands", "quick-start--the-two-commands"),
    ("snake_case stays", "snake_case-stays"),
    ("A [linked](other.md) heading", "a-linked-heading"),
])
def test_heading_anchors_follow_githubs_slug_rules(heading, anchor):
    assert slug(heading) == anchor


def test_a_link_to_a_missing_file_or_heading_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Repeated\n\n## Repeated\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n"
                    "[ok](other.md#repeated-1) [ok](#page) [ok](https://example.com/#x) `[skipped](nowhere.md)`\n"
                    "[bad](missing.md) [bad](other.md#repeated-2) [bad](#nowhere)\n"
                    "```\n[skipped](in-a-code-block.md)\n```\n")
    assert broken_links(page, root=tmp_path) == [
        "page.md:4: missing.md: no such file missing.md",
        "page.md:4: other.md#repeated-2: no heading with anchor #repeated-2 in other.md",
        "page.md:4: #nowhere: no heading with anchor #nowhere in page.md",
    ]
