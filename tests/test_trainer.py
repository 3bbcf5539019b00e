"""``music2emotion train`` end to end: each form of labels makes a model every command takes,
with its report; every window of every file teaches; features are cached per file, and a
run that dies leaves nothing half-written and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")
pytestmark = pytest.mark.slow  # training

from helpers import MAJOR, MINOR, clicks, make_deam_like, make_quadrant_like, tone, write  # noqa: E402
from music2emotion import EmotionModel, predict_file  # noqa: E402
from music2emotion.cli import main  # noqa: E402
from music2emotion.modelfile import DEAM_OUTPUT, ENCODER_OUTPUT, OUTPUT  # noqa: E402
from music2emotion.training.arches import ARCHES  # noqa: E402
from music2emotion.training.features import file_rows  # noqa: E402

MOODS = ("happy", "angry", "sad", "tender")


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """A 4Q-layout set of 40 songs whose quadrants follow the sound, a 24-song DEAM-layout
    set whose ratings do, and a shared feature cache."""
    root = tmp_path_factory.mktemp("labelled")
    return {"quadrants": make_quadrant_like(root / "4q", per_quadrant=10),
            "deam": make_deam_like(root / "deam", n=24), "cache": root / "cache"}


def _train(out: Path, sets: dict, *args: str) -> dict:
    assert main(["train", "--out", str(out), "--cache-dir", str(sets["cache"]), "--jobs", "2", *args]) == 0
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def by_moods(sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("moods") / "run"
    return out, _train(out, sets, "--labels", str(sets["quadrants"]))


@pytest.fixture(scope="module")
def by_ratings(sets, tmp_path_factory):
    audio, ann = sets["deam"]
    out = tmp_path_factory.mktemp("ratings") / "run"
    return out, _train(out, sets, "--annotations", str(ann), "--audio-dir", str(audio))


@pytest.fixture(scope="module")
def by_both(sets, tmp_path_factory):
    audio, ann = sets["deam"]
    out = tmp_path_factory.mktemp("both") / "run"
    return out, _train(out, sets, "--labels", str(sets["quadrants"]), "--annotations", str(ann),
                       "--audio-dir", str(audio))


def test_moods_make_the_one_answer_with_moods_and_no_intervals(by_moods, sets):
    out, report = by_moods
    assert {p.name for p in out.iterdir()} == {"emotion_model.onnx", "report.json", "report.md",
                                              "quadrants.png", "reliability.png"}
    assert report["outputs"] == {"unit": "moods (the quadrant head)", "deam": None, "moods": True, "intervals": False}
    model = EmotionModel(out / "emotion_model.onnx")
    assert model.window_outputs == (OUTPUT,) and model.mood_head and model.intervals is None
    assert model.info["trained_on"]["labels"] == ["moods"]
    assert model.info["trained_on"]["moods"] == dict.fromkeys(MOODS, 10)
    assert set(model.info["validation"]["mean"]) >= {"valence_auc", "arousal_auc", "mood_right", "ece"}
    # the labels follow the sound: songs of other artists are told apart far above chance
    mean = report["figures"]["mean"]
    assert mean["arousal_auc"] > 0.9 and mean["valence_auc"] > 0.75 and mean["mood_right"] > 0.5
    assert len(report["figures"]["per_fold"]) == 5 and report["folds"]["grouped_by_artist"]
    # each artist's two songs sit in one fold
    for fold in report["folds"]["songs"]:
        names = [Path(p).stem for p in fold]
        assert all(f"{n[:-1]}{int(n[-1]) ^ 1}" in names for n in names)
    assert report["export_check"]["max_abs_diff"][OUTPUT] < 1e-4


def test_ratings_alone_make_the_ratings_convention_with_intervals(by_ratings):
    out, report = by_ratings
    assert report["outputs"]["unit"] == "ratings" and report["outputs"]["deam"] is None
    assert report["trained_on"]["rating_scale"] == "1-9" and (out / "ratings.png").is_file()
    model = EmotionModel(out / "emotion_model.onnx")
    assert model.window_outputs == (OUTPUT,) and model.intervals is not None and model.mood_head
    mean = report["figures"]["mean"]
    assert mean["arousal_r2"] > 0.5 and 0.7 <= mean["arousal_coverage"] <= 1.0
    assert "valence_auc" not in mean


def test_moods_and_ratings_make_both_conventions(by_both, sets, tmp_path, capsys):
    out, report = by_both
    model_file = out / "emotion_model.onnx"
    model = EmotionModel(model_file)
    assert model.window_outputs == (OUTPUT, DEAM_OUTPUT) and model.intervals is not None
    assert set(report["calibration"]) == {"unit", "deam"} and report["relation"] is not None
    assert report["trained_on"]["songs"] == 64
    song = sets["quadrants"].parent / "audio" / "Q1S00.mp3"
    p = predict_file(song, model_file)
    assert p.ok and p.mood in MOODS and p.deam is not None and p.valence_low is not None
    # every command takes it
    assert main(["predict", str(song), "--model", str(model_file), "--scale", "deam", "-o",
                 str(tmp_path / "rows.csv")]) == 0
    assert main(["evaluate", "--model", str(model_file), "--quadrants", str(sets["quadrants"]),
                 "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["quadrants"]["songs"] == 40
    assert main(["plot", str(song), "--model", str(model_file), "-o", str(tmp_path / "curve.png")]) == 0
    pytest.importorskip("mutagen")
    music = tmp_path / "music"
    music.mkdir()
    for f in sorted(song.parent.glob("Q[14]S0*.mp3"))[:4]:
        (music / f.name).write_bytes(f.read_bytes())
    # the encoder hears these generated chords and clicks as no music: tag and list them anyway
    assert main(["tag", str(music), "--model", str(model_file), "--no-progress", "--include-not-music"]) == 0
    assert main(["playlist", str(music), "--mood", "happy", "-o", str(tmp_path / "happy.m3u8"), "--length", "2",
                 "--include-not-music"]) == 0
    assert len([line for line in (tmp_path / "happy.m3u8").read_text().splitlines() if not line.startswith("#")]) == 2


def test_the_report_is_readable_and_says_what_was_measured(by_both):
    out, report = by_both
    text = (out / "report.md").read_text()
    assert "| mean ± std |" in text and "valence AUC" in text and "valence R²" in text
    assert "![quadrants.png](quadrants.png)" in text and "Calibration, fitted out of fold" in text
    for key in ("per_fold", "mean", "std"):
        assert key in report["figures"]


def test_mood_folders_train_like_a_csv(sets, tmp_path):
    folders = tmp_path / "folders"
    audio = sets["quadrants"].parent / "audio"
    for q, word in enumerate(("joyful", "tense", "sad", "relaxed"), start=1):
        (folders / word).mkdir(parents=True)
        for f in sorted(audio.glob(f"Q{q}S*.mp3")):
            os.link(f, folders / word / f.name)
    report = _train(tmp_path / "run", sets, "--mood-folders", str(folders))
    assert report["trained_on"]["moods"] == dict.fromkeys(MOODS, 10)
    assert not report["folds"]["grouped_by_artist"]


def test_files_that_cannot_be_read_are_named_skipped_and_the_model_still_written(sets, tmp_path, capsys):
    audio = sets["quadrants"].parent / "audio"
    rows = ["path,mood"] + [f"{f},{('happy', 'angry', 'sad', 'tender')[int(f.name[1]) - 1]}"
                            for f in sorted(audio.glob("*.mp3"))]
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio at all" * 100)
    rows += [f"{broken},happy", f"{tmp_path / 'gone.mp3'},sad"]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    report = _train(tmp_path / "run", sets, "--labels", str(labels))
    said = capsys.readouterr().out
    assert f"{tmp_path / 'gone.mp3'}: no such file" in said
    assert f"skipped {broken}: " in said
    assert report["trained_on"]["songs"] == 40 and (tmp_path / "run" / "emotion_model.onnx").is_file()
    assert len(report["skipped"]) == 2


def test_every_window_of_a_long_file_is_a_row_as_inference_cuts_it(tmp_path):
    arch = ARCHES["accurate"]
    graph, rows = arch.ears()
    song = write(tmp_path / "long.flac", np.concatenate([tone(MAJOR, 12.0), tone(MINOR, 13.0) + clicks(6, 13.0)]))
    (got,) = file_rows([song], graph, arch.kind, arch.settings, cache_dir=tmp_path / "cache", progress=False,
                       log=lambda _: None)
    assert got.x.shape == (3, rows.width) and got.spans.tolist() == [[0, 10], [10, 20], [15, 25]]
    model = EmotionModel("accurate")
    windows = model.predict_file(song, timeline=True).timeline
    assert [(w.start, w.end) for w in windows] == [tuple(s) for s in got.spans]
    # the rows are what the shipped graph computes: its encoder output is their first columns
    inputs = [model.window_inputs(w) for w in _windows(song, model)]
    enc = np.concatenate([model.session.run([ENCODER_OUTPUT], {"mel": i["mel"][None]})[0] for i in inputs])
    assert np.abs(enc - got.x[:, :enc.shape[1]]).max() < 1e-4


def _windows(path, model):
    from music2emotion.audio import stream_audio
    from music2emotion.windows import iter_windows

    return [w.samples for w in iter_windows(stream_audio(path, model.settings.sample_rate), model.settings)]


def test_a_killed_run_leaves_no_model_and_the_next_one_resumes(sets, tmp_path, capsys):
    """Kill a run while it computes features; the cache keeps what it finished, nothing
    half-written is left, and the next run computes only the rest."""
    cache, out = tmp_path / "cache", tmp_path / "run"
    cmd = [sys.executable, "-m", "music2emotion.cli", "train", "--labels", str(sets["quadrants"]), "--out", str(out),
           "--cache-dir", str(cache), "--jobs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def entries() -> list[Path]:
        return [p for p in cache.rglob("*.npz") if not p.name.endswith(".tmp.npz")]

    deadline = time.time() + 120
    while len(entries()) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(entries())
    assert 5 <= done < 40
    assert not out.exists() or not list(out.iterdir())
    capsys.readouterr()
    assert main(["train", "--labels", str(sets["quadrants"]), "--out", str(out), "--cache-dir", str(cache),
                 "--jobs", "1"]) == 0
    assert f"features: {done} of 40 files cached" in capsys.readouterr().out
    assert (out / "emotion_model.onnx").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "a staged file was left behind"
    assert not list(cache.rglob("*.tmp.npz"))
