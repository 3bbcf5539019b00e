"""Files as broken as they come: damaged stretches are skipped, as players skip them, and
the row says how much audio was lost and where; a truncated file is predicted on what it
holds with a warning saying so; more than a quarter of the audio missing, no audio at all,
heads cut off and videos without sound are one-line errors (:func:`verdict` decides, for
every container). The damage warning reaches every way in (the library, the command line,
the Ray engine's rows, ``tag``, the server). Every file is made here, with soundfile and
PyAV; the campaign over every container and kind of damage is ``test_damage_campaign.py``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from helpers import cut, damage, music, mutate, write, write_m4a, write_music_as, write_video
from music2emotion import EmotionModel
from music2emotion.audio import MAX_DAMAGED_SHARE, AudioError, Ending, Losses, load_audio, stream_audio, verdict
from music2emotion.cli import main

pytest.importorskip("av")

SECONDS = 30.0
WARNING = re.compile(r"damaged: ([\d.]+) s of audio could not be decoded and was skipped \(at ([\d.]+) s\)")


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s of the same music in each format whose damage the tests make."""
    folder = tmp_path_factory.mktemp("songs")
    for name in ("song.mp3", "song.m4a", "song.flac", "song.ogg", "song.opus", "song.webm", "song.wav"):
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
# every container, with the fast model: CI's; the quick loop keeps the damage campaign's
# quick part, one outcome of each container
@pytest.mark.slow
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


def test_bits_flipped_all_over_an_ogg_file_are_decoded_as_they_are(songs, tmp_path):
    """0.1 % of a 30 s Opus file's bits flipped leaves nearly every page with a bad checksum:
    FFmpeg, which drops such pages, refused the file ("truncated: the audio stops at 0.0 s");
    skipping them would lose most of it, so they are decoded as they are, and said to be."""
    broken = tmp_path / "flipped.opus"
    broken.write_bytes(mutate((songs / "song.opus").read_bytes(), "flip"))
    blocks = stream_audio(broken)
    decoded = sum(map(len, blocks)) / 22_050
    assert decoded > (1 - MAX_DAMAGED_SHARE) * SECONDS
    kept = re.search(r"([\d.]+) s of audio was decoded from data that fails its checksum$", blocks.damage)
    assert blocks.damage.startswith("damaged: ") and kept and float(kept.group(1)) > 20, blocks.damage


def test_64_kb_zeroed_in_an_ogg_file_are_skipped(songs, tmp_path):
    """FFmpeg's Ogg demuxer gives up after 64 kB without a page, so a zeroed stretch that
    long ended the file there; the stretch is left out of what it reads."""
    data = bytearray((songs / "song.opus").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 65536] = bytes(65536)
    broken = tmp_path / "zeroed.opus"
    broken.write_bytes(bytes(data))
    blocks = stream_audio(broken)
    decoded = sum(map(len, blocks)) / 22_050
    found = WARNING.fullmatch(blocks.damage)
    assert found and float(found.group(1)) == pytest.approx(SECONDS - decoded, abs=0.1), blocks.damage
    assert 2 < float(found.group(1)) < MAX_DAMAGED_SHARE * SECONDS


def test_a_stream_says_what_it_skipped_once_it_is_done(songs, tmp_path):
    blocks = stream_audio(damage(songs / "song.m4a", tmp_path / "song.m4a"))
    assert next(blocks).size and blocks.damage == ""  # not known before the end
    rest = list(blocks)
    assert rest and WARNING.fullmatch(blocks.damage)


@pytest.mark.slow
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


