"""Seconds per file of the fusion model beside the CNN, measured in one run on the same files.

    python bench/bench_fusion.py --fusion runs/best/emotion_model.onnx --cnn path/to/cnn.onnx \\
        ../shared/deam/audio/1000.mp3 ../shared/deam/audio/1001.mp3 ...

Each model runs single-threaded in this process, files in turn, after one warm-up file, so
the ratio reflects the work per file (decode + features + network), not parallelism.
"""

from __future__ import annotations

import argparse
import sys
import time

from music2emotion.fusion import FusionModel
from music2emotion.inference import EmotionModel


def seconds_per_file(model, files: list[str]) -> float:
    model.predict_file(files[0])  # warm-up: lazy imports, numba compilation, session init
    t0 = time.perf_counter()
    for f in files:
        pred = model.predict_file(f)
        if not pred.ok:
            raise SystemExit(f"{f}: {pred.error}")
    return (time.perf_counter() - t0) / len(files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fusion", required=True)
    ap.add_argument("--cnn", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    cnn = seconds_per_file(EmotionModel(args.cnn, threads=1), args.files)
    fusion = seconds_per_file(FusionModel(args.fusion, threads=1), args.files)
    print(f"{len(args.files)} files, one thread: CNN {cnn:.3f} s/file, fusion {fusion:.3f} s/file, "
          f"ratio fusion/CNN {fusion / cnn:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
