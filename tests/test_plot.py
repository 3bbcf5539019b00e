"""Pictures: a song's emotion over time, and many songs on the valence-arousal plane."""

from __future__ import annotations

import sys

import pytest
from helpers import write_music

from music2emotion import Prediction, Segment
from music2emotion.cli import main
from music2emotion.plot import QUADRANTS, plot_plane, plot_timeline

matplotlib = pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _svg_text(draw, path) -> str:
    # keep text as text so the test can read what was drawn
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        draw(path)
    return path.read_text(encoding="utf-8")


def test_timeline_plot_shows_both_curves_and_song_values(model, tmp_path):
    pred = model.predict_file(write_music(tmp_path / "song.wav", 9.0), hop_seconds=1.0, timeline=True)
    svg = _svg_text(lambda p: plot_timeline(pred, p, title="my song"), tmp_path / "t.svg")
    assert "my song" in svg
    assert f"valence of the song: {pred.valence:.2f}" in svg
    assert f"arousal of the song: {pred.arousal:.2f}" in svg
    assert "0:08" in svg  # time axis in min:s
    w, h = _png_size(plot_timeline(pred, tmp_path / "t.png", scale="deam"))
    assert (w, h) == (800, 360)
    ref = [Segment(0, 4.5, 0.2, 0.3), Segment(4.5, 9, 0.8, 0.7)]
    svg = _svg_text(lambda p: plot_timeline(pred, p, reference=ref), tmp_path / "r.svg")
    assert "valence, reference" in svg and "arousal, reference" in svg


def test_timeline_plot_needs_a_timeline(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_timeline(Prediction("x.wav", error="empty file (0 bytes)"), tmp_path / "x.png")


def test_plane_names_the_quadrants_and_the_points(tmp_path):
    points = [("calm one", 0.8, 0.2), ("angry one", 0.1, 0.9)]
    svg = _svg_text(lambda p: plot_plane(points, p), tmp_path / "va.svg")
    for label in [*QUADRANTS.values(), "calm one", "angry one", "valence", "arousal"]:
        assert label in svg
    # too many points to label: dots only
    many = [(f"song{i}", (i % 10) / 10, (i // 10) / 10) for i in range(100)]
    svg = _svg_text(lambda p: plot_plane(many, p, scale="deam"), tmp_path / "many.svg")
    assert "song7" not in svg and "100 files" in svg and "(1-9)" in svg


def test_plot_command(tiny_model, tmp_path, capfd):
    song = write_music(tmp_path / "song.wav", 6.0)
    out = tmp_path / "curve.png"
    assert main(["plot", str(song), "-o", str(out), "--model", str(tiny_model), "--hop", "1"]) == 0
    assert _png_size(out)[0] > 0
    assert "over 5 windows" in capfd.readouterr().out
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert main(["plot", str(empty), "-o", str(tmp_path / "no.png"), "--model", str(tiny_model)]) == 1
    assert "empty file" in capfd.readouterr().err
    assert not (tmp_path / "no.png").exists()


def test_predict_plot_draws_every_file_including_resumed_ones(tiny_model, tmp_path, capfd):
    songs = [write_music(tmp_path / f"s{i}.wav", 2.5, seed=i) for i in range(3)]
    out, va = tmp_path / "out.csv", tmp_path / "va.svg"
    base = ["predict", "--model", str(tiny_model), "--jobs", "1", "-o", str(out)]
    assert main([*base, *map(str, songs[:2])]) == 0
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        assert main([*base, *map(str, songs), "--resume", "--plot", str(va)]) == 0
    svg = va.read_text(encoding="utf-8")
    assert all(f">{s.stem}<" in svg for s in songs) and "3 files" in svg
    # without -o, this run's files
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        assert main(["predict", "--model", str(tiny_model), "--jobs", "1", str(songs[2]),
                     "--plot", str(va)]) == 0
    svg = va.read_text(encoding="utf-8")
    assert f">{songs[2].stem}<" in svg and f">{songs[0].stem}<" not in svg and "1 file" in svg


def test_missing_matplotlib_is_a_usage_error(tiny_model, tmp_path, capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    song = write_music(tmp_path / "s.wav", 2.5)
    code = main(["predict", str(song), "--model", str(tiny_model), "--plot", str(tmp_path / "v.png")])
    assert code == 2
    assert "pip install 'music2emotion[plot]'" in capfd.readouterr().err


def test_predict_plot_reads_a_parquet_output_back(tiny_model, tmp_path, capfd):
    pytest.importorskip("pyarrow")
    songs = [write_music(tmp_path / f"p{i}.wav", 2.5, seed=i) for i in range(2)]
    out = tmp_path / "rows.parquet"
    assert main(["predict", *map(str, songs), "--model", str(tiny_model), "--jobs", "1",
                 "-o", str(out), "--plot", str(tmp_path / "va.png")]) == 0
    assert _png_size(tmp_path / "va.png")[0] > 100
    assert "wrote" in capfd.readouterr().err


def test_pictures_draw_the_intervals_and_the_mood_words(mood_model, mood_folder, tmp_path):
    from music2emotion import EmotionModel
    from music2emotion.plot import PlanePoint

    moody = EmotionModel(mood_model, threads=1)
    pred = moody.predict_file(mood_folder / "sad.wav", hop_seconds=0.5, timeline=True)
    svg = _svg_text(lambda p: plot_timeline(pred, p), tmp_path / "t.svg")
    assert "valence, 90 % interval" in svg and f"sad.wav \u2014 {pred.mood}" in svg
    # the mood of each window along the top, as its row says
    words = {s.row()["mood"] for s in pred.timeline}
    assert all(w in svg for w in words)
    deam = _svg_text(lambda p: plot_timeline(pred, p, scale="deam"), tmp_path / "d.svg")
    assert f"valence of the song: {pred.row('deam')['valence']:.2f}" in deam
    points = [PlanePoint.from_row(m, moody.predict_file(mood_folder / f"{m}.wav").row()) for m in ("sad", "happy")]
    assert points[0].mood == "sad" and points[0].valence_low is not None
    svg = _svg_text(lambda p: plot_plane(points, p), tmp_path / "va.svg")
    assert "sad (sad)" in svg and "happy (happy)" in svg
