"""Playlists from valence and arousal: a region of the plane, the songs nearest a point, or a
journey from one mood to another; or from a mood head's probabilities: the songs most
likely of one mood. Written as extended M3U in UTF-8 (``.m3u8``).

Everything here works on the 0-1 scale. A journey from ``start`` to ``end`` takes
``length`` evenly spaced stops on the straight line between them and picks one song per
stop, minimising the summed squared distance of songs to their stops, under one hard rule:
along the axis that changes most between the two ends (arousal, for calm to energetic) the
songs never step back. The best such choice comes from a dynamic programme over the songs
sorted along that axis, ``O(length x songs)``: 20 stops over 100,000 songs is two million
steps of NumPy work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from music2emotion.config import MOOD_CLASSES

Range = tuple[float, float]


@dataclass(frozen=True)
class Song:
    """One playlist candidate: its file, valence and arousal (0-1), length in seconds
    (``None`` when unknown), the name players show (``None``: the file name), the
    quadrant probabilities in the order of ``MOOD_CLASSES`` (``None``: its model has no
    mood head) and its prediction's warning (``""``: none; ``not music: ...`` for a file
    that is not music, :mod:`music2emotion.music`)."""

    path: str
    valence: float
    arousal: float
    duration: float | None = None
    name: str | None = None
    probabilities: tuple[float, ...] | None = None
    warning: str = ""

    @property
    def point(self) -> tuple[float, float]:
        return self.valence, self.arousal


def _points(songs: Sequence[Song]) -> np.ndarray:
    return np.array([s.point for s in songs], dtype=np.float64).reshape(-1, 2)


def in_region(songs: Sequence[Song], valence: Range = (0.0, 1.0), arousal: Range = (0.0, 1.0),
              length: int | None = None) -> list[Song]:
    """The songs inside ``valence`` x ``arousal`` (bounds included), the most central first,
    at most ``length`` of them."""
    (v0, v1), (a0, a1) = valence, arousal
    inside = [s for s in songs if v0 <= s.valence <= v1 and a0 <= s.arousal <= a1]
    return nearest(inside, ((v0 + v1) / 2, (a0 + a1) / 2), length)


def most_likely(songs: Sequence[Song], mood: str, length: int | None = None) -> list[Song]:
    """The ``length`` songs (all when ``None``) most likely of ``mood`` (one of
    ``MOOD_CLASSES``), the most likely first; songs without probabilities are left out.
    Ties keep the input order."""
    k = MOOD_CLASSES.index(mood)
    rated = [s for s in songs if s.probabilities is not None]
    order = np.argsort([-s.probabilities[k] for s in rated], kind="stable")  # type: ignore[index]
    return [rated[i] for i in order[:length]]


def nearest(songs: Sequence[Song], point: tuple[float, float], length: int | None = None,
            radius: float | None = None) -> list[Song]:
    """The ``length`` songs nearest ``point`` (all when ``None``), nearest first, only those
    within ``radius`` when given. Ties keep the input order."""
    if not songs:
        return []
    dist = np.hypot(*(_points(songs) - np.asarray(point)).T)
    order = np.argsort(dist, kind="stable")
    if radius is not None:
        order = order[dist[order] <= radius]
    return [songs[i] for i in order[:length]]


def journey(songs: Sequence[Song], start: tuple[float, float], end: tuple[float, float],
            length: int) -> list[Song]:
    """``length`` songs (fewer if the collection is smaller) stepping from ``start`` to
    ``end``; see the module docstring. Raises ``ValueError`` when the two ends coincide."""
    if length < 1:
        raise ValueError("a journey needs at least one song")
    start_, end_ = np.asarray(start, np.float64), np.asarray(end, np.float64)
    step = end_ - start_
    if not np.abs(step).max() > 0:
        raise ValueError("a journey's two ends are the same point")
    if not songs:
        return []
    axis = int(np.argmax(np.abs(step)))
    pts = _points(songs)
    # songs level on that axis go in the order the other axis travels, which is the
    # cheaper of their orders (the stops move that way too)
    other = 1 - axis
    order = np.lexsort((np.sign(step[other]) * pts[:, other], np.sign(step[axis]) * pts[:, axis]))
    pts = pts[order]
    n, m = min(length, len(songs)), len(songs)
    stops = start_ + np.linspace(0.0, 1.0, n)[:, None] * step
    # cost[k, j]: song j (in travel order) at stop k
    cost = ((stops[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    best = cost[0].copy()
    came_from = np.zeros((n, m), dtype=np.int64)
    for k in range(1, n):
        # the cheapest path to stop k-1 ending strictly before song j in travel order
        run_min = np.minimum.accumulate(best)
        improved = np.concatenate([[True], best[1:] < run_min[:-1]])
        run_arg = np.maximum.accumulate(np.where(improved, np.arange(m), 0))
        prev = np.full(m, np.inf)
        prev[1:] = run_min[:-1]
        came_from[k, 1:] = run_arg[:-1]
        best = cost[k] + prev
    j = int(np.argmin(best))
    picked = [j]
    for k in range(n - 1, 0, -1):
        j = int(came_from[k, j])
        picked.append(j)
    return [songs[int(order[i])] for i in reversed(picked)]


# --- M3U8 -----------------------------------------------------------------------------------

def _display_name(song: Song) -> str:
    name = song.name or Path(song.path).stem
    # one line: a line break would start a new entry in the file
    return " ".join(name.split())


def m3u8_text(songs: Iterable[Song], playlist: str | os.PathLike[str], absolute: bool = False) -> str:
    """The extended M3U text for ``songs``, paths relative to the folder of ``playlist``
    (where it will be written) unless ``absolute``; ``#EXTINF`` carries whole seconds
    (-1 when unknown, as the format says) and the name."""
    base = Path(os.path.abspath(playlist)).parent
    lines = ["#EXTM3U"]
    for song in songs:
        target = os.path.abspath(song.path)
        if not absolute:
            try:
                target = os.path.relpath(target, base)
            except ValueError:  # another drive on Windows: only an absolute path reaches it
                pass
        seconds = -1 if song.duration is None else int(round(song.duration))
        lines += [f"#EXTINF:{seconds},{_display_name(song)}", target]
    return "\n".join(lines) + "\n"


def write_m3u8(songs: Iterable[Song], out: str | os.PathLike[str], absolute: bool = False) -> Path:
    """Write the playlist to ``out`` (UTF-8, no byte-order mark) through a temporary file
    renamed over it, so an interrupted run never leaves half a playlist. File names that
    are not valid UTF-8 keep their raw bytes, so the entry still finds its file."""
    out = Path(out)
    text = m3u8_text(songs, out, absolute)
    temp = out.with_name(f".{out.name}.m2e-{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(temp, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return out
