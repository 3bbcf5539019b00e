"""Files as broken as they come: damaged stretches are skipped, as players skip them, and
the row says how much audio was lost and where; too much damage, no audio at all, truncated
heads and tails and videos without sound are one-line errors. The damage warning reaches
every way in (the library, the command line, the Ray engine's rows, ``tag``, the server).
Every file is made here, with soundfile and PyAV."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from helpers import cut, damage, music, write, write_m4a, write_music_as, write_video
from music2emotion import EmotionModel
from music2emotion.audio import MAX_DAMAGED_SHARE, AudioError, load_audio, stream_audio
from music2emotion.cli import main

pytest.importorskip("av")

SECONDS = 30.0
WARNING = re.compile(r"damaged: ([\d.]+) s of audio could not be decoded and was skipped \(at ([\d.]+) s\)")


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s of the same music in each format whose damage the tests make."""
    folder = tmp_path_factory.mktemp("songs")
    for name in ("song.mp3", "song.m4a", "song.flac", "song.ogg", "song.opus", "song.webm"):
        write_music_as(folder / name, SECONDS)
    return folder


@pytest.fixture(scope="module")
def fast() -> EmotionModel:
    return EmotionModel("fast", threads=1)


# 3 kB overwritten a third of the way in, as on 0.3.0 gave "decoding failed after 0.0 s of
# audio: Unspecified internal error" (MP3), "decoding failed after 10.1 s" (M4A), "flac
# decoder lost sync" (FLAC), "truncated: the audio stops at 25.5 s" (WebM), and silently
# garbled audio from libsndfile's Ogg decoders. What each loses (measured): MP3 0.25 s, M4A
# 0.21 s, FLAC 0.19 s, Vorbis 1.3 s and Opus 2.0 s (a page), WebM 4.5 s (a cluster).
@pytest.mark.parametrize("name", ["song.mp3", "song.m4a", "song.flac", "song.ogg", "song.opus", "song.webm"])
def test_a_damaged_stretch_is_skipped_and_the_rest_predicted(songs, fast, tmp_path, name):
    whole = songs / name
    broken = damage(whole, tmp_path / name)
    a, b = fast.predict_file(whole), fast.predict_file(broken)
    assert a.ok and "damaged" not in a.warning
    assert b.ok, b.error
    assert abs(a.valence - b.valence) < 0.05 and abs(a.arousal - b.arousal) < 0.05
    # the damage first; helpers.music is heard as noise, so a "not music" warning follows
    found = WARNING.fullmatch(b.warning.split("; ")[0])
    assert found, b.warning
    lost, at = map(float, found.groups())
    assert lost == pytest.approx(a.duration - b.duration, abs=0.05)
    assert 0.03 < lost < MAX_DAMAGED_SHARE * SECONDS
    assert 8.0 < at < 12.0  # a third of the bytes is about a third of the audio


def test_a_stream_says_what_it_skipped_once_it_is_done(songs, tmp_path):
    blocks = stream_audio(damage(songs / "song.m4a", tmp_path / "song.m4a"))
    assert next(blocks).size and blocks.damage == ""  # not known before the end
    rest = list(blocks)
    assert rest and WARNING.fullmatch(blocks.damage)


@pytest.mark.parametrize("name", [
    "a.mp3", "a.m4a", "a.alac.m4a", "a.flac", "a.ogg", "a.opus", "a.webm", "a.mka", "a.mkv", "a.wma",
    "a.aac", "a.wav",
])
def test_an_undamaged_file_carries_no_warning(tmp_path, name):
    path = write_music_as(tmp_path / name, 12.0)
    blocks = stream_audio(path)
    assert sum(map(len, blocks)) / 22_050 == pytest.approx(12.0, abs=0.1)
    assert blocks.damage == ""


def test_more_damage_than_the_bound_is_an_error(songs, tmp_path):
    """Each damaged stretch costs a WebM the rest of its cluster: three of them, 28 % of the
    audio, pass the 25 % a prediction may skip."""
    broken = songs / "song.webm"
    for k, at in enumerate((0.2, 0.45, 0.7)):
        broken = damage(broken, tmp_path / f"broken{k}.webm", at=at, seed=k)
    with pytest.raises(AudioError, match=r"^damaged: (\d+) % of the audio could not be decoded \(.* of 30 s\), "
                                         r"more than the 25 % a prediction may skip$") as err:
        load_audio(broken)
    assert int(re.search(r"(\d+) %", str(err.value)).group(1)) > 100 * MAX_DAMAGED_SHARE
    two = stream_audio(tmp_path / "broken1.webm")  # two stretches still predict
    assert sum(map(len, two)) > (1 - MAX_DAMAGED_SHARE) * SECONDS * 22_050 and "2 stretches" in two.damage


def test_a_file_where_nothing_decodes_is_an_error(tmp_path):
    whole = bytearray(write_m4a(tmp_path / "whole.m4a", music(10.0, 44_100, 2)).read_bytes())
    start, end = whole.find(b"mdat") + 4, whole.find(b"moov") - 4  # every byte of the audio
    whole[start:end] = np.random.default_rng(0).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    (tmp_path / "noise.m4a").write_bytes(bytes(whole))
    with pytest.raises(AudioError, match=r"^decoding failed after 0\.0 s of audio: Invalid data found"):
        load_audio(tmp_path / "noise.m4a")


