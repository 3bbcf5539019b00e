"""Pictures of predictions: emotion over time for one song, and many songs on the
valence-arousal plane.

matplotlib is an optional dependency (the ``plot`` extra) and is imported only when a
picture is drawn; this module draws on a bare :class:`~matplotlib.figure.Figure`, so it
never touches pyplot's global state or the caller's backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .config import DEAM_MAX, DEAM_MIN, MOOD_CLASSES, Scale
from .prediction import Prediction, Segment

VALENCE_COLOR, AROUSAL_COLOR = "#1f77b4", "#d62728"
# Russell's circumplex, as commonly summarised for music: (valence side, arousal side)
QUADRANTS = {
    (1, 1): "happy / excited",
    (0, 1): "tense / angry",
    (0, 0): "sad / depressed",
    (1, 0): "calm / relaxed",
}
# each mood word's colour, as the web page draws them
MOOD_COLORS = dict(zip(MOOD_CLASSES, ("#e6a817", "#c0392b", "#2c5d8f", "#3b9c5a")))
MAX_LABELLED_POINTS = 25


class PlanePoint(NamedTuple):
    """A song on the plane (:func:`plot_plane`): its label, values on the plot's scale and,
    where the model gives them, its mood word and the values' interval bounds."""

    label: str
    valence: float
    arousal: float
    mood: str | None = None
    valence_low: float | None = None
    valence_high: float | None = None
    arousal_low: float | None = None
    arousal_high: float | None = None

    @classmethod
    def from_row(cls, label: str, row: dict[str, Any]) -> PlanePoint:
        """From a row of ``predict``'s output (:meth:`Prediction.row`), empty cells as None."""
        def number(key: str) -> float | None:
            return None if row.get(key) in (None, "") else float(row[key])

        return cls(label, float(row["valence"]), float(row["arousal"]), row.get("mood") or None,
                   *(number(k) for k in ("valence_low", "valence_high", "arousal_low", "arousal_high")))


class PlotUnavailable(ImportError):
    """matplotlib is not installed."""


def new_figure(width: float, height: float, dpi: int = 100) -> Any:
    """A bare :class:`matplotlib.figure.Figure` with its own Agg canvas: drawing on it never
    touches pyplot's global state or the caller's backend.

    Raises
    ------
    PlotUnavailable
        matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailable(
            "drawing needs matplotlib: pip install 'music2emotion[plot]'"
        ) from exc
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` now rather than after a long run."""
    new_figure(1, 1)


def _range(scale: Scale) -> tuple[float, float]:
    return (DEAM_MIN, DEAM_MAX) if scale == "deam" else (0.0, 1.0)


