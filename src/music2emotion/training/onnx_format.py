"""The ONNX format every model file is written in, and the onnxruntime releases that read it.

Every exporter (the seed CNN, the musicnn encoders, the fusion and descriptors models) saves
through :func:`save_onnx`, so a file is stamped with :data:`IR_VERSION` and :data:`OPSETS`
whatever onnx, torch or skl2onnx release wrote it, and carries the model file's metadata
(:func:`music2emotion.modelfile.metadata`). Those libraries otherwise stamp their own
newest IR version: onnx 1.23 writes IR 14, which onnxruntime 1.23.2 (the newest release for
Python 3.10) refuses with "max supported IR version: 11" although every operator in our graphs
is from opset 17. The oldest onnxruntime the package declares (``pyproject.toml``) must read
these files; ``tests/test_onnx_format.py`` holds the two together through :data:`RUNTIME_READS`.

Training side only: needs the ``onnx`` package (``train`` or ``ml`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnx
from onnx import numpy_helper

from ..modelfile import METADATA_KEY

# The opsets of onnx 1.12, which introduced opset 17 and ai.onnx.ml 3 and defined IR version 8
# for them (onnx.helper.VERSION_TABLE): every operator our graphs use is there, and any
# onnxruntime since 1.12 reads the result.
OPSETS = {"": 17, "ai.onnx.ml": 3}
IR_VERSION = 8

# What an onnxruntime release reads: (max IR version, max ai.onnx opset, max ai.onnx.ml opset).
# Probed on the releases' own wheels: the IR version from loading a model stamped IR 99
# ("max supported IR version: N"), the opsets as the newest since_version among the operator
# schemas onnxruntime registers per domain.
RUNTIME_READS = {
    "1.17": (9, 20, 4),
    "1.20": (10, 21, 5),
    "1.21": (10, 22, 5),
    "1.23": (11, 23, 5),
}


def share_identical_initializers(graph: Any) -> int:
    """Keep one copy of each constant tensor that ``graph`` holds several times.

    A model fitted per axis holds each axis's copy of the same scaler and PCA (fitted on the
    same songs, whatever they weigh): 213 kB of the accurate model's 5.5 MB. Graphs with
    subgraphs (control flow) are left as they are.

    Returns
    -------
    int
        How many initializers were dropped.
    """
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node for a in n.attribute):
        return 0
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    keep = []
    for init in graph.initializer:
        key = (init.data_type, tuple(init.dims), numpy_helper.to_array(init).tobytes())
        if key in first:
            alias[init.name] = first[key]
        else:
            first[key] = init.name
            keep.append(init)
    if not alias:
        return 0
    del graph.initializer[:]
    graph.initializer.extend(keep)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    return len(alias)


def save_onnx(proto: Any, out: str | os.PathLike[str], meta: str | None = None) -> Path:
    """Stamp ``proto`` with :data:`IR_VERSION` and its metadata, check it, write it atomically.

    Parameters
    ----------
    proto : onnx.ModelProto
        A graph whose opset imports are within :data:`OPSETS`.
    out : str or os.PathLike
        The file to write (its folder is created); a killed run never leaves half of it.
    meta : str, optional
        Metadata text from :func:`music2emotion.modelfile.metadata`, stored under
        :data:`~music2emotion.modelfile.METADATA_KEY` in place of any there; ``None`` keeps
        what the proto holds (a tagger that goes inside a model holds none).

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        An opset newer than :data:`OPSETS`.
    """
    newer = [f"{op.domain or 'ai.onnx'} {op.version}" for op in proto.opset_import
             if op.version > OPSETS.get(op.domain, 0)]
    if newer:
        raise ValueError(f"model imports opsets newer than the package writes: {', '.join(newer)}")
    share_identical_initializers(proto.graph)
    proto.ir_version = IR_VERSION
    if meta is not None:
        del proto.metadata_props[:]
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, meta
    onnx.checker.check_model(proto)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    os.replace(tmp, out)
    return out


# Operators whose ``axes`` moved from an attribute to an input in opset 18, with the attribute
# added beside it there (only the value 0, the old behaviour, can be expressed before 18).
_AXES_AS_INPUT_SINCE_18 = ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL2")


def to_project_opset(model: Any) -> Any:
    """An opset-18 graph rewritten for :data:`OPSETS`' opset 17, so it can join our graphs.

    ``onnx.version_converter`` leaves opset 18's ``noop_with_empty_axes`` on the reductions,
    which opset 17's checker refuses; the only change those operators need is their constant
    ``axes`` input back as an attribute. Anything else newer than opset 17 is refused.
    """
    from onnx import helper

    version = {o.domain: o.version for o in model.opset_import}.get("", 0)
    if version <= OPSETS[""]:
        return model
    if version != 18:
        raise ValueError(f"cannot rewrite an opset-{version} graph for opset {OPSETS['']}")
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in _AXES_AS_INPUT_SINCE_18:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.pop("noop_with_empty_axes", 0):
            raise ValueError(f"{node.name}: noop_with_empty_axes=1 has no opset-17 form")
        if len(node.input) > 1:
            if node.input[1] not in inits:
                raise ValueError(f"{node.name}: axes are not a constant")
            attrs["axes"] = [int(a) for a in inits[node.input[1]].ravel()]
            del node.input[1]
        del node.attribute[:]
        node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid("", OPSETS[""])])
    used = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
