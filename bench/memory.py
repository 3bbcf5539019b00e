"""Peak memory of predicting one long file: bounded by the window, not the file.

    python bench/memory.py --model emotion_model.onnx [--minutes 3 20 60] [--dir D]

For each length it writes (or reuses, with ``--dir``) a generated 44.1 kHz stereo MP3 and,
in a fresh child process per measurement, reads the peak resident set size (``ru_maxrss``):

* ``baseline``: after imports, loading the model and predicting a 10-second clip, so every
  library is loaded and warmed up;
* ``predict``: after predicting the long file as ``music2emotion predict`` does (streamed
  blocks, windows batched through ONNX Runtime), with its timeline kept;
* ``whole file``: after decoding the whole file into one array (``load_audio``), for
  contrast: the memory streaming saves.

Prints a Markdown table. Exit status 0 when the 60-minute (longest) file's peak stays
within 10% of the 3-minute (shortest) one's, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _songs import write_song  # noqa: E402

TOLERANCE = 1.10


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(path: str, model_path: str, mode: str, warmup: str) -> None:
    """Run in a fresh process: measure one thing, print it as JSON."""
    from music2emotion import EmotionModel
    from music2emotion.audio import load_audio

    model = EmotionModel(model_path, threads=1)
    assert model.predict_file(warmup).ok
    baseline = _peak_mb()
    t0 = time.perf_counter()
    if mode == "predict":
        pred = model.predict_file(path, timeline=True)
        if not pred.ok:
            sys.exit(f"{path}: {pred.error}")
        extra = {"windows": pred.windows}
    else:
        extra = {"samples": int(load_audio(path).size)}
    print(json.dumps({"baseline": baseline, "peak": _peak_mb(),
                      "seconds": time.perf_counter() - t0, **extra}))


def measure(path: Path, model: str, mode: str, warmup: Path) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--model", model,
           "--child", str(path), "--mode", mode, "--warmup", str(warmup)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="ONNX model file, or a bundled model by name (default: accurate)")
    ap.add_argument("--minutes", type=float, nargs="+", default=[3, 20, 60])
    ap.add_argument("--dir", help="folder for the songs, kept and reused (default: a temporary one)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="predict", help=argparse.SUPPRESS)
    ap.add_argument("--warmup", help=argparse.SUPPRESS)
    args = ap.parse_args()

    from music2emotion.modelfile import resolve_model

    try:
        model = str(resolve_model(args.model))
    except FileNotFoundError as exc:
        sys.exit(str(exc))
    if args.child:
        child(args.child, model, args.mode, args.warmup)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        warmup = folder / "warmup-10s.mp3"
        if not warmup.exists():
            write_song(warmup, 10, seed=99)
        rows = []
        for minutes in args.minutes:
            path = folder / f"song-{minutes:g}min.mp3"
            if not path.exists():
                print(f"writing {path} ...", file=sys.stderr, flush=True)
                write_song(path, minutes * 60, seed=int(minutes))
            pred = measure(path, model, "predict", warmup)
            whole = measure(path, model, "whole", warmup)
            rows.append((minutes, path.stat().st_size / 2**20, pred, whole))
            print(f"{minutes:g} min: predict peak {pred['peak']:.0f} MB "
                  f"(baseline {pred['baseline']:.0f} MB), whole-file decode {whole['peak']:.0f} MB",
                  file=sys.stderr, flush=True)

    print("| audio | MP3 size | peak RSS, `predict` (streamed) | of which above the warmed-up "
          "baseline | peak RSS, whole file decoded at once | predict time |")
    print("|---|---|---|---|---|---|")
    for minutes, size, pred, whole in rows:
        print(f"| {minutes:g} min | {size:.1f} MB | {pred['peak']:.0f} MB | "
              f"{pred['peak'] - pred['baseline']:+.0f} MB | {whole['peak']:.0f} MB | "
              f"{pred['seconds']:.1f} s |")
    shortest, longest = rows[0][2]["peak"], rows[-1][2]["peak"]
    ok = longest <= TOLERANCE * shortest
    print(f"\n{rows[-1][0]:g} min / {rows[0][0]:g} min peak: {longest / shortest:.3f} "
          f"(target <= {TOLERANCE:.2f}) {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
