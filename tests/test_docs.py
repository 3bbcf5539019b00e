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


def _section(text: str, heading: str) -> str:
    """A Markdown section's text, from its heading to the next heading of any level up to 2."""
    start = text.index(heading)
    after = re.search(r"\n## ", text[start + len(heading):])
    return text[start:start + len(heading) + after.start()] if after else text[start:]


@pytest.mark.slow
def test_the_readme_python_block_runs_as_a_script(tmp_path):
    """Saved as a file and run with ``python script.py``, as a user would: its worker
    processes import the script again, so the block must hold up to that."""
    import subprocess
    import sys

    from helpers import write_music

    block = re.search(r"```python\n(.+?)\n```", _section(README.read_text(encoding="utf-8"), "## In Python"),
                      re.S).group(1)
    # the files it names, as small generated songs
    names = sorted(set(re.findall(r'"([\w.]+\.(?:mp3|flac|wav))"', block)))
    assert {"song.mp3", "a.mp3"} <= set(names)
    for i, name in enumerate(names):
        write_music(tmp_path / name, 12.0, channels=2, seed=i)
    script = tmp_path / "script.py"
    script.write_text(block, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines and not any("error" in line.lower() and "'error': ''" not in line for line in lines), lines
    # every predict_files row came back, each with its own path
    for name in ("a.mp3", "b.flac"):
        assert sum(f"'path': '{name}'" in line for line in lines) == 1, lines
