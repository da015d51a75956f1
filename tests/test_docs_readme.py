"""The README stays an overview that stands alone: its two set-up commands are exactly the ones
that work, every docs/ page is reachable from it, and no link in the README or docs/ points
at a file or heading that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = sorted((ROOT / "docs").glob("*.md"))
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub-style anchors of a Markdown file's headings."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_readme_keeps_the_two_set_up_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert blocks[:2] == ["python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/ioc run --demo",
                          "./scripts/test.sh"]
    assert (ROOT / "scripts" / "test.sh").is_file()


def test_every_docs_page_is_linked_from_the_readme() -> None:
    assert len(PAGES) >= 10
    assert not [p.name for p in PAGES if f"(docs/{p.name})" not in README]


def test_links_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", *PAGES]:
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # http(s), mailto: none are expected, none are checked
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists() or (anchor and anchor not in anchors(dest)):
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert not broken, broken
