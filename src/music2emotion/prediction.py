"""A file's result, and the one way its windows become it.

:func:`song_prediction` turns a file's window outputs into its :class:`Prediction`: every
engine (local worker processes, the Ray engine) and the server reach a result through it,
and every output (CSV, JSON Lines, Parquet, the HTTP API, tags, pictures) reads values
through :meth:`Prediction.row` / :meth:`Segment.row` and :func:`on_scale`.

**One answer per window and per song.** A model's graph gives each window one valence and
one arousal per output scale (:class:`~music2emotion.modelfile.Convention`): the ``unit``
scale's one answer, and for models with DEAM's convention as an output of its own, what
DEAM's panel would rate (shown with ``scale="deam"`` on 1-9). Everything else derives from
those two numbers (:func:`estimate`): the quadrant probabilities are the mass, in each
quadrant, of a logistic distribution centred on them (its spread calibrated in the model
file), the intervals are the values plus and minus the model's half-widths, and the mood
word is the quadrant the values lie in. So the word can never contradict the values, on any
row or window, on any scale. (Models of 0.3 carry a quadrant head of their own,
``moods``; their word stays that head's most probable quadrant.)

The song-level values are the time-weighted mean of the window values in which every
second of audio counts the same (:func:`time_weighted_mean`): a second covered by one
window takes that window's value, a second covered by several (the last window, aligned to
the end of the file, overlaps its neighbour; a hop shorter than the window overlaps them
all) takes their mean. With the default hop (one window length) that is the plain mean of
the windows, except that the overlapping last window counts only for the audio it adds;
the song's probabilities, intervals and word then derive from the song's values, as a
window's from its own. They derive from the values rounded to :data:`DECIMALS`, as every
output writes them, so what a row says is derived from exactly what the row shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import AudioError
from .config import INTERVAL_COLUMNS, MOOD_CLASSES, MOOD_COLUMNS, NEUTRAL, Scale, to_deam
from .modelfile import MOODS_OUTPUT, Convention
from .music import HEARD_OUTPUT, not_music
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
    """A 0-1 value as every output shows it: rounded to :data:`DECIMALS` on the 0-1 scale,
    as the word and the probabilities read it, then shown on ``scale`` (rounded again, for
    the float's last bits: 1-9 is a step of 0.0008 per ten-thousandth). Rounding on 1-9
    instead would show 0.49996, which the word reads as 0.5, as 4.9997."""
    if value is None:
        return None
    return round(on_scale(round(float(value), DECIMALS), scale), DECIMALS)


# What a mood head and intervals add to a song's or a window's row, in this order, after
# the columns every model gives.
MOOD_FIELDS = ("mood", *MOOD_COLUMNS, *INTERVAL_COLUMNS)


def quadrant_mood(valence: float, arousal: float) -> str:
    """The word of the quadrant of Russell's plane that a point on the 0-1 scale lies in:
    ``happy``, ``angry``, ``sad`` or ``tender`` (:data:`~music2emotion.config.NEUTRAL`
    counts as high). The one rule every mood word follows."""
    happy, angry, sad, tender = MOOD_CLASSES
    if arousal >= NEUTRAL:
        return happy if valence >= NEUTRAL else angry
    return tender if valence >= NEUTRAL else sad


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


def quadrant_probabilities(valence: float, arousal: float, spread: tuple[float, float]) -> np.ndarray:
    """The mass in each quadrant (``MOOD_CLASSES`` order) of two independent logistic
    distributions centred on ``valence`` and ``arousal`` with scales ``spread``.

    Each axis lies on its high side with probability ``1 / (1 + exp(-(x - 0.5) / s))``,
    above one half exactly when the value is above 0.5, so the most probable quadrant is the
    one the values lie in.
    """
    hv, ha = (1.0 / (1.0 + np.exp(-(x - NEUTRAL) / s)) for x, s in zip((valence, arousal), spread))
    return np.array([hv * ha, (1 - hv) * ha, (1 - hv) * (1 - ha), hv * (1 - ha)])


@dataclass(kw_only=True)
class MoodEstimates:
    """The mood word, quadrant probabilities and intervals of a song or a window, ``None``
    for a model without a mood head (word and probabilities) or without intervals.

    Attributes
    ----------
    mood : str or None
        ``happy``, ``angry``, ``sad`` or ``tender``: the quadrant the values lie in
        (:func:`quadrant_mood`; for models of 0.3, their head's most probable quadrant).
    p_happy, p_angry, p_sad, p_tender : float or None
        Probabilities of the quadrants of :data:`~music2emotion.config.MOOD_CLASSES`,
        summing to 1.
    valence_low, valence_high, arousal_low, arousal_high : float or None
        The bounds of each value's interval on the 0-1 scale (the model's coverage, 90 % for
        the bundled models), clipped to [0, 1].
    """

    mood: str | None = None
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

    def mood_row(self, scale: Scale = "unit") -> dict[str, Any]:
        """The :data:`MOOD_FIELDS`: the word, the probabilities rounded to
        :data:`DECIMALS`, the bounds on ``scale`` rounded like the values."""
        return {"mood": self.mood,
                **{c: None if getattr(self, c) is None else round(float(getattr(self, c)), DECIMALS)
                   for c in MOOD_COLUMNS},
                **{c: output_value(getattr(self, c), scale) for c in INTERVAL_COLUMNS}}


@dataclass(kw_only=True)
class Estimate(MoodEstimates):
    """Valence and arousal (0-1 scale) in one convention, with what derives from them
    (:class:`MoodEstimates`): a :class:`Prediction`'s or :class:`Segment`'s ``deam``."""

    valence: float
    arousal: float


def estimate(values: Sequence[float], convention: Convention,
             moods: Sequence[float] | None = None) -> dict[str, Any]:
    """The values of one window or song and everything that derives from them (from the
    values rounded to :data:`DECIMALS`, as outputs show them), as keyword arguments of
    :class:`Estimate`.

    Parameters
    ----------
    values : sequence of float
        Valence and arousal, 0-1.
    convention : Convention
        The scale's spread (quadrant probabilities and word) and half-widths (intervals).
    moods : sequence of float, optional
        The four probabilities of a 0.3 model's own quadrant head, used where the
        convention has no spread.

    Returns
    -------
    dict
        ``valence``, ``arousal`` and the :class:`MoodEstimates` fields that are known.
    """
    out: dict[str, Any] = {"valence": float(values[0]), "arousal": float(values[1])}
    # derived from the values as every output writes them, so that a value written as 0.5
    # is on the high side for the word too
    v, a = (round(float(x), DECIMALS) for x in values)
    if convention.spread is not None:
        out["mood"] = quadrant_mood(v, a)
        out.update(zip(MOOD_COLUMNS, map(float, quadrant_probabilities(v, a, convention.spread))))
    elif moods is not None:
        out["mood"] = top_mood(moods)
        out.update(zip(MOOD_COLUMNS, map(float, moods)))
    if convention.intervals is not None:
        for name, value, half in zip(("valence", "arousal"), (v, a), convention.intervals):
            out[f"{name}_low"] = float(np.clip(value - half, 0.0, 1.0))
            out[f"{name}_high"] = float(np.clip(value + half, 0.0, 1.0))
    return out


class _Scaled:
    """What every row shows, read from the estimate of the row's scale."""

    valence: float | None
    arousal: float | None
    deam: Estimate | None

    def on(self, scale: Scale = "unit") -> Any:
        """The estimate shown on ``scale``: ``self``, or with ``"deam"`` the model's own
        DEAM convention where it has one (else ``self``, its values shown on 1-9)."""
        return self.deam if scale == "deam" and self.deam is not None else self

    def _values_row(self, scale: Scale) -> dict[str, Any]:
        shown = self.on(scale)
        return {"valence": output_value(shown.valence, scale), "arousal": output_value(shown.arousal, scale)}


@dataclass
class Segment(_Scaled, MoodEstimates):
    """Valence and arousal of one window, ``start``-``end`` in seconds, with what derives
    from them (:class:`MoodEstimates`, keyword arguments) and, for a model with DEAM's
    convention, ``deam``."""

    start: float
    end: float
    valence: float
    arousal: float
    deam: Estimate | None = field(default=None, kw_only=True)

    def row(self, scale: Scale = "unit") -> dict[str, Any]:
        """``{start, end, valence, arousal}`` with the values on ``scale``, rounded, then the
        :data:`MOOD_FIELDS` of the same scale."""
        return {"start": self.start, "end": self.end, **self._values_row(scale),
                **self.on(scale).mood_row(scale)}


@dataclass
class Prediction(_Scaled, MoodEstimates):
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
        Set when a result needs care: digital silence, damaged stretches skipped, no
        music heard in most of the audio (:mod:`music2emotion.music`); several are joined
        by ``"; "``.
    timeline : list of Segment
        Each window's values, when asked for.
    mood, p_happy, p_angry, p_sad, p_tender, valence_low, valence_high, arousal_low, arousal_high
        What derives from the values (:class:`MoodEstimates`; keyword arguments), ``None``
        when the model has no mood head or no intervals.
    deam : Estimate or None
        The same song in DEAM's convention, for models that carry it (``row("deam")``
        shows it on 1-9).
    """

    path: str
    valence: float | None = None
    arousal: float | None = None
    duration: float | None = None
    windows: int = 0
    error: str = ""
    warning: str = ""
    timeline: list[Segment] = field(default_factory=list)
    deam: Estimate | None = field(default=None, kw_only=True)

    @property
    def ok(self) -> bool:
        return not self.error

    def row(self, scale: Scale = "unit") -> dict[str, Any]:
        """A flat record for CSV/JSON output (the ``COLUMNS`` of :mod:`music2emotion.output`):
        the values every model gives on ``scale``, then the :data:`MOOD_FIELDS` of the same
        scale."""
        return {
            "path": self.path,
            **self._values_row(scale),
            "duration": None if self.duration is None else round(self.duration, 3),
            "windows": self.windows,
            "warning": self.warning,
            "error": self.error,
            **self.on(scale).mood_row(scale),
        }

    def segment_rows(self, scale: Scale = "unit") -> list[dict[str, Any]]:
        """One record per window of the timeline (``path``, then :meth:`Segment.row`)."""
        return [{"path": self.path, **s.row(scale)} for s in self.timeline]


def time_weights(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The seconds of audio each window stands for, when every second counts the same.

    Each stretch of time between window edges is shared equally by the windows covering
    it, so a window's weight is the audio it covers, less what it shares. Time covered by
    no window (a hop longer than the window) does not count.

    Parameters
    ----------
    starts, ends : array_like
        Each window's start and end, in seconds.

    Returns
    -------
    numpy.ndarray
        ``[windows]`` float64, adding up to the seconds the windows cover.
    """
    starts, ends = np.asarray(starts, np.float64), np.asarray(ends, np.float64)
    edges = np.unique(np.concatenate([starts, ends]))
    mids = (edges[:-1] + edges[1:]) / 2
    cover = np.searchsorted(np.sort(starts), mids, "right") - np.searchsorted(
        np.sort(ends), mids, "right"
    )
    share = np.where(cover > 0, np.diff(edges) / np.maximum(cover, 1), 0.0)
    cum = np.concatenate([[0.0], np.cumsum(share)])
    return cum[np.searchsorted(edges, ends)] - cum[np.searchsorted(edges, starts)]


