"""One answer per song (training side): the values every bundled model reports, their
calibration, and DEAM's convention beside them.

**The unit scale's values are the quadrant head's.** A multinomial logistic regression on
4Q's quadrants (:class:`~music2emotion.training.calibration.MoodHead`) gives four logits
``z``; the head's valence is the log-odds of the two pleasant quadrants against the two
unpleasant ones, ``logsumexp(z_happy, z_tender) - logsumexp(z_angry, z_sad)``, and its arousal
the log-odds of the two energetic ones. Reading valence within each arousal half in this way
(happy against angry, tender against sad) is what a plain logistic regression per axis
cannot do: on the artist-grouped 4Q folds it scored 0.852 valence AUC against 0.836. Both
log-odds are put on DEAM's scale by one factor (:attr:`Answer.scale`), the slope of DEAM's
arousal ratings on the arousal log-odds, and centred on 0.5, where the head is even:

    valence = 0.5 + k (logsumexp(z_h, z_t) - logsumexp(z_a, z_s)), arousal alike.

DEAM's valence is not fitted into these values. Its ratings follow energy (r = 0.56 with
arousal), and what is left of them once arousal is held fixed is all but unrelated to what
4Q calls valence (partial r 0.07 on out-of-fold predictions): every share of DEAM's valence a
joint fit took cost 4Q valence AUC (MODEL_CARD.md has the figures).

**DEAM's convention is an output of its own**: the regressors fitted on DEAM's ratings alone,
read as what DEAM's panel would rate. Its relation to the one answer is reported
(:func:`deam_relation`: DEAM's valence ~ c + beta (arousal - 0.5) + the answer's valence).

**Everything else derives from a scale's two values** (:mod:`music2emotion.prediction`): the
quadrant probabilities from a logistic distribution whose spread per axis is fitted here on
out-of-fold values (:func:`fit_spread`; 4Q's quadrants for the unit scale, the side of 0.5
of DEAM's ratings for DEAM's), and split-conformal intervals on DEAM's ratings
(:func:`~music2emotion.training.calibration.conformal_half_width`): arousal against DEAM's
arousal, the unit valence against DEAM's valence with its energy taken out by the relation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import NEUTRAL, TARGETS
from ..modelfile import INTERVALS_KEY, SPREAD_KEY
from ..prediction import quadrant_probabilities
from .calibration import MoodHead, conformal_half_width, expected_calibration_error, log_loss

# Which of the head's four logits (Q1 happy, Q2 angry, Q3 sad, Q4 tender) are each axis's
# high side, and which its low side.
HIGH_SIDE = {"valence": (0, 3), "arousal": (0, 1)}
LOW_SIDE = {"valence": (1, 2), "arousal": (2, 3)}


def _logsumexp(z: np.ndarray, cols: Sequence[int]) -> np.ndarray:
    part = z[:, list(cols)]
    top = part.max(1, keepdims=True)
    return (top + np.log(np.exp(part - top).sum(1, keepdims=True)))[:, 0]


def quadrant_margins(logits: np.ndarray) -> np.ndarray:
    """``[n, 2]`` log-odds of the high side of valence and of arousal, from ``[n, 4]``
    quadrant logits."""
    z = np.asarray(logits, np.float64)
    return np.column_stack([_logsumexp(z, HIGH_SIDE[t]) - _logsumexp(z, LOW_SIDE[t]) for t in TARGETS])


def deam_scale(margins: np.ndarray, arousal: np.ndarray) -> float:
    """The factor that puts log-odds on DEAM's scale: the least-squares slope of DEAM's
    arousal ratings on the arousal log-odds (with an intercept, which the answer drops: its
    0.5 stays where the head is even)."""
    m = np.asarray(margins, np.float64)[:, 1]
    return float(np.polyfit(m, np.asarray(arousal, np.float64), 1)[0])


def margin_values(margins: np.ndarray, scale: float) -> np.ndarray:
    """Values on the 0-1 scale from log-odds ``margins``: 0.5 plus ``scale`` times them,
    clipped as inference clips them."""
    return np.clip(NEUTRAL + scale * margins, 0.0, 1.0)


class Answer:
    """The unit scale's valence and arousal: a quadrant head's log-odds on DEAM's scale.

    Parameters
    ----------
    columns : numpy.ndarray, or a sequence of them
        The feature columns the head reads; several groups make several heads, each on its
        own group, whose logits are averaged (each ear its own head).
    c : float
        The heads' inverse L2 strength (scikit-learn's ``C``).
    """

    def __init__(self, columns: np.ndarray | Sequence[np.ndarray], c: float):
        groups = [columns] if isinstance(columns, np.ndarray) else list(columns)
        self.heads = [MoodHead(g, c) for g in groups]
        self.scale = 1.0

    def fit(self, xq: np.ndarray, quadrants: np.ndarray) -> Answer:
        """Fit the heads on quadrant-labelled rows (the scale is set apart: :func:`deam_scale`)."""
        for head in self.heads:
            head.fit(xq, quadrants)
        return self

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``[n, 4]`` quadrant logits: the heads' mean."""
        return np.mean([head.logits(x) for head in self.heads], axis=0)

    def margins(self, x: np.ndarray) -> np.ndarray:
        return quadrant_margins(self.logits(x))

    def values(self, x: np.ndarray) -> np.ndarray:
        """``[n, 2]`` valence and arousal, 0-1 (clipped as inference clips them)."""
        return margin_values(self.margins(x), self.scale)

    def onnx_nodes(self, features: str, output: str, prefix: str = "answer_") -> tuple[list[Any], list[Any]]:
        """Nodes and constants computing ``output [n, 2]`` from ``features [n, F]``: each
        head's logits (the scaler folded into one Gemm) and their mean, each axis's log-odds
        as a difference of two ReduceLogSumExp, times the scale, plus 0.5."""
        from onnx import TensorProto, helper

        if len(self.heads) == 1:
            nodes, inits = self.heads[0].logit_nodes(features, f"{prefix}z", prefix)
        else:
            nodes, inits = [], [helper.make_tensor(f"{prefix}inv_heads", TensorProto.FLOAT, [], [1 / len(self.heads)])]
            for k, head in enumerate(self.heads):
                head_nodes, head_inits = head.logit_nodes(features, f"{prefix}z{k}", f"{prefix}h{k}_")
                nodes += head_nodes
                inits += head_inits
            nodes += [helper.make_node("Sum", [f"{prefix}z{k}" for k in range(len(self.heads))], [f"{prefix}zsum"]),
                      helper.make_node("Mul", [f"{prefix}zsum", f"{prefix}inv_heads"], [f"{prefix}z"])]
        inits += [helper.make_tensor(f"{prefix}scale", TensorProto.FLOAT, [], [self.scale]),
                  helper.make_tensor(f"{prefix}centre", TensorProto.FLOAT, [], [NEUTRAL])]
        margins = []
        for axis in TARGETS:
            for side, cols in (("high", HIGH_SIDE[axis]), ("low", LOW_SIDE[axis])):
                name = f"{prefix}{axis}_{side}"
                inits.append(helper.make_tensor(f"{name}_cols", TensorProto.INT64, [2], list(cols)))
                nodes += [helper.make_node("Gather", [f"{prefix}z", f"{name}_cols"], [f"{name}_z"], axis=1),
                          helper.make_node("ReduceLogSumExp", [f"{name}_z"], [name], axes=[1], keepdims=1)]
            nodes.append(helper.make_node("Sub", [f"{prefix}{axis}_high", f"{prefix}{axis}_low"],
                                          [f"{prefix}{axis}_margin"]))
            margins.append(f"{prefix}{axis}_margin")
        nodes += [helper.make_node("Concat", margins, [f"{prefix}margins"], axis=1),
                  helper.make_node("Mul", [f"{prefix}margins", f"{prefix}scale"], [f"{prefix}scaled"]),
                  helper.make_node("Add", [f"{prefix}scaled", f"{prefix}centre"], [output])]
        return nodes, inits


