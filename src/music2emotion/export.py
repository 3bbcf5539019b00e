"""Export a trained model to ONNX, with its feature settings inside the file.

The ONNX graph takes ``input`` ``[batch, 1, n_mels, frames]`` (batch and time axes are
dynamic) and returns ``output`` ``[batch, 2]``. The settings the model was trained with
travel in the file's metadata under ``music2emotion.settings``, so inference needs nothing
else. Requires torch and onnx (the ``train`` extra).
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from . import __version__
from .config import METADATA_KEY, TARGETS, FeatureSettings
from .model import build_model
from .onnx_format import OPSETS, save_onnx


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint (``best_emotion_model.pt``) onto the CPU."""
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[torch.nn.Module, FeatureSettings]:
    model = build_model(ckpt["arch"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, FeatureSettings.from_dict(ckpt["settings"])


def export_onnx(
    model: torch.nn.Module,
    settings: FeatureSettings,
    out: str | os.PathLike[str],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``out`` as ONNX and embed ``settings`` (and ``extra``) as metadata."""
    model = model.eval().cpu()
    dummy = torch.zeros(1, 1, settings.n_mels, settings.n_frames)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo, which needs a traced
        # shape range; this small static graph exports identically either way
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            buf,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch", 3: "frames"}, "output": {0: "batch"}},
            opset_version=OPSETS[""],
            dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    meta = {
        "settings": settings.to_dict(),
        "targets": list(TARGETS),
        "scale": "0-1 (DEAM rating r maps to (r - 1) / 8)",
        "music2emotion_version": __version__,
        **(extra or {}),
    }
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    return save_onnx(proto, out)


def export_checkpoint(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Export the model stored in a training checkpoint."""
    ckpt = load_checkpoint(checkpoint)
    model, settings = model_from_checkpoint(ckpt)
    info = {"arch": ckpt["arch"], "epoch": ckpt.get("best_epoch", ckpt.get("epoch"))}
    if ckpt.get("val_metrics"):
        info["validation"] = ckpt["val_metrics"]
    return export_onnx(model, settings, out, {**info, **(extra or {})})


def max_abs_difference(model: torch.nn.Module, onnx_path: str | os.PathLike[str], x: np.ndarray) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs on ``x``."""
    import onnxruntime as ort

    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    return float(np.abs(expected - got).max())
