"""Songs labelled by Russell quadrant (the 4Q dataset's kind): reading them, scoring
valence and arousal against them, folds that keep an artist on one side, and pseudo-ratings.

A quadrant label says on which side of neutral a song lies on each axis, not how far:

====  ==================  =======  =======
 Q    mood                valence  arousal
====  ==================  =======  =======
Q1    happy, excited      high     high
Q2    angry, tense        low      high
Q3    sad, depressed      low      low
Q4    calm, tender        high     low
====  ==================  =======  =======

So predictions on the 0-1 scale are scored by ranking, with the ROC AUC of each axis and
the valence AUC within each arousal half (Q1 vs Q2, Q4 vs Q3), where a model that reads
valence off energy scores 0.5; and by the quadrant they fall in at the 0.5 thresholds the
mood words and the web page use (:data:`music2emotion.config.NEUTRAL`).

The labels file is a CSV with a header row. ``song_id`` (the audio file's name without its
extension) and ``quadrant`` (``Q1``-``Q4`` or ``1``-``4``) are required; ``artist``, when
present, groups cross-validation folds so that no artist is on both sides of a fold (a
model would otherwise learn the artist). Other columns are ignored, so the 4Q set's own
``labels.csv`` (with ``valence_high``, ``moods``, ``genres``...) is read as it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from ..config import AUDIO_EXTENSIONS, MOOD_CLASSES, MOOD_COLORS, NEUTRAL, TARGETS
from .data import read_csv_rows

QUADRANTS = (1, 2, 3, 4)
# the quadrants by their number and their one word (config.MOOD_CLASSES), as every picture names them
QUADRANT_NAMES = {q: f"Q{q} {word}" for q, word in enumerate(MOOD_CLASSES, start=1)}
# Which side of neutral each quadrant is on: (valence high, arousal high).
HIGH = {1: (True, True), 2: (False, True), 3: (False, False), 4: (True, False)}
REQUIRED = ("song_id", "quadrant")


def sides(quadrants: Sequence[int] | np.ndarray) -> np.ndarray:
    """``[n, 2]`` booleans: whether each quadrant is on the high side of (valence, arousal)."""
    return np.array([HIGH[int(q)] for q in quadrants], bool).reshape(-1, 2)


@dataclass
class QuadrantSet:
    """Songs with audio and a quadrant label, and the labelled songs without audio."""

    ids: list[str]
    paths: list[Path]
    quadrants: np.ndarray  # [n] int, 1-4
    artists: list[str]  # "" where the file gives none
    labels_without_audio: list[str] = field(default_factory=list)

    @property
    def high(self) -> np.ndarray:
        """``[n, 2]`` booleans: the side of neutral of (valence, arousal)."""
        return sides(self.quadrants)

    def report(self) -> str:
        counts = ", ".join(f"Q{q} {int((self.quadrants == q).sum())}" for q in QUADRANTS)
        artists = len(set(self.artists) - {""})
        return (f"{len(self.ids)} songs with audio and a quadrant ({counts}; {artists} artists); "
                f"{len(self.labels_without_audio)} labelled songs without audio skipped")


def parse_quadrant(text: str) -> int:
    """``"Q1"``..``"Q4"`` or ``"1"``..``"4"`` (any case, spaces ignored) as an int."""
    t = text.strip().upper().removeprefix("Q")
    if t not in {"1", "2", "3", "4"}:
        raise ValueError(f"quadrant must be Q1-Q4, not {text!r}")
    return int(t)


def load_quadrants(labels: str | os.PathLike[str], audio_dir: str | os.PathLike[str] | None = None) -> QuadrantSet:
    """Read a quadrant labels CSV and pair each song with ``<audio_dir>/<song_id>.<ext>``.

    Parameters
    ----------
    labels : str or os.PathLike
        The CSV (see the module's description of its columns).
    audio_dir : str or os.PathLike, optional
        Folder of the audio files; default: ``audio`` beside the labels file.

    Returns
    -------
    QuadrantSet
        Songs in the file's order.

    Raises
    ------
    ValueError
        A required column is missing, a quadrant does not parse, a song is listed twice, or
        no listed song has audio; the message names the file and line.
    """
    labels = Path(labels)
    folder = Path(audio_dir) if audio_dir is not None else labels.parent / "audio"
    audio = {f.stem: f for f in sorted(folder.iterdir()) if f.suffix.lower() in AUDIO_EXTENSIONS} \
        if folder.is_dir() else {}
    ids: list[str] = []
    paths: list[Path] = []
    quadrants: list[int] = []
    artists: list[str] = []
    missing: list[str] = []
    seen: set[str] = set()
    for line, row in read_csv_rows(labels, REQUIRED):
        try:
            sid = row["song_id"]
            quadrant = parse_quadrant(row["quadrant"])
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{labels}, line {line}: {exc}") from exc
        if sid in seen:
            raise ValueError(f"{labels}, line {line}: song {sid} listed twice")
        seen.add(sid)
        if sid not in audio:
            missing.append(sid)
            continue
        ids.append(sid)
        paths.append(audio[sid])
        quadrants.append(quadrant)
        artists.append(row.get("artist", ""))
    if not ids:
        raise ValueError(f"{folder}: no audio file matches a song of {labels}")
    return QuadrantSet(ids, paths, np.array(quadrants, np.int64), artists, missing)


# ---------------------------------------------------------------- scores


def auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean labels ``positive`` (ties count half).

    NaN when one class is empty: there is nothing to rank.
    """
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def quadrant_of(pred: np.ndarray) -> np.ndarray:
    """The quadrant (1-4) that ``[n, 2]`` valence/arousal predictions fall in at 0.5."""
    pred = np.asarray(pred, np.float64).reshape(-1, 2)
    v, a = pred[:, 0] >= NEUTRAL, pred[:, 1] >= NEUTRAL
    return np.where(a, np.where(v, 1, 2), np.where(v, 4, 3))


def confusion(quadrants: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``[4, 4]`` counts: row = labelled quadrant, column = predicted quadrant (Q1..Q4)."""
    out = np.zeros((4, 4), np.int64)
    np.add.at(out, (np.asarray(quadrants) - 1, quadrant_of(pred) - 1), 1)
    return out


def quadrant_scores(quadrants: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Every score of ``[n, 2]`` predictions against quadrant labels.

    Returns
    -------
    dict
        ``valence_auc`` (Q1+Q4 vs Q2+Q3), ``arousal_auc`` (Q1+Q2 vs Q3+Q4),
        ``valence_auc_energetic`` (Q1 vs Q2), ``valence_auc_calm`` (Q4 vs Q3),
        ``quadrant_accuracy``, ``valence_accuracy`` and ``arousal_accuracy`` at
        :data:`NEUTRAL`, ``valence_arousal_r`` (the predictions' own correlation; the
        labels' is about 0 when the quadrants are balanced), ``n`` and ``confusion``.
    """
    q = np.asarray(quadrants, np.int64)
    pred = np.asarray(pred, np.float64).reshape(-1, 2)
    high = sides(q)
    energetic, calm = high[:, 1], ~high[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(pred[:, 0], pred[:, 1])[0, 1] if len(q) > 1 else np.nan
    return {
        "n": int(len(q)),
        "valence_auc": auc(high[:, 0], pred[:, 0]),
        "arousal_auc": auc(high[:, 1], pred[:, 1]),
        "valence_auc_energetic": auc(high[energetic, 0], pred[energetic, 0]),
        "valence_auc_calm": auc(high[calm, 0], pred[calm, 0]),
        "quadrant_accuracy": float((quadrant_of(pred) == q).mean()),
        "valence_accuracy": float(((pred[:, 0] >= NEUTRAL) == high[:, 0]).mean()),
        "arousal_accuracy": float(((pred[:, 1] >= NEUTRAL) == high[:, 1]).mean()),
        "valence_arousal_r": float(r),
        "confusion": confusion(q, pred).tolist(),
    }


# The scores a table shows, in order, with short headings.
TABLE_SCORES = {
    "valence_auc": "V AUC",
    "valence_auc_energetic": "V AUC Q1/Q2",
    "valence_auc_calm": "V AUC Q4/Q3",
    "arousal_auc": "A AUC",
    "quadrant_accuracy": "quadrant acc.",
}


def format_quadrant_scores(scores: dict[str, Any], title: str = "") -> str:
    """A few human-readable lines for :func:`quadrant_scores`' result."""
    head = f"{title} ({scores['n']} songs)" if title else f"{scores['n']} songs"
    lines = [head, "  " + "  ".join(f"{label} {scores[k]:.3f}" for k, label in TABLE_SCORES.items())
             + f"  V-A r {scores['valence_arousal_r']:.3f}"]
    lines.append("  confusion (rows: labelled Q1-Q4, columns: predicted Q1-Q4): "
                 + " | ".join(" ".join(f"{c:3d}" for c in row) for row in scores["confusion"]))
    return "\n".join(lines)


def independence(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """How much of a model's valence is its own, on songs rated on both axes (DEAM).

    Returns
    -------
    dict
        ``pred_valence_arousal_r``: the correlation of predicted valence with predicted
        arousal; ``true_valence_arousal_r``: the labels' own (a model whose figure is far
        above it reads valence off arousal); ``partial_valence_r``: the partial correlation
        of predicted with true valence, true arousal held fixed (what the model knows of
        valence beyond energy).
    """
    t = np.asarray(y_true, np.float64)
    p = np.asarray(y_pred, np.float64)
    r = np.corrcoef(np.column_stack([p[:, 0], t[:, 0], t[:, 1]]).T)
    r_pt, r_pa, r_ta = r[0, 1], r[0, 2], r[1, 2]
    partial = (r_pt - r_pa * r_ta) / np.sqrt((1 - r_pa**2) * (1 - r_ta**2))
    return {"pred_valence_arousal_r": float(np.corrcoef(p[:, 0], p[:, 1])[0, 1]),
            "true_valence_arousal_r": float(r_ta), "partial_valence_r": float(partial)}


# ---------------------------------------------------------------- folds and targets


def grouped_folds(strata: Sequence[Any], groups: Sequence[str], folds: int = 5, seed: int = 42) -> list[np.ndarray]:
    """Seeded folds of row numbers, balanced by ``strata`` as far as the rarest stratum
    allows, that never split a group (an artist).

    Raises
    ------
    ValueError
        Fewer than 2 folds, or fewer groups than folds.
    """
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    if folds < 2:
        raise ValueError("folds must be at least 2")
    if len(set(groups)) < folds:
        raise ValueError(f"{folds} folds asked for, but only {len(set(groups))} artists")
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # a stratum with fewer songs than folds leaves some folds without it: scikit-learn
        # warns, but every fold is still valid, and the per-half AUCs say NaN where a fold
        # lacks a side
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        return [np.sort(test) for _, test in split.split(np.zeros(len(groups)), np.asarray(strata), list(groups))]


def group_folds(data: QuadrantSet, folds: int = 5, seed: int = 42) -> list[list[str]]:
    """Seeded folds of song ids, balanced by quadrant, that never split an artist
    (:func:`grouped_folds`). Songs without an artist are their own group."""
    groups = [a or f"\0{sid}" for a, sid in zip(data.artists, data.ids)]
    return [sorted(data.ids[i] for i in test) for test in grouped_folds(data.quadrants, groups, folds, seed)]


def pseudo_ratings(quadrants: np.ndarray, margin: Sequence[float]) -> np.ndarray:
    """``[n, 2]`` targets on the 0-1 scale for quadrant-labelled songs: ``0.5 ± margin``
    per axis, on the side the quadrant names (what a regressor fitted beside DEAM's ratings
    is asked to predict for them)."""
    high = sides(quadrants)
    return NEUTRAL + np.where(high, 1.0, -1.0) * np.asarray(margin, np.float64)


class QuadrantLogistic:
    """Baseline: a logistic regression per axis fitted on quadrant songs alone (none of
    DEAM's ratings), whose probability of the high side stands for the value, so 0.5 is its
    threshold too. ``columns`` picks the features (default: all)."""

    def __init__(self, columns: np.ndarray | None = None, c: float = 0.01):
        self.columns, self.c = columns, c

    def _x(self, x: np.ndarray) -> np.ndarray:
        return x if self.columns is None else x[:, self.columns]

    def fit(self, x: np.ndarray, y: np.ndarray, xq: np.ndarray, quadrants: np.ndarray) -> QuadrantLogistic:
        """Fit on the quadrant songs ``xq``; the rated songs ``x``, ``y`` are not used."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        high = sides(quadrants)
        self.models_ = [make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=5000))
                        .fit(self._x(xq), high[:, j]) for j in range(2)]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([m.predict_proba(self._x(x))[:, 1] for m in self.models_])


# ---------------------------------------------------------------- picture


def _plane(ax: Any, q: np.ndarray, pred: np.ndarray, title: str = "", xlabel: str = f"predicted {TARGETS[0]}",
           ylabel: str = f"predicted {TARGETS[1]}") -> None:
    """Songs on the 0-1 plane, coloured by their labelled quadrant, cut at 0.5."""
    for k in QUADRANTS:
        m = q == k
        ax.scatter(pred[m, 0], pred[m, 1], s=10, alpha=0.6, color=MOOD_COLORS[MOOD_CLASSES[k - 1]], label=QUADRANT_NAMES[k])
    ax.axvline(NEUTRAL, color="black", lw=0.7)
    ax.axhline(NEUTRAL, color="black", lw=0.7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)


def two_planes_plot(quadrants: np.ndarray, unit: np.ndarray, deam: np.ndarray,
                    out: str | os.PathLike[str]) -> Path:
    """The same quadrant-labelled songs on both planes: the one answer's and DEAM's
    convention, each with its quadrant accuracy and valence AUC."""
    from matplotlib.figure import Figure

    q = np.asarray(quadrants)
    fig = Figure(figsize=(10.5, 5.2))
    for ax, pred, name in zip(fig.subplots(1, 2), (unit, deam), ("the one answer (default)",
                                                                 "DEAM's convention (--scale deam)")):
        pred = np.asarray(pred, np.float64).reshape(-1, 2)
        s = quadrant_scores(q, pred)
        _plane(ax, q, pred, f"{name}\nvalence AUC {s['valence_auc']:.3f}, tender vs sad "
                            f"{s['valence_auc_calm']:.3f}, quadrant right {s['quadrant_accuracy']:.3f}")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def quadrant_plot(quadrants: np.ndarray, pred: np.ndarray, out: str | os.PathLike[str],
                  title: str = "") -> Path:
    """The valence-arousal plane coloured by labelled quadrant, beside the confusion matrix.

    Drawn on a :class:`matplotlib.figure.Figure`, so the caller's backend is left alone.
    """
    from matplotlib.figure import Figure

    q = np.asarray(quadrants)
    pred = np.asarray(pred, np.float64).reshape(-1, 2)
    fig = Figure(figsize=(10.5, 4.8))
    ax, cm_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    _plane(ax, q, pred)
    cm = confusion(q, pred)
    cm_ax.imshow(cm, cmap="Blues")
    for i in range(4):
        for j in range(4):
            cm_ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                       color="white" if cm[i, j] > cm.max() / 2 else "black")
    ticks = [f"Q{k}" for k in QUADRANTS]
    cm_ax.set_xticks(range(4), ticks)
    cm_ax.set_yticks(range(4), ticks)
    cm_ax.set_xlabel("predicted quadrant")
    cm_ax.set_ylabel("labelled quadrant")
    acc = float(np.trace(cm) / max(cm.sum(), 1))
    cm_ax.set_title(f"quadrant accuracy {acc:.3f}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out
