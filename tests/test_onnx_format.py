"""Every model file, shipped or exported, loads in the oldest onnxruntime the package declares."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from packaging.requirements import Requirement  # noqa: E402

from music2emotion.modelfile import BUNDLED_MODELS, bundled_model_path  # noqa: E402
from music2emotion.training.onnx_format import IR_VERSION, OPSETS, RUNTIME_READS, save_onnx  # noqa: E402


def declared_onnxruntime_floor() -> str:
    """The ``X.Y`` of ``onnxruntime>=X.Y[.Z]`` in the installed package's requirements."""
    for line in metadata.requires("music2emotion") or []:
        req = Requirement(line)
        if req.name == "onnxruntime" and not req.marker:
            lower = [s.version for s in req.specifier if s.operator == ">="]
            assert len(lower) == 1, f"onnxruntime needs one lower bound, not {req.specifier}"
            return ".".join(lower[0].split(".")[:2])
    raise AssertionError("music2emotion does not declare onnxruntime")


def file_format(path) -> tuple[int, dict[str, int]]:
    proto = onnx.load(str(path), load_external_data=False)
    return proto.ir_version, {op.domain: op.version for op in proto.opset_import}


def within(floor: str, ir: int, opsets: dict[str, int]) -> list[str]:
    """What of (``ir``, ``opsets``) the onnxruntime release ``floor`` cannot read."""
    max_ir, max_opset, max_ml = RUNTIME_READS[floor]
    limits = {"": max_opset, "ai.onnx.ml": max_ml}
    too_new = [f"IR {ir} > {max_ir}"] if ir > max_ir else []
    return too_new + [f"{d or 'ai.onnx'} {v} > {limits.get(d)}" for d, v in opsets.items()
                      if d not in limits or v > limits[d]]


def test_the_written_format_is_read_by_the_declared_floor():
    floor = declared_onnxruntime_floor()
    assert floor in RUNTIME_READS, f"onnxruntime {floor} is declared: add what it reads to RUNTIME_READS"
    assert within(floor, IR_VERSION, OPSETS) == []
    # and IR_VERSION is one the opsets allow (IR 8 came with opset 17)
    assert IR_VERSION >= onnx.helper.find_min_ir_version_for(
        [onnx.helper.make_opsetid(d, v) for d, v in OPSETS.items()])


@pytest.mark.parametrize("name", list(BUNDLED_MODELS))
def test_bundled_models_load_in_the_declared_floor(name):
    ir, opsets = file_format(bundled_model_path(name))
    assert within(declared_onnxruntime_floor(), ir, opsets) == []
    # a CNN imports only the default domain; scikit-learn's regressors add ai.onnx.ml
    assert ir == IR_VERSION and opsets.items() <= OPSETS.items(), "re-save it with onnx_format.save_onnx"


def test_the_table_catches_a_file_the_floor_cannot_read():
    # the files onnx 1.23 writes by default: what onnxruntime 1.23.2 refused on Python 3.10
    assert within("1.23", 14, OPSETS) == ["IR 14 > 11"]
    assert within("1.20", 8, {"": 22, "ai.onnx.ml": 3}) == ["ai.onnx 22 > 21"]
    assert within("1.20", 8, {"com.microsoft": 1}) == ["com.microsoft 1 > None"]


def test_save_onnx_stamps_the_format_and_refuses_newer_opsets(tmp_path):
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert proto.ir_version > IR_VERSION  # onnx stamps its own, newest IR version
    out = save_onnx(proto, tmp_path / "sub" / "m.onnx")
    assert file_format(out) == (IR_VERSION, {"": 17}) and not list(out.parent.glob("*.tmp"))
    newer = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(ValueError, match="ai.onnx 18"):
        save_onnx(newer, tmp_path / "newer.onnx")
    assert not (tmp_path / "newer.onnx").exists()


def test_every_exporter_writes_the_format(tiny_model, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("skl2onnx")
    from music2emotion.descriptors import N_DESCRIPTORS
    from music2emotion.training import recipe, regressors
    from music2emotion.training.musicnn import MusiCNN, export_encoder

    rng = np.random.default_rng(0)
    fitted = regressors.average("ridge").fit(rng.standard_normal((20, N_DESCRIPTORS)), rng.uniform(size=(20, 2)))
    torch.manual_seed(0)
    written = [tiny_model, export_encoder(MusiCNN().eval(), tmp_path / "enc.onnx"),
               recipe.export_fusion(fitted, [], tmp_path / "fast.onnx")]
    for path in written:
        ir, opsets = file_format(path)
        assert ir == IR_VERSION and opsets.items() <= OPSETS.items(), path


def test_identical_constants_are_stored_once(tmp_path):
    """A model fitted per axis holds the same scaler and PCA twice; the file keeps one copy,
    and the graph computes what it computed before."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    other = w + 1
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w0"], ["a"]), helper.make_node("MatMul", ["x", "w1"], ["b"]),
         helper.make_node("MatMul", ["x", "w2"], ["c"]), helper.make_node("Sum", ["a", "b", "c"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        [numpy_helper.from_array(w, "w0"), numpy_helper.from_array(w.copy(), "w1"),
         numpy_helper.from_array(other, "w2")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = save_onnx(proto, tmp_path / "m.onnx")
    saved = onnx.load(str(path))
    assert sorted(i.name for i in saved.graph.initializer) == ["w0", "w2"]
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert y == pytest.approx(x @ w * 2 + x @ other, rel=1e-5)
