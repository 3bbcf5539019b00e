"""The fusion model: musicnn port -> ONNX, one exported graph, and file prediction without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("skl2onnx")

from music2emotion import EmotionModel  # noqa: E402
from music2emotion.config import SAMPLE_RATE  # noqa: E402
from music2emotion.descriptors import N_DESCRIPTORS, describe  # noqa: E402
from music2emotion.frontends import PATCH_FRAMES, PATCHES, window_inputs  # noqa: E402
from music2emotion.modelfile import TAGGERS  # noqa: E402
from music2emotion.training import recipe, regressors  # noqa: E402
from music2emotion.training.musicnn import (  # noqa: E402
    MusiCNN,
    _proto_fields,
    _varint,
    export_encoder,
)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A randomly initialised musicnn (same graph as the pretrained one) exported to ONNX."""
    torch.manual_seed(0)
    model = MusiCNN().eval()
    path = export_encoder(model, tmp_path_factory.mktemp("enc") / "enc.onnx")
    return model, path


@pytest.fixture(scope="module")
def second_encoder(tmp_path_factory):
    torch.manual_seed(1)
    return export_encoder(MusiCNN().eval(), tmp_path_factory.mktemp("enc2") / "enc2.onnx")


def test_encoder_onnx_matches_torch(encoder, tmp_path):
    import onnxruntime as ort

    model, half = encoder
    full = export_encoder(model, tmp_path / "full.onnx", half_storage=False)
    x = np.random.default_rng(0).uniform(0, 3, (2, PATCH_FRAMES, 96)).astype(np.float32)
    with torch.no_grad():
        tags, emb = (t.numpy() for t in model(torch.from_numpy(x)))
    assert tags.shape == (2, 50) and emb.shape == (2, 200)
    got_tags, got_emb = ort.InferenceSession(str(full)).run(None, {"patches": x})
    assert np.abs(got_tags - tags).max() < 1e-4 and np.abs(got_emb - emb).max() < 1e-4
    # float16 storage: half the bytes, float16 rounding of the weights and nothing more
    assert half.stat().st_size < 0.55 * full.stat().st_size
    half_tags, half_emb = ort.InferenceSession(str(half)).run(None, {"patches": x})
    assert np.abs(half_emb - emb).max() < 0.05 * max(1.0, np.abs(emb).max())


def test_protobuf_and_varint_decoding():
    # field 1 varint 150, field 2 bytes "hi": the protobuf documentation's own examples
    assert _varint(bytes([0x96, 0x01]), 0) == (150, 2)
    assert _proto_fields(bytes([0x08, 0x96, 0x01, 0x12, 0x02]) + b"hi") == {1: [150], 2: [b"hi"]}


