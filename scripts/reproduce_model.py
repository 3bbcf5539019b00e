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
1. compute descriptors + the encoder's embedding and logits for every clip of both sets,
   exactly as inference does (each 10 s window heard at 16 kHz);
2. cross-validate the baselines and every candidate on seeded folds saved as song ids: DEAM
   in 5 random folds, 4Q in 5 folds grouped by artist, fold k of both held out together
   (the same report as ``music2emotion evaluate --quadrants`` without ``--model``);
3. cross-validate the quadrant head (out-of-fold probabilities, each fold's temperature from
   the other folds) and the 90 % intervals (each fold's half-widths from the other folds'
   residuals), and draw the reliability plot;
4. fit the shipped candidate, the head and the intervals on every song of both sets and
   export ``emotion_model.onnx`` (one graph with the encoder inside, music2emotion metadata
   inside), then check it against scikit-learn on real clips and time it per file;
5. the same for the fast model, ``emotion_model_fast.onnx``: its candidate on the
   descriptor columns alone.

Everything is seeded; scikit-learn is deterministic here, so the table repeats exactly on
the same machine. There is no GPU step; one thread per process, ``--jobs`` processes for the
features and folds. Needs the ``ml`` and ``train`` extras.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from music2emotion import EmotionModel
from music2emotion.config import TARGETS
from music2emotion.training import calibration as cal
from music2emotion.training import evaluate as ev
from music2emotion.training import recipe
from music2emotion.training.data import load_dataset
from music2emotion.training.quadrants import TABLE_SCORES, quadrant_of

# the encoder file the shipped models were built from (../shared/encoders/efficientat_mn04)
ENCODER_SHA256 = "23336cc4f5611bc9b2b927e14c7b0ab4408525d74119b36e24a9953f345e7f93"
# the interval every prediction carries: 90 % of DEAM listeners' ratings
COVERAGE = 0.9


