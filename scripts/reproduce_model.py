"""Rebuild the bundled accurate and fast models from DEAM and 4Q, with their cross-validation
table, in one command.

    python scripts/reproduce_model.py --deam path/to/DEAM --quadrants path/to/4Q/labels.csv \\
        --out runs/best

``--deam`` is a folder with ``audio/`` and ``annotations/`` (DEAM's static-annotation CSVs);
``--quadrants`` a quadrant labels CSV (``song_id, quadrant[, artist]``) with its clips in
``audio/`` beside it, as the 4Q set is laid out (``--audio-dir``, ``--annotations`` and
``--quadrant-audio`` point elsewhere).

Steps (each result is kept in --out / --cache-dir, so a killed run redoes only what is missing):
1. fetch the ``musicnn`` 0.1.0 wheel from PyPI with ``pip download --no-deps`` (its own
   dependencies, TensorFlow 1 and numpy < 1.17, are neither installed nor needed), unless
   ``--wheel`` points at one, and check its SHA-256;
2. rebuild musicnn's MSD and MTT taggers from the wheel's checkpoints and export them to ONNX;
3. compute descriptors + tagger outputs for every clip of both sets, exactly as inference
   does (each 10 s window heard at 16 kHz);
4. cross-validate the baselines and every candidate on seeded folds saved as song ids: DEAM
   in 5 random folds, 4Q in 5 folds grouped by artist, fold k of both held out together
   (the same report as ``music2emotion evaluate --quadrants`` without ``--model``);
5. fit the shipped candidate on every song of both sets and export ``emotion_model.onnx``
   (one graph, music2emotion metadata inside), then check it against scikit-learn on real
   clips and time it per file;
6. the same for the fast model, ``emotion_model_fast.onnx``: its candidate on the
   descriptor columns alone.

Everything is seeded; scikit-learn is deterministic here, so the table repeats exactly on
the same machine. There is no GPU step (the regressors are scikit-learn on CPU); one thread
per process, ``--jobs`` processes for the features. Needs the ``ml`` and ``train`` extras.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from music2emotion import EmotionModel
from music2emotion.config import TARGETS
from music2emotion.training import evaluate as ev
from music2emotion.training import recipe
from music2emotion.training.clips import clip_features
from music2emotion.training.data import load_dataset
from music2emotion.training.quadrants import TABLE_SCORES

# the wheel the shipped model was built from (PyPI, musicnn 0.1.0, uploaded 2019-08)
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"


def fetch_wheel(folder: Path) -> Path:
    wheel = folder / recipe.MUSICNN_WHEEL
    if not wheel.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "musicnn==0.1.0", "--no-deps",
                        "--only-binary", ":all:", "-d", str(folder)], check=True)
    return wheel


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deam", help="DEAM folder with audio/ and annotations/")
    ap.add_argument("--audio-dir", help="DEAM audio (default: --deam/audio)")
    ap.add_argument("--annotations", help="DEAM annotations (default: --deam/annotations)")
    ap.add_argument("--quadrants", required=True, help="quadrant labels CSV (the 4Q set's labels.csv)")
    ap.add_argument("--quadrant-audio", help="their audio (default: audio/ beside the CSV)")
    ap.add_argument("--out", default="runs/best")
    ap.add_argument("--wheel", help="musicnn-0.1.0-py3-none-any.whl (default: pip download it)")
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
    wheel = Path(args.wheel) if args.wheel else fetch_wheel(out / "downloads")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    print(f"musicnn wheel {wheel} sha256 {digest}")
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: unexpected SHA-256 {digest} (expected {WHEEL_SHA256})")

    encoders = []
    for name in recipe.ENCODERS:
        encoders.append(out / f"{name}.onnx")
        if not encoders[-1].is_file():
            recipe.build_encoder(wheel, encoders[-1], name)
    data = load_dataset(audio_dir, annotations)
    print(data.report())
    t0 = time.time()
    x = clip_features(data.paths, encoders, cache / "deam", args.jobs)
    quadrants = recipe.load_quadrant_data(args.quadrants, args.quadrant_audio, encoders, args.folds,
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
        table = recipe.candidates()
        x_all = np.vstack([x, quadrants.x])
        info = {}
        for label, name, encs, filename in (("accurate", recipe.SHIPPED, encoders, "emotion_model.onnx"),
                                            ("fast", recipe.SHIPPED_FAST, [], "emotion_model_fast.onnx")):
            cand = table[name]
            if not encs and cand.columns.max() >= recipe.N_DESCRIPTORS:
                raise SystemExit(f"{name}: the fast model takes the descriptors only")
            if encs and len(cand.columns) != x.shape[1]:
                raise SystemExit(f"{name}: the accurate model must use every feature column")
            cols = cand.columns
            fitted = cand.fit(cand.make(), x[:, cols], y, quadrants.x[:, cols], quadrants.quadrants)
            meta = {"candidate": name,
                    "trained_on": f"DEAM ({len(data.ids)} songs, ratings) and {len(quadrants.ids)} songs "
                                  "labelled by Russell quadrant (4Q), as pseudo-ratings 0.5 ± "
                                  f"{list(cand.margin)} weighted {list(cand.quadrant_weight)} per axis"}
            if name in by_name:
                meta.update(cv_metadata(by_name[name], args.folds, args.seed, len(data.ids), len(quadrants.ids)))
            if encs:
                meta["musicnn_wheel_sha256"] = digest
            path = recipe.export_fusion(fitted, encs, out / filename, meta)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
            info[label] = {"onnx": str(path), "bytes": path.stat().st_size,
                           **check_export(path, fitted, x_all[:, cols], list(data.paths) + quadrants.paths)}
    ev.write_json(out / "model_info.json", info)
    if max(i["max_abs_diff"] for i in info.values()) > 1e-3:
        raise SystemExit("an exported model disagrees with the fitted one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
