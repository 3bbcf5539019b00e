"""A file's result: the song-level rule, rows on both scales, and how failures read."""

from __future__ import annotations

import numpy as np
import pytest

from music2emotion import Prediction, Segment
from music2emotion.audio import AudioError
from music2emotion.config import to_deam
from music2emotion.prediction import (
    MOOD_FIELDS,
    NO_VALUES,
    SILENT_WARNING,
    failure_reason,
    on_scale,
    song_prediction,
    time_weighted_mean,
)
from music2emotion.windows import TooShortError


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


def test_song_prediction_from_windows():
    spans = [(0.0, 2.0), (2.0, 4.0), (2.5, 4.5)]
    values = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], np.float32)
    pred = song_prediction("a.wav", spans, {"output": values}, duration=4.5, silent=False, timeline=True)
    assert pred.ok and pred.windows == 3 and pred.duration == 4.5 and pred.warning == ""
    assert [pred.valence, pred.arousal] == pytest.approx(time_weighted_mean(*zip(*spans), values))
    assert pred.timeline[2] == Segment(2.5, 4.5, 0.5, 0.5)
    plain = song_prediction("a.wav", spans, {"output": values}, duration=4.5, silent=True)
    assert plain.timeline == [] and plain.warning == SILENT_WARNING
    nan = song_prediction("a.wav", spans, {"output": np.full((3, 2), np.nan)}, duration=4.5, silent=False)
    assert nan.error == NO_VALUES and nan.valence is None


def test_rows_on_both_scales_round_alike():
    pred = Prediction("x.wav", valence=0.25, arousal=0.5, duration=3.0, windows=2,
                      timeline=[Segment(0.0, 2.0, 0.123456, 0.5)])
    assert pred.row()["valence"] == 0.25
    deam = pred.row("deam")
    assert (deam["valence"], deam["arousal"]) == (float(to_deam(0.25)), 5.0) == (3.0, 5.0)
    assert pred.segment_rows() == [{"path": "x.wav", "start": 0.0, "end": 2.0,
                                    "valence": 0.1235, "arousal": 0.5, **dict.fromkeys(MOOD_FIELDS)}]
    # the 0-1 row's value shown on 1-9, not the unrounded one (1.9876), so both sit on the
    # same side of the middle
    assert pred.timeline[0].row("deam")["valence"] == round(on_scale(0.1235, "deam"), 4) == 1.988
    failed = Prediction("y.mp3", error="empty file (0 bytes)").row("deam")
    assert failed["valence"] is None and failed["error"] == "empty file (0 bytes)"


def test_failure_reasons_are_one_line():
    assert failure_reason(AudioError("empty file (0 bytes)")) == "empty file (0 bytes)"
    assert failure_reason(TooShortError("too short: 0.20 s")) == "too short: 0.20 s"
    assert failure_reason(MemoryError()) == "out of memory while decoding"
    assert failure_reason(RuntimeError("a\n  b")) == "unexpected RuntimeError: a b"
