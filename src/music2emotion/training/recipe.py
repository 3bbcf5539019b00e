"""The bundled models' recipe: the candidates, the CV table, the final fit, one ONNX file.

Training side only (scikit-learn, skl2onnx, onnx):

1. :func:`audioset_features` computes, for every clip, exactly what inference computes (the
   descriptors, and the pretrained AudioSet encoder's embedding and logits on its mel input,
   run by ONNX Runtime), each part cached in its own ``.npz``.
2. :func:`cv_table` cross-validates the baselines and every candidate on the same folds;
   :func:`cross_validation_report` writes the folds, the table and the out-of-fold
   predictions, for ``music2emotion evaluate`` and ``scripts/reproduce_model.py`` alike.
3. :func:`export_mel` writes a bundled model as one ONNX graph: mel -> the encoder and the
   mel statistics -> the one answer (:class:`~music2emotion.training.answer.Answer`) and
   DEAM's regressors; :func:`export_fusion` the descriptors-only models and the musicnn
   fusion models of 0.2 (whose taggers :func:`build_encoder` rebuilds from the ``musicnn``
   wheel).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TARGETS, EncoderSettings
from ..descriptors import DESCRIPTOR_NAMES, N_DESCRIPTORS
from ..frontends import MUSICNN_MELS, PATCH_FRAMES, PATCHES, heard_bands
from ..modelfile import (
    DESCRIPTORS,
    DESCRIPTORS_INPUT,
    FUSION,
    OUTPUT,
    PATCHES_INPUT,
    TAGGERS,
    metadata,
)
from . import evaluate as ev
from . import regressors as rg
from .clips import CLIP_SETTINGS, clip_encodings, describe_clips
from .quadrants import QuadrantLogistic, group_folds, load_quadrants, pseudo_ratings

MUSICNN_WHEEL = "musicnn-0.1.0-py3-none-any.whl"
# The pretrained taggers inside the fusion graph, in feature order: the Million Song Dataset
# one (Last.fm tags: happy, sad, mellow, party...) and the MagnaTagATune one (loud, quiet,
# soft, fast, slow, ambient...).
ENCODERS = ("MSD_musicnn", "MTT_musicnn")
N_TAGS, N_EMBEDDING = 50, 200


def embedding_names(encoder: str) -> tuple[str, ...]:
    return tuple(f"{encoder}_tag{i}" for i in range(N_TAGS)) + tuple(
        f"{encoder}_emb{i}" for i in range(N_EMBEDDING))


def feature_names(encoders: Sequence[str] = ENCODERS) -> tuple[str, ...]:
    """Columns of the regressor's input: descriptors, then each encoder's tags and embedding."""
    return DESCRIPTOR_NAMES + tuple(n for e in encoders for n in embedding_names(e))


def build_encoder(wheel: str | os.PathLike[str], out: str | os.PathLike[str], name: str = ENCODERS[0]) -> Path:
    """Export one of musicnn's taggers from the downloaded wheel to an ONNX file."""
    from .musicnn import export_encoder, load_musicnn, read_wheel_checkpoint

    return export_encoder(load_musicnn(read_wheel_checkpoint(wheel, name)), out, PATCH_FRAMES, MUSICNN_MELS)


# ---------------------------------------------------------------- candidates

# ---------------------------------------------------------------- the AudioSet encoder

# EfficientAT mn04_as (Schmid, Koutini & Widmer 2023): its pooled embedding and its AudioSet
# logits, in this order after the descriptors in an audioset model's feature columns.
N_AUDIOSET_EMBEDDING, N_AUDIOSET_LOGITS = 384, 527
# the mean and the standard deviation of each of the encoder input's mel bands that lie
# below its band limit (103 of 128: frontends.heard_bands)
N_MEL_STATISTICS = 2 * heard_bands(EncoderSettings())
AUDIOSET_SOURCE = ("EfficientAT mn04_as (Schmid, Koutini & Widmer, ICASSP 2023), AudioSet-trained weights "
                   "released with https://github.com/fschmid56/EfficientAT under the MIT licence, "
                   "copyright 2022 Florian Schmid; exported to ONNX unchanged")


