"""Golden outputs: what the bundled models compute on a few generated clips, pinned.

For each clip (written as 16-bit PCM, so the file is exact) the test recomputes, through the
installed package, every window's descriptor vector, the pretrained taggers' outputs of each
fusion model, and each bundled model's window and song values, and compares them with
``tests/data/golden.json`` within 1e-4 (descriptors, whose scales run to decibels and beats
per minute, within 1e-4 of max(1, |value|)). A dependency upgrade (librosa, numpy, soxr,
soundfile, ONNX Runtime) that moves any of them fails here, loudly.

When a change is meant to move them (new bundled models, new descriptors), regenerate the
file and review its diff::

    python tests/golden/make_golden.py

This module needs only the installed package, numpy, soundfile and pytest, so
``pytest -m golden`` runs against an installed wheel.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from music2emotion import EmotionModel
from music2emotion.audio import stream_audio
from music2emotion.config import FeatureSettings
from music2emotion.descriptors import describe
from music2emotion.modelfile import AUDIOSET, BUNDLED_MODELS, ENCODER_OUTPUT, FUSION, MEL, TAGGERS
from music2emotion.windows import iter_windows

GOLDEN = Path(__file__).parent / "data" / "golden.json"
TOLERANCE = 1e-4
SIGNIFICANT = 8  # digits stored: far below the tolerance
pytestmark = pytest.mark.golden


def _chords(seconds: float, sr: int, chords: list[tuple[float, ...]], seed: int) -> np.ndarray:
    """Chords that change every 1.5 s, a noise-burst beat and a slow swell."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    freqs = np.array([chords[int(x // 1.5) % len(chords)] for x in t])
    y = np.sin(2 * np.pi * freqs * t[:, None]).mean(1) * (0.6 + 0.4 * np.sin(2 * np.pi * t / 7))
    return 0.3 * y + 0.2 * (np.mod(t, 0.5) < 0.03) * rng.standard_normal(len(t))


def clips() -> dict[str, tuple[np.ndarray, int]]:
    """The clips, as 16-bit samples and their rate: a stereo 44.1 kHz major progression with a
    beat (two windows, the last aligned to the end), a mono 22.05 kHz minor one (one window)
    and a quiet 48 kHz tone with vibrato shorter than a window (one padded window)."""
    c, e, g, a, f, d, b = 261.63, 329.63, 392.0, 440.0, 349.23, 293.66, 493.88
    major = _chords(12.0, 44_100, [(c, e, g), (f, a, 2 * c), (g, b, 2 * d)], seed=1)
    stereo = np.stack([major, np.roll(major, 31)], axis=1)
    minor = _chords(10.0, 22_050, [(a, 2 * c, 2 * e), (d, f, a), (e, g, b)], seed=2)
    t = np.arange(int(3.5 * 48_000)) / 48_000
    quiet = 0.05 * np.sin(2 * np.pi * 440 * t + 3 * np.sin(2 * np.pi * 5 * t))
    return {name: (np.round(np.clip(y, -1, 1) * 32767).astype(np.int16), sr)
            for name, (y, sr) in {"major-beat": (stereo, 44_100), "minor": (minor, 22_050),
                                  "quiet-short": (quiet, 48_000)}.items()}


# what the pretrained networks inside a model return beside its values, pinned per window
PRETRAINED_OUTPUT = {FUSION: TAGGERS, AUDIOSET: ENCODER_OUTPUT, MEL: ENCODER_OUTPUT}


def _rounded(x: Any) -> Any:
    return np.vectorize(lambda v: float(f"{v:.{SIGNIFICANT}g}"), otypes=[float])(
        np.asarray(x, np.float64)).tolist()


