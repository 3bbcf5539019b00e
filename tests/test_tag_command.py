"""``music2emotion tag`` and ``read-tags`` end to end: one row per file, skip and force,
dry runs, the DEAM scale and mood words, files that cannot be tagged, and files that are
not music, left untagged unless asked."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

pytest.importorskip("mutagen")

from helpers import band, make_song, noise, tone, write  # noqa: E402
from test_tags import audio_bytes, decoded  # noqa: E402

from music2emotion.cli import main  # noqa: E402
from music2emotion.collection.tags import read_tags  # noqa: E402


def _table(out: str) -> dict[str, list[str]]:
    """Rows of a printed table by file name (columns split on runs of spaces)."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    rows = {}
    for line in lines[1:]:
        cells = line.split(None, 3)
        rows[Path(cells[0]).name] = cells[1:]
    return rows


def test_tag_a_folder_then_rerun_skips_then_force(song_folder, tiny_model, capsys):
    before = {p.name: decoded(p) for p in song_folder.iterdir()}
    raw = {p.name: audio_bytes(p) for p in song_folder.iterdir() if p.suffix in (".mp3", ".flac", ".wav", ".aiff")}
    code = main(["tag", str(song_folder), "--model", str(tiny_model), "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = _table(captured.out)
    assert set(rows) == set(before) and all(r[2] == "tagged" for r in rows.values())
    for p in song_folder.iterdir():
        stored = read_tags(p)
        assert stored.model.startswith("tiny (music2emotion ")
        assert [f"{stored.valence:.4f}", f"{stored.arousal:.4f}"] == rows[p.name][:2]
        assert (decoded(p) == before[p.name]).all()
        if p.name in raw:
            assert audio_bytes(p) == raw[p.name]
    assert "6 tagged" in captured.err

    # a rerun resumes: nothing left to do, no file rewritten
    stamps = {p.name: p.stat().st_mtime_ns for p in song_folder.iterdir()}
    assert main(["tag", str(song_folder), "--model", str(tiny_model), "--jobs", "1"]) == 0
    rows = _table(capsys.readouterr().out)
    assert all(r[2] == "up to date" for r in rows.values())
    assert stamps == {p.name: p.stat().st_mtime_ns for p in song_folder.iterdir()}

    # --force redoes them
    assert main(["tag", str(song_folder / "song0.wav"), "--model", str(tiny_model), "--force"]) == 0
    assert _table(capsys.readouterr().out)["song0.wav"][2] == "tagged"


def test_another_model_retags(song_folder, tiny_model, capsys):
    one = song_folder / "song2.flac"
    assert main(["tag", str(one), "--model", str(tiny_model)]) == 0
    other = tiny_model.parent / "other.onnx"
    other.write_bytes(tiny_model.read_bytes())
    capsys.readouterr()
    assert main(["tag", str(one), "--model", str(other)]) == 0
    assert _table(capsys.readouterr().out)["song2.flac"][2] == "tagged"
    assert read_tags(one).model.startswith("other (")


def test_dry_run_changes_nothing(song_folder, tiny_model, capsys):
    before = {p: p.read_bytes() for p in song_folder.iterdir()}
    assert main(["tag", str(song_folder), "--model", str(tiny_model), "--jobs", "1", "--dry-run", "--mood-tag"]) == 0
    rows = _table(capsys.readouterr().out)
    assert all(r[2].startswith("would tag (mood ") for r in rows.values())
    assert before == {p: p.read_bytes() for p in song_folder.iterdir()}


def test_deam_scale_and_mood_word(tmp_path, tiny_model, capsys):
    path = make_song(tmp_path / "a.ogg")
    assert main(["tag", str(path), "--model", str(tiny_model), "--scale", "deam", "--mood-tag"]) == 0
    stored = read_tags(path)
    assert stored.scale == "deam" and 1 <= stored.valence <= 9 and 1 <= stored.arousal <= 9
    v, a = stored.unit()
    assert stored.mood == ("happy" if v >= 0.5 and a >= 0.5 else "angry" if a >= 0.5
                           else "tender" if v >= 0.5 else "sad")
    # the same model on another scale is not up to date
    capsys.readouterr()
    assert main(["tag", str(path), "--model", str(tiny_model)]) == 0
    assert _table(capsys.readouterr().out)["a.ogg"][2] == "tagged"
    assert read_tags(path).scale == "unit"


def test_bad_files_get_error_rows_and_stay_unchanged(song_folder, tiny_model, capsys):
    ro = song_folder / "song2.flac"
    ro.chmod(0o444)
    fake = song_folder / "fake.mp3"
    fake.write_text("definitely not an mp3")
    au = write(song_folder / "x.au", tone(440, 1.0), format="AU")  # libsndfile reads it, mutagen can't tag it
    m4a = make_song(song_folder / "y.m4a")  # AAC: FFmpeg decodes it, mutagen tags it
    before = {p: p.read_bytes() for p in (ro, fake, au)}
    code = main(["tag", str(song_folder), str(m4a), "--model", str(tiny_model), "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 1
    rows = _table(captured.out)
    assert rows["song2.flac"][0] == "error:" and "read-only" in " ".join(rows["song2.flac"])
    assert "unreadable" in " ".join(rows["fake.mp3"])
    assert "cannot store tags" in " ".join(rows["x.au"])
    assert rows["y.m4a"][2] == "tagged"
    assert before == {p: p.read_bytes() for p in before}
    assert sum(r[2] == "tagged" for r in rows.values()) == 6
    assert "Traceback" not in captured.err and "3 error" in captured.err
    assert not list(song_folder.glob(".*"))


def test_usage_errors(tmp_path, capsys):
    assert main(["tag", str(tmp_path)]) == 2
    assert "no audio files found" in capsys.readouterr().err
    make_song(tmp_path / "a.wav")
    assert main(["tag", str(tmp_path), "--model", "/no/such.onnx"]) == 2
    assert main(["tag", str(tmp_path), "--model", "fast", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_read_tags_formats(song_folder, tiny_model, capsys):
    tagged = song_folder / "song0.wav"
    assert main(["tag", str(tagged), "--model", str(tiny_model), "--mood-tag"]) == 0
    capsys.readouterr()
    assert main(["read-tags", str(song_folder)]) == 0
    lines = {Path(ln.split()[0]).name: ln for ln in capsys.readouterr().out.splitlines()[1:]}
    assert lines["song5.opus"].endswith("(no emotion tags)")
    stored = read_tags(tagged)
    assert lines["song0.wav"].split()[1:5] == [f"{stored.valence:.4f}", f"{stored.arousal:.4f}", "0-1", stored.mood]
    assert main(["read-tags", str(song_folder), "--format", "csv"]) == 0
    by_name = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert float(by_name["song0.wav"]["valence"]) == stored.valence
    assert by_name["song0.wav"]["mood"] == stored.mood and by_name["song0.wav"]["scale"] == "0-1"
    assert by_name["song4.mp3"]["valence"] == ""
    assert main(["read-tags", str(tagged), "--format", "jsonl"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"] == stored.model and record["error"] is None
    (song_folder / "bad.mp3").write_text("nope")
    assert main(["read-tags", str(song_folder / "bad.mp3")]) == 1


def test_files_that_are_not_music_are_left_untagged_unless_asked(tmp_path, capsys):
    d = tmp_path / "mixed"
    hiss, song = write(d / "hiss.flac", noise(12.0, amp=0.1)), write(d / "band.flac", band(12.0))
    before = hiss.read_bytes()
    assert main(["tag", str(d), "--model", "fast", "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    lines = {Path(ln.split()[0]).name: ln for ln in captured.out.splitlines()[1:]}
    assert lines["hiss.flac"].split()[1:] == ["skipped", "(not", "music:", "noise)"]
    assert lines["band.flac"].split()[-1] == "tagged" and read_tags(song).warning == ""
    assert read_tags(hiss) is None and hiss.read_bytes() == before
    assert "2 files with model fast (" in captured.err and "1 tagged, 1 skipped" in captured.err
    assert ("note: 1 files not tagged: not music, no music heard in most of their audio (noise 1); "
            "--include-not-music keeps them") in captured.err

    assert main(["tag", str(d), "--model", "fast", "--jobs", "1", "--include-not-music"]) == 0
    stored = read_tags(hiss)
    assert stored is not None and stored.warning.startswith("not music: noise (")
    capsys.readouterr()
    assert main(["read-tags", str(d), "--format", "csv"]) == 0
    by_name = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert by_name["hiss.flac"]["warning"] == stored.warning and by_name["band.flac"]["warning"] == ""
