"""Pictures of predictions: emotion over time for one song, and many songs on the
valence-arousal plane.

matplotlib is an optional dependency (the ``plot`` extra) and is imported only when a
picture is drawn; this module draws on a bare :class:`~matplotlib.figure.Figure`, so it
never touches pyplot's global state or the caller's backend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .config import DEAM_MAX, DEAM_MIN, MOOD_CLASSES, MOOD_COLORS, TARGET_COLORS, Scale, to_unit
from .prediction import Prediction, Segment, quadrant_mood

VALENCE_COLOR, AROUSAL_COLOR = TARGET_COLORS["valence"], TARGET_COLORS["arousal"]
# where each quadrant word sits on the plane: (valence side, arousal side), 1 = high
QUADRANTS = {(1, 1): MOOD_CLASSES[0], (0, 1): MOOD_CLASSES[1], (0, 0): MOOD_CLASSES[2],
             (1, 0): MOOD_CLASSES[3]}
AXIS_LABELS = {"valence": "valence: sad \u2192 happy", "arousal": "arousal: calm \u2192 energetic"}
# Past this many songs the plane draws no interval crosses: at 13 songs their lines (each
# about a third of the plane wide) already hid the points and the lines to their names.
MAX_CROSSES = 8
# Up to this many songs, a name with no free place beside its point may sit a little further
# out, with a thin line to it; past it those lines would cross each other.
MAX_LEADERS = 40
# Labels are placed where they overlap nothing, at most this many (placing is O(n) per
# label); the rest of the points stay unlabelled.
MAX_LABELS = 400
# Time ticks: the first step giving at most MAX_TIME_TICKS ticks.
TIME_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600)
MAX_TIME_TICKS = 8
NO_MOOD_COLOR = "#555555"


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


def time_step(seconds: float) -> float:
    """Seconds between time ticks for an axis of ``seconds``: a round step (1, 2, 5, 10,
    15, 30 s, 1 min, ...) that gives at most :data:`MAX_TIME_TICKS` ticks, so that every
    tick reads as a whole, evenly spaced time."""
    for step in TIME_STEPS:
        if seconds / step <= MAX_TIME_TICKS:
            return step
    return TIME_STEPS[-1] * math.ceil(seconds / TIME_STEPS[-1] / MAX_TIME_TICKS)


def _quadrant_of(valence: float, arousal: float, scale: Scale) -> str:
    """The quadrant word of a point given on ``scale``."""
    if scale == "deam":
        valence, arousal = float(to_unit(valence)), float(to_unit(arousal))
    return quadrant_mood(valence, arousal)


def _word(row: dict[str, Any], scale: Scale) -> str:
    """A row's mood word, or for a model without one the quadrant its values lie in."""
    return str(row["mood"]) if row.get("mood") else _quadrant_of(row["valence"], row["arousal"], scale)


def _mood_runs(edges: Sequence[float], words: Sequence[str]) -> list[tuple[float, float, str]]:
    """Neighbouring windows of the same word as one stretch ``(start, end, word)``."""
    runs: list[tuple[float, float, str]] = []
    for a, b, word in zip(edges, edges[1:], words):
        if runs and runs[-1][2] == word:
            runs[-1] = (runs[-1][0], b, word)
        else:
            runs.append((a, b, word))
    return runs


def plot_timeline(
    pred: Prediction,
    out: str | os.PathLike[str],
    scale: Scale = "unit",
    title: str | None = None,
    reference: Sequence[Segment] = (),
) -> Path:
    """Draw :func:`timeline_figure` to ``out`` (PNG, SVG or PDF, by the extension) and
    return it as a :class:`pathlib.Path`; the other parameters are :func:`timeline_figure`'s."""
    return _save(timeline_figure(pred, scale, title, reference), out)