def record(folder: Path) -> dict[str, Any]:
    """Everything the golden file holds, computed now (clips are written into ``folder``)."""
    files = {}
    for name, (samples, sr) in clips().items():
        files[name] = folder / f"{name}.wav"
        sf.write(files[name], samples, sr, subtype="PCM_16")
    settings = FeatureSettings()
    out: dict[str, Any] = {"clips": {}, "models": {}}
    for name, path in files.items():
        windows = list(iter_windows(stream_audio(path, settings.sample_rate), settings))
        out["clips"][name] = {
            "windows": [[w.start, w.end] for w in windows],
            "descriptors": _rounded([describe(w.samples, settings.sample_rate) for w in windows]),
        }
    for model_name in BUNDLED_MODELS:
        model = EmotionModel(model_name, threads=1)
        per_clip = {}
        for name, path in files.items():
            pred = model.predict_file(path, timeline=True)
            assert pred.ok, pred.error
            entry = {"song": _rounded([pred.valence, pred.arousal]),
                     "windows": _rounded([[s.valence, s.arousal] for s in pred.timeline])}
            if pred.deam is not None:  # DEAM's convention, an output of its own
                entry["deam"] = _rounded([[pred.deam.valence, pred.deam.arousal],
                                          *([s.deam.valence, s.deam.arousal] for s in pred.timeline)])
            if model.mood_head:
                entry["moods"] = _rounded([list(s.probabilities.values()) for s in pred.timeline])
            if model.intervals is not None:
                entry["intervals"] = _rounded([pred.valence_low, pred.valence_high,
                                               pred.arousal_low, pred.arousal_high])
            if model.kind in PRETRAINED_OUTPUT:
                blocks = stream_audio(path, model.settings.sample_rate)
                outputs = []
                for w in iter_windows(blocks, model.settings):
                    feed = {k: v[None].astype(np.float32) for k, v in model.window_inputs(w.samples).items()}
                    outputs.append(model.session.run([PRETRAINED_OUTPUT[model.kind]], feed)[0][0])
                entry[PRETRAINED_OUTPUT[model.kind]] = _rounded(outputs)
            per_clip[name] = entry
        out["models"][model_name] = {"file": model.path.name, "kind": model.kind, "clips": per_clip}
    return out


def versions() -> dict[str, str]:
    """What computed a record (kept in the file for whoever reads a diff of it)."""
    found = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "librosa", "soxr", "soundfile", "onnxruntime"):
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return found


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing: python tests/golden/make_golden.py")
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def now(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return record(tmp_path_factory.mktemp("golden"))


def _close(got: Any, want: Any, relative: bool = False) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    allowed = TOLERANCE * (np.maximum(1.0, np.abs(want)) if relative else 1.0)
    worst = np.unravel_index(np.argmax(np.abs(got - want) - allowed), got.shape)
    assert (np.abs(got - want) <= allowed).all(), (
        f"at {worst}: {got[worst]!r} now, {want[worst]!r} in the golden file")


def test_every_bundled_model_is_pinned(golden):
    assert set(golden["models"]) == set(BUNDLED_MODELS), "regenerate: python tests/golden/make_golden.py"
    for name, entry in golden["models"].items():
        assert entry["file"] == BUNDLED_MODELS[name]


def test_windows_and_descriptors(golden, now):
    from music2emotion.descriptors import DESCRIPTOR_NAMES

    assert now["clips"].keys() == golden["clips"].keys()
    for clip, want in golden["clips"].items():
        got = now["clips"][clip]
        assert got["windows"] == want["windows"], clip
        for w, (g, e) in enumerate(zip(got["descriptors"], want["descriptors"])):
            bad = [n for n, a, b in zip(DESCRIPTOR_NAMES, g, e)
                   if abs(a - b) > TOLERANCE * max(1.0, abs(b))]
            assert not bad, f"{clip}, window {w}: {bad[:8]} moved"


@pytest.mark.parametrize("model", list(BUNDLED_MODELS))
def test_tagger_outputs_and_predictions(golden, now, model):
    want, got = golden["models"][model], now["models"][model]
    assert got["kind"] == want["kind"]
    for clip, expected in want["clips"].items():
        actual = got["clips"][clip]
        for key in ("moods", "intervals", "deam"):
            assert (key in actual) == (key in expected), (clip, key)
        for key in ({"moods", "intervals", "deam"} | set(PRETRAINED_OUTPUT.values())) & expected.keys():
            _close(actual[key], expected[key])
        _close(actual["windows"], expected["windows"])
        _close(actual["song"], expected["song"])
