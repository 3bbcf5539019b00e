"""The quadrant head's calibration and the conformal intervals (training side), on synthetic data
whose true probabilities and residuals are known."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from music2emotion.training import calibration as cal  # noqa: E402


def _labels(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quadrants 1-4 drawn from each row's probabilities."""
    return 1 + (rng.random((len(p), 1)) > np.cumsum(p, 1)).sum(1)


def test_calibration_error_tells_overconfident_probabilities():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6000, 4)) * 2.0
    q = _labels(cal.softmax(z / 2.0), rng)  # the truth is twice as unsure as the logits say
    assert cal.expected_calibration_error(cal.softmax(z), q) > 0.1
    assert cal.expected_calibration_error(cal.softmax(z / 2.0), q) < 0.03


def test_log_loss_of_the_prior_is_log_4():
    q = np.array([1, 2, 3, 4] * 10)
    assert cal.log_loss(q, np.full((40, 4), 0.25)) == pytest.approx(np.log(4))


def test_conformal_half_width_covers_new_residuals():
    """The guarantee is on average over calibration sets: at least 0.9, and not much more."""
    rng = np.random.default_rng(1)
    new = np.abs(rng.standard_normal(20000))
    covered = [(new <= cal.conformal_half_width(rng.standard_normal(200), 0.9)).mean() for _ in range(100)]
    assert 0.895 <= np.mean(covered) <= 0.92
    assert cal.conformal_half_width([0.1, 0.2, 0.3], 0.9) == 0.3  # too few: the largest


def test_mood_head_learns_separable_quadrants():
    rng = np.random.default_rng(3)
    centres = np.array([[2, 2], [-2, 2], [-2, -2], [2, -2]], float)
    q = np.repeat([1, 2, 3, 4], 60)
    x = np.hstack([centres[q - 1] + rng.standard_normal((240, 2)), rng.standard_normal((240, 3))])
    train, test = np.arange(240) % 4 != 0, np.arange(240) % 4 == 0
    head = cal.MoodHead(np.arange(2), c=1.0).fit(x[train], q[train])
    p = head.predict_proba(x[test])
    assert np.allclose(p.sum(1), 1) and (p.argmax(1) + 1 == q[test]).mean() > 0.9
    assert cal.log_loss(q[test], p) < np.log(4) / 3
    with pytest.raises(ValueError, match="all four quadrants"):
        cal.MoodHead(np.arange(2)).fit(x[q < 4], q[q < 4])
