"""Every relative link of README.md and docs/*.md leads to a file or folder of the repository, and
every ``#anchor`` into a Markdown page to one of its headings (as GitHub names them)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: ``[text](target)`` and ``![alt](target)``; a target has no spaces (an optional "title" follows one).
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())  # links in code blocks are text, not links
    text = re.sub(r"`[^`\n]*`", "", text)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*$", FENCE.sub("", page.read_text()), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or ROOT not in (resolved, *resolved.parents):
            broken.append(f"{target}: no such file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor}")
    return broken


def test_every_relative_link_resolves():
    assert {page.relative_to(ROOT).as_posix(): broken_links(page) for page in PAGES
            if broken_links(page)} == {}


def test_the_check_sees_links_anchors_and_skips_code(tmp_path):
    (tmp_path / "other.md").write_text("# A page: its title\n\n## Second `part`\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md) [ok](other.md#a-page-its-title) [ok](other.md#second-part)\n"
                    "[bad](missing.md) [bad](other.md#nowhere) ![img](pic.png) [web](https://x.org/y)\n"
                    "`[code](nothing.md)`\n```\n[block](nothing.md)\n```\n")
    assert links(page) == ["other.md", "other.md#a-page-its-title", "other.md#second-part",
                           "missing.md", "other.md#nowhere", "pic.png"]
    assert anchors(tmp_path / "other.md") == {"a-page-its-title", "second-part"}
