"""The product apart from its lab notebook: the README is a landing page (≤ 120 lines),
params.yaml and dvc.yaml stay short,
every relative link of the documentation reaches its file and heading, and no tracked file
cites a ticket number (the word and a number) or the maintainers' private specification folder (the
project cites papers: authors, venue, arXiv id)."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import REPO

ISSUE = re.compile(r"\bissues? \d+|\bissue-\d+\b", re.IGNORECASE)
SPEC = re.compile(r"spec ?`{1,2}[a-z_]+\.md|spec [a-z_]+\.md|\bspec/|\(spec |spec §|spec's|spec table", re.IGNORECASE)
SELF = {"tests/test_docs.py"}


def _tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return sorted(f for f in out if (REPO / f).is_file())


def _text(path: str) -> str | None:
    try:
        return (REPO / path).read_text()
    except UnicodeDecodeError:
        return None  # a binary file (a figure)


@pytest.mark.parametrize(("path", "limit"), [("README.md", 120), ("params.yaml", 250), ("dvc.yaml", 150),
                                             ("src/certsmooth/config.py", 350), ("src/certsmooth/cli.py", 150)])
def test_the_front_files_stay_short(path, limit):
    """The landing page, the settings and stages a user edits (more suites live in
    config/suites/, the stages come from one foreach), and the two modules every job passes
    through: the params' loader (the kinds' knowledge lives in their records) and the command
    line (generated from the steps' signatures)."""
    assert len((REPO / path).read_text().splitlines()) <= limit


@pytest.mark.parametrize(("name", "pattern"), [("a ticket number", ISSUE), ("the private specification", SPEC)])
def test_no_file_cites(name, pattern):
    hits = []
    for path in _tracked():
        text = _text(path)
        if text is None or path in SELF:
            continue
        hits += [f"{path}:{i}: {line.strip()[:100]}" for i, line in enumerate(text.splitlines(), 1)
                 if pattern.search(line)]  # fmt: skip
    assert not hits, f"{len(hits)} lines cite {name}:\n" + "\n".join(hits[:30])


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path) -> set[str]:
    out, seen, code = set(), {}, False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            code = not code
        m = None if code else re.match(r"^#+\s+(.*)$", line)
        if m:
            s = _slug(m.group(1))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def test_every_relative_link_of_the_docs_resolves():
    broken = []
    for md in _tracked("*.md"):
        page = REPO / md
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"^[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            dest = (page.parent / path) if path else page
            if not dest.exists():
                broken.append(f"{md}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{md}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_checks_see_what_they_look_for():
    ticket = "issue"  # the word, kept apart from its number so that this file does not cite one
    assert ISSUE.search(f"see {ticket} 16") and ISSUE.search(f"#bilevel-{ticket}-16") and not ISSUE.search("an issue")
    assert SPEC.search("(spec ``cohen.md`` §8)") and SPEC.search("spec/workflow.md") and not SPEC.search("spec=x")
    assert _slug("RAB at M = 100 (`lorenz_rab100`)") == "rab-at-m--100-lorenz_rab100"