# ---------------------------------------------------------------- calibration


# The narrowest spread a scale is given. Songs whose values separate their labels perfectly
# (a small, easy training set) would drive it to 0; at 0.005 a value 0.02 from the middle
# already says 98 %, and exp() of the furthest value, 0.5 / 0.005, stays finite.
MIN_SPREAD = 0.005


def fit_spread(values: np.ndarray, high: np.ndarray) -> float:
    """The scale ``s`` of the logistic distribution centred on ``values`` whose mass above
    0.5, ``1 / (1 + exp(-(v - 0.5) / s))``, best predicts ``high`` (maximum likelihood)."""
    from scipy.optimize import minimize_scalar

    v, h = np.asarray(values, np.float64) - NEUTRAL, np.asarray(high, bool)

    def loss(s: float) -> float:
        z = v / s
        return float(np.mean(np.logaddexp(0.0, np.where(h, -z, z))))

    return float(minimize_scalar(loss, bounds=(MIN_SPREAD, 1.0), method="bounded", options={"xatol": 1e-7}).x)


def probabilities(values: np.ndarray, spread: Sequence[float]) -> np.ndarray:
    """``[n, 4]`` quadrant probabilities of ``[n, 2]`` values, as inference derives them."""
    return np.array([quadrant_probabilities(v, a, tuple(spread)) for v, a in np.asarray(values, np.float64)])