def audioset_columns(*blocks: str) -> np.ndarray:
    """Columns of an audioset feature row: ``descriptors``, ``embedding``, ``logits`` (the
    encoder's), ``melstats`` (the mean of each of the encoder input's heard bands, then
    their standard deviations: :func:`~music2emotion.training.clips.mel_statistics`). A mel
    model's graph computes all but the descriptors, in this order."""
    ends = np.cumsum([0, N_DESCRIPTORS, N_AUDIOSET_EMBEDDING, N_AUDIOSET_LOGITS, N_MEL_STATISTICS])
    spans = dict(zip(("descriptors", "embedding", "logits", "melstats"), zip(ends[:-1], ends[1:])))
    return np.concatenate([np.arange(*spans[b]) for b in blocks])


# How much a quadrant-labelled song weighs beside a DEAM song, per axis (valence, arousal),
# and how far from neutral its pseudo-rating sits (0.5 ± margin). DEAM's valence ratings
# follow energy (r = 0.56 with arousal; a 4Q-trained valence classifier explains almost none
# of them), so every bit of quadrant valence a model learns costs some DEAM valence R²: these
# values cost 0.012 of it against a DEAM-only fit while 4Q valence AUC rises from 0.55 to
# 0.77; the next 0.03 of AUC costs another 0.011 (MODEL_CARD.md, "Valence beyond DEAM", has
# the frontier). Arousal agrees between the two datasets, so quadrant songs weigh more there.
QUADRANT_WEIGHT = (0.15, 0.5)
MARGIN = (0.2, 0.15)


@dataclass(frozen=True)
class Candidate:
    """One row of the CV table: feature columns, an unfitted regressor, and how it is fitted.

    ``quadrant_weight`` (per axis) is the weight of a quadrant-labelled song beside a DEAM
    song (0: DEAM's ratings alone), with pseudo-ratings ``0.5 ± margin``
    (:func:`~music2emotion.training.quadrants.pseudo_ratings`).
    """

    columns: np.ndarray
    make: Callable[[], Any]
    quadrant_weight: tuple[float, float] = (0.0, 0.0)
    margin: tuple[float, float] = MARGIN

    @property
    def uses_quadrants(self) -> bool:
        return max(self.quadrant_weight) > 0

    def regressor(self) -> ev.ColumnSubset:
        return ev.ColumnSubset(self.make(), self.columns)

    def fit(self, model: Any, x: np.ndarray, y: np.ndarray, xq: np.ndarray, quadrants: np.ndarray) -> Any:
        """Fit ``model`` on DEAM's ratings and, when this candidate uses them, on the
        quadrant songs' pseudo-ratings, weighted per axis."""
        if not self.uses_quadrants or not len(xq):
            return model.fit(x, y)
        xs = np.vstack([x, xq])
        ys = np.vstack([y, pseudo_ratings(quadrants, self.margin)])
        w = np.vstack([np.ones((len(x), 2)), np.tile(np.asarray(self.quadrant_weight, np.float64), (len(xq), 1))])
        return model.fit(xs, ys, sample_weight=w)


def _ensemble(n_features: int, *members: str) -> Callable[[], rg.Average]:
    makers = {"ridge": rg.ridge, "pca-svr": lambda: rg.pca_svr(n_features), "hgb": rg.hgb, "gbm": rg.gbm}
    return lambda: rg.Average([(m, makers[m]()) for m in members])


def candidates() -> dict[str, Candidate]:
    """Name -> :class:`Candidate`: every row of the CV table, on rows laid out as
    :func:`audioset_columns` says (the descriptor candidates read the first columns only)."""
    desc = audioset_columns("descriptors")
    both = audioset_columns("descriptors", "embedding")
    heard, embedding = audioset_columns("embedding", "melstats"), audioset_columns("embedding")
    table = {
        "descriptors: ridge+pca-svr+hgb on DEAM": Candidate(desc, _ensemble(len(desc), "ridge", "pca-svr", "hgb")),
        "descriptors: ridge+pca-svr+hgb on DEAM+quadrants": Candidate(
            desc, _ensemble(len(desc), "ridge", "pca-svr", "hgb"), QUADRANT_WEIGHT),
        "audioset: ridge+pca-svr on DEAM": Candidate(both, _ensemble(len(both), "ridge", "pca-svr")),
        "audioset: ridge+pca-svr+hgb on DEAM": Candidate(both, _ensemble(len(both), "ridge", "pca-svr", "hgb")),
        MEL_CANDIDATE: Candidate(heard, _ensemble(len(heard), "ridge", "pca-svr", "hgb")),
        MEL_FAST_CANDIDATE: Candidate(embedding, _ensemble(len(embedding), "ridge")),
    }
    for weight, margin in AUDIOSET_FRONTIER:
        table[audioset_candidate_name(weight, margin)] = Candidate(
            both, _ensemble(len(both), "ridge", "pca-svr", "hgb"), (weight, QUADRANT_WEIGHT[1]),
            (margin, MARGIN[1]))
    return table


