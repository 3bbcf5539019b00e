"""The README is a front page that stays true: CI's test command is the README's, every link
resolves, and the manual lives in docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
USAGE = ROOT / "docs" / "usage.md"
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


def _run_block(page: Path, folder: Path):
    """The first Python block of ``page``'s "In Python" section, saved in ``folder`` and run
    there with ``python script.py``, as a user would run it: its worker processes import
    the script again, so the block must hold up to that."""
    import subprocess
    import sys

    text = page.read_text(encoding="utf-8")
    block = re.search(r"```python\n(.+?)\n```", _section(text, "## In Python"), re.S).group(1)
    script = folder / "script.py"
    script.write_text(block, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return block, done.stdout.splitlines()


@pytest.mark.slow
def test_the_readme_python_block_runs_as_a_script(tmp_path):
    from helpers import write_music

    text = _section(README.read_text(encoding="utf-8"), "## In Python")
    # the files it names, as small generated songs
    names = sorted(set(re.findall(r'"([\w.]+\.(?:mp3|flac|wav))"', text)))
    assert {"song.mp3", "a.mp3"} <= set(names)
    for i, name in enumerate(names):
        write_music(tmp_path / name, 12.0, channels=2, seed=i)
    _, lines = _run_block(README, tmp_path)
    assert lines and not any("error" in line.lower() and "'error': ''" not in line for line in lines), lines
    # every predict_files row came back, each with its own path
    for name in ("a.mp3", "b.flac"):
        assert sum(f"'path': '{name}'" in line for line in lines) == 1, lines


@pytest.mark.slow
def test_the_usage_python_block_runs_as_a_script(tmp_path):
    import csv

    from helpers import write_music

    songs = [write_music(tmp_path / "music" / f"album {i}" / f"{i}.mp3", 6.0, seed=i) for i in range(3)]
    _run_block(USAGE, tmp_path)
    with (tmp_path / "library.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"] for r in rows) == sorted(str(p.relative_to(tmp_path)) for p in songs)
    assert all(r["error"] == "" and r["mood"] for r in rows)
    # run again: everything is done, nothing is added
    _run_block(USAGE, tmp_path)
    with (tmp_path / "library.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == 3


# --- what the docs say against what the code does -------------------------------------


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table whose header row starts with ``header``."""
    lines = text[text.index(header):].splitlines()
    rows = []
    for line in lines[2:]:  # past the header and its rule
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def _predict_options() -> dict[str, object]:
    """``predict``'s options as its parser defines them: long flag -> default."""
    import argparse

    from music2emotion.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {max(a.option_strings, key=len): a.default for a in sub.choices["predict"]._actions
            if a.option_strings and a.default != argparse.SUPPRESS}


def test_every_predict_option_is_documented_in_usage_and_nothing_else():
    rows = _table_rows(USAGE.read_text(encoding="utf-8"), "| option | default |")
    documented = {}
    for option, default, _ in rows:
        flag = re.match(r"`(-[\w-]+)", option).group(1)
        documented[{"-o": "--output"}.get(flag, flag)] = default
    options = _predict_options()
    assert sorted(documented) == sorted(options)
    # a default the parser holds is the one the table gives
    for flag, default in options.items():
        if default not in (None, False):
            assert str(default) in documented[flag], (flag, default, documented[flag])


@pytest.mark.parametrize("page, header", [(README, "| column | meaning |"), (USAGE, "| column | meaning |")],
                         ids=["README", "usage"])
def test_the_documented_columns_are_the_writers(page, header):
    from music2emotion.output import COLUMNS

    names = [n for cell, *_ in _table_rows(page.read_text(encoding="utf-8"), header)
             for n in re.findall(r"`(\w+)`", cell)]
    assert names == COLUMNS


def test_the_bundled_models_the_docs_list_are_the_bundled_models():
    from music2emotion.modelfile import BUNDLED_MODELS

    lists = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        lists += [(page.name, re.findall(r"`([\w-]+)`", m)) for m in
                  re.findall(r"bundled model(?: name)? \(((?:`[\w-]+`, )*`[\w-]+`)\)", text)]
        lists += [(page.name, m.split(", ")) for m in re.findall(r"the bundled ONNX models: ([\w, -]+)", text)]
    assert len(lists) >= 3
    for name, listed in lists:
        assert listed == list(BUNDLED_MODELS), name
    # the README's table of models has a row for each, with its size
    models = _section(README.read_text(encoding="utf-8"), "## Models")
    for name in BUNDLED_MODELS:
        row = re.search(rf"^\| `{name}`.*$", models, re.M)
        assert row, name


def test_the_readme_gives_each_bundled_model_its_size():
    from music2emotion.modelfile import BUNDLED_MODELS, bundled_model_path

    models = _section(README.read_text(encoding="utf-8"), "## Models")
    for name in BUNDLED_MODELS:
        row = re.search(rf"^\| `{name}`.*$", models, re.M).group(0)
        size = bundled_model_path(name).stat().st_size / 1e6
        assert f"| {size:.1f} MB |" in row, (name, size)


def test_versions_in_the_examples_are_this_version():
    from music2emotion._version import __version__

    shown = []
    for page in PAGES:
        for block in re.findall(r"```\w*\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            shown += [(page.name, v) for v in re.findall(r"music2emotion (\d+\.\d+\.\d+)", block)]
    assert shown
    assert all(v == __version__ for _, v in shown), shown
