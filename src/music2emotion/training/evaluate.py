"""Evaluation you can trust: metrics on both scales, bootstrap intervals, plots, k-fold CV.

- :func:`score` gives R², RMSE, MAE, Pearson r and CCC per dimension on the 0-1 scale and on
  DEAM's 1-9 scale, with a percentile-bootstrap 95% interval for R².
- :func:`kfold` partitions song ids into seeded folds; :func:`save_folds` /
  :func:`load_folds` keep them as JSON lists of song ids, so a table can be recomputed on the
  very same songs later, by anyone.
- :func:`cross_validate` fits each candidate on k-1 folds and predicts the held-out fold,
  giving per-fold metrics, their mean ± std, and out-of-fold predictions (which stacking may
  use without ever seeing a song's own label).
- :class:`MeanPredictor` and :func:`summary_ridge` are the baselines every table shows.

numpy only at import; scikit-learn and matplotlib are imported where they are used. The
cross-validation of the candidates that made the bundled models is
:func:`music2emotion.training.recipe.run_cross_validation`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import DEAM_MAX, DEAM_MIN, TARGETS, to_deam
from . import metrics
from .data import kfold_ids

SCALES = ("unit", "deam")
# Columns of the cross-validation table: the two headline metrics per dimension.
TABLE_METRICS = ("r2", "ccc")


class Regressor(Protocol):
    """Anything with scikit-learn's ``fit(X, y)`` / ``predict(X) -> [n, 2]``."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...


