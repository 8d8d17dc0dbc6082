"""The front door: README.md fits on a screen, and the links of README.md
and docs/ lead to files of this repository."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: pages other branches add (linked from the README's map before they land)
PENDING = {"fencing.md", "repair.md", "servers.md", "ci.md", "drift.md", "performance.md", "reembedding.md"}


def pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    assert lines[3].startswith("./demo") and lines[4].startswith("./test")


def test_relative_links_resolve_and_nothing_outside_the_repository_is_cited():
    for page in pages():
        text = page.read_text()
        assert "DESIGN.md" not in text and "/work/" not in text, page
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (page.parent / target).resolve()
            assert path.is_relative_to(ROOT), (page.name, target)
            assert path.exists() or path.name in PENDING, f"{page.name}: broken link {target}"
