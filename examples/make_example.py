"""Write a short synthetic example song (major chords over a steady beat) to a WAV file.

    python examples/make_example.py example.wav [--seconds 20]

The repository ships no music (DEAM is for research use only), so the quickstart predicts
on this generated clip; point ``music2emotion predict`` at your own files for real results.
"""

import argparse

import numpy as np
import soundfile as sf

SR = 22_050


def make(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    chords = [(261.6, 329.6, 392.0), (349.2, 440.0, 523.3), (392.0, 493.9, 587.3), (261.6, 329.6, 392.0)]
    y = np.zeros_like(t)
    for i, chord in enumerate(chords * int(np.ceil(seconds / 8))):
        seg = (t >= i * 2.0) & (t < (i + 1) * 2.0)
        for f in chord:
            y[seg] += np.sin(2 * np.pi * f * t[seg]) * np.exp(-1.5 * (t[seg] - i * 2.0))
    beat = (np.mod(t, 0.5) < 0.02) * np.random.default_rng(0).standard_normal(len(t)) * 0.5
    return (0.25 * y / np.abs(y).max() + 0.2 * beat).astype(np.float32)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="WAV file to write")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    sf.write(args.out, make(args.seconds), SR)
    print(f"wrote {args.out} ({args.seconds:g} s)")
