"""Labels as people have them (training.labels): CSV files, mood folders, DEAM's layout, and
the one-line errors for bad ones. Reading labels decodes no audio, so these run in the quick
loop."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from helpers import make_deam_like, make_quadrant_like, tone, write  # noqa: E402
from music2emotion.cli import main  # noqa: E402
from music2emotion.training.labels import (  # noqa: E402
    MIN_RATED_SONGS,
    MIN_SONGS_PER_MOOD,
    LabelError,
    check_enough,
    merge,
    parse_mood,
    parse_scale,
    read_deam,
    read_label_csv,
    read_labels,
    read_mood_folders,
)

MOODS = ("happy", "angry", "sad", "tender")


def _songs(folder: Path, names: list[str]) -> list[Path]:
    """Tiny files: labels are read without decoding them."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write(folder / n, tone(440.0, 0.2)) for n in names]


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("word, quadrant", [
    ("happy", 1), ("Q2", 2), ("q3", 3), ("4", 4), ("Calm", 4), ("relaxed", 4), ("peaceful", 4),
    ("tense", 2), ("aggressive", 2), ("melancholic", 3), ("joyful", 1), (" Tender ", 4)])
def test_mood_words_and_synonyms(word, quadrant):
    assert parse_mood(word) == quadrant


def test_unknown_mood_word_names_it_and_the_choices():
    with pytest.raises(ValueError, match=r"unknown mood word 'hapy' \(use happy, angry, sad, tender, Q1-Q4"):
        parse_mood("hapy")


@pytest.mark.parametrize("text, scale", [("1-9", (1, 9)), ("0-1", (0, 1)), ("-1-1", (-1, 1)),
                                         ("0..100", (0, 100)), ("1:5", (1, 5)), ("-5 to 5", (-5, 5)),
                                         ("0.5-7.5", (0.5, 7.5))])
def test_rating_scales(text, scale):
    assert parse_scale(text) == scale


@pytest.mark.parametrize("text", ["9-1", "1", "a-b", "1-1", "1--9x"])
def test_bad_rating_scales(text):
    with pytest.raises(ValueError, match="LOW-HIGH"):
        parse_scale(text)


def test_csv_by_path_relative_to_the_file_with_moods_ratings_and_artists(tmp_path):
    _songs(tmp_path / "music", ["a.wav", "b.wav", "c.wav"])
    labels = read_label_csv(_csv(tmp_path / "l.csv", "Path,Mood,Valence,Arousal,Artist",
                                 ["music/a.wav,happy,,,X", f"{tmp_path}/music/b.wav,,-0.5,1,Y",
                                  "music/c.wav,calm,0,0,"]), scale=(-1, 1))
    assert [s.path.name for s in labels.songs] == ["a.wav", "b.wav", "c.wav"]
    assert [s.mood for s in labels.songs] == [1, None, 4]
    assert [s.ratings for s in labels.songs] == [None, (0.25, 1.0), (0.5, 0.5)]
    assert [s.artist for s in labels.songs] == ["X", "Y", ""]
    assert labels.scales == {"-1-1"}


def test_song_ids_found_beside_the_csv_first_then_in_audio_dir(tmp_path):
    _songs(tmp_path / "beside" / "audio", ["s1.flac"])
    _songs(tmp_path / "elsewhere", ["s2.mp3"])
    beside = read_label_csv(_csv(tmp_path / "beside" / "l.csv", "song_id,quadrant", ["s1,Q1"]), tmp_path / "elsewhere")
    assert beside.songs[0].path.name == "s1.flac"
    other = read_label_csv(_csv(tmp_path / "l.csv", "song_id,mood", ["s2,sad"]), tmp_path / "elsewhere")
    assert other.songs[0].path.name == "s2.mp3" and other.songs[0].mood == 3


def test_the_4q_sets_own_labels_file_is_read_as_it_is(tmp_path):
    labels = read_label_csv(make_quadrant_like(tmp_path, per_quadrant=2, seconds=0.3))
    assert [s.mood for s in labels.songs] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert labels.songs[0].artist == "artist 1-0"


def test_missing_files_are_skipped_and_named_not_fatal(tmp_path):
    _songs(tmp_path / "audio", ["here.wav"])
    labels = read_label_csv(_csv(tmp_path / "l.csv", "song_id,mood", ["here,happy", "gone,sad"]))
    assert len(labels.songs) == 1
    assert labels.missing == [f"{tmp_path / 'l.csv'}, line 3: no audio file gone.* in {tmp_path / 'audio'}"]


@pytest.mark.parametrize("header, row, message", [
    ("path,mood", "a.wav,hapy", r"l\.csv, line 2: mood unknown mood word 'hapy'"),
    ("path,quadrant", "a.wav,Q5", r"line 2: quadrant unknown mood word 'Q5'"),
    ("path,valence,arousal", "a.wav,10,5", r"line 2: valence 10 lies outside the rating scale 1-9"),
    ("path,valence,arousal", "a.wav,5,x", r"line 2: arousal 'x' is not a number"),
    ("path,mood", "a.wav,", r"line 2: song 'a.wav' has no label"),
    ("path,valence", "a.wav,3", r"ratings need both a 'valence' and an 'arousal' column"),
    ("file,mood", "a.wav,happy", r"no 'path' or 'song_id' column \(columns: file, mood\)"),
    ("path,genre", "a.wav,rock", r"no label column"),
])
def test_bad_labels_say_file_line_value_and_why(tmp_path, header, row, message):
    _songs(tmp_path, ["a.wav"])
    with pytest.raises(LabelError, match=message):
        read_label_csv(_csv(tmp_path / "l.csv", header, [row]), scale=(1, 9))


