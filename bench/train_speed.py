"""How long ``music2emotion train`` takes on labelled songs, with a cold and a warm feature
cache, measured in one run.

    python bench/train_speed.py [--songs 400] [--seconds 30] [--arch accurate] [--jobs 2]

Writes ``--songs`` generated 44.1 kHz stereo MP3 songs of ``--seconds`` each (bench/_songs.py;
their time is not counted), labels them by mood (balanced, two songs per artist), then runs
the command twice, each in a fresh process as a user would: with an empty cache (every file
decoded and heard) and again with the cache it left (a new label file, the same songs).
The figures are wall seconds on this machine; the targets are 5 minutes cold and 1 minute
warm for 400 songs of 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _songs import write_song

MOODS = ("happy", "angry", "sad", "tender")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--songs", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--arch", default="accurate")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = ["path,mood,artist"]
        for i in range(args.songs):
            write_song(root / "songs" / f"{i:04d}.mp3", args.seconds, seed=i)
            rows.append(f"songs/{i:04d}.mp3,{MOODS[i % 4]},artist {i // 8}-{i % 4}")
        (root / "labels.csv").write_text("\n".join(rows) + "\n")
        times = {}
        for run in ("cold", "warm"):
            cmd = [sys.executable, "-m", "music2emotion.cli", "train", "--arch", args.arch, "--labels",
                   str(root / "labels.csv"), "--out", str(root / f"run-{run}"), "--cache-dir", str(root / "cache"),
                   "--jobs", str(args.jobs)]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[run] = time.perf_counter() - t0
            print(f"{run} cache: {times[run]:.0f} s for {args.songs} songs of {args.seconds:g} s "
                  f"({args.arch}, --jobs {args.jobs})", flush=True)
        print(f"warm / cold: {times['warm'] / times['cold']:.2f}; per song cold "
              f"{times['cold'] / args.songs:.2f} s, warm {times['warm'] / args.songs:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
