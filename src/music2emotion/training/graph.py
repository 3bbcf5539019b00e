"""A trained model as one ONNX graph: its ears, the feature row they make, and its heads.

Training side (needs ``onnx``; scikit-learn's ``skl2onnx`` for the regressors).

A model of the ``mel`` and ``mel-patches`` kinds is one graph from the window's inputs
(:func:`music2emotion.frontends.window_inputs`) to its outputs:

1. the **ears**: the pretrained AudioSet encoder on the ``mel`` input (its embedding and
   AudioSet logits, also returned as :data:`~music2emotion.modelfile.ENCODER_OUTPUT`), the
   mean and spread of the mel bands it hears, and for ``mel-patches`` the pretrained
   musicnn MSD tagger on the ``patches`` input (its pooled features, penultimate layer and
   tags, averaged over the window's patches);
2. the **feature row** :data:`FEATURES` ``[n, F]``: all of that side by side, laid out as
   the model's :class:`Layout` says, the encoder's output first;
3. the **heads**, which read columns of that row: the one answer
   (:class:`~music2emotion.training.answer.Answer`) or a regressor as
   :data:`~music2emotion.modelfile.OUTPUT`, and where a model carries a ratings convention
   beside the one answer, regressors as :data:`~music2emotion.modelfile.DEAM_OUTPUT`.

Training runs the first two steps, :func:`feature_graph`, on every window with ONNX Runtime,
so the rows the heads are fitted on are what the shipped graph computes, node for node.

The ears ship inside the bundled models, so training takes them from there
(:func:`ears_from_model`): nothing beside the package is needed, except musicnn's wheel the
first time a ``mel-patches`` model is built (:func:`musicnn_ear`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TARGETS, FeatureSettings
from ..frontends import MUSICNN_MELS, PATCH_FRAMES, PATCHES, heard_bands
from ..modelfile import (
    ENCODER_INPUT,
    ENCODER_OUTPUT,
    INPUTS,
    MEL,
    MEL_PATCHES,
    OUTPUT,
    PATCHES_INPUT,
    metadata,
)
from ..music import AUDIOSET_CLASSES, EMBEDDING_WIDTH, ENCODER_WIDTH
from .onnx_format import OPSETS, save_onnx

# The tensor every head reads: one row of features per window.
FEATURES = "features"
# The musicnn ear's output inside a graph: its features averaged over the window's patches.
MUSICNN_OUTPUT = "musicnn"

# musicnn's MSD tagger: the max- and mean-pooled mid-end features (2 x 753), the penultimate
# dense layer and the 50 Last.fm tags (happy, sad, mellow, chill, party, beautiful...).
N_MUSICNN_POOLED, N_MUSICNN_PENULTIMATE, N_MUSICNN_TAGS = 2 * 753, 200, 50

AUDIOSET_SOURCE = ("EfficientAT mn04_as (Schmid, Koutini & Widmer, ICASSP 2023), AudioSet-trained weights "
                   "released with https://github.com/fschmid56/EfficientAT under the MIT licence, "
                   "copyright 2022 Florian Schmid; exported to ONNX unchanged")
MUSICNN_SOURCE = ("musicnn 0.1.0 on PyPI, its MSD_musicnn model (Pons & Serra, 2019; Music Technology Group, "
                  "Universitat Pompeu Fabra; ISC licence), trained on the Million Song Dataset's 50 most "
                  "frequent Last.fm tags; ported from its TensorFlow checkpoint, weights stored as float16")


@dataclass(frozen=True)
class Layout:
    """The blocks of a feature row, in order, by name and width."""

    blocks: tuple[tuple[str, int], ...]

    @property
    def width(self) -> int:
        return sum(w for _, w in self.blocks)

    def columns(self, *names: str) -> np.ndarray:
        """The column numbers of the named blocks, in the order named.

        Raises
        ------
        KeyError
            A block this layout lacks.
        """
        ends = np.cumsum([0] + [w for _, w in self.blocks])
        spans = {name: (ends[i], ends[i + 1]) for i, (name, _) in enumerate(self.blocks)}
        missing = [n for n in names if n not in spans]
        if missing:
            raise KeyError(f"no block {', '.join(missing)} in a row of {', '.join(spans)}")
        return np.concatenate([np.arange(*spans[n]) for n in names]).astype(np.int64)


def layout(kind: str, settings: FeatureSettings) -> Layout:
    """The feature row of a model of ``kind`` with ``settings``."""
    if kind not in (MEL, MEL_PATCHES):
        raise ValueError(f"no feature row for a {kind!r} model")
    blocks = [("embedding", EMBEDDING_WIDTH), ("logits", AUDIOSET_CLASSES),
              ("melstats", 2 * heard_bands(settings.encoder))]
    if kind == MEL_PATCHES:
        blocks += [("msd_pooled", N_MUSICNN_POOLED), ("msd_penultimate", N_MUSICNN_PENULTIMATE),
                   ("msd_tags", N_MUSICNN_TAGS)]
    return Layout(tuple(blocks))


# ---------------------------------------------------------------- ears


def _opset_model(nodes: list[Any], inits: list[Any], inputs: list[Any], outputs: list[Any], name: str) -> Any:
    from onnx import helper

    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()])


def ears_from_model(path: str | os.PathLike[str], output: str) -> Any:
    """The part of a model file's graph that computes ``output`` (:data:`ENCODER_OUTPUT`
    from the ``mel`` input, or :data:`MUSICNN_OUTPUT` from the ``patches`` input), as a graph
    of its own: the ears a model carries, for training the next one.

    Raises
    ------
    ValueError
        The file's graph has no such tensor.
    """
    import onnx
    from onnx import TensorProto, helper
    from onnx.utils import Extractor

    proto = onnx.load(str(path))
    source = {ENCODER_OUTPUT: ENCODER_INPUT, MUSICNN_OUTPUT: PATCHES_INPUT}[output]
    made = {o for n in proto.graph.node for o in n.output}
    if output not in made or source not in {i.name for i in proto.graph.input}:
        raise ValueError(f"{path}: its graph computes no {output!r} from {source!r}")
    known = {v.name for v in (*proto.graph.value_info, *proto.graph.output)}
    if output not in known:  # an inner tensor: the extractor wants its type, which is all we know
        proto.graph.value_info.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, None))
    return Extractor(proto).extract_model([source], [output])


def audioset_ear(encoder: str | os.PathLike[str] | Any) -> Any:
    """The AudioSet encoder as an ear: ``mel [n, 1, 128, frames]`` -> :data:`ENCODER_OUTPUT`
    ``[n, 384 + 527]``, from EfficientAT's own ONNX file (input ``spec``, outputs
    ``features`` and ``logits``) or an already loaded graph of it (a fine-tuned one)."""
    import copy

    import onnx
    from onnx import TensorProto, helper

    from .onnx_format import to_project_opset

    enc = onnx.load(str(encoder)) if isinstance(encoder, (str, os.PathLike)) else copy.deepcopy(encoder)
    names = ([i.name for i in enc.graph.input], sorted(o.name for o in enc.graph.output))
    if names != (["spec"], ["features", "logits"]):
        raise ValueError(f"{encoder}: not the EfficientAT encoder (inputs/outputs {names})")
    enc = to_project_opset(enc)
    renamed = {"spec": ENCODER_INPUT, "features": "enc_features", "logits": "enc_logits"}
    for node in enc.graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        node.output[:] = [renamed.get(n, n) for n in node.output]
    nodes = [*enc.graph.node, helper.make_node("Concat", ["enc_features", "enc_logits"], [ENCODER_OUTPUT], axis=1)]
    return _opset_model(
        nodes, list(enc.graph.initializer),
        [helper.make_tensor_value_info(ENCODER_INPUT, TensorProto.FLOAT, ["n", 1, 128, "frames"])],
        [helper.make_tensor_value_info(ENCODER_OUTPUT, TensorProto.FLOAT,
                                       ["n", ENCODER_WIDTH])], "audioset_ear")


def musicnn_ear(wheel: str | os.PathLike[str]) -> Any:
    """musicnn's MSD tagger as an ear, from its wheel (``pip download musicnn==0.1.0
    --no-deps``): ``patches [n, P, 187, 96]`` -> :data:`MUSICNN_OUTPUT` ``[n, 1506 + 200 +
    50]``, each patch's pooled features, penultimate layer and tags, averaged over the
    window's patches. Needs torch (the ``train`` extra), to port the checkpoint."""
    from onnx import TensorProto, helper

    from .musicnn import MSD_MODEL, load_musicnn, musicnn_graph, read_wheel_checkpoint

    net = musicnn_graph(load_musicnn(read_wheel_checkpoint(wheel, MSD_MODEL)), PATCH_FRAMES, MUSICNN_MELS)
    renamed = {"patches": "msd_patches", "pooled": "msd_pooled", "embedding": "msd_embedding", "tags": "msd_tags"}
    for node in net.graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        node.output[:] = [renamed.get(n, n) for n in node.output]
    width = N_MUSICNN_POOLED + N_MUSICNN_PENULTIMATE + N_MUSICNN_TAGS
    inits = [*net.graph.initializer,
             helper.make_tensor("msd_flat_shape", TensorProto.INT64, [3], [-1, PATCH_FRAMES, MUSICNN_MELS]),
             helper.make_tensor("msd_window_shape", TensorProto.INT64, [3], [-1, PATCHES, width])]
    nodes = [helper.make_node("Reshape", [PATCHES_INPUT, "msd_flat_shape"], ["msd_patches"]),
             *net.graph.node,
             helper.make_node("Concat", ["msd_pooled", "msd_embedding", "msd_tags"], ["msd_patch_rows"], axis=1),
             helper.make_node("Reshape", ["msd_patch_rows", "msd_window_shape"], ["msd_window_patches"]),
             helper.make_node("ReduceMean", ["msd_window_patches"], [MUSICNN_OUTPUT], axes=[1], keepdims=0)]
    return _opset_model(
        nodes, inits,
        [helper.make_tensor_value_info(PATCHES_INPUT, TensorProto.FLOAT, ["n", PATCHES, PATCH_FRAMES, MUSICNN_MELS])],
        [helper.make_tensor_value_info(MUSICNN_OUTPUT, TensorProto.FLOAT, ["n", width])], "musicnn_ear")