# What a cut file gives: a warning with what was decoded and what the header states, or
# past a quarter of the audio missing an error; an Ogg file states no length but its last
# page (a cut one lacks the page that ends the stream), so its warning says what was
# decoded; an MP4 cut before its index (FFmpeg writes it last) cannot be read at all.
CUT_WARNING = r"truncated: 2\d(\.\d+)? s of 30 s decoded, the rest is missing"
UNSTATED = r"truncated: 2\d(\.\d+)? s decoded, then the file stops short \(it does not state its full length\)"
CUT_ERROR = r"truncated: 2\d(\.\d+)? s of 30 s decoded \((2[6-9]|3\d) % missing\), more than the 25 % a prediction may skip"
NO_INDEX = r"truncated or damaged MP4 file: FFmpeg cannot read it \(.*\)"


@pytest.mark.parametrize("name, tail, error, warning", [
    ("song.mp3", 0.1, "", CUT_WARNING),
    ("song.flac", 0.1, "", CUT_WARNING),
    ("song.webm", 0.1, "", CUT_WARNING),
    ("song.wav", 0.1, "", CUT_WARNING),
    ("song.ogg", 0.1, "", UNSTATED),
    ("song.opus", 0.1, "", UNSTATED),
    ("song.m4a", 0.1, NO_INDEX, ""),
    ("song.mp3", 0.3, CUT_ERROR, ""),
    ("song.flac", 0.3, CUT_ERROR, ""),
    ("song.webm", 0.3, CUT_ERROR, ""),
    ("song.wav", 0.3, CUT_ERROR, ""),
    ("song.ogg", 0.3, "", UNSTATED),
])
def test_a_truncated_file_is_predicted_with_a_warning_or_past_a_quarter_refused(songs, tmp_path, name, tail,
                                                                                 error, warning):
    broken = cut(songs / name, tmp_path / name, tail=tail)
    blocks = stream_audio(broken)
    if error:
        with pytest.raises(AudioError, match=f"^{error}$"):
            list(blocks)
        return
    decoded = sum(map(len, blocks)) / 22_050
    assert re.fullmatch(warning, blocks.damage), blocks.damage
    assert float(re.search(r"[\d.]+", blocks.damage).group()) == pytest.approx(decoded, abs=0.05)
    assert decoded == pytest.approx(30 * (1 - tail), abs=1.5)  # bytes and audio go together


# A head cut off: MPEG audio and FLAC frames each carry their own header, so what remains
# decodes (a FLAC frame cut in two at the start is skipped as damaged); a container whose
# first bytes are gone is nothing either decoder knows.
@pytest.mark.parametrize("name, outcome", [
    ("song.mp3", 21.0),
    ("song.flac", 21.0),
    ("song.m4a", r"not a supported audio format \(neither libsndfile nor FFmpeg recognise it\)"),
    ("song.ogg", r"not a supported audio format \(neither libsndfile nor FFmpeg recognise it\)"),
    ("song.webm", r"not a supported audio format \(neither libsndfile nor FFmpeg recognise it\)"),
])
def test_a_file_cut_at_the_head(songs, tmp_path, name, outcome):
    broken = cut(songs / name, tmp_path / name, head=0.3)
    if isinstance(outcome, float):
        blocks = stream_audio(broken)
        assert sum(map(len, blocks)) / 22_050 == pytest.approx(outcome, abs=1.0)
        assert blocks.damage == "" or WARNING.fullmatch(blocks.damage), blocks.damage
    else:
        with pytest.raises(AudioError, match=f"^{outcome}$"):
            load_audio(broken)


# --- the one policy, on its own ---------------------------------------------------------------

RATE = 1000  # frames per second of the policy's examples


def losses(*stretches: tuple[float, float]) -> Losses:
    """Losses at RATE of the stretches ``(start, seconds)``."""
    lost = Losses(RATE)
    for start, seconds in stretches:
        lost.add(int(start * RATE), int(seconds * RATE))
    return lost


