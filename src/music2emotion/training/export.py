"""The seed CNN's export: a checkpoint to an ONNX model file.

The graph takes ``input`` ``[batch, 1, n_mels, frames]`` (batch and time axes are dynamic)
and returns ``output`` ``[batch, 2]``; it is saved, like every exported graph, through
:func:`music2emotion.training.onnx_format.save_onnx` with the metadata of
:func:`music2emotion.modelfile.metadata`. Requires torch and onnx (the ``train`` extra).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from ..config import FeatureSettings
from ..modelfile import CNN, LOG_MEL_INPUT, OUTPUT, metadata
from .cnn import build_model
from .onnx_format import OPSETS, save_onnx


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint (``best_emotion_model.pt``) onto the CPU."""
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[torch.nn.Module, FeatureSettings]:
    """The network of a checkpoint, in eval mode, and the settings it was trained with."""
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
    """Write a CNN to ``out`` as ONNX with ``settings`` (and ``extra``) in its metadata.

    Parameters
    ----------
    model : torch.nn.Module
        ``[batch, 1, n_mels, frames] -> [batch, 2]``.
    settings : FeatureSettings
        The settings it was trained with.
    out : str or os.PathLike
        The ONNX file to write.
    extra : dict, optional
        Training facts to keep in the metadata (``arch``, ``epoch``, ``validation``, ...).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
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
            input_names=[LOG_MEL_INPUT],
            output_names=[OUTPUT],
            dynamic_axes={LOG_MEL_INPUT: {0: "batch", 3: "frames"}, OUTPUT: {0: "batch"}},
            opset_version=OPSETS[""],
            dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    return save_onnx(proto, out, metadata(CNN, settings, **(extra or {})))


def export_checkpoint(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Export the model stored in a training checkpoint, with its best epoch and
    validation figures in the metadata."""
    ckpt = load_checkpoint(checkpoint)
    model, settings = model_from_checkpoint(ckpt)
    info: dict[str, Any] = {"arch": ckpt["arch"], "epoch": ckpt.get("best_epoch", ckpt.get("epoch"))}
    if ckpt.get("val_metrics"):
        info["validation"] = ckpt["val_metrics"]
    if ckpt.get("split"):
        info["validation_method"] = (f"the best epoch on a validation split of {len(ckpt['split']['val'])} "
                                     f"songs, trained on the other {len(ckpt['split']['train'])}")
    return export_onnx(model, settings, out, {**info, **(extra or {})})


def max_abs_difference(model: torch.nn.Module, onnx_path: str | os.PathLike[str], x: np.ndarray) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs on ``x``."""
    import onnxruntime as ort

    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT], {LOG_MEL_INPUT: x})[0]
    return float(np.abs(expected - got).max())
