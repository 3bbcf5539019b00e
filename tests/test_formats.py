"""Formats libsndfile cannot read, decoded by FFmpeg (PyAV) with the same guarantees: the same
samples for lossless copies, header limits, truncated and corrupt files as one-line errors,
junk before an MP3's first frame, names that lie, and folder walks that count what they skip.
Every file is made here with PyAV's encoders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from helpers import music, write, write_av, write_m4a
from music2emotion.audio import AudioError, declared_seconds, load_audio, scan_audio_files, stream_audio
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


def test_truncated_and_corrupt_m4a_are_one_line_errors(tmp_path):
    whole = write_m4a(tmp_path / "whole.m4a", music(6.0, 44_100)[:, 0]).read_bytes()
    cut = tmp_path / "cut.m4a"  # FFmpeg writes the index (moov) last: a cut file has none
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AudioError, match=r"^truncated or damaged MP4 file: FFmpeg cannot read it \("):
        load_audio(cut)
    corrupt = tmp_path / "corrupt.m4a"
    data = bytearray(whole)
    mdat = data.find(b"mdat")
    data[mdat + 8 : mdat + 4000] = np.random.default_rng(0).integers(0, 256, 3992, dtype=np.uint8).tobytes()
    corrupt.write_bytes(bytes(data))
    with pytest.raises(AudioError, match=r"^decoding failed after \d+\.\d s of audio: "):
        load_audio(corrupt)


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
    with pytest.raises(AudioError, match=r"^truncated: the audio stops at \d\.\d s but the header declares 8\.0 s"):
        load_audio(path)


def test_mp3_with_junk_before_its_first_frame_reads_like_the_clean_file(tmp_path):
    clean = write(tmp_path / "clean.mp3", music(6.0)[:, 0])
    # bytes of 0x00 and 0xFF hold many false frame headers: libsndfile alone gave up on it
    junk = np.random.default_rng(0).choice([0, 255], 5000).astype(np.uint8).tobytes()
    dirty = tmp_path / "dirty.mp3"
    dirty.write_bytes(junk + clean.read_bytes())
    a, b = load_audio(clean), load_audio(dirty)
    assert a.shape == b.shape and np.array_equal(a, b)


def test_a_file_is_decoded_by_what_it_holds_not_its_name(tmp_path):
    y = music(SECONDS, 44_100)
    aac = write_m4a(tmp_path / "x.m4a", y[:, 0])
    named_mp3 = tmp_path / "really-aac.mp3"
    os.rename(aac, named_mp3)
    assert len(load_audio(named_mp3)) == pytest.approx(SECONDS * 22_050, abs=0.1 * 22_050)
    flac = write(tmp_path / "really-flac.wav", y, 44_100, format="FLAC")
    assert len(load_audio(flac)) == SECONDS * 22_050


def test_a_video_without_sound_and_text_are_refused_by_both_decoders(tmp_path):
    text = tmp_path / "notes.m4a"
    text.write_text("not audio at all\n" * 50)
    with pytest.raises(AudioError, match=r"^not a supported audio format \(neither libsndfile nor FFmpeg"):
        load_audio(text)


def _library(root: Path) -> Path:
    album = root / "Artist" / "Album"
    write_m4a(album / "01 aac.m4a", music(3.0, 44_100)[:, 0])
    write_m4a(album / "02 alac.m4a", music(3.0, 44_100, seed=1)[:, 0], codec="alac")
    write_av(album / "03 opus.webm", music(3.0, 48_000, seed=2), 48_000)
    cut = write_m4a(album / "04 cut.m4a", music(3.0, 44_100)[:, 0])
    cut.write_bytes(cut.read_bytes()[:2000])
    (album / "05 corrupt.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(3000))
    for name in ("cover.jpg", "back.jpg", "album.cue", "album.m3u8", "rip.log", ".DS_Store", "._01 aac.m4a"):
        (album / name).write_bytes(b"\x00" * 10)
    return root


def test_folder_scan_finds_m4a_and_webm_and_counts_what_it_skips(tmp_path):
    scan = scan_audio_files([_library(tmp_path)])
    assert [p.name for p in scan.files] == ["01 aac.m4a", "02 alac.m4a", "03 opus.webm", "04 cut.m4a",
                                          "05 corrupt.m4a"]
    assert scan.summary() == ("skipped 7 files that are not audio "
                              "(2 .jpg, 1 .DS_Store, 1 ._*, 1 .cue, 1 .log, 1 .m3u8)")


def test_predict_a_library_of_new_formats_with_bad_files_as_rows(tmp_path, tiny_model, capsys):
    root = _library(tmp_path / "music")
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
