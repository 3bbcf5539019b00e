"""Pictures: a song's emotion over time, and many songs on the valence-arousal plane."""

from __future__ import annotations

import sys

import pytest
from helpers import write_music

from music2emotion import Prediction, Segment
from music2emotion.cli import main
from music2emotion.config import MOOD_CLASSES, MOOD_COLORS, TARGET_COLORS
from music2emotion.plot import QUADRANTS, plane_figure, plot_plane, plot_timeline, time_step, timeline_figure

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


def _drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_timeline_plot_shows_both_curves_and_the_song_values_apart(model, tmp_path):
    pred = model.predict_file(write_music(tmp_path / "song.wav", 9.0), hop_seconds=1.0, timeline=True)
    svg = _svg_text(lambda p: plot_timeline(pred, p, title="my song"), tmp_path / "t.svg")
    assert "my song" in svg
    assert f">{pred.row()['valence']:.2f}<" in svg and f">{pred.row()['arousal']:.2f}<" in svg
    assert _png_size(plot_timeline(pred, tmp_path / "t.png", scale="deam")) == (900, 420)
    fig = timeline_figure(pred)
    curves, song = fig.axes[0], fig.axes[1]
    assert [line.get_color() for line in curves.get_lines()[:2]] == list(TARGET_COLORS.values())
    # the song's two values side by side, never one line over the other
    drawn = [c.lines[0].get_xdata()[0] for c in song.containers]
    assert drawn[:2] == [0, 1]
    ref = [Segment(0, 4.5, 0.2, 0.3), Segment(4.5, 9, 0.8, 0.7)]
    svg = _svg_text(lambda p: plot_timeline(pred, p, reference=ref), tmp_path / "r.svg")
    assert ">reference<" in svg


@pytest.mark.parametrize("seconds, ticks", [
    (9.0, ["0:00", "0:02", "0:04", "0:06", "0:08"]),
    (50.0, ["0:00", "0:10", "0:20", "0:30", "0:40", "0:50"]),
    (200.0, ["0:00", "0:30", "1:00", "1:30", "2:00", "2:30", "3:00"]),
    (3600.0, ["0:00", "10:00", "20:00", "30:00", "40:00", "50:00", "60:00"]),
])
def test_time_ticks_are_even_and_read_as_whole_times(seconds, ticks):
    hop = seconds / 20
    windows = [Segment(i * hop, i * hop + hop, 0.5, 0.5) for i in range(20)]
    pred = Prediction("long.wav", 0.5, 0.5, duration=seconds, windows=20, timeline=windows)
    ax = timeline_figure(pred).axes[0]
    start, end = ax.get_xlim()
    assert [ax.xaxis.get_major_formatter()(t) for t in ax.get_xticks() if start <= t <= end] == ticks
    assert time_step(10) == 2 and time_step(150) == 20


def test_timeline_plot_needs_a_timeline(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_timeline(Prediction("x.wav", error="empty file (0 bytes)"), tmp_path / "x.png")


def _spread(n: int, seed: int = 0) -> list:
    """n songs crowded around the middle of the plane, as real predictions are."""
    import numpy as np

    from music2emotion.plot import PlanePoint
    from music2emotion.prediction import quadrant_mood

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        v, a = (float(np.clip(m + 0.13 * rng.standard_normal(), 0, 1)) for m in (0.5, 0.55))
        out.append(PlanePoint(f"Artist {i} - A Song Title {i}", round(v, 4), round(a, 4), quadrant_mood(v, a),
                              max(0, v - 0.14), min(1, v + 0.14), max(0, a - 0.12), min(1, a + 0.12)))
    return out


@pytest.mark.parametrize("n", [2, 13, 100])
def test_plane_labels_never_overlap_and_the_axes_fit_the_songs(n):
    points = _spread(n, seed=n)
    fig = plane_figure(points)
    renderer = _drawn(fig)
    ax = fig.axes[0]
    words = [t for t in ax.texts if t.get_text() in MOOD_CLASSES]
    labels = [t for t in ax.texts if t not in words]
    boxes = [t.get_window_extent(renderer) for t in labels]
    frame = ax.get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        assert not any(_overlap(a, b) for b in boxes[i + 1:])
        assert not any(_overlap(a, w.get_window_extent(renderer)) for w in words)
    # no label covers a point's centre
    centres = ax.transData.transform([(p.valence, p.arousal) for p in points])
    assert not any(b.x0 < x < b.x1 and b.y0 < y < b.y1 for b in boxes for x, y in centres)
    # most songs are named, and the title says how many when some are not
    assert len(labels) >= (n if n <= 2 else 0.75 * n if n <= 13 else 0.3 * n)
    assert ax.get_title() == (f"{n} files" if len(labels) == n else f"{n} files, {len(labels)} named")
    # the axes hold every song and the middle cross, and no more than they need
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert all(x0 < p.valence < x1 and y0 < p.arousal < y1 for p in points)
    assert x0 < 0.5 < x1 and y0 < 0.5 < y1
    spread = max(max(*values, 0.54) - min(*values, 0.46)
                 for values in ([p.valence for p in points], [p.arousal for p in points]))
    assert x1 - x0 == pytest.approx(y1 - y0) and x1 - x0 <= spread + 0.081
    assert sorted(w.get_text() for w in words) == sorted(MOOD_CLASSES)
    assert {w.get_color() for w in words} == set(MOOD_COLORS.values())


def test_plane_names_the_quadrants_and_the_points(tmp_path):
    points = [("calm one", 0.8, 0.2), ("angry one", 0.1, 0.9)]
    svg = _svg_text(lambda p: plot_plane(points, p), tmp_path / "va.svg")
    for label in [*QUADRANTS.values(), "calm one", "angry one", "valence", "arousal"]:
        assert label in svg
    svg = _svg_text(lambda p: plot_plane(_spread(100), p, scale="deam"), tmp_path / "many.svg")
    assert "100 files" in svg and "(1-9)" in svg


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
    assert "song, 90 % interval" in svg and f"sad.wav \u2014 {pred.mood}" in svg
    fig = timeline_figure(pred)
    band = fig.axes[-2]
    # every window's word along the top, neighbours of one word as one block, in its colour
    blocks = [(patch.get_x(), patch.get_facecolor()) for patch in band.patches]
    words = [s.row()["mood"] for s in pred.timeline]
    runs = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]
    assert len(blocks) == len(runs)
    from matplotlib.colors import to_rgba

    assert [c for _, c in blocks] == [to_rgba(MOOD_COLORS[w]) for w in runs]
    # and a legend names every colour
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert all(w in legend for w in MOOD_CLASSES)
    deam = _svg_text(lambda p: plot_timeline(pred, p, scale="deam"), tmp_path / "d.svg")
    assert f">{pred.row('deam')['valence']:.2f}<" in deam
    points = [PlanePoint.from_row(m, moody.predict_file(mood_folder / f"{m}.wav").row()) for m in ("sad", "happy")]
    assert points[0].mood == "sad" and points[0].valence_low is not None
    svg = _svg_text(lambda p: plot_plane(points, p), tmp_path / "va.svg")
    assert ">sad<" in svg and ">happy<" in svg
    # a word that is not its point's quadrant (a 0.3 model's head) is written beside the name
    odd = PlanePoint("odd", 0.8, 0.8, "sad")
    labels = [t.get_text() for t in plane_figure([odd]).axes[0].texts]
    assert "odd (sad)" in labels
