"""Labels as people have them: moods or ratings, in CSV files, mood folders or DEAM's layout.

Three forms, in any mix (``music2emotion train --labels ... --mood-folders ... --annotations
... --audio-dir ...``):

- **a CSV file** with a header row (column names in any case, spaces ignored):

  - ``path`` (absolute, or relative to the CSV's folder) or ``song_id`` (a file named
    ``<song_id>.<ext>`` in ``audio/`` beside the CSV when that folder exists, else in
    ``--audio-dir``; any format the package reads);
  - ``mood`` (or ``quadrant``): a word of :data:`MOOD_WORDS` (``happy``, ``angry``, ``sad``,
    ``tender``, ``Q1``-``Q4`` and their synonyms), and/or ``valence`` and ``arousal``
    ratings on the scale the command declares (``--label-scale``, :func:`parse_scale`);
  - ``artist`` (optional): cross-validation keeps each artist's songs on one side.

  Other columns are ignored, so the 4Q set's own ``labels.csv`` is read as it is.
- **mood folders**: ``DIR/<mood word>/**/<audio>`` (:func:`read_mood_folders`);
- **DEAM's layout**: its static-annotation CSVs and ``<song_id>.<ext>`` files
  (:func:`read_deam`), rated on 1-9.

Ratings are kept on the 0-1 scale: ``(r - low) / (high - low)``. Every problem with a label
raises :class:`LabelError`, one line naming the file, the line, the value and the reason,
before any audio is decoded; a listed audio file that does not exist is skipped and
reported, not fatal (:class:`Labels`).
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import AUDIO_EXTENSIONS, MOOD_CLASSES
from .data import load_dataset, read_csv

# Every word a mood label may be, by the quadrant of Russell's plane it names (1 happy, 2
# angry, 3 sad, 4 tender, the order of MOOD_CLASSES): the quadrant words, 4Q's quadrant names,
# and the words people tag music with for each quadrant (AllMusic's and Last.fm's commonest,
# as the 4Q set's authors mapped them; "calm" was the package's own word for Q4 before 0.4).
MOOD_WORDS: dict[str, int] = {
    **{word: q for q, word in enumerate(MOOD_CLASSES, start=1)},
    **{f"q{q}": q for q in range(1, 5)},
    **{str(q): q for q in range(1, 5)},
    **dict.fromkeys(("joyful", "cheerful", "excited", "exciting", "upbeat", "euphoric", "fun", "playful",
                     "uplifting", "happy/excited"), 1),
    **dict.fromkeys(("tense", "aggressive", "anxious", "fearful", "scary", "hostile", "furious", "menacing",
                     "nervous", "angry/tense"), 2),
    **dict.fromkeys(("depressed", "melancholic", "melancholy", "gloomy", "sorrowful", "bittersweet", "lonely",
                     "mournful", "sad/depressed"), 3),
    **dict.fromkeys(("calm", "relaxed", "relaxing", "peaceful", "serene", "soothing", "gentle", "mellow",
                     "chill", "dreamy", "calm/tender", "calm/relaxed"), 4),
}
# Fewest songs per mood and fewest rated songs a model is trained on: with 5 folds a fold's
# training songs then still hold 8 of each mood. docs/train-your-own.md measures what more
# songs buy.
MIN_SONGS_PER_MOOD = 10
MIN_RATED_SONGS = 20


class LabelError(ValueError):
    """A label that cannot be used, one line: where it is, the value, and why."""


def parse_mood(text: str) -> int:
    """The quadrant (1-4) a mood word names (:data:`MOOD_WORDS`; any case, spaces ignored).

    Raises
    ------
    ValueError
        Not a known mood word.
    """
    q = MOOD_WORDS.get(re.sub(r"\s+", "", text).lower())
    if q is None:
        raise ValueError(f"unknown mood word {text!r} (use {', '.join(MOOD_CLASSES)}, Q1-Q4 or a synonym "
                         "listed in docs/train-your-own.md)")
    return q


def parse_scale(text: str) -> tuple[float, float]:
    """A rating scale ``LOW-HIGH`` (``1-9``, ``0-1``, ``-1-1``, ``0-100``; ``..`` or ``:``
    may stand for the dash) as ``(low, high)``.

    Raises
    ------
    ValueError
        Not two numbers with ``low < high``.
    """
    number = r"\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*"
    m = re.fullmatch(f"{number}(?:-|\\.\\.|:|to){number}", text)
    if m is None or not float(m.group(1)) < float(m.group(2)):
        raise ValueError(f"rating scale {text!r} is not LOW-HIGH with LOW below HIGH (e.g. 1-9, 0-1, -1-1)")
    return float(m.group(1)), float(m.group(2))


@dataclass
class Song:
    """One labelled audio file: its quadrant (1-4) and/or its ``(valence, arousal)`` ratings on
    the 0-1 scale, its artist (``""`` when unknown) and where its labels come from."""

    path: Path
    mood: int | None = None
    ratings: tuple[float, float] | None = None
    artist: str = ""
    source: str = ""


@dataclass
class Labels:
    """Labelled songs with audio, the listed files without it (``"where: path"``), notes on
    what else was left out, and the scales the ratings were given on (``"1-9"``...)."""

    songs: list[Song]
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scales: set[str] = field(default_factory=set)

    @property
    def rating_scale(self) -> str:
        """The scale every rating was given on, or ``"0-1"`` (where they are all kept) when
        they came on several."""
        return next(iter(self.scales)) if len(self.scales) == 1 else "0-1"

    @property
    def moods(self) -> np.ndarray:
        """``[n]`` quadrant of each song, 0 where it has none."""
        return np.array([s.mood or 0 for s in self.songs], np.int64)

    @property
    def ratings(self) -> np.ndarray:
        """``[n, 2]`` ratings on the 0-1 scale, NaN where a song has none."""
        return np.array([s.ratings if s.ratings else (np.nan, np.nan) for s in self.songs], np.float64)

    def counts(self) -> dict[str, int]:
        """Songs per mood word, and ``rated`` songs."""
        c = Counter(s.mood for s in self.songs if s.mood)
        return {**{w: c[q] for q, w in enumerate(MOOD_CLASSES, start=1)},
                "rated": sum(s.ratings is not None for s in self.songs)}

    def summary(self) -> str:
        c = self.counts()
        moods = sum(c[w] for w in MOOD_CLASSES)
        parts = []
        if moods:
            parts.append(f"{moods} songs by mood (" + ", ".join(f"{c[w]} {w}" for w in MOOD_CLASSES) + ")")
        if c["rated"]:
            parts.append(f"{c['rated']} rated songs")
        artists = len({s.artist for s in self.songs if s.artist})
        return (f"{len(self.songs)} labelled songs with audio: " + "; ".join(parts)
                + (f"; {artists} artists" if artists else "; no artists given (each song is its own group)"))


def _audio_index(folder: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS:
            index.setdefault(f.stem, []).append(f)
    return index


def read_label_csv(path: str | os.PathLike[str], audio_dir: str | os.PathLike[str] | None = None,
                   scale: tuple[float, float] | None = None) -> Labels:
    """Read a labels CSV (see the module's description of its columns).

    Parameters
    ----------
    path : path-like
        The CSV.
    audio_dir : path-like, optional
        Where ``song_id`` files are looked for when there is no ``audio/`` beside the CSV.
    scale : (float, float), optional
        The ratings' ``(low, high)``; needed when the file has ``valence`` and ``arousal``.

    Returns
    -------
    Labels

    Raises
    ------
    LabelError
        A missing column, an unknown mood word, a rating that is no number or lies outside
        ``scale``, a row without a label, a song listed twice, or no folder for ``song_id``.
    """
    path = Path(path)
    try:
        header, rows = read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path}: cannot read it ({exc})") from None
    by = "path" if "path" in header else "song_id" if "song_id" in header else None
    mood_col = "mood" if "mood" in header else "quadrant" if "quadrant" in header else None
    rated = "valence" in header or "arousal" in header
    if by is None:
        raise LabelError(f"{path}: no 'path' or 'song_id' column (columns: {', '.join(header)})")
    if rated and not {"valence", "arousal"} <= set(header):
        raise LabelError(f"{path}: ratings need both a 'valence' and an 'arousal' column")
    if mood_col is None and not rated:
        raise LabelError(f"{path}: no label column: give 'mood' (or 'quadrant'), or 'valence' and 'arousal'")
    if rated and scale is None:
        raise LabelError(f"{path}: it holds ratings; say their scale with --label-scale (e.g. 1-9, 0-1, -1-1)")
    index: dict[str, list[Path]] | None = None
    folder = path.parent / "audio" if (path.parent / "audio").is_dir() else Path(audio_dir) if audio_dir else None
    if by == "song_id":
        if folder is None or not folder.is_dir():
            raise LabelError(f"{path}: songs are named by song_id, but there is no audio/ folder beside it "
                             "and no --audio-dir")
        index = _audio_index(folder)
    songs: list[Song] = []
    missing: list[str] = []
    seen: dict[Path, int] = {}
    for line, row in rows:
        where = f"{path}, line {line}"
        key = row.get(by, "")
        if not key:
            raise LabelError(f"{where}: empty {by}")
        mood = None
        if mood_col and row.get(mood_col, ""):
            try:
                mood = parse_mood(row[mood_col])
            except ValueError as exc:
                raise LabelError(f"{where}: {mood_col} {exc}") from None
        ratings = _ratings(row, where, scale) if rated else None
        if mood is None and ratings is None:
            raise LabelError(f"{where}: song {key!r} has no label")
        if index is not None:
            found = index.get(key, [])
            if len(found) > 1:
                raise LabelError(f"{where}: song_id {key!r} matches {len(found)} files in {folder} "
                                 f"({', '.join(f.name for f in found)})")
            if not found:
                missing.append(f"{where}: no audio file {key}.* in {folder}")
                continue
            audio = found[0]
        else:
            audio = Path(key) if Path(key).is_absolute() else path.parent / key
            if not audio.is_file():
                missing.append(f"{where}: {audio}: no such file")
                continue
        resolved = audio.resolve()
        if resolved in seen:
            raise LabelError(f"{where}: {audio} is listed twice (first on line {seen[resolved]})")
        seen[resolved] = line
        songs.append(Song(audio, mood, ratings, row.get("artist", ""), where))
    if not rows:
        raise LabelError(f"{path}: no rows")
    rated_scale = {f"{scale[0]:g}-{scale[1]:g}"} if scale and any(s.ratings for s in songs) else set()
    return Labels(songs, missing, scales=rated_scale)


def _ratings(row: dict[str, str], where: str, scale: tuple[float, float] | None) -> tuple[float, float] | None:
    cells = [row.get("valence", ""), row.get("arousal", "")]
    if not any(cells):
        return None
    low, high = scale  # type: ignore[misc]
    values = []
    for name, cell in zip(("valence", "arousal"), cells):
        try:
            value = float(cell)
        except ValueError:
            raise LabelError(f"{where}: {name} {cell!r} is not a number") from None
        if not low <= value <= high:
            raise LabelError(f"{where}: {name} {value:g} lies outside the rating scale {low:g}-{high:g} "
                             "(--label-scale)")
        values.append((value - low) / (high - low))
    return values[0], values[1]


def read_mood_folders(root: str | os.PathLike[str]) -> Labels:
    """Songs in folders named by mood word: ``root/<word>/**/<audio file>`` (:data:`MOOD_WORDS`).

    Raises
    ------
    LabelError
        A subfolder's name is no mood word, or no subfolder holds audio.
    """
    root = Path(root)
    if not root.is_dir():
        raise LabelError(f"{root}: no such folder")
    songs: list[Song] = []
    notes: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            mood = parse_mood(sub.name)
        except ValueError as exc:
            raise LabelError(f"{sub}: folder name {exc}") from None
        files = sorted(f for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
                       and not any(part.startswith(".") for part in f.relative_to(root).parts))
        songs += [Song(f, mood, None, "", str(sub)) for f in files]
    loose = [f for f in root.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS]
    if loose:
        notes.append(f"{root}: {len(loose)} audio file(s) directly in it, in no mood folder, are not used "
                     f"(e.g. {loose[0].name})")
    if not songs:
        raise LabelError(f"{root}: no audio in mood folders (expected {root}/happy/..., {root}/sad/...)")
    return Labels(songs, notes=notes)


def read_deam(annotations: str | os.PathLike[str], audio_dir: str | os.PathLike[str]) -> Labels:
    """Songs of DEAM's layout: the static-annotation CSV(s) ``annotations`` (a file or a
    folder of them) and ``<song_id>.<ext>`` files in ``audio_dir``, rated on 1-9.

    Raises
    ------
    LabelError
        Unreadable annotations, or no audio file matches a labelled song.
    """
    for what, p in (("--annotations", annotations), ("--audio-dir", audio_dir)):
        if not Path(p).exists():
            raise LabelError(f"{what} {p}: no such file or folder")
    try:
        data = load_dataset(audio_dir, annotations)
    except (OSError, ValueError) as exc:
        raise LabelError(str(exc)) from None
    songs = [Song(p, None, (float(v), float(a)), "", f"{annotations}, song {sid}")
             for sid, p, (v, a) in zip(data.ids, data.paths, data.targets)]
    notes = []
    if data.labels_without_audio:
        notes.append(f"{annotations}: {len(data.labels_without_audio)} rated song(s) have no audio in {audio_dir} "
                     f"and are not used (e.g. song {data.labels_without_audio[0]})")
    return Labels(songs, notes=notes, scales={"1-9"})


def merge(sets: Iterable[Labels]) -> Labels:
    """One set of songs from several: a file labelled in two places is one song when one
    place gives its mood and the other its ratings.

    Raises
    ------
    LabelError
        The same file given the same kind of label twice.
    """
    songs: dict[Path, Song] = {}
    out = Labels([])
    for s in sets:
        out.missing += s.missing
        out.notes += s.notes
        out.scales |= s.scales
        for song in s.songs:
            key = song.path.resolve()
            first = songs.get(key)
            if first is None:
                songs[key] = song
                continue
            if (first.mood and song.mood) or (first.ratings and song.ratings):
                raise LabelError(f"{song.source}: {song.path} is labelled twice (also at {first.source})")
            songs[key] = Song(first.path, first.mood or song.mood, first.ratings or song.ratings,
                              first.artist or song.artist, f"{first.source}; {song.source}")
    out.songs = list(songs.values())
    return out


def check_enough(labels: Labels, what: str = "labels") -> None:
    """Refuse too few songs to train and cross-validate on: every mood needs
    :data:`MIN_SONGS_PER_MOOD` songs when any song has a mood, and ratings need
    :data:`MIN_RATED_SONGS` songs.

    Raises
    ------
    LabelError
        One line saying which count is short.
    """
    c = labels.counts()
    if not labels.songs:
        raise LabelError(f"{what}: no labelled song with audio")
    if any(c[w] for w in MOOD_CLASSES):
        short = [f"{c[w]} {w}" for w in MOOD_CLASSES if c[w] < MIN_SONGS_PER_MOOD]
        if short:
            raise LabelError(f"{what}: too few songs of a mood ({', '.join(short)}); a model by mood needs at "
                             f"least {MIN_SONGS_PER_MOOD} songs of each of {', '.join(MOOD_CLASSES)}")
    if c["rated"] and c["rated"] < MIN_RATED_SONGS:
        raise LabelError(f"{what}: {c['rated']} rated songs; ratings need at least {MIN_RATED_SONGS}")


def read_labels(csvs: Sequence[str | os.PathLike[str]] = (), mood_folders: Sequence[str | os.PathLike[str]] = (),
                annotations: str | os.PathLike[str] | None = None, audio_dir: str | os.PathLike[str] | None = None,
                scale: tuple[float, float] | None = None) -> Labels:
    """Every form at once, merged (:func:`merge`) and checked (:func:`check_enough`).

    Parameters
    ----------
    csvs : sequence of path-like
        Labels CSV files (:func:`read_label_csv`).
    mood_folders : sequence of path-like
        Folders of mood folders (:func:`read_mood_folders`).
    annotations, audio_dir : path-like, optional
        DEAM's layout (:func:`read_deam`) when ``annotations`` is given; ``audio_dir`` is
        also where a CSV's ``song_id`` files are, when it has no ``audio/`` beside it.
    scale : (float, float), optional
        The CSVs' rating scale.

    Returns
    -------
    Labels

    Raises
    ------
    LabelError
    """
    sets = [read_label_csv(c, audio_dir, scale) for c in csvs]
    sets += [read_mood_folders(d) for d in mood_folders]
    if annotations is not None:
        if audio_dir is None:
            raise LabelError(f"--annotations {annotations}: DEAM's layout needs --audio-dir too")
        sets.append(read_deam(annotations, audio_dir))
    if not sets:
        raise LabelError("no labels: give --labels CSV, --mood-folders DIR, or --annotations with --audio-dir")
    labels = merge(sets)
    check_enough(labels)
    return labels