def audioset_candidate_name(weight: float, margin: float) -> str:
    return f"audioset: ridge+pca-svr+hgb on DEAM+quadrants (valence {weight:g} at 0.5 ± {margin:g})"


# The quadrant songs' valence weight and margin along the frontier that the CV table walks:
# every step of 4Q valence AUC costs DEAM valence R² (MODEL_CARD.md, "Valence beyond DEAM").
# The 0.3 default was its last point; the table keeps it for comparison.
AUDIOSET_FRONTIER = ((0.5, 0.3),)
# DEAM's convention of the mel models: the encoder's embedding and the mel bands' level and
# spread, computed in the graph from the encoder's input, for the accurate one (DEAM R²
# 0.526 / 0.552 against 0.546 / 0.554 with the 320 descriptors, which were three quarters
# of a window's CPU; the embedding alone: 0.501 / 0.539); a ridge on the embedding for the
# fast one. Fitted on DEAM's ratings alone: the 4Q songs' pseudo-ratings only moved them
# towards a valence of their own, which the one answer now carries.
MEL_CANDIDATE = "mel: ridge+pca-svr+hgb on DEAM"
MEL_FAST_CANDIDATE = "mel embedding: ridge on DEAM"
# The one answer's quadrant head (training.answer.Answer) reads the encoder's embedding: on
# the artist-grouped 4Q folds, C = 0.005 gave 0.855 valence AUC, 0.767 tender vs sad and
# 0.702 quadrants right (with the 320 descriptors beside it 0.852, 0.767, 0.707; with the mel
# statistics 0.847, 0.753, 0.685; C 0.002-0.02 within 0.01).
ANSWER_C = 0.005
ANSWER_COLUMNS = audioset_columns("embedding")
SHIPPED = MEL_CANDIDATE
SHIPPED_FAST = MEL_FAST_CANDIDATE


def cv_table(
    x: np.ndarray,
    y: np.ndarray,
    ids: Sequence[int],
    folds: list[list[int]],
    names: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
    quadrants: ev.QuadrantData | None = None,
    jobs: int = 1,
) -> list[ev.CVResult]:
    """Cross-validate the baselines and the named candidates on ``folds``.

    Without ``quadrants`` only DEAM is used and candidates that learn from quadrant labels
    are left out (default: every candidate the data allows). ``jobs`` folds are fitted at once.
    """
    results = [ev.cross_validate(n, make, x, y, ids, folds, log, quadrants)
               for n, make in ev.baselines(DESCRIPTOR_NAMES).items()]
    if quadrants is not None:
        results.append(ev.cross_validate(
            "quadrants only: logistic on descriptors", lambda: QuadrantLogistic(audioset_columns("descriptors")),
            x, y, ids, folds, log, quadrants, fit=lambda m, x_, y_, xq, q: m.fit(x_, y_, xq, q),
            rates_deam=False))
    table = candidates()
    if names is None:
        names = [n for n, c in table.items()
                 if c.columns.max() < x.shape[1] and (quadrants is not None or not c.uses_quadrants)]
    for name in names:
        if name not in table:
            raise ValueError(f"unknown candidate {name!r}; choose from {', '.join(table)}")
        cand = table[name]
        if cand.columns.max() >= x.shape[1]:
            raise ValueError(f"candidate {name!r} needs the taggers' features (give the encoders)")
        results.append(ev.cross_validate(name, cand.regressor, x, y, ids, folds, log, quadrants, fit=cand.fit,
                                          jobs=jobs))
    return results


