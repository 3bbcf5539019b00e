"""``music2emotion train``: a model of the shipped kind from labels of any kind, with the
figures of its cross-validation.

**What a model carries follows from the labels it was given** (docs/train-your-own.md
states the rule):

- **the one answer** (the model's ``output``): with moods, the quadrant head's log-odds
  (:class:`~music2emotion.training.answer.Answer`), put on the ratings' arousal scale when
  there are ratings too, else scaled so that the training songs' values spread like DEAM's
  ratings (:data:`VALUES_SD_WITHOUT_RATINGS`); with ratings only, regressors fitted on the
  ratings, so the answer is the ratings' own convention;
- **the ratings' convention** beside it (``deam``, shown with ``--scale deam``): regressors
  on the ratings, when there are ratings and moods;
- **moods** (the word and the four probabilities) always: they derive from the values, with
  a spread per axis fitted out of fold, against the moods given, or the side of the middle
  of the scale the ratings lie on;
- **intervals** only with ratings: conformal half-widths of out-of-fold residuals.

**Every window of every file teaches**: the heads are fitted on window rows (each labelled
as its song), and a song's out-of-fold values are the time-weighted mean of its windows', as
inference computes them (:func:`~music2emotion.prediction.time_weighted_mean`).

**Honest figures**: k folds of songs, grouped by artist where known and balanced by mood,
give per fold the figures that fit the labels given; the spreads and half-widths are
fitted out of fold as well. The model that is written is then fitted on every song.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..config import MOOD_CLASSES, NEUTRAL, TARGETS
from ..modelfile import CONVENTIONS_KEY, DEAM_OUTPUT, OUTPUT
from ..music import ENCODER_WIDTH, heard, not_music
from ..prediction import time_weighted_mean, time_weights
from . import answer as ans
from . import metrics
from . import regressors as rg
from .arches import Arch
from .evaluate import mean_std
from .features import FileRows, file_rows
from .graph import AUDIOSET_SOURCE, FEATURES, MUSICNN_SOURCE, Layout, column_nodes, regressor_nodes, save_model
from .labels import Labels, LabelError, check_enough
from .quadrants import grouped_folds, quadrant_of, quadrant_scores, sides
from .report import FIGURES, write_report

# The file a run writes its model to, beside report.json and report.md.
MODEL_NAME = "emotion_model.onnx"
# The intervals cover 90 % of held-out ratings.
COVERAGE = 0.9
# Without ratings nothing says how far from the middle a song's values lie, only on which
# side; the head's log-odds are then scaled so the training songs' values have the standard
# deviation of DEAM's ratings on the 0-1 scale (valence 1.2 / 8, arousal 1.3 / 8), so that
# values read alike across models. The probabilities do not depend on it: their spread is
# fitted on the same scale.
VALUES_SD_WITHOUT_RATINGS = 0.15
UNIT_METHOD = ("split-conformal: the 90 % quantile of absolute out-of-fold residuals on the ratings, arousal "
               "as rated, valence with the raters' energy taken out (valence - beta (arousal - 0.5) - c)")
RATINGS_METHOD = "split-conformal: the 90 % quantile of absolute out-of-fold residuals on the ratings, per axis"


@dataclass
class Corpus:
    """The songs a model learns from, as window rows.

    Attributes
    ----------
    labels : Labels
        The songs (those whose audio decoded).
    x : numpy.ndarray
        ``[windows, F]`` feature rows.
    song : numpy.ndarray
        ``[windows]`` the song each row belongs to.
    spans : numpy.ndarray
        ``[windows, 2]`` each window's start and end.
    warnings : list of str
        ``"path: warning"`` for the songs kept with one (damaged stretches, not music).
    """

    labels: Labels
    x: np.ndarray
    song: np.ndarray
    spans: np.ndarray
    warnings: list[str] = field(default_factory=list)

    @property
    def moods(self) -> np.ndarray:
        return self.labels.moods

    @property
    def ratings(self) -> np.ndarray:
        return self.labels.ratings

    @property
    def n(self) -> int:
        return len(self.labels.songs)

    def subset(self, songs: np.ndarray) -> Corpus:
        """The corpus of ``songs`` (song numbers), renumbered in that order."""
        songs = np.asarray(songs)
        rows = np.concatenate([np.flatnonzero(self.song == s) for s in songs])
        renumber = np.zeros(self.n, np.int64)
        renumber[songs] = np.arange(len(songs))
        return Corpus(Labels([self.labels.songs[i] for i in songs], scales=self.labels.scales), self.x[rows],
                      renumber[self.song[rows]], self.spans[rows])

    def rows_of(self, songs: np.ndarray) -> np.ndarray:
        """The window rows of ``songs`` (song numbers)."""
        return np.flatnonzero(np.isin(self.song, songs))

    def song_means(self, values: np.ndarray, rows: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """``[len(songs), k]``: the time-weighted mean of ``values`` (one row per window of
        ``rows``) over each song's windows, as inference makes a song's values."""
        values = np.asarray(values, np.float64).reshape(len(rows), -1)
        owner = self.song[rows]
        out = np.zeros((len(songs), values.shape[1]))
        for i, s in enumerate(songs):
            mine = owner == s
            out[i] = time_weighted_mean(self.spans[rows[mine], 0], self.spans[rows[mine], 1], values[mine])
        return out


def corpus(labels: Labels, rows: Sequence[FileRows | str], log: Callable[[str], None] = print) -> Corpus:
    """The songs whose features could be computed, with a line for each one skipped.

    Raises
    ------
    LabelError
        Too few songs are left (:func:`~music2emotion.training.labels.check_enough`).
    """
    kept, xs, owner, spans = [], [], [], []
    skipped, warnings = [], []
    for song, r in zip(labels.songs, rows):
        if isinstance(r, str):
            skipped.append(f"{song.path}: {r}")
            continue
        # a feature row begins with the encoder's output, whose logits say whether it is music
        heard_music = not_music(heard(r.x[:, :ENCODER_WIDTH]), time_weights(r.spans[:, 0], r.spans[:, 1]))
        warning = "; ".join(w for w in (r.warning, heard_music) if w)
        if warning:
            warnings.append(f"{song.path}: {warning}")
            log(f"kept {warnings[-1]}")
        owner.append(np.full(len(r.x), len(kept)))
        kept.append(song)
        xs.append(r.x)
        spans.append(r.spans)
    for line in skipped:
        log(f"skipped {line}")
    out = Labels(kept, labels.missing + [f"skipped {s}" for s in skipped], labels.notes, labels.scales)
    if skipped:
        log(f"{len(skipped)} of {len(labels.songs)} labelled file(s) could not be used")
    check_enough(out, "the songs that could be decoded")
    return Corpus(out, np.concatenate(xs), np.concatenate(owner), np.concatenate(spans), warnings)


def song_folds(labels: Labels, k: int, seed: int) -> list[np.ndarray]:
    """``k`` folds of song numbers that keep each artist on one side: the songs with a mood
    split into ``k`` balanced by mood, the songs with ratings alone into ``k`` balanced by
    the quadrant their ratings lie in, and fold i of each held out together, so every fold
    holds its share of both kinds of label. A rated song whose artist has songs with a mood
    goes with them.

    Raises
    ------
    LabelError
        Fewer artists (or songs without one) than folds.
    """
    n = len(labels.songs)
    groups = np.array([s.artist or f"\0{i}" for i, s in enumerate(labels.songs)], dtype=object)
    fold = np.full(n, -1)
    by_mood = np.flatnonzero(labels.moods > 0)
    try:
        if len(by_mood):
            for f, test in enumerate(grouped_folds(labels.moods[by_mood], list(groups[by_mood]), k, seed)):
                fold[by_mood[test]] = f
        fold_of = {groups[i]: fold[i] for i in by_mood}
        rest = np.array([i for i in range(n) if fold[i] < 0 and groups[i] not in fold_of], np.int64)
        for i in range(n):
            if fold[i] < 0 and groups[i] in fold_of:
                fold[i] = fold_of[groups[i]]
        if len(rest):
            g = groups[rest]
            if len(by_mood) and len(set(g)) < k:  # a few rated songs beside many with moods
                order = np.random.default_rng(seed).permutation(sorted(set(g)))
                split = [np.flatnonzero(np.isin(g, order[f::k])) for f in range(k)]
            else:
                split = grouped_folds(quadrant_of(labels.ratings[rest]), list(g), k, seed)
            for f, test in enumerate(split):
                fold[rest[test]] = f
    except ValueError as exc:
        raise LabelError(f"--folds {k}: {exc}") from None
    return [np.flatnonzero(fold == f) for f in range(k)]


class Heads:
    """What a model computes from its feature rows, fitted on some songs of a corpus.

    With moods, ``answer`` (the quadrant head's log-odds) makes the one answer and
    ``regressor``, when there are ratings too, the ratings' convention beside it; with ratings
    only, ``regressor`` makes the one answer.
    """

    def __init__(self, arch: Arch, rows: Layout, with_moods: bool, with_ratings: bool):
        self.arch, self.rows = arch, rows
        self.with_moods, self.with_ratings = with_moods, with_ratings
        self.head_columns = [rows.columns(*group) for group in arch.head_blocks]
        self.ratings_columns = rows.columns(*arch.ratings_blocks)
        self.answer: ans.Answer | None = None
        self.regressor: Any = None

    @property
    def outputs(self) -> tuple[str, ...]:
        """The graph outputs: the one answer, and the ratings' convention beside it."""
        return (OUTPUT, DEAM_OUTPUT) if self.with_moods and self.with_ratings else (OUTPUT,)

    @property
    def ratings_output(self) -> str | None:
        """The output that holds the ratings' convention (``None`` without ratings)."""
        return None if not self.with_ratings else self.outputs[-1]

    def fit(self, c: Corpus, songs: np.ndarray) -> Heads:
        """Fit on the windows of ``songs`` (song numbers)."""
        mood_songs = songs[c.moods[songs] > 0]
        rated = songs[~np.isnan(c.ratings[songs, 0])]
        if self.with_moods:
            rows = c.rows_of(mood_songs)
            self.answer = ans.Answer(self.head_columns, self.arch.head_c).fit(c.x[rows], c.moods[c.song[rows]])
            if self.with_ratings:
                r_rows = c.rows_of(rated)
                margins = c.song_means(self.answer.margins(c.x[r_rows]), r_rows, rated)
                self.answer.scale = ans.deam_scale(margins, c.ratings[rated, 1])
            else:
                margins = c.song_means(self.answer.margins(c.x[rows]), rows, mood_songs)
                self.answer.scale = VALUES_SD_WITHOUT_RATINGS / float(np.std(margins))
        if self.with_ratings:
            rows = c.rows_of(rated)
            self.regressor = rg.ensemble(len(self.ratings_columns), *self.arch.ratings_members).fit(
                c.x[rows][:, self.ratings_columns], c.ratings[c.song[rows]])
        return self

    def window_values(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Each output's ``[windows, 2]`` values, clipped to 0-1 as inference clips them."""
        out = {}
        if self.answer is not None:
            out[OUTPUT] = self.answer.values(x)
        if self.regressor is not None:
            out[self.ratings_output] = np.clip(self.regressor.predict(x[:, self.ratings_columns]), 0.0, 1.0)
        return out

    def song_values(self, c: Corpus, songs: np.ndarray) -> dict[str, np.ndarray]:
        """Each output's ``[len(songs), 2]`` song values, as inference makes them."""
        rows = c.rows_of(songs)
        return {name: c.song_means(v, rows, songs) for name, v in self.window_values(c.x[rows]).items()}

    def onnx_heads(self) -> list[tuple[list[Any], list[Any]]]:
        """The heads' nodes and constants, reading the feature row."""
        heads = []
        if self.answer is not None:
            heads.append(self.answer.onnx_nodes(FEATURES, OUTPUT))
        if self.regressor is not None:
            name = self.ratings_output
            gather = column_nodes(FEATURES, self.ratings_columns, self.rows.width, f"{name}_features")
            nodes, inits = regressor_nodes(self.regressor, len(self.ratings_columns), f"{name}_features", name,
                                           prefix=f"{name}_")
            heads.append((gather[0] + nodes, gather[1] + inits))
        return heads


def _fold(arch: Arch, rows: Layout, c: Corpus, with_moods: bool, with_ratings: bool, train: np.ndarray,
          test: np.ndarray | None) -> dict[str, np.ndarray] | Heads:
    """Heads fitted on ``train``: their values of the ``test`` songs, or themselves."""
    from threadpoolctl import threadpool_limits

    # one thread per fit: the folds are the parallelism (a HistGradientBoosting fit took 7 s
    # on one thread, 17 s on two when two folds shared two cores)
    with threadpool_limits(1):
        heads = Heads(arch, rows, with_moods, with_ratings).fit(c, train)
        return heads if test is None else heads.song_values(c, test)


def _ece_and_log_loss(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    from .calibration import expected_calibration_error, log_loss

    return {"ece": expected_calibration_error(p, q), "log_loss": log_loss(q, p)}


def cross_validate(c: Corpus, arch: Arch, rows: Layout, folds: list[np.ndarray], jobs: int = 1,
                   log: Callable[[str], None] = print, final: bool = False) -> dict[str, Any]:
    """Out-of-fold values of every song, the calibration fitted out of fold, and the figures
    of each fold; with ``final``, also the heads fitted on every song (``"heads"``), in the
    same ``jobs`` processes.

    Returns
    -------
    dict
        ``oof`` (by output, ``[songs, 2]``), ``folds`` (per fold, the :data:`FIGURES` that fit
        the labels), ``mean`` and ``std`` over folds, ``calibration`` (by scale:
        :func:`~music2emotion.training.answer.cross_fit`'s result), ``relation`` (the
        ratings' valence against the one answer's, when both were given), ``probabilities``
        and ``truth`` (out-of-fold quadrant probabilities and the quadrants they are scored
        against).
    """
    from joblib import Parallel, delayed

    moods, y = c.moods, c.ratings
    with_moods, with_ratings = bool((moods > 0).any()), bool((~np.isnan(y[:, 0])).any())
    everyone = np.arange(c.n)
    t0 = time.time()
    # the final fit on every song goes with the folds, so no core waits for the last one
    tasks = [(np.setdiff1d(everyone, test), test) for test in folds] + ([(everyone, None)] if final else [])
    results = Parallel(n_jobs=max(1, min(jobs, len(tasks))))(
        delayed(_fold)(arch, rows, c, with_moods, with_ratings, train, test) for train, test in tasks)
    parts, fitted = (results[:-1], results[-1]) if final else (results, None)
    heads = fitted or Heads(arch, rows, with_moods, with_ratings)
    oof = {name: np.zeros((c.n, 2)) for name in heads.outputs}
    for test, part in zip(folds, parts):
        for name, v in part.items():
            oof[name][test] = v
    log(f"cross-validation: {len(folds)} folds" + (" and the fit on every song" if final else "")
        + f" in {time.time() - t0:.0f} s")

    mood_songs = np.flatnonzero(moods > 0)
    rated = np.flatnonzero(~np.isnan(y[:, 0]))
    in_fold = [np.flatnonzero(np.isin(mood_songs, f)) for f in folds]  # positions among mood songs
    r_in_fold = [np.flatnonzero(np.isin(rated, f)) for f in folds]  # positions among rated songs
    calibration: dict[str, Any] = {}
    relation = None
    unit = oof[OUTPUT]
    if with_moods:
        residuals = None
        if with_ratings:
            relation = ans.deam_relation(y[rated], unit[rated, 0])
            residuals = ans.answer_targets(y[rated], relation) - unit[rated]
        calibration["unit"] = ans.cross_fit(unit[mood_songs], sides(moods[mood_songs]), residuals, in_fold,
                                            r_in_fold if with_ratings else None, COVERAGE, moods[mood_songs])
        probabilities, truth = calibration["unit"]["probabilities"], moods[mood_songs]
    if with_ratings:
        out = heads.ratings_output
        scale = "deam" if with_moods else "unit"
        truth_q = quadrant_of(y[rated])
        calibration[scale] = ans.cross_fit(oof[out][rated], y[rated] >= NEUTRAL, y[rated] - oof[out][rated],
                                           r_in_fold, r_in_fold, COVERAGE, truth_q)
        if not with_moods:
            probabilities, truth = calibration["unit"]["probabilities"], truth_q

    def figures(m: np.ndarray, r: np.ndarray, coverage: Sequence[float] | None) -> dict[str, float]:
        """The figures of the mood songs at positions ``m`` and the rated songs at ``r``."""
        f: dict[str, float] = {}
        if with_moods and len(m):
            s = quadrant_scores(moods[mood_songs[m]], unit[mood_songs[m]])
            f.update(valence_auc=s["valence_auc"], happy_vs_angry=s["valence_auc_energetic"],
                     tender_vs_sad=s["valence_auc_calm"], arousal_auc=s["arousal_auc"],
                     mood_right=s["quadrant_accuracy"])
            f.update(_ece_and_log_loss(probabilities[m], truth[m]))
        if with_ratings and len(r):
            pred = oof[heads.ratings_output][rated[r]]
            rep = metrics.report(y[rated[r]], pred)
            for t in TARGETS:
                f[f"{t}_r2"], f[f"{t}_ccc"] = rep[t]["r2"], rep[t]["ccc"]
            if not with_moods:
                f["mood_right"] = float((quadrant_of(pred) == truth[r]).mean())
                f.update(_ece_and_log_loss(probabilities[r], truth[r]))
            f["valence_coverage"], f["arousal_coverage"] = coverage  # type: ignore[misc]
        return {key: float(f[key]) for key in FIGURES if key in f}

    hits = calibration["unit"]["coverage_folds"] if with_ratings else [None] * len(folds)
    per_fold = [figures(in_fold[k], r_in_fold[k], hits[k]) for k in range(len(folds))]
    everything = figures(np.arange(len(mood_songs)), np.arange(len(rated)),
                         np.average(hits, axis=0, weights=[len(r) for r in r_in_fold]).tolist()
                         if with_ratings else None)
    # the word is the most probable quadrant: the probabilities derive from the values
    scored_values = unit[mood_songs] if with_moods else unit[rated]
    everything["coherent"] = float((probabilities.argmax(1) + 1 == quadrant_of(scored_values)).mean())
    keys = [key for key in FIGURES if any(key in f for f in per_fold)]
    stats = {key: mean_std([f.get(key, np.nan) for f in per_fold]) for key in keys}
    return {"oof": oof, "folds": per_fold, "mean": {k: v[0] for k, v in stats.items()},
            "std": {k: v[1] for k, v in stats.items()}, "all": everything, "calibration": calibration,
            "relation": relation, "probabilities": probabilities, "truth": truth,
            "scored": mood_songs if with_moods else rated, "heads": fitted}


def conventions(cv: dict[str, Any], heads: Heads, labels_scale: str) -> dict[str, Any]:
    """The model file's conventions: each scale's output, spread and half-widths, all
    fitted out of fold."""
    out = {}
    for scale, cal in cv["calibration"].items():
        output = OUTPUT if scale == "unit" else DEAM_OUTPUT
        intervals = cal["half_width"]
        if scale == "unit" and heads.with_moods:
            about = "the one answer: valence and arousal as the quadrant head hears them"
            about += f", on the ratings' ({labels_scale}) arousal scale" if heads.with_ratings else \
                "; no ratings were given, so the values are scaled to spread like DEAM's ratings"
            method = UNIT_METHOD
        else:
            about = f"the ratings' own convention ({labels_scale})"
            method = RATINGS_METHOD
        entry = {"output": output, "spread": {t: round(float(s), 6) for t, s in zip(TARGETS, cal["spread"])},
                 "about": about}
        if intervals is not None:
            entry["intervals"] = {**{t: round(float(h), 6) for t, h in zip(TARGETS, intervals)},
                                  "coverage": COVERAGE, "method": method}
        if scale == "unit" and cv["relation"] is not None:
            entry["deam_relation"] = {"beta": round(cv["relation"][0], 4), "c": round(cv["relation"][1], 4)}
        out[scale] = entry
    return out


def check_export(path: Path, heads: Heads, c: Corpus) -> dict[str, float]:
    """The largest difference between the written file, run by ONNX Runtime on up to 8 of
    the training files as ``predict`` runs it, and the fitted heads on their cached rows."""
    from ..model import EmotionModel

    model = EmotionModel(path, threads=1)
    pick = np.unique(np.linspace(0, c.n - 1, min(8, c.n)).round().astype(int))
    preds = [model.predict_file(c.labels.songs[i].path) for i in pick]
    want = heads.song_values(c, pick)
    got = {OUTPUT: np.array([[p.valence, p.arousal] for p in preds], np.float64)}
    if DEAM_OUTPUT in want:
        got[DEAM_OUTPUT] = np.array([[p.deam.valence, p.deam.arousal] for p in preds], np.float64)
    return {name: float(np.abs(got[name] - want[name]).max()) for name in want}


# A boosted tree whose split lies within float32 rounding of an input (a graph's fused
# operators against the cached rows' separate run: about 5e-6) takes its other branch: the
# largest such step measured was 1.6e-3. Anything near these bounds is a bug, not rounding.
EXPORT_TOLERANCE = {OUTPUT: 5e-3, DEAM_OUTPUT: 5e-3}


def train_model(
    labels: Labels,
    arch: Arch,
    out: str | os.PathLike[str],
    *,
    folds: int = 5,
    seed: int = 42,
    jobs: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    musicnn_wheel: str | os.PathLike[str] | None = None,
    sources: Sequence[str] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Cross-validate, calibrate and fit a model on ``labels``, and write it with its report.

    Parameters
    ----------
    labels : Labels
        The songs (:func:`~music2emotion.training.labels.read_labels`).
    arch : Arch
        The recipe (:data:`~music2emotion.training.arches.ARCHES`).
    out : path-like
        The run folder: ``emotion_model.onnx``, ``report.json``, ``report.md`` and the
        pictures go there; each appears only when complete.
    folds, seed : int
        The cross-validation.
    jobs : int
        Worker processes, for the features and the folds.
    cache_dir : path-like, optional
        The feature cache (default ``~/.cache/music2emotion/features``).
    musicnn_wheel : path-like, optional
        musicnn's wheel, for a ``mel-patches`` arch before the package carries its ear.
    sources : sequence of str
        What the labels were read from, for the report.
    progress : bool
        Progress bars.
    log : callable
        Where progress lines go.

    Returns
    -------
    dict
        The report (``report.json``).

    Raises
    ------
    LabelError
        Too few songs once the audio that cannot be decoded is left out, or too few artists
        for the folds.
    """
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    graph, rows = arch.ears(musicnn_wheel)
    songs = labels.songs
    log(f"{arch.name}: {labels.summary()}")
    feats = file_rows([s.path for s in songs], graph, arch.kind, arch.settings, cache_dir=cache_dir, jobs=jobs,
                      progress=progress, log=log)
    t_features = time.time() - started
    c = corpus(labels, feats, log)
    log(f"{c.n} songs, {len(c.x)} windows, features in {t_features:.0f} s")
    fold_songs = song_folds(c.labels, folds, seed)
    cv = cross_validate(c, arch, rows, fold_songs, jobs, log, final=True)
    t_cv = time.time() - started - t_features
    heads = cv["heads"]
    convs = conventions(cv, heads, c.labels.rating_scale)
    counts = c.labels.counts()
    trained_on = {
        "labels": [k for k, on in (("moods", heads.with_moods), ("ratings", heads.with_ratings)) if on],
        "songs": c.n, "windows": int(len(c.x)), "moods": {w: counts[w] for w in MOOD_CLASSES},
        "rated": counts["rated"], "rating_scale": c.labels.rating_scale if heads.with_ratings else None,
        "artists": len({s.artist for s in c.labels.songs if s.artist}),
        # names, not paths: a model travels, and a path would tell where it was made
        "sources": [Path(s).name for s in sources]}
    figures = {"folds": len(fold_songs), "seed": seed, "mean": cv["mean"], "std": cv["std"], "all": cv["all"]}
    meta: dict[str, Any] = {
        CONVENTIONS_KEY: convs, "arch": arch.name, "trained_on": trained_on, "validation": figures,
        "encoder_source": AUDIOSET_SOURCE, "trained_with": f"music2emotion {__version__} train --arch {arch.name}"}
    if heads.answer is not None:
        meta["answer"] = {"c": arch.head_c, "scale": round(heads.answer.scale, 6),
                          "head_blocks": [list(g) for g in arch.head_blocks]}
    if heads.regressor is not None:
        meta["ratings_regressors"] = {"members": list(arch.ratings_members), "blocks": list(arch.ratings_blocks)}
    if "msd_pooled" in dict(rows.blocks):
        meta["musicnn_source"] = MUSICNN_SOURCE
    model = out / MODEL_NAME
    staged = out / f".{MODEL_NAME}.{os.getpid()}.checking"
    try:
        save_model(graph, heads.onnx_heads(), heads.outputs, arch.kind, arch.settings, staged, **meta)
        diff = check_export(staged, heads, c)
        bad = {k: v for k, v in diff.items() if v > EXPORT_TOLERANCE[k]}
        if bad:
            raise RuntimeError(f"the written model disagrees with the fitted one by {bad}")
        os.replace(staged, model)
    finally:
        staged.unlink(missing_ok=True)
    report = {
        "model": str(model), "arch": arch.name, "kind": arch.kind, "music2emotion": __version__,
        "trained_on": trained_on, "outputs": {
            "unit": "moods (the quadrant head)" if heads.with_moods else "ratings",
            "deam": "ratings" if heads.outputs[-1] == DEAM_OUTPUT else None,
            "moods": True, "intervals": heads.with_ratings},
        "folds": {"k": len(fold_songs), "seed": seed,
                  "grouped_by_artist": trained_on["artists"] > 0,
                  "songs": [[str(c.labels.songs[i].path) for i in f] for f in fold_songs]},
        "figures": {"per_fold": cv["folds"], "mean": cv["mean"], "std": cv["std"], "all": cv["all"]},
        "calibration": {s: {"spread": cal["spread"], "half_width": cal["half_width"], "coverage": cal["coverage"]}
                        for s, cal in cv["calibration"].items()},
        "relation": None if cv["relation"] is None else dict(zip(("beta", "c"), cv["relation"])),
        "export_check": {"max_abs_diff": diff},
        "skipped": c.labels.missing, "warnings": c.warnings, "notes": c.labels.notes,
        "seconds": {"features": round(t_features, 1), "fits": round(t_cv, 1),
                    "total": round(time.time() - started, 1)},
    }
    write_report(out, report, cv, c)
    log(f"wrote {model} ({model.stat().st_size / 1e6:.1f} MB), {out / 'report.md'} and {out / 'report.json'} "
        f"in {time.time() - started:.0f} s")
    return report
