"""The README is a front page whose links land, and every docs page is in the mkdocs navigation."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_relative_link_of_the_readme_lands() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (REPO / "README.md").read_text())
    relative = [link for link in links if not link.startswith(("http://", "https://"))]
    assert len(relative) >= 15
    missing = [link for link in relative if not (REPO / link).exists()]
    assert not missing, missing


def test_every_docs_page_is_in_the_navigation() -> None:
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), re.M))
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    assert pages == nav, (pages - nav, nav - pages)


def test_the_readme_stays_a_front_page() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) < 150
