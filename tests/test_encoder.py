"""The pretrained AudioSet encoder: its front end against the encoder's reference outputs, the
bundled model's copy of the encoder, and the audioset export (a tiny stand-in encoder)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from music2emotion import EmotionModel
from music2emotion.config import SAMPLE_RATE, EncoderSettings
from music2emotion.frontends import encoder_mel, kaldi_mel_banks, window_inputs
from music2emotion.modelfile import ENCODER_INPUT, ENCODER_OUTPUT, MEL

# reference.json of the encoder's release (EfficientAT mn04_as, ../shared/encoders): a fixed
# 10 s signal at 32 kHz, its spectrogram's statistics and first values, and what the encoder
# returns for it, computed with the front end the weights were trained with.
REFERENCE = {
    "spec_shape": (128, 1000), "spec_mean": 0.68439, "spec_std": 0.68626,
    "spec_first_frame_first_4": [-0.07499, 0.21665, 0.15667, 0.19437],
    "top5_logit_index": [501, 204, 503, 515, 520],
    "top5_logit": [1.4118, -1.5914, -2.9906, -3.2716, -3.558],
    "mood_logits_276_282": [-10.7259, -9.7961, -10.9221, -9.6957, -9.0842, -9.8543, -11.1891],
    "features_first_8": [-0.27957, 0.4212, -0.27738, 0.30158, 0.29846, -0.227, -0.24991, 0.56485],
}
# the reference was computed on the full band: no 16 kHz resampling first
FULL_BAND = dataclasses.replace(EncoderSettings(), band_rate=EncoderSettings().sample_rate)


def reference_signal() -> np.ndarray:
    t = np.arange(320_000) / 32_000
    return (0.3 * np.sin(2 * np.pi * 440 * t)
            + 0.05 * np.random.default_rng(0).standard_normal(320_000)).astype(np.float32)


def test_front_end_matches_the_encoders_reference():
    spec = encoder_mel(reference_signal(), 32_000, FULL_BAND)[0]
    assert spec.shape == REFERENCE["spec_shape"] and spec.dtype == np.float32
    # the reference is rounded to 5 decimals
    assert abs(spec.mean() - REFERENCE["spec_mean"]) < 1e-4
    assert abs(spec.std() - REFERENCE["spec_std"]) < 1e-4
    np.testing.assert_allclose(spec[:4, 0], REFERENCE["spec_first_frame_first_4"], atol=1e-4)


def test_kaldi_banks_are_triangles_on_the_mel_scale():
    banks = kaldi_mel_banks(EncoderSettings())
    assert banks.shape == (128, 513) and not banks[:, -1].any()  # the Nyquist column is zero
    # the lowest bands are narrower than a bin and may peak between two, but none is empty
    assert banks.max() <= 1.0 and (banks.max(1) > 0.1).all() and (banks[64:].max(1) > 0.5).all()
    peaks = banks.argmax(1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] * 32_000 / 1024 <= 15_000


def test_the_encoder_hears_the_band_its_settings_name():
    """Content above band_rate / 2 never reaches the encoder: an MP3's lowpass cannot move it."""
    t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    low = 0.3 * np.sin(2 * np.pi * 440 * t)
    high = low + 0.3 * np.sin(2 * np.pi * 9_500 * t)
    # (the first and last frames hear the resampler's start and end, where the tone begins)
    a, b = (encoder_mel(y.astype(np.float32), SAMPLE_RATE, EncoderSettings())[..., 2:-2] for y in (low, high))
    assert np.abs(a - b).max() < 1e-3
    a, b = (encoder_mel(y.astype(np.float32), SAMPLE_RATE, FULL_BAND)[..., 2:-2] for y in (low, high))
    assert np.abs(a - b).max() > 1.0


def test_short_audio_still_makes_frames():
    spec = encoder_mel(np.zeros(100, np.float32), SAMPLE_RATE, EncoderSettings())
    assert spec.shape[:2] == (1, 128) and spec.shape[2] >= 1 and np.isfinite(spec).all()