def check_export(path: Path, fitted, x: np.ndarray, paths: list[Path]) -> dict[str, float]:
    """Largest difference between the ONNX file run on 8 real clips and scikit-learn on their
    cached features, and the file's seconds per 10 s clip on one thread."""
    model = EmotionModel(path, threads=1)
    check = list(range(0, len(paths), max(1, len(paths) // 8)))[:8]
    t0 = time.time()
    preds = [model.predict_file(paths[i]) for i in check]
    per_file = (time.time() - t0) / len(check)
    got = np.array([[p.valence, p.arousal] for p in preds])
    diff = float(np.abs(got - np.clip(fitted.predict(x[check]), 0, 1)).max())
    print(f"{path.name}: ONNX vs scikit-learn on cached features: max |diff| {diff:.2e}; "
          f"{per_file:.2f} s per 10 s file (one thread, this machine)")
    return {"max_abs_diff": diff, "seconds_per_file": per_file}


def cv_metadata(result: ev.CVResult, folds: int, seed: int, songs: int, quadrant_songs: int) -> dict:
    """What a model file says about how it was validated."""
    return {
        # same shape as a CNN's "validation" (per dimension, 0-1 scale), but fold means
        "validation": result.summary()["mean"],
        "validation_method": f"{folds}-fold cross-validation, mean over folds, seed {seed}; DEAM "
                             f"({songs} songs) in random folds, quadrant songs ({quadrant_songs}) in "
                             "folds grouped by artist, fold k of both held out together",
        "cv_fold_mean_std": {d: {m: [round(v, 4) for v in result.stat(d, m)] for m in ("r2", "ccc")}
                             for d in TARGETS},
        "quadrant_validation": {k: [round(v, 4) for v in result.quadrant_stat(k)] for k in TABLE_SCORES},
    }


def mood_figures(quadrants: ev.QuadrantData, deam_x: np.ndarray, deam_y: np.ndarray, out: Path) -> dict:
    """Cross-validated figures of the quadrant head on 4Q, and how it sorts DEAM's songs whose
    ratings are clearly in one quadrant (it never sees DEAM), with the reliability plot."""
    cols = recipe.MOOD_COLUMNS
    cv = cal.cross_validate_moods(quadrants.x, quadrants.quadrants, quadrants.fold_indices(), cols, recipe.MOOD_C)
    cal.reliability_plot(cv["oof"], quadrants.quadrants, out / "moods_reliability.png",
                         "quadrant head, 4Q out of fold (artist-grouped)")
    head = cal.MoodHead(cols, recipe.MOOD_C).fit(quadrants.x, quadrants.quadrants)
    head.temperature = cal.fit_temperature(cv["logits"], quadrants.quadrants)
    clear = np.all(np.abs(deam_y - 0.5) >= 0.15, axis=1)
    truth = quadrant_of(deam_y[clear])
    p = head.predict_proba(deam_x[clear])
    figures = {k: cv[k] for k in ("accuracy", "accuracy_folds", "log_loss", "prior_log_loss", "ece", "temperatures")}
    figures["deam_clear_songs"] = {"songs": int(clear.sum()), "accuracy": float((p.argmax(1) + 1 == truth).mean()),
                                   "log_loss": cal.log_loss(truth, p), "ece": cal.expected_calibration_error(p, truth)}
    print(f"quadrant head: 4Q out of fold accuracy {cv['accuracy']:.3f}, log-loss {cv['log_loss']:.3f} "
          f"(prior {cv['prior_log_loss']:.3f}), ECE {cv['ece']:.3f}; DEAM songs clearly in a quadrant "
          f"({clear.sum()}): accuracy {figures['deam_clear_songs']['accuracy']:.3f}")
    return {"head": head, "figures": figures}


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
        names = args.candidates.split(",") if args.candidates else None
        results = recipe.cross_validation_report(x, y, data.ids, folds, args.seed, out, names,
                                                 quadrants=quadrants, jobs=args.jobs)
        by_name = {r.name: r for r in results}
        moods = mood_figures(quadrants, x, y, out)
        table = recipe.candidates()
        x_all = np.vstack([x, quadrants.x])
        info: dict = {"moods": moods["figures"]}
        for label, name, filename in (("accurate", recipe.SHIPPED, "emotion_model.onnx"),
                                      ("fast", recipe.SHIPPED_FAST, "emotion_model_fast.onnx")):
            cand = table[name]
            if label == "fast" and cand.columns.max() >= recipe.N_DESCRIPTORS:
                raise SystemExit(f"{name}: the fast model takes the descriptors only")
            cols = cand.columns
            fitted = cand.fit(cand.make(), x[:, cols], y, quadrants.x[:, cols], quadrants.quadrants)
            meta = {"candidate": name,
                    "trained_on": f"DEAM ({len(data.ids)} songs, ratings) and {len(quadrants.ids)} songs "
                                  "labelled by Russell quadrant (4Q), as pseudo-ratings 0.5 ± "
                                  f"{list(cand.margin)} weighted {list(cand.quadrant_weight)} per axis"}
            if name in by_name:
                meta.update(cv_metadata(by_name[name], args.folds, args.seed, len(data.ids), len(quadrants.ids)))
            if label == "accurate":
                if name not in by_name:
                    raise SystemExit(f"{name}: the intervals need its out-of-fold predictions (keep it in --candidates)")
                cover = cal.interval_coverage(y, np.clip(by_name[name].oof, 0, 1), ev.fold_indices(data.ids, folds),
                                              COVERAGE)
                intervals = {**{d: round(cover[d]["half_width"], 6) for d in TARGETS}, "coverage": COVERAGE,
                             "method": "split-conformal: the 90 % quantile of absolute out-of-fold residuals "
                                       "on DEAM's ratings, per axis"}
                meta["encoder_sha256"] = digest
                meta["mood_validation"] = {k: v for k, v in moods["figures"].items() if k != "temperatures"}
                meta["interval_validation"] = {d: {"coverage": round(cover[d]["coverage"], 4)} for d in TARGETS}
                info["intervals"] = cover
                print("intervals: " + ", ".join(f"{d} ± {cover[d]['half_width']:.3f} covers "
                                                f"{cover[d]['coverage']:.3f} held out" for d in TARGETS))
                path = recipe.export_audioset(fitted, cols, args.encoder, out / filename, moods["head"],
                                              intervals, meta)
            else:
                path = recipe.export_fusion(fitted, [], out / filename, meta)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
            info[label] = {"onnx": str(path), "bytes": path.stat().st_size,
                           **check_export(path, fitted, x_all[:, cols], list(data.paths) + quadrants.paths)}
    ev.write_json(out / "model_info.json", info)
    # The accurate graph's encoder differs from the cached features' run of the same weights
    # by float32 rounding (about 5e-6); a boosted tree whose split sits within that of an input
    # then takes its other branch: 1.6e-3 was the largest such step measured on the 8 clips.
    # The fast model's inputs are the cached descriptors themselves.
    if info["accurate"]["max_abs_diff"] > 5e-3 or info["fast"]["max_abs_diff"] > 1e-5:
        raise SystemExit("an exported model disagrees with the fitted one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
