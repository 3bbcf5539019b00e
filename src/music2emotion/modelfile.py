"""The model file: what a music2emotion ONNX file holds, the bundled ones, and its metadata.

A model is one ONNX file. Its graph maps each window's inputs to ``output`` ``[n, 2]``
(valence, arousal on the 0-1 scale); which inputs depends on its **kind**:

- ``cnn`` (the seed CNN): ``input`` ``[n, 1, n_mels, frames]``, a log-mel window;
- ``descriptors`` (the fast model): ``descriptors`` ``[n, N_DESCRIPTORS]``;
- ``audioset`` (the accurate model): ``descriptors`` and ``mel`` ``[n, 1, 128, frames]``, the
  input of the pretrained AudioSet encoder inside the graph (EfficientAT ``mn04_as``, its
  front end in the settings' ``encoder``); the graph also returns ``encoder``, the encoder's
  embedding and AudioSet logits;
- ``fusion`` (the accurate model of 0.2): ``descriptors`` and ``patches`` ``[n, P, 187,
  96]``, the input of two pretrained musicnn taggers; its graph also returns ``taggers``,
  their tags and embeddings averaged over the window's patches;
- ``mel`` (the models of 0.4 on): ``mel`` alone, the AudioSet encoder's input; the encoder and
  every other feature (the mel bands' level and spread over the window) are computed inside
  the graph, which also returns ``encoder``;
- ``mel-patches`` (the large model): ``mel`` and ``patches`` ``[n, P, 187, 96]``, the inputs
  of the AudioSet encoder and of the pretrained musicnn MSD tagger inside the graph, which
  also returns ``encoder``.

Everything needed to run it travels inside the file, as JSON under the metadata key
:data:`METADATA_KEY`: the kind, the :class:`~music2emotion.config.FeatureSettings` it was
trained with, and what training said about it. :func:`metadata` is the one place that
schema is written (every exporter calls it) and :func:`read_metadata` the one place it is
read. This module imports no ONNX package; exporters store the text it makes.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._version import __version__
from .config import MOOD_CLASSES, SCALES, TARGETS, FeatureSettings

# The ONNX metadata_props entry that holds the JSON below.
METADATA_KEY = "music2emotion.settings"

# Model kinds, by what each window feeds the graph.
CNN, FUSION, DESCRIPTORS, AUDIOSET, MEL, MEL_PATCHES = "cnn", "fusion", "descriptors", "audioset", "mel", "mel-patches"
KINDS = (CNN, FUSION, DESCRIPTORS, AUDIOSET, MEL, MEL_PATCHES)
# The graphs' inputs and outputs, by name.
LOG_MEL_INPUT, DESCRIPTORS_INPUT, PATCHES_INPUT, ENCODER_INPUT = "input", "descriptors", "patches", "mel"
INPUTS = {CNN: (LOG_MEL_INPUT,), FUSION: (DESCRIPTORS_INPUT, PATCHES_INPUT), DESCRIPTORS: (DESCRIPTORS_INPUT,),
          AUDIOSET: (DESCRIPTORS_INPUT, ENCODER_INPUT), MEL: (ENCODER_INPUT,),
          MEL_PATCHES: (ENCODER_INPUT, PATCHES_INPUT)}
OUTPUT = "output"
TAGGERS = "taggers"  # a fusion graph's second output
ENCODER_OUTPUT = "encoder"  # an audioset, mel or mel-patches graph's embedding and AudioSet logits
# Optional, any kind: [n, 2] valence and arousal as DEAM's listener panel rates them (its
# convention, whose valence is half energy), beside OUTPUT's one answer.
DEAM_OUTPUT = "deam"
# Models of 0.3 only: [n, 4] quadrant probabilities per window from a head of their own.
MOODS_OUTPUT = "moods"


def output_width(name: str) -> int:
    """Values per window of a graph output a prediction reads: 4 probabilities for
    :data:`MOODS_OUTPUT`, else valence and arousal."""
    return len(MOOD_CLASSES) if name == MOODS_OUTPUT else len(TARGETS)


# Keys of the metadata JSON that inference reads; the rest (training figures) is for people.
KIND, SETTINGS, N_DESCRIPTORS_KEY = "kind", "settings", "n_descriptors"
SCALE_NOTE = "0-1 (DEAM rating r maps to (r - 1) / 8)"
# Optional: {"valence": hv, "arousal": ha, "coverage": 0.9, "method": "..."}, half-widths on
# the 0-1 scale; a value v has the interval [clip(v - hv, 0, 1), clip(v + hv, 0, 1)].
INTERVALS_KEY = "intervals"
# Optional (models from 0.4 on): how each output scale reads the graph, by scale name
# ("unit", the one answer; "deam", DEAM's convention):
#   {"output": graph output, "spread": {"valence": s, "arousal": s}, INTERVALS_KEY: {...}}
# "spread" is the scale of the logistic distribution centred on each predicted value: the
# probability that an axis lies on its high side is 1 / (1 + exp(-(x - 0.5) / s)), and the
# four quadrant probabilities are the distribution's mass in each quadrant
# (:func:`music2emotion.prediction.estimate`). Without this key a model's "unit" scale is
# OUTPUT with the top-level INTERVALS_KEY, and "deam" the same values mapped to 1-9.
CONVENTIONS_KEY = "conventions"
SPREAD_KEY = "spread"

# The models shipped inside the package, by the name ``--model`` accepts (README, "Models";
# MODEL_CARD.md), each made by ``music2emotion train --arch NAME``: the pretrained AudioSet
# encoder with a quadrant head, moods and intervals (the default), the same on half of each
# window, the AudioSet encoder beside musicnn's music-trained one, and the seed's CNN, which
# keeps the seed's [batch, 1, 64, frames] ONNX contract.
BUNDLED_MODELS = {
    "accurate": "emotion_model.onnx",
    "fast": "emotion_model_fast.onnx",
    "large": "emotion_model_large.onnx",
    "seed": "emotion_model_seed.onnx",
}
DEFAULT_MODEL = "accurate"


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """The file of a model shipped inside the package.

    Parameters
    ----------
    name : str
        One of :data:`BUNDLED_MODELS`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        No bundled model has that name.
    """
    if name not in BUNDLED_MODELS:
        raise ValueError(f"no bundled model {name!r}; choose from {', '.join(BUNDLED_MODELS)}")
    return Path(str(resources.files("music2emotion") / "models" / BUNDLED_MODELS[name]))


def resolve_model(model: str | os.PathLike[str] | None = None) -> Path:
    """The model file that ``model`` stands for.

    Parameters
    ----------
    model : str or os.PathLike, optional
        ``None`` for the default bundled model, a name in :data:`BUNDLED_MODELS` for a
        bundled one (unless a file of that name exists here), anything else a path.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        There is no such file.
    """
    if model is None:
        return bundled_model_path()
    path = Path(model)
    if not path.exists() and str(model) in BUNDLED_MODELS:
        return bundled_model_path(str(model))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found "
                                f"(or name a bundled model: {', '.join(BUNDLED_MODELS)})")
    return path


def model_name(path: str | os.PathLike[str]) -> str:
    """What a model file is called where a user reads it (the web page's footer).

    Parameters
    ----------
    path : str or os.PathLike
        A model file.

    Returns
    -------
    str
        The name ``--model`` takes for a bundled model (``accurate``), else the file's stem.
    """
    path = Path(path)
    for name in BUNDLED_MODELS:
        bundled = bundled_model_path(name)
        if path.name == bundled.name and path.resolve().parent == bundled.resolve().parent:
            return name
    return path.stem


def metadata(kind: str, settings: FeatureSettings, **fields: Any) -> str:
    """The metadata text an exporter stores under :data:`METADATA_KEY`.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    settings : FeatureSettings
        The settings the model was trained with.
    **fields
        What training knows about the model (``validation`` figures, ``encoders``, ...);
        they are kept as given, after the keys inference reads.

    Returns
    -------
    str
        JSON.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose from {', '.join(KINDS)}")
    meta: dict[str, Any] = {KIND: kind, SETTINGS: settings.to_dict(), "targets": list(TARGETS),
                            "scale": SCALE_NOTE, "music2emotion_version": __version__}
    if DESCRIPTORS_INPUT in INPUTS[kind]:
        from .descriptors import N_DESCRIPTORS

        meta[N_DESCRIPTORS_KEY] = N_DESCRIPTORS
    return json.dumps({**meta, **fields})


def read_metadata(text: str | None, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and check a model file's metadata.

    Parameters
    ----------
    text : str or None
        The value stored under :data:`METADATA_KEY` (``None`` when absent).
    path : str or os.PathLike
        The file, for messages.

    Returns
    -------
    dict
        The metadata, with ``kind`` always set (files older than kinds are CNNs).

    Raises
    ------
    ValueError
        Not a music2emotion model, a kind this version does not run, or descriptors this
        version does not compute.
    """
    if text is None:
        raise ValueError(f"{path}: not a music2emotion model (no {METADATA_KEY} metadata)")
    try:
        info = json.loads(text)
        FeatureSettings.from_dict(info[SETTINGS])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable {METADATA_KEY} metadata ({exc})") from exc
    info.setdefault(KIND, CNN)
    kind = info[KIND]
    if kind not in KINDS:
        raise ValueError(f"{path}: unknown model kind {kind!r}; upgrade music2emotion")
    if DESCRIPTORS_INPUT in INPUTS[kind]:
        from .descriptors import N_DESCRIPTORS

        if info.get(N_DESCRIPTORS_KEY) != N_DESCRIPTORS:
            raise ValueError(f"{path}: made for {info.get(N_DESCRIPTORS_KEY)} descriptors, "
                             f"this version computes {N_DESCRIPTORS}")
    read_intervals(info, path)
    read_conventions(info, path)
    return info


def read_intervals(info: dict[str, Any], path: str | os.PathLike[str] = "model"
                   ) -> tuple[float, float] | None:
    """The half-widths of a model's intervals, from its metadata.

    Parameters
    ----------
    info : dict
        The metadata (:func:`read_metadata`).
    path : str or os.PathLike
        The file, for messages.

    Returns
    -------
    tuple of float, or None
        ``(valence, arousal)`` half-widths on the 0-1 scale; ``None`` for a model without
        :data:`INTERVALS_KEY`.

    Raises
    ------
    ValueError
        The entry is there but does not hold two half-widths between 0 and 1.
    """
    entry = info.get(INTERVALS_KEY)
    if entry is None:
        return None
    return _pair(entry, f"{INTERVALS_KEY} half-widths", path, positive=False)


@dataclass(frozen=True)
class Convention:
    """How one output scale reads a model: which graph output holds its values, and what
    derives from them.

    Attributes
    ----------
    output : str
        The graph output, ``[n, 2]`` valence and arousal on the 0-1 scale.
    spread : tuple of float, or None
        ``(valence, arousal)`` scales of the logistic distribution centred on the values,
        whose mass in each quadrant gives the quadrant probabilities; ``None``: the model
        derives none (older models may have a head of their own, :data:`MOODS_OUTPUT`).
    intervals : tuple of float, or None
        ``(valence, arousal)`` half-widths of the values' intervals, 0-1 scale.
    """

    output: str = OUTPUT
    spread: tuple[float, float] | None = None
    intervals: tuple[float, float] | None = None


def _pair(entry: Any, what: str, path: str | os.PathLike[str], positive: bool) -> tuple[float, float]:
    """``(valence, arousal)`` from ``{"valence": x, "arousal": y}``, each in [0, 1] (above 0
    when ``positive``), or ``ValueError`` naming the file."""
    try:
        pair = tuple(float(entry[t]) for t in TARGETS)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable {what} metadata ({exc!r})") from None
    if not all((w > 0.0 if positive else w >= 0.0) and w <= 1.0 for w in pair):
        raise ValueError(f"{path}: {what} {pair} lie outside {'(0' if positive else '[0'}, 1]")
    return pair[0], pair[1]


def read_conventions(info: dict[str, Any], path: str | os.PathLike[str] = "model") -> dict[str, Convention]:
    """The output scales a model's metadata defines, by scale name (``"unit"`` always).

    Parameters
    ----------
    info : dict
        The metadata (:func:`read_metadata`).
    path : str or os.PathLike
        The file, for messages.

    Returns
    -------
    dict of str to Convention
        ``"unit"``, and ``"deam"`` where the model has DEAM's convention as an output of
        its own (else ``"deam"`` shows the unit values on 1-9, as models before 0.4 did).

    Raises
    ------
    ValueError
        The entry is there but malformed, names an unknown scale, or lacks ``"unit"``.
    """
    entry = info.get(CONVENTIONS_KEY)
    if entry is None:
        return {"unit": Convention(OUTPUT, None, read_intervals(info, path))}
    if not isinstance(entry, dict) or "unit" not in entry or not set(entry) <= set(SCALES):
        raise ValueError(f"{path}: {CONVENTIONS_KEY} metadata must map 'unit' (and optionally "
                         f"{', '.join(repr(s) for s in SCALES if s != 'unit')}) to a convention")
    out = {}
    for scale, conv in entry.items():
        if not isinstance(conv, dict) or not isinstance(conv.get("output"), str):
            raise ValueError(f"{path}: the {scale!r} convention names no graph output")
        spread = conv.get(SPREAD_KEY)
        out[scale] = Convention(
            conv["output"],
            None if spread is None else _pair(spread, f"{scale} {SPREAD_KEY}", path, positive=True),
            read_intervals(conv, path))
    return out
