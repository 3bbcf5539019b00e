"""Not music: the rule on the encoder's Music and Speech logits, the warning it puts on a
row (after the others, the values kept), what the bundled models hear in generated noise,
music and speech, a model without the encoder's output, and the same warning from every
way in (the library, worker processes, the command line, the Ray engine, the server)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import SR, band, noise, write
from music2emotion import EmotionModel, cli, predict_audio, predict_files
from music2emotion.music import (
    EMBEDDING_WIDTH,
    ENCODER_WIDTH,
    HEARD_OUTPUT,
    MUSIC_BELOW,
    MUSIC_CLASS,
    NOT_MUSIC_SHARE,
    SPEECH_ABOVE,
    SPEECH_CLASS,
    SPEECH_OVER_MUSIC,
    heard,
    is_not_music,
    not_music,
    not_music_kind,
)
from music2emotion.prediction import SILENT_WARNING, song_prediction

MUSIC, SPEECH, NOISE = (2.0, -4.0), (-3.0, 1.5), (-4.0, -4.0)  # (Music, Speech) logits of a window


def rows(*windows: tuple[float, float]) -> np.ndarray:
    return np.array(windows, np.float64)


# --- the rule -------------------------------------------------------------------------------


def test_a_file_is_not_music_when_most_of_its_audio_has_none():
    assert not_music(rows(NOISE, NOISE, MUSIC), np.ones(3)) == "not music: noise (no music heard in 67 % of the audio)"
    assert not_music(rows(SPEECH, MUSIC), np.array([3.0, 1.0])).startswith("not music: speech (")
    # half is not most: a spoken intro as long as the song is still a song
    assert NOT_MUSIC_SHARE == 0.5 and not_music(rows(SPEECH, MUSIC), np.ones(2)) == ""
    # weighed by the audio each window stands for, not counted
    assert not_music(rows(SPEECH, SPEECH, MUSIC), np.array([1.0, 1.0, 3.0])) == ""
    assert not_music(rows(MUSIC), np.zeros(1)) == ""


def test_each_threshold_is_where_the_rule_turns():
    eps = 1e-3
    assert not_music(rows((MUSIC_BELOW + eps, -5.0)), np.ones(1)) == ""
    assert not_music_kind(not_music(rows((MUSIC_BELOW - eps, -5.0)), np.ones(1))) == "noise"
    # speech over a faint music bed: Speech above Music by more than the margin
    music = 0.5
    assert not_music(rows((music, music + SPEECH_OVER_MUSIC - eps)), np.ones(1)) == ""
    assert not_music_kind(not_music(rows((music, music + SPEECH_OVER_MUSIC + eps)), np.ones(1))) == "speech"
    # no music: speech or noise by the Speech logit
    assert not_music_kind(not_music(rows((-4.0, SPEECH_ABOVE + eps)), np.ones(1))) == "speech"
    assert not_music_kind(not_music(rows((-4.0, SPEECH_ABOVE - eps)), np.ones(1))) == "noise"


def test_the_kind_is_the_one_that_takes_more_of_the_audio_without_music():
    assert not_music_kind(not_music(rows(NOISE, NOISE, SPEECH), np.ones(3))) == "noise"
    assert not_music_kind(not_music(rows(NOISE, SPEECH, SPEECH, MUSIC), np.ones(4))) == "speech"


def test_heard_reads_the_music_and_speech_logits_after_the_embedding():
    encoder = np.zeros((2, ENCODER_WIDTH), np.float32)
    encoder[:, :EMBEDDING_WIDTH] = 99.0  # the embedding is not read
    encoder[0, EMBEDDING_WIDTH + MUSIC_CLASS], encoder[0, EMBEDDING_WIDTH + SPEECH_CLASS] = 1.5, -2.0
    encoder[1, EMBEDDING_WIDTH + MUSIC_CLASS], encoder[1, EMBEDDING_WIDTH + SPEECH_CLASS] = -3.0, 0.5
    assert heard(encoder).tolist() == [[1.5, -2.0], [-3.0, 0.5]]


def test_not_music_is_read_from_a_rows_joined_warnings():
    assert not_music_kind("damaged: 1.0 s of audio could not be decoded and was skipped (at 3.0 s); "
                          "not music: speech (no music heard in 90 % of the audio)") == "speech"
    assert is_not_music("not music: noise (no music heard in 100 % of the audio)")
    assert not is_not_music("") and not is_not_music(SILENT_WARNING)


# --- the row --------------------------------------------------------------------------------


def test_the_warning_comes_after_the_others_and_the_values_stay():
    spans = [(0.0, 10.0), (10.0, 20.0)]
    values = np.array([[0.2, 0.9], [0.4, 0.7]])
    outputs = {"output": values, HEARD_OUTPUT: rows(NOISE, NOISE)}
    pred = song_prediction("a.wav", spans, outputs, duration=20.0, silent=False, damage="damaged: x",
                           timeline=True)
    damaged, hearing = pred.warning.split("; ")
    assert damaged == "damaged: x" and not_music_kind(hearing) == "noise"
    assert pred.ok and [pred.valence, pred.arousal] == pytest.approx(values.mean(0))
    assert [s.valence for s in pred.timeline] == pytest.approx([0.2, 0.4])
    # digital silence has its own warning, and no second one
    silent = song_prediction("a.wav", spans, outputs, duration=20.0, silent=True)
    assert silent.warning == SILENT_WARNING
    # music, or a model that does not hear: no warning
    assert song_prediction("a.wav", spans, {**outputs, HEARD_OUTPUT: rows(MUSIC, MUSIC)}, duration=20.0,
                           silent=False).warning == ""
    assert song_prediction("a.wav", spans, {"output": values}, duration=20.0, silent=False).warning == ""


# --- what the bundled models hear -------------------------------------------------------------


@pytest.fixture(scope="module", params=["fast", "accurate"])
def hearing(request: pytest.FixtureRequest) -> EmotionModel:
    return EmotionModel(request.param, threads=1)


def test_a_bundled_model_hears_noise_and_music(hearing):
    assert hearing.hears and hearing.window_widths[HEARD_OUTPUT] == 2
    white = predict_audio(noise(12.0, amp=0.1), SR, hearing)
    assert white.ok and white.valence is not None and white.mood
    assert white.warning == "not music: noise (no music heard in 100 % of the audio)"
    for seed in range(3):
        assert predict_audio(band(10.0, seed=seed), SR, hearing).warning == ""


def test_music_with_noise_after_it_is_music_while_music_lasts_most_of_it(hearing):
    mostly_music = np.concatenate([band(20.0), noise(10.0, amp=0.1)])
    mostly_noise = np.concatenate([band(10.0), noise(20.0, amp=0.1)])
    assert predict_audio(mostly_music, SR, hearing).warning == ""
    assert predict_audio(mostly_noise, SR, hearing).warning == "not music: noise (no music heard in 67 % of the audio)"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng to synthesise speech")
def test_a_bundled_model_hears_speech(hearing, tmp_path):
    wav = tmp_path / "speech.wav"
    text = ("Welcome back to the podcast. Today my guest explains how the early trade routes shaped "
            "the towns we know, and why some of them vanished while others grew into cities.")
    subprocess.run(["espeak-ng", "-v", "en", "-w", str(wav), text], check=True, capture_output=True)
    pred = hearing.predict_file(wav)
    assert pred.ok and not_music_kind(pred.warning) == "speech", pred.warning


def test_a_model_without_the_encoders_output_never_warns(tmp_path):
    seed = EmotionModel("seed", threads=1)
    assert not seed.hears and HEARD_OUTPUT not in seed.run_windows([])
    pred = predict_audio(noise(12.0, amp=0.1), SR, seed)
    assert pred.ok and pred.warning == ""


# --- every way in ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def heard_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("heard")
    write(d / "noise.wav", noise(12.0, amp=0.1))
    write(d / "band.flac", band(12.0))
    return d


def test_the_command_line_writes_the_warning_and_exits_0(heard_folder, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    assert cli.main(["predict", str(heard_folder), "--model", "fast", "--jobs", "1", "-o", str(out),
                     "--no-progress"]) == 0
    got = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert got["noise.wav"]["warning"].startswith("not music: noise") and got["noise.wav"]["valence"] is not None
    assert got["band.flac"]["warning"] == ""
    assert f"warning: {heard_folder / 'noise.wav'}: not music: noise" in capsys.readouterr().err


@pytest.mark.slow
# Ray Data's execution touches its own deprecated settings; nothing this project sets
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
def test_worker_processes_the_ray_engine_and_the_server_give_the_same_warning(heard_folder, ray_instance):
    from music2emotion import ray_engine

    files = sorted(heard_folder.iterdir())
    model = EmotionModel("fast", threads=1)
    here = {p.path: p.warning for p in predict_files(files, model, jobs=1)}
    assert here[str(heard_folder / "noise.wav")].startswith("not music: noise")
    assert here[str(heard_folder / "band.flac")] == ""
    workers = {p.path: p.warning for p in predict_files(files, model, jobs=2)}
    on_ray = {p.path: p.warning for p in ray_engine.predict(files, model=model)}
    assert workers == on_ray == here

    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    httpx = pytest.importorskip("httpx")
    from music2emotion.server import ServerSettings, create_app, running

    with running(create_app("fast", ServerSettings(workers=1))) as url, httpx.Client(base_url=url, timeout=120) as c:
        for f in files:
            r = c.post("/api/predict", files={"file": (f.name, f.read_bytes(), "audio/wav")})
            assert r.status_code == 200, r.text
            (res,) = r.json()["results"]
            assert res["warning"] == here[str(f)], f.name
