"""The pretrained musicnn tagger (Pons & Serra, 2019) as a PyTorch module, for export only.

The ``musicnn`` package on PyPI (version 0.1.0, ISC licence, Music Technology Group,
Universitat Pompeu Fabra) ships TensorFlow 1 checkpoints of CNNs trained to predict the 50
most frequent Last.fm tags of the Million Song Dataset — tags that include *happy*, *sad*,
*mellow*, *chill*, *party* and *beautiful*. Its own code needs TensorFlow 1 and numpy < 1.17,
so it cannot be installed beside this project; this module reads the checkpoint straight
out of the package's wheel (a TensorFlow checkpoint is a LevelDB table of tensor offsets
plus a raw data file), rebuilds the network in PyTorch layer by layer and exports it to
ONNX. Inference then runs the ONNX graph with ONNX Runtime, with no torch and no
TensorFlow. Training/export only: requires torch (the ``train`` extra).

Input: ``[batch, 187, 96]`` patches of ``log10(1 + 10000 * mel)`` at 16 kHz (see
:func:`music2emotion.frontends.musicnn_patches`). Outputs: the 50 tag probabilities and the
200-unit penultimate layer.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MSD_MODEL = "MSD_musicnn"
# tf.compat.v1.layers.batch_normalization's default epsilon
_TF_BN_EPS = 1e-3
_TF_FLOAT = 1


def _varint(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return result, i


def _proto_fields(b: bytes) -> dict[int, list[int | bytes]]:
    """Decode one protobuf message into ``{field number: [values]}`` (no schema needed)."""
    out: dict[int, list[int | bytes]] = {}
    i = 0
    while i < len(b):
        tag, i = _varint(b, i)
        wire = tag & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            value, i = b[i : i + n], i + n
        elif wire == 5:
            value, i = b[i : i + 4], i + 4
        elif wire == 1:
            value, i = b[i : i + 8], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.setdefault(tag >> 3, []).append(value)
    return out


def _block(table: bytes, offset: int, size: int):
    """Key/value pairs of one uncompressed LevelDB table block (prefix-compressed keys)."""
    blk = table[offset : offset + size]
    n_restarts = struct.unpack("<I", blk[-4:])[0]
    end = len(blk) - 4 - 4 * n_restarts
    i, key = 0, b""
    while i < end:
        shared, i = _varint(blk, i)
        unshared, i = _varint(blk, i)
        length, i = _varint(blk, i)
        key = key[:shared] + blk[i : i + unshared]
        i += unshared
        yield key, blk[i : i + length]
        i += length


def read_tf_checkpoint(index: bytes, data: bytes) -> dict[str, np.ndarray]:
    """The float tensors of a single-shard TensorFlow checkpoint (``.index`` + ``.data``)."""
    footer = index[-48:]
    _, j = _varint(footer, 0)  # metaindex handle, unused
    _, j = _varint(footer, j)
    index_offset, j = _varint(footer, j)
    index_size, _ = _varint(footer, j)
    tensors: dict[str, np.ndarray] = {}
    for _, handle in _block(index, index_offset, index_size):
        offset, k = _varint(handle, 0)
        size, _ = _varint(handle, k)
        if index[offset + size] != 0:
            raise ValueError("compressed checkpoint blocks are not supported")
        for key, value in _block(index, offset, size):
            if not key:  # the bundle header
                continue
            entry = _proto_fields(value)  # BundleEntryProto
            if entry.get(1, [0])[0] != _TF_FLOAT:
                continue
            dims = _proto_fields(entry[2][0]).get(2, []) if 2 in entry else []  # type: ignore[arg-type]
            shape = [int(_proto_fields(d).get(1, [0])[0]) for d in dims]  # type: ignore[arg-type]
            start, nbytes = int(entry.get(4, [0])[0]), int(entry.get(5, [0])[0])  # type: ignore[arg-type]
            tensors[key.decode()] = np.frombuffer(data[start : start + nbytes], "<f4").reshape(shape).copy()
    return tensors


def read_wheel_checkpoint(wheel: str | os.PathLike[str], model: str = MSD_MODEL) -> dict[str, np.ndarray]:
    """The weights of ``model`` from a downloaded ``musicnn-0.1.0-py3-none-any.whl``."""
    with zipfile.ZipFile(wheel) as z:
        index = z.read(f"musicnn/{model}/.index")
        data = z.read(f"musicnn/{model}/.data-00000-of-00001")
    return read_tf_checkpoint(index, data)


class MusiCNN(nn.Module):
    """musicnn (timbral + temporal front end, dense mid end, pooled back end), eval only."""

    def __init__(self, n_mels: int = 96, n_tags: int = 50):
        super().__init__()
        self.bn_in = nn.BatchNorm2d(1, eps=_TF_BN_EPS)
        # timbral filters span 40% and 70% of the mel axis, 7 frames wide
        self.timbral = nn.ModuleList([nn.Conv2d(1, 204, (7, int(f * n_mels))) for f in (0.4, 0.7)])
        self.timbral_bn = nn.ModuleList([nn.BatchNorm2d(204, eps=_TF_BN_EPS) for _ in range(2)])
        # temporal filters: 128, 64 and 32 frames long, one mel band high
        self.temporal = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in (128, 64, 32)])
        self.temporal_bn = nn.ModuleList([nn.BatchNorm2d(51, eps=_TF_BN_EPS) for _ in range(3)])
        self.mid = nn.ModuleList([nn.Conv1d(561, 64, 7), nn.Conv1d(64, 64, 7), nn.Conv1d(64, 64, 7)])
        self.mid_bn = nn.ModuleList([nn.BatchNorm1d(64, eps=_TF_BN_EPS) for _ in range(3)])
        self.pool_bn = nn.BatchNorm1d(2 * 753, eps=_TF_BN_EPS)
        self.dense = nn.Linear(2 * 753, 200)
        self.dense_bn = nn.BatchNorm1d(200, eps=_TF_BN_EPS)
        self.out = nn.Linear(200, n_tags)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[batch, frames, mels]`` -> (tag probabilities ``[batch, 50]``, penultimate ``[batch, 200]``)."""
        tags, penultimate, _ = self.layers(x)
        return tags, penultimate

    def layers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[batch, frames, mels]`` -> (tag probabilities ``[batch, 50]``, penultimate
        ``[batch, 200]``, the mid end's max and mean pools ``[batch, 1506]``)."""
        x = self.bn_in(x.unsqueeze(1))
        padded = F.pad(x, (0, 0, 3, 3))
        front = [bn(F.relu(conv(padded))).amax(3) for conv, bn in zip(self.timbral, self.timbral_bn)]
        for conv, bn in zip(self.temporal, self.temporal_bn):
            k = conv.kernel_size[0]
            # TensorFlow's "same" padding puts the odd extra frame after
            same = F.pad(x, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))
            front.append(bn(F.relu(conv(same))).amax(3))
        h = torch.cat(front, 1)
        feats = [h]
        for i, (conv, bn) in enumerate(zip(self.mid, self.mid_bn)):
            y = bn(F.relu(conv(F.pad(feats[-1], (3, 3)))))
            feats.append(y if i == 0 else y + feats[-1])
        mid = torch.cat(feats, 1)
        # TF flattens [features, (max, mean)], interleaving the two pools
        pooled = torch.stack([mid.amax(2), mid.mean(2)], 2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return torch.sigmoid(self.out(penultimate)), penultimate, pooled


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def load_musicnn(weights: dict[str, np.ndarray]) -> MusiCNN:
    """Build :class:`MusiCNN` from the checkpoint's tensors (names as TF 1 created them)."""
    model = MusiCNN()

    def bn(m: nn.Module, name: str) -> None:
        m.weight.data, m.bias.data = _t(weights[f"{name}/gamma"]), _t(weights[f"{name}/beta"])
        m.running_mean.data = _t(weights[f"{name}/moving_mean"])
        m.running_var.data = _t(weights[f"{name}/moving_variance"])

    def conv2d(m: nn.Module, name: str) -> None:  # TF [h, w, in, out] -> torch [out, in, h, w]
        m.weight.data = _t(weights[f"{name}/kernel"].transpose(3, 2, 0, 1))
        m.bias.data = _t(weights[f"{name}/bias"])

    def conv1d(m: nn.Module, name: str) -> None:  # TF [7, in, 1, out] over [batch, time, in, 1]
        m.weight.data = _t(weights[f"{name}/kernel"][:, :, 0, :].transpose(2, 1, 0))
        m.bias.data = _t(weights[f"{name}/bias"])

    def dense(m: nn.Linear, name: str) -> None:
        m.weight.data, m.bias.data = _t(weights[f"{name}/kernel"].T), _t(weights[f"{name}/bias"])

    bn(model.bn_in, "batch_normalization")
    convs = list(model.timbral) + list(model.temporal)
    bns = list(model.timbral_bn) + list(model.temporal_bn)
    for i, (c, b) in enumerate(zip(convs, bns)):
        conv2d(c, "conv2d" if i == 0 else f"conv2d_{i}")
        bn(b, f"batch_normalization_{i + 1}")
    for i, (c, b) in enumerate(zip(model.mid, model.mid_bn)):
        conv1d(c, f"conv2d_{5 + i}")
        bn(b, f"batch_normalization_{6 + i}")
    bn(model.pool_bn, "batch_normalization_9")
    dense(model.dense, "dense")
    bn(model.dense_bn, "batch_normalization_10")
    dense(model.out, "dense_1")
    return model.eval()


def store_half(proto: Any) -> Any:
    """Keep every float32 weight as float16 in the file, cast back to float32 when loaded.

    Halves the file; ONNX Runtime folds the casts at session start, so the arithmetic stays
    float32. The weights are then exactly the float16-rounded ones, which the features the
    regressors are fitted on are computed with too (they come from this same file).
    """
    from onnx import TensorProto, helper, numpy_helper

    casts, kept = [], []
    for init in proto.graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.dims and np.prod(init.dims) > 16:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_f16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        else:
            kept.append(init)
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    nodes = casts + list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto


class _Layers(nn.Module):
    """:meth:`MusiCNN.layers` as a module's forward, for the exporter."""

    def __init__(self, net: MusiCNN):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net.layers(x)


def musicnn_graph(model: MusiCNN, frames: int = 187, n_mels: int = 96, layers: bool = True,
                  half_storage: bool = True) -> Any:
    """The tagger as an ONNX graph: ``patches [n, frames, mels]`` -> ``tags``, ``embedding``
    (the penultimate layer) and, with ``layers``, ``pooled`` (:meth:`MusiCNN.layers`)."""
    import warnings

    import onnx

    from .onnx_format import OPSETS

    outputs = ["tags", "embedding"] + (["pooled"] if layers else [])
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            _Layers(model.eval()) if layers else model.eval(), (torch.zeros(2, frames, n_mels),), buf,
            input_names=["patches"], output_names=outputs,
            dynamic_axes={name: {0: "n"} for name in ["patches", *outputs]},
            opset_version=OPSETS[""], dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    return store_half(proto) if half_storage else proto


def export_encoder(model: MusiCNN, out: str | os.PathLike[str], frames: int = 187, n_mels: int = 96,
                   half_storage: bool = True) -> Path:
    """Write the tagger to ONNX: ``patches [n, frames, mels]`` -> ``tags``, ``embedding``."""
    from .onnx_format import save_onnx

    return save_onnx(musicnn_graph(model, frames, n_mels, layers=False, half_storage=half_storage), out)