@pytest.mark.slow
def test_exported_fusion_model_predicts_files_like_scikit_learn(encoder, second_encoder, tmp_path):
    import onnxruntime as ort

    encoders = [encoder[1], second_encoder]
    rng = np.random.default_rng(1)
    n = len(recipe.feature_names(["a", "b"]))
    x = rng.standard_normal((60, n)).astype(np.float32)
    y = rng.uniform(0.2, 0.8, (60, 2))
    fitted = regressors.average("ridge", "svr").fit(x, y)
    path = recipe.export_fusion(fitted, encoders, tmp_path / "fusion.onnx", {"note": "test"})
    model = EmotionModel(path, threads=1)
    assert model.kind == "fusion" and model.info["note"] == "test"
    assert model.settings.window_seconds == 10.0

    t = np.arange(int(12 * SAMPLE_RATE)) / SAMPLE_RATE
    audio = (0.2 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    sf.write(tmp_path / "song.wav", audio, SAMPLE_RATE)
    pred = model.predict_file(tmp_path / "song.wav", timeline=True)
    assert pred.ok and pred.windows == 2 and len(pred.timeline) == 2

    # the same two windows by hand: descriptors + each encoder's outputs -> scikit-learn
    sessions = [ort.InferenceSession(str(e)) for e in encoders]
    rows = []
    for start in (0, len(audio) - 10 * SAMPLE_RATE):
        inputs = window_inputs("fusion", audio[start : start + 10 * SAMPLE_RATE], model.settings)
        assert inputs["patches"].shape == (PATCHES, PATCH_FRAMES, 96)
        parts = [inputs["descriptors"]]
        for sess in sessions:
            tags, emb = sess.run(None, {"patches": inputs["patches"]})
            parts += [tags.mean(0), emb.mean(0)]
        rows.append(np.concatenate(parts))
        # the graph's second output is the taggers' part of the regressors' input
        feed = {k: v[None].astype(np.float32) for k, v in inputs.items()}
        taggers = model.session.run([TAGGERS], feed)[0][0]
        np.testing.assert_allclose(taggers, rows[-1][N_DESCRIPTORS:], atol=1e-5)
    # fusion windows go through ONNX Runtime one at a time (memory), and come back in order
    assert model.session_batch == 1
    both = [model.window_inputs(audio[s : s + 10 * SAMPLE_RATE]) for s in (0, len(audio) - 10 * SAMPLE_RATE)]
    np.testing.assert_allclose(model.predict_windows(both),
                               np.concatenate([model.predict_windows([w]) for w in both]), atol=1e-6)
    want = np.clip(fitted.predict(np.array(rows, np.float32)), 0, 1).mean(0)
    assert pred.valence == pytest.approx(want[0], abs=1e-3)
    assert pred.arousal == pytest.approx(want[1], abs=1e-3)

    # inference never imports torch (scikit-learn comes in anyway: librosa.decompose uses it)
    code = ("import sys, json; from music2emotion import EmotionModel; "
            f"p = EmotionModel({str(path)!r}).predict_file({str(tmp_path / 'song.wav')!r}); "
            "print(json.dumps([p.valence, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    valence, torch_loaded = json.loads(out.stdout.splitlines()[-1])
    assert valence == pytest.approx(pred.valence) and not torch_loaded


def test_fusion_model_reports_bad_files_without_raising(encoder, tmp_path):
    _, enc_path = encoder
    x = np.random.default_rng(2).standard_normal((20, len(recipe.feature_names(["a"])))).astype(np.float32)
    fitted = regressors.ridge().fit(x, np.full((20, 2), 0.5))
    model = EmotionModel(recipe.export_fusion(fitted, [enc_path], tmp_path / "f.onnx"))
    (tmp_path / "bad.mp3").write_bytes(b"nope")
    pred = model.predict_file(tmp_path / "bad.mp3")
    assert not pred.ok and pred.error and pred.valence is None


def test_descriptors_only_model_runs_without_patches(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, N_DESCRIPTORS)).astype(np.float32)
    fitted = regressors.average("ridge", "gbm").fit(x, rng.uniform(0.2, 0.8, (40, 2)))
    path = recipe.export_fusion(fitted, [], tmp_path / "fast.onnx")
    model = EmotionModel(path, threads=1)
    assert model.kind == "descriptors" and model.input_names == ["descriptors"]
    assert [o.name for o in model.session.get_outputs()] == ["output"]  # no taggers
    assert model.info["encoders"] == [] and model.info["patches"] == 0

    t = np.arange(int(10 * SAMPLE_RATE)) / SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(tmp_path / "song.wav", audio, SAMPLE_RATE)
    window = window_inputs("descriptors", audio, model.settings)
    assert list(window) == ["descriptors"]  # the taggers' patches are not even computed
    pred = model.predict_file(tmp_path / "song.wav")
    want = np.clip(fitted.predict(describe(audio, SAMPLE_RATE)[None]), 0, 1)[0]
    assert pred.ok and pred.windows == 1
    assert [pred.valence, pred.arousal] == pytest.approx(want, abs=1e-4)
