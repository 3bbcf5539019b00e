"""Regressors over :mod:`music2emotion.descriptors` (training side; needs scikit-learn).

Each candidate is a factory returning an unfitted estimator with ``fit(X, y[n, 2])`` and
``predict(X) -> [n, 2]``, built only from estimators skl2onnx converts (standard scaling,
ridge, RBF SVR, gradient boosting, averaging), so whichever wins ships as ONNX and runs
without scikit-learn. Hyper-parameters were chosen on the cross-validation fold mean (see
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
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR


class Average(BaseEstimator, RegressorMixin):
    """The mean of several regressors' ``[n, 2]`` predictions (optionally weighted)."""

    def __init__(self, members: list[tuple[str, Any]], weights: list[float] | None = None):
        self.members = members
        self.weights = weights

    def fit(self, x: np.ndarray, y: np.ndarray) -> Average:
        self.fitted_ = [(name, clone(est).fit(x, y)) for name, est in self.members]
        return self

    def _w(self) -> np.ndarray:
        w = np.ones(len(self.members)) if self.weights is None else np.asarray(self.weights, float)
        return w / w.sum()

    def predict(self, x: np.ndarray) -> np.ndarray:
        preds = np.stack([est.predict(x) for _, est in self.fitted_])
        return np.tensordot(self._w(), preds, axes=1)


def ridge(alpha: float = 300.0) -> Pipeline:
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def svr(c: float = 0.3, epsilon: float = 0.02, gamma: str | float = "scale") -> Pipeline:
    return make_pipeline(StandardScaler(), MultiOutputRegressor(SVR(C=c, epsilon=epsilon, gamma=gamma)))


def pca_svr(n_features: int, components: int = 64, c: float = 0.3, epsilon: float = 0.02) -> Pipeline:
    """RBF SVR on the first ``components`` principal components of the standardised features.

    An SVR keeps (nearly) every training song as a support vector; in 64 dimensions instead
    of several hundred its exported size drops about tenfold for the same fold-mean R². The
    kernel width stays that of the full standardised input (gamma = 1 / n_features), since
    the leading components keep most of the distances between songs.
    """
    return make_pipeline(StandardScaler(), PCA(components, random_state=0),
                         MultiOutputRegressor(SVR(C=c, epsilon=epsilon, gamma=1.0 / n_features)))


def gbm(n_estimators: int = 400, learning_rate: float = 0.03, max_depth: int = 3,
        subsample: float = 0.7, seed: int = 0) -> MultiOutputRegressor:
    return MultiOutputRegressor(GradientBoostingRegressor(
        n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth,
        subsample=subsample, max_features=0.3, random_state=seed))


def hgb(max_iter: int = 400, learning_rate: float = 0.03, seed: int = 0) -> MultiOutputRegressor:
    return MultiOutputRegressor(HistGradientBoostingRegressor(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=15, min_samples_leaf=20,
        l2_regularization=1.0, random_state=seed))


def average(*names: str) -> Average:
    return Average([(n, CANDIDATES[n]()) for n in names])


CANDIDATES: dict[str, Callable[[], Any]] = {
    "ridge": ridge,
    "svr": svr,
    "gbm": gbm,
    "hgb": hgb,
    "ridge+svr+gbm": lambda: average("ridge", "svr", "gbm"),
}
