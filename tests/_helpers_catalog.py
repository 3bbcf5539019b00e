"""Shared pieces for the catalog-scale inference tests: a tiny model and generated audio.

The model is a randomly initialised EmotionCNN exported with the real exporter, so the
tests run the real ONNX path without the bundled model; its 2-second window keeps files
(and tests) short while still giving several windows per file. Its values mean nothing;
the tests check plumbing, not accuracy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from music2emotion.config import FeatureSettings

SR = 22_050
WINDOW = 2.0


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from music2emotion.export import export_onnx
    from music2emotion.model import EmotionCNN

    torch.manual_seed(0)
    model = EmotionCNN(channels=(4, 8), hidden=8)
    return export_onnx(model, FeatureSettings(window_seconds=WINDOW),
                       tmp_path_factory.mktemp("model") / "tiny.onnx")


def music(seconds: float, sr: int = SR, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Something with structure: a few drifting tones plus noise bursts, ``[n, channels]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    y = np.zeros_like(t)
    for k, f in enumerate(rng.uniform(110, 880, size=3)):
        y += np.sin(2 * np.pi * f * t * (1 + 0.01 * k * t)) / 3
    y += 0.3 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.7 * t) > 0.5)
    y = 0.3 * y / np.abs(y).max()
    out = np.stack([np.roll(y, 13 * c) for c in range(channels)], axis=1)
    return out.astype(np.float32)


def write(path: str | os.PathLike[str], seconds: float, sr: int = SR, channels: int = 1,
          seed: int = 0, **kwargs: object) -> Path:
    """Write generated audio; the format follows the extension (``.mp3`` needs libsndfile
    1.1 or newer, which the soundfile wheels bundle)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # bytes: soundfile cannot encode names that are not valid UTF-8 itself
    sf.write(os.fsencode(path), music(seconds, sr, channels, seed), sr, **kwargs)
    return path


def truncated_mp3(path: str | os.PathLike[str], seconds: float = 6.0, keep: float = 0.4) -> Path:
    """An MP3 cut to ``keep`` of its bytes, as a broken download leaves it."""
    path = Path(path)
    full = write(path.with_name(path.stem + "-full.mp3"), seconds)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def alive(pid: int) -> bool:
    """Whether a process is still running (a zombie awaiting its parent's wait() is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def square_or_die(x: int) -> int:
    """A task for the process-pool tests: item 3 kills its worker as a decoder crash would."""
    if x == 3:
        os._exit(70)
    return x * x


def failed_item(x: int, reason: str) -> int:
    return -1


def broken_initializer() -> None:
    raise RuntimeError("this worker cannot start")


def square_slowly(x: int) -> int:
    """A task for the early-stop test: every item after the first takes a minute."""
    if x:
        import time

        time.sleep(60)
    return x * x
