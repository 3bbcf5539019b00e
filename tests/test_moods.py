"""Moods and intervals: a model with a mood head gives each song and window the
probabilities of the four quadrants and each value its interval; a model without them
leaves those fields empty. On generated clips whose moods follow the sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import MOOD_INTERVALS
from helpers import MOOD_SOUNDS

from music2emotion import EmotionModel
from music2emotion.config import INTERVAL_COLUMNS, MOOD_CLASSES, MOOD_COLUMNS
from music2emotion.prediction import MOOD_FIELDS, MoodEstimates, Prediction, song_prediction


@pytest.fixture(scope="module")
def moody(mood_model):
    return EmotionModel(mood_model, threads=1)


@pytest.fixture(scope="module")
def predictions(moody, mood_folder):
    return {m: moody.predict_file(mood_folder / f"{m}.wav", timeline=True) for m in MOOD_SOUNDS}


def test_the_names_are_defined_once():
    assert MOOD_CLASSES == MOOD_SOUNDS == ("happy", "angry", "sad", "tender")
    assert MOOD_COLUMNS == ("p_happy", "p_angry", "p_sad", "p_tender")
    fields = [f for f in MoodEstimates.__dataclass_fields__]
    assert fields == [*MOOD_COLUMNS, *INTERVAL_COLUMNS]
    assert MOOD_FIELDS == ("mood", *MOOD_COLUMNS, *INTERVAL_COLUMNS)


def test_the_model_reads_its_head_and_intervals(moody, model):
    assert moody.mood_head and moody.intervals == MOOD_INTERVALS
    assert not model.mood_head and model.intervals is None


def test_probabilities_sum_to_one_and_follow_the_sound(predictions):
    for mood, pred in predictions.items():
        assert pred.ok, pred.error
        probs = pred.probabilities
        assert list(probs) == list(MOOD_CLASSES)
        assert sum(probs.values()) == pytest.approx(1, abs=1e-6)
        assert pred.mood == mood, (mood, probs)
    # the sad clip is the saddest of all
    assert max(predictions, key=lambda m: predictions[m].p_sad) == "sad"


def test_song_probabilities_are_the_time_weighted_mean_of_the_windows(predictions):
    pred = predictions["tender"]
    assert [(s.start, s.end) for s in pred.timeline] == [(0, 2), (2, 4), (2.8, 4.8)]
    weights = np.array([2, 1.4, 1.4])  # the last two share 2.8-4 s
    for column in MOOD_COLUMNS:
        windows = np.array([getattr(s, column) for s in pred.timeline])
        assert getattr(pred, column) == pytest.approx(weights @ windows / weights.sum())
    for s in pred.timeline:
        assert sum(s.probabilities.values()) == pytest.approx(1, abs=1e-6)


def test_intervals_hold_the_value_and_stay_on_the_scale(predictions):
    hv, ha = MOOD_INTERVALS
    for pred in predictions.values():
        for item in (pred, *pred.timeline):
            for value, lo, hi, half in ((item.valence, item.valence_low, item.valence_high, hv),
                                        (item.arousal, item.arousal_low, item.arousal_high, ha)):
                assert 0 <= lo <= value <= hi <= 1
                assert lo == pytest.approx(max(value - half, 0)) and hi == pytest.approx(min(value + half, 1))


def test_intervals_are_clipped_and_scaled_like_values():
    pred = song_prediction("x", [(0, 10)], np.array([[0.05, 0.97]]), duration=10, silent=False,
                           moods=np.array([[0.1, 0.6, 0.2, 0.1]]), intervals=(0.1, 0.1))
    assert (pred.valence_low, pred.valence_high, pred.arousal_low, pred.arousal_high) == \
        pytest.approx((0.0, 0.15, 0.87, 1.0))
    row = pred.row("deam")
    assert row["valence_low"] == 1.0 and row["arousal_high"] == 9.0 and row["valence_high"] == 2.2
    assert row["p_angry"] == 0.6 and row["mood"] == "angry"  # probabilities keep their scale


def test_a_model_without_a_head_leaves_them_empty(model, mood_folder):
    pred = model.predict_file(mood_folder / "sad.wav", timeline=True)
    assert pred.ok and pred.mood is None and pred.probabilities is None
    row = pred.row()
    assert all(row[c] is None for c in MOOD_FIELDS)
    assert all(s.row()[c] is None for s in pred.timeline for c in MOOD_FIELDS)
    assert Prediction("x", error="broken").row()["p_sad"] is None


def test_predict_windows_keeps_its_contract(moody, mood_folder):
    from helpers import mood_clip

    inputs = [moody.window_inputs(mood_clip("angry", 2.0, 3))]
    values, moods = moody.run_windows(inputs)
    assert values.shape == (1, 2) and moods.shape == (1, 4)
    np.testing.assert_array_equal(moody.predict_windows(inputs), values)
    assert moody.run_windows([])[1].shape == (0, 4)


# --- outputs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predicted(mood_model, mood_folder, tmp_path_factory):
    """``predict`` of the mood clips into CSV, JSON Lines (with a timeline) and Parquet."""
    from music2emotion.cli import main

    out = tmp_path_factory.mktemp("outputs")
    base = ["predict", str(mood_folder), "--model", str(mood_model), "--jobs", "1", "--no-progress"]
    assert main([*base, "-o", str(out / "rows.csv")]) == 0
    assert main([*base, "-o", str(out / "rows.jsonl"), "--timeline"]) == 0
    if pytest.importorskip("pyarrow"):
        assert main([*base, "-o", str(out / "rows.parquet")]) == 0
    return out


def test_output_columns_follow_the_old_ones(predicted, predictions):
    import csv

    from music2emotion.output import COLUMNS, song_rows

    with open(predicted / "rows.csv", newline="") as f:
        assert next(csv.reader(f)) == COLUMNS
    assert COLUMNS[:7] == ["path", "valence", "arousal", "duration", "windows", "warning", "error"]
    for name in ("rows.csv", "rows.jsonl", "rows.parquet"):
        rows = {Path(r["path"]).stem: r for r in song_rows(predicted / name)}
        for mood, pred in predictions.items():
            want = pred.row()
            assert rows[mood]["mood"] == mood
            for column in (*MOOD_COLUMNS, *INTERVAL_COLUMNS):
                assert float(rows[mood][column]) == want[column], (name, column)


def test_jsonl_timeline_carries_the_windows_moods(predicted, predictions):
    import json

    rows = [json.loads(line) for line in (predicted / "rows.jsonl").read_text().splitlines()]
    sad = next(r for r in rows if r["path"].endswith("sad.wav"))
    assert [s["p_sad"] for s in sad["timeline"]] == [s.row()["p_sad"] for s in predictions["sad"].timeline]
    assert all(s["valence_low"] <= s["valence"] <= s["valence_high"] for s in sad["timeline"])


def test_resume_appends_under_a_header_written_before_the_moods(tmp_path, mood_model, mood_folder):
    import csv

    from music2emotion.cli import main
    from music2emotion.output import COLUMNS

    old = COLUMNS[:7]
    out = tmp_path / "old.csv"
    out.write_text(",".join(old) + "\n" + f"{mood_folder / 'happy.wav'},0.7,0.6,4.8,3,,\n")
    assert main(["predict", str(mood_folder), "--model", str(mood_model), "--jobs", "1", "--no-progress",
                 "-o", str(out), "--resume"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == old and all(len(r) == len(old) for r in rows)  # still one table
    assert len(rows) == 1 + len(MOOD_SOUNDS)


def test_parquet_resume_over_a_file_written_before_the_moods(tmp_path, mood_model, mood_folder):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from music2emotion.output import Output

    out = tmp_path / "old.parquet"
    pq.write_table(pa.table({"path": ["x.wav"], "valence": [0.5], "arousal": [0.5], "duration": [3.0],
                             "windows": [1], "warning": [""], "error": [""]}), out)
    moody = EmotionModel(mood_model, threads=1)
    with Output(out, resume=True) as o:
        o.write(moody.predict_file(mood_folder / "sad.wav"))
    rows = pq.read_table(out).to_pylist()
    assert [r["path"] for r in rows] == ["x.wav", str(mood_folder / "sad.wav")]
    assert rows[0]["p_sad"] is None and rows[1]["mood"] == "sad"


# --- the HTTP API -------------------------------------------------------------------------


def test_the_api_record_carries_them(predictions):
    pytest.importorskip("fastapi")
    from music2emotion.server.app import FileResult, file_result
    from music2emotion.server.uploads import Upload

    pred = predictions["angry"]
    record = file_result(Upload("angry.wav"), pred, "deam").model_dump()
    assert record["mood"] == "angry" and record["p_angry"] == pred.row()["p_angry"]
    assert record["valence_low"] == pred.row("deam")["valence_low"]
    assert [s["p_angry"] for s in record["timeline"]] == [s.row()["p_angry"] for s in pred.timeline]
    assert list(FileResult.model_fields)[:9] == ["file", "status", "valence", "arousal", "duration", "windows",
                                                 "warning", "error", "timeline"]


# --- tags and playlists -----------------------------------------------------------------


@pytest.fixture()
def tagged_moods(tmp_path, mood_folder, mood_model):
    pytest.importorskip("mutagen")
    import shutil

    from music2emotion.cli import main

    folder = tmp_path / "music"
    shutil.copytree(mood_folder, folder)
    assert main(["tag", str(folder), "--model", str(mood_model), "--jobs", "1", "--mood-tag",
                 "--no-progress"]) == 0
    return folder


def test_tags_carry_the_probabilities_and_read_back(tagged_moods, predictions, capsys):
    import csv
    import io

    from music2emotion.cli import main
    from music2emotion.collection.tags import FIELDS_PROBABILITY, read_tags

    assert FIELDS_PROBABILITY == ("MUSIC2EMOTION_P_HAPPY", "MUSIC2EMOTION_P_ANGRY", "MUSIC2EMOTION_P_SAD",
                                  "MUSIC2EMOTION_P_TENDER")
    for mood, pred in predictions.items():
        stored = read_tags(tagged_moods / f"{mood}.wav")
        assert stored.mood == mood  # the head's most probable quadrant
        assert stored.probabilities == tuple(pred.row()[c] for c in MOOD_COLUMNS)
    capsys.readouterr()
    assert main(["read-tags", str(tagged_moods), "--format", "csv"]) == 0
    rows = {Path(r["path"]).stem: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert float(rows["sad"]["p_sad"]) == predictions["sad"].row()["p_sad"]
    assert main(["read-tags", str(tagged_moods)]) == 0
    assert "p_tender" in capsys.readouterr().out.splitlines()[0]


def test_a_model_without_a_head_drops_an_earlier_models_probabilities(tagged_moods, tiny_model):
    from music2emotion.cli import main
    from music2emotion.collection.tags import read_tags

    assert main(["tag", str(tagged_moods / "sad.wav"), "--model", str(tiny_model), "--no-progress"]) == 0
    stored = read_tags(tagged_moods / "sad.wav")
    assert stored.probabilities is None and stored.model.startswith("tiny")


def test_old_calm_mood_tags_read_as_tender(tmp_path):
    pytest.importorskip("mutagen")
    import mutagen
    from helpers import make_song

    from music2emotion.collection.tags import EmotionTags, read_tags, write_tags

    path = make_song(tmp_path / "a.flac")
    write_tags(path, EmotionTags(0.7, 0.2, "m"))
    f = mutagen.File(path)
    f.tags["MOOD"] = ["calm"]  # as versions before the mood head wrote Q4
    f.save()
    assert read_tags(path).mood == "tender" and read_tags(path).probabilities is None


@pytest.mark.parametrize("source", ["csv", "tags"])
def test_playlist_by_mood_ranks_by_its_probability(source, predicted, tagged_moods, tmp_path, capsys):
    from music2emotion.cli import main

    where = predicted / "rows.csv" if source == "csv" else tagged_moods
    out = tmp_path / "sad.m3u8"
    assert main(["playlist", str(where), "-o", str(out), "--mood", "sad", "--length", "3", "--no-predict"]) == 0
    names = [Path(line).stem for line in out.read_text().splitlines() if not line.startswith("#")]
    p_sad = [predicted_p(predicted, m, "p_sad") for m in names]
    assert len(names) == 3 and names[0] == "sad" and p_sad == sorted(p_sad, reverse=True)
    assert max(predicted_p(predicted, m, "p_sad") for m in MOOD_SOUNDS if m not in names) <= p_sad[-1]
    assert "p_sad" in capsys.readouterr().out.splitlines()[0]
    # the old word for Q4 still works
    assert main(["playlist", str(where), "-o", str(out), "--mood", "calm", "--length", "1", "--no-predict"]) == 0
    assert Path(out.read_text().splitlines()[-1]).stem == "tender"


def predicted_p(folder: Path, mood: str, column: str) -> float:
    from music2emotion.output import song_rows

    return next(float(r[column]) for r in song_rows(folder / "rows.csv") if Path(r["path"]).stem == mood)


def test_playlist_by_mood_without_probabilities_says_so(mood_folder, tiny_model, tmp_path, capsys):
    from music2emotion.cli import main

    rows = tmp_path / "rows.csv"
    assert main(["predict", str(mood_folder), "--model", str(tiny_model), "--jobs", "1", "--no-progress",
                 "-o", str(rows)]) == 0
    capsys.readouterr()
    assert main(["playlist", str(rows), "-o", str(tmp_path / "x.m3u8"), "--mood", "tender"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("music2emotion playlist: error: --mood needs mood probabilities, and none of the 4 songs has them "
                       "(their model has no mood head); choose by --valence/--arousal instead")
