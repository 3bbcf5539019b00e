"""Damaged and truncated files in every container: what row each gets, and what decoding it costs.

    python bench/damage.py [--seconds 180] [--seeds 2]
    python bench/damage.py --clips /path/deam/audio /path/4q/audio [--n 10] [--seconds 30]

The damage campaign of ``tests/test_damage_campaign.py`` on larger files: each source (3
minutes of generated music by default; with ``--clips``, ``--n`` real clips of each folder,
looped to ``--seconds`` of 44.1 kHz stereo and re-encoded by PyAV, Vorbis by libsndfile, as
PyAV's FFmpeg has no Vorbis encoder of its own) is written in every container of
``helpers.DAMAGE_CONTAINERS`` (``--containers`` picks some), then damaged by every mutation of
``helpers.MUTATIONS`` (``--seeds`` places each), and decoded by ``stream_audio`` as a
prediction decodes it. Printed per container and mutation: how many files got each outcome
(clean, a ``damaged`` or ``truncated`` warning, an error by its reason, a reason outside the
documented ones, ``unexpected`` exceptions included), and the decoding time of the damaged files against the intact one's, measured
in this run (median and largest ratio). Run it against another checkout with
``PYTHONPATH=other/src`` to compare.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the campaign's own mutations

from helpers import DAMAGE_CONTAINERS, MUTATIONS, mutate, outcome, write, write_av, write_damage_source  # noqa: E402

RATE = 44_100


def decode(path: Path) -> tuple[str, float]:
    """What decoding ``path`` as a prediction does gives (:func:`helpers.outcome` of its
    reason), and its seconds."""
    from music2emotion.audio import AudioError, stream_audio

    t0 = time.perf_counter()
    error = warning = ""
    try:
        blocks = stream_audio(path)
        for _ in blocks:
            pass
        warning = blocks.damage
    except AudioError as exc:
        error = str(exc)
    except Exception as exc:  # what the campaign looks for: a file's content must never get here
        error = f"unexpected {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    kind = outcome(error, warning)
    if kind.startswith("UNDOCUMENTED") or os.environ.get("DAMAGE_VERBOSE"):
        print(f"  {path.name}: {error or warning}", file=sys.stderr)
    if kind.startswith("UNDOCUMENTED"):  # named by its first words, to count alike ones together
        kind = "UNDOCUMENTED " + ("error: " if error else "") + re.split(r"[:(]", error or warning)[0]
    return kind, seconds


def clip_audio(path: str, seconds: float) -> np.ndarray:
    """A real clip as ``seconds`` of 44.1 kHz stereo float32, looped."""
    import soundfile as sf
    import soxr

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != RATE:
        y = soxr.resample(y, sr, RATE, quality="HQ").astype(np.float32)
    y = np.repeat(y, 2, axis=1) if y.shape[1] == 1 else y[:, :2]
    return np.tile(y, (int(np.ceil(seconds * RATE / len(y))), 1))[: int(seconds * RATE)]


def write_clip(path: Path, y: np.ndarray) -> Path:
    """``y`` in the container ``path`` names, encoded by PyAV (Vorbis by libsndfile)."""
    if path.suffix in (".ogg", ".aiff"):
        return write(path, y, RATE)
    if path.suffix in (".opus", ".webm"):
        import soxr

        return write_av(path, soxr.resample(y, RATE, 48_000, quality="HQ").astype(np.float32), 48_000)
    options = {"write_xing": "0"} if path.name.endswith("noxing.mp3") else (
        {"movflags": "faststart"} if path.name.endswith("faststart.m4a") else None)
    return write_av(path, y, RATE, options=options)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=None, help="length of each source (default 180, 30 with --clips)")
    ap.add_argument("--seeds", type=int, default=2, help="places of each mutation (default 2)")
    ap.add_argument("--clips", nargs="+", help="folders of real clips to use instead of generated music")
    ap.add_argument("--n", type=int, default=None, help="clips per folder (default 10), or generated songs (default 1)")
    ap.add_argument("--containers", nargs="+", default=list(DAMAGE_CONTAINERS), choices=DAMAGE_CONTAINERS)
    ap.add_argument("--mutations", nargs="+", default=list(MUTATIONS), choices=MUTATIONS)
    args = ap.parse_args()
    seconds = args.seconds or (30.0 if args.clips else 180.0)
    from music2emotion.audio import quiet_decoder_messages

    if args.clips:
        sources = [c for folder in args.clips for c in sorted(glob.glob(os.path.join(folder, "*.mp3")))[: args.n or 10]]
    else:
        sources = [f"generated {k}" for k in range(args.n or 1)]
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="m2e-damage-") as tmp, quiet_decoder_messages():
        for k, source in enumerate(sources):
            y = clip_audio(source, seconds) if args.clips else None
            for name in args.containers:
                intact = Path(tmp) / f"{k}-{name}"
                if y is not None:
                    write_clip(intact, y)
                else:
                    write_damage_source(intact, seconds, seed=k)
                kind, base = decode(intact)
                counts[name, "intact"][kind] += 1
                base = min(base, decode(intact)[1])  # the second read is the cached one, as the damaged files' are
                data = intact.read_bytes()
                for mutation in args.mutations:
                    for seed in range(args.seeds):
                        damaged = Path(tmp) / f"{k}-{mutation}{seed}-{name}"
                        damaged.write_bytes(mutate(data, mutation, seed))
                        kind, took = decode(damaged)
                        counts[name, mutation][kind] += 1
                        ratios[name, mutation].append(took / base)
                        damaged.unlink()
                intact.unlink()
            print(f"{k + 1}/{len(sources)} sources done", file=sys.stderr)
    kinds = sorted({kind for c in counts.values() for kind in c}, key=lambda k: (k.startswith("error"), k))
    what = f"{len(sources)} {'real clips' if args.clips else 'generated songs'} of {seconds:g} s"
    print(f"{what}, {args.seeds} place(s) per mutation; decoding time against the intact file's\n")
    print("| container | mutation | " + " | ".join(kinds) + " | time median | time max |")
    print("|---|---|" + "---|" * len(kinds) + "---|---|")
    for name in args.containers:
        for mutation in ["intact", *args.mutations]:
            c = counts[name, mutation]
            r = ratios.get((name, mutation))
            times = f"{np.median(r):.2f} | {max(r):.2f}" if r else "1 | 1"
            print(f"| {name} | {mutation} | " + " | ".join(str(c[k] or "") for k in kinds) + f" | {times} |")
    total = Counter()
    for (name, mutation), c in counts.items():
        if mutation != "intact":
            total.update(c)
    print("\nall damaged files: " + ", ".join(f"{k} {total[k]}" for k in kinds))
    undocumented = sum(n for c in counts.values() for k, n in c.items() if k.startswith("UNDOCUMENTED"))
    if undocumented:
        sys.exit(f"{undocumented} files got a reason outside the documented ones (above)")


if __name__ == "__main__":
    main()
