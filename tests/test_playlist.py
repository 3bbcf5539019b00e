"""Playlists: mood words, regions, nearness, journeys that never step back, and M3U8 files
that follow the format, from tags, prediction files and fresh predictions; files that are
not music left out of each unless asked."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from helpers import band, noise, tone, write

from music2emotion.cli import main
from music2emotion.collection.moods import MOODS, mood_word, parse_point, quadrant_word
from music2emotion.collection.playlist import Song, in_region, journey, m3u8_text, nearest, write_m3u8
from music2emotion.output import COLUMNS

EXTINF = re.compile(r"#EXTINF:(-?\d+),(.+)")


def parse_m3u8(path: Path) -> list[tuple[int, str, Path]]:
    """(seconds, name, file) per entry, checking the extended M3U rules on the way: strict
    UTF-8 without a byte-order mark, ``#EXTM3U`` first, ``#EXTINF`` before each path, one
    entry per line pair, and every path finds its file from the playlist's folder."""
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    assert "\r" not in text and text.endswith("\n")
    lines = text[:-1].split("\n")
    assert lines[0] == "#EXTM3U" and len(lines) % 2 == 1
    entries = []
    for info, target in zip(lines[1::2], lines[2::2]):
        m = EXTINF.fullmatch(info)
        assert m, info
        assert not target.startswith("#") and target.strip() == target
        file = path.parent / target
        assert file.is_file(), target
        entries.append((int(m.group(1)), m.group(2), file.resolve()))
    return entries


# --- moods ----------------------------------------------------------------------------------

def test_mood_words_cover_the_quadrants():
    assert [mood_word(v, a) for v, a in [(0.9, 0.9), (0.1, 0.9), (0.1, 0.1), (0.9, 0.1)]] == \
        ["happy", "angry", "sad", "tender"]
    assert mood_word(0.5, 0.5) == "happy"  # the middle counts as the upper side
    for m in MOODS.values():
        (v0, v1), (a0, a1) = m.region
        assert v0 <= m.point[0] <= v1 and a0 <= m.point[1] <= a1
        if m.name != "energetic":
            assert mood_word(*m.point) == quadrant_word(m.name)  # calm: tender's old name


def test_parse_point():
    assert parse_point("calm") == MOODS["calm"].point
    assert parse_point(" Energetic ") == MOODS["energetic"].point
    assert parse_point("0.7,0.2") == (0.7, 0.2)
    assert parse_point("9,1", "deam") == (1.0, 0.0)
    for bad in ("sleepy", "0.7", "1.5,0.2", "a,b"):
        with pytest.raises(ValueError):
            parse_point(bad)


# --- choosing songs -------------------------------------------------------------------------

def _songs(points) -> list[Song]:
    return [Song(f"s{i}.mp3", float(v), float(a)) for i, (v, a) in enumerate(points)]


def test_journey_is_the_best_chain_that_never_steps_back():
    """Checked against every ordered choice on small random collections (ties included)."""
    rng = np.random.default_rng(7)
    for _ in range(150):
        pts = rng.uniform(0, 1, (int(rng.integers(1, 7)), 2)).round(1)
        start, end = tuple(rng.uniform(0, 1, 2).round(1)), tuple(rng.uniform(0, 1, 2).round(1))
        if start == end:
            continue
        length = int(rng.integers(1, 5))
        got = journey(_songs(pts), start, end, length)
        step = np.subtract(end, start)
        axis = int(np.argmax(np.abs(step)))
        n = min(length, len(pts))
        stops = np.asarray(start) + np.linspace(0, 1, n)[:, None] * step

        def cost(chain):
            return sum(((np.array(s.point) - stops[k]) ** 2).sum() for k, s in enumerate(chain))

        def forward(chain):
            keys = [np.sign(step[axis]) * s.point[axis] for s in chain]
            return all(a <= b for a, b in zip(keys, keys[1:]))

        best = min(cost(c) for c in itertools.permutations(_songs(pts), n) if forward(c))
        assert len(got) == n and len({s.path for s in got}) == n
        assert forward(got) and cost(got) == pytest.approx(best)