# What a cut file gives: where its header declares the length, the truncation; an MP4 cut
# before its index (FFmpeg writes it last), that; an Ogg file declares what its last whole
# page reaches, a WAV file's length is its data's, so those predict what is there; a head
# without the container's first bytes is nothing either decoder knows, except MPEG audio and
# FLAC, whose frames each carry their own header.
@pytest.mark.parametrize("name, head, tail, outcome", [
    ("song.mp3", 0.0, 0.3, r"truncated: the audio stops at 2\d\.\d s but the header declares 30\.0 s"),
    ("song.flac", 0.0, 0.3, r"truncated: the audio stops at 2\d\.\d s but the header declares 30\.0 s"),
    ("song.webm", 0.0, 0.3, r"truncated: the audio stops at 2\d\.\d s but the header declares 30\.0 s"),
    ("song.m4a", 0.0, 0.3, r"truncated or damaged MP4 file: FFmpeg cannot read it \(.*\)"),
    ("song.ogg", 0.0, 0.3, 21.0),
    ("song.mp3", 0.3, 0.0, 21.0),
    ("song.flac", 0.3, 0.0, 21.0),
    ("song.m4a", 0.3, 0.0, r"not a supported audio format \(neither libsndfile nor FFmpeg recognise it\)"),
    ("song.ogg", 0.3, 0.0, r"not a supported audio format \(neither libsndfile nor FFmpeg recognise it\)"),
    ("song.webm", 0.3, 0.0, r"not a supported audio format \(neither libsndfile nor FFmpeg recognise it\)"),
])
def test_truncated_heads_and_tails(songs, tmp_path, name, head, tail, outcome):
    broken = cut(songs / name, tmp_path / name, head=head, tail=tail)
    if isinstance(outcome, float):
        assert len(load_audio(broken)) / 22_050 == pytest.approx(outcome, abs=1.0)
    else:
        with pytest.raises(AudioError, match=f"^{outcome}$"):
            load_audio(broken)


@pytest.mark.parametrize("name", ["film.mp4", "film.mkv", "film.mov", "film.avi", "film.webm"])
def test_a_video_without_sound_is_a_one_line_error(tmp_path, name):
    with pytest.raises(AudioError, match=r"^no audio stream \(the file holds only video or data\)$"):
        load_audio(write_video(tmp_path / name, 2.0))


def test_a_video_with_sound_gives_its_audio(tmp_path):
    y = music(4.0, 48_000, 2)
    got = load_audio(write_video(tmp_path / "clip.mp4", 4.0, y))
    assert len(got) / 22_050 == pytest.approx(4.0, abs=0.05)


# --- the warning on every way in ------------------------------------------------------------


@pytest.fixture()
def broken_mp3(songs: Path, tmp_path: Path) -> Path:
    return damage(songs / "song.mp3", tmp_path / "broken.mp3")


def test_the_command_line_writes_the_warning_and_exits_0(broken_mp3, tiny_model, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    assert main(["predict", str(broken_mp3), "--model", str(tiny_model), "--jobs", "1", "-o", str(out),
                 "--no-progress"]) == 0
    (row,) = map(json.loads, out.read_text().splitlines())
    assert row["error"] == "" and WARNING.fullmatch(row["warning"]) and row["valence"] is not None
    assert f"warning: {broken_mp3}: damaged: " in capsys.readouterr().err


def test_a_silent_damaged_file_carries_both_warnings(tmp_path, model):
    path = write(tmp_path / "silence.flac", np.zeros((30 * 44_100, 2), np.float32), 44_100)
    pred = model.predict_file(damage(path, tmp_path / "broken.flac", at=0.5, size=300))
    silent, damaged = pred.warning.split("; ")
    assert silent.startswith("silent: ") and damaged.startswith("damaged: "), pred.warning


def test_the_ray_engines_rows_carry_the_warning(broken_mp3, model):
    from music2emotion import ray_engine

    batches = list(ray_engine._file_rows(str(broken_mp3), model.kind, model.settings, None, 64))
    rows = {k: sum((b[k] for b in batches), []) for k in batches[0]}
    assert rows["index"][-1] == -1 and WARNING.fullmatch(rows["damage"][-1])
    batch = {k: np.array(v) for k, v in rows.items() if k != "features"}
    gatherer = ray_engine._Gatherer()
    for column in gatherer.columns[2:]:  # what the model's actors add: the window values
        batch[column] = np.full(len(rows["index"]), 0.5)
    (pred,) = gatherer.add(batch)
    assert pred.ok and pred.warning == rows["damage"][-1]


def test_tag_reports_the_warning(broken_mp3, tiny_model, capsys):
    pytest.importorskip("mutagen")
    assert main(["tag", str(broken_mp3), "--model", str(tiny_model), "--jobs", "1"]) == 0
    assert f"warning: {broken_mp3}: damaged: " in capsys.readouterr().err


@pytest.mark.slow
def test_the_server_returns_the_warning(broken_mp3, served):
    httpx = pytest.importorskip("httpx")
    url, _ = served
    with httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/api/predict", files={"file": ("broken.mp3", broken_mp3.read_bytes(), "audio/mpeg")})
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["error"] == "" and WARNING.fullmatch(res["warning"])
