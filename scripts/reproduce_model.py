"""Rebuild the bundled accurate and fast models from DEAM and 4Q, with their cross-validation
table, in one command.

    python scripts/reproduce_model.py --deam ../shared/deam --quadrants ../shared/4q/labels.csv \\
        --encoder ../shared/encoders/efficientat_mn04/mn04_as.onnx --out runs/best

``--deam`` is a folder with ``audio/`` and ``annotations/`` (DEAM's static-annotation CSVs);
``--quadrants`` a quadrant labels CSV (``song_id, quadrant[, artist]``) with its clips in
``audio/`` beside it, as the 4Q set is laid out (``--audio-dir``, ``--annotations`` and
``--quadrant-audio`` point elsewhere); ``--encoder`` the pretrained EfficientAT ``mn04_as``
AudioSet tagger as one ONNX file (its SHA-256 is checked).

Steps (each result is kept in --out / --cache-dir, so a killed run redoes only what is missing):
1. compute descriptors, the encoder's embedding and logits and the mel statistics for every
   clip of both sets, exactly as inference does (each 10 s window heard at 16 kHz; the
   descriptors only for the comparison rows of the table);
2. cross-validate the baselines and DEAM's regressors on seeded folds saved as song ids:
   DEAM in 5 random folds, 4Q in 5 folds grouped by artist, fold k of both held out
   together (the same report as ``music2emotion evaluate --quadrants`` without ``--model``);
3. cross-validate the one answer (training.answer: the quadrant head's log-odds on DEAM's
   arousal scale) on the same folds, and calibrate both scales out of fold: the spreads of
   the quadrant probabilities, the 90 % intervals, their held-out coverage; draw the
   reliability plot and the same 4Q songs on both planes;
4. fit the answer and DEAM's regressors on every song and export ``emotion_model.onnx`` (one
   graph with the encoder inside, music2emotion metadata inside), then check it against
   scikit-learn on real clips and time it per file;
5. the same for the fast model, ``emotion_model_fast.onnx``, whose encoder hears the middle
   5 s of each window and whose DEAM convention is a ridge on its embedding alone (its own
   features, cached beside the others, and its own cross-validation in ``--out``/fast).

Both are ``mel`` models: the graph takes the encoder's mel input only and computes the rest
(the encoder, the mel bands' level and spread) itself, so a window costs no descriptors.

Everything is seeded; scikit-learn is deterministic here, so the table repeats exactly on
the same machine. There is no GPU step; one thread per process, ``--jobs`` processes for the
features and folds. Needs the ``ml`` and ``train`` extras.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from music2emotion import EmotionModel
from music2emotion.config import TARGETS
from music2emotion.modelfile import DEAM_OUTPUT, OUTPUT
from music2emotion.training import answer as ans
from music2emotion.training import calibration as cal
from music2emotion.training import evaluate as ev
from music2emotion.training import recipe
from music2emotion.training.data import load_dataset
from music2emotion.training.quadrants import TABLE_SCORES, quadrant_of, two_planes_plot

# the encoder file the shipped models were built from (../shared/encoders/efficientat_mn04)
ENCODER_SHA256 = "23336cc4f5611bc9b2b927e14c7b0ab4408525d74119b36e24a9953f345e7f93"
# the interval every prediction carries: 90 % of DEAM listeners' ratings
COVERAGE = 0.9
# how each scale's intervals were calibrated, as the model file says it
UNIT_METHOD = ("split-conformal: the 90 % quantile of absolute residuals on DEAM's ratings, arousal as rated, "
               "valence with the panel's energy taken out (valence - beta (arousal - 0.5) - c)")
DEAM_METHOD = "split-conformal: the 90 % quantile of absolute out-of-fold residuals on DEAM's ratings, per axis"


def check_export(path: Path, answer: ans.Answer, deam, deam_columns: np.ndarray, x: np.ndarray,
                 paths: list[Path]) -> dict[str, float]:
    """Largest difference between the ONNX file run on 8 real clips and scikit-learn on their
    cached features, per scale, and the file's seconds per 10 s clip on one thread."""
    model = EmotionModel(path, threads=1)
    check = list(range(0, len(paths), max(1, len(paths) // 8)))[:8]
    t0 = time.time()
    preds = [model.predict_file(paths[i]) for i in check]
    per_file = (time.time() - t0) / len(check)
    unit = np.array([[p.valence, p.arousal] for p in preds])
    deam_got = np.array([[p.deam.valence, p.deam.arousal] for p in preds])
    diff = {OUTPUT: float(np.abs(unit - answer.values(x[check])).max()),
            DEAM_OUTPUT: float(np.abs(deam_got - np.clip(deam.predict(x[check][:, deam_columns]), 0, 1)).max())}
    print(f"{path.name}: ONNX vs scikit-learn on cached features: max |diff| {diff[OUTPUT]:.2e} (one answer), "
          f"{diff[DEAM_OUTPUT]:.2e} (DEAM's convention); {per_file:.2f} s per 10 s file (one thread, this machine)")
    return {"max_abs_diff": diff, "seconds_per_file": per_file}


def cv_metadata(result: ev.CVResult, folds: int, seed: int, songs: int, quadrant_songs: int) -> dict:
    """What a model file says about how its DEAM convention was validated."""
    return {
        # same shape as a CNN's "validation" (per dimension, 0-1 scale), but fold means
        "validation": result.summary()["mean"],
        "validation_method": f"{folds}-fold cross-validation, mean over folds, seed {seed}; DEAM "
                             f"({songs} songs) in random folds, quadrant songs ({quadrant_songs}) in "
                             "folds grouped by artist, fold k of both held out together",
        "cv_fold_mean_std": {d: {m: [round(v, 4) for v in result.stat(d, m)] for m in ("r2", "ccc")}
                             for d in TARGETS},
    }


def mean_std(values: list[float]) -> list[float]:
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    return [round(float(v.mean()), 4), round(float(v.std(ddof=1)), 4)]


def one_answer(name: str, columns: np.ndarray, x: np.ndarray, y: np.ndarray, quadrants: ev.QuadrantData,
               deam_folds: list[np.ndarray], deam_cv: ev.CVResult, out: Path) -> dict:
    """Cross-validate and fit one model's two scales; returns what the export and the model
    card need."""
    cv = ans.cross_validate_answer(x, y, quadrants, deam_folds, columns, recipe.ANSWER_C, COVERAGE)
    unit_cal = cv["calibration"]
    deam_cal = ans.cross_fit(deam_cv.oof, y >= 0.5, y - deam_cv.oof, deam_folds, deam_folds, COVERAGE,
                             quadrant_of(y))
    answer, fitted = ans.fit_answer(x, y, quadrants, columns, recipe.ANSWER_C, cv["quadrant_margins"], COVERAGE)
    deam_spread = [ans.fit_spread(deam_cv.oof[:, j], y[:, j] >= 0.5) for j in range(2)]
    beta, c = fitted["relation"]
    conventions = {
        "unit": ans.convention(OUTPUT, fitted["spread"], fitted["half_width"], COVERAGE, UNIT_METHOD,
                               about="the one answer: valence and arousal as the quadrant head hears them "
                                     "(4Q's convention), on DEAM's arousal scale",
                               deam_relation={"beta": round(beta, 4), "c": round(c, 4)}),
        "deam": ans.convention(DEAM_OUTPUT, deam_spread, deam_cal["half_width"], COVERAGE, DEAM_METHOD,
                               about="what DEAM's listener panel would rate (its valence is half energy)"),
    }
    q = quadrants.quadrants
    figures = {
        "quadrants": {k: mean_std([f[k] for f in cv["fold_scores"]]) for k in
                      (*TABLE_SCORES, "valence_accuracy", "arousal_accuracy", "valence_arousal_r")},
        "moods": {"accuracy": unit_cal["accuracy"], "log_loss": unit_cal["log_loss"], "ece": unit_cal["ece"],
                  "coherent": float((unit_cal["probabilities"].argmax(1) + 1 == quadrant_of(cv["quadrant_values"])).mean())},
        "intervals": {"unit": {t: {"half_width": round(h, 4), "coverage": round(cov, 4)} for t, h, cov in
                               zip(TARGETS, fitted["half_width"], unit_cal["coverage"])},
                      "deam": {t: {"half_width": round(h, 4), "coverage": round(cov, 4)} for t, h, cov in
                               zip(TARGETS, deam_cal["half_width"], deam_cal["coverage"])}},
        "deam_convention": {"r2": {d: [round(v, 4) for v in deam_cv.stat(d, "r2")] for d in TARGETS},
                            "moods": {k: deam_cal[k] for k in ("accuracy", "log_loss", "ece")},
                            "quadrants": {k: mean_std([f[k] for f in deam_cv.quadrant_scores]) for k in TABLE_SCORES}},
        "relation": {"beta": beta, "c": c},
        "spread": {"unit": fitted["spread"], "deam": deam_spread},
        "scale": answer.scale,
    }
    print(f"{name}: one answer on 4Q (out of fold): " + ", ".join(
        f"{TABLE_SCORES[k]} {figures['quadrants'][k][0]:.3f}" for k in TABLE_SCORES)
        + f"; moods right {unit_cal['accuracy']:.3f}, ECE {unit_cal['ece']:.3f}; intervals ± "
        + " / ".join(f"{h:.3f}" for h in fitted["half_width"]) + " cover "
        + " / ".join(f"{v:.3f}" for v in unit_cal["coverage"]) + " held out; DEAM's convention R² "
        + " / ".join(f"{deam_cv.stat(d, 'r2')[0]:.3f}" for d in TARGETS) + ", intervals cover "
        + " / ".join(f"{v:.3f}" for v in deam_cal["coverage"]) + f"; DEAM valence ~ v + {beta:.3f} (a - 0.5) + {c:.3f}")
    cal.reliability_plot(unit_cal["probabilities"], q, out / f"moods_reliability_{name}.png",
                         f"{name}: quadrant probabilities, 4Q out of fold (artist-grouped)")
    two_planes_plot(q, cv["quadrant_values"], deam_cv.quadrant_oof, out / f"two_planes_{name}.png")
    return {"answer": answer, "conventions": conventions, "figures": figures}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deam", help="DEAM folder with audio/ and annotations/")
    ap.add_argument("--audio-dir", help="DEAM audio (default: --deam/audio)")
    ap.add_argument("--annotations", help="DEAM annotations (default: --deam/annotations)")
    ap.add_argument("--quadrants", required=True, help="quadrant labels CSV (the 4Q set's labels.csv)")
    ap.add_argument("--quadrant-audio", help="their audio (default: audio/ beside the CSV)")
    ap.add_argument("--encoder", required=True, help="the EfficientAT mn04_as ONNX file")
    ap.add_argument("--out", default="runs/best")
    ap.add_argument("--cache-dir", help="feature cache folder (default: --out)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--candidates", help="comma-separated subset of the CV table (default: all)")
    args = ap.parse_args()
    audio_dir = args.audio_dir or (args.deam and str(Path(args.deam) / "audio"))
    annotations = args.annotations or (args.deam and str(Path(args.deam) / "annotations"))
    if not audio_dir or not annotations:
        ap.error("give --deam, or --audio-dir and --annotations")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir) if args.cache_dir else out
    digest = hashlib.sha256(Path(args.encoder).read_bytes()).hexdigest()
    print(f"encoder {args.encoder} sha256 {digest}")
    if digest != ENCODER_SHA256:
        raise SystemExit(f"{args.encoder}: unexpected SHA-256 {digest} (expected {ENCODER_SHA256})")

    data = load_dataset(audio_dir, annotations)
    print(data.report())
    t0 = time.time()
    x = recipe.audioset_features(data.paths, args.encoder, cache / "deam", args.jobs)
    quadrants = recipe.load_quadrant_data(args.quadrants, args.quadrant_audio, args.encoder, args.folds,
                                          args.seed, cache / "quadrants", args.jobs)
    print(f"features {x.shape} and {quadrants.x.shape} in {time.time() - t0:.0f} s")
    y = data.targets.astype(np.float64)

    # one thread per fit: on a shared or small machine the tree ensembles' own threads only
    # fight each other (a HistGradientBoosting fit took 7 s on one thread, 17 s on two)
    with threadpool_limits(1):
        folds = ev.kfold(data.ids, args.folds, args.seed)
        deam_folds = ev.fold_indices(data.ids, folds)
        names = args.candidates.split(",") if args.candidates else None
        results = recipe.cross_validation_report(x, y, data.ids, folds, args.seed, out, names,
                                                 quadrants=quadrants, jobs=args.jobs)
        by_name = {r.name: r for r in results}
        table = recipe.candidates()
        # the fast model's encoder hears the middle 5 s of each window: its own features and
        # cross-validation of its DEAM regressor
        from music2emotion.training.clips import AUDIOSET_SETTINGS, FAST_SETTINGS

        xf = recipe.with_encoder_heard_as(x, data.paths, args.encoder, FAST_SETTINGS, cache / "deam", args.jobs)
        quadrants_f = dataclasses.replace(quadrants, x=recipe.with_encoder_heard_as(
            quadrants.x, quadrants.paths, args.encoder, FAST_SETTINGS, cache / "quadrants", args.jobs))
        (fast_cv,) = [r for r in recipe.cross_validation_report(
            xf, y, data.ids, folds, args.seed, out / "fast", [recipe.SHIPPED_FAST], quadrants=quadrants_f,
            jobs=args.jobs) if r.name == recipe.SHIPPED_FAST]
        info: dict = {}
        for label, name, filename, rows, q_rows, deam_cv, settings in (
                ("accurate", recipe.SHIPPED, "emotion_model.onnx", x, quadrants, by_name.get(recipe.SHIPPED),
                 AUDIOSET_SETTINGS),
                ("fast", recipe.SHIPPED_FAST, "emotion_model_fast.onnx", xf, quadrants_f, fast_cv, FAST_SETTINGS)):
            cand = table[name]
            if deam_cv is None:
                raise SystemExit(f"{name}: its calibration needs its out-of-fold predictions (keep it in --candidates)")
            made = one_answer(label, recipe.ANSWER_COLUMNS, rows, y, q_rows, deam_folds, deam_cv, out)
            deam = cand.fit(cand.make(), rows[:, cand.columns], y, q_rows.x[:0], q_rows.quadrants[:0])
            meta = {"deam_candidate": name, "answer": {"c": recipe.ANSWER_C, "scale": round(made["answer"].scale, 6),
                                                       "feature_columns": len(recipe.ANSWER_COLUMNS)},
                    "trained_on": f"the one answer: a quadrant head on {len(quadrants.ids)} songs labelled by "
                                  f"Russell quadrant (4Q), its scale on DEAM's arousal ratings ({len(data.ids)} "
                                  "songs); DEAM's convention: regressors on DEAM's ratings",
                    "encoder_sha256": digest,
                    **cv_metadata(deam_cv, args.folds, args.seed, len(data.ids), len(quadrants.ids)),
                    "answer_validation": made["figures"]}
            path = recipe.export_mel(made["answer"], deam, cand.columns, args.encoder, out / filename,
                                     made["conventions"], meta, settings)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
            info[label] = {"onnx": str(path), "bytes": path.stat().st_size, **made["figures"],
                           **check_export(path, made["answer"], deam, cand.columns, np.vstack([rows, q_rows.x]),
                                          list(data.paths) + quadrants.paths)}
    ev.write_json(out / "model_info.json", info)
    # A graph's encoder differs from the cached features' run of the same weights by float32
    # rounding (about 5e-6); a boosted tree whose split sits within that of an input then
    # takes its other branch: 1.6e-3 was the largest such step measured on the 8 clips. The
    # one answer and the fast model's ridge are linear in the features, so theirs stay tiny.
    worst = {label: info[label]["max_abs_diff"] for label in ("accurate", "fast")}
    if worst["accurate"][DEAM_OUTPUT] > 5e-3 or max(worst["accurate"][OUTPUT], *worst["fast"].values()) > 1e-4:
        raise SystemExit(f"an exported model disagrees with the fitted one: {worst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