def score(
    y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Metrics of ``[n, 2]`` predictions on the 0-1 scale vs 0-1 labels.

    Returns ``{"n": n, "unit": {dim: {metric: v, "r2_ci95": [lo, hi]}}, "deam": {...}}``.
    R², r and CCC do not depend on the scale; RMSE and MAE on the DEAM scale are 8x larger.
    """
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"labels {y_true.shape} and predictions {y_pred.shape} differ in shape")
    if len(y_true) < 2:
        raise ValueError("at least two songs are needed to compute R² and correlations")
    ci = metrics.bootstrap_r2(y_true, y_pred, n=n_boot, seed=seed) if n_boot else None
    out: dict[str, Any] = {"n": int(len(y_true))}
    for scale in SCALES:
        t, p = (y_true, y_pred) if scale == "unit" else (to_deam(y_true), to_deam(y_pred))
        rep = metrics.report(t, p)
        if ci is not None:
            for i, dim in enumerate(rep):
                rep[dim]["r2_ci95"] = [float(ci[i, 0]), float(ci[i, 1])]
        out[scale] = rep
    return out


def format_score(result: dict[str, Any], title: str = "") -> str:
    """A few human-readable lines for :func:`score`'s result."""
    lines = [f"{title} ({result['n']} songs)" if title else f"{result['n']} songs"]
    for dim, m in result["unit"].items():
        d = result["deam"][dim]
        ci = m.get("r2_ci95")
        ci_txt = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        lines.append(
            f"  {dim:8s} R² {m['r2']:.3f}{ci_txt}  CCC {m['ccc']:.3f}  r {m['pearson_r']:.3f}  "
            f"RMSE {m['rmse']:.3f} ({d['rmse']:.2f} on 1-9)  MAE {m['mae']:.3f} ({d['mae']:.2f} on 1-9)"
        )
    return "\n".join(lines)


def scatter_plot(
    y_true: np.ndarray, y_pred: np.ndarray, out: str | os.PathLike[str], title: str = "",
    scale: tuple[float, float] = (DEAM_MIN, DEAM_MAX),
) -> Path:
    """Predicted vs true for each dimension, with the identity line, on the rating ``scale``
    the 0-1 values stand for (default DEAM's 1-9)."""
    from ..plot import new_figure

    low, high = scale
    t, p = (low + np.asarray(v, np.float64) * (high - low) for v in (y_true, y_pred))
    r2 = metrics.r2(y_true, y_pred)
    fig = new_figure(5 * len(TARGETS), 4.6, dpi=110)
    axes = fig.subplots(1, len(TARGETS))
    for i, (ax, dim) in enumerate(zip(np.atleast_1d(axes), TARGETS)):
        ax.scatter(t[:, i], p[:, i], s=6, alpha=0.45)
        ax.plot([low, high], [low, high], color="black", lw=0.8)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel(f"true {dim} ({low:g}-{high:g})")
        ax.set_ylabel(f"predicted {dim}")
        ax.set_title(f"{dim}: R² {r2[i]:.3f}")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


# ---------------------------------------------------------------- folds


def kfold(ids: Sequence[int], folds: int = 5, seed: int = 42) -> list[list[int]]:
    """Seeded k-fold partition of song ids (see :func:`music2emotion.training.data.kfold_ids`)."""
    if folds < 2:
        raise ValueError("--folds must be at least 2")
    if folds > len(ids):
        raise ValueError(f"{folds} folds asked for, but only {len(ids)} songs")
    return kfold_ids(ids, folds, seed)


def save_folds(path: str | os.PathLike[str], folds: list[list[int]], seed: int,
               quadrant_folds: list[list[str]] | None = None) -> Path:
    """Write the folds as ``{"seed": s, "folds": [[song ids], ...]}``, with the quadrant
    set's folds (``"quadrant_folds"``) when there are some."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"seed": seed, "folds": folds}
    if quadrant_folds is not None:
        data["quadrant_folds"] = quadrant_folds
    path.write_text(json.dumps(data))
    return path


def _disjoint(path: str | os.PathLike[str], folds: list[list[Any]]) -> None:
    seen: set[Any] = set()
    for f in folds:
        if seen & set(f):
            raise ValueError(f"{path}: a song appears in two folds")
        seen |= set(f)


def load_folds(path: str | os.PathLike[str], with_quadrants: bool = False) -> Any:
    """Read folds written by :func:`save_folds`; raises ``ValueError`` if they overlap.

    Returns the DEAM folds, or with ``with_quadrants`` a pair (DEAM folds, quadrant folds
    or ``None``).
    """
    data = json.loads(Path(path).read_text())
    folds = [sorted(int(i) for i in f) for f in data["folds"]]
    _disjoint(path, folds)
    if not with_quadrants:
        return folds
    q = data.get("quadrant_folds")
    if q is not None:
        q = [sorted(str(i) for i in f) for f in q]
        _disjoint(path, q)
        if len(q) != len(folds):
            raise ValueError(f"{path}: {len(folds)} folds but {len(q)} quadrant folds")
    return folds, q


def read_ids(path: str | os.PathLike[str]) -> list[int]:
    """Song ids from a text file: whitespace- or comma-separated integers."""
    text = Path(path).read_text().replace(",", " ")
    try:
        return sorted({int(t) for t in text.split()})
    except ValueError as exc:
        raise ValueError(f"{path}: expected song ids (integers), {exc}") from exc


# ---------------------------------------------------------------- baselines


class MeanPredictor:
    """Predicts the training labels' mean for every song (R² 0 on average, by design)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> MeanPredictor:
        self.mean_ = np.asarray(y, np.float64).mean(0)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.tile(self.mean_, (len(x), 1))


# "Summary features" for the ridge baseline: the mel and MFCC statistics and the tempo.
SUMMARY_PREFIXES = ("mel", "mfcc", "tempo")


def summary_columns(names: Sequence[str]) -> np.ndarray:
    """Indices of the baseline's summary features among descriptor ``names``."""
    return np.array([i for i, n in enumerate(names) if n.startswith(SUMMARY_PREFIXES)])


class ColumnSubset:
    """Fit/predict ``inner`` on a fixed subset of the feature columns."""

    def __init__(self, inner: Regressor, columns: np.ndarray):
        self.inner, self.columns = inner, columns

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> ColumnSubset:
        if sample_weight is None:
            self.inner.fit(x[:, self.columns], y)
        else:
            self.inner.fit(x[:, self.columns], y, sample_weight=sample_weight)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.inner.predict(x[:, self.columns])


def summary_ridge(names: Sequence[str]) -> Regressor:
    """Baseline: standardised ridge (alpha chosen by inner CV) on the summary features."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 4, 16)))
    return ColumnSubset(ridge, summary_columns(names))


def baselines(names: Sequence[str]) -> dict[str, Callable[[], Regressor]]:
    """The baselines shown beside every candidate."""
    return {"mean": MeanPredictor, "ridge-summary": lambda: summary_ridge(names)}


# ---------------------------------------------------------------- cross-validation


@dataclass
class QuadrantData:
    """Quadrant-labelled songs that a cross-validation trains on and scores beside DEAM's:
    their features, labels (1-4), song ids and folds of song ids (one per DEAM fold)."""

    x: np.ndarray
    quadrants: np.ndarray
    ids: list[str]
    folds: list[list[str]]
    paths: list[Path] = field(default_factory=list)

    def fold_indices(self) -> list[np.ndarray]:
        pos = {s: i for i, s in enumerate(self.ids)}
        out = [np.array([pos[s] for s in f], dtype=np.int64) for f in self.folds]
        if sorted(np.concatenate(out).tolist()) != list(range(len(self.ids))):
            raise ValueError("the quadrant folds do not cover every song exactly once")
        return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation (ddof 1; 0 for one value) of per-fold figures, leaving
    out the NaN of a fold that cannot have one (e.g. an AUC without one side, the correlation
    of a constant prediction); NaN, NaN when none is left."""
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


@dataclass
class CVResult:
    """One candidate's cross-validation: per-fold scores and out-of-fold predictions, on
    DEAM (``fold_scores``, ``oof``) and on quadrant-labelled songs when there are some."""

    name: str
    fold_scores: list[dict[str, dict[str, float]]]  # per fold: {dim: {metric: value}} (0-1 scale)
    oof: np.ndarray  # [n, 2] out-of-fold predictions, in the order of the ids given
    extra: dict[str, Any] = field(default_factory=dict)
    quadrant_scores: list[dict[str, Any]] = field(default_factory=list)  # per fold
    quadrant_oof: np.ndarray | None = None
    # False for a baseline that predicts quadrants only: its values are no DEAM ratings
    rates_deam: bool = True

    def stat(self, dim: str, metric: str) -> tuple[float, float]:
        """Mean and standard deviation over folds (NaN where it does not rate DEAM)."""
        if not self.rates_deam:
            return float("nan"), float("nan")
        v = np.array([f[dim][metric] for f in self.fold_scores])
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0

    def quadrant_stat(self, key: str) -> tuple[float, float]:
        """Mean and standard deviation over folds of one of ``quadrant_scores``' figures."""
        return mean_std([f[key] for f in self.quadrant_scores])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.rates_deam:
            out.update({
                "folds": self.fold_scores,
                "mean": {d: {m: self.stat(d, m)[0] for m in self.fold_scores[0][d]} for d in TARGETS},
                "std": {d: {m: self.stat(d, m)[1] for m in self.fold_scores[0][d]} for d in TARGETS},
            })
        if self.quadrant_scores:
            keys = [k for k, v in self.quadrant_scores[0].items() if not isinstance(v, list)]
            out["quadrants"] = {"folds": self.quadrant_scores,
                                "mean": {k: self.quadrant_stat(k)[0] for k in keys},
                                "std": {k: self.quadrant_stat(k)[1] for k in keys}}
        return {**out, **self.extra}


def fold_indices(ids: Sequence[int], folds: list[list[int]]) -> list[np.ndarray]:
    """Row indices of each fold's songs in ``ids``; every id must be in exactly one fold."""
    pos = {int(s): i for i, s in enumerate(ids)}
    missing = [s for f in folds for s in f if s not in pos]
    if missing:
        raise ValueError(f"folds name {len(missing)} song(s) not in the data, e.g. {missing[:3]}")
    out = [np.array([pos[s] for s in f], dtype=np.int64) for f in folds]
    if sum(len(f) for f in out) != len(ids):
        raise ValueError("the folds do not cover every song exactly once")
    return out


# How a fold's model is fitted: (model, DEAM x, DEAM y, quadrant x, quadrants) -> fitted
# model. The default uses DEAM's ratings alone.
Fit = Callable[[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray], Any]


def _fit_on_ratings(model: Any, x: np.ndarray, y: np.ndarray, xq: np.ndarray, q: np.ndarray) -> Any:
    return model.fit(x, y)


def _fit_and_predict(make, fit, x, y, train, test, xq, quadrants, q_train, q_test):
    """One fold of :func:`cross_validate`: predictions on the held-out DEAM and quadrant songs."""
    model = fit(make(), x[train], y[train], xq[q_train], quadrants[q_train])
    return model.predict(x[test]), (model.predict(xq[q_test]) if len(q_test) else np.zeros((0, 2)))


def cross_validate(
    name: str,
    make: Callable[[], Regressor],
    x: np.ndarray,
    y: np.ndarray,
    ids: Sequence[int],
    folds: list[list[int]],
    log: Callable[[str], None] | None = None,
    quadrants: QuadrantData | None = None,
    fit: Fit = _fit_on_ratings,
    rates_deam: bool = True,
    jobs: int = 1,
) -> CVResult:
    """Fit a fresh ``make()`` on every fold's complement and score it on the fold.

    With ``quadrants`` fold k also holds out quadrant fold k: ``fit`` sees the quadrant songs
    of the other folds (the default fit ignores them), and the held-out ones are scored with
    :func:`~music2emotion.training.quadrants.quadrant_scores`. ``jobs`` folds are fitted at
    once, in worker processes.
    """
    from joblib import Parallel, delayed

    from .quadrants import quadrant_scores

    idx = fold_indices(ids, folds)
    if quadrants is None:  # no quadrant songs: every fold trains and scores on none
        xq, labels, q_idx = x[:0], np.zeros(0, np.int64), [np.zeros(0, np.int64)] * len(idx)
    else:
        xq, labels, q_idx = quadrants.x, quadrants.quadrants, quadrants.fold_indices()
        if len(q_idx) != len(idx):
            raise ValueError(f"{len(idx)} DEAM folds but {len(q_idx)} quadrant folds")
    songs, q_songs = np.arange(len(ids)), np.arange(len(labels))
    preds = Parallel(n_jobs=max(1, min(jobs, len(idx))))(
        delayed(_fit_and_predict)(make, fit, x, y, np.setdiff1d(songs, test), test,
                                  xq, labels, np.setdiff1d(q_songs, q_test), q_test)
        for test, q_test in zip(idx, q_idx))
    oof = np.zeros_like(y, dtype=np.float64)
    q_oof = np.zeros((len(quadrants.ids), 2)) if quadrants is not None else None
    scores, q_scores = [], []
    for k, (test, (pred, q_pred)) in enumerate(zip(idx, preds)):
        oof[test] = pred
        scores.append(metrics.report(y[test], pred))
        if quadrants is not None:
            q_oof[q_idx[k]] = q_pred
            q_scores.append(quadrant_scores(labels[q_idx[k]], q_pred))
        if log:
            line = f"  {name} fold {k + 1}/{len(idx)}:"
            if rates_deam:
                line += " " + ", ".join(f"{d} R² {scores[-1][d]['r2']:.3f}" for d in TARGETS)
            if q_scores:
                line += f"; quadrants: valence AUC {q_scores[-1]['valence_auc']:.3f}, " \
                        f"arousal AUC {q_scores[-1]['arousal_auc']:.3f}"
            log(line)
    return CVResult(name, scores, oof, quadrant_scores=q_scores, quadrant_oof=q_oof, rates_deam=rates_deam)


def fixed_predictions(
    name: str, pred: np.ndarray, y: np.ndarray, ids: Sequence[int], folds: list[list[int]],
    quadrants: QuadrantData | None = None, quadrant_pred: np.ndarray | None = None,
) -> CVResult:
    """Score ready-made predictions fold by fold: out-of-fold ones (e.g. one CNN trained per
    fold), or those of a model that never saw these songs (e.g. an earlier bundled model)."""
    from .quadrants import quadrant_scores

    idx = fold_indices(ids, folds)
    q_scores = [quadrant_scores(quadrants.quadrants[t], quadrant_pred[t]) for t in quadrants.fold_indices()] \
        if quadrants is not None and quadrant_pred is not None else []
    return CVResult(name, [metrics.report(y[t], pred[t]) for t in idx], np.asarray(pred, np.float64),
                    quadrant_scores=q_scores, quadrant_oof=quadrant_pred)


def format_table(results: Sequence[CVResult], metric_names: Sequence[str] = TABLE_METRICS) -> str:
    """A Markdown table: one row per candidate, mean ± std over folds; DEAM's metrics per
    dimension, then (when any candidate was scored on quadrant labels) the quadrant scores."""
    from .quadrants import TABLE_SCORES

    with_q = any(r.quadrant_scores for r in results)
    head = ["candidate"] + [f"{d} {m.upper() if m == 'ccc' else 'R²' if m == 'r2' else m}"
                            for d in TARGETS for m in metric_names]
    if with_q:
        head += list(TABLE_SCORES.values())

    def cell(mean: float, std: float) -> str:
        return "—" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}"

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.name] + [cell(*r.stat(d, m)) for d in TARGETS for m in metric_names]
        if with_q:
            cells += [cell(*r.quadrant_stat(k)) for k in TABLE_SCORES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- whole runs (the CLI's evaluate)


def predict_paths(model: str | os.PathLike[str], paths: Sequence[Path], jobs: int = 1) -> np.ndarray:
    """``[n, 2]`` song-level predictions of an ONNX model (CNN or fusion) for ``paths``.

    Raises ``ValueError`` naming the first file that failed: a metric over a silently
    shortened list of songs would not be comparable with anything.
    """
    from ..engine import predict_files

    # predict_files runs every model kind alike, in worker processes, in input order
    preds = list(predict_files(paths, model=model, jobs=jobs))
    bad = [p for p in preds if not p.ok]
    if bad:
        raise ValueError(f"{len(bad)} file(s) failed, e.g. {bad[0].path}: {bad[0].error}")
    return np.array([[p.valence, p.arousal] for p in preds], np.float64)


def evaluate_model(
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    audio_dir: str | os.PathLike[str] | None = None,
    annotations: str | os.PathLike[str] | None = None,
    quadrant_labels: str | os.PathLike[str] | None = None,
    quadrant_audio: str | os.PathLike[str] | None = None,
    split: Sequence[int] | None = None,
    folds: int = 5,
    seed: int = 42,
    jobs: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    n_boot: int = 1000,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score a trained model on rated songs (DEAM) and/or quadrant-labelled songs (4Q),
    beside baselines, and write the report.

    Parameters
    ----------
    model : str or os.PathLike
        An ONNX model file.
    out : str or os.PathLike
        Folder for the report.
    audio_dir, annotations : str or os.PathLike, optional
        A DEAM-layout set: every song is scored (or only the ``split`` song ids), beside the
        baselines' predictions, which never see the song they predict (out-of-fold with
        ``folds`` and ``seed``, or fitted on the songs outside ``split``). Adds how much of
        the model's valence is its own (:func:`~music2emotion.training.quadrants.independence`).
    quadrant_labels, quadrant_audio : str or os.PathLike, optional
        A quadrant labels CSV and its audio folder (default: ``audio`` beside the CSV):
        every song is scored with the quadrant scores, overall and per artist-grouped fold
        (mean ± std), beside a logistic regression on the descriptors fitted out of fold.
    jobs : int
        Worker processes.
    cache_dir : str or os.PathLike, optional
        Where the baselines' descriptors are cached.

    Returns
    -------
    dict
        What ``evaluation.json`` holds: for DEAM ``songs``, ``model_score``,
        ``independence`` and ``baselines``; for quadrants ``quadrants``. Also written:
        ``predictions.csv`` and ``scatter.png`` (DEAM), ``quadrant_predictions.csv`` and
        ``quadrants.png`` (quadrants).
    """
    if audio_dir is None and quadrant_labels is None:
        raise ValueError("give a DEAM-layout set (audio_dir and annotations), quadrant labels, or both")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else None
    report: dict[str, Any] = {"model": str(model)}
    if audio_dir is not None:
        if annotations is None:
            raise ValueError("audio_dir needs annotations")
        report.update(_evaluate_ratings(model, out, audio_dir, annotations, split, folds, seed, jobs,
                                        cache and cache / "deam", n_boot, log))
    if quadrant_labels is not None:
        report["quadrants"] = _evaluate_quadrants(model, out, quadrant_labels, quadrant_audio, folds, seed,
                                                  jobs, cache and cache / "quadrants", log)
    write_json(out / "evaluation.json", report)
    log(f"wrote {out / 'evaluation.json'} and the predictions and pictures beside it")
    return report


def _evaluate_ratings(model: str | os.PathLike[str], out: Path, audio_dir: str | os.PathLike[str],
                      annotations: str | os.PathLike[str], split: Sequence[int] | None, folds: int,
                      seed: int, jobs: int, cache: Path | None, n_boot: int,
                      log: Callable[[str], None]) -> dict[str, Any]:
    from ..descriptors import DESCRIPTOR_NAMES
    from .clips import describe_clips
    from .data import load_dataset
    from .quadrants import independence

    data = load_dataset(audio_dir, annotations)
    log(data.report())
    ids = np.array(data.ids)
    if split is not None:
        unknown = sorted(set(split) - set(data.ids))
        if unknown:
            raise ValueError(f"--split names {len(unknown)} song(s) without audio and labels, e.g. {unknown[:3]}")
        test = np.isin(ids, list(split))
    else:
        test = np.ones(len(ids), bool)
    paths = [p for p, t in zip(data.paths, test) if t]
    log(f"predicting {len(paths)} songs with {model}")
    pred = predict_paths(model, paths, jobs)
    y = data.targets.astype(np.float64)
    report: dict[str, Any] = {"songs": int(test.sum()), "model_score": score(y[test], pred, n_boot, seed),
                              "independence": independence(y[test], pred)}
    log(format_score(report["model_score"], Path(model).name))
    ind = report["independence"]
    log(f"  predicted valence vs predicted arousal r {ind['pred_valence_arousal_r']:.3f} "
        f"(the labels' own: {ind['true_valence_arousal_r']:.3f}); predicted vs true valence with true "
        f"arousal held fixed: partial r {ind['partial_valence_r']:.3f}")

    log("descriptors for the baselines")
    x = describe_clips(data.paths, cache=cache and cache / "descriptors.npz", jobs=jobs, progress=False)
    report["baselines"] = {}
    for name, make in baselines(DESCRIPTOR_NAMES).items():
        if split is not None:
            base = make().fit(x[~test], y[~test]).predict(x[test])
            how = f"fitted on the {int((~test).sum())} songs outside the split"
        else:
            base = cross_validate(name, make, x, y, data.ids, kfold(data.ids, folds, seed)).oof
            how = f"out-of-fold predictions, {folds} folds, seed {seed}"
        report["baselines"][name] = {"how": how, **score(y[test], base, n_boot, seed)}
        log(format_score(report["baselines"][name], f"baseline {name} ({how})"))

    rows = ["song_id,valence_true,arousal_true,valence_pred,arousal_pred"]
    rows += [f"{i},{t[0]:.4f},{t[1]:.4f},{p[0]:.4f},{p[1]:.4f}" for i, t, p in zip(ids[test], y[test], pred)]
    (out / "predictions.csv").write_text("\n".join(rows) + "\n")
    scatter_plot(y[test], pred, out / "scatter.png", Path(model).name)
    return report


def _evaluate_quadrants(model: str | os.PathLike[str], out: Path, labels: str | os.PathLike[str],
                        audio_dir: str | os.PathLike[str] | None, folds: int, seed: int, jobs: int,
                        cache: Path | None, log: Callable[[str], None]) -> dict[str, Any]:
    from .clips import describe_clips
    from .quadrants import (
        QuadrantLogistic,
        format_quadrant_scores,
        group_folds,
        load_quadrants,
        quadrant_of,
        quadrant_plot,
        quadrant_scores,
    )

    qs = load_quadrants(labels, audio_dir)
    log(qs.report())
    log(f"predicting {len(qs.ids)} songs with {model}")
    pred = predict_paths(model, qs.paths, jobs)
    fold_ids = group_folds(qs, folds, seed)
    pos = {s: i for i, s in enumerate(qs.ids)}
    idx = [np.array([pos[s] for s in f]) for f in fold_ids]
    per_fold = [quadrant_scores(qs.quadrants[i], pred[i]) for i in idx]
    result: dict[str, Any] = {"songs": len(qs.ids), "model_score": quadrant_scores(qs.quadrants, pred),
                              "folds": fold_ids, "model_fold_scores": per_fold}
    log(format_quadrant_scores(result["model_score"], Path(model).name))

    # what a plain classifier learns from these labels alone, never seeing the artist it predicts
    x = describe_clips(qs.paths, cache=cache and cache / "descriptors.npz", jobs=jobs, progress=False)
    base = np.zeros((len(qs.ids), 2))
    for test in idx:
        train = np.setdiff1d(np.arange(len(qs.ids)), test)
        base[test] = QuadrantLogistic().fit(
            x[:0], np.zeros((0, 2)), x[train], qs.quadrants[train]).predict(x[test])
    name = "quadrants only: logistic on descriptors"
    result["baselines"] = {name: {"how": f"out-of-fold, {folds} folds grouped by artist, seed {seed}",
                                  **quadrant_scores(qs.quadrants, base)}}
    log(format_quadrant_scores(result["baselines"][name], f"baseline {name}"))

    rows = ["song_id,quadrant,valence_pred,arousal_pred,quadrant_pred"]
    rows += [f"{sid},Q{q},{p[0]:.4f},{p[1]:.4f},Q{qp}"
             for sid, q, p, qp in zip(qs.ids, qs.quadrants, pred, quadrant_of(pred))]
    (out / "quadrant_predictions.csv").write_text("\n".join(rows) + "\n")
    quadrant_plot(qs.quadrants, pred, out / "quadrants.png", Path(model).name)
    return result
