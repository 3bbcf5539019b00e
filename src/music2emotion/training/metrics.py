"""Regression metrics for valence/arousal predictions (numpy only).

All functions take ``y_true`` and ``y_pred`` of shape ``[n]`` or ``[n, 2]`` and return one
value per column. R² is ``1 - SSE/SST`` against the mean of ``y_true`` (so the mean
predictor scores 0 and worse-than-mean models score below 0); CCC is Lin's concordance
correlation coefficient, which, unlike Pearson r, also penalises bias and wrong scale.
"""

from __future__ import annotations

import numpy as np

from ..config import TARGETS


def _cols(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    return y[:, None] if y.ndim == 1 else y


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    t, p = _cols(y_true), _cols(y_pred)
    sst = ((t - t.mean(0)) ** 2).sum(0)
    return 1.0 - ((t - p) ** 2).sum(0) / np.where(sst > 0, sst, np.nan)


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.abs(_cols(y_true) - _cols(y_pred)).mean(0)


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.sqrt(((_cols(y_true) - _cols(y_pred)) ** 2).mean(0))


def pearson(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    t, p = _cols(y_true), _cols(y_pred)
    t, p = t - t.mean(0), p - p.mean(0)
    den = np.sqrt((t**2).sum(0) * (p**2).sum(0))
    return (t * p).sum(0) / np.where(den > 0, den, np.nan)


def ccc(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    t, p = _cols(y_true), _cols(y_pred)
    cov = ((t - t.mean(0)) * (p - p.mean(0))).mean(0)
    den = t.var(0) + p.var(0) + (t.mean(0) - p.mean(0)) ** 2
    return 2 * cov / np.where(den > 0, den, np.nan)


METRICS = {"r2": r2, "rmse": rmse, "mae": mae, "pearson_r": pearson, "ccc": ccc}


def report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, float]]:
    """``{"valence": {"r2": .., "rmse": .., ...}, "arousal": {...}}`` on the given scale."""
    values = {name: fn(y_true, y_pred) for name, fn in METRICS.items()}
    return {
        target: {name: float(v[i]) for name, v in values.items()}
        for i, target in enumerate(TARGETS[: _cols(y_true).shape[1]])
    }


def bootstrap_r2(
    y_true: np.ndarray, y_pred: np.ndarray, n: int = 1000, seed: int = 0, level: float = 0.95
) -> np.ndarray:
    """Percentile bootstrap interval for R², ``[columns, 2]`` (low, high)."""
    t, p = _cols(y_true), _cols(y_pred)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), size=(n, len(t)))
    draws = np.stack([r2(t[i], p[i]) for i in idx])
    a = (1 - level) / 2
    return np.stack([np.nanquantile(draws, a, axis=0), np.nanquantile(draws, 1 - a, axis=0)], 1)