def _mel_statistics_nodes(bands: int) -> tuple[list[Any], list[Any]]:
    """The heard bands' mean and standard deviation over the window's frames, ``mel_mean``
    and ``mel_std`` ``[n, bands]`` (as :func:`~music2emotion.training.clips.mel_statistics`):
    the level and spread of the mel bands, the cheapest of the 0.3 descriptors' groups."""
    from onnx import TensorProto, helper

    inits = [helper.make_tensor("mel_rows", TensorProto.INT64, [2], [-1, bands]),
             helper.make_tensor("mel_band_start", TensorProto.INT64, [1], [0]),
             helper.make_tensor("mel_band_end", TensorProto.INT64, [1], [bands]),
             helper.make_tensor("mel_band_axis", TensorProto.INT64, [1], [2])]
    nodes = [helper.make_node("Slice", [ENCODER_INPUT, "mel_band_start", "mel_band_end", "mel_band_axis"],
                              ["mel_heard"]),
             helper.make_node("ReduceMean", ["mel_heard"], ["mel_mean4"], axes=[3], keepdims=1),
             helper.make_node("Sub", ["mel_heard", "mel_mean4"], ["mel_centred"]),
             helper.make_node("Mul", ["mel_centred", "mel_centred"], ["mel_square"]),
             helper.make_node("ReduceMean", ["mel_square"], ["mel_var4"], axes=[3], keepdims=1),
             helper.make_node("Sqrt", ["mel_var4"], ["mel_std4"]),
             helper.make_node("Reshape", ["mel_mean4", "mel_rows"], ["mel_mean"]),
             helper.make_node("Reshape", ["mel_std4", "mel_rows"], ["mel_std"])]
    return nodes, inits