def _clock(seconds: float, _pos: Any = None) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def plot_timeline(
    pred: Prediction,
    out: str | os.PathLike[str],
    scale: Scale = "unit",
    title: str | None = None,
    reference: Sequence[Segment] = (),
) -> Path:
    """Draw valence and arousal per window over time, with the song-level values as dashed
    lines.

    Parameters
    ----------
    pred : Prediction
        A result with a timeline (``timeline=True``).
    out : str or os.PathLike
        The picture: PNG, SVG or PDF, by the extension.
    scale : {"unit", "deam"}
        The vertical axis.
    title : str, optional
        Above the plot (default: the file name).
    reference : sequence of Segment
        Known values on the 0-1 scale, e.g. human ratings of the parts of a medley, drawn
        as dotted steps.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        A failed prediction, or one without a timeline.
    PlotUnavailable
        matplotlib is not installed.
    """
    if not pred.ok or not pred.timeline:
        raise ValueError(f"{pred.path}: nothing to plot ({pred.error or 'no timeline'})")
    from matplotlib.ticker import FuncFormatter

    fig = new_figure(8, 3.6)
    ax = fig.add_subplot()
    # every number read as the rows show it on this scale: its convention's values,
    # intervals and words (DEAM's own with "deam", for models that carry it)
    rows = [s.row(scale) for s in pred.timeline]
    song = pred.row(scale)
    mids = [(s.start + s.end) / 2 for s in pred.timeline]
    for name, color in (("valence", VALENCE_COLOR), ("arousal", AROUSAL_COLOR)):
        ys = [r[name] for r in rows]
        ax.plot(mids, ys, color=color, marker="o", markersize=3, linewidth=1.6, label=name)
        if rows[0][f"{name}_low"] is not None:
            ax.fill_between(mids, [r[f"{name}_low"] for r in rows], [r[f"{name}_high"] for r in rows],
                            color=color, alpha=0.12, linewidth=0, label=f"{name}, 90 % interval")
        ax.axhline(song[name], color=color, linestyle="--", linewidth=1,
                   label=f"{name} of the song: {song[name]:.2f}")
        if reference:
            xs = [x for r in reference for x in (r.start, r.end)]
            ref = [r.row(scale)[name] for r in reference for _ in (0, 1)]
            ax.plot(xs, ref, color=color, linestyle=":", linewidth=1.4, label=f"{name}, reference")
    lo, hi = _range(scale)
    ax.set_ylim(lo, hi)
    ax.axhline((lo + hi) / 2, color="0.8", linewidth=0.8, zorder=0)
    end = max(pred.duration or 0.0, pred.timeline[-1].end)
    ax.set_xlim(0, end)
    if song["mood"]:
        _mood_strip(ax, mids, rows, end)
    ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    ax.set_xlabel("time (min:s), at the centre of each window")
    ax.set_ylabel("DEAM rating (1-9)" if scale == "deam" else "value (0-1)")
    mood = f" \u2014 {song['mood']}" if song["mood"] else ""
    ax.set_title((title or Path(pred.path).name) + mood, fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    out = Path(out)
    fig.savefig(out)
    return out


def _mood_strip(ax: Any, mids: Sequence[float], rows: Sequence[dict[str, Any]], end: float) -> None:
    """Each window's mood word as a band along the top of the axes, in its quadrant's
    colour, from half-way to the window before to half-way to the next (the time each
    window's values stand for on the curves)."""
    from matplotlib.transforms import blended_transform_factory

    where = blended_transform_factory(ax.transData, ax.transAxes)
    edges = [0.0, *((x + y) / 2 for x, y in zip(mids, mids[1:])), end]
    for a, b, row in zip(edges, edges[1:], rows):
        ax.axvspan(a, b, ymin=0.93, ymax=1.0, color=MOOD_COLORS[row["mood"]], alpha=0.75, linewidth=0)
        if (b - a) / max(end, 1e-9) > 0.06:
            ax.text((a + b) / 2, 0.965, row["mood"], transform=where, ha="center", va="center",
                    fontsize=7, color="white")


def plot_plane(
    points: Sequence[PlanePoint | tuple[str, float, float]],
    out: str | os.PathLike[str],
    scale: Scale = "unit",
    title: str | None = None,
) -> Path:
    """Draw songs on the valence-arousal plane, with its four quadrants named.

    Parameters
    ----------
    points : sequence of PlanePoint or of (label, valence, arousal)
        Songs, already on ``scale``; labels (with the mood word, where known) are written
        next to the points when there are few enough to read, points with a mood word take
        its colour, and intervals are drawn as crosses.
    out : str or os.PathLike
        The picture: PNG, SVG or PDF, by the extension.
    scale : {"unit", "deam"}
        The axes.
    title : str, optional
        Above the plot (default: the number of files).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    points = [p if isinstance(p, PlanePoint) else PlanePoint(*p) for p in points]
    fig = new_figure(6.4, 6)
    ax = fig.add_subplot()
    lo, hi = _range(scale)
    mid = (lo + hi) / 2
    shades = {(1, 1): "#fff4d6", (0, 1): "#fde2e1", (0, 0): "#e3ebf7", (1, 0): "#e2f3e4"}
    for (vx, ay), text in QUADRANTS.items():
        x0, y0 = (mid if vx else lo), (mid if ay else lo)
        ax.axhspan(y0, y0 + mid - lo, xmin=vx * 0.5, xmax=0.5 + vx * 0.5,
                   color=shades[(vx, ay)], zorder=0)
        ax.text(x0 + (mid - lo) / 2, y0 + (mid - lo) * (0.93 if ay else 0.07), text,
                ha="center", va="center", fontsize=11, color="0.35", zorder=1)
    ax.axhline(mid, color="0.6", linewidth=0.8)
    ax.axvline(mid, color="0.6", linewidth=0.8)
    many = len(points) > MAX_LABELLED_POINTS
    colors = [MOOD_COLORS.get(p.mood or "", "#333333") for p in points]
    for p, color in zip(points, colors):
        if p.valence_low is not None and not many:
            ax.plot([p.valence_low, p.valence_high], [p.arousal, p.arousal], color=color, alpha=0.45,
                    linewidth=1, zorder=2)
            ax.plot([p.valence, p.valence], [p.arousal_low, p.arousal_high], color=color, alpha=0.45,
                    linewidth=1, zorder=2)
    ax.scatter([p.valence for p in points], [p.arousal for p in points], s=12 if many else 30,
               alpha=0.5 if many else 0.9, color=colors, zorder=3)
    if not many:
        for p in points:
            label = f"{p.label} ({p.mood})" if p.mood else p.label
            ax.annotate(label, (p.valence, p.arousal), xytext=(4, 3), textcoords="offset points",
                        fontsize=8, zorder=4)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    unit = " (1-9)" if scale == "deam" else " (0-1)"
    ax.set_xlabel("valence: negative \u2192 positive" + unit)
    ax.set_ylabel("arousal: calm \u2192 energetic" + unit)
    ax.set_title(title or f"{len(points)} file{'s' * (len(points) != 1)}", fontsize=11)
    out = Path(out)
    fig.savefig(out)
    return out
