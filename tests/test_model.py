"""``EmotionModel``: windows over time, options, audio in memory, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import MAJOR, SR, clicks, music, tone, write, write_music

from music2emotion import EmotionModel, predict_audio, predict_file
from music2emotion.audio import load_audio
from music2emotion.frontends import window_features
from music2emotion.windows import OptionError


def test_timeline_windows_and_song_value(model, tmp_path):
    path = write_music(tmp_path / "seven.wav", 7.0)
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
    path = write_music(tmp_path / "seven.wav", 7.0)
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
    pred = model.predict_file(write_music(tmp_path / "one.wav", 1.2), timeline=True)
    assert pred.ok and pred.windows == 1
    assert (pred.timeline[0].start, pred.timeline[0].end) == (0.0, 1.2)


@pytest.mark.parametrize("options, option", [
    ({"hop_seconds": 0}, "hop_seconds"), ({"window_seconds": 0.1}, "window_seconds"),
    ({"batch_size": 0}, "batch_size"), ({"max_duration": 0}, "max_duration")])
def test_bad_arguments_raise_naming_the_option(model, tmp_path, options, option):
    path = write_music(tmp_path / "a.wav", 3.0)
    with pytest.raises(OptionError) as err:
        model.predict_file(path, **options)
    assert err.value.option == option and isinstance(err.value, ValueError)
    if option != "max_duration":  # an array's length is the caller's to bound
        with pytest.raises(OptionError):
            model.predict_audio(music(3.0)[:, 0], SR, **options)


def test_a_file_over_max_duration_fails_alone(model, tmp_path):
    song = write_music(tmp_path / "song.wav", 6.0)
    pred = model.predict_file(song, max_duration=5.0)
    assert not pred.ok and pred.error == "too long: 6 s of audio, over the limit of 5 s"
    assert model.predict_file(song, max_duration=6.5).ok


def test_options_are_keyword_only_but_the_model(model, tiny_model, tmp_path):
    path = write_music(tmp_path / "a.wav", 3.0)
    with pytest.raises(TypeError):
        model.predict_file(path, 1.0)  # a hop given by position
    with pytest.raises(TypeError):
        predict_file(path, tiny_model, 1.0)
    # the model may come second, as it always could
    assert predict_file(path, tiny_model).valence == predict_file(path, model=tiny_model).valence


def test_an_array_predicts_as_a_lossless_file_of_it(model, tmp_path):
    y = music(5.3, sr=44_100, channels=2, seed=3)
    path = write(tmp_path / "song.wav", y, 44_100, subtype="FLOAT")
    from_file = model.predict_file(path, timeline=True)
    from_array = model.predict_audio(y, 44_100, timeline=True)
    assert from_array.path == "<audio>" and from_array.ok
    assert (from_array.valence, from_array.arousal, from_array.windows, from_array.duration) == (
        from_file.valence, from_file.arousal, from_file.windows, from_file.duration)
    assert from_array.timeline == from_file.timeline
    # mono 1-D, integer PCM and the module-level function give the same values
    mono = model.predict_audio(y[:, 0], 44_100)
    pcm = model.predict_audio((y[:, 0] * 32767).astype(np.int16), 44_100)
    assert pcm.valence == pytest.approx(mono.valence, abs=1e-3)
    same = predict_audio(y, 44_100, model=model)
    assert (same.valence, same.arousal) == (from_array.valence, from_array.arousal)


def test_arrays_that_cannot_be_predicted(model):
    too_short = model.predict_audio(tone(440, 0.2), SR)
    assert not too_short.ok and too_short.error.startswith("too short")
    assert model.predict_audio(np.zeros(0, np.float32), SR).error.startswith("no audio data")
    bad = tone(440, 3.0)
    bad[100] = np.nan
    assert "NaN" in model.predict_audio(bad, SR).error
    silent = model.predict_audio(np.zeros(3 * SR, np.float32), SR)
    assert silent.ok and silent.warning.startswith("silent")
    for samples, rate in ((tone(440, 1.0), 0), (tone(440, 1.0).reshape(2, -1), SR),
                          (np.zeros((2, 2, 2)), SR), (np.array(["a"] * 10), SR)):
        with pytest.raises(ValueError):
            model.predict_audio(samples, rate)


def test_loaded_models_and_names_give_the_same_values(tiny_model, tmp_path):
    path = write(tmp_path / "x.wav", tone(MAJOR, 3.0) + clicks(4, 3.0, amp=0.3))
    loaded = EmotionModel(tiny_model, threads=1)
    by_path = predict_file(path, model=tiny_model)
    by_model = predict_file(path, model=loaded)
    assert (by_path.valence, by_path.arousal) == (by_model.valence, by_model.arousal)
    assert repr(loaded).startswith("EmotionModel(") and "cnn" in repr(loaded)
