"""How often the ``not music`` warning fires on real songs, and how often on what is not music.

    python bench/not_music.py --songs /path/deam/audio /path/4q/audio [--model accurate --model fast]
                              [--jobs 2] [--generated 12]

For each model: the share of the songs under ``--songs`` that get a ``not music: ...``
warning (the false alarms; target at most 1 %), each of them listed with its warning; then,
for generated files of each kind, how many get the warning and which kind it names:
white, pink and brown noise, mains hum, room tone, near-silence with hiss, speech (Debian's
``espeak-ng`` synthesises it; without it on the PATH the speech kinds are left out) clean
and in room noise, and where the boundary lies: speech over a music bed (clips of the songs)
at 30 to 0 dB below it, and a spoken intro before 40 s of music. Everything goes through the
library's own prediction (:func:`music2emotion.predict_files`, :func:`music2emotion.predict_audio`),
so the figures are those of the shipped rule (:mod:`music2emotion.music`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from music2emotion import EmotionModel, predict_audio, predict_files
from music2emotion.audio import load_audio, scan_audio_files
from music2emotion.music import not_music_kind

SR = 32_000
SPEECH_TEXT = (
    "The history of the region begins long before the first written records. Farmers settled the "
    "valleys, built small villages of wood and stone, and traded grain for salt with the people of the "
    "coast. Today we talk about how those early trade routes shaped the towns we know, and why some of "
    "them vanished while others grew into cities. Welcome back to the podcast. In this episode my guest "
    "explains the science of sleep, what happens in the brain at night, and how much rest an adult "
    "really needs. Chapter one. It was a cold morning in November when the letter arrived, and nobody in "
    "the house could have guessed what it would bring.")
VOICES = ("en", "en-us", "en+f3", "en+m3", "en+f4", "de", "fr", "es", "it", "nl")


def scaled(y: np.ndarray, rms: float) -> np.ndarray:
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12) * rms).astype(np.float32)


def white(seconds: float, rms: float, seed: int) -> np.ndarray:
    return scaled(np.random.default_rng(seed).standard_normal(int(seconds * SR)), rms)


def coloured(seconds: float, exponent: float, rms: float, seed: int) -> np.ndarray:
    """Noise whose power falls as 1/f^exponent: 1 pink, 2 brown."""
    n = int(seconds * SR)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    return scaled(np.fft.irfft(spectrum / f ** (exponent / 2), n), rms)


def hum(seconds: float, base: float, rms: float, seed: int) -> np.ndarray:
    """Mains hum: the base frequency and six harmonics, a trace of noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
            for k in range(1, 8))
    return scaled(y + 0.02 * np.std(y) * rng.standard_normal(len(t)), rms)


def room_tone(seconds: float, rms: float, seed: int) -> np.ndarray:
    return coloured(seconds, 2, rms, seed) + white(seconds, 0.3 * rms, seed + 1) + hum(seconds, 60, 0.2 * rms, seed + 2)


def hiss(seconds: float, rms: float, seed: int) -> np.ndarray:
    """Near-silence with tape-like hiss (white noise tilted towards the treble)."""
    return scaled(np.diff(np.random.default_rng(seed).standard_normal(int(seconds * SR) + 1)), rms)