def test_calm_to_energetic_climbs_in_arousal_on_a_big_collection():
    rng = np.random.default_rng(0)
    songs = _songs(rng.beta(2, 2, (5000, 2)))
    got = journey(songs, MOODS["calm"].point, MOODS["energetic"].point, 25)
    arousal = [s.arousal for s in got]
    assert len(got) == 25 and arousal == sorted(arousal)
    assert got[0].valence > 0.6 and got[0].arousal < 0.35 and got[-1].arousal > 0.8
    # valence follows the line down as well, step by step within a small slack
    assert all(b.valence <= a.valence + 0.1 for a, b in zip(got, got[1:]))


def test_journey_edges():
    songs = _songs([(0.5, 0.1), (0.5, 0.9)])
    assert [s.path for s in journey(songs, (0.5, 1.0), (0.5, 0.0), 10)] == ["s1.mp3", "s0.mp3"]
    assert journey([], (0, 0), (1, 1), 5) == []
    with pytest.raises(ValueError, match="same point"):
        journey(songs, (0.3, 0.3), (0.3, 0.3), 5)


def test_region_and_nearness():
    songs = _songs([(0.9, 0.1), (0.7, 0.3), (0.55, 0.45), (0.2, 0.2), (0.8, 0.8)])
    calm = MOODS["calm"]
    assert [s.path for s in in_region(songs, *calm.region)] == ["s1.mp3", "s0.mp3", "s2.mp3"]
    assert [s.path for s in in_region(songs, (0.6, 1.0), (0.0, 0.5), length=1)] == ["s1.mp3"]
    assert [s.path for s in nearest(songs, (0.2, 0.2), 2)] == ["s3.mp3", "s2.mp3"]
    assert [s.path for s in nearest(songs, (0.2, 0.2), radius=0.1)] == ["s3.mp3"]


# --- M3U8 -----------------------------------------------------------------------------------

def test_m3u8_text_follows_the_format(tmp_path):
    songs = [Song(str(tmp_path / "music" / "Ärger über.flac"), 0.1, 0.9, 183.6, "Artist - Title\nwith a break"),
             Song(str(tmp_path / "elsewhere" / "b.mp3"), 0.5, 0.5)]
    text = m3u8_text(songs, tmp_path / "lists" / "mix.m3u8")
    assert text == ("#EXTM3U\n#EXTINF:184,Artist - Title with a break\n../music/Ärger über.flac\n"
                    "#EXTINF:-1,b\n../elsewhere/b.mp3\n")
    absolute = m3u8_text(songs, tmp_path / "mix.m3u8", absolute=True)
    assert f"\n{tmp_path / 'elsewhere' / 'b.mp3'}\n" in absolute


def test_write_m3u8_is_valid_and_replaces_atomically(tmp_path):
    files = [write(tmp_path / "music" / f"ñ{i}.wav", tone(440, 0.5)) for i in range(3)]
    out = tmp_path / "lists" / "x.m3u8"
    write_m3u8([Song(str(f), 0.5, 0.5, 0.5) for f in files], out)
    assert [e[2] for e in parse_m3u8(out)] == [f.resolve() for f in files]
    write_m3u8([Song(str(files[0]), 0.5, 0.5, 0.5)], out)
    assert len(parse_m3u8(out)) == 1 and sorted(p.name for p in out.parent.iterdir()) == ["x.m3u8"]


# --- the command ----------------------------------------------------------------------------

GRID = [(v, a) for v in (0.1, 0.3, 0.5, 0.7, 0.9) for a in (0.1, 0.3, 0.5, 0.7, 0.9)]


@pytest.fixture()
def tagged_grid(tmp_path) -> Path:
    """25 one-second WAVs whose tags put them on a 5x5 grid over the plane."""
    pytest.importorskip("mutagen")
    from music2emotion.collection.tags import EmotionTags, write_tags

    d = tmp_path / "grid"
    for v, a in GRID:
        f = write(d / f"v{v}_a{a}.wav", tone(330, 1.0))
        write_tags(f, EmotionTags(v, a, "grid (music2emotion 0.1.0, sha256 00000000)"))
    return d