def deam_relation(y: np.ndarray, valence: np.ndarray) -> tuple[float, float]:
    """``(beta, c)`` of DEAM's valence ~ ``valence + beta (arousal - 0.5) + c`` (least
    squares, ``arousal`` DEAM's own ratings): how much energy DEAM's panel puts into valence."""
    y = np.asarray(y, np.float64)
    a = np.column_stack([y[:, 1] - NEUTRAL, np.ones(len(y))])
    beta, c = np.linalg.lstsq(a, y[:, 0] - np.asarray(valence, np.float64), rcond=None)[0]
    return float(beta), float(c)


def answer_targets(y: np.ndarray, relation: tuple[float, float]) -> np.ndarray:
    """DEAM's ratings in the unit scale's terms: valence with the panel's energy taken out by
    the relation, arousal as rated."""
    beta, c = relation
    y = np.asarray(y, np.float64)
    return np.column_stack([y[:, 0] - beta * (y[:, 1] - NEUTRAL) - c, y[:, 1]])


def convention(output: str, spread: Sequence[float], half_widths: Sequence[float], coverage: float,
               method: str, **about: Any) -> dict[str, Any]:
    """A scale's entry in the model file's ``conventions`` metadata."""
    return {"output": output, SPREAD_KEY: {t: round(float(s), 6) for t, s in zip(TARGETS, spread)},
            INTERVALS_KEY: {**{t: round(float(h), 6) for t, h in zip(TARGETS, half_widths)},
                            "coverage": coverage, "method": method}, **about}


def cross_fit(values: np.ndarray, truth_high: np.ndarray, residuals: np.ndarray | None,
              folds: Sequence[np.ndarray], residual_folds: Sequence[np.ndarray] | None, coverage: float,
              quadrants: np.ndarray | None = None) -> dict[str, Any]:
    """Out-of-fold calibration figures of one scale: each fold's spreads from the other
    folds' values (``values`` ``[n, 2]`` against ``truth_high`` ``[n, 2]``), its half-widths
    from the other folds' ``residuals`` (``[m, 2]``, rated songs, split by
    ``residual_folds``), tried on its own songs; then the spreads and half-widths from every
    song. Without ``residuals`` (no ratings) there are no intervals.

    Returns
    -------
    dict
        ``spread``, ``half_width`` (per axis, from all songs; ``None`` without residuals),
        ``coverage`` and ``coverage_folds`` (held out; ``None`` without residuals),
        ``probabilities`` ``[n, 4]`` (out of fold), and with ``quadrants`` (1-4 of the
        ``values``' songs): ``accuracy``, ``log_loss``, ``ece``.
    """
    values, high = (np.asarray(a, np.float64) for a in (values, truth_high))
    res = None if residuals is None else np.asarray(residuals, np.float64)
    p = np.zeros((len(values), 4))
    hits = []
    for k, test in enumerate(folds):
        others = np.setdiff1d(np.arange(len(values)), test)
        spread = [fit_spread(values[others, j], high[others, j]) for j in range(2)]
        p[test] = probabilities(values[test], spread)
        if res is not None:
            r_test = residual_folds[k]  # type: ignore[index]
            r_others = np.setdiff1d(np.arange(len(res)), r_test)
            half = [conformal_half_width(res[r_others, j], coverage) for j in range(2)]
            hits.append([float((np.abs(res[r_test, j]) <= half[j]).mean()) for j in range(2)])
    out: dict[str, Any] = {
        "spread": [fit_spread(values[:, j], high[:, j]) for j in range(2)],
        "half_width": None if res is None else [conformal_half_width(res[:, j], coverage) for j in range(2)],
        "coverage": np.mean(hits, 0).tolist() if hits else None, "coverage_folds": hits or None,
        "probabilities": p}
    if quadrants is not None:
        q = np.asarray(quadrants)
        out.update(accuracy=float((p.argmax(1) + 1 == q).mean()), log_loss=log_loss(q, p),
                   ece=expected_calibration_error(p, q))
    return out