def cross_validation_report(
    x: np.ndarray,
    y: np.ndarray,
    ids: Sequence[int],
    folds: list[list[int]],
    seed: int,
    out: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    quadrants: ev.QuadrantData | None = None,
    extra_results: Sequence[ev.CVResult] = (),
    jobs: int = 1,
) -> list[ev.CVResult]:
    """Cross-validate the baselines and candidates on ``folds`` and write what a reader needs.

    Writes into ``out``: ``folds.json`` (the folds as song ids, with ``seed``, and the
    quadrant folds), ``cv_table.md`` (mean ± std over folds), ``cv.json`` (every metric of
    every fold), ``oof_predictions.csv`` (every candidate's out-of-fold predictions on DEAM),
    ``scatter_best.png`` (the best candidate's, out of fold) and, with ``quadrants``,
    ``oof_quadrants.csv`` and ``quadrants_<candidate>.png`` for each of ``names`` (default:
    the shipped candidates; the name in lower case, every run of other characters one hyphen).
    ``extra_results`` (e.g. an earlier model's fixed predictions) are listed first; ``jobs``
    folds are fitted at once.

    Returns
    -------
    list of CVResult
        ``extra_results``, the baselines, then the candidates in ``names`` order.
    """
    from .quadrants import quadrant_plot

    out = Path(out)
    ev.save_folds(out / "folds.json", folds, seed, quadrant_folds=quadrants.folds if quadrants else None)
    results = list(extra_results) + cv_table(x, y, ids, folds, names, log, quadrants, jobs)
    table = ev.format_table(results)
    log(table)
    (out / "cv_table.md").write_text(table + "\n")
    ev.write_json(out / "cv.json", {"folds": len(folds), "seed": seed, "songs": len(ids),
                                    "quadrant_songs": len(quadrants.ids) if quadrants else 0,
                                    "results": [r.summary() for r in results]})
    rated = [r for r in results if r.rates_deam]
    header = "song_id,valence_true,arousal_true," + ",".join(
        f"{r.name} {d}" for r in rated for d in TARGETS)
    lines = [header] + [
        f"{sid},{y[i, 0]:.4f},{y[i, 1]:.4f}," + ",".join(f"{v:.4f}" for r in rated for v in r.oof[i])
        for i, sid in enumerate(ids)]
    (out / "oof_predictions.csv").write_text("\n".join(lines) + "\n")
    best = max(rated, key=lambda r: sum(r.stat(d, "r2")[0] for d in TARGETS))
    ev.scatter_plot(y, best.oof, out / "scatter_best.png", f"{best.name} (out-of-fold)")
    if quadrants is not None:
        scored = [r for r in results if r.quadrant_oof is not None]
        header = "song_id,quadrant," + ",".join(f"{r.name} {d}" for r in scored for d in TARGETS)
        lines = [header] + [
            f"{sid},Q{quadrants.quadrants[i]}," + ",".join(f"{v:.4f}" for r in scored for v in r.quadrant_oof[i])
            for i, sid in enumerate(quadrants.ids)]
        (out / "oof_quadrants.csv").write_text("\n".join(lines) + "\n")
        plotted = names if names is not None else (SHIPPED, SHIPPED_FAST)
        for r in scored:
            if r.name in plotted:
                slug = re.sub(r"[^a-z0-9]+", "-", r.name.lower()).strip("-")
                quadrant_plot(quadrants.quadrants, r.quadrant_oof, out / f"quadrants_{slug}.png",
                              f"{r.name} (out-of-fold)")
    return results


def audioset_features(
    paths: Sequence[str | os.PathLike[str]],
    encoder: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 1,
) -> np.ndarray:
    """Rows laid out as :func:`audioset_columns` says: each clip's descriptors and, with the
    AudioSet ``encoder`` (its ONNX file, pretrained or fine-tuned), its embedding, logits and
    mel statistics; each part cached in ``cache_dir``."""
    from .clips import clip_mel_statistics

    cache = Path(cache_dir) if cache_dir else None
    parts = [describe_clips(paths, cache and cache / "descriptors.npz", jobs)]
    if encoder:
        parts.append(clip_encodings(paths, encoder, cache and cache / f"{Path(encoder).stem}.npz", jobs))
        parts.append(clip_mel_statistics(paths, cache and cache / "melstats.npz", jobs))
    return np.hstack(parts)


def with_encoder_heard_as(
    x: np.ndarray,
    paths: Sequence[str | os.PathLike[str]],
    encoder: str | os.PathLike[str],
    settings: Any,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 1,
) -> np.ndarray:
    """``x`` (rows of :func:`audioset_features`) with the encoder's columns recomputed for
    windows heard as ``settings`` say (the fast model's middle 5 s), cached beside the others."""
    cache = Path(cache_dir) if cache_dir else None
    seconds = settings.encoder.seconds
    name = f"{Path(encoder).stem}_middle{seconds:g}s.npz" if seconds else f"{Path(encoder).stem}.npz"
    out = np.array(x, copy=True)
    out[:, audioset_columns("embedding", "logits")] = clip_encodings(paths, encoder, cache and cache / name, jobs,
                                                                     settings=settings)
    return out


