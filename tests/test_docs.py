"""The README and docs/ hold together: every relative link and image points at a file
in the repository, every #anchor at a heading of its Markdown file, and no page
speaks of issue numbers (a reader cannot look them up)."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target), the target optionally followed by a "title".
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
ISSUE = re.compile(r"\b[Ii]ssues? *#? *\d+")


def prose_lines(path: Path, *, keep_code: bool = False) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with inline code spans dropped unless `keep_code`."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line if keep_code else INLINE_CODE.sub("", line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path, keep_code=True):  # headings may hold code
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in prose_lines(path):
        for pattern in (INLINE_LINK, HTML_LINK):
            found.extend((number, m.group(1)) for m in pattern.finditer(line))
        ref = REFERENCE_DEF.match(line)
        if ref:
            found.append((number, ref.group(1)))
    return found


def broken(page: Path, target: str) -> str | None:
    """Why a link of `page` does not resolve, or None when it does."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
        return None
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part)
    if path_part.startswith("/"):
        return "absolute path: links must be relative to the page"
    file = (page.parent / path_part).resolve() if path_part else page
    if not file.is_relative_to(ROOT):
        return "points outside the repository"
    if not file.exists():
        return "no such file"
    if anchor:
        if file.suffix != ".md":
            return "an anchor into a file that is not Markdown"
        if anchor not in anchors(file):
            return f"no heading #{anchor} in {file.relative_to(ROOT)}"
    return None


def test_there_are_pages_to_check():
    assert (ROOT / "README.md").exists()
    assert len(PAGES) > 1, "docs/ has no Markdown pages"


# Not "page": that is pytest-playwright's fixture, and a test naming it is run by
# browser, among the end-to-end tests (whose live server then outlives them).
@pytest.mark.parametrize("doc", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(doc):
    problems = [f"{doc.relative_to(ROOT)}:{number}: {target} ({why})"
                for number, target in links(doc) if (why := broken(doc, target))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_issue_numbers(doc):
    text = doc.read_text(encoding="utf-8")
    found = [f"{doc.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
             for m in ISSUE.finditer(text)]
    assert not found, "say what the feature is instead:\n" + "\n".join(found)


def test_the_checker_catches_what_it_should(tmp_path, monkeypatch):
    """A broken file link, a missing anchor and an issue number are each found."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    page = tmp_path / "README.md"
    page.write_text(
        "# Ticket shop\n\n## The `seat map`, live (seats & tiers)\n\n"
        "[ok](docs/a.md#part-two) [ok](#the-seat-map-live-seats--tiers) ![pic](docs/missing.png)\n"
        "[bad anchor](docs/a.md#nowhere) [web](https://example.com/x) `[not a link](nowhere.md)`\n"
        "```\n[inside a fence](nowhere.md)\n```\n[outside](../elsewhere.md)\n",
        encoding="utf-8",
    )
    (tmp_path / "docs" / "a.md").write_text("# Part one\n\n## Part two\n\nAs issue 13 said.\n", encoding="utf-8")
    found = {target: broken(page, target) for _, target in links(page)}
    assert found == {
        "docs/a.md#part-two": None,
        "#the-seat-map-live-seats--tiers": None,
        "docs/missing.png": "no such file",
        "docs/a.md#nowhere": "no heading #nowhere in docs/a.md",
        "https://example.com/x": None,
        "../elsewhere.md": "points outside the repository",
    }
    assert ISSUE.search((tmp_path / "docs" / "a.md").read_text())
