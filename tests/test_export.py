"""ONNX export: parity with PyTorch, dynamic axes, settings in the metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from music2emotion import EmotionModel  # noqa: E402
from music2emotion.config import FeatureSettings
from music2emotion.modelfile import METADATA_KEY  # noqa: E402
from music2emotion.training.cnn import build_model  # noqa: E402
from music2emotion.training.export import export_onnx, max_abs_difference  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(1)
    model = build_model("seed")
    # move batch-norm statistics away from their defaults so the test covers them
    with torch.no_grad():
        model.train()(torch.randn(8, 1, 64, 200) * 2 + 0.5)
    model.eval()
    path = export_onnx(model, FeatureSettings(window_seconds=30.0),
                       tmp_path_factory.mktemp("x") / "m.onnx", {"arch": "seed"})
    return model, path


@pytest.mark.parametrize("batch, frames", [(1, 1292), (4, 431), (2, 57)])
def test_onnx_matches_pytorch(exported, batch, frames):
    model, path = exported
    x = np.random.default_rng(batch).standard_normal((batch, 1, 64, frames)).astype(np.float32)
    assert max_abs_difference(model, path, x) < 1e-4


def test_settings_travel_in_the_file(exported):
    _, path = exported
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    info = json.loads(meta[METADATA_KEY])
    assert info["settings"]["window_seconds"] == 30.0 and info["arch"] == "seed"
    assert EmotionModel(path).settings == FeatureSettings(window_seconds=30.0)


def test_inference_refuses_foreign_onnx(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="not a music2emotion model"):
        EmotionModel(path)
