"""Generated stand-ins for music files, for the benchmarks (the repository ships no music).

A "song" is chords that change every two seconds, a beat of noise bursts and a slow swell,
written block by block (so writing an hour of it needs no more memory than a minute) as
44.1 kHz stereo, in whatever format the extension names: MP3 by default, the format a
music library mostly holds, so decoding costs what it costs there.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44_100
BLOCK_SECONDS = 10


def _block(start: int, n: int, sr: int, rng: np.random.Generator, notes: np.ndarray) -> np.ndarray:
    t = (start + np.arange(n)) / sr
    chord = notes[(t // 2).astype(int) % len(notes)]  # [n, 3] frequencies
    y = np.sin(2 * np.pi * chord * t[:, None]).sum(1) / 3
    y *= 0.6 + 0.4 * np.sin(2 * np.pi * t / 37.0)  # a slow swell
    beat = (np.mod(t, 0.5) < 0.03) * rng.standard_normal(n)
    left = 0.25 * y + 0.15 * beat
    right = 0.25 * np.roll(y, 17) + 0.15 * beat
    return np.stack([left, right], axis=1).astype(np.float32)


def write_song(path: str | os.PathLike[str], seconds: float, seed: int = 0, sr: int = SR) -> Path:
    """Write ``seconds`` of generated stereo audio to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    notes = rng.uniform(110, 660, size=(8, 3))
    total = int(seconds * sr)
    tmp = path.with_name(path.name + ".part" + path.suffix)
    with sf.SoundFile(tmp, "w", samplerate=sr, channels=2) as f:
        for start in range(0, total, BLOCK_SECONDS * sr):
            f.write(_block(start, min(BLOCK_SECONDS * sr, total - start), sr, rng, notes))
    os.replace(tmp, path)  # a half-written file is never mistaken for a finished one
    return path


def song_bytes(seconds: float, seed: int = 0, sr: int = 22_050) -> bytes:
    """The same kind of generated audio as 16-bit stereo WAV bytes, for uploading."""
    rng = np.random.default_rng(seed)
    notes = rng.uniform(110, 660, size=(8, 3))
    buf = io.BytesIO()
    sf.write(buf, _block(0, int(seconds * sr), sr, rng, notes), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()
