"""Moods and intervals: a model with a mood head gives each song and window the
probabilities of the four quadrants, its mood word and each value's interval, all derived
from its one pair of values; a model without them leaves those fields empty; a model of
0.3, with a quadrant head of its own, still reads. On generated clips whose moods follow
the sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DEAM_BETA, DEAM_INTERVALS, DEAM_SPREAD, MOOD_INTERVALS, MOOD_SPREAD
from helpers import MOOD_SOUNDS

from music2emotion import EmotionModel
from music2emotion.config import INTERVAL_COLUMNS, MOOD_CLASSES, MOOD_COLUMNS
from music2emotion.modelfile import Convention
from music2emotion.prediction import (
    MOOD_FIELDS,
    MoodEstimates,
    Prediction,
    quadrant_mood,
    quadrant_probabilities,
    song_prediction,
)


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
    assert fields == ["mood", *MOOD_COLUMNS, *INTERVAL_COLUMNS]
    assert MOOD_FIELDS == ("mood", *MOOD_COLUMNS, *INTERVAL_COLUMNS)


def test_the_model_reads_its_scales(moody, model):
    assert moody.mood_head and moody.intervals == MOOD_INTERVALS
    assert moody.conventions["unit"] == Convention("output", MOOD_SPREAD, MOOD_INTERVALS)
    assert moody.conventions["deam"] == Convention("deam", DEAM_SPREAD, DEAM_INTERVALS)
    assert moody.window_outputs == ("output", "deam")
    assert not model.mood_head and model.intervals is None and set(model.conventions) == {"unit"}


def test_probabilities_sum_to_one_and_follow_the_sound(predictions):
    for mood, pred in predictions.items():
        assert pred.ok, pred.error
        probs = pred.probabilities
        assert list(probs) == list(MOOD_CLASSES)
        assert sum(probs.values()) == pytest.approx(1, abs=1e-9)
        assert pred.mood == mood, (mood, probs)
    # the sad clip is the saddest of all
    assert max(predictions, key=lambda m: predictions[m].p_sad) == "sad"


def test_everything_derives_from_the_values(predictions):
    for pred in predictions.values():
        for item in (pred, *pred.timeline):
            v, a = round(item.valence, 4), round(item.arousal, 4)  # as the rows show them
            assert item.mood == quadrant_mood(v, a)
            assert [item.p_happy, item.p_angry, item.p_sad, item.p_tender] == pytest.approx(
                quadrant_probabilities(v, a, MOOD_SPREAD), abs=1e-12)
            deam = item.deam
            assert deam.mood == quadrant_mood(deam.valence, deam.arousal)
            assert deam.valence_high - round(deam.valence, 4) <= DEAM_INTERVALS[0] + 1e-9


def test_the_song_derives_from_its_time_weighted_values(predictions):
    pred = predictions["tender"]
    assert [(s.start, s.end) for s in pred.timeline] == [(0, 2), (2, 4), (2.8, 4.8)]
    weights = np.array([2, 1.4, 1.4])  # the last two share 2.8-4 s
    for name in ("valence", "arousal"):
        windows = np.array([getattr(s, name) for s in pred.timeline])
        assert getattr(pred, name) == pytest.approx(weights @ windows / weights.sum())
        deam = np.array([getattr(s.deam, name) for s in pred.timeline])
        assert getattr(pred.deam, name) == pytest.approx(weights @ deam / weights.sum())
    assert pred.p_tender == pytest.approx(quadrant_probabilities(pred.valence, pred.arousal, MOOD_SPREAD)[3], abs=1e-3)


def test_the_deam_convention_is_an_output_of_its_own(predictions):
    for pred in predictions.values():
        for item in (pred, *pred.timeline):
            # the test model's DEAM valence is its valence plus energy (conftest.DEAM_BETA)
            assert item.deam.valence == pytest.approx((item.valence + 0.5) / 2 + DEAM_BETA * (item.arousal - 0.5), abs=2e-4)
            row = item.row("deam")
            # shown on 1-9 from the value rounded on 0-1, as the word reads it
            assert row["valence"] == round(1 + 8 * round(item.deam.valence, 4), 4)
            assert row["mood"] == item.deam.mood and row["p_sad"] == round(item.deam.p_sad, 4)


def test_intervals_hold_the_value_and_stay_on_the_scale(predictions):
    hv, ha = MOOD_INTERVALS
    for pred in predictions.values():
        for item in (pred, *pred.timeline):
            for value, lo, hi, half in ((round(item.valence, 4), item.valence_low, item.valence_high, hv),
                                        (round(item.arousal, 4), item.arousal_low, item.arousal_high, ha)):
                assert 0 <= lo <= value <= hi <= 1
                assert lo == pytest.approx(max(value - half, 0)) and hi == pytest.approx(min(value + half, 1))


def test_intervals_are_clipped_and_scaled_like_values():
    conv = {"unit": Convention("output", (0.1, 0.1), (0.1, 0.1))}
    pred = song_prediction("x", [(0, 10)], {"output": np.array([[0.05, 0.97]])}, conventions=conv,
                           duration=10, silent=False)
    assert (pred.valence_low, pred.valence_high, pred.arousal_low, pred.arousal_high) == \
        pytest.approx((0.0, 0.15, 0.87, 1.0))
    row = pred.row("deam")  # no DEAM convention: the values on 1-9
    assert row["valence_low"] == 1.0 and row["arousal_high"] == 9.0 and row["valence_high"] == 2.2
    assert row["mood"] == "angry" and row["p_angry"] == pred.row()["p_angry"]  # probabilities keep their scale


def test_the_word_is_the_quadrant_on_the_lines_too():
    # on 0.5 an axis counts as high, and the probabilities agree: a half each way
    conv = {"unit": Convention("output", (0.05, 0.05), None)}
    for v, a, word in ((0.5, 0.5, "happy"), (0.5, 0.2, "tender"), (0.2, 0.5, "angry"), (0.49995, 0.2, "tender"),
                       (0.49994, 0.2, "sad")):
        pred = song_prediction("x", [(0, 1)], {"output": np.array([[v, a]])}, conventions=conv,
                               duration=1, silent=False)
        row = pred.row()
        assert pred.mood == word == row["mood"] == quadrant_mood(row["valence"], row["arousal"]), (v, a)


def test_a_model_without_a_head_leaves_them_empty(model, mood_folder):
    pred = model.predict_file(mood_folder / "sad.wav", timeline=True)
    assert pred.ok and pred.mood is None and pred.probabilities is None and pred.deam is None
    row = pred.row()
    assert all(row[c] is None for c in MOOD_FIELDS)
    assert all(s.row()[c] is None for s in pred.timeline for c in MOOD_FIELDS)
    assert Prediction("x", error="broken").row()["p_sad"] is None


def test_a_model_of_0_3_with_its_own_head_still_reads(legacy_mood_model, mood_folder):
    old = EmotionModel(legacy_mood_model, threads=1)
    assert old.mood_head and old.intervals == MOOD_INTERVALS and old.window_outputs == ("output", "moods")
    pred = old.predict_file(mood_folder / "angry.wav", timeline=True)
    assert pred.ok and pred.mood == "angry" and pred.deam is None
    # its song probabilities are the time-weighted mean of its head's, its word their top
    weights = np.array([2, 1.4, 1.4])
    for column in MOOD_COLUMNS:
        windows = np.array([getattr(s, column) for s in pred.timeline])
        assert getattr(pred, column) == pytest.approx(weights @ windows / weights.sum())
    assert pred.mood == max(pred.probabilities, key=pred.probabilities.get)
    assert pred.row("deam")["valence"] == round(1 + 8 * round(pred.valence, 4), 4)


def test_run_windows_gives_every_output_and_predict_windows_keeps_its_contract(moody, mood_folder):
    from helpers import mood_clip

    inputs = [moody.window_inputs(mood_clip("angry", 2.0, 3))]
    outputs = moody.run_windows(inputs)
    assert set(outputs) == {"output", "deam"} and outputs["output"].shape == (1, 2)
    np.testing.assert_array_equal(moody.predict_windows(inputs), outputs["output"])
    assert moody.run_windows([])["deam"].shape == (0, 2)


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
    # on DEAM's scale, DEAM's convention: its values, its word, its probabilities
    assert record["mood"] == pred.deam.mood and record["p_angry"] == pred.row("deam")["p_angry"] != pred.row()["p_angry"]
    assert record["valence"] == pred.row("deam")["valence"] and record["valence_low"] == pred.row("deam")["valence_low"]
    assert [s["p_angry"] for s in record["timeline"]] == [s.row("deam")["p_angry"] for s in pred.timeline]
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
        assert stored.mood == mood == pred.mood
        assert stored.probabilities == tuple(pred.row()[c] for c in MOOD_COLUMNS)
    capsys.readouterr()
    assert main(["read-tags", str(tagged_moods), "--format", "csv"]) == 0
    rows = {Path(r["path"]).stem: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert float(rows["sad"]["p_sad"]) == predictions["sad"].row()["p_sad"]
    assert main(["read-tags", str(tagged_moods)]) == 0
    assert "p_tender" in capsys.readouterr().out.splitlines()[0]


def test_tags_in_deams_convention_say_so_and_playlists_place_those_songs_by_the_one_answer(
        tagged_moods, mood_model, predictions, tmp_path, capsys):
    from music2emotion.cli import main
    from music2emotion.collection.tags import FIELD_SCALE, read_tags
    assert main(["tag", str(tagged_moods), "--model", str(mood_model), "--jobs", "1", "--mood-tag",
                 "--scale", "deam", "--no-progress"]) == 0
    for mood, pred in predictions.items():
        stored = read_tags(tagged_moods / f"{mood}.wav")
        assert stored.fields()[FIELD_SCALE] == "1-9 DEAM" and stored.deam_convention and stored.answer is None
        assert (stored.valence, stored.arousal) == (pred.row("deam")["valence"], pred.row("deam")["arousal"])
        assert stored.mood == pred.row("deam")["mood"]
    capsys.readouterr()
    out = tmp_path / "happy.m3u8"
    assert main(["playlist", str(tagged_moods), "-o", str(out), "--valence", "0.5:", "--arousal", "0.5:",
                 "--model", str(mood_model),
                 "--jobs", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"{len(predictions)} files tagged in DEAM's convention alone count as untagged" in err
    picked = {Path(line).stem for line in out.read_text().splitlines() if line and not line.startswith("#")}
    assert picked == {m for m, p in predictions.items() if p.mood == "happy"}


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