def feature_graph(kind: str, settings: FeatureSettings, ears: Sequence[Any]) -> tuple[Any, Layout]:
    """The graph from a window's inputs to its feature row :data:`FEATURES` (and
    :data:`ENCODER_OUTPUT`), and the row's :class:`Layout`.

    Parameters
    ----------
    kind : str
        ``mel`` or ``mel-patches`` (:mod:`music2emotion.modelfile`).
    settings : FeatureSettings
        The model's settings (the encoder's front end says which mel bands it hears).
    ears : sequence of onnx.ModelProto
        :func:`audioset_ear` (or :func:`ears_from_model` of :data:`ENCODER_OUTPUT`), and for
        ``mel-patches`` the musicnn ear after it.

    Returns
    -------
    onnx.ModelProto, Layout
    """
    from onnx import TensorProto, helper

    rows = layout(kind, settings)
    expected = [ENCODER_OUTPUT] + ([MUSICNN_OUTPUT] if kind == MEL_PATCHES else [])
    got = [e.graph.output[0].name for e in ears]
    if got != expected:
        raise ValueError(f"a {kind} model's ears give {', '.join(expected)}, not {', '.join(got)}")
    nodes: list[Any] = []
    inits: list[Any] = []
    for ear in ears:
        nodes += ear.graph.node
        inits += ear.graph.initializer
    stat_nodes, stat_inits = _mel_statistics_nodes(heard_bands(settings.encoder))
    nodes += [*stat_nodes, helper.make_node("Concat", [ENCODER_OUTPUT, "mel_mean", "mel_std", *expected[1:]],
                                            [FEATURES], axis=1)]
    inputs = {ENCODER_INPUT: ["n", 1, settings.encoder.n_mels, "frames"],
              PATCHES_INPUT: ["n", PATCHES, PATCH_FRAMES, MUSICNN_MELS]}
    model = _opset_model(
        nodes, inits + stat_inits,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, inputs[name]) for name in INPUTS[kind]],
        [helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["n", rows.width]),
         helper.make_tensor_value_info(ENCODER_OUTPUT, TensorProto.FLOAT,
                                       ["n", ENCODER_WIDTH])],
        "music2emotion_features")
    return model, rows


