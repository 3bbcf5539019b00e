"""Fine-tuning the encoder on a CPU: the torch port of an ONNX graph gives ONNX Runtime's
numbers, starts from any block's input, freezes what comes before, writes its weights back
into the same graph; the caches and the training loop, on a miniature of the encoder."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from music2emotion.training import finetune as ft  # noqa: E402
from music2emotion.training.encoder_torch import OnnxEncoder  # noqa: E402


def mini_encoder(n_mels: int = 16) -> "onnx.ModelProto":
    """A miniature of EfficientAT's exported graph, with its operators and its names: a stem
    convolution (features.0), a residual block (features.1), a block with squeeze-and-
    excitation (features.2), the final 1x1 convolution (features.3), mean pooling into
    ``features [n, 8]`` and a two-layer classifier into ``logits [n, 5]``; the batch size
    taken from the input's shape, as the export does."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.3

    inits = {
        "model.features.0.0.weight": w(4, 1, 3, 3), "model.features.0.0.weight_bias": w(4),
        "model.features.1.block.0.0.weight": w(4, 4, 1, 1), "model.features.1.block.0.0.weight_bias": w(4),
        "model.features.1.block.1.0.weight": w(4, 1, 3, 3), "model.features.1.block.1.0.weight_bias": w(4),
        "model.features.2.block.0.0.weight": w(6, 4, 1, 1), "model.features.2.block.0.0.weight_bias": w(6),
        "model.features.2.block.2.conc_se_layers.0.fc1.weight": w(3, 6),
        "model.features.2.block.2.conc_se_layers.0.fc1.bias": w(3),
        "model.features.2.block.2.conc_se_layers.0.fc2.weight": w(6, 3),
        "model.features.2.block.2.conc_se_layers.0.fc2.bias": w(6),
        "model.features.2.block.3.0.weight": w(6, 6, 1, 1), "model.features.2.block.3.0.weight_bias": w(6),
        "model.features.3.0.weight": w(8, 6, 1, 1), "model.features.3.0.weight_bias": w(8),
        "model.classifier.2.weight": w(7, 8), "model.classifier.2.bias": w(7),
        "model.classifier.5.weight": w(5, 7), "model.classifier.5.bias": w(5),
    }
    consts = {"axes_hw": np.array([2, 3]), "axes_2": np.array([2]), "c6": np.array([6]), "one": np.array([1]),
              "axes_0": np.array([0]), "axes_last": np.array([-1, -2]), "c8": np.array([8]), "minus1": np.array([-1])}
    f = "model.features"
    nodes = [
        helper.make_node("Shape", ["spec"], ["batch"], start=0, end=1),
        helper.make_node("Concat", ["batch", "c6", "one", "one"], ["se_shape"], axis=0),
        helper.make_node("Conv", ["spec", f"{f}.0.0.weight", f"{f}.0.0.weight_bias"], ["c0"], pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("HardSwish", ["c0"], ["h0"]),
        helper.make_node("Conv", ["h0", f"{f}.1.block.0.0.weight", f"{f}.1.block.0.0.weight_bias"], ["c1"]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", f"{f}.1.block.1.0.weight", f"{f}.1.block.1.0.weight_bias"], ["c1b"],
                         group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c1b", "h0"], ["a1"]),
        helper.make_node("Conv", ["a1", f"{f}.2.block.0.0.weight", f"{f}.2.block.0.0.weight_bias"], ["c2"]),
        helper.make_node("HardSwish", ["c2"], ["h2"]),
        helper.make_node("ReduceMean", ["h2", "axes_hw"], ["m2"], keepdims=1),
        helper.make_node("Squeeze", ["m2", "axes_2"], ["s2"]),
        helper.make_node("Squeeze", ["s2", "axes_2"], ["s2b"]),
        helper.make_node("Gemm", ["s2b", f"{f}.2.block.2.conc_se_layers.0.fc1.weight",
                                  f"{f}.2.block.2.conc_se_layers.0.fc1.bias"], ["g1"], transB=1),
        helper.make_node("Relu", ["g1"], ["g1r"]),
        helper.make_node("Gemm", ["g1r", f"{f}.2.block.2.conc_se_layers.0.fc2.weight",
                                  f"{f}.2.block.2.conc_se_layers.0.fc2.bias"], ["g2"], transB=1),
        helper.make_node("Sigmoid", ["g2"], ["sg"]),
        helper.make_node("Reshape", ["sg", "se_shape"], ["sgv"]),
        helper.make_node("Mul", ["sgv", "h2"], ["se"]),
        helper.make_node("Unsqueeze", ["se", "axes_0"], ["se_u"]),
        helper.make_node("ReduceMax", ["se_u", "axes_0"], ["se_m"], keepdims=0),
        helper.make_node("Conv", ["se_m", f"{f}.2.block.3.0.weight", f"{f}.2.block.3.0.weight_bias"], ["c2c"]),
        helper.make_node("Conv", ["c2c", f"{f}.3.0.weight", f"{f}.3.0.weight_bias"], ["c3"]),
        helper.make_node("HardSwish", ["c3"], ["h3"]),
        helper.make_node("ReduceMean", ["h3", "axes_last"], ["pooled"], keepdims=1),
        helper.make_node("Squeeze", ["pooled"], ["pooled_s"]),
        helper.make_node("Concat", ["batch", "c8"], ["feat_shape"], axis=0),
        helper.make_node("Reshape", ["pooled", "feat_shape"], ["pooled_v"]),
        helper.make_node("Gemm", ["pooled_v", "model.classifier.2.weight", "model.classifier.2.bias"], ["l1"],
                         transB=1),
        helper.make_node("HardSwish", ["l1"], ["l1h"]),
        helper.make_node("Gemm", ["l1h", "model.classifier.5.weight", "model.classifier.5.bias"], ["l2"], transB=1),
        helper.make_node("Concat", ["batch", "minus1"], ["out_shape"], axis=0),
        helper.make_node("Reshape", ["l2", "out_shape"], ["logits"]),
        helper.make_node("Reshape", ["pooled_s", "out_shape"], ["features"]),
    ]
    graph = helper.make_graph(
        nodes, "mini", [helper.make_tensor_value_info("spec", TensorProto.FLOAT, ["n", 1, n_mels, "t"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 5]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 8])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()]
        + [numpy_helper.from_array(v.astype(np.int64), k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


@pytest.fixture(scope="module")
def graph():
    return mini_encoder()


@pytest.fixture()
def spec():
    return np.random.default_rng(1).standard_normal((3, 1, 16, 40)).astype(np.float32)


def _onnx(graph, spec):
    return ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["logits", "features"], {"spec": spec})


def test_the_port_gives_onnx_runtimes_numbers(graph, spec):
    enc = OnnxEncoder(graph).eval()
    with torch.no_grad():
        logits, features = enc(torch.from_numpy(spec))
    want_logits, want_features = _onnx(graph, spec)
    np.testing.assert_allclose(logits.numpy(), want_logits, atol=1e-5)
    np.testing.assert_allclose(features.numpy(), want_features, atol=1e-5)
    # a batch of one: the final Squeeze without axes must not lose the batch
    with torch.no_grad():
        one = enc(torch.from_numpy(spec[:1]))[1]
    np.testing.assert_allclose(one.numpy(), want_features[:1], atol=1e-5)


def test_it_starts_from_any_block_and_freezes_what_comes_before(graph, spec):
    enc = OnnxEncoder(graph).eval()
    assert enc.blocks() == [0, 1, 2, 3]
    _, want = _onnx(graph, spec)
    for block in enc.blocks():
        name = enc.block_input(block)
        with torch.no_grad():
            h = enc.run("spec", torch.from_numpy(spec), (name,))[0]
            got = enc.run(name, h)[0]
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    trained = enc.train_from(2)
    names = {k for k, v in enc.names.items() if getattr(enc, v).requires_grad}
    assert names == {n for n in enc.names if n.startswith(("model.features.2.", "model.features.3.", "model.classifier"))}
    assert len(trained) == len(names)


def test_weights_go_back_into_the_same_graph(graph, spec):
    enc = OnnxEncoder(graph)
    with torch.no_grad():
        enc.weight("model.features.3.0.weight").mul_(1.5)
        want = enc(torch.from_numpy(spec))[1].numpy()
    out = enc.write_onnx(graph)
    assert [n.op_type for n in out.graph.node] == [n.op_type for n in graph.graph.node]
    np.testing.assert_allclose(_onnx(out, spec)[1], want, atol=1e-5)
    np.testing.assert_allclose(_onnx(graph, spec)[1], OnnxEncoder(graph).eval()(torch.from_numpy(spec))[1]
                               .detach().numpy(), atol=1e-5)  # the source graph is left alone


def test_block_inputs_cache_every_gain(graph):
    enc = OnnxEncoder(graph).eval()
    mels = np.random.default_rng(2).standard_normal((5, 1, 16, 40)).astype(np.float16)
    cached = ft.block_inputs(enc, mels, 2, (-6.0, 0.0, 6.0), chunk=2)
    assert cached.shape[:2] == (3, 5) and cached.dtype == np.float16
    with torch.no_grad():
        loud = enc.run("spec", torch.from_numpy(mels.astype(np.float32) + np.float32(6 * ft.GAIN_SHIFT_PER_DB)),
                       (enc.block_input(2),))[0]
    np.testing.assert_allclose(cached[2], loud.numpy(), atol=2e-2)  # float16


def test_finetuning_learns_the_labels_and_stops_on_the_inner_split(graph):
    rng = np.random.default_rng(3)
    n_d, n_q = 60, 40
    mels_d = rng.standard_normal((n_d, 1, 16, 40)).astype(np.float16)
    mels_q = rng.standard_normal((n_q, 1, 16, 40)).astype(np.float16)
    quadrants = rng.integers(1, 5, n_q)
    mels_q[:, :, :4] += (quadrants[:, None, None, None] - 2.5).astype(np.float16)  # the label is in the low bands
    y = np.clip(0.5 + 0.1 * mels_d[:, 0, :4].astype(np.float32).mean((1, 2))[:, None] * [1, 1], 0, 1)
    enc = OnnxEncoder(graph)
    cfg = ft.FineTune(from_block=2, epochs=6, batch=16, lr=3e-3, head_lr=3e-2, gains=(0.0,), patience=3)
    hd, hq = ft.block_inputs(enc, mels_d, 2, cfg.gains), ft.block_inputs(enc, mels_q, 2, cfg.gains)
    before = {k: v.detach().clone() for k, v in enc.state_dict().items()}
    info = ft.finetune(enc, hd, y, hq, quadrants, ft.inner_split(n_d, 0.2, 0), ft.inner_split(n_q, 0.2, 0), cfg,
                       log=lambda s: None)
    assert 1 <= len(info["history"]) <= cfg.epochs
    assert info["history"][-1]["train_loss"] < info["history"][0]["train_loss"]
    after = enc.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(("model__features__2", "model__features__3", "model__classifier")) for k in moved)
    # the same seed, the same run
    enc2 = OnnxEncoder(graph)
    ft.finetune(enc2, hd, y, hq, quadrants, ft.inner_split(n_d, 0.2, 0), ft.inner_split(n_q, 0.2, 0), cfg,
                log=lambda s: None)
    assert all(torch.equal(after[k], enc2.state_dict()[k]) for k in after)


def test_inner_split_keeps_an_artist_on_one_side():
    groups = ["a", "a", "b", "c", "c", "c", "d", "e"]
    held = ft.inner_split(len(groups), 0.4, 0, groups)
    for g in set(groups):
        assert len({h for h, k in zip(held, groups) if k == g}) == 1


def test_a_final_run_trains_every_epoch_on_every_song(graph):
    rng = np.random.default_rng(5)
    mels = rng.standard_normal((30, 1, 16, 40)).astype(np.float16)
    enc = OnnxEncoder(graph)
    cfg = ft.FineTune(from_block=3, epochs=3, batch=8, gains=(0.0,))
    h = ft.block_inputs(enc, mels, 3, cfg.gains)
    none = np.zeros(30, bool)
    info = ft.finetune(enc, h, rng.uniform(0.2, 0.8, (30, 2)), h, rng.integers(1, 5, 30), none, none, cfg,
                       log=lambda s: None)
    assert [r["epoch"] for r in info["history"]] == [0, 1, 2] and info["best_epoch"] == 2