def _save(fig: Any, out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    fig.savefig(out)
    return out


def timeline_figure(
    pred: Prediction,
    scale: Scale = "unit",
    title: str | None = None,
    reference: Sequence[Segment] = (),
) -> Any:
    """Valence and arousal per window over time, each window's mood word as a band above
    them (with a legend naming every colour), and beside them the song's two values with
    their intervals, side by side so that neither hides the other.

    Parameters
    ----------
    pred : Prediction
        A result with a timeline (``timeline=True``).
    scale : {"unit", "deam"}
        The vertical axis.
    title : str, optional
        Above the plot (default: the file name).
    reference : sequence of Segment
        Known values on the 0-1 scale, e.g. human ratings of the parts of a medley, drawn
        as dotted steps.

    Returns
    -------
    matplotlib.figure.Figure
        On its own canvas (:func:`new_figure`).

    Raises
    ------
    ValueError
        A failed prediction, or one without a timeline.
    PlotUnavailable
        matplotlib is not installed.
    """
    if not pred.ok or not pred.timeline:
        raise ValueError(f"{pred.path}: nothing to plot ({pred.error or 'no timeline'})")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    # every number read as the rows show it on this scale: its convention's values,
    # intervals and words (DEAM's own with "deam", for models that carry it)
    rows = [s.row(scale) for s in pred.timeline]
    song = pred.row(scale)
    moods = bool(song["mood"])
    fig = new_figure(9, 4.6 if moods else 4.2)
    grid = fig.add_gridspec(2 if moods else 1, 2, width_ratios=(11, 1.4),
                            height_ratios=(1, 12) if moods else (1,))
    ax = fig.add_subplot(grid[-1, 0])
    side = fig.add_subplot(grid[-1, 1], sharey=ax)
    mids = [(s.start + s.end) / 2 for s in pred.timeline]
    end = max(pred.duration or 0.0, pred.timeline[-1].end)
    lo, hi = _range(scale)
    handles: list[Any] = []
    for name, color in TARGET_COLORS.items():
        handles += ax.plot(mids, [r[name] for r in rows], color=color, marker="o", markersize=3.5,
                           linewidth=1.8, label=name)
    if reference:
        xs = [x for r in reference for x in (r.start, r.end)]
        for name, color in TARGET_COLORS.items():
            ax.plot(xs, [r.row(scale)[name] for r in reference for _ in (0, 1)], color=color,
                    linestyle=":", linewidth=1.4)
        handles.append(Line2D([], [], color="0.35", linestyle=":", linewidth=1.4, label="reference"))
    ax.set_ylim(lo, hi)
    ax.axhline((lo + hi) / 2, color="0.75", linewidth=0.8, zorder=0)
    ax.set_xlim(0, end)
    ax.xaxis.set_major_locator(MultipleLocator(time_step(end)))
    ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    ax.set_xlabel("time (min:s); each point is one window, at its centre")
    ax.set_ylabel("DEAM rating (1-9)" if scale == "deam" else "value (0-1)")
    ax.grid(alpha=0.3)
    handles.append(_song_values(side, song, lo, hi))
    if moods:
        band = fig.add_subplot(grid[0, 0], sharex=ax)
        edges = [0.0, *((x + y) / 2 for x, y in zip(mids, mids[1:])), end]
        _mood_band(band, _mood_runs(edges, [_word(r, scale) for r in rows]), end, fig.get_figwidth())
        handles += [Patch(color=MOOD_COLORS[w], label=w) for w in MOOD_CLASSES]
        fig.add_subplot(grid[0, 1]).set_axis_off()  # keeps the band as wide as the curves
    mood = f" \u2014 {song['mood']}" if moods else ""
    fig.suptitle((title or Path(pred.path).name) + mood, fontsize=11)
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False,
               handlelength=1.6, columnspacing=1.2)
    return fig