def load_quadrant_data(
    labels: str | os.PathLike[str],
    audio_dir: str | os.PathLike[str] | None,
    encoder: str | os.PathLike[str] | None,
    folds: int,
    seed: int,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> ev.QuadrantData:
    """Features, labels and artist-grouped folds of a quadrant-labelled set, for
    :func:`cv_table` (descriptors only without an ``encoder``)."""
    qs = load_quadrants(labels, audio_dir)
    log(qs.report())
    xq = audioset_features(qs.paths, encoder, cache_dir, jobs)
    return ev.QuadrantData(xq, qs.quadrants, qs.ids, group_folds(qs, folds, seed), qs.paths)


def run_cross_validation(
    audio_dir: str | os.PathLike[str],
    annotations: str | os.PathLike[str],
    out: str | os.PathLike[str],
    folds: int = 5,
    seed: int = 42,
    folds_file: str | os.PathLike[str] | None = None,
    encoder: str | os.PathLike[str] | None = None,
    names: Sequence[str] | None = None,
    jobs: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = print,
    quadrant_labels: str | os.PathLike[str] | None = None,
    quadrant_audio: str | os.PathLike[str] | None = None,
) -> list[ev.CVResult]:
    """``music2emotion evaluate`` without a model: k-fold CV of the baselines and candidates
    on a DEAM-layout folder and, with ``quadrant_labels``, a quadrant-labelled set beside it
    (see :func:`cross_validation_report` for what it writes).

    Without ``encoder`` (the EfficientAT ``mn04_as`` ONNX file) only descriptor-based
    candidates can run; ``names`` picks candidates (default: all that can run).
    ``folds_file`` reuses saved folds.
    """
    from .data import load_dataset

    data = load_dataset(audio_dir, annotations)
    log(data.report())
    saved_q = None
    if folds_file:
        fold_ids, saved_q = ev.load_folds(folds_file, with_quadrants=True)
    else:
        fold_ids = ev.kfold(data.ids, folds, seed)
    cache = Path(cache_dir) if cache_dir else None
    x = audioset_features(data.paths, encoder, cache and cache / "deam", jobs)
    quadrants = None
    if quadrant_labels:
        quadrants = load_quadrant_data(quadrant_labels, quadrant_audio, encoder, len(fold_ids), seed,
                                       cache and cache / "quadrants", jobs, log)
        if saved_q:
            quadrants.folds = saved_q
    return cross_validation_report(x, data.targets.astype(np.float64), data.ids, fold_ids, seed,
                                   out, names, log, quadrants, jobs=jobs)


# ---------------------------------------------------------------- export


def _members(fitted: Any) -> list[list[Any]]:
    """The convertible estimators whose mean is the prediction: per member, one
    single-output estimator per axis (valence, arousal)."""
    if isinstance(fitted, ev.ColumnSubset):
        raise ValueError("export the regressor itself; the graph feeds it every feature column")
    members = [est for _, est in fitted.fitted_] if isinstance(fitted, rg.Average) else [fitted]
    if isinstance(fitted, rg.Average) and fitted.weights is not None:
        raise ValueError("weighted averages are not exported")
    if not all(isinstance(m, rg.PerAxis) for m in members):
        raise ValueError("every member must be a regressors.PerAxis")
    return [m.estimators_ for m in members]


def _regressor_nodes(fitted: Any, n_feat: int, features: str = "features",
                     output: str = OUTPUT) -> tuple[list[Any], list[Any]]:
    """The nodes and constants that turn ``features [n, n_feat]`` into ``output``: each
    member's per-axis estimators converted by skl2onnx, and their mean."""
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from .onnx_format import OPSETS

    nodes: list[Any] = []
    inits: list[Any] = []
    member_outputs = []
    for i, axes in enumerate(_members(fitted)):
        axis_outputs = []
        for j, est in enumerate(axes):
            with _tree_attributes_as_ints():
                head = convert_sklearn(est, initial_types=[("features", FloatTensorType([None, n_feat]))],
                                       target_opset=OPSETS)
            head = onnx.compose.add_prefix(head, f"m{i}a{j}_")
            for node in head.graph.node:
                node.input[:] = [features if n == f"m{i}a{j}_features" else n for n in node.input]
            nodes += head.graph.node
            inits += head.graph.initializer
            axis_outputs.append(head.graph.output[0].name)
        nodes.append(helper.make_node("Concat", axis_outputs, [f"m{i}_output"], axis=1))
        member_outputs.append(f"m{i}_output")
    inits.append(helper.make_tensor("inv_members", TensorProto.FLOAT, [], [1.0 / len(member_outputs)]))
    nodes += [helper.make_node("Sum", member_outputs, ["member_sum"]),
              helper.make_node("Mul", ["member_sum", "inv_members"], [output])]
    return nodes, inits


@contextmanager
def _tree_attributes_as_ints() -> Iterator[None]:
    """skl2onnx 1.20 writes a HistGradientBoosting leaf's missing-value flag as a Python
    bool into an ONNX integer attribute, which onnx refuses ("Expected an int, got a
    boolean"); hand it an int instead while converting. The flag itself never matters here:
    descriptors and tagger outputs are never NaN."""
    import skl2onnx.common.tree_ensemble as trees

    original = trees.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = False, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    trees.add_node = add_node
    try:
        yield
    finally:
        trees.add_node = original


def export_fusion(
    fitted: Any,
    encoders: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    extra: dict[str, Any] | None = None,
) -> Path:
    """One ONNX graph: ``descriptors [n, D]``, ``patches [n, P, 187, 96]`` -> ``output [n, 2]``.

    ``fitted`` takes rows of :func:`feature_names` for these ``encoders`` (ONNX files from
    :func:`build_encoder`, in the same order); the graph also returns ``taggers``, the
    encoders' outputs averaged over each window's patches. With no encoders the graph is the
    regressor alone on ``descriptors`` (kind ``"descriptors"``: the fast bundled model).
    """
    import onnx
    from onnx import TensorProto, helper

    from .onnx_format import OPSETS, save_onnx

    n_feat = N_DESCRIPTORS + len(encoders) * (N_TAGS + N_EMBEDDING)
    inputs = [helper.make_tensor_value_info(DESCRIPTORS_INPUT, TensorProto.FLOAT, ["n", N_DESCRIPTORS])]
    nodes: list[Any] = []
    inits: list[Any] = []
    if not encoders:
        nodes.append(helper.make_node("Identity", [DESCRIPTORS_INPUT], ["features"]))
    else:
        inputs.append(helper.make_tensor_value_info(PATCHES_INPUT, TensorProto.FLOAT,
                                                    ["n", PATCHES, PATCH_FRAMES, MUSICNN_MELS]))
        nodes.append(helper.make_node("Reshape", [PATCHES_INPUT, "flat_shape"], ["flat_patches"]))
        inits += [
            helper.make_tensor("flat_shape", TensorProto.INT64, [3], [-1, PATCH_FRAMES, MUSICNN_MELS]),
            helper.make_tensor("window_shape", TensorProto.INT64, [3],
                               [-1, PATCHES, len(encoders) * (N_TAGS + N_EMBEDDING)]),
        ]
        enc_outputs: list[str] = []
        for i, path in enumerate(encoders):
            enc = onnx.compose.add_prefix(onnx.load(str(path)), f"enc{i}_")
            for node in enc.graph.node:
                node.input[:] = ["flat_patches" if n == f"enc{i}_patches" else n for n in node.input]
            nodes += enc.graph.node
            inits += enc.graph.initializer
            enc_outputs += [f"enc{i}_tags", f"enc{i}_embedding"]
        nodes += [
            helper.make_node("Concat", enc_outputs, ["patch_features"], axis=1),
            helper.make_node("Reshape", ["patch_features", "window_shape"], ["window_patches"]),
            helper.make_node("ReduceMean", ["window_patches"], ["window_embedding"], axes=[1], keepdims=0),
            helper.make_node("Concat", [DESCRIPTORS_INPUT, "window_embedding"], ["features"], axis=1),
        ]
    head_nodes, head_inits = _regressor_nodes(fitted, n_feat)
    nodes += head_nodes
    inits += head_inits
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", len(TARGETS)])]
    if encoders:
        # the taggers' tags and embeddings, averaged over the window's patches: free to return,
        # and what the golden tests pin besides the values
        nodes.append(helper.make_node("Identity", ["window_embedding"], [TAGGERS]))
        outputs.append(helper.make_tensor_value_info(
            TAGGERS, TensorProto.FLOAT, ["n", len(encoders) * (N_TAGS + N_EMBEDDING)]))
    graph = helper.make_graph(
        nodes, "music2emotion_fusion" if encoders else "music2emotion_descriptors", inputs,
        outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()])
    about = {"patches": PATCHES if encoders else 0, "encoders": [Path(e).stem for e in encoders]}
    if encoders:
        about["encoder_source"] = ("musicnn 0.1.0 on PyPI (Pons & Serra 2019; Music Technology "
                                   "Group, Universitat Pompeu Fabra; ISC licence)")
    return save_onnx(model, out, metadata(FUSION if encoders else DESCRIPTORS, CLIP_SETTINGS,
                                          **about, **(extra or {})))


