"""Rebuild the shipped fusion model from DEAM, with its cross-validation table, in one command.

    python scripts/reproduce_model.py --audio-dir path/to/DEAM/audio \\
        --annotations path/to/DEAM/annotations --out runs/best

Steps (each result is kept in --out / --cache-dir, so a killed run redoes only what is missing):
1. fetch the ``musicnn`` 0.1.0 wheel from PyPI with ``pip download --no-deps`` (its own
   dependencies, TensorFlow 1 and numpy < 1.17, are neither installed nor needed), unless
   ``--wheel`` points at one, and check its SHA-256;
2. rebuild musicnn's MSD tagger from the wheel's checkpoint and export it to ONNX;
3. compute descriptors + musicnn tags/embedding for every clip, exactly as inference does;
4. cross-validate the baselines and every candidate on seeded folds saved as song ids
   (the same report as ``music2emotion evaluate`` without ``--model``);
5. fit the shipped candidate on every song and export ``emotion_model.onnx`` (one graph,
   music2emotion metadata inside), then check it against scikit-learn on real clips and
   time it per file;
6. the same for the fast model, ``emotion_model_fast.onnx``: its candidate on the
   descriptor columns alone.

Everything is seeded; scikit-learn is deterministic here, so the table repeats exactly on
the same machine. There is no GPU step (the regressors are scikit-learn on CPU).
Needs the ``ml`` and ``train`` extras.
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

from music2emotion import EmotionModel
from music2emotion.config import TARGETS
from music2emotion.training import evaluate as ev
from music2emotion.training import recipe
from music2emotion.training.clips import clip_features
from music2emotion.training.data import load_dataset

# the wheel the shipped model was built from (PyPI, musicnn 0.1.0, uploaded 2019-08)
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"


def fetch_wheel(folder: Path) -> Path:
    wheel = folder / recipe.MUSICNN_WHEEL
    if not wheel.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "musicnn==0.1.0", "--no-deps",
                        "--only-binary", ":all:", "-d", str(folder)], check=True)
    return wheel


def check_export(path: Path, fitted, x: np.ndarray, paths: list[str]) -> dict[str, float]:
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--audio-dir", required=True)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--out", default="runs/best")
    ap.add_argument("--wheel", help="musicnn-0.1.0-py3-none-any.whl (default: pip download it)")
    ap.add_argument("--cache-dir", help="feature cache folder (default: --out)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--candidates", help="comma-separated subset of the CV table (default: all)")
    args = ap.parse_args()

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
    data = load_dataset(args.audio_dir, args.annotations)
    print(data.report())
    t0 = time.time()
    x = clip_features(data.paths, encoders, cache, args.jobs)
    print(f"features {x.shape} in {time.time() - t0:.0f} s")
    y = data.targets.astype(np.float64)

    folds = ev.kfold(data.ids, args.folds, args.seed)
    names = args.candidates.split(",") if args.candidates else None
    results = recipe.cross_validation_report(x, y, data.ids, folds, args.seed, out, names)

    cols, make = recipe.candidates()[recipe.SHIPPED]
    if len(cols) != x.shape[1]:
        raise SystemExit("the shipped candidate must use every feature column")
    shipped = next((r for r in results if r.name == recipe.SHIPPED), None)
    fitted = make().fit(x, y)
    cv_info = {d: {m: [round(v, 4) for v in shipped.stat(d, m)] for m in ("r2", "ccc")}
               for d in TARGETS} if shipped else None
    model_path = recipe.export_fusion(fitted, encoders, out / "emotion_model.onnx", {
        "candidate": recipe.SHIPPED, "trained_on": f"DEAM, {len(data.ids)} songs",
        # same shape as a CNN's "validation" (per dimension, 0-1 scale), but fold means
        "validation": shipped.summary()["mean"] if shipped else None,
        "validation_method": f"{args.folds}-fold cross-validation, mean over folds, seed {args.seed}",
        "cv_fold_mean_std": cv_info, "musicnn_wheel_sha256": digest,
    })
    size = model_path.stat().st_size
    print(f"wrote {model_path} ({size / 1e6:.2f} MB)")

    model_info = {"onnx": str(model_path), "bytes": size,
                  **check_export(model_path, fitted, x, data.paths), "cv": cv_info}

    # the fast bundled model: the same recipe on the descriptors alone, no taggers to run
    fast_cols, make_fast = recipe.candidates()[recipe.SHIPPED_FAST]
    fast = next((r for r in results if r.name == recipe.SHIPPED_FAST), None)
    fitted_fast = make_fast().fit(x[:, fast_cols], y)
    fast_path = recipe.export_fusion(fitted_fast, [], out / "emotion_model_fast.onnx", {
        "candidate": recipe.SHIPPED_FAST, "trained_on": f"DEAM, {len(data.ids)} songs",
        "validation": fast.summary()["mean"] if fast else None,
        "validation_method": f"{args.folds}-fold cross-validation, mean over folds, seed {args.seed}",
        "cv_fold_mean_std": {d: {m: [round(v, 4) for v in fast.stat(d, m)] for m in ("r2", "ccc")}
                             for d in TARGETS} if fast else None,
    })
    print(f"wrote {fast_path} ({fast_path.stat().st_size / 1e6:.2f} MB)")
    fast_info = {"onnx": str(fast_path), "bytes": fast_path.stat().st_size,
                 **check_export(fast_path, fitted_fast, x[:, fast_cols], data.paths)}
    ev.write_json(out / "model_info.json", {**model_info, "fast": fast_info})
    if max(model_info["max_abs_diff"], fast_info["max_abs_diff"]) > 1e-3:
        raise SystemExit("an exported model disagrees with the fitted one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
