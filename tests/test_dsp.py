"""The inference path's signal processing (:mod:`music2emotion.dsp`) gives librosa's numbers.

Every function against the librosa function it ports, on tones, chords, noise, clicks,
silence and a very short input, at both rates the bundled models use; then the whole
descriptor vector, every value, against ``describe`` on librosa (``librosa_reference.py``),
and the CNN's and the taggers' front ends against librosa's mel spectrogram.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import MAJOR, MINOR, clicks, noise, tone

librosa = pytest.importorskip("librosa")
import librosa_reference as ref  # noqa: E402

from music2emotion import dsp  # noqa: E402
from music2emotion.config import DESCRIPTOR_RATE, SAMPLE_RATE, FeatureSettings  # noqa: E402
from music2emotion.descriptors import DESCRIPTOR_NAMES, describe  # noqa: E402
from music2emotion.frontends import MUSICNN_HOP, MUSICNN_MELS, MUSICNN_N_FFT, MUSICNN_SR  # noqa: E402
from music2emotion.frontends import log_mel, musicnn_patches  # noqa: E402

RTOL = 1e-5
RATES = (DESCRIPTOR_RATE, SAMPLE_RATE)


def signals(sr: int) -> dict[str, np.ndarray]:
    t = np.arange(int(4.0 * sr)) / sr
    return {
        "tone": tone(440, 4.0, sr),
        "major": tone(MAJOR, 4.0, sr),
        "minor-detuned": tone(tuple(f * 1.013 for f in MINOR), 4.0, sr),
        "noise": noise(4.0, sr=sr),
        "clicks": clicks(3.0, 4.0, sr),
        "swell+beat": (tone(MAJOR, 4.0, sr) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 3)).astype(np.float32)
                       + clicks(2.0, 4.0, sr) * 0.3),
        "silence": np.zeros(int(2.0 * sr), np.float32),
        "lead-in": np.concatenate([np.zeros(sr, np.float32), tone(MINOR, 2.0, sr)]),
        "short": tone(330, 0.15, sr),
    }


CASES = [(sr, name) for sr in RATES for name in signals(sr)]


def close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, what
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-6 * max(1.0, float(np.abs(want).max(initial=0))),
                               err_msg=what)


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}@{sr}" for sr, n in CASES])
def case(request: pytest.FixtureRequest) -> tuple[int, np.ndarray, np.ndarray]:
    sr, name = request.param
    y = signals(sr)[name]
    y = np.pad(y, (0, max(0, 2048 - len(y))))
    return sr, y, np.abs(librosa.stft(y, n_fft=2048, hop_length=512))


def test_stft_and_mel(case):
    sr, y, S = case
    close(np.abs(dsp.stft(y, n_fft=2048, hop_length=512)), S, "stft")
    assert dsp.stft(y).flags.f_contiguous  # as librosa's: reductions sum in the same order
    P = S**2
    for n_mels in (64, 96):
        close(dsp.mel_filters(sr, 2048, n_mels), librosa.filters.mel(sr=sr, n_fft=2048, n_mels=n_mels), "mel")
        close(dsp.melspectrogram(S=P, sr=sr, n_mels=n_mels),
              librosa.feature.melspectrogram(S=P, sr=sr, n_mels=n_mels), "melspectrogram")


def test_decibels_and_mfcc(case):
    sr, _, S = case
    M = librosa.feature.melspectrogram(S=S**2, sr=sr, n_mels=64)
    for kw in ({"ref": 1.0, "amin": 1e-10, "top_db": None}, {"ref": np.max}, {}):
        close(dsp.power_to_db(M, **kw), librosa.power_to_db(M, **kw), f"power_to_db {kw}")
    close(dsp.amplitude_to_db(S, ref=1.0, amin=1e-5, top_db=None),
          librosa.amplitude_to_db(S, ref=1.0, amin=1e-5, top_db=None), "amplitude_to_db")
    db = librosa.power_to_db(M, ref=1.0, amin=1e-10, top_db=None)
    close(dsp.mfcc(S=db, n_mfcc=20), librosa.feature.mfcc(S=db, n_mfcc=20), "mfcc")


def test_spectral_shape(case):
    sr, y, S = case
    for f in ("spectral_centroid", "spectral_bandwidth", "spectral_rolloff"):
        close(getattr(dsp, f)(S=S, sr=sr), getattr(librosa.feature, f)(S=S, sr=sr), f)
    close(dsp.spectral_flatness(S=S, amin=1e-10), librosa.feature.spectral_flatness(S=S, amin=1e-10), "flatness")
    close(dsp.spectral_contrast(S=S, sr=sr, n_bands=6), librosa.feature.spectral_contrast(S=S, sr=sr, n_bands=6),
          "contrast")
    close(dsp.zero_crossing_rate(y, frame_length=2048, hop_length=512),
          librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512), "zcr")
    close(dsp.rms(S=S, frame_length=2048), librosa.feature.rms(S=S, frame_length=2048), "rms")


def test_pitch_chroma_and_tonnetz(case):
    sr, _, S = case
    P = S**2
    for a, b in zip(dsp.piptrack(S=P, sr=sr), librosa.piptrack(S=P, sr=sr)):
        close(a, b, "piptrack")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa's "empty frequency set" on silence
        tuning = librosa.estimate_tuning(S=P, sr=sr)
        chroma = librosa.feature.chroma_stft(S=P, sr=sr)
    assert dsp.estimate_tuning(S=P, sr=sr) == tuning
    close(dsp.chroma_filters(sr, 2048, tuning), librosa.filters.chroma(sr=sr, n_fft=2048, tuning=tuning),
          "chroma filters")
    close(dsp.chroma_stft(S=P, sr=sr), chroma, "chroma_stft")
    close(dsp.tonnetz(chroma=chroma), librosa.feature.tonnetz(chroma=chroma), "tonnetz")
    close(dsp.normalize(P, norm=2, axis=0), librosa.util.normalize(P, norm=2, axis=0), "normalize")
    close(dsp.softmask(P, P[::-1].copy(), power=2, split_zeros=True),
          librosa.util.softmask(P, P[::-1].copy(), power=2, split_zeros=True), "softmask")


def test_rhythm(case):
    sr, _, S = case
    db = librosa.power_to_db(librosa.feature.melspectrogram(S=S**2, sr=sr, n_mels=64), ref=1.0, amin=1e-10,
                             top_db=None)
    rel = np.maximum(db, db.max() - 80.0)
    onset = librosa.onset.onset_strength(S=rel, sr=sr, hop_length=512)
    close(dsp.onset_strength(S=rel, hop_length=512), onset, "onset_strength")
    np.testing.assert_array_equal(dsp.onset_detect(onset_envelope=onset, sr=sr, hop_length=512),
                                  librosa.onset.onset_detect(onset_envelope=onset, sr=sr, hop_length=512))
    win = int(8.0 * sr) // 512
    close(dsp.tempogram(onset_envelope=onset, win_length=win),
          librosa.feature.tempogram(onset_envelope=onset, sr=sr, hop_length=512, win_length=win), "tempogram")
    np.testing.assert_array_equal(dsp.tempo(onset_envelope=onset, sr=sr, hop_length=512),
                                  librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=512))


def test_peak_pick_matches_on_ties_and_plateaus():
    x = np.array([0, 1, 1, 0, 0.5, 0.5, 0.5, 0, 1, 0.2, 0.9, 0.95, 0.95, 0], np.float32)
    for kw in ({"pre_max": 1, "post_max": 1, "pre_avg": 3, "post_avg": 4, "delta": 0.07, "wait": 0},
               {"pre_max": 2, "post_max": 2, "pre_avg": 1, "post_avg": 1, "delta": 0.0, "wait": 2}):
        np.testing.assert_array_equal(dsp.peak_pick(x, **kw), librosa.util.peak_pick(x, **kw))


def test_descriptors_match_librosa_value_for_value(case):
    sr, y, _ = case
    got, want = describe(y, sr), ref.describe(y, sr)
    off = [f"{n}: {a} != {b}" for n, a, b in zip(DESCRIPTOR_NAMES, got, want)
           if not np.isclose(a, b, rtol=RTOL, atol=1e-6)]
    assert not off, off


@pytest.mark.parametrize("name", ["major", "noise", "clicks", "silence", "short"])
def test_front_ends_match_librosa(name):
    settings = FeatureSettings(window_seconds=4.0)
    y = signals(settings.sample_rate)[name]
    want = ref.log_mel_power(np.pad(y, (0, settings.window_samples - len(y))), settings.sample_rate,
                             settings.n_fft, settings.hop_length, settings.n_mels)
    std = librosa.power_to_db(want, ref=np.max)
    std = std - std.mean()
    std = std / std.std() if std.std() > 1e-8 else std
    close(log_mel(np.pad(y, (0, settings.window_samples - len(y))), settings), std.astype(np.float32), "log_mel")
    y16 = signals(MUSICNN_SR)[name]
    mel = np.log10(10000.0 * ref.log_mel_power(y16, MUSICNN_SR, MUSICNN_N_FFT, MUSICNN_HOP, MUSICNN_MELS).T + 1.0)
    got = musicnn_patches(y16, MUSICNN_SR)
    if len(mel) >= 187:
        close(got[0], mel[:187].astype(np.float32), "musicnn patch")
