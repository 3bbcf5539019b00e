"""The AudioSet encoder's ONNX graph as a PyTorch module, for fine-tuning (training side).

:class:`OnnxEncoder` runs the nodes of the EfficientAT ``mn04_as`` graph one by one with
torch operators, its weights as parameters named after the graph's initialisers. Two things
make this worth its hundred lines over a general converter (onnx2torch builds an
``fx.GraphModule`` whose parameters no longer carry the initialisers' names):

- :meth:`OnnxEncoder.run` starts at any tensor of the graph, so the frozen early blocks run
  once per clip and their output is cached (:func:`block_input`), and training runs only
  the blocks after it;
- :meth:`OnnxEncoder.write_onnx` puts the trained weights back into the very graph they came
  from: the shipped model stays one ONNX file with the encoder's structure unchanged, and
  inference never needs torch.

The encoder's BatchNorms are folded into its convolutions in the ONNX export, so training
moves the folded weights; there are no running statistics to keep.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The graph's input and its two outputs (the README of the encoder's folder).
SPEC, LOGITS, FEATURES = "spec", "logits", "features"


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _block(name: str) -> int | None:
    """The ``features.N`` block an initialiser belongs to (``None``: the classifier)."""
    m = re.match(r"model\.features\.(\d+)\.", name)
    return int(m.group(1)) if m else None


class OnnxEncoder(nn.Module):
    """The encoder's graph run by torch; float initialisers are parameters, integer ones
    (shapes and axes) stay constants.

    Parameters
    ----------
    model : onnx.ModelProto
        The encoder (``spec`` -> ``logits``, ``features``), at opset 17 or 18.
    """

    def __init__(self, model: Any):
        super().__init__()
        from onnx import numpy_helper

        self.graph_nodes = list(model.graph.node)
        self.names: dict[str, str] = {}  # initialiser name -> parameter name
        self.constants: dict[str, np.ndarray] = {}
        for init in model.graph.initializer:
            value = numpy_helper.to_array(init)
            if value.dtype == np.float32:
                key = init.name.replace(".", "__")
                self.names[init.name] = key
                self.register_parameter(key, nn.Parameter(torch.from_numpy(value.copy())))
            else:
                self.constants[init.name] = value
        self._producer = {out: i for i, n in enumerate(self.graph_nodes) for out in n.output}

    def weight(self, name: str) -> torch.Tensor:
        return getattr(self, self.names[name])

    def blocks(self) -> list[int]:
        """The ``features.N`` blocks, in order (the last one is the final 1x1 convolution)."""
        return sorted({b for b in map(_block, self.names) if b is not None})

    def block_input(self, block: int) -> str:
        """The tensor that block ``block`` reads: everything after it depends on it alone
        (and on the batch size)."""
        for node in self.graph_nodes:
            for name in node.input:
                if name in self.names and _block(name) == block:
                    return node.input[0]
        raise ValueError(f"no block {block}")

    def train_from(self, block: int) -> list[nn.Parameter]:
        """Freeze every weight before ``block``; return the ones from it on (the classifier's
        too, though the embedding does not use it)."""
        trainable = []
        for name, key in self.names.items():
            p = getattr(self, key)
            b = _block(name)
            p.requires_grad_(b is None or b >= block)
            if p.requires_grad:
                trainable.append(p)
        return trainable

    def run(self, start: str, x: torch.Tensor, outputs: Iterable[str] = (FEATURES,)) -> list[torch.Tensor]:
        """Run the graph from tensor ``start`` (``spec``, or a :meth:`block_input`) with
        value ``x`` to ``outputs``."""
        env: dict[str, Any] = {start: x}
        # Shapes first, wherever they sit: the graph asks its input's shape for the batch size
        # only, and builds the reshapes of every block from it and constants once, up front
        for node in self.graph_nodes:
            if node.op_type == "Shape":
                a = _attrs(node)
                if list(node.input) != [SPEC] or (a.get("start", 0), a.get("end")) != (0, 1):
                    raise NotImplementedError("Shape other than the batch size")
                env[node.output[0]] = np.array([x.shape[0]], np.int64)
            elif node.input and all(isinstance(env.get(i, self.constants.get(i)), np.ndarray) for i in node.input):
                env[node.output[0]] = self._op(node, [self._value(env, i) for i in node.input])
        first = 0 if start == SPEC else self._producer[start] + 1
        wanted = list(outputs)
        for node in self.graph_nodes[first:]:
            if node.output[0] in env:
                continue
            if any(i and i not in env and i not in self.names and i not in self.constants for i in node.input):
                continue  # a branch before the start that nothing after it needs
            env[node.output[0]] = self._op(node, [self._value(env, i) for i in node.input])
            if all(w in env for w in wanted):
                break
        return [env[w] for w in wanted]

    def _value(self, env: dict[str, Any], name: str) -> Any:
        if not name:
            return None
        if name in env:
            return env[name]
        if name in self.names:
            return self.weight(name)
        return self.constants[name]

    def _op(self, node: Any, args: list[Any]) -> Any:
        op, a = node.op_type, _attrs(node)
        if op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            if pads[:2] != pads[2:]:
                raise NotImplementedError("asymmetric padding")
            return F.conv2d(args[0], args[1], args[2] if len(args) > 2 else None, stride=a.get("strides", 1),
                            padding=tuple(pads[:2]), dilation=a.get("dilations", 1), groups=a.get("group", 1))
        if op == "HardSwish":
            return F.hardswish(args[0])
        if op == "Relu":
            return F.relu(args[0])
        if op == "Sigmoid":
            return torch.sigmoid(args[0])
        if op == "Add":
            return args[0] + args[1]
        if op == "Mul":
            return args[0] * args[1]
        if op in ("ReduceMean", "ReduceMax"):
            axes = [int(v) for v in args[1]] if len(args) > 1 else a["axes"]
            keep = bool(a.get("keepdims", 1))
            if op == "ReduceMean":
                return args[0].mean(dim=axes, keepdim=keep)
            out = args[0]
            for ax in sorted((ax % out.dim() for ax in axes), reverse=True):
                out = out.amax(dim=ax, keepdim=keep)
            return out
        if op == "Squeeze":
            if len(args) < 2:
                return args[0].squeeze()
            out = args[0]
            for ax in sorted((int(v) % out.dim() for v in args[1]), reverse=True):
                out = out.squeeze(ax)
            return out
        if op == "Unsqueeze":
            out = args[0]
            for ax in sorted(int(v) for v in args[1]):
                out = out.unsqueeze(ax)
            return out
        if op == "Concat":
            if all(isinstance(v, np.ndarray) for v in args):
                return np.concatenate(args, axis=a["axis"])
            return torch.cat(args, dim=a["axis"])
        if op == "Reshape":
            return args[0].reshape([int(v) for v in args[1]])
        if op == "Gemm":
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                raise NotImplementedError("Gemm other than x @ W.T + b")
            w = args[1].T if a.get("transB", 0) else args[1]
            return args[0] @ w + args[2]
        raise NotImplementedError(f"ONNX operator {op}")

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``spec [n, 1, 128, frames]`` -> ``(logits [n, 527], features [n, 384])``."""
        logits, features = self.run(SPEC, spec, (LOGITS, FEATURES))
        return logits, features

    def write_onnx(self, model: Any) -> Any:
        """A copy of the encoder graph ``model`` holding this module's current weights."""
        import copy

        from onnx import numpy_helper

        out = copy.deepcopy(model)
        for i, init in enumerate(out.graph.initializer):
            if init.name in self.names:
                value = self.weight(init.name).detach().cpu().numpy().astype(np.float32)
                out.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, init.name))
        return out