def _entries(out: Path) -> list[tuple[float, float]]:
    pts = []
    for _, name, file in parse_m3u8(out):
        assert name == file.stem
        v, a = re.fullmatch(r"v([\d.]+)_a([\d.]+)", file.stem).groups()
        pts.append((float(v), float(a)))
    return pts


def test_cli_journey_from_calm_to_energetic(tagged_grid, tmp_path, capsys):
    out = tmp_path / "lists" / "calm-to-energetic.m3u8"
    code = main(["playlist", str(tagged_grid), "-o", str(out), "--from", "calm", "--to", "energetic",
                 "--length", "5", "--no-predict"])
    assert code == 0
    pts = _entries(out)
    assert len(pts) == 5 and [a for _, a in pts] == sorted(a for _, a in pts)
    assert pts[0] == (0.7, 0.3) and pts[-1] == (0.5, 0.9)
    assert {e[0] for e in parse_m3u8(out)} == {1}  # each file's length in whole seconds
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--valence", "0.6:", "--arousal", ":0.4"], {(0.7, 0.1), (0.7, 0.3), (0.9, 0.1), (0.9, 0.3)}),
    (["--valence", "1:3", "--arousal", "1:3", "--scale", "deam"], {(0.1, 0.1)}),
    (["--near", "0.3,0.7", "--length", "1"], {(0.3, 0.7)}),
    (["--near", "sad", "--radius", "0.05"], set()),
    (["--near", "sad", "--radius", "0.1"], {(0.3, 0.3)}),
])
def test_cli_regions_and_nearness(tagged_grid, tmp_path, argv, expected, capsys):
    out = tmp_path / "p.m3u8"
    code = main(["playlist", str(tagged_grid), "-o", str(out), "--no-predict", *argv])
    if not expected:
        assert code == 2 and not out.exists()
        assert "none of the 25 songs fits" in capsys.readouterr().err
        return
    assert code == 0
    assert set(_entries(out)) == expected


