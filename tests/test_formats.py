"""Formats libsndfile cannot read, decoded by FFmpeg (PyAV) with the same guarantees: the same
samples for lossless copies, header limits, truncated files by the one policy, and a library
of them predicted with its bad files as rows. Every file is made here with PyAV's encoders.
Which decoder reads a file is ``test_audio_content.py``'s, damaged stretches
``test_audio_damage.py``'s, folder scans ``test_audio_scan.py``'s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import make_library, music, write, write_av, write_m4a
from music2emotion.audio import AudioError, declared_seconds, load_audio, stream_audio
from music2emotion.cli import main
from music2emotion.server.uploads import audio_suffix

av = pytest.importorskip("av")

SECONDS = 4.0


def _envelope(y: np.ndarray, frame: int = 2205) -> np.ndarray:
    n = len(y) // frame
    return np.sqrt((y[: n * frame].reshape(n, frame) ** 2).mean(axis=1))


@pytest.mark.parametrize("name, rate, channels", [
    ("aac.m4a", 44_100, 2), ("song.alac.m4a", 44_100, 2), ("opus.webm", 48_000, 2),
    ("flac.mkv", 44_100, 1), ("opus.mka", 48_000, 1), ("song.wma", 44_100, 2),
    ("surround.mp4", 48_000, 6), ("raw.aac", 32_000, 1),
])
def test_ffmpeg_formats_decode_like_the_wav_of_the_same_audio(tmp_path, name, rate, channels):
    y = music(SECONDS, rate, channels)
    path = write_av(tmp_path / name, y, rate)
    reference = load_audio(write(tmp_path / "same.wav", y, rate, subtype="FLOAT"))
    got = load_audio(path)
    assert abs(len(got) - len(reference)) < 0.1 * 22_050  # codec delay and padding at most
    # lossy codecs change the waveform and shift it by their delay; the loudness over time stays
    a, b = _envelope(got), _envelope(reference)
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.85
    assert np.sqrt(np.mean(got**2)) == pytest.approx(np.sqrt(np.mean(reference**2)), rel=0.15)


def test_lossless_m4a_gives_the_samples_of_the_wav(tmp_path):
    y = music(SECONDS, 44_100, 2)
    alac = load_audio(write_m4a(tmp_path / "song.alac.m4a", y, 44_100, "alac"))
    wav = load_audio(write(tmp_path / "song.wav", y, 44_100, subtype="PCM_16"))
    assert alac.shape == wav.shape and np.abs(alac - wav).max() < 1e-4


def test_m4a_header_declares_the_length_and_the_limit_refuses_before_decoding(tmp_path):
    path = write_m4a(tmp_path / "song.m4a", music(6.0, 44_100)[:, 0])
    assert declared_seconds(path) == pytest.approx(6.0, abs=0.05)
    with pytest.raises(AudioError, match=r"^too long: 6(\.\d+)? s of audio, over the limit of 3 s"):
        next(stream_audio(path, max_seconds=3))
    # raw AAC states no length: refused while decoding, once past the limit
    raw = write_av(tmp_path / "song.aac", music(6.0, 44_100), 44_100)
    assert declared_seconds(raw) is None
    with pytest.raises(AudioError, match="header declares less or no length"):
        list(stream_audio(raw, block_seconds=1.0, max_seconds=3))


def test_truncated_m4a_is_a_one_line_error(tmp_path):
    whole = write_m4a(tmp_path / "whole.m4a", music(6.0, 44_100)[:, 0]).read_bytes()
    cut = tmp_path / "cut.m4a"  # FFmpeg writes the index (moov) last: a cut file has none
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AudioError, match=r"^truncated or damaged MP4 file: FFmpeg cannot read it \("):
        load_audio(cut)


def test_truncated_m4a_whose_index_comes_first_says_where_it_stops(tmp_path):
    path = tmp_path / "fast.m4a"
    y = music(8.0, 44_100)[:, 0]
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("aac", rate=44_100, layout="mono")
        for i in range(0, len(y), 1024):
            frame = av.AudioFrame.from_ndarray(y[None, i : i + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44_100, i
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"^truncated: \d(\.\d+)? s of 8 s decoded \(\d\d % missing\), "
                                         r"more than the 25 % a prediction may skip$"):
        load_audio(path)


def test_predict_a_library_of_new_formats_with_bad_files_as_rows(tmp_path, tiny_model, capsys):
    root = make_library(tmp_path / "music")
    out = tmp_path / "rows.jsonl"
    code = main(["predict", str(root), "--model", str(tiny_model), "--jobs", "1", "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    import json

    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    for ok in ("01 aac.m4a", "02 alac.m4a", "03 opus.webm"):
        assert rows[ok]["error"] == "" and rows[ok]["valence"] is not None, rows[ok]
    assert rows["04 cut.m4a"]["error"].startswith("truncated or damaged MP4 file")
    assert rows["05 corrupt.m4a"]["error"].startswith("truncated or damaged MP4 file")
    assert "Traceback" not in err and "2 of 5 files failed" in err
    assert "skipped 7 files that are not audio (2 .jpg" in err


def test_server_accepts_the_types_browsers_send_for_these_files():
    assert audio_suffix("song.m4a", "application/octet-stream") == ".m4a"
    assert audio_suffix("blob", "audio/x-m4a") == ".m4a"
    assert audio_suffix("recording", "audio/webm") == ".webm"
    assert audio_suffix("track.wma", "") == ".wma"
    assert audio_suffix("cover.jpg", "image/jpeg") is None
