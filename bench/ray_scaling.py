"""Files per second of ``music2emotion predict`` with the local engine and with the Ray engine,
on the same folder on this machine, and the overhead Ray adds.

    python bench/ray_scaling.py --model MODEL.onnx [--files 160] [--seconds 30] [--cpus N]
    python bench/ray_scaling.py --model MODEL.onnx --folder /music --limit 200

Generates ``--files`` songs of ``--seconds`` (chords over a click beat; a third of them
MP3) in a temporary folder, or takes the first ``--limit`` audio files of ``--folder``.
Runs, in one process and one after the other, each through the command line:

1. the local engine (``--jobs N``) - the reference;
2. the Ray engine on a fresh local Ray instance of N CPUs: Ray's start-up, then a first
   run (which also starts Ray's worker processes and the model actor), then a second run
   on the warm instance - what each further batch on a running cluster costs;
3. the local engine again, so that a change in the machine's load shows.

Checks that both engines wrote the same rows (up to float rounding) and prints files/s
and the ratio of Ray's time to the local engine's (the faster of its two runs). On one
machine Ray adds its start-up and scheduling to the same per-file work; its value is that
the same command spreads over many machines (docs/distributed.md, with the figures).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread per worker process for both engines, set before numpy loads OpenBLAS
# (worker processes inherit it). Ray sets this for its workers; the local engine's workers
# otherwise start one BLAS thread per core each, and on a busy 2-core machine their spinning
# doubled its time (36.8 s against 17.5 s for 64 of these files), which would credit Ray
# with a gain that is not its own.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from music2emotion import cli, ray_engine  # noqa: E402
from music2emotion.audio import find_audio_files  # noqa: E402

SR = 22_050


def song(seconds: float, i: int) -> np.ndarray:
    """Chords over a click beat; tempo and key vary with ``i`` so files differ."""
    t = np.arange(int(seconds * SR)) / SR
    root = 220.0 * 2 ** ((i % 12) / 12)
    y = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5)) / 3
    beat = 60.0 / (80 + 7 * (i % 10))
    rng = np.random.default_rng(i)
    clicks = (np.mod(t, beat) < 0.015) * rng.standard_normal(len(t))
    return (0.3 * y * np.exp(-1.2 * np.mod(t, 2 * beat)) + 0.15 * clicks).astype(np.float32)


def make_folder(root: Path, files: int, seconds: float) -> Path:
    for i in range(files):
        ext = "mp3" if i % 3 == 0 else "wav"
        sf.write(str(root / f"song{i:04d}.{ext}"), song(seconds, i), SR)
    return root


def rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["path"]: r for r in csv.DictReader(f)}


def max_difference(a: dict[str, dict[str, str]], b: dict[str, dict[str, str]]) -> float:
    if a.keys() != b.keys():
        raise SystemExit("the engines wrote rows for different files")
    worst = 0.0
    for path, ra in a.items():
        rb = b[path]
        if (ra["error"], ra["windows"]) != (rb["error"], rb["windows"]):
            raise SystemExit(f"{path}: the engines disagree: {ra} vs {rb}")
        for col in ("valence", "arousal"):
            if ra[col]:
                worst = max(worst, abs(float(ra[col]) - float(rb[col])))
    return worst


def timed_predict(args: list[str]) -> float:
    start = time.perf_counter()
    rc = cli.main(["predict", *args, "--no-progress"])
    if rc != 0:
        raise SystemExit(f"predict {' '.join(args)} exited {rc}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="ONNX model file, or a bundled model by name (default: accurate)")
    ap.add_argument("--files", type=int, default=160, help="generated files (default 160)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each generated file")
    ap.add_argument("--folder", help="use the audio files of this folder instead")
    ap.add_argument("--limit", type=int, default=200, help="with --folder: at most this many files")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1,
                    help="local worker processes, and CPUs of the local Ray instance (default: all)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="m2e-ray-bench-") as tmp:
        work = Path(tmp)
        if args.folder:
            files = [str(p) for p in find_audio_files([args.folder])[: args.limit]]
            what = f"{len(files)} files of {args.folder}"
        else:
            (work / "songs").mkdir()
            files = [str(make_folder(work / "songs", args.files, args.seconds))]
            what = f"{args.files} generated files of {args.seconds:g} s"
        n = len(find_audio_files(files))
        model = ["--model", args.model] if args.model else []
        common = [*files, *model, "--jobs", str(args.cpus)]
        print(f"{what}, {args.cpus} CPUs; load average {os.getloadavg()[0]:.1f}", flush=True)

        local = timed_predict([*common, "-o", str(work / "local.csv")])
        print(f"local engine          {n / local:7.2f} files/s  ({local:.1f} s)", flush=True)

        start = time.perf_counter()
        ray_engine.init_ray(num_cpus=args.cpus)
        startup = time.perf_counter() - start
        first = timed_predict([*common, "--engine", "ray", "-o", str(work / "ray1.csv")])
        warm = timed_predict([*common, "--engine", "ray", "-o", str(work / "ray2.csv")])
        import ray

        ray.shutdown()
        cold = startup + first
        print(f"Ray start-up          {startup:7.1f} s")
        print(f"Ray engine, cold      {n / cold:7.2f} files/s  ({cold:.1f} s: start-up + first run)")
        print(f"Ray engine, warm      {n / warm:7.2f} files/s  ({warm:.1f} s: a second run)", flush=True)

        again = timed_predict([*common, "-o", str(work / "local2.csv")])
        print(f"local engine, again   {n / again:7.2f} files/s  ({again:.1f} s)")

        ref = rows(work / "local.csv")
        diff = max(max_difference(ref, rows(work / f)) for f in ("ray1.csv", "ray2.csv"))
        best_local = min(local, again)
        print(f"same rows: yes (largest valence/arousal difference {diff:.1e})")
        print(f"load average at the end {os.getloadavg()[0]:.1f} (other processes share these CPUs)")
        print(f"Ray overhead on this machine: x{cold / best_local:.2f} the local time cold, "
              f"x{warm / best_local:.2f} warm")


if __name__ == "__main__":
    sys.exit(main())
