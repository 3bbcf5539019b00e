"""DEAM labels, the songs that have both audio and labels, splits, and a feature cache.

DEAM's static-annotation CSVs are read as distributed (spaces after commas, extra
``*_max_*``/``*_min_*`` columns and a stray space inside one header of the 2015 file) by
column name. Ratings are mapped from 1-9 to [0, 1]. Songs missing audio or labels are
reported, never silently dropped or mismatched.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import AudioError, load_audio
from ..config import AUDIO_EXTENSIONS, FeatureSettings, to_unit
from ..frontends import window_features

REQUIRED = ("song_id", "valence_mean", "arousal_mean")


@dataclass(frozen=True)
class Labels:
    """One song's static labels on the 0-1 scale (stds in 0-1 units, NaN when absent)."""

    valence: float
    arousal: float
    valence_std: float
    arousal_std: float


def _clean(name: str) -> str:
    return re.sub(r"\s+", "", name).lower()


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV file with a header row: its column names, compared without case or white
    space, and its rows as ``(line number, {column: cell})``; cells are stripped, blank rows
    skipped, and a short row lacks its last columns."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [_clean(c) for c in next(reader, [])]
        return header, [(line, {name: cell.strip() for name, cell in zip(header, row)})
                        for line, row in enumerate(reader, start=2) if any(cell.strip() for cell in row)]


def read_csv_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of :func:`read_csv`, once the file is known to have the ``required`` columns.

    Raises
    ------
    ValueError
        A column of ``required`` is missing; the message names the file.
    """
    header, rows = read_csv(path)
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    yield from rows


def read_annotations(path: str | os.PathLike[str]) -> dict[int, Labels]:
    """Read one DEAM CSV, or every ``*.csv`` in a folder, into ``{song_id: Labels}``.

    Raises ``ValueError`` naming the file when a required column is missing, a value does
    not parse, or a song appears twice with different labels.
    """
    p = Path(path)
    files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    if not files:
        raise ValueError(f"{p}: no annotation CSV files found")
    labels: dict[int, Labels] = {}
    for f in files:
        for line, row in read_csv_rows(f, REQUIRED):
            try:
                def get(name: str) -> float:
                    cell = row.get(name, "")
                    return float(cell) if cell else float("nan")

                sid = int(float(row["song_id"]))
                # a std is a difference, so it scales by 1/8 without the offset
                item = Labels(float(to_unit(get("valence_mean"))), float(to_unit(get("arousal_mean"))),
                              get("valence_std") / 8.0, get("arousal_std") / 8.0)
            except ValueError as exc:
                raise ValueError(f"{f}, line {line}: cannot parse {row!r}") from exc
            old = labels.get(sid)
            if old is not None and (old.valence, old.arousal) != (item.valence, item.arousal):
                raise ValueError(f"{f}: song {sid} labelled twice with different values")
            labels[sid] = item
    return labels


@dataclass
class Dataset:
    """Songs with both audio and labels, and what was left out (and why)."""

    ids: list[int]
    paths: list[Path]
    targets: np.ndarray  # [n, 2] valence, arousal in [0, 1]
    stds: np.ndarray  # [n, 2] rating standard deviations, 0-1 units
    audio_without_labels: list[Path] = field(default_factory=list)
    labels_without_audio: list[int] = field(default_factory=list)

    def report(self) -> str:
        return (
            f"{len(self.ids)} songs with audio and labels; "
            f"{len(self.audio_without_labels)} audio files without labels skipped; "
            f"{len(self.labels_without_audio)} labelled songs without audio skipped"
        )


def load_dataset(audio_dir: str | os.PathLike[str], annotations: str | os.PathLike[str]) -> Dataset:
    """Pair ``<audio_dir>/<song_id>.<ext>`` with the labels in ``annotations``."""
    labels = read_annotations(annotations)
    audio: dict[int, Path] = {}
    unlabeled: list[Path] = []
    for f in sorted(Path(audio_dir).iterdir()):
        if f.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        if not f.stem.isdigit():
            unlabeled.append(f)
            continue
        sid = int(f.stem)
        if sid in labels:
            audio[sid] = f
        else:
            unlabeled.append(f)
    ids = sorted(audio)
    if not ids:
        raise ValueError(f"{audio_dir}: no audio file matches a labelled song id")
    return Dataset(
        ids=ids,
        paths=[audio[i] for i in ids],
        targets=np.array([[labels[i].valence, labels[i].arousal] for i in ids], np.float32),
        stds=np.array([[labels[i].valence_std, labels[i].arousal_std] for i in ids], np.float32),
        audio_without_labels=unlabeled,
        labels_without_audio=sorted(set(labels) - set(audio)),
    )


def split_ids(ids: Sequence[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded, reproducible train/validation split of song ids."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(sorted(ids))
    n_val = max(1, int(round(len(order) * val_fraction)))
    return sorted(map(int, order[n_val:])), sorted(map(int, order[:n_val]))


def kfold_ids(ids: Sequence[int], folds: int, seed: int) -> list[list[int]]:
    """Seeded k-fold partition of song ids: ``folds`` disjoint sorted lists."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(sorted(ids))
    return [sorted(map(int, part)) for part in np.array_split(order, folds)]


class FeatureCache:
    """On-disk cache of each clip's model input, keyed by file identity and settings.

    Training needs the same spectrogram every epoch and decoding MP3 dominates, so the first
    pass stores ``window_features(load_audio(path))`` as ``.npy`` and later passes read it.
    The key covers the absolute path, size, modification time and the feature settings, so
    an edited file or a changed setting never reads a stale entry.
    """

    def __init__(self, root: str | os.PathLike[str], settings: FeatureSettings):
        self.root = Path(root)
        self.settings = settings
        self.root.mkdir(parents=True, exist_ok=True)

    def key(self, path: Path) -> str:
        st = path.stat()
        ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.settings.to_json()}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def get(self, path: str | os.PathLike[str]) -> np.ndarray:
        p = Path(path)
        file = self.root / f"{self.key(p)}.npy"
        if file.exists():
            try:
                return np.load(file)
            except (OSError, ValueError):
                file.unlink(missing_ok=True)  # a torn write from a killed run
        x = window_features(load_audio(p, self.settings.sample_rate), self.settings)
        tmp = file.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, x)
        os.replace(tmp, file)
        return x

    def _get_or_error(self, path: Path) -> np.ndarray | str:
        try:
            return self.get(path)
        except AudioError as exc:
            return f"{path}: {exc}"

    def load_all(self, paths: Sequence[Path], jobs: int = 1, progress: bool = True) -> np.ndarray:
        """Stack the features of ``paths`` into ``[n, 1, n_mels, n_frames]``, in parallel."""
        from tqdm import tqdm

        if jobs > 1:
            with ProcessPoolExecutor(jobs) as pool:
                results = list(
                    tqdm(pool.map(self._get_or_error, paths, chunksize=8), total=len(paths),
                         desc="features", disable=not progress, unit="file")
                )
        else:
            results = [
                self._get_or_error(p)
                for p in tqdm(paths, desc="features", disable=not progress, unit="file")
            ]
        errors = [r for r in results if isinstance(r, str)]
        if errors:
            raise AudioError(f"{len(errors)} file(s) could not be read, e.g. {errors[0]}")
        return np.stack(results)  # type: ignore[arg-type]


def save_ids(path: str | os.PathLike[str], **groups: list[int]) -> None:
    """Write named lists of song ids as JSON (e.g. ``train=[...], val=[...]``)."""
    Path(path).write_text(json.dumps(groups, indent=1))
