"""Cutting streamed audio into the model's windows, and the options that shape them.

:func:`iter_windows` takes the blocks of :func:`music2emotion.audio.stream_audio` (or of
an array, :func:`music2emotion.audio.stream_array`) and yields fixed-length windows as the
audio arrives, holding about one window plus one block. :func:`check_options` is the one
check of the window, hop, batch and jobs options, for every engine and the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from .config import MIN_AUDIO_SECONDS, FeatureSettings

# Windows per ONNX Runtime call unless a caller says otherwise.
DEFAULT_BATCH = 16


class TooShortError(ValueError):
    """Audio shorter than ``MIN_AUDIO_SECONDS``."""


class OptionError(ValueError):
    """An option outside its range. ``option`` names the parameter (``hop_seconds``, ...)
    and ``requirement`` says what it must be, so the command line can name its own flag."""

    def __init__(self, option: str, requirement: str, value: object):
        super().__init__(f"{option} {requirement}, not {value!r}")
        self.option, self.requirement, self.value = option, requirement, value


def check_options(
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    jobs: int | None = None,
    max_duration: float | None = None,
) -> None:
    """Refuse options no engine can run with.

    Parameters
    ----------
    window_seconds : float, optional
        Window length; at least ``MIN_AUDIO_SECONDS``.
    hop_seconds : float, optional
        Seconds between window starts; positive.
    batch_size : int
        Windows per ONNX Runtime call; at least 1.
    jobs : int, optional
        Worker processes; at least 1.
    max_duration : float, optional
        Longest file, in seconds; positive.

    Raises
    ------
    OptionError
        The first option out of range.
    """
    if window_seconds is not None and not window_seconds >= MIN_AUDIO_SECONDS:
        raise OptionError("window_seconds", f"must be at least {MIN_AUDIO_SECONDS} s", window_seconds)
    if hop_seconds is not None and not hop_seconds > 0:
        raise OptionError("hop_seconds", "must be positive", hop_seconds)
    if not batch_size >= 1:
        raise OptionError("batch_size", "must be at least 1", batch_size)
    if jobs is not None and not jobs >= 1:
        raise OptionError("jobs", "must be at least 1", jobs)
    if max_duration is not None and not max_duration > 0:
        raise OptionError("max_duration", "must be positive", max_duration)


def with_window(settings: FeatureSettings, window_seconds: float | None = None) -> FeatureSettings:
    """``settings`` with another window length (``None``: unchanged), checked."""
    if window_seconds is None:
        return settings
    check_options(window_seconds=window_seconds)
    return replace(settings, window_seconds=float(window_seconds))


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Truncate or zero-pad ``y`` to exactly ``n`` samples."""
    if len(y) >= n:
        return y[:n]
    return np.pad(y, (0, n - len(y)))


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
    window gives a single padded window. Only about one window plus one block is held in
    memory.

    Parameters
    ----------
    blocks : iterable of numpy.ndarray
        Consecutive mono float32 blocks at ``settings.sample_rate``.
    settings : FeatureSettings
        The window length and sample rate.
    hop_seconds : float, optional
        Seconds between window starts (default: the window length).

    Yields
    ------
    Window

    Raises
    ------
    TooShortError
        The audio is shorter than ``MIN_AUDIO_SECONDS``.
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
