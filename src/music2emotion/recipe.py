"""The shipped model's recipe: inputs for every clip, the CV table, the final fit, one ONNX file.

Training side only (scikit-learn, skl2onnx, onnx; torch to rebuild the musicnn encoder):

1. :func:`build_encoder` reads a pretrained musicnn tagger (:data:`ENCODERS`) out of the
   ``musicnn`` wheel and exports it to ONNX (see :mod:`music2emotion.musicnn`).
2. :func:`clip_features` computes, for every clip, exactly what inference computes
   (descriptors and musicnn patches per window, the encoders run by ONNX Runtime), each part
   cached in its own ``.npz``.
3. :func:`cv_table` cross-validates the baselines and every candidate on the same folds.
4. :func:`export_fusion` writes the fitted candidate as one ONNX graph: patches -> encoders ->
   mean over patches -> concat with descriptors -> average of the regressors.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from . import evaluate as ev
from . import regressors as rg
from .audio import AudioError, stream_audio
from .config import METADATA_KEY, TARGETS
from .descriptors import DESCRIPTOR_NAMES, N_DESCRIPTORS, describe_clips, stack_and_cache
from .features import TooShortError, iter_windows
from .fusion import DESCRIPTORS_KIND, KIND, MUSICNN_MELS, PATCH_FRAMES, PATCHES, fusion_settings, musicnn_patches

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


def _encoder_session(path: str | os.PathLike[str]):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


_worker: Any = None


def _init(encoder: str) -> None:
    global _worker
    _worker = _encoder_session(encoder)


def _one_clip(path: str) -> np.ndarray | str:
    """Mean over the clip's windows of the encoder's [mean tags, mean embedding]."""
    settings = fusion_settings()
    try:
        rows = []
        for w in iter_windows(stream_audio(path, settings.sample_rate), settings):
            tags, emb = _worker.run(None, {"patches": musicnn_patches(w.samples, settings.sample_rate)})
            rows.append(np.concatenate([tags.mean(0), emb.mean(0)]))
        return np.mean(rows, 0).astype(np.float32)
    except (AudioError, TooShortError) as exc:
        return f"{path}: {exc}"


def _file_key(files: Sequence[Path], *extra: str) -> str:
    return hashlib.sha1("\n".join(
        [f"{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in files] + list(extra)
    ).encode()).hexdigest()


def clip_embeddings(
    paths: Sequence[str | os.PathLike[str]],
    encoder: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> np.ndarray:
    """``[clips, 250]`` mean tags and embedding of one encoder, cached by files and encoder."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    files = [Path(p) for p in paths]
    key = _file_key(files, hashlib.sha1(Path(encoder).read_bytes()).hexdigest(), str(PATCHES))
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return stored["x"]
    with ProcessPoolExecutor(max(1, jobs), initializer=_init, initargs=(str(encoder),)) as pool:
        results = list(tqdm(pool.map(_one_clip, map(str, files), chunksize=4), total=len(files),
                            desc=Path(encoder).stem, disable=not progress, unit="clip"))
    return stack_and_cache(results, cache, key)


def clip_features(
    paths: Sequence[str | os.PathLike[str]],
    encoders: Sequence[str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> np.ndarray:
    """``[clips, len(feature_names())]``: descriptors and every encoder's outputs, each cached."""
    cache = Path(cache_dir) if cache_dir else None
    parts = [describe_clips(paths, cache=cache and cache / "descriptors.npz", jobs=jobs, progress=progress)]
    for enc in encoders:
        parts.append(clip_embeddings(paths, enc, cache and cache / f"{Path(enc).stem}.npz", jobs, progress))
    return np.hstack(parts)


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
    :func:`build_encoder`, in the same order). With no encoders the graph is the regressor
    alone on ``descriptors`` (kind ``"descriptors"``: the fast bundled model).
    """
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from .onnx_format import OPSETS, save_onnx

    n_feat = N_DESCRIPTORS + len(encoders) * (N_TAGS + N_EMBEDDING)
    inputs = [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["n", N_DESCRIPTORS])]
    nodes: list[Any] = []
    inits: list[Any] = []
    if not encoders:
        nodes.append(helper.make_node("Identity", ["descriptors"], ["features"]))
    else:
        inputs.append(helper.make_tensor_value_info("patches", TensorProto.FLOAT,
                                                    ["n", PATCHES, PATCH_FRAMES, MUSICNN_MELS]))
        nodes.append(helper.make_node("Reshape", ["patches", "flat_shape"], ["flat_patches"]))
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
            helper.make_node("Concat", ["descriptors", "window_embedding"], ["features"], axis=1),
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
              helper.make_node("Mul", ["member_sum", "inv_members"], ["output"])]
    graph = helper.make_graph(
        nodes, "music2emotion_fusion" if encoders else "music2emotion_descriptors", inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", len(TARGETS)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()])
    meta = {
        "kind": KIND if encoders else DESCRIPTORS_KIND,
        "settings": fusion_settings().to_dict(),
        "targets": list(TARGETS),
        "scale": "0-1 (DEAM rating r maps to (r - 1) / 8)",
        "n_descriptors": N_DESCRIPTORS,
        "patches": PATCHES if encoders else 0,
        "encoders": [Path(e).stem for e in encoders],
        **({"encoder_source": "musicnn 0.1.0 on PyPI (Pons & Serra 2019; Music Technology Group, "
                              "Universitat Pompeu Fabra; ISC licence)"} if encoders else {}),
        "music2emotion_version": __version__,
        **(extra or {}),
    }
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    return save_onnx(model, out)
