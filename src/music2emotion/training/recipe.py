"""The bundled models' recipe: the candidates, the CV table, the final fit, one ONNX file.

Training side only (scikit-learn, skl2onnx, onnx; torch to rebuild the musicnn encoder):

1. :func:`build_encoder` reads a pretrained musicnn tagger (:data:`ENCODERS`) out of the
   ``musicnn`` wheel and exports it to ONNX (see :mod:`music2emotion.training.musicnn`).
2. :func:`music2emotion.training.clips.clip_features` computes, for every clip, exactly what
   inference computes (descriptors and musicnn patches per window, the encoders run by ONNX
   Runtime), each part cached in its own ``.npz``.
3. :func:`cv_table` cross-validates the baselines and every candidate on the same folds;
   :func:`cross_validation_report` writes the folds, the table and the out-of-fold
   predictions, for ``music2emotion evaluate`` and ``scripts/reproduce_model.py`` alike.
4. :func:`export_fusion` writes the fitted candidate as one ONNX graph: patches -> encoders ->
   mean over patches -> concat with descriptors -> average of the regressors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TARGETS
from ..descriptors import DESCRIPTOR_NAMES, N_DESCRIPTORS
from ..frontends import MUSICNN_MELS, PATCH_FRAMES, PATCHES
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
from .clips import CLIP_SETTINGS, clip_features, describe_clips

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

def _columns(*blocks: str, encoders: Sequence[str] = ENCODERS) -> np.ndarray:
    """Feature columns of the named blocks ("descriptors" or an encoder's name)."""
    spans, start = {"descriptors": (0, N_DESCRIPTORS)}, N_DESCRIPTORS
    for e in encoders:
        spans[e] = (start, start + N_TAGS + N_EMBEDDING)
        start += N_TAGS + N_EMBEDDING
    return np.concatenate([np.arange(*spans[b]) for b in blocks])


def candidates(encoders: Sequence[str] = ENCODERS) -> dict[str, tuple[np.ndarray, Callable[[], Any]]]:
    """Name -> (feature columns, regressor factory): every row of the CV table."""
    msd = encoders[0]
    every = _columns("descriptors", *encoders, encoders=encoders)
    msd_only = _columns(msd, encoders=encoders)
    with_msd = _columns("descriptors", msd, encoders=encoders)
    desc = _columns("descriptors")

    def ridge_pca_svr(n: int) -> Callable[[], Any]:
        return lambda: rg.Average([("ridge", rg.ridge()), ("svr", rg.pca_svr(n))])

    table: dict[str, tuple[np.ndarray, Callable[[], Any]]] = {
        "descriptors: ridge": (desc, rg.ridge),
        "descriptors: svr": (desc, rg.svr),
        "descriptors: gbm": (desc, rg.gbm),
        "descriptors: ridge+svr+gbm": (desc, lambda: rg.average("ridge", "svr", "gbm")),
        # the fast bundled model: the SVR on 64 principal components is a tenth of the full
        # SVR's size and scores the same (MODEL_CARD.md)
        "descriptors: ridge+pca-svr+gbm": (desc, lambda: rg.Average([
            ("ridge", rg.ridge()), ("svr", rg.pca_svr(len(desc))), ("gbm", rg.gbm())])),
        f"{msd}: ridge": (msd_only, rg.ridge),
        f"descriptors+{msd}: ridge": (with_msd, rg.ridge),
        f"descriptors+{msd}: ridge+pca-svr": (with_msd, ridge_pca_svr(len(with_msd))),
    }
    if len(encoders) > 1:
        table["all taggers: ridge"] = (_columns(*encoders, encoders=encoders), rg.ridge)
    table.update({
        "fusion: ridge": (every, rg.ridge),
        "fusion: svr": (every, rg.svr),
        "fusion: ridge+svr": (every, lambda: rg.average("ridge", "svr")),
        "fusion: ridge+pca-svr": (every, ridge_pca_svr(len(every))),
    })
    return table


# the candidate that ships: the best fold mean of both dimensions in MODEL_CARD.md's table
SHIPPED = "fusion: ridge+pca-svr"
# the fast bundled model (no taggers): the best descriptors-only row, at a tenth of the size
SHIPPED_FAST = "descriptors: ridge+pca-svr+gbm"


def cv_table(
    x: np.ndarray,
    y: np.ndarray,
    ids: Sequence[int],
    folds: list[list[int]],
    names: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ev.CVResult]:
    """Cross-validate the baselines and the named candidates (default: all) on ``folds``."""
    results = [ev.cross_validate(n, make, x, y, ids, folds, log)
               for n, make in ev.baselines(DESCRIPTOR_NAMES).items()]
    table = candidates()
    for name in names or table:
        if name not in table:
            raise ValueError(f"unknown candidate {name!r}; choose from {', '.join(table)}")
        cols, make = table[name]
        results.append(ev.cross_validate(name, lambda: ev.ColumnSubset(make(), cols), x, y, ids, folds, log))
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
) -> list[ev.CVResult]:
    """Cross-validate the baselines and candidates on ``folds`` and write what a reader needs.

    Writes into ``out``: ``folds.json`` (the folds as song ids, with ``seed``),
    ``cv_table.md`` (mean ± std over folds), ``cv.json`` (every metric of every fold),
    ``oof_predictions.csv`` (every candidate's out-of-fold predictions) and
    ``scatter_best.png`` (the best candidate's, out of fold).

    Returns
    -------
    list of CVResult
        Baselines first, then the candidates in ``names`` order.
    """
    out = Path(out)
    ev.save_folds(out / "folds.json", folds, seed)
    results = cv_table(x, y, ids, folds, names, log)
    table = ev.format_table(results)
    log(table)
    (out / "cv_table.md").write_text(table + "\n")
    ev.write_json(out / "cv.json", {"folds": len(folds), "seed": seed, "songs": len(ids),
                                    "results": [r.summary() for r in results]})
    header = "song_id,valence_true,arousal_true," + ",".join(
        f"{r.name} {d}" for r in results for d in TARGETS)
    lines = [header] + [
        f"{sid},{y[i, 0]:.4f},{y[i, 1]:.4f}," + ",".join(f"{v:.4f}" for r in results for v in r.oof[i])
        for i, sid in enumerate(ids)]
    (out / "oof_predictions.csv").write_text("\n".join(lines) + "\n")
    best = max(results, key=lambda r: sum(r.stat(d, "r2")[0] for d in TARGETS))
    ev.scatter_plot(y, best.oof, out / "scatter_best.png", f"{best.name} (out-of-fold)")
    return results


