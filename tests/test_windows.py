"""Features: the seed's tensor shape, normalisation, and streaming windows."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SR, tone, write

from music2emotion.audio import load_audio, stream_audio
from music2emotion.config import FeatureSettings
from music2emotion.frontends import window_features
from music2emotion.windows import TooShortError, fit_length, iter_windows

SEED = FeatureSettings(window_seconds=30.0)


def test_seed_window_is_64_by_1292():
    assert SEED.n_frames == 1292
    x = window_features(tone(440, 30.0), SEED)
    assert x.shape == (1, 64, 1292) and x.dtype == np.float32


@pytest.mark.parametrize("seconds", [1.0, 12.0, 45.0])
def test_short_and_long_inputs_are_padded_or_cut(seconds):
    x = window_features(tone(440, seconds), SEED)
    assert x.shape == (1, 64, 1292)


@pytest.mark.parametrize("sr, channels", [(48_000, 2), (8_000, 1), (44_100, 2)])
def test_files_of_any_rate_and_layout_give_the_same_shape(tmp_path, sr, channels):
    y = tone(330, 5.0, sr)
    path = write(tmp_path / "x.wav", np.stack([y] * channels, 1) if channels > 1 else y, sr)
    x = window_features(load_audio(path), SEED)
    assert x.shape == (1, 64, 1292)


def test_normalised_per_sample():
    x = window_features(tone(440, 10.0) + 0.01 * np.random.default_rng(0).standard_normal(10 * SR),
                        FeatureSettings())
    assert abs(x.mean()) < 1e-4 and abs(x.std() - 1) < 1e-3


def test_silence_gives_zeros_not_nans():
    x = window_features(np.zeros(SR * 3, np.float32), FeatureSettings())
    assert np.isfinite(x).all() and not x.any()


def test_fit_length():
    assert len(fit_length(np.ones(5), 8)) == 8 and fit_length(np.ones(5), 8)[5:].sum() == 0
    assert len(fit_length(np.ones(9), 8)) == 8


def _windows(seconds: float, window: float, hop: float | None = None, block: float = 3.0):
    y = tone(440, seconds)
    blocks = [y[i : i + int(block * SR)] for i in range(0, len(y), int(block * SR))]
    return list(iter_windows(blocks, FeatureSettings(window_seconds=window), hop))


def test_windows_cover_the_file_and_end_aligned_tail():
    ws = _windows(25.0, 10.0)
    assert [(w.start, w.end) for w in ws] == [(0, 10), (10, 20), (15, 25)]
    assert all(len(w.samples) == 10 * SR for w in ws)


def test_windows_with_hop_and_exact_fit():
    assert [(w.start, w.end) for w in _windows(20.0, 10.0, 5.0)] == [(0, 10), (5, 15), (10, 20)]


def test_short_file_is_one_padded_window_and_tiny_file_is_refused():
    (w,) = _windows(4.0, 10.0)
    assert (w.start, w.end) == (0, 4.0) and len(w.samples) == 10 * SR
    with pytest.raises(TooShortError, match="too short"):
        _windows(0.3, 10.0)


def test_windows_equal_slices_of_the_whole_signal(tmp_path):
    path = write(tmp_path / "x.wav", tone(440, 23.0) * np.linspace(0, 1, 23 * SR, dtype=np.float32))
    whole = load_audio(path)
    for w in iter_windows(stream_audio(path, block_seconds=4.0), FeatureSettings(), 7.0):
        a = int(round(w.start * SR))
        np.testing.assert_array_equal(w.samples, whole[a : a + 10 * SR])
