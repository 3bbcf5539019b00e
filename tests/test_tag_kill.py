"""A kill at any moment of tagging leaves every file either untouched or completely tagged,
with its music bit-identical; a rerun then finishes the job and clears the leftovers."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mutagen")

from helpers import make_song  # noqa: E402
from test_tags import audio_bytes, decoded  # noqa: E402

from music2emotion.collection.tags import BadTagValue, TagError, read_tags  # noqa: E402

pytestmark = pytest.mark.slow

# Rewrites the tags of every file given, over and over, until killed: whatever moment the
# kill lands on is some moment of a write.
WRITER = """
import sys
from music2emotion.collection.tags import EmotionTags, write_tags
files = sys.argv[1:]
print("ready", flush=True)
n = 0
while True:
    for f in files:
        n += 1
        # a value that grows the tag now and then, so that some writes move the audio
        write_tags(f, EmotionTags(n % 10000 / 10000, 0.5, "kill-test " + "x" * (n % 700), "unit"))
"""


def _child_env(tmp: Path) -> dict[str, str]:
    # numba's cache of librosa's kernels goes to a folder of this test's own, so a kill
    # never lands in the middle of writing the shared one
    return {**os.environ, "NUMBA_CACHE_DIR": str(tmp / "numba")}


def _check(files: dict[Path, tuple[bytes, np.ndarray, bytes | None]], model: str) -> tuple[int, int]:
    """Every file is its original bytes, or complete tags by ``model`` (a prefix) over the
    same audio; returns (untouched, tagged)."""
    untouched = tagged = 0
    for path, (original, samples, raw) in files.items():
        if path.read_bytes() == original:
            untouched += 1
            continue
        try:
            stored = read_tags(path)
        except (TagError, BadTagValue) as exc:  # pragma: no cover - the failure this test hunts
            pytest.fail(f"{path.name}: damaged by a kill: {exc}")
        assert stored is not None and stored.model.startswith(model), path.name
        assert 0 <= stored.valence <= 1 and 0 <= stored.arousal <= 1
        np.testing.assert_array_equal(decoded(path), samples, err_msg=path.name)
        if raw is not None:
            assert audio_bytes(path) == raw, path.name
        tagged += 1
    return untouched, tagged


def _snapshot(folder: Path) -> dict[Path, tuple[bytes, np.ndarray, bytes | None]]:
    return {p: (p.read_bytes(), decoded(p), None if p.suffix in (".ogg", ".opus") else audio_bytes(p))
            for p in sorted(folder.iterdir())}


def test_sigkill_during_writes_never_damages_a_file(tmp_path):
    pristine = tmp_path / "pristine"
    for i, ext in enumerate([".mp3", ".flac", ".ogg", ".wav", ".aiff", ".m4a"]):
        make_song(pristine / f"long{i}{ext}", seconds=20.0, seed=i)
    original = _snapshot(pristine)
    rng = random.Random(14)
    runs, seen_temps, tagged_total = 30, 0, 0
    for run in range(runs):
        work = tmp_path / f"run{run}"
        shutil.copytree(pristine, work)
        files = {work / p.name: v for p, v in original.items()}
        proc = subprocess.Popen([sys.executable, "-c", WRITER, *map(str, files)], stdout=subprocess.PIPE,
                                env=_child_env(tmp_path))
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the writer stopped on its own"
        seen_temps += len(list(work.glob(".*.m2e-*.tmp")))
        _, tagged = _check(files, "kill-test ")
        tagged_total += tagged
        shutil.rmtree(work)
    # the kills landed inside writes (temporary copies left) and after finished ones
    assert seen_temps > 0 and tagged_total > 0
    # and the check above does catch a file cut short
    work = tmp_path / "cut"
    shutil.copytree(pristine, work)
    victim = work / "long0.mp3"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        _check({work / p.name: v for p, v in original.items()}, "kill-test ")


def test_killed_tag_runs_resume_to_a_complete_collection(tmp_path, tiny_model):
    music = tmp_path / "music"
    for i, ext in enumerate([".mp3", ".flac", ".ogg", ".wav", ".aiff", ".opus"] * 2):
        make_song(music / f"s{i}{ext}", seconds=3.0, seed=i)
    original = _snapshot(music)
    argv = [sys.executable, "-m", "music2emotion.cli", "tag", str(music), "--model", str(tiny_model), "--jobs", "1",
            "--no-progress"]
    rng = random.Random(3)
    for _ in range(4):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_child_env(tmp_path))
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _check(original, "tiny (")
    done = subprocess.run(argv, capture_output=True, text=True, env=_child_env(tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr
    untouched, tagged = _check(original, "tiny (")
    assert (untouched, tagged) == (0, len(original))
    assert not list(music.glob(".*"))  # leftovers of the killed runs are gone
    values = {p: read_tags(p) for p in original}
    again = subprocess.run(argv, capture_output=True, text=True, env=_child_env(tmp_path), timeout=300)
    assert again.returncode == 0 and again.stdout.count("up to date") == len(original)
    assert values == {p: read_tags(p) for p in original}
