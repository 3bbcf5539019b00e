"""Moods and intervals: a model with a mood head gives each song and window the
probabilities of the four quadrants and each value its interval; a model without them
leaves those fields empty. On generated clips whose moods follow the sound."""

from __future__ import annotations

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
