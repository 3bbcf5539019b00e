"""Values you can trust: a calibrated quadrant head and conformal intervals (training side).

- :class:`MoodHead`: the logits of Russell's four quadrants (happy, angry/tense, sad,
  calm/tender) from a window's features: a multinomial logistic regression on standardised
  features, fitted on quadrant-labelled songs; the one answer
  (:class:`~music2emotion.training.answer.Answer`) reads its log-odds, and its ONNX form is
  two plain operators (:meth:`MoodHead.logit_nodes`), so it travels inside the model file.
- :func:`expected_calibration_error` and :func:`reliability_plot` measure whether a
  probability of 0.7 is right about 70 % of the time.
- :func:`conformal_half_width`: split-conformal intervals (Vovk et al. 2005; Lei et al.
  2018): the ``ceil((n + 1) q) / n`` quantile of absolute out-of-fold residuals, which covers
  a new song from the same distribution with probability at least ``q``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .quadrants import QUADRANTS


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def log_loss(quadrants: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of quadrant labels (1-4) under probabilities ``[n, 4]``."""
    idx = np.asarray(quadrants, np.int64) - 1
    return float(-np.log(np.clip(p[np.arange(len(idx)), idx], 1e-12, 1.0)).mean())


class MoodHead:
    """Quadrant logits from features: standardise, multinomial logistic regression (``C``:
    inverse L2 strength).

    Parameters
    ----------
    columns : numpy.ndarray
        The feature columns it reads.
    c : float
        scikit-learn's ``C``; 0.005 was best on the artist-grouped 4Q folds (MODEL_CARD.md).
    """

    def __init__(self, columns: np.ndarray, c: float = 0.005):
        self.columns, self.c = np.asarray(columns), c

    def fit(self, x: np.ndarray, quadrants: np.ndarray) -> MoodHead:
        """Fit on rows of ``x`` labelled by quadrant (1-4)."""
        from sklearn.linear_model import LogisticRegression

        xs = x[:, self.columns].astype(np.float64)
        self.mean_ = xs.mean(0)
        self.scale_ = xs.std(0)
        self.scale_[self.scale_ < 1e-12] = 1.0  # a constant column (StandardScaler's rule)
        lr = LogisticRegression(C=self.c, max_iter=5000).fit((xs - self.mean_) / self.scale_, quadrants)
        if list(lr.classes_) != list(QUADRANTS):
            raise ValueError(f"the quadrant head needs songs of all four quadrants, got {list(lr.classes_)}")
        self.coef_, self.intercept_ = lr.coef_, lr.intercept_
        return self

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x[:, self.columns] - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``[n, 4]`` probabilities of Q1-Q4, the logistic regression's own."""
        return softmax(self.logits(x))

    def logit_nodes(self, features: str, output: str, prefix: str) -> tuple[list[Any], list[Any]]:
        """Nodes and constants computing the logits ``output [n, 4]`` from ``features [n, F]``:
        the columns, then the scaler and the logistic regression folded into one Gemm."""
        from onnx import TensorProto, helper

        w = (self.coef_ / self.scale_[None, :]).astype(np.float32)
        b = (self.intercept_ - self.coef_ @ (self.mean_ / self.scale_)).astype(np.float32)
        inits = [helper.make_tensor(f"{prefix}columns", TensorProto.INT64, [len(self.columns)],
                                    self.columns.astype(np.int64).tolist()),
                 helper.make_tensor(f"{prefix}w", TensorProto.FLOAT, list(w.shape), w.ravel().tolist()),
                 helper.make_tensor(f"{prefix}b", TensorProto.FLOAT, [len(b)], b.tolist())]
        nodes = [helper.make_node("Gather", [features, f"{prefix}columns"], [f"{prefix}x"], axis=1),
                 helper.make_node("Gemm", [f"{prefix}x", f"{prefix}w", f"{prefix}b"], [output], transB=1)]
        return nodes, inits


def _binned(p: np.ndarray, quadrants: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each song's highest probability, whether its quadrant is that one, and which of
    ``bins`` equal-width bins of probability it falls in."""
    conf = p.max(1)
    right = p.argmax(1) + 1 == np.asarray(quadrants)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return conf, right, np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)


def expected_calibration_error(p: np.ndarray, quadrants: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE: over ``bins`` equal-width bins of the highest probability, the
    song-weighted mean gap between that probability and how often its quadrant is right."""
    conf, right, which = _binned(p, quadrants, bins)
    return float(sum(abs(right[which == b].mean() - conf[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if np.any(which == b)))


def reliability_plot(p: np.ndarray, quadrants: np.ndarray, out: str | os.PathLike[str], title: str,
                     bins: int = 10) -> Path:
    """How often the top quadrant is right against its probability, per bin, with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf, right, which = _binned(p, quadrants, bins)
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=120)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly calibrated")
    used = [b for b in range(bins) if np.any(which == b)]
    ax.plot([conf[which == b].mean() for b in used], [right[which == b].mean() for b in used], "o-",
            color="#3b6fb6", label="out of fold")
    for b in used:
        ax.annotate(str(int((which == b).sum())), (conf[which == b].mean(), right[which == b].mean()),
                    textcoords="offset points", xytext=(4, -10), fontsize=7, color="0.35")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="probability of the most likely quadrant",
           ylabel="how often that quadrant is right",
           title=f"{title}\nECE {expected_calibration_error(p, quadrants, bins):.3f}")
    ax.title.set_fontsize(9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def conformal_half_width(residuals: Sequence[float] | np.ndarray, coverage: float = 0.9) -> float:
    """The split-conformal half-width for ``coverage`` from absolute residuals."""
    r = np.sort(np.abs(np.asarray(residuals, np.float64)))
    k = math.ceil((len(r) + 1) * coverage)
    return float(r[min(k, len(r)) - 1])
