"""Descriptors: fixed length, finite on any input, and sensitive to what they claim to measure."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from helpers import SR, clicks, tone

from music2emotion.audio import AudioError
from music2emotion.descriptors import DESCRIPTOR_NAMES, N_DESCRIPTORS, describe
from music2emotion.training.clips import describe_clips, describe_file


def value(vec: np.ndarray, name: str) -> float:
    return float(vec[DESCRIPTOR_NAMES.index(name)])


def test_names_are_unique_and_match_the_vector():
    assert len(set(DESCRIPTOR_NAMES)) == N_DESCRIPTORS
    assert describe(tone(440, 2.0)).shape == (N_DESCRIPTORS,)


@pytest.mark.parametrize("y", [np.zeros(SR * 3, np.float32), np.zeros(10, np.float32), tone(440, 0.05)])
def test_silence_and_tiny_inputs_give_finite_values(y):
    d = describe(y)
    assert d.shape == (N_DESCRIPTORS,) and d.dtype == np.float32 and np.isfinite(d).all()


def test_loudness_is_absolute():
    quiet, loud = describe(tone(440, 3.0, amp=0.02)), describe(tone(440, 3.0, amp=0.5))
    assert value(loud, "rms_db_mean") - value(quiet, "rms_db_mean") == pytest.approx(28.0, abs=1.0)


def test_rhythm_descriptors_see_clicks_a_tone_lacks():
    beat, steady = describe(clicks(120.0 / 60, 6.0)), describe(tone(440, 6.0))
    assert value(beat, "onset_rate") > value(steady, "onset_rate") + 1.0
    assert value(beat, "percussive_ratio") > value(steady, "percussive_ratio")
    assert 55 <= value(beat, "tempo") <= 250


def progression(chords: list[tuple[float, float, float]]) -> np.ndarray:
    return np.concatenate([tone(chord, 0.75, amp=0.9) for chord in chords])


def test_mode_separates_a_major_from_a_minor_progression():
    c, e, f, g, a, b, d = 261.63, 329.63, 349.23, 392.0, 440.0, 493.88, 293.66
    major = progression([(c, e, g), (f, a, 2 * c), (g, b, 2 * d), (c, e, g)])  # C F G C
    minor = progression([(a, 2 * c, 2 * e), (d, f, a), (e, g, b), (a, 2 * c, 2 * e)])  # Am Dm Em Am
    assert value(describe(major), "key_mode") > value(describe(minor), "key_mode")
    assert value(describe(major), "key_major") > 0.6


def test_describe_file_windows_a_long_file(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate([tone(440, 12.5), clicks(100 / 60, 12.5)]), SR)
    d = describe_file(path)
    assert d.shape == (3, N_DESCRIPTORS)  # 0-10 s, 10-20 s, and one aligned to the end


def test_describe_clips_caches_and_notices_changes(tmp_path):
    a, b = tmp_path / "1.wav", tmp_path / "2.wav"
    sf.write(a, tone(440, 1.5), SR)
    sf.write(b, clicks(90 / 60, 1.5), SR)
    cache = tmp_path / "d.npz"
    first = describe_clips([a, b], cache=cache, progress=False)
    assert first.shape == (2, N_DESCRIPTORS) and cache.is_file()
    stamp = cache.stat().st_mtime_ns
    assert np.array_equal(describe_clips([a, b], cache=cache, progress=False), first)
    assert cache.stat().st_mtime_ns == stamp  # read, not rewritten
    sf.write(b, tone(220.0, 1.5), SR)  # an edited file must not read a stale entry
    again = describe_clips([a, b], cache=cache, progress=False)
    assert np.array_equal(again[0], first[0]) and not np.array_equal(again[1], first[1])


def test_describe_clips_names_a_bad_file(tmp_path):
    bad = tmp_path / "3.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="3.wav"):
        describe_clips([bad], progress=False)


def test_an_mp3_lowpass_above_8_5_khz_leaves_the_models_descriptors_alone():
    """The bundled models hear each window at 16 kHz: what a low-bitrate MP3 cuts above
    8.5 kHz is not there to tell the encoder from the song. At the decode rate it is."""
    import scipy.signal as ss
    from helpers import MAJOR, noise

    from music2emotion.config import FeatureSettings
    from music2emotion.frontends import descriptor_audio
    from music2emotion.training.clips import CLIP_SETTINGS

    y = tone(MAJOR, 10.0) + clicks(4, 10.0, amp=0.3) + noise(10.0, amp=0.05)
    low = ss.sosfiltfilt(ss.butter(10, 8500, "low", fs=SR, output="sos"), y).astype(np.float32)
    heard = [describe(*descriptor_audio(v, CLIP_SETTINGS)) for v in (y, low)]
    assert CLIP_SETTINGS.descriptor_rate == 16_000
    assert np.abs(heard[0] - heard[1]).max() < 0.2
    assert np.abs(heard[0] - heard[1]).max() / np.abs(heard[0]).max() < 1e-3
    full = [describe(*descriptor_audio(v, FeatureSettings())) for v in (y, low)]
    assert value(full[0], "mel63_mean") - value(full[1], "mel63_mean") > 40  # dB
