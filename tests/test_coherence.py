"""One answer per song: on many varied generated files, every song row and every window row
of every output says a mood word that is the quadrant its own valence and arousal lie in,
probabilities whose most probable quadrant is that one, and intervals that hold the values,
on both scales; for the bundled models and for a test model whose words cover all four
quadrants, so that a constant word cannot pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import MOOD_SOUNDS, SR, clicks, mood_clip, music, noise, tone, write

from music2emotion import EmotionModel
from music2emotion.config import MOOD_CLASSES, MOOD_COLUMNS, to_unit
from music2emotion.prediction import quadrant_mood


def _varied(folder: Path, seconds: float) -> list[Path]:
    """Tones, chords, noise, clicks and the four mood sounds, at several levels, lengths
    and seeds: files whose values land all over the plane."""
    clips = {}
    for seed in range(2):
        for mood in MOOD_SOUNDS:
            clips[f"{mood}{seed}"] = mood_clip(mood, seconds + seed, seed=20 + seed)
        clips[f"music{seed}"] = music(seconds, SR, seed=seed)
        clips[f"noise{seed}"] = noise(seconds, amp=0.05 * (seed + 1), seed=seed)
        clips[f"chord{seed}"] = tone((110.0 * 2 ** seed, 138.6 * 2 ** seed, 164.8 * 2 ** seed), seconds,
                                     amp=0.1 + 0.3 * seed)
        clips[f"clicks{seed}"] = clicks(1.0 + 3 * seed, seconds)
    # a medley: each mood for a stretch, so windows of one file disagree
    clips["medley"] = np.concatenate([mood_clip(m, seconds / 2, seed=31) for m in MOOD_SOUNDS])
    folder.mkdir(parents=True, exist_ok=True)
    return [write(folder / f"{name}.wav", y) for name, y in clips.items()]


def _check_row(row: dict, scale: str) -> str:
    """The row's word, after checking it against the row's own numbers."""
    v, a = row["valence"], row["arousal"]
    if scale == "deam":
        v, a = float(to_unit(v)), float(to_unit(a))
    assert row["mood"] == quadrant_mood(v, a), row
    p = np.array([float(row[c]) for c in MOOD_COLUMNS])
    assert p.sum() == pytest.approx(1, abs=5e-4)
    top = {MOOD_CLASSES[i] for i in np.flatnonzero(p >= p.max() - 1e-4)}  # rounding may tie
    assert row["mood"] in top, row
    for axis in ("valence", "arousal"):
        assert float(row[f"{axis}_low"]) <= float(row[axis]) <= float(row[f"{axis}_high"]), row
    return row["mood"]


def _check_everything(model: EmotionModel, files: list[Path], tmp_path: Path, words_needed: int) -> None:
    from music2emotion.cli import main

    seen = {"unit": set(), "deam": set()}
    rows = 0
    for f in files:
        pred = model.predict_file(f, hop_seconds=model.settings.window_seconds / 2, timeline=True)
        assert pred.ok, pred.error
        for scale in ("unit", "deam"):
            for row in (pred.row(scale), *pred.segment_rows(scale)):
                seen[scale].add(_check_row(row, scale))
                rows += 1
    assert rows >= 4 * len(files)
    assert len(seen["unit"]) >= words_needed and len(seen["deam"]) >= words_needed - 1, seen
    # and as the command line writes them, timeline included
    out = tmp_path / "rows.jsonl"
    folder = files[0].parent
    for scale in ("unit", "deam"):
        assert main(["predict", str(folder), "--model", str(model.path), "--jobs", "1", "--no-progress",
                     "--timeline", "--scale", scale, "-o", str(out)]) == 0
        written = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(written) == len(files)
        for song in written:
            _check_row(song, scale)
            for window in song["timeline"]:
                _check_row(window, scale)
        out.unlink()


def test_every_row_of_a_model_with_all_four_words_is_coherent(mood_model, tmp_path):
    files = _varied(tmp_path / "songs", 4.0)
    _check_everything(EmotionModel(mood_model, threads=1), files, tmp_path, words_needed=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["accurate", "fast", "large"])
def test_every_row_of_the_bundled_models_is_coherent(name, tmp_path):
    files = _varied(tmp_path / "songs", 12.0)
    _check_everything(EmotionModel(name, threads=1), files, tmp_path, words_needed=3)


@pytest.mark.parametrize("scale", ["unit", "deam"])
@pytest.mark.parametrize("value", [0.49994, 0.49995, 0.49996, 0.5, 0.50004])
def test_a_value_at_the_boundary_shows_the_side_its_word_reads(value, scale):
    """The word reads the value rounded as rows write it; on 1-9 too the shown value must
    sit on the word's side of the middle."""
    from music2emotion.modelfile import Convention
    from music2emotion.prediction import Prediction, estimate

    fields = estimate([value, 0.3], Convention(spread=(0.04, 0.03), intervals=(0.2, 0.2)))
    row = Prediction("x.wav", **fields).row(scale)
    assert _check_row(row, scale) == row["mood"]
