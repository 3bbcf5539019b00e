"""The one answer's training side on synthetic data with known answers: the head's log-odds,
their ONNX form, the spreads, DEAM's relation, the calibration figures and the export."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
onnx = pytest.importorskip("onnx")

from music2emotion.prediction import quadrant_mood  # noqa: E402
from music2emotion.training import answer as ans  # noqa: E402


def _quadrant_data(n: int, features: int, seed: int):
    """Rows whose first two features are valence and arousal (centred on 0), quadrant
    labels drawn from them through logistic noise, and DEAM-like ratings that add energy."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    v, a = x[:, 0], x[:, 1]
    hv = rng.random(n) < 1 / (1 + np.exp(-3 * v))
    ha = rng.random(n) < 1 / (1 + np.exp(-3 * a))
    q = np.where(ha, np.where(hv, 1, 2), np.where(hv, 4, 3))
    return x, q


def test_margins_are_the_log_odds_of_each_axis():
    z = np.log(np.array([[0.4, 0.1, 0.2, 0.3]]))  # happy, angry, sad, tender
    assert ans.quadrant_margins(z)[0] == pytest.approx([np.log(0.7 / 0.3), np.log(0.5 / 0.5)])


def test_the_answer_learns_both_axes_and_its_onnx_nodes_agree(tmp_path):
    from onnx import TensorProto, helper

    from music2emotion.training.onnx_format import OPSETS

    x, q = _quadrant_data(600, 6, 0)
    answer = ans.Answer(np.arange(6), c=1.0).fit(x, q)
    answer.scale = 0.04
    m = answer.margins(x)
    assert np.corrcoef(m[:, 0], x[:, 0])[0, 1] > 0.9 and np.corrcoef(m[:, 1], x[:, 1])[0, 1] > 0.9
    nodes, inits = answer.onnx_nodes("features", "output")
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 6])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()])
    import onnxruntime as ort

    got = ort.InferenceSession(model.SerializeToString()).run(None, {"features": x[:50].astype(np.float32)})[0]
    np.testing.assert_allclose(got, answer.values(x[:50]), atol=1e-5)


def test_fit_spread_recovers_a_known_scale():
    rng = np.random.default_rng(1)
    v = rng.uniform(0.2, 0.8, 20000)
    high = rng.random(len(v)) < 1 / (1 + np.exp(-(v - 0.5) / 0.05))
    assert ans.fit_spread(v, high) == pytest.approx(0.05, rel=0.05)


def test_deam_relation_recovers_the_energy_in_valence():
    rng = np.random.default_rng(2)
    a = rng.uniform(0.1, 0.9, 3000)
    v = rng.uniform(0.1, 0.9, 3000)
    y = np.column_stack([v + 0.45 * (a - 0.5) + 0.02 + rng.normal(0, 0.01, len(a)), a])
    beta, c = ans.deam_relation(y, v)
    assert beta == pytest.approx(0.45, abs=0.01) and c == pytest.approx(0.02, abs=0.002)
    assert ans.answer_targets(y, (beta, c))[:, 0] == pytest.approx(v, abs=0.05)


def test_cross_fit_covers_and_calibrates_held_out_folds():
    rng = np.random.default_rng(3)
    n = 2000
    values = rng.uniform(0.2, 0.8, (n, 2))
    high = rng.random((n, 2)) < 1 / (1 + np.exp(-(values - 0.5) / 0.06))
    q = np.where(high[:, 1], np.where(high[:, 0], 1, 2), np.where(high[:, 0], 4, 3))
    residuals = rng.normal(0, 0.1, (n, 2))
    folds = np.array_split(rng.permutation(n), 5)
    out = ans.cross_fit(values, high, residuals, folds, folds, 0.9, q)
    assert out["spread"] == pytest.approx([0.06, 0.06], rel=0.15)
    assert out["half_width"] == pytest.approx([0.1645, 0.1645], rel=0.1)
    assert all(0.87 <= c <= 0.93 for c in out["coverage"])
    assert out["ece"] < 0.05 and out["probabilities"].sum(1) == pytest.approx(1)
    # the most probable quadrant is the one the values lie in, song by song
    assert np.array_equal(out["probabilities"].argmax(1) + 1,
                          [("happy", "angry", "sad", "tender").index(quadrant_mood(v, a)) + 1 for v, a in values])
