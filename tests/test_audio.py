"""Audio loading: formats, channels, sample rates, streaming, limits, and one-line errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers import SR, long_silence_flac, tone, write

from music2emotion import audio
from music2emotion.audio import (
    AudioError,
    declared_seconds,
    format_seconds,
    load_audio,
    stream_audio,
)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_formats_decode_to_mono_22k(tmp_path, ext):
    path = write(tmp_path / f"x.{ext}", np.stack([tone(440, 2.0)] * 2, 1))
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 2 * SR) < 0.06 * SR  # MP3 adds encoder delay/padding
    assert 0.1 < np.abs(y).max() <= 1.0


@pytest.mark.parametrize("sr", [8_000, 16_000, 44_100, 48_000])
def test_resamples_to_model_rate(tmp_path, sr):
    path = write(tmp_path / "x.wav", tone(1000, 1.5, sr), sr)
    y = load_audio(path)
    assert abs(len(y) - int(1.5 * SR)) <= 2
    spectrum = np.abs(np.fft.rfft(y))
    peak_hz = np.argmax(spectrum) * SR / len(y)
    assert abs(peak_hz - 1000) < 5


def test_stream_equals_load_and_blocks_are_bounded(tmp_path):
    path = write(tmp_path / "long.wav", tone(220, 50.0, 44_100), 44_100)
    blocks = list(stream_audio(path, block_seconds=5.0))
    assert len(blocks) >= 10
    assert max(len(b) for b in blocks) < 6 * SR
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path))


def test_downmix_averages_channels(tmp_path):
    left, right = tone(440, 1.0), np.zeros(SR, np.float32)
    y = load_audio(write(tmp_path / "st.wav", np.stack([left, right], 1)))
    np.testing.assert_allclose(y, left / 2, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8, 12])
def test_downmix_gives_numpys_mean_to_the_last_bit(channels):
    from music2emotion.audio.stream import downmix

    x = np.random.default_rng(channels).standard_normal((50_001, channels)).astype(np.float32)
    assert np.array_equal(downmix(x), x.mean(axis=1, dtype=np.float32))


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty file"),
        (lambda p: (p.write_text("hello, I am not audio\n" * 20), p)[1], "not a supported audio format"),
    ],
)
def test_errors_are_one_line_reasons(tmp_path, make, reason):
    path = make(tmp_path / "bad.mp3")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_header_without_samples(tmp_path):
    path = write(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="no audio data"):
        load_audio(path)


def test_directory_is_not_a_file(tmp_path):
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path / "d.wav")


def test_a_file_over_the_limit_is_refused_from_its_header(tmp_path):
    path = long_silence_flac(tmp_path / "hour.flac", minutes=60)
    assert path.stat().st_size < 200_000
    assert declared_seconds(path) == pytest.approx(3600.0)
    t0 = time.perf_counter()
    with pytest.raises(AudioError, match=r"too long: 1 h of audio, over the limit of 20 min"):
        next(stream_audio(path, max_seconds=1200))
    assert time.perf_counter() - t0 < 0.5  # nothing decoded


def test_a_file_whose_header_does_not_tell_stops_at_the_limit(tmp_path, monkeypatch):
    path = write(tmp_path / "long.wav", tone(220, 50.0, 8_000), 8_000)
    monkeypatch.setattr(audio.sndfile, "declared_frames", lambda f: None)  # as for a stream of unknown length
    decoded = []
    with pytest.raises(AudioError, match="too long: more than the limit of 30 s"):
        for block in stream_audio(path, block_seconds=5.0, max_seconds=30):
            decoded.append(len(block))
    assert 25 * SR <= sum(decoded) <= 30 * SR  # decoding stopped within a block of the limit
    assert len(load_audio(path)) == pytest.approx(50 * SR, abs=2)


def test_lengths_read_as_people_say_them():
    assert [format_seconds(s) for s in (0.5, 45, 90, 1200, 3600, 5400)] == [
        "0.5 s", "45 s", "1.5 min", "20 min", "1 h", "1 h 30 min"]
