"""The fusion model at inference: descriptors + a pretrained tagger's embedding -> valence/arousal.

No torch and no scikit-learn here: one ONNX file holds the whole model and ONNX Runtime runs
it. Each window of audio (10 s, cut as :func:`music2emotion.features.iter_windows` cuts the
CNN's windows) gives two inputs:

- ``descriptors`` ``[n, N_DESCRIPTORS]``: :func:`music2emotion.descriptors.describe`;
- ``patches`` ``[n, PATCHES, 187, 96]``: the window resampled to 16 kHz as musicnn's
  ``log10(1 + 10000 * mel)`` spectrogram, cut into :data:`PATCHES` evenly spaced 3 s patches
  (:func:`musicnn_patches`).

Inside the graph each pretrained musicnn tagger (see :mod:`music2emotion.musicnn`; the
metadata's ``encoders`` names them) turns each patch into 50 tag probabilities and a 200-unit
embedding; these are averaged over the window's patches and appended to the descriptors, and a
regressor fitted on DEAM (standardisation, then the average of scikit-learn regressors
converted with skl2onnx) gives ``output`` ``[n, 2]`` = valence, arousal on the 0-1 scale. As
with the CNN, a file's result is the mean over its windows.

The file's ``music2emotion.settings`` metadata has ``"kind": "fusion"``;
:func:`is_fusion_model` tells the two kinds of model apart without loading either.
"""

from __future__ import annotations

import json
import os

import librosa
import numpy as np
import onnxruntime as ort
import soxr

from .config import METADATA_KEY, FeatureSettings
from .descriptors import DESCRIPTOR_WINDOW_SECONDS, describe
from .inference import EmotionModel

KIND = "fusion"
# the same recipe without the taggers: a regressor on the descriptors alone (``patches`` is
# neither computed nor fed), the fast bundled model
DESCRIPTORS_KIND = "descriptors"
# musicnn's input, fixed by its training (Pons & Serra 2019): 16 kHz, 512-point FFT, hop 256,
# 96 mel bands, log10(1 + 10000 x), 187-frame (3 s) patches.
MUSICNN_SR = 16_000
MUSICNN_N_FFT = 512
MUSICNN_HOP = 256
MUSICNN_MELS = 96
PATCH_FRAMES = 187
# 3 patches cover a 10 s window (625 frames) with a little overlap
PATCHES = 3


def musicnn_patches(y: np.ndarray, sr: int, patches: int = PATCHES) -> np.ndarray:
    """``[patches, 187, 96]`` musicnn inputs evenly spread over mono audio ``y`` at ``sr``."""
    y16 = soxr.resample(np.asarray(y, np.float32), sr, MUSICNN_SR) if sr != MUSICNN_SR else y
    mel = librosa.feature.melspectrogram(
        y=np.asarray(y16, np.float32), sr=MUSICNN_SR, n_fft=MUSICNN_N_FFT,
        hop_length=MUSICNN_HOP, n_mels=MUSICNN_MELS,
    ).T
    mel = np.log10(10000.0 * mel + 1.0).astype(np.float32)
    if len(mel) < PATCH_FRAMES:
        mel = np.pad(mel, ((0, PATCH_FRAMES - len(mel)), (0, 0)))
    starts = np.linspace(0, len(mel) - PATCH_FRAMES, patches).round().astype(int)
    return np.stack([mel[s : s + PATCH_FRAMES] for s in starts])


def window_inputs(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Both model inputs for one window: descriptors ``[D]`` and patches ``[P, 187, 96]``."""
    return describe(y, sr), musicnn_patches(y, sr)


def is_fusion_model(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a fusion model (else, presumably, a CNN for :class:`EmotionModel`)."""
    opts = ort.SessionOptions()
    # only the metadata is read: skip graph optimisation, which is most of a session's start
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    return meta is not None and json.loads(meta).get("kind") == KIND


class FusionModel(EmotionModel):
    """:class:`~music2emotion.inference.EmotionModel` that insists on a fusion file; the
    streaming, batching and song rule are the CNN's, only the per-window inputs differ."""

    def __init__(self, path: str | os.PathLike[str], threads: int = 0):
        super().__init__(path, threads)
        if self.kind != KIND:
            raise ValueError(f"{self.path}: not a fusion model (kind {self.kind!r})")


def fusion_settings() -> FeatureSettings:
    """The windows a fusion model is trained and run on: DEAM's 10 s clips."""
    return FeatureSettings(window_seconds=DESCRIPTOR_WINDOW_SECONDS)
