"""The documentation's relative links hold: README.md and every docs/**/*.md.

Each relative Markdown link ``[text](path)`` or ``[text](path#anchor)`` (images too) must
name a file or folder that exists, relative to the linking file, and its anchor a heading
of the target (a link ``(#anchor)`` to the linking file itself). Anchors follow GitHub's
rule: the heading's text, lowercased, with every character but letters, digits,
underscores, hyphens and spaces dropped, spaces turned into hyphens; a repeated heading
gets ``-1``, ``-2``… Links to other sites (``http:``, ``https:``, ``mailto:``) are not
followed: the test is pure and fast. Also: the README stays at most 8,500 bytes, the
rest living under docs/.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README_MAX_BYTES = 8_500

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](destination) or ![alt](destination); the destination may be <in angle brackets>
# and may be followed by a "title".
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+\"[^\"]*\")?\s*\)")
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def doc_files(root: Path = ROOT) -> list[Path]:
    """The checked pages: the README and every Markdown file under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _prose_lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, inline code blanked out."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is None:
            if opening:
                fence = opening.group(1)[0] * len(opening.group(1))
                continue
            yield number, _INLINE_CODE.sub(" ", line)
        elif opening and opening.group(1).startswith(fence) and not line.strip(fence[0] + " "):
            fence = None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before de-duplication)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs, duplicates numbered, and
    explicit ``<a id="…">`` / ``<a name="…">``."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fence: str | None = None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * len(opening.group(1))
            continue
        if fence is not None:
            if opening and opening.group(1).startswith(fence) and not line.strip(fence[0] + " "):
                fence = None
            continue
        found.update(_HTML_ANCHOR.findall(line))
        heading = _HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line number, destination) of every Markdown link outside code."""
    out: list[tuple[int, str]] = []
    for number, line in _prose_lines(text):
        for match in _LINK.finditer(line):
            out.append((number, match.group(1).strip("<>")))
    return out


def broken_links(page: Path) -> list[str]:
    """What is wrong with the relative links of one page: one line per broken link."""
    text = page.read_text(encoding="utf-8")
    problems: list[str] = []
    for number, destination in links(text):
        if _EXTERNAL.match(destination):
            continue
        path_part, _, anchor = destination.partition("#")
        target = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.name}:{number}: ({destination})"
        if not target.exists():
            problems.append(f"{where}: no file {path_part}")
            continue
        checkable = anchor and target.is_file() and target.suffix == ".md"
        if checkable and anchor not in anchors(target.read_text(encoding="utf-8")):
            problems.append(f"{where}: no heading #{anchor} in {target.name}")
    return problems


# ------------------------------------------------------------------ the documentation


def test_every_relative_link_and_anchor_of_the_docs_holds() -> None:
    pages = doc_files()
    assert (ROOT / "docs" / "deploying.md") in pages, "docs/ pages missing"
    problems = [problem for page in pages for problem in broken_links(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_readme_stays_short() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes (at most {README_MAX_BYTES})"


def test_the_readme_keeps_its_test_command() -> None:
    """CI's entry point runs the README's test command (.ci/run, "Run the tests")."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Run the tests") :]
    assert "```sh\npytest -q\n```" in section


# ------------------------------------------------------------------ the checker itself


def test_slugs_follow_githubs_rule() -> None:
    assert slug("Site file (TOML)") == "site-file-toml"
    assert slug("`microville demo`") == "microville-demo"
    assert slug("InfluxDB: only whole answers are used") == "influxdb-only-whole-answers-are-used"
    assert slug("Alerts: what each one asks of you") == "alerts-what-each-one-asks-of-you"
    assert slug("Why InfluxDB's v1-compatible API") == "why-influxdbs-v1-compatible-api"
    assert slug("MQTT_DEVICES and the ACL") == "mqtt_devices-and-the-acl"
    assert slug("Gas metered in m³ — Énergie") == "gas-metered-in-m³--énergie"
    assert slug("See [the API](api.md)") == "see-the-api"


def test_duplicate_headings_are_numbered_and_code_is_not_a_heading() -> None:
    text = "# Page\n\n## Notes\n\n## Notes\n\n```sh\n# not a heading\n```\n\n## Notes\n"
    assert anchors(text) == {"page", "notes", "notes-1", "notes-2"}


def test_the_checker_finds_broken_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "target.md").write_text("# Target\n\n## A section\n\n## A section\n")
    (tmp_path / "image.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Here\n\n"
        "[ok](sub/target.md) [ok](sub/target.md#a-section) [ok](sub/target.md#a-section-1)\n"
        '[ok](#here) ![ok](image.png) [ok](sub/) [ok](<sub/target.md#target> "title")\n'
        "[web](https://example.org/none.md#x) [mail](mailto:a@example.org)\n"
        "`[in code](missing.md)`\n\n```md\n[in a fence](missing.md)\n```\n\n"
        "[gone](sub/missing.md)\n"
        "[bad anchor](sub/target.md#a-section-2)\n"
        "[bad self](#nowhere)\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert "page.md:14: (sub/missing.md): no file sub/missing.md" in problems[0]
    assert "no heading #a-section-2 in target.md" in problems[1]
    assert "(#nowhere): no heading #nowhere in page.md" in problems[2]
