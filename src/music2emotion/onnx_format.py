"""The ONNX format every model file is written in, and the onnxruntime releases that read it.

Every exporter (the seed CNN, the musicnn encoders, the fusion and descriptors models) saves
through :func:`save_onnx`, so a file is stamped with :data:`IR_VERSION` and :data:`OPSETS`
whatever onnx, torch or skl2onnx release wrote it. Those libraries otherwise stamp their own
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
    "1.23": (11, 23, 5),
}


def save_onnx(proto: Any, out: str | os.PathLike[str]) -> Path:
    """Stamp ``proto`` with :data:`IR_VERSION`, check it and write it to ``out`` atomically.

    Parameters: ``proto`` an ``onnx.ModelProto`` whose opset imports are within
    :data:`OPSETS`; ``out`` the file to write (its folder is created).
    Returns the path written. Raises ``ValueError`` for an opset newer than :data:`OPSETS`.
    """
    newer = [f"{op.domain or 'ai.onnx'} {op.version}" for op in proto.opset_import
             if op.version > OPSETS.get(op.domain, 0)]
    if newer:
        raise ValueError(f"model imports opsets newer than the package writes: {', '.join(newer)}")
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    os.replace(tmp, out)
    return out
