"""Writing ONNX files: the seed CNN's export, and the one save every exporter goes through.

:func:`save_onnx` checks a graph, stores the model file's metadata (written by
:func:`music2emotion.modelfile.metadata`, the one schema) and saves atomically; the CNN
export here, the fusion export (:func:`music2emotion.training.recipe.export_fusion`) and
the musicnn taggers' export (:func:`music2emotion.training.musicnn.export_encoder`) all
save through it, at the opsets of :data:`OPSETS`. The CNN's graph takes ``input``
``[batch, 1, n_mels, frames]`` (batch and time axes are dynamic) and returns ``output``
``[batch, 2]``. Requires torch and onnx (the ``train`` extra).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from ..config import FeatureSettings
from ..modelfile import CNN, LOG_MEL_INPUT, METADATA_KEY, OUTPUT, metadata
from .cnn import build_model

# The opsets every exported graph uses: the default domain, and scikit-learn's converters'.
OPSETS = {"": 17, "ai.onnx.ml": 3}
OPSET = OPSETS[""]


def save_onnx(proto: onnx.ModelProto, out: str | os.PathLike[str], meta: str | None = None) -> Path:
    """Check ``proto``, store ``meta`` under the model file's metadata key, save atomically.

    Parameters
    ----------
    proto : onnx.ModelProto
        The graph to save.
    out : str or os.PathLike
        The file to write (its folder is created); a killed run never leaves half of it.
    meta : str, optional
        Metadata text from :func:`music2emotion.modelfile.metadata`; ``None`` for a graph
        that is not a model by itself (a tagger that goes inside one).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    del proto.metadata_props[:]
    if meta is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, meta
    onnx.checker.check_model(proto)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    os.replace(tmp, out)
    return out


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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".export.tmp")
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo, which needs a traced
        # shape range; this small static graph exports identically either way
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=[LOG_MEL_INPUT],
            output_names=[OUTPUT],
            dynamic_axes={LOG_MEL_INPUT: {0: "batch", 3: "frames"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    tmp.unlink()
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
