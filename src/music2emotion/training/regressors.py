"""Regressors over :mod:`music2emotion.descriptors` (training side; needs scikit-learn).

Each candidate is a factory returning an unfitted estimator with
``fit(X, y[n, 2], sample_weight=None)`` and ``predict(X) -> [n, 2]``: an :class:`Average` of
:class:`PerAxis` members, each one single-output estimator per axis built only from what
skl2onnx converts (standard scaling, PCA, ridge, RBF SVR, gradient boosting), so whichever
wins ships as ONNX and runs without scikit-learn. Hyper-parameters were chosen on the cross-validation fold mean (see
MODEL_CARD.md), never on a held-out split.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR


def _fit_weighted(est: Any, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> Any:
    """Fit ``est`` with per-row weights; a pipeline passes them to its last step only, so
    scaling and PCA describe every song given, whatever it weighs. A PCA asked for more
    components than the songs allow keeps as many as it can (small sets, tests)."""
    if isinstance(est, Pipeline):
        for name, step in est.steps:
            if isinstance(step, PCA) and isinstance(step.n_components, int):
                est.set_params(**{f"{name}__n_components": min(step.n_components, *x.shape)})
    if weight is None:
        return est.fit(x, y)
    if isinstance(est, Pipeline):
        return est.fit(x, y, **{f"{est.steps[-1][0]}__sample_weight": weight})
    return est.fit(x, y, sample_weight=weight)


class PerAxis(BaseEstimator, RegressorMixin):
    """One clone of a single-output ``estimator`` per target column (valence, arousal).

    Each axis is fitted with its own row weights, so songs that are labelled on both axes
    but trusted differently on each (a quadrant says more about arousal than about the
    valence DEAM's listeners rate) can count differently per axis.
    """

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> PerAxis:
        """Fit on ``y [n, k]`` with ``sample_weight`` of shape ``[n]``, ``[n, k]`` or None."""
        y = np.asarray(y, np.float64)
        y = y[:, None] if y.ndim == 1 else y
        w = None if sample_weight is None else np.broadcast_to(
            np.asarray(sample_weight, np.float64).reshape(len(y), -1), y.shape)
        self.estimators_ = [_fit_weighted(clone(self.estimator), x, np.ascontiguousarray(y[:, j]),
                                          None if w is None else np.ascontiguousarray(w[:, j]))
                            for j in range(y.shape[1])]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([est.predict(x) for est in self.estimators_])


class Average(BaseEstimator, RegressorMixin):
    """The mean of several regressors' ``[n, 2]`` predictions (optionally weighted)."""

    def __init__(self, members: list[tuple[str, Any]], weights: list[float] | None = None):
        self.members = members
        self.weights = weights

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Average:
        self.fitted_ = [(name, clone(est).fit(x, y, sample_weight=sample_weight)) for name, est in self.members]
        return self

    def _w(self) -> np.ndarray:
        w = np.ones(len(self.members)) if self.weights is None else np.asarray(self.weights, float)
        return w / w.sum()

    def predict(self, x: np.ndarray) -> np.ndarray:
        preds = np.stack([est.predict(x) for _, est in self.fitted_])
        return np.tensordot(self._w(), preds, axes=1)


def ridge(alpha: float = 300.0) -> PerAxis:
    return PerAxis(make_pipeline(StandardScaler(), Ridge(alpha=alpha)))


def svr(c: float = 0.3, epsilon: float = 0.02, gamma: str | float = "scale") -> PerAxis:
    return PerAxis(make_pipeline(StandardScaler(), SVR(C=c, epsilon=epsilon, gamma=gamma)))


def pca_svr(n_features: int, components: int = 64, c: float = 0.3, epsilon: float = 0.02) -> PerAxis:
    """RBF SVR on the first ``components`` principal components of the standardised features.

    An SVR keeps (nearly) every training song as a support vector; in 64 dimensions instead
    of several hundred its exported size drops about tenfold for the same fold-mean R². The
    kernel width stays that of the full standardised input (gamma = 1 / n_features), since
    the leading components keep most of the distances between songs.
    """
    return PerAxis(make_pipeline(StandardScaler(), PCA(components, random_state=0),
                                 SVR(C=c, epsilon=epsilon, gamma=1.0 / n_features)))


def gbm(n_estimators: int = 400, learning_rate: float = 0.03, max_depth: int = 3,
        subsample: float = 0.7, seed: int = 0) -> PerAxis:
    return PerAxis(GradientBoostingRegressor(
        n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth,
        subsample=subsample, max_features=0.3, random_state=seed))


def hgb(max_iter: int = 300, learning_rate: float = 0.05, seed: int = 0) -> PerAxis:
    """Histogram gradient boosting: trees find the interactions the kernel and the linear
    model miss (with the ridge and the PCA-SVR it added 0.006 valence and 0.006 arousal R²
    on DEAM and 0.02 valence AUC on 4Q, on the same folds), and fit in seconds where
    ``GradientBoostingRegressor`` takes minutes."""
    return PerAxis(HistGradientBoostingRegressor(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=15, min_samples_leaf=20,
        l2_regularization=1.0, random_state=seed))


def average(*names: str) -> Average:
    return Average([(n, CANDIDATES[n]()) for n in names])


def ensemble(n_features: int, *members: str) -> Average:
    """The mean of ``members`` (``ridge``, ``pca-svr``, ``hgb``, ``gbm``) fitted on
    ``n_features`` columns: the regressors every exported model is made of."""
    makers = {"ridge": ridge, "pca-svr": lambda: pca_svr(n_features), "hgb": hgb, "gbm": gbm}
    return Average([(m, makers[m]()) for m in members])


CANDIDATES: dict[str, Callable[[], Any]] = {
    "ridge": ridge,
    "svr": svr,
    "gbm": gbm,
    "hgb": hgb,
    "ridge+svr+gbm": lambda: average("ridge", "svr", "gbm"),
}