@pytest.mark.golden
def test_the_bundled_default_carries_the_encoder_unchanged():
    """The accurate model's graph runs the released weights: fed the reference spectrogram, its
    encoder output holds the reference embedding and logits."""
    model = EmotionModel("accurate", threads=1)
    assert model.kind == MEL and model.settings.encoder == EncoderSettings()
    feed = {ENCODER_INPUT: encoder_mel(reference_signal(), 32_000, FULL_BAND)[np.newaxis]}
    out = model.session.run([ENCODER_OUTPUT], feed)[0][0]
    features, logits = out[:384], out[384:]
    np.testing.assert_allclose(features[:8], REFERENCE["features_first_8"], atol=2e-4)
    assert list(np.argsort(-logits)[:5]) == REFERENCE["top5_logit_index"]
    np.testing.assert_allclose(np.sort(logits)[::-1][:5], REFERENCE["top5_logit"], atol=2e-3)
    np.testing.assert_allclose(logits[276:283], REFERENCE["mood_logits_276_282"], atol=2e-3)
    assert "MIT" in model.info["encoder_source"]


# ---------------------------------------------------------------- export (training side)


def _tiny_encoder(path) -> None:
    """A stand-in with the encoder's interface at opset 18 (``spec [n, 1, 128, t]`` ->
    ``logits [n, 527]``, ``features [n, 384]``): mean over time (a ReduceMean whose axes are an
    input, as opset 18 has it), then two fixed projections."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w_f = rng.standard_normal((128, 384)).astype(np.float32) * 0.1
    w_l = rng.standard_normal((384, 527)).astype(np.float32) * 0.1
    nodes = [helper.make_node("ReduceMean", ["spec", "axes"], ["pooled"], keepdims=0, noop_with_empty_axes=0),
             helper.make_node("MatMul", ["pooled", "w_f"], ["features"]),
             helper.make_node("MatMul", ["features", "w_l"], ["logits"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("spec", TensorProto.FLOAT, ["n", 1, 128, "t"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 527]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 384])],
        [numpy_helper.from_array(np.array([1, 3], np.int64), "axes"),
         numpy_helper.from_array(w_f, "w_f"), numpy_helper.from_array(w_l, "w_l")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), str(path))


def test_opset_rewrite_gives_the_same_numbers(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from music2emotion.training.onnx_format import OPSETS, to_project_opset

    _tiny_encoder(tmp_path / "enc.onnx")
    x = np.random.default_rng(1).standard_normal((2, 1, 128, 50)).astype(np.float32)
    want = ort.InferenceSession(str(tmp_path / "enc.onnx")).run(None, {"spec": x})
    rewritten = to_project_opset(onnx.load(str(tmp_path / "enc.onnx")))
    assert {o.domain: o.version for o in rewritten.opset_import}[""] == OPSETS[""]
    got = ort.InferenceSession(rewritten.SerializeToString()).run(None, {"spec": x})
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


@pytest.mark.slow
def test_a_mel_model_computes_its_heads_on_the_rows_its_feature_graph_gives(tmp_path):
    """The feature graph (the encoder as an ear, the mel statistics) run by training on every
    window, and the model file written from it: ONNX Runtime on a file gives the heads'
    values of the rows training saw."""
    pytest.importorskip("skl2onnx")
    from helpers import music

    from music2emotion.audio import stream_audio
    from music2emotion.modelfile import DEAM_OUTPUT, OUTPUT
    from music2emotion.prediction import time_weighted_mean
    from music2emotion.training import regressors
    from music2emotion.training.answer import Answer, convention
    from music2emotion.training.clips import AUDIOSET_SETTINGS, mel_statistics
    from music2emotion.training.features import file_rows
    from music2emotion.training.graph import FEATURES, audioset_ear, column_nodes, feature_graph, regressor_nodes, save_model
    from music2emotion.windows import iter_windows

    _tiny_encoder(tmp_path / "enc.onnx")
    graph, rows = feature_graph(MEL, AUDIOSET_SETTINGS, [audioset_ear(tmp_path / "enc.onnx")])
    files = []
    for i in range(6):
        files.append(tmp_path / f"c{i}.wav")
        sf.write(files[-1], music(24.0 if i % 2 else 4.0, SAMPLE_RATE, seed=i), SAMPLE_RATE)
    got = file_rows(files, graph, MEL, AUDIOSET_SETTINGS, cache_dir=tmp_path / "cache", progress=False,
                    log=lambda _: None)
    assert [len(r.x) for r in got] == [1, 3, 1, 3, 1, 3]
    x = np.vstack([r.x for r in got])
    # the graph's mel statistics are the numpy ones of the same window
    (w,) = iter_windows(stream_audio(files[0], SAMPLE_RATE), AUDIOSET_SETTINGS)
    mel = window_inputs(MEL, w.samples, AUDIOSET_SETTINGS)["mel"]
    np.testing.assert_allclose(x[0, rows.columns("melstats")], mel_statistics(mel, len(rows.columns("melstats")) // 2),
                               atol=1e-5)
    heard = rows.columns("embedding", "melstats")
    y = np.random.default_rng(0).uniform(0.2, 0.8, (len(x), 2))
    deam = regressors.average("ridge").fit(x[:, heard], y)
    answer = Answer([rows.columns("embedding"), rows.columns("logits")], c=1.0).fit(
        np.vstack([x, x]), np.array([1, 2, 3, 4] * 6))
    answer.scale = 0.04
    conventions = {"unit": convention(OUTPUT, (0.03, 0.04), (0.2, 0.15), 0.9, "test"),
                   "deam": convention(DEAM_OUTPUT, (0.05, 0.06), (0.16, 0.17), 0.9, "test")}
    gather = column_nodes(FEATURES, heard, rows.width, "deam_features")
    deam_nodes = regressor_nodes(deam, len(heard), "deam_features", DEAM_OUTPUT, prefix="deam_")
    path = save_model(graph, [answer.onnx_nodes(FEATURES, OUTPUT), (gather[0] + deam_nodes[0], gather[1] + deam_nodes[1])],
                      (OUTPUT, DEAM_OUTPUT), MEL, AUDIOSET_SETTINGS, tmp_path / "mel.onnx", conventions=conventions)
    model = EmotionModel(path, threads=1)
    assert model.kind == MEL and model.input_names == ["mel"] and "n_descriptors" not in model.info
    start = 0
    for f, r in zip(files, got):
        pred = model.predict_file(f)
        assert pred.ok, pred.error
        mine = slice(start, start + len(r.x))
        start += len(r.x)
        want = time_weighted_mean(r.spans[:, 0], r.spans[:, 1], answer.values(x[mine]))
        np.testing.assert_allclose([pred.valence, pred.arousal], want, atol=1e-5)
        want = time_weighted_mean(r.spans[:, 0], r.spans[:, 1], np.clip(deam.predict(x[mine][:, heard]), 0, 1))
        np.testing.assert_allclose([pred.deam.valence, pred.deam.arousal], want, atol=1e-5)
    with pytest.raises(ValueError, match="a mel-patches model's ears give encoder, musicnn"):
        feature_graph("mel-patches", AUDIOSET_SETTINGS, [audioset_ear(tmp_path / "enc.onnx")])


def test_the_encoders_licence_travels_with_the_package():
    from importlib import resources

    notice = (resources.files("music2emotion") / "models" / "LICENSE-EfficientAT.txt").read_text()
    assert "MIT License" in notice and "Copyright (c) 2022 Florian Schmid" in notice


def test_the_encoder_may_hear_the_middle_of_a_window_only():
    y = np.random.default_rng(4).standard_normal(10 * 16_000).astype(np.float32) * 0.1
    middle = dataclasses.replace(EncoderSettings(), seconds=5.0)
    got = encoder_mel(y, 16_000, middle)
    assert got.shape == (1, 128, 500)
    np.testing.assert_array_equal(got, encoder_mel(y[40_000:120_000], 16_000, EncoderSettings()))
    # a window shorter than that is heard whole
    assert encoder_mel(y[:3 * 16_000], 16_000, middle).shape == (1, 128, 300)
