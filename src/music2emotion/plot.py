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
from typing import Any

from .config import DEAM_MAX, DEAM_MIN, Scale
from .prediction import Prediction, Segment, on_scale

VALENCE_COLOR, AROUSAL_COLOR = "#1f77b4", "#d62728"
# Russell's circumplex, as commonly summarised for music: (valence side, arousal side)
QUADRANTS = {
    (1, 1): "happy / excited",
    (0, 1): "tense / angry",
    (0, 0): "sad / depressed",
    (1, 0): "calm / relaxed",
}
MAX_LABELLED_POINTS = 25


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
    mids = [(s.start + s.end) / 2 for s in pred.timeline]
    for name, color, song in (
        ("valence", VALENCE_COLOR, pred.valence),
        ("arousal", AROUSAL_COLOR, pred.arousal),
    ):
        ys = [on_scale(getattr(s, name), scale) for s in pred.timeline]
        ax.plot(mids, ys, color=color, marker="o", markersize=3, linewidth=1.6, label=name)
        assert song is not None
        ax.axhline(on_scale(song, scale), color=color, linestyle="--", linewidth=1,
                   label=f"{name} of the song: {on_scale(song, scale):.2f}")
        if reference:
            xs = [x for r in reference for x in (r.start, r.end)]
            ref = [on_scale(getattr(r, name), scale) for r in reference for _ in (0, 1)]
            ax.plot(xs, ref, color=color, linestyle=":", linewidth=1.4, label=f"{name}, reference")
    lo, hi = _range(scale)
    ax.set_ylim(lo, hi)
    ax.axhline((lo + hi) / 2, color="0.8", linewidth=0.8, zorder=0)
    ax.set_xlim(0, max(pred.duration or 0.0, pred.timeline[-1].end))
    ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    ax.set_xlabel("time (min:s), at the centre of each window")
    ax.set_ylabel("DEAM rating (1-9)" if scale == "deam" else "value (0-1)")
    ax.set_title(title or Path(pred.path).name, fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    out = Path(out)
    fig.savefig(out)
    return out


def plot_plane(
    points: Sequence[tuple[str, float, float]],
    out: str | os.PathLike[str],
    scale: Scale = "unit",
    title: str | None = None,
) -> Path:
    """Draw songs on the valence-arousal plane, with its four quadrants named.

    Parameters
    ----------
    points : sequence of (str, float, float)
        ``(label, valence, arousal)``, already on ``scale``; labels are written next to
        the points when there are few enough to read.
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
    xs = [v for _, v, _ in points]
    ys = [a for _, _, a in points]
    ax.scatter(xs, ys, s=12 if many else 30, alpha=0.5 if many else 0.9,
               color="#333333", zorder=3)
    if not many:
        for label, v, a in points:
            ax.annotate(label, (v, a), xytext=(4, 3), textcoords="offset points", fontsize=8,
                        zorder=4)
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
