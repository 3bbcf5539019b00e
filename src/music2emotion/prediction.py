"""A file's result, and the one way its windows become it.

:func:`song_prediction` turns a file's window values into its :class:`Prediction`: every
engine (local worker processes, the Ray engine) and the server reach a result through it,
and every output (CSV, JSON Lines, Parquet, the HTTP API, pictures) reads values through
:meth:`Prediction.row` / :meth:`Segment.row` and :func:`on_scale`.

The song-level valence and arousal are the time-weighted mean of the window values in
which every second of audio counts the same (:func:`time_weighted_mean`): a second covered
by one window takes that window's value, a second covered by several (the last window,
aligned to the end of the file, overlaps its neighbour; a hop shorter than the window
overlaps them all) takes their mean. With the default hop (one window length) that is the
plain mean of the windows, except that the overlapping last window counts only for the
audio it adds. A model with a mood head gives each window the probabilities of the four
quadrants; the song's are the same time-weighted mean of the windows' (so they still sum
to 1). A model with intervals gives each value, the song's and each window's, its interval
``[clip(v - h, 0, 1), clip(v + h, 0, 1)]`` for the model's half-width ``h``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import AudioError
from .config import INTERVAL_COLUMNS, MOOD_CLASSES, MOOD_COLUMNS, Scale, to_deam
from .windows import TooShortError

SILENT_WARNING = "silent: the audio is digital silence, so the values mean nothing"
NO_VALUES = "the model gave no valid values for this audio (NaN)"
# Output values carry 4 decimals: a ten-thousandth of the 0-1 scale is far below what any
# model here can tell apart, and rows stay short.
DECIMALS = 4


def on_scale(value: float, scale: Scale = "unit") -> float:
    """A 0-1 value on ``scale`` (``"deam"``: DEAM's 1-9 ratings), unrounded."""
    return float(to_deam(value)) if scale == "deam" else float(value)


def output_value(value: float | None, scale: Scale = "unit") -> float | None:
    """A 0-1 value as every output shows it: on ``scale``, rounded to :data:`DECIMALS`."""
    return None if value is None else round(on_scale(value, scale), DECIMALS)


# What a mood head and intervals add to a song's or a window's row, in this order, after
# the columns every model gives.
MOOD_FIELDS = ("mood", *MOOD_COLUMNS, *INTERVAL_COLUMNS)


def top_mood(probabilities: Sequence[float]) -> str:
    """The word of the most probable quadrant (the first of a tie).

    Parameters
    ----------
    probabilities : sequence of float
        The four quadrant probabilities, in the order of ``MOOD_CLASSES``.

    Returns
    -------
    str
        ``happy``, ``angry``, ``sad`` or ``tender``.
    """
    return MOOD_CLASSES[int(np.argmax(np.asarray(probabilities, np.float64)))]


@dataclass(kw_only=True)
class MoodEstimates:
    """The quadrant probabilities and the intervals of a song or a window, all ``None`` for
    a model without a mood head (the probabilities) or without intervals (the bounds).

    Attributes
    ----------
    p_happy, p_angry, p_sad, p_tender : float or None
        Probabilities of the quadrants of :data:`~music2emotion.config.MOOD_CLASSES`,
        summing to 1.
    valence_low, valence_high, arousal_low, arousal_high : float or None
        The bounds of each value's interval on the 0-1 scale (the model's coverage, 90 % for
        the bundled models), clipped to [0, 1].
    """

    p_happy: float | None = None
    p_angry: float | None = None
    p_sad: float | None = None
    p_tender: float | None = None
    valence_low: float | None = None
    valence_high: float | None = None
    arousal_low: float | None = None
    arousal_high: float | None = None

    @property
    def probabilities(self) -> dict[str, float] | None:
        """``{mood: probability}`` in the order of ``MOOD_CLASSES``; ``None`` without a head."""
        if self.p_happy is None:
            return None
        return {m: getattr(self, c) for m, c in zip(MOOD_CLASSES, MOOD_COLUMNS)}

    @property
    def mood(self) -> str | None:
        """The most probable quadrant's word (:func:`top_mood`); ``None`` without a head."""
        probs = self.probabilities
        return None if probs is None else top_mood(list(probs.values()))

    def mood_row(self, scale: Scale = "unit") -> dict[str, Any]:
        """The :data:`MOOD_FIELDS`: the word, the probabilities rounded to
        :data:`DECIMALS`, the bounds on ``scale`` rounded like the values."""
        return {"mood": self.mood,
                **{c: None if getattr(self, c) is None else round(float(getattr(self, c)), DECIMALS)
                   for c in MOOD_COLUMNS},
                **{c: output_value(getattr(self, c), scale) for c in INTERVAL_COLUMNS}}


def mood_estimates(values: Sequence[float], moods: Sequence[float] | None,
                   intervals: tuple[float, float] | None) -> dict[str, float]:
    """The :class:`MoodEstimates` fields of one value pair, as keyword arguments.

    Parameters
    ----------
    values : sequence of float
        Valence and arousal, 0-1.
    moods : sequence of float, optional
        The four quadrant probabilities (``None``: no mood head).
    intervals : tuple of float, optional
        The model's ``(valence, arousal)`` half-widths (``None``: no intervals).

    Returns
    -------
    dict
        Only the fields that are known.
    """
    out: dict[str, float] = {}
    if moods is not None:
        out.update(zip(MOOD_COLUMNS, (float(p) for p in moods)))
    if intervals is not None:
        for name, value, half in zip(("valence", "arousal"), values, intervals):
            out[f"{name}_low"] = float(np.clip(value - half, 0.0, 1.0))
            out[f"{name}_high"] = float(np.clip(value + half, 0.0, 1.0))
    return out


@dataclass
class Segment(MoodEstimates):
    """Valence and arousal of one window, ``start``-``end`` in seconds, with the
    probabilities and intervals of :class:`MoodEstimates` (keyword arguments)."""

    start: float
    end: float
    valence: float
    arousal: float

    def row(self, scale: Scale = "unit") -> dict[str, Any]:
        """``{start, end, valence, arousal}`` with the values on ``scale``, rounded, then the
        :data:`MOOD_FIELDS`."""
        return {"start": self.start, "end": self.end,
                "valence": output_value(self.valence, scale),
                "arousal": output_value(self.arousal, scale), **self.mood_row(scale)}


@dataclass
class Prediction(MoodEstimates):
    """The result for one file (or one array of audio).

    Attributes
    ----------
    path : str
        The file as given (``"<audio>"`` for an array).
    valence, arousal : float or None
        The song-level values on the 0-1 scale; ``None`` on failure.
    duration : float or None
        Seconds of audio decoded.
    windows : int
        Windows the song-level values are made of.
    error : str
        Empty on success, else a one-line reason.
    warning : str
        Set when a result needs care (digital silence).
    timeline : list of Segment
        Each window's values, when asked for.
    p_happy, p_angry, p_sad, p_tender, valence_low, valence_high, arousal_low, arousal_high
        The song's quadrant probabilities and intervals (:class:`MoodEstimates`; keyword
        arguments), ``None`` when the model has no mood head or no intervals.
    """

    path: str
    valence: float | None = None
    arousal: float | None = None
    duration: float | None = None
    windows: int = 0
    error: str = ""
    warning: str = ""
    timeline: list[Segment] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    def row(self, scale: Scale = "unit") -> dict[str, Any]:
        """A flat record for CSV/JSON output (the ``COLUMNS`` of :mod:`music2emotion.output`):
        the values every model gives, then the :data:`MOOD_FIELDS`."""
        return {
            "path": self.path,
            "valence": output_value(self.valence, scale),
            "arousal": output_value(self.arousal, scale),
            "duration": None if self.duration is None else round(self.duration, 3),
            "windows": self.windows,
            "warning": self.warning,
            "error": self.error,
            **self.mood_row(scale),
        }

    def segment_rows(self, scale: Scale = "unit") -> list[dict[str, Any]]:
        """One record per window of the timeline (``path``, then :meth:`Segment.row`)."""
        return [{"path": self.path, **s.row(scale)} for s in self.timeline]


def time_weighted_mean(starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (one row per window) in which every second counts the same.

    Each stretch of time between window edges is shared equally by the windows covering
    it, so a window's weight is the audio it covers, less what it shares. Time covered by
    no window (a hop longer than the window) does not count.

    Parameters
    ----------
    starts, ends : array_like
        Each window's start and end, in seconds.
    values : array_like
        ``[windows, k]`` values.

    Returns
    -------
    numpy.ndarray
        ``[k]`` float64.
    """
    starts, ends = np.asarray(starts, np.float64), np.asarray(ends, np.float64)
    edges = np.unique(np.concatenate([starts, ends]))
    mids = (edges[:-1] + edges[1:]) / 2
    cover = np.searchsorted(np.sort(starts), mids, "right") - np.searchsorted(
        np.sort(ends), mids, "right"
    )
    share = np.where(cover > 0, np.diff(edges) / np.maximum(cover, 1), 0.0)
    cum = np.concatenate([[0.0], np.cumsum(share)])
    weights = cum[np.searchsorted(edges, ends)] - cum[np.searchsorted(edges, starts)]
    return weights @ np.asarray(values, np.float64) / weights.sum()


def song_prediction(
    path: str,
    spans: Sequence[tuple[float, float]],
    values: np.ndarray,
    *,
    duration: float,
    silent: bool,
    damage: str = "",
    timeline: bool = False,
    moods: np.ndarray | None = None,
    intervals: tuple[float, float] | None = None,
) -> Prediction:
    """A file's :class:`Prediction` from its windows.

    Parameters
    ----------
    path : str
        The file.
    spans : sequence of (float, float)
        Each window's start and end, in seconds, in order.
    values : numpy.ndarray
        ``[windows, 2]`` valence and arousal of each window.
    duration : float
        Seconds of audio in the file.
    silent : bool
        Whether the file is digital silence (the result then carries a warning).
    damage : str
        The decoder's warning for damaged stretches it skipped (``""`` when none), joined
        into ``Prediction.warning`` after the silence warning.
    timeline : bool
        Keep each window's values in ``Prediction.timeline``.
    moods : numpy.ndarray, optional
        ``[windows, 4]`` quadrant probabilities of each window (a model's mood head).
    intervals : tuple of float, optional
        The model's ``(valence, arousal)`` interval half-widths on the 0-1 scale.

    Returns
    -------
    Prediction
        With ``error`` set when a window's values are not finite.
    """
    values = np.asarray(values, np.float64).reshape(len(spans), 2)
    if moods is not None:
        moods = np.asarray(moods, np.float64).reshape(len(spans), len(MOOD_CLASSES))
    if len(spans) == 0 or not np.isfinite(values).all() or (
            moods is not None and not np.isfinite(moods).all()):
        return Prediction(str(path), error=NO_VALUES)
    starts, ends = np.array(spans, np.float64).reshape(-1, 2).T
    song = time_weighted_mean(starts, ends, values if moods is None else np.hstack([values, moods]))
    window_moods = [None] * len(spans) if moods is None else moods
    return Prediction(
        str(path), valence=float(song[0]), arousal=float(song[1]), duration=duration,
        windows=len(values), warning="; ".join(w for w in (SILENT_WARNING if silent else "", damage) if w),
        timeline=[Segment(round(a, 3), round(b, 3), float(v), float(ar),
                          **mood_estimates((v, ar), p, intervals))
                  for (a, b), (v, ar), p in zip(spans, values, window_moods)] if timeline else [],
        **mood_estimates(song[:2], None if moods is None else song[2:], intervals),
    )


def failure_reason(exc: BaseException) -> str:
    """The one-line reason a file failed, for ``Prediction.error``.

    Decoding and length problems say what is wrong with the file; anything else (a decoder
    or feature bug) is named by its type, so that it costs only its own file.
    """
    if isinstance(exc, (AudioError, TooShortError)):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    return f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"
