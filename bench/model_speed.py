"""Seconds per file of several models on the same files, measured in one run, and where the
time goes: decoding, each window's inputs (features), and the ONNX session.

    python bench/model_speed.py --model accurate --model fast [--model cnn.onnx] \\
        ../shared/deam/audio/1000.mp3 ../shared/deam/audio/1001.mp3 ...

Each model runs single-threaded in this process, files in turn, after one warm-up file, so
the figures reflect the work per file, not parallelism. Models are interleaved file by file,
so other work on the machine slows them alike; ratios are against the first ``--model``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from music2emotion import EmotionModel
from music2emotion.audio import stream_audio
from music2emotion.windows import iter_windows


def stages(model: EmotionModel, path: str) -> np.ndarray:
    """Seconds of [decode + windowing, window inputs, ONNX session] for one file."""
    times = np.zeros(3)
    t0 = time.perf_counter()
    blocks = stream_audio(path, model.settings.sample_rate)
    inputs = []
    for w in iter_windows(blocks, model.settings):
        t1 = time.perf_counter()
        inputs.append(model.window_inputs(w.samples))
        times[1] += time.perf_counter() - t1
    times[0] = time.perf_counter() - t0 - times[1]
    t0 = time.perf_counter()
    model.predict_windows(inputs)
    times[2] = time.perf_counter() - t0
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True,
                    help="a model file or bundled model name; repeat to compare")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    models = [EmotionModel(m, threads=1) for m in args.model]
    totals = np.zeros((len(models), 3))
    with threadpool_limits(1):
        for m in models:
            stages(m, args.files[0])  # warm-up: lazy imports, numba compilation, session init
        for f in args.files:
            for i, m in enumerate(models):
                totals[i] += stages(m, f)
    per_file = totals / len(args.files)
    print(f"{len(args.files)} files, one thread, seconds per file")
    print(f"{'model':<28} {'kind':<12} {'decode':>7} {'inputs':>7} {'session':>8} {'total':>7} {'vs first':>9}")
    for m, (dec, inp, ses) in zip(models, per_file):
        total = dec + inp + ses
        print(f"{m.path.name:<28} {m.kind:<12} {dec:7.3f} {inp:7.3f} {ses:8.3f} {total:7.3f} "
              f"{total / per_file[0].sum():8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