# ---------------------------------------------------------------- heads


def _members(fitted: Any) -> list[list[Any]]:
    """The convertible estimators whose mean is the prediction: per member, one
    single-output estimator per axis (valence, arousal)."""
    from . import evaluate as ev
    from . import regressors as rg

    if isinstance(fitted, ev.ColumnSubset):
        raise ValueError("export the regressor itself; the graph feeds it every feature column")
    members = [est for _, est in fitted.fitted_] if isinstance(fitted, rg.Average) else [fitted]
    if isinstance(fitted, rg.Average) and fitted.weights is not None:
        raise ValueError("weighted averages are not exported")
    if not all(isinstance(m, rg.PerAxis) for m in members):
        raise ValueError("every member must be a regressors.PerAxis")
    return [m.estimators_ for m in members]


@contextmanager
def _tree_attributes_as_ints() -> Iterator[None]:
    """skl2onnx 1.20 writes a HistGradientBoosting leaf's missing-value flag as a Python
    bool into an ONNX integer attribute, which onnx refuses ("Expected an int, got a
    boolean"); hand it an int instead while converting. The flag itself never matters here:
    no feature is ever NaN."""
    import skl2onnx.common.tree_ensemble as trees

    original = trees.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = False, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    trees.add_node = add_node
    try:
        yield
    finally:
        trees.add_node = original


def regressor_nodes(fitted: Any, n_feat: int, features: str = "features",
                    output: str = OUTPUT, prefix: str = "") -> tuple[list[Any], list[Any]]:
    """The nodes and constants that turn ``features [n, n_feat]`` into ``output``: each
    member's per-axis estimators converted by skl2onnx, and their mean (``prefix`` keeps two
    regressors in one graph apart)."""
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    nodes: list[Any] = []
    inits: list[Any] = []
    member_outputs = []
    for i, axes in enumerate(_members(fitted)):
        axis_outputs = []
        for j, est in enumerate(axes):
            with _tree_attributes_as_ints():
                head = convert_sklearn(est, initial_types=[("features", FloatTensorType([None, n_feat]))],
                                       target_opset=OPSETS)
            head = onnx.compose.add_prefix(head, f"{prefix}m{i}a{j}_")
            for node in head.graph.node:
                node.input[:] = [features if n == f"{prefix}m{i}a{j}_features" else n for n in node.input]
            nodes += head.graph.node
            inits += head.graph.initializer
            axis_outputs.append(head.graph.output[0].name)
        nodes.append(helper.make_node("Concat", axis_outputs, [f"{prefix}m{i}_output"], axis=1))
        member_outputs.append(f"{prefix}m{i}_output")
    inits.append(helper.make_tensor(f"{prefix}inv_members", TensorProto.FLOAT, [], [1.0 / len(member_outputs)]))
    nodes += [helper.make_node("Sum", member_outputs, [f"{prefix}member_sum"]),
              helper.make_node("Mul", [f"{prefix}member_sum", f"{prefix}inv_members"], [output])]
    return nodes, inits


def column_nodes(features: str, columns: np.ndarray, n_features: int, output: str) -> tuple[list[Any], list[Any]]:
    """``output`` = the ``columns`` of ``features [n, n_features]`` (an Identity when they
    are all of them, in order)."""
    from onnx import TensorProto, helper

    columns = np.asarray(columns, np.int64)
    if np.array_equal(columns, np.arange(n_features)):
        return [helper.make_node("Identity", [features], [output])], []
    return ([helper.make_node("Gather", [features, f"{output}_columns"], [output], axis=1)],
            [helper.make_tensor(f"{output}_columns", TensorProto.INT64, [len(columns)], columns.tolist())])


def save_model(features: Any, heads: Sequence[tuple[list[Any], list[Any]]], outputs: Sequence[str],
               kind: str, settings: FeatureSettings, out: str | os.PathLike[str], **meta: Any) -> Path:
    """Write one model file: the feature graph, the heads' nodes reading :data:`FEATURES`,
    and ``outputs`` (each ``[n, 2]``) beside :data:`ENCODER_OUTPUT`, with the model file's
    metadata (``meta``, after the keys inference reads), atomically.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from onnx import TensorProto, helper

    nodes, inits = list(features.graph.node), list(features.graph.initializer)
    for head_nodes, head_inits in heads:
        nodes += head_nodes
        inits += head_inits
    graph_outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["n", len(TARGETS)]) for o in outputs]
    graph_outputs += [o for o in features.graph.output if o.name == ENCODER_OUTPUT]
    model = _opset_model(nodes, inits, list(features.graph.input), graph_outputs, f"music2emotion_{kind}")
    return save_onnx(model, out, metadata(kind, settings, **meta))