def load_audioset_encoder(path: str | os.PathLike[str] | Any) -> Any:
    """The encoder's ONNX graph (input ``spec``, outputs ``logits``, ``features``) at the
    project's opsets, checked to be the graph these models are built for; ``path`` is its
    file or an already loaded graph (a fine-tuned one)."""
    import copy

    import onnx

    from .onnx_format import to_project_opset

    enc = onnx.load(str(path)) if isinstance(path, (str, os.PathLike)) else copy.deepcopy(path)
    names = ([i.name for i in enc.graph.input], sorted(o.name for o in enc.graph.output))
    if names != (["spec"], ["features", "logits"]):
        raise ValueError(f"{path}: not the EfficientAT encoder (inputs/outputs {names})")
    return to_project_opset(enc)


def _answer_nodes(features: str, n_features: int, answer: Any, deam: Any, deam_columns: np.ndarray,
                  ) -> tuple[list[Any], list[Any], list[Any]]:
    """Nodes, constants and outputs of a model's two scales on ``features [n, n_features]``:
    the one answer (``answer``, a :class:`~music2emotion.training.answer.Answer`) as
    :data:`OUTPUT`, DEAM's convention (``deam``, regressors reading ``deam_columns``) as
    :data:`DEAM_OUTPUT`."""
    from onnx import TensorProto, helper

    from ..modelfile import DEAM_OUTPUT

    nodes, inits = answer.onnx_nodes(features, OUTPUT)
    deam_columns = np.asarray(deam_columns, np.int64)
    if np.array_equal(deam_columns, np.arange(n_features)):
        nodes.append(helper.make_node("Identity", [features], ["deam_features"]))
    else:
        inits.append(helper.make_tensor("deam_feature_columns", TensorProto.INT64, [len(deam_columns)],
                                        deam_columns.tolist()))
        nodes.append(helper.make_node("Gather", [features, "deam_feature_columns"], ["deam_features"], axis=1))
    deam_nodes, deam_inits = _regressor_nodes(deam, len(deam_columns), "deam_features", DEAM_OUTPUT)
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", len(TARGETS)])
               for name in (OUTPUT, DEAM_OUTPUT)]
    return nodes + deam_nodes, inits + deam_inits, outputs


