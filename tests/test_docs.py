"""The README is a front page that stays true: CI's test command is the README's, every link
resolves, and the manual lives in docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "MODEL_CARD.md", *sorted((ROOT / "docs").glob("*.md"))]

if not README.is_file() or not (ROOT / ".ci" / "run").is_file():  # an installed wheel's tests
    pytest.skip("needs the repository", allow_module_level=True)


def test_ci_runs_exactly_the_readme_test_command():
    text = README.read_text(encoding="utf-8")
    after = text[text.index("**Install and run the whole test suite**"):]
    command = re.search(r"```bash\n(.+?)\n```", after, re.S).group(1).strip()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci


def test_the_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 250
    assert not any("shared/deam" in line or "shared/4q" in line for line in lines)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name}: {target}"
