"""Whole songs over time: windows, the song-level rule, and many files in worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _helpers_catalog import (  # noqa: F401 - tiny_model is a fixture
    alive,
    broken_initializer,
    failed_item,
    square_or_die,
    square_slowly,
    tiny_model,
    write,
)

from music2emotion.audio import load_audio
from music2emotion.config import to_deam
from music2emotion.features import window_features
from music2emotion.inference import (
    EmotionModel,
    Prediction,
    WorkersKeepDying,
    predict_files,
    run_in_processes,
    time_weighted_mean,
)


@pytest.fixture(scope="module")
def model(tiny_model):  # noqa: F811
    return EmotionModel(tiny_model, threads=1)


def test_time_weighted_mean_counts_every_second_once():
    v = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    # back to back: the plain mean
    assert time_weighted_mean([0, 2, 4], [2, 4, 6], v) == pytest.approx(v.mean(0))
    # last window aligned to the end overlaps the second by 1.5 s, so it weighs 0.5 + 1.5/2
    # and the second 0.5 + 1.5/2 as well; the first keeps its 2 s
    got = time_weighted_mean([0, 2, 2.5], [2, 4, 4.5], v)
    w = np.array([2.0, 1.25, 1.25])
    assert got == pytest.approx(w @ v / w.sum())
    # windows that leave gaps: the gaps do not count
    assert time_weighted_mean([0, 10], [2, 12], v[:2]) == pytest.approx(v[:2].mean(0))
    # fully overlapping windows (hop = half a window): ends weigh less than the middle
    got = time_weighted_mean([0, 1, 2], [2, 3, 4], v)
    assert got == pytest.approx(np.array([1.5, 1.0, 1.5]) @ v / 4)


def test_timeline_windows_and_song_value(model, tmp_path):
    path = write(tmp_path / "seven.wav", 7.0)
    pred = model.predict_file(path, timeline=True)
    assert pred.ok and pred.windows == 4
    # windows of 2 s at 0, 2, 4, and one aligned to the end rather than zero-padded
    assert [(s.start, s.end) for s in pred.timeline] == [(0, 2), (2, 4), (4, 6), (5, 7)]
    assert pred.duration == pytest.approx(7.0, abs=0.01)
    # each window's value is the model on that stretch of audio
    y = load_audio(path)
    for seg in pred.timeline:
        a = int(round(seg.start * model.settings.sample_rate))
        x = window_features(y[a : a + model.settings.window_samples], model.settings)
        assert [seg.valence, seg.arousal] == pytest.approx(
            model.predict_features(x[None])[0].tolist(), abs=1e-5)
    values = np.array([[s.valence, s.arousal] for s in pred.timeline])
    w = np.array([2.0, 2.0, 1.5, 1.5])
    assert [pred.valence, pred.arousal] == pytest.approx(w @ values / 7.0, abs=1e-6)
    # the timeline is only kept when asked for; the song value is the same either way
    plain = model.predict_file(path)
    assert plain.timeline == [] and plain.valence == pytest.approx(pred.valence)


def test_window_and_hop_are_configurable(model, tmp_path):
    path = write(tmp_path / "seven.wav", 7.0)
    hop = model.predict_file(path, hop_seconds=1.0, timeline=True)
    assert [s.start for s in hop.timeline] == [0, 1, 2, 3, 4, 5]
    longer = model.predict_file(path, window_seconds=3.5, timeline=True)
    assert [(s.start, s.end) for s in longer.timeline] == [(0, 3.5), (3.5, 7)]
    both = model.predict_file(path, window_seconds=3.0, hop_seconds=1.5, timeline=True)
    assert [s.start for s in both.timeline] == [0, 1.5, 3, 4]
    # batches split anywhere give the same values
    small = model.predict_file(path, hop_seconds=1.0, batch_size=1, timeline=True)
    assert [s.valence for s in small.timeline] == pytest.approx([s.valence for s in hop.timeline])


def test_short_file_is_one_padded_window(model, tmp_path):
    pred = model.predict_file(write(tmp_path / "one.wav", 1.2), timeline=True)
    assert pred.ok and pred.windows == 1
    assert (pred.timeline[0].start, pred.timeline[0].end) == (0.0, 1.2)


def test_bad_arguments_raise(model, tmp_path):
    path = write(tmp_path / "a.wav", 3.0)
    for kwargs in ({"hop_seconds": 0}, {"window_seconds": 0.1}, {"batch_size": 0}):
        with pytest.raises(ValueError):
            model.predict_file(path, **kwargs)
    with pytest.raises(ValueError):
        list(predict_files([path], model, jobs=2, window_seconds=0.2))


def test_rows_on_both_scales():
    pred = Prediction("x.wav", valence=0.25, arousal=0.5, duration=3.0, windows=2)
    assert pred.row()["valence"] == 0.25
    deam = pred.row("deam")
    assert (deam["valence"], deam["arousal"]) == (float(to_deam(0.25)), 5.0) == (3.0, 5.0)
    failed = Prediction("y.mp3", error="empty file (0 bytes)").row("deam")
    assert failed["valence"] is None and failed["error"] == "empty file (0 bytes)"


def test_worker_processes_match_one_process(model, tiny_model, tmp_path):  # noqa: F811
    paths = [write(tmp_path / f"{i:02d}.wav", 2.5 + i % 3, seed=i) for i in range(6)]
    paths.insert(3, tmp_path / "missing.wav")
    serial = list(predict_files(paths, model, jobs=1, timeline=True))
    parallel = list(predict_files(paths, tiny_model, jobs=2, timeline=True))
    assert [p.path for p in parallel] == [str(p) for p in paths]  # input order
    for a, b in zip(serial, parallel):
        assert (a.error, a.windows) == (b.error, b.windows)
        if a.ok:
            assert a.valence == pytest.approx(b.valence, abs=1e-5)
            assert len(b.timeline) == a.windows
    assert parallel[3].error == "file not found"


@pytest.mark.parametrize("ordered", [True, False])
def test_a_worker_that_dies_costs_only_its_own_item(ordered):
    items = list(range(9))
    got = list(run_in_processes(items, square_or_die, 2, failed_item, ordered=ordered))
    expected = [-1 if x == 3 else x * x for x in items]
    assert (got if ordered else sorted(got)) == (expected if ordered else sorted(expected))


def test_stopping_early_stops_the_workers():
    import multiprocessing as mp
    import time

    results = run_in_processes(list(range(6)), square_slowly, 2, failed_item, ordered=False)
    assert next(results) == 0
    workers = [p.pid for p in mp.active_children()]
    assert workers
    t0 = time.monotonic()
    results.close()  # a consumer that breaks off, or Ctrl-C
    # ask the OS, not Process objects: the pool's own thread reaps the workers concurrently
    while any(alive(pid) for pid in workers) and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def test_workers_that_never_start_stop_the_run():
    with pytest.raises(WorkersKeepDying):
        list(run_in_processes(list(range(6)), square_or_die, 2, failed_item,
                              initializer=broken_initializer))



def test_output_formats_on_stdout(tiny_model, tmp_path, capfd):  # noqa: F811
    import csv
    import io
    import json

    from music2emotion.cli import main

    songs = [write(tmp_path / "b.wav", 5.0), write(tmp_path / "a.wav", 3.0, seed=1)]
    base = ["predict", *map(str, songs), "--model", str(tiny_model), "--jobs", "1"]
    assert main([*base, "--timeline", "--format", "jsonl", "--scale", "deam"]) == 0
    objs = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [Path(o["path"]).name for o in objs] == ["b.wav", "a.wav"]  # input order
    assert [len(o["timeline"]) for o in objs] == [o["windows"] for o in objs] == [3, 2]
    assert all(1 <= s["valence"] <= 9 and set(s) == {"start", "end", "valence", "arousal"}
               for o in objs for s in o["timeline"])
    assert main([*base, "--timeline"]) == 0
    rows = list(csv.DictReader(io.StringIO(capfd.readouterr().out)))
    assert [r["kind"] for r in rows] == ["window"] * 3 + ["song"] + ["window"] * 2 + ["song"]
    assert all(0 <= float(r["valence"]) <= 1 for r in rows)