def _encoder_nodes(encoder: str | os.PathLike[str] | Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The encoder's nodes and weights reading :data:`ENCODER_INPUT`, and its
    :data:`ENCODER_OUTPUT` ``[n, 384 + 527]`` (the embedding, then the AudioSet logits)."""
    from onnx import TensorProto, helper

    from ..modelfile import ENCODER_INPUT, ENCODER_OUTPUT

    enc = load_audioset_encoder(encoder)
    renamed = {"spec": ENCODER_INPUT, "features": "enc_features", "logits": "enc_logits"}
    for node in enc.graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        node.output[:] = [renamed.get(n, n) for n in node.output]
    nodes = [*enc.graph.node, helper.make_node("Concat", ["enc_features", "enc_logits"], [ENCODER_OUTPUT], axis=1)]
    outputs = [helper.make_tensor_value_info(ENCODER_OUTPUT, TensorProto.FLOAT,
                                             ["n", N_AUDIOSET_EMBEDDING + N_AUDIOSET_LOGITS])]
    return nodes, list(enc.graph.initializer), outputs


def export_mel(
    answer: Any,
    deam: Any,
    deam_columns: np.ndarray,
    encoder: str | os.PathLike[str] | Any,
    out: str | os.PathLike[str],
    conventions: dict[str, Any],
    extra: dict[str, Any] | None = None,
    settings: Any = None,
) -> Path:
    """One ONNX graph of the ``mel`` kind: ``mel [n, 1, 128, frames]`` -> ``output [n, 2]``
    (the one answer), ``deam [n, 2]`` (DEAM's convention) and ``encoder [n, 384 + 527]``.

    Everything is computed inside the graph from the encoder's input: the encoder (its ONNX
    file or a loaded graph, such as a fine-tuned one) and the mean and standard deviation of
    each mel band over the window. ``answer`` (a
    :class:`~music2emotion.training.answer.Answer`) and ``deam`` (regressors reading
    ``deam_columns``) are fitted on rows laid out as :func:`audioset_columns` says, without
    the descriptors. ``conventions`` go into the metadata.

    Parameters
    ----------
    answer : Answer
        The one answer, written as ``output``.
    deam : regressor
        DEAM's convention, written as ``deam``; reads ``deam_columns``.
    deam_columns : numpy.ndarray
        The columns of the embedding and mel statistics it reads.
    encoder : str, os.PathLike or onnx.ModelProto
        The encoder's ONNX file or graph.
    out : str or os.PathLike
        Where to write the model.
    conventions : dict
        :data:`~music2emotion.modelfile.CONVENTIONS_KEY`'s metadata (spreads, half-widths).
    extra : dict, optional
        More metadata (the cross-validated figures, the training data).
    settings : FeatureSettings, optional
        The windows and the encoder's front end (default: ``AUDIOSET_SETTINGS``).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from onnx import TensorProto, helper

    from ..modelfile import CONVENTIONS_KEY, ENCODER_INPUT, ENCODER_OUTPUT, MEL
    from .clips import AUDIOSET_SETTINGS
    from .onnx_format import OPSETS, save_onnx

    settings = settings or AUDIOSET_SETTINGS
    enc = settings.encoder
    bands = heard_bands(enc)
    inputs = [helper.make_tensor_value_info(ENCODER_INPUT, TensorProto.FLOAT, ["n", 1, enc.n_mels, "frames"])]
    nodes, inits, outputs = _encoder_nodes(encoder)
    # the heard bands' mean and standard deviation over the frames, as clips.mel_statistics
    inits += [helper.make_tensor("mel_rows", TensorProto.INT64, [2], [-1, bands]),
              helper.make_tensor("mel_band_start", TensorProto.INT64, [1], [0]),
              helper.make_tensor("mel_band_end", TensorProto.INT64, [1], [bands]),
              helper.make_tensor("mel_band_axis", TensorProto.INT64, [1], [2])]
    nodes += [helper.make_node("Slice", [ENCODER_INPUT, "mel_band_start", "mel_band_end", "mel_band_axis"],
                               ["mel_heard"]),
              helper.make_node("ReduceMean", ["mel_heard"], ["mel_mean4"], axes=[3], keepdims=1),
              helper.make_node("Sub", ["mel_heard", "mel_mean4"], ["mel_centred"]),
              helper.make_node("Mul", ["mel_centred", "mel_centred"], ["mel_square"]),
              helper.make_node("ReduceMean", ["mel_square"], ["mel_var4"], axes=[3], keepdims=1),
              helper.make_node("Sqrt", ["mel_var4"], ["mel_std4"]),
              helper.make_node("Reshape", ["mel_mean4", "mel_rows"], ["mel_mean"]),
              helper.make_node("Reshape", ["mel_std4", "mel_rows"], ["mel_std"]),
              helper.make_node("Concat", [ENCODER_OUTPUT, "mel_mean", "mel_std"], ["all_features"], axis=1)]
    # the graph's features are the rows' after the descriptors
    columns = audioset_columns("embedding", "logits", "melstats")
    if min(answer.columns.min(), np.min(deam_columns)) < columns[0]:
        raise ValueError("a mel model computes no descriptors")
    head_nodes, head_inits, head_outputs = _answer_nodes(
        "all_features", len(columns), answer.with_columns(answer.columns - columns[0]), deam,
        np.asarray(deam_columns) - columns[0])
    about: dict[str, Any] = {"encoder_source": AUDIOSET_SOURCE, CONVENTIONS_KEY: conventions}
    graph = helper.make_graph(nodes + head_nodes, "music2emotion_mel", inputs, head_outputs + outputs,
                              inits + head_inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()])
    return save_onnx(model, out, metadata(MEL, settings, **about, **(extra or {})))