def time_weighted_mean(starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (one row per window) in which every second counts the same
    (each window weighs :func:`time_weights`).

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
    weights = time_weights(starts, ends)
    return weights @ np.asarray(values, np.float64) / weights.sum()


# A model without conventions in its file: its one output, nothing derived.
PLAIN = {"unit": Convention()}


def _estimates(outputs: Mapping[str, np.ndarray], conventions: Mapping[str, Convention]) -> dict[str, Any]:
    """The keyword arguments of a :class:`Segment` or :class:`Prediction` for one row of
    every output: the unit estimate's fields, and ``deam`` where the model has it."""
    unit = conventions["unit"]
    fields = estimate(outputs[unit.output], unit, outputs.get(MOODS_OUTPUT))
    deam = conventions.get("deam")
    if deam is not None:
        fields["deam"] = Estimate(**estimate(outputs[deam.output], deam))
    return fields


def song_prediction(
    path: str,
    spans: Sequence[tuple[float, float]],
    outputs: Mapping[str, np.ndarray],
    *,
    conventions: Mapping[str, Convention] = PLAIN,
    duration: float,
    silent: bool,
    damage: str = "",
    timeline: bool = False,
) -> Prediction:
    """A file's :class:`Prediction` from its windows.

    Parameters
    ----------
    path : str
        The file.
    spans : sequence of (float, float)
        Each window's start and end, in seconds, in order.
    outputs : mapping of str to numpy.ndarray
        Each graph output's rows, one per window (``[windows, 2]`` values of each
        convention's output; ``[windows, 4]`` ``moods`` of a 0.3 model's head), and for a
        model whose graph returns the AudioSet encoder's output, what it heard
        (``heard``, :func:`music2emotion.music.heard`).
    conventions : mapping of str to Convention
        The model's output scales (:func:`~music2emotion.modelfile.read_conventions`).
    duration : float
        Seconds of audio in the file.
    silent : bool
        Whether the file is digital silence (the result then carries a warning).
    damage : str
        The decoder's warning for damaged stretches it skipped (``""`` when none), joined
        into ``Prediction.warning`` after the silence warning.
    timeline : bool
        Keep each window's values in ``Prediction.timeline``.

    Returns
    -------
    Prediction
        With ``error`` set when a window's outputs are not finite; with a ``not music``
        warning (:func:`music2emotion.music.not_music`, after the others) when the encoder
        heard no music in most of the audio, unless the audio is digital silence, which
        has its own warning.
    """
    rows = {name: np.asarray(v, np.float64).reshape(len(spans), -1) for name, v in outputs.items()}
    if len(spans) == 0 or not all(np.isfinite(v).all() for v in rows.values()):
        return Prediction(str(path), error=NO_VALUES)
    heard = rows.pop(HEARD_OUTPUT, None)
    starts, ends = np.array(spans, np.float64).reshape(-1, 2).T
    song = {name: time_weighted_mean(starts, ends, v) for name, v in rows.items()}
    segments = []
    if timeline:
        for i, (a, b) in enumerate(spans):
            fields = _estimates({name: v[i] for name, v in rows.items()}, conventions)
            segments.append(Segment(round(a, 3), round(b, 3), fields.pop("valence"), fields.pop("arousal"),
                                    **fields))
    hearing = "" if heard is None or silent else not_music(heard, time_weights(starts, ends))
    return Prediction(str(path), duration=duration, windows=len(spans),
                      warning="; ".join(w for w in (SILENT_WARNING if silent else "", damage, hearing) if w),
                      timeline=segments,
                      **_estimates(song, conventions))


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