def _predictions_file(path: Path, rows: list[dict], fmt: str = "csv") -> Path:
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path
    lines = [",".join(COLUMNS)] + [",".join(str(r.get(c, "")) for c in COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_from_prediction_files(tmp_path, capsys, monkeypatch):
    music = tmp_path / "music"
    files = [write(music / f"t{i}.flac", tone(220 * (i + 1), 1.0)) for i in range(4)]
    monkeypatch.chdir(tmp_path)  # predict writes paths as given: here relative ones
    rel = [str(f.relative_to(tmp_path)) for f in files]
    unit = _predictions_file(tmp_path / "u.csv", [
        {"path": rel[0], "valence": 0.8, "arousal": 0.2, "duration": 61.2, "windows": 7},
        {"path": rel[1], "valence": 0.2, "arousal": 0.9, "duration": 1.0, "windows": 1},
        {"path": rel[2], "error": "not a supported audio format"},
        {"path": "music/gone.flac", "valence": 0.5, "arousal": 0.5},
    ])
    deam = _predictions_file(tmp_path / "d.jsonl", [
        {"path": rel[3], "valence": 8.2, "arousal": 1.8, "duration": 1.0},  # 0.9, 0.1 on 0-1
        {"path": rel[0], "valence": 1.0, "arousal": 9.0},  # listed twice: the first source wins
    ], "jsonl")
    out = tmp_path / "calm.m3u8"
    assert main(["playlist", str(unit), str(deam), "-o", str(out), "--valence", "0.5:", "--arousal", ":0.5"]) == 0
    entries = parse_m3u8(out)
    assert [e[2].name for e in entries] == ["t0.flac", "t3.flac"]  # t0 (0.8, 0.2) is the more central
    assert entries[0][0] == 1  # the file's own length (mutagen) wins over the CSV's
    err = capsys.readouterr().err
    assert f"files listed in {unit} that no longer exist, left out: 1" in err


def test_cli_predicts_files_without_tags(tagged_grid, tiny_model, tmp_path, capsys):
    fresh = write(tagged_grid / "new" / "untagged.wav", tone(500, 2.0))
    out = tmp_path / "all.m3u8"
    code = main(["playlist", str(tagged_grid), "-o", str(out), "--valence", "0:1", "--model", str(tiny_model),
                 "--jobs", "1"])
    assert code == 0
    assert fresh.resolve() in {e[2] for e in parse_m3u8(out)} and len(parse_m3u8(out)) == 26
    assert "1 of 26 audio files predicted now" in capsys.readouterr().err
    assert main(["playlist", str(tagged_grid), "-o", str(out), "--valence", "0:1", "--no-predict"]) == 0
    assert len(parse_m3u8(out)) == 25


@pytest.mark.parametrize("argv, message", [
    ([], "say which songs"),
    (["--mood", "calm", "--near", "sad"], "choose one of"),
    (["--from", "calm"], "needs both --from and --to"),
    (["--from", "calm", "--to", "0.75,0.25"], "same point"),
    (["--near", "sleepy"], "neither a mood"),
    (["--valence", "0.6"], "give a range LO:HI"),
    (["--valence", "0.8:0.2"], "low end is above"),
    (["--mood", "tender"], "none of the 25 songs has them (their model has no mood head)"),
    (["--near", "calm", "--length", "0"], "--length must be at least 1"),
    (["--mood", "calm", "--radius", "0.2"], "--radius goes with --near"),
])
def test_cli_usage_errors(tagged_grid, tmp_path, argv, message, capsys):
    out = tmp_path / "x.m3u8"
    assert main(["playlist", str(tagged_grid), "-o", str(out), *argv]) == 2
    assert message in capsys.readouterr().err and not out.exists()


# --- not music ------------------------------------------------------------------------------

SPOKEN = "not music: speech (no music heard in 96 % of the audio)"


def test_cli_leaves_out_what_is_not_music_from_tags_and_prediction_files(tagged_grid, tmp_path, capsys):
    pytest.importorskip("mutagen")
    from music2emotion.collection.tags import EmotionTags, write_tags

    talk = write(tagged_grid / "talk.wav", tone(330, 1.0))
    write_tags(talk, EmotionTags(0.5, 0.5, "grid (music2emotion 0.1.0, sha256 00000000)", warning=SPOKEN))
    damaged = "damaged: 0.20 s of audio could not be decoded and was skipped (at 3.00 s)"
    extra = [write(tmp_path / "more" / f"{name}.flac", tone(440, 1.0)) for name in ("podcast", "fine")]
    table = _predictions_file(tmp_path / "rows.csv", [
        {"path": str(extra[0]), "valence": 0.5, "arousal": 0.5, "warning": SPOKEN},
        {"path": str(extra[1]), "valence": 0.5, "arousal": 0.5, "warning": damaged},
    ])
    out = tmp_path / "middle.m3u8"
    argv = ["playlist", str(tagged_grid), str(table), "-o", str(out), "--near", "0.5,0.5", "--radius", "0.01",
            "--no-predict"]
    assert main(argv) == 0
    assert {e[2].name for e in parse_m3u8(out)} == {"v0.5_a0.5.wav", "fine.flac"}
    err = capsys.readouterr().err
    assert ("note: 2 files left out: not music, no music heard in most of their audio (speech 2); "
            "--include-not-music keeps them") in err
    assert "wrote" in err and "of 26 songs" in err
    assert main([*argv, "--include-not-music"]) == 0
    assert {e[2].name for e in parse_m3u8(out)} == {"v0.5_a0.5.wav", "fine.flac", "talk.wav", "podcast.flac"}
    assert "not music" not in capsys.readouterr().err


def test_cli_leaves_out_fresh_predictions_that_are_not_music(tmp_path, capsys):
    pytest.importorskip("mutagen")
    d = tmp_path / "new"
    write(d / "hiss.wav", noise(12.0, amp=0.1))
    write(d / "band.wav", band(12.0))
    out = tmp_path / "all.m3u8"
    assert main(["playlist", str(d), "-o", str(out), "--valence", "0:1", "--model", "fast", "--jobs", "1"]) == 0
    assert [e[2].name for e in parse_m3u8(out)] == ["band.wav"]
    err = capsys.readouterr().err
    assert "2 of 2 audio files predicted now" in err and "1 files left out: not music" in err and "(noise 1)" in err