def speech(seconds: float, voice: str, words_per_minute: int, pitch: int, seed: int) -> np.ndarray:
    """Synthetic speech by espeak-ng, repeated to ``seconds``."""
    import soxr

    words = SPEECH_TEXT.split()
    start = int(np.random.default_rng(seed).integers(0, len(words) // 2))
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch), "-w", str(out),
                        " ".join((words[start:] + words) * 4)], check=True, capture_output=True)
        y, rate = sf.read(out, dtype="float32")
    y = soxr.resample(y, rate, SR)
    n = int(seconds * SR)
    return scaled(np.tile(y, -(-n // len(y)))[:n], 0.2)


def music_bed(clips: list[Path], seconds: float, seed: int) -> np.ndarray:
    """Clips of the songs, one after another, to ``seconds``."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    while sum(map(len, parts)) < seconds * SR:
        parts.append(load_audio(clips[int(rng.integers(len(clips)))], SR))
    return scaled(np.concatenate(parts)[: int(seconds * SR)], 0.2)


def generated(n: int, clips: list[Path]) -> list[tuple[str, np.ndarray]]:
    """(kind, audio) of every generated file: ``n`` of each noise and speech kind, in
    lengths of 10, 30 and 60 s and a range of levels; the boundary cases on the songs."""
    items = []
    for s in range(n):
        seconds, rms = (10, 30, 60)[s % 3], (0.01, 0.05, 0.2, 0.5)[s % 4]
        items += [("white noise", white(seconds, rms, s)),
                  ("pink noise", coloured(seconds, 1, rms, s)),
                  ("brown noise", coloured(seconds, 2, rms, s)),
                  ("mains hum", hum(seconds, (50, 60)[s % 2], rms, s)),
                  ("room tone", room_tone(seconds, (0.003, 0.01, 0.03)[s % 3], s)),
                  ("near-silence with hiss", hiss(seconds, (0.0003, 0.001, 0.003)[s % 3], s))]
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is not on the PATH: the speech kinds are left out (apt-get install espeak-ng)")
        return items
    for s in range(int(2.5 * n)):
        seconds = (10, 30, 60)[s % 3]
        y = speech(seconds, VOICES[s % len(VOICES)], (130, 160, 190)[s % 3], 30 + 10 * (s % 5), s)
        items.append(("speech", y))
        if s % 2 == 0:
            items.append(("speech in room noise", y + room_tone(seconds, 0.01, s)))
    if clips:
        for s in range(n):
            voice = VOICES[s % len(VOICES)]
            for db in (-30, -20, -15, -10, -5, 0):
                items.append((f"speech over music {-db} dB below it",
                              speech(30, voice, 160, 50, 100 + s) + music_bed(clips, 30, s) * 10 ** (db / 20)))
            for intro in (10, 20, 30, 40, 60):
                items.append((f"a {intro} s spoken intro, then 40 s of music",
                              np.concatenate([speech(intro, voice, 160, 50, 200 + s), music_bed(clips, 40, 50 + s)])))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", nargs="+", default=[], help="folders (or files) of real songs")
    parser.add_argument("--model", action="append", help="bundled model name or file (repeatable; default accurate)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes for the songs (default: all cores)")
    parser.add_argument("--generated", type=int, default=12, help="generated files of each noise kind (default 12)")
    args = parser.parse_args()
    songs = scan_audio_files(args.songs).files if args.songs else []
    items = generated(args.generated, songs)
    for name in args.model or ["accurate"]:
        model = EmotionModel(name, threads=1)
        print(f"\n== model {name}" + ("" if model.hears else ": its graph has no encoder output, so no warning"))
        if songs:
            flagged = []
            for pred in predict_files(songs, model, jobs=args.jobs, ordered=False):
                if not_music_kind(pred.warning):
                    flagged.append(pred)
            share = len(flagged) / len(songs)
            print(f"songs: {len(flagged)} of {len(songs)} flagged as not music ({100 * share:.2f} %)")
            for pred in sorted(flagged, key=lambda p: p.path):
                print(f"  {pred.path}: {pred.warning}")
        counts: dict[str, Counter[str]] = {}
        for kind, y in items:
            said = not_music_kind(predict_audio(y, SR, model).warning) or "music"
            counts.setdefault(kind, Counter())[said] += 1
        print(f"{'generated':48s} {'files':>5s} {'flagged':>8s} {'speech':>7s} {'noise':>6s}")
        for kind, c in counts.items():
            total = sum(c.values())
            print(f"{kind:48s} {total:5d} {total - c['music']:8d} {c['speech']:7d} {c['noise']:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
