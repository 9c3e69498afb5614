"""The documentation's links resolve, and the README stays a user's page."""

from collections import Counter
from pathlib import Path
import re

import pytest

pytestmark = pytest.mark.ha_free

ROOT = Path(__file__).parents[1]
DOCS = sorted(
    [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "CHANGELOG.md",
        ROOT / "info.md",
        *(ROOT / "docs").glob("*.md"),
    ]
)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
EXTERNAL = ("http://", "https://", "mailto:")
# info.md is shown by HACS, where only absolute links work: links into this
# repository on GitHub are checked like relative ones.
REPOSITORY = re.compile(
    r"^https://github\.com/telzino/home-assistant-telzino/(?:blob|tree)/main/"
)


def prose_lines(text: str) -> list[str]:
    """Return the lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """Return the anchor GitHub gives a heading (before duplicates are numbered)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Return every heading anchor of a Markdown file, as GitHub numbers them."""
    seen: Counter[str] = Counter()
    found = set()
    for line in prose_lines(path.read_text()):
        if match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line):
            anchor = github_anchor(match.group(1))
            found.add(f"{anchor}-{seen[anchor]}" if seen[anchor] else anchor)
            seen[anchor] += 1
    return found


def relative_links(path: Path) -> list[str]:
    """Return the targets of a file's links into the repository, relative to it."""
    targets = []
    for line in prose_lines(path.read_text()):
        for target in LINK.findall(line):
            if REPOSITORY.match(target):
                root = ROOT.relative_to(path.parent, walk_up=True).as_posix()
                targets.append(REPOSITORY.sub(f"{root}/", target))
            elif not target.startswith(EXTERNAL):
                targets.append(target)
    return targets


def test_github_anchor_follows_githubs_rules() -> None:
    """Punctuation goes, spaces become hyphens, code and link text stay."""
    assert github_anchor("HACS (recommended)") == "hacs-recommended"
    assert github_anchor('"Can receive calls"') == "can-receive-calls"
    assert github_anchor("The `reg_list` fields") == "the-reg_list-fields"
    assert github_anchor("See [the lab](x.md) here") == "see-the-lab-here"


@pytest.mark.parametrize(
    "path", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix()
)
def test_relative_links_and_anchors_resolve(path: Path) -> None:
    """Every relative link names a file of the repository and, if any, its heading."""
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or (
            anchor and (linked.suffix != ".md" or anchor not in anchors(linked))
        ):
            broken.append(target)
    assert not broken, f"{path.name}: {broken}"


def test_the_docs_link_each_other() -> None:
    """A reader of the README finds the design, performance and contributor pages."""

    def linked_files(path: Path) -> set[Path]:
        return {
            (path.parent / target.partition("#")[0]).resolve()
            for target in relative_links(path)
        }

    assert {
        ROOT / "docs" / "how-it-works.md",
        ROOT / "docs" / "performance.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "CHANGELOG.md",
    } <= linked_files(ROOT / "README.md")
    assert ROOT / "README.md" in linked_files(ROOT / "info.md")


def test_readme_reads_in_five_minutes() -> None:
    """The user's page stays short: the design and the figures have pages of their own."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 350
