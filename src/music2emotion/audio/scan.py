"""Folder scans: the files a walk takes as audio, and a count of what it leaves out."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from ..config import AUDIO_EXTENSIONS

# Containers that usually hold video with sound: scanned too, since they often hold only
# audio (a FLAC-only .mkv, an .mp4 of a song, an .mov from a phone); one with no sound gets
# its error row (no audio stream), not a silent skip.
VIDEO_EXTENSIONS = frozenset({
    ".mkv", ".mk3d", ".mov", ".qt", ".m4v", ".avi", ".wmv", ".asf", ".flv", ".ogv", ".ogm",
    ".3gp", ".3g2", ".mpg", ".mpeg", ".m2ts", ".mts", ".vob",
})
# What a folder walk picks up, by default.
SCAN_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS


class AudioScan:
    """What :func:`scan_audio_files` found: ``files``, in order, and ``skipped``, the files
    under folders left out as not audio, counted by kind (``.jpg``, ``.cue``, ``.DS_Store``;
    ``._*`` for the AppleDouble files macOS leaves beside songs on other disks)."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.skipped: Counter[str] = Counter()

    def summary(self) -> str:
        """``"skipped 12 files that are not audio (8 .jpg, 3 .cue, 1 .DS_Store)"``, or ``""``."""
        total = sum(self.skipped.values())
        if not total:
            return ""
        kinds = sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
        return (f"skipped {total} file{'s' if total != 1 else ''} that "
                f"{'are' if total != 1 else 'is'} not audio ("
                + ", ".join(f"{n} {kind}" for kind, n in kinds) + ")")


def skipped_kind(name: str, extensions: frozenset[str] | None = None) -> str | None:
    """``None`` when a folder walk takes the file ``name`` as audio, else the kind it is
    counted under among the skipped files.

    Parameters
    ----------
    name : str
        A file's name (its last path component).
    extensions : frozenset of str, optional
        Lower-case suffixes taken as audio (default: ``SCAN_EXTENSIONS``).

    Returns
    -------
    str or None
        The suffix (``".jpg"``), ``"._*"``, the name of a dot file, or ``"(no extension)"``.
    """
    if name.startswith("._"):
        return "._*"
    suffix = os.path.splitext(name)[1].lower()
    if suffix in (extensions or SCAN_EXTENSIONS):
        return None
    if suffix:
        return suffix
    return name if name.startswith(".") else "(no extension)"


def scan_audio_files(
    paths: list[str | os.PathLike[str]], extensions: frozenset[str] | None = None
) -> AudioScan:
    """Expand files and folders (recursively, by extension) into a sorted, de-duplicated
    list, counting what folders hold that is not audio.

    Files named explicitly are kept whatever their extension, so that a bad one gets
    reported rather than silently dropped. Symbolic-link loops are visited once.

    Parameters
    ----------
    paths : list of str or os.PathLike
        Files and folders.
    extensions : frozenset of str, optional
        Lower-case suffixes to find in folders (default: ``SCAN_EXTENSIONS``).

    Returns
    -------
    AudioScan
        ``files`` in the order given, each folder's files sorted; ``skipped`` counted.
    """
    scan = AudioScan()
    seen: set[str] = set()

    def add(p: Path) -> None:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            scan.files.append(p)

    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            add(p)
            continue
        visited: set[str] = set()
        for root, dirs, files in os.walk(p, followlinks=True):
            real = os.path.realpath(root)
            if real in visited:
                dirs[:] = []
                continue
            visited.add(real)
            dirs.sort()
            for name in sorted(files):
                kind = skipped_kind(name, extensions)
                if kind is None:
                    add(Path(root) / name)
                else:
                    scan.skipped[kind] += 1
    return scan


def find_audio_files(
    paths: list[str | os.PathLike[str]], extensions: frozenset[str] | None = None
) -> list[Path]:
    """The files of :func:`scan_audio_files`: files named, and audio files under folders."""
    return scan_audio_files(paths, extensions).files