@pytest.mark.parametrize("lost, decoded, declared, ending, outcome", [
    # nothing missing, or within the slack of encoder delay and padding
    ((), 30, 30, Ending(), ""),
    ((), 29.9, 30, Ending(), ""),
    ((), 30, None, Ending(), ""),
    # damaged stretches skipped: a warning, past a quarter an error
    (((10, 2),), 28, 30, Ending(), r"damaged: 2 s of audio could not be decoded and was skipped \(at 10\.0 s\)"),
    (((10, 8),), 22, 30, Ending(), r"ERROR damaged: 27 % of the audio could not be decoded \(8 s of 30 s\), "
                                   r"more than the 25 % a prediction may skip"),
    # short of the stated length: truncated, a warning, past a quarter an error
    ((), 27, 30, Ending(), r"truncated: 27 s of 30 s decoded, the rest is missing"),
    ((), 20, 30, Ending(), r"ERROR truncated: 20 s of 30 s decoded \(33 % missing\), more than the 25 % a prediction may skip"),
    ((), 27, None, Ending(seconds=30), r"truncated: 27 s of 30 s decoded, the rest is missing"),
    ((), 27, 27, Ending(seconds=30), r"truncated: 27 s of 30 s decoded, the rest is missing"),
    # a file whose bytes are all there lost the rest to damage, wherever the decoder skipped it
    ((), 27, 30, Ending(complete=True), r"damaged: 3 s of audio could not be decoded and was skipped "
                                        r"\(the decoder does not say where\)"),
    # cut, but nothing states how long it should be: what was decoded
    ((), 12, 12, Ending(cut=True), r"truncated: 12 s decoded, then the file stops short \(it does not state its full length\)"),
    ((), 12, None, Ending(cut=True), r"truncated: 12 s decoded, then the file stops short \(it does not state its full length\)"),
    # a stretch lost at the very end of a cut file is its cut
    (((27, 0.5),), 27, 30, Ending(cut=True), r"truncated: 27 s of 30 s decoded, the rest is missing"),
    # both, and both together past the quarter
    (((5, 1),), 26, 30, Ending(), r"damaged: 1 s of audio could not be decoded and was skipped \(at 5\.0 s\); "
                                  r"truncated: 26 s of 30 s decoded, the rest is missing"),
    (((5, 3),), 21, 30, Ending(), r"ERROR truncated: 30 % of the audio is missing \(3 s could not be decoded, 6 s cut off, "
                                  r"of 30 s\), more than the 25 % a prediction may skip"),
    # nothing decoded
    ((), 0, 30, Ending(), r"ERROR truncated: the file stops before any of its audio \(it holds a header and no samples\)"),
    ((), 0, None, Ending(cut=True), r"ERROR truncated: the file stops before any of its audio \(it holds a header and no samples\)"),
    ((), 0, None, Ending(), r"ERROR no audio data \(the file holds a header but no samples\)"),
    ((), 0, 30, Ending(complete=True), r"ERROR damaged: 100 % of the audio could not be decoded \(30 s of 30 s\), "
                                       r"more than the 25 % a prediction may skip"),
])
def test_one_policy_decides_what_a_file_missing_audio_gets(lost, decoded, declared, ending, outcome):
    got = losses(*lost)
    try:
        result = verdict(got, int(decoded * RATE), None if declared is None else int(declared * RATE), ending)
    except AudioError as exc:
        result = f"ERROR {exc}"
    assert re.fullmatch(outcome, result), result


def test_a_header_naming_a_codec_no_decoder_knows_is_a_one_line_error(tmp_path):
    """A WAV whose block size and sample size are damaged (libsndfile refuses it, FFmpeg
    opens it without a decoder) gave "unexpected AttributeError: 'NoneType' object has no
    attribute 'sample_rate'"."""
    data = bytearray(write_music_as(tmp_path / "whole.wav", 2.0).read_bytes())
    data[32:36] = b"\x04\x1b\x80\x22"
    (tmp_path / "broken.wav").write_bytes(bytes(data))
    with pytest.raises(AudioError, match=r"^no decoder for its audio \(an unknown codec, or a damaged header\)$"):
        load_audio(tmp_path / "broken.wav")


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
