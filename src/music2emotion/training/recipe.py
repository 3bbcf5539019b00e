"""The table of candidates that ``music2emotion evaluate`` (without ``--model``)
cross-validates on DEAM and quadrant-labelled songs, and the exporters of 0.2's models.

Training side only (scikit-learn, skl2onnx, onnx). The bundled models are made by
``music2emotion train`` (:mod:`~music2emotion.training.trainer`); this table compares what
they are made of with the descriptors and baselines of earlier versions, on the same folds:

1. :func:`audioset_features` computes, for every clip, the descriptors and the pretrained
   AudioSet encoder's embedding, logits and mel statistics, each part cached in its own
   ``.npz``.
2. :func:`cv_table` cross-validates the baselines and every candidate on the same folds;
   :func:`cross_validation_report` writes the folds, the table and the out-of-fold
   predictions.
3. :func:`export_fusion` writes the descriptors-only models and the musicnn fusion models
   of 0.2 (whose taggers :func:`build_encoder` rebuilds from the ``musicnn`` wheel).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TARGETS, EncoderSettings
from ..descriptors import DESCRIPTOR_NAMES, N_DESCRIPTORS
from ..frontends import MUSICNN_MELS, PATCH_FRAMES, PATCHES, heard_bands
from ..music import AUDIOSET_CLASSES, EMBEDDING_WIDTH
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
from .graph import regressor_nodes
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


# ---------------------------------------------------------------- the AudioSet encoder

# the mean and the standard deviation of each of the encoder input's mel bands that lie
# below its band limit (103 of 128: frontends.heard_bands)
N_MEL_STATISTICS = 2 * heard_bands(EncoderSettings())


def audioset_columns(*blocks: str) -> np.ndarray:
    """Columns of an audioset feature row: ``descriptors``, ``embedding``, ``logits`` (the
    encoder's), ``melstats`` (the mean of each of the encoder input's heard bands, then
    their standard deviations: :func:`~music2emotion.training.clips.mel_statistics`). A mel
    model's graph computes all but the descriptors, in this order."""
    ends = np.cumsum([0, N_DESCRIPTORS, EMBEDDING_WIDTH, AUDIOSET_CLASSES, N_MEL_STATISTICS])
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
    return lambda: rg.ensemble(n_features, *members)


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
    head_nodes, head_inits = regressor_nodes(fitted, n_feat)
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