def run_cross_validation(
    audio_dir: str | os.PathLike[str],
    annotations: str | os.PathLike[str],
    out: str | os.PathLike[str],
    folds: int = 5,
    seed: int = 42,
    folds_file: str | os.PathLike[str] | None = None,
    encoders: Sequence[str | os.PathLike[str]] = (),
    names: Sequence[str] | None = None,
    jobs: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = print,
) -> list[ev.CVResult]:
    """``music2emotion evaluate`` without a model: k-fold CV of the baselines and candidates
    on a DEAM-layout folder (see :func:`cross_validation_report` for what it writes).

    Without ``encoders`` (the musicnn ONNX files from :func:`build_encoder`, in
    :data:`ENCODERS` order) only descriptor-based candidates can run; ``names`` picks
    candidates (default: all that can run). ``folds_file`` reuses saved folds.
    """
    from .data import load_dataset

    data = load_dataset(audio_dir, annotations)
    log(data.report())
    fold_ids = ev.load_folds(folds_file) if folds_file else ev.kfold(data.ids, folds, seed)
    cache = Path(cache_dir) if cache_dir else None
    if encoders:
        if len(encoders) != len(ENCODERS):
            raise ValueError(f"--encoder takes {len(ENCODERS)} files, for {', '.join(ENCODERS)}")
        x = clip_features(data.paths, encoders, cache, jobs)
    else:
        x = describe_clips(data.paths, cache=cache and cache / "descriptors.npz", jobs=jobs)
        names = names or [n for n, (cols, _) in candidates().items() if cols.max() < x.shape[1]]
    return cross_validation_report(x, data.targets.astype(np.float64), data.ids, fold_ids, seed,
                                   out, names, log)


# ---------------------------------------------------------------- export


def _members(fitted: Any) -> list[Any]:
    """The convertible estimators whose mean is the prediction."""
    if isinstance(fitted, rg.Average):
        if fitted.weights is not None:
            raise ValueError("weighted averages are not exported")
        return [est for _, est in fitted.fitted_]
    return [fitted]


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
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

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
    member_outputs = []
    for i, est in enumerate(_members(fitted)):
        head = convert_sklearn(est, initial_types=[("features", FloatTensorType([None, n_feat]))],
                               target_opset=OPSETS)
        head = onnx.compose.add_prefix(head, f"m{i}_")
        for node in head.graph.node:
            node.input[:] = ["features" if n == f"m{i}_features" else n for n in node.input]
        nodes += head.graph.node
        inits += head.graph.initializer
        member_outputs.append(head.graph.output[0].name)
    inits.append(helper.make_tensor("inv_members", TensorProto.FLOAT, [], [1.0 / len(member_outputs)]))
    nodes += [helper.make_node("Sum", member_outputs, ["member_sum"]),
              helper.make_node("Mul", ["member_sum", "inv_members"], [OUTPUT])]
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