def _song_values(ax: Any, song: dict[str, Any], lo: float, hi: float) -> Any:
    """The song's valence and arousal side by side, each with its interval where the model
    gives one, and its value written beside it; returns the legend's entry for them."""
    intervals = song["valence_low"] is not None
    for i, (name, color) in enumerate(TARGET_COLORS.items()):
        value, low, high = song[name], song[f"{name}_low"], song[f"{name}_high"]
        err = [[value - low], [high - value]] if intervals else None
        ax.errorbar([i], [value], yerr=err, fmt="o", color=color, markersize=6, capsize=4, linewidth=1.6)
        ax.annotate(f"{value:.2f}", (i, value), xytext=(6, 0), textcoords="offset points", va="center",
                    fontsize=8, color=color)
    ax.axhline((lo + hi) / 2, color="0.75", linewidth=0.8, zorder=0)
    ax.set_xlim(-0.6, 1.9)
    ax.set_xticks([0, 1], list(TARGET_COLORS), rotation=90, fontsize=8)
    ax.tick_params(labelleft=False, length=0)
    ax.set_title("song", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    # the legend's entry: a grey stand-in, drawn nowhere
    return ax.errorbar([float("nan")], [float("nan")], yerr=[[0.0], [0.0]] if intervals else None, fmt="o",
                       color="0.35", markersize=5, capsize=3,
                       label="song" + (", 90 % interval" if intervals else ""))


def _mood_band(ax: Any, runs: Sequence[tuple[float, float, str]], end: float, inches: float) -> None:
    """Each stretch of windows of one mood word as a block of its colour, named where the
    name fits (the legend names every colour)."""
    for a, b, word in runs:
        ax.axvspan(a, b, color=MOOD_COLORS[word], linewidth=0)
        # about 0.075 inches a character at 8 points, on an axis about 0.8 of the figure
        if (b - a) / max(end, 1e-9) * 0.8 * inches > 0.075 * len(word) + 0.1:
            ax.text((a + b) / 2, 0.5, word, ha="center", va="center", fontsize=8, color="white",
                    fontweight="bold")
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.tick_params(labelbottom=False, bottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel("mood", rotation=0, ha="right", va="center", fontsize=8)


def _plane_limits(valence: Sequence[float], arousal: Sequence[float], lo: float, hi: float
                  ) -> tuple[tuple[float, float], tuple[float, float]]:
    """Limits of the plane's two axes: the same span on both (so that it stays square and
    distances read alike across and up), holding every point and the middle cross with a
    margin, centred on the points, within the scale (plus a margin for points on its edge)."""
    mid, full = (lo + hi) / 2, hi - lo
    margin = 0.04 * full
    extents = [(min(*v, mid - margin), max(*v, mid + margin)) for v in (valence, arousal)]
    span = min(full + 2 * margin, max(b - a for a, b in extents) + 2 * margin)

    def place(a: float, b: float) -> tuple[float, float]:
        start = min(max((a + b) / 2 - span / 2, lo - margin), hi + margin - span)
        return start, start + span

    return place(*extents[0]), place(*extents[1])


def plot_plane(
    points: Sequence[PlanePoint | tuple[str, float, float]],
    out: str | os.PathLike[str],
    scale: Scale = "unit",
    title: str | None = None,
) -> Path:
    """Draw :func:`plane_figure` to ``out`` (PNG, SVG or PDF, by the extension) and return
    it as a :class:`pathlib.Path`; the other parameters are :func:`plane_figure`'s."""
    return _save(plane_figure(points, scale, title), out)


def plane_figure(
    points: Sequence[PlanePoint | tuple[str, float, float]],
    scale: Scale = "unit",
    title: str | None = None,
) -> Any:
    """Songs on the valence-arousal plane, its four quadrants named by their words.

    The axes fit the songs (both the same span, so distances read alike across and up) and
    always show the middle cross where the quadrants meet. Points take their mood word's
    colour; labels go where they overlap no other label, point or quadrant name, and a point
    without such a place stays unnamed (the title then says how many are named).

    Parameters
    ----------
    points : sequence of PlanePoint or of (label, valence, arousal)
        Songs, already on ``scale``; intervals are drawn as crosses for up to
        :data:`MAX_CROSSES` songs.
    scale : {"unit", "deam"}
        The axes.
    title : str, optional
        Above the plot (default: the number of files, and how many are named).

    Returns
    -------
    matplotlib.figure.Figure
        On its own canvas (:func:`new_figure`), its layout fixed.

    Raises
    ------
    PlotUnavailable
        matplotlib is not installed.
    """
    from matplotlib.patches import Rectangle

    points = [p if isinstance(p, PlanePoint) else PlanePoint(*p) for p in points]
    fig = new_figure(6.4, 6.4)
    ax = fig.add_subplot()
    lo, hi = _range(scale)
    mid = (lo + hi) / 2
    crosses = len(points) <= MAX_CROSSES
    # fitted to the points; a cross may run past the edge
    xlim, ylim = _plane_limits([p.valence for p in points], [p.arousal for p in points], lo, hi)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    corners = []
    for (vx, ay), word in QUADRANTS.items():
        color = MOOD_COLORS[word]
        ax.add_patch(Rectangle((mid if vx else 2 * lo - mid, mid if ay else 2 * lo - mid), hi - lo, hi - lo, color=color,
                               alpha=0.07, linewidth=0, zorder=0))
        corners.append(ax.text(0.985 if vx else 0.015, 0.985 if ay else 0.015, word, transform=ax.transAxes,
                               ha="right" if vx else "left", va="top" if ay else "bottom", fontsize=12,
                               fontweight="bold", color=color, zorder=1))
    ax.axhline(mid, color="0.55", linewidth=0.9, zorder=1)
    ax.axvline(mid, color="0.55", linewidth=0.9, zorder=1)
    colors = [MOOD_COLORS.get(p.mood or "", NO_MOOD_COLOR) for p in points]
    for p, color in zip(points, colors):
        if crosses and p.valence_low is not None:
            ax.plot([p.valence_low, p.valence_high], [p.arousal, p.arousal], color=color, alpha=0.4,
                    linewidth=1, zorder=2)
            ax.plot([p.valence, p.valence], [p.arousal_low, p.arousal_high], color=color, alpha=0.4,
                    linewidth=1, zorder=2)
    few = len(points) <= MAX_LEADERS
    size = 34.0 if few else max(8.0, 34.0 * (MAX_LEADERS / len(points)) ** 0.5)
    ax.scatter([p.valence for p in points], [p.arousal for p in points], s=size, color=colors,
               alpha=0.9 if few else 0.75, linewidths=0.4, edgecolors="white", zorder=3)
    unit = " (1-9)" if scale == "deam" else " (0-1)"
    ax.set_xlabel(AXIS_LABELS["valence"] + unit)
    ax.set_ylabel(AXIS_LABELS["arousal"] + unit)
    count = f"{len(points)} file{'s' * (len(points) != 1)}"
    ax.set_title(title or count, fontsize=11)
    fig.canvas.draw()  # the layout settles here; labels are placed in its pixels
    fig.set_layout_engine("none")
    named = _label_points(ax, points, scale, corners, size, fontsize=8 if few else 7)
    if title is None and named < len(points):
        ax.set_title(f"{count}, {named} named", fontsize=11)
    return fig


def _label_points(ax: Any, points: Sequence[PlanePoint], scale: Scale, avoid: Sequence[Any],
                  size: float, fontsize: float) -> int:
    """Write each point's label (with its mood word where that is not its quadrant's) at the
    first place around it that overlaps no point, no label and nothing in ``avoid``, inside
    the axes: eight places beside it, then, for up to :data:`MAX_LEADERS` points, eight a
    little further out with a thin line to the point. The most isolated points are named first. Returns how
    many got a label."""
    import numpy as np

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = ax.transData.transform([(p.valence, p.arousal) for p in points]) if points else np.zeros((0, 2))
    radius = (size ** 0.5) / 2 * fig.dpi / 72 + 1.5
    frame = ax.get_window_extent(renderer)
    boxes = [(x - radius, y - radius, x + radius, y + radius) for x, y in px]
    boxes += [tuple(t.get_window_extent(renderer).extents) for t in avoid]
    taken = np.array(boxes, dtype=float).reshape(-1, 4)
    # how crowded each point's neighbourhood is, in pixels: the loneliest are named first
    near = ((px[:, None, :] - px[None, :, :]) ** 2).sum(-1) < 40.0 ** 2 if len(px) else np.zeros((0, 0))
    order = np.argsort(near.sum(1), kind="stable")[:MAX_LABELS]
    rings = [(radius + 1.5, False)] + ([(radius + 16.0, True)] if len(points) <= MAX_LEADERS else [])
    named = 0
    for i in order:
        p = points[i]
        text = p.label if len(p.label) <= 28 else p.label[:27] + "\u2026"
        if p.mood and p.mood != _quadrant_of(p.valence, p.arousal, scale):
            text += f" ({p.mood})"
        probe = ax.text(0, 0, text, fontsize=fontsize)
        w, h = probe.get_window_extent(renderer).size
        probe.remove()
        x, y = px[i]
        for gap, leader in rings:
            d = gap * 0.7
            for dx, dy in ((gap, -h / 2), (-gap - w, -h / 2), (-w / 2, gap), (-w / 2, -gap - h),
                           (d, d), (-d - w, d), (d, -d - h), (-d - w, -d - h)):
                x0, y0, x1, y1 = x + dx, y + dy, x + dx + w, y + dy + h
                if x0 < frame.x0 + 2 or y0 < frame.y0 + 2 or x1 > frame.x1 - 2 or y1 > frame.y1 - 2:
                    continue
                if np.any((x0 < taken[:, 2]) & (x1 > taken[:, 0]) & (y0 < taken[:, 3]) & (y1 > taken[:, 1])):
                    continue
                label = ax.annotate(
                    text, (p.valence, p.arousal), xytext=((x0 + w / 2 - x) * 72 / fig.dpi, (y0 + h / 2 - y) * 72 / fig.dpi),
                    textcoords="offset points", ha="center", va="center", fontsize=fontsize, zorder=4,
                    arrowprops=dict(arrowstyle="-", color="0.3", linewidth=0.7, shrinkA=1,
                                    shrinkB=radius * 72 / fig.dpi) if leader else None)
                label.set_in_layout(False)
                taken = np.vstack([taken, (x0, y0, x1, y1)])
                named += 1
                break
            else:
                continue
            break
    return named