def test_ratings_need_their_scale(tmp_path):
    _songs(tmp_path, ["a.wav"])
    with pytest.raises(LabelError, match="say their scale with --label-scale"):
        read_label_csv(_csv(tmp_path / "l.csv", "path,valence,arousal", ["a.wav,5,5"]))


def test_a_song_listed_twice_is_refused(tmp_path):
    _songs(tmp_path / "audio", ["a.wav"])
    with pytest.raises(LabelError, match=r"line 3: .*a\.wav is listed twice \(first on line 2\)"):
        read_label_csv(_csv(tmp_path / "l.csv", "path,mood", ["audio/a.wav,happy", "./audio/a.wav,sad"]))


def test_a_song_id_with_two_files_is_ambiguous(tmp_path):
    _songs(tmp_path / "audio", ["a.wav", "a.flac"])
    with pytest.raises(LabelError, match="song_id 'a' matches 2 files"):
        read_label_csv(_csv(tmp_path / "l.csv", "song_id,mood", ["a,happy"]))


def test_mood_folders_by_word_and_synonym(tmp_path):
    for word in ("happy", "Angry", "sad", "relaxed"):
        _songs(tmp_path / word / "album", [f"{word}1.wav", f"{word}2.mp3"])
    _songs(tmp_path, ["loose.wav"])
    labels = read_mood_folders(tmp_path)
    assert sorted((s.path.name, s.mood) for s in labels.songs)[:2] == [("Angry1.wav", 2), ("Angry2.mp3", 2)]
    assert {s.mood for s in labels.songs} == {1, 2, 3, 4}
    assert "1 audio file(s) directly in it" in labels.notes[0]


def test_a_mood_folder_with_an_unknown_name_is_refused(tmp_path):
    _songs(tmp_path / "happy", ["a.wav"])
    _songs(tmp_path / "jazz", ["b.wav"])
    with pytest.raises(LabelError, match=r"jazz: folder name unknown mood word 'jazz'"):
        read_mood_folders(tmp_path)


def test_deam_layout_is_rated_on_1_to_9(tmp_path):
    audio, ann = make_deam_like(tmp_path, n=6, seconds=0.3)
    labels = read_deam(ann, audio)
    assert len(labels.songs) == 6 and labels.scales == {"1-9"}
    assert all(0 <= v <= 1 and 0 <= a <= 1 for v, a in (s.ratings for s in labels.songs))


def test_merge_joins_a_mood_and_ratings_of_one_file_and_refuses_the_same_label_twice(tmp_path):
    (a,) = _songs(tmp_path, ["a.wav"])
    moods = read_label_csv(_csv(tmp_path / "m.csv", "path,mood", ["a.wav,sad"]))
    rated = read_label_csv(_csv(tmp_path / "r.csv", "path,valence,arousal", ["a.wav,0,1"]), scale=(0, 1))
    both = merge([moods, rated])
    assert len(both.songs) == 1 and both.songs[0].mood == 3 and both.songs[0].ratings == (0.0, 1.0)
    with pytest.raises(LabelError, match=r"m\.csv, line 2: .*a\.wav is labelled twice"):
        merge([moods, moods])


def test_too_few_songs_of_a_mood_or_rated_are_refused(tmp_path):
    for word in MOODS:
        _songs(tmp_path / "m" / word, [f"{word}{i}.wav" for i in range(MIN_SONGS_PER_MOOD - (word == "sad"))])
    with pytest.raises(LabelError, match=rf"too few songs of a mood \({MIN_SONGS_PER_MOOD - 1} sad\)"):
        check_enough(read_mood_folders(tmp_path / "m"))
    audio, ann = make_deam_like(tmp_path / "d", n=MIN_RATED_SONGS - 1, seconds=0.2)
    with pytest.raises(LabelError, match=f"{MIN_RATED_SONGS - 1} rated songs; ratings need at least"):
        read_labels(annotations=ann, audio_dir=audio)


def test_train_refuses_bad_labels_in_one_line_before_any_work(tmp_path, capsys):
    _songs(tmp_path / "audio", ["a.wav"])
    bad = _csv(tmp_path / "l.csv", "song_id,mood", ["a,hapy"])
    out = tmp_path / "run"
    assert main(["train", "--labels", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"music2emotion train: error: {bad}, line 2: mood unknown mood word 'hapy' (use happy, angry, "
                   "sad, tender, Q1-Q4 or a synonym listed in docs/train-your-own.md)")
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--epochs", "3"], "--epochs belong to --arch seed"),
    (["--label-scale", "9-1"], "--label-scale rating scale '9-1' is not LOW-HIGH"),
    (["--folds", "1"], "--folds must be at least 2"),
    (["--arch", "seed", "--labels", "x.csv"], "--arch seed trains on DEAM's layout"),
])
def test_train_options_that_do_not_go_together(tmp_path, capsys, args, message):
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 2
    assert message in capsys.readouterr().err
