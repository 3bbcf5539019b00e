"""Audio to model input: fixed-length windows of normalised log-mel spectrograms.

One window of ``settings.window_seconds`` becomes ``[1, n_mels, n_frames]`` (30 s gives
``[1, 64, 1292]``): 64 mel bands, hop 512, power in dB relative to the window's peak, then
standardised per window to mean 0 / std 1 so loudness differences between masters do not
dominate. Long audio is cut into windows by :func:`iter_windows` as it streams in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import librosa
import numpy as np

from .config import MIN_AUDIO_SECONDS, FeatureSettings


class TooShortError(ValueError):
    """Audio shorter than ``MIN_AUDIO_SECONDS``."""


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Truncate or zero-pad ``y`` to exactly ``n`` samples."""
    if len(y) >= n:
        return y[:n]
    return np.pad(y, (0, n - len(y)))


def normalize(m: np.ndarray) -> np.ndarray:
    """Standardise to mean 0 / std 1; a constant input (silence) becomes all zeros."""
    m = m - m.mean()
    std = m.std()
    return (m / std if std > 1e-8 else m).astype(np.float32)


def log_mel(y: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Normalised log-mel spectrogram ``[n_mels, frames]`` of ``y``, as float32."""
    power = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float32),
        sr=settings.sample_rate,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        n_mels=settings.n_mels,
    )
    return normalize(librosa.power_to_db(power, ref=np.max))


def window_features(y: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """The model input ``[1, n_mels, n_frames]`` for one window: ``y`` cut or padded to fit."""
    return log_mel(fit_length(y, settings.window_samples), settings)[np.newaxis]


@dataclass(frozen=True)
class Window:
    """One window of audio: ``samples`` has exactly ``window_samples`` values (zero-padded
    only when the whole file is shorter than a window); ``start``/``end`` are in seconds
    and cover the real audio in it."""

    start: float
    end: float
    samples: np.ndarray


def iter_windows(
    blocks: Iterable[np.ndarray],
    settings: FeatureSettings,
    hop_seconds: float | None = None,
) -> Iterator[Window]:
    """Cut streamed audio into windows of ``settings.window_seconds`` every ``hop_seconds``.

    Windows start at 0, hop, 2*hop, ... When the last one stops short of the end by more
    than ``MIN_AUDIO_SECONDS``, one more window is aligned to the end of the file rather than
    zero-padded, because the model never saw padding inside a song. A file shorter than a
    window gives a single padded window; one shorter than ``MIN_AUDIO_SECONDS`` raises
    :class:`TooShortError`. Only about one window plus one block is held in memory.
    """
    sr = settings.sample_rate
    size = settings.window_samples
    hop = max(1, int(round((hop_seconds or settings.window_seconds) * sr)))
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute index of buf[0]
    next_start = 0
    covered = 0  # end of the last emitted window
    for block in blocks:
        buf = np.concatenate([buf, block]) if buf.size else np.asarray(block, np.float32)
        total = buf_start + len(buf)
        while next_start + size <= total:
            a = next_start - buf_start
            yield Window(next_start / sr, (next_start + size) / sr, buf[a : a + size].copy())
            covered = next_start + size
            next_start += hop
        keep_from = max(buf_start, min(next_start, total - size))
        buf = buf[keep_from - buf_start :]
        buf_start = keep_from
    total = buf_start + len(buf)
    if covered == 0:
        if total < MIN_AUDIO_SECONDS * sr:
            raise TooShortError(
                f"too short: {total / sr:.2f} s of audio, at least {MIN_AUDIO_SECONDS} s needed"
            )
        yield Window(0.0, total / sr, fit_length(buf, size))
    elif total - covered > MIN_AUDIO_SECONDS * sr:
        yield Window((total - size) / sr, total / sr, buf[len(buf) - size :].copy())
