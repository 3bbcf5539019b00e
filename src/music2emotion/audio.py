"""Audio loading: any file libsndfile decodes, as mono float32 at the model's sample rate.

Files are decoded in blocks and resampled with a streaming resampler, so memory does not
grow with the length of the file. ``load_audio`` is the same stream concatenated, which
keeps training (whole clips) and inference (streamed windows) sample-for-sample identical.
Every failure is an :class:`AudioError` whose message is one line naming the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .config import AUDIO_EXTENSIONS, SAMPLE_RATE

BLOCK_SECONDS = 20.0


class AudioError(Exception):
    """A file that cannot be turned into audio; ``str(err)`` is a one-line reason."""


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError("file not found" if not path.is_symlink() else "broken symbolic link")
    if path.is_dir():
        raise AudioError("is a directory, not an audio file")
    if not path.is_file():
        raise AudioError("not a regular file")
    if not os.access(path, os.R_OK):
        raise AudioError("permission denied")
    if path.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)")


def _reason(exc: Exception) -> str:
    text = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())
    low = text.lower()
    # libsndfile reports a file it cannot parse as "not a regular file" once its MP3
    # decoder gives up, although _check_path has already established that it is one
    if any(s in low for s in ("format not recognised", "unknown format", "not a regular file")):
        return "not a supported audio format, or a corrupt file (libsndfile could not open it)"
    return text


def open_audio(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open ``path`` for reading, raising :class:`AudioError` with a clear reason."""
    p = Path(path)
    _check_path(p)
    try:
        f = sf.SoundFile(str(p))
    except PermissionError as exc:
        raise AudioError("permission denied") from exc
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(_reason(exc)) from exc
    if f.samplerate <= 0 or f.channels <= 0:
        f.close()
        raise AudioError("invalid header (no sample rate or channels)")
    return f


def stream_audio(
    path: str | os.PathLike[str],
    sample_rate: int = SAMPLE_RATE,
    block_seconds: float = BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """Yield the file as consecutive mono float32 blocks at ``sample_rate``."""
    with open_audio(path) as f:
        in_rate = f.samplerate
        resampler = (
            None
            if in_rate == sample_rate
            else soxr.ResampleStream(in_rate, sample_rate, 1, dtype="float32", quality="HQ")
        )
        blocksize = max(1024, int(block_seconds * in_rate))
        decoded = 0
        try:
            for block in f.blocks(blocksize=blocksize, dtype="float32", always_2d=True):
                decoded += len(block)
                mono = block.mean(axis=1, dtype=np.float32)
                out = mono if resampler is None else resampler.resample_chunk(mono)
                if out.size:
                    yield np.ascontiguousarray(out, dtype=np.float32)
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            raise AudioError(
                f"decoding failed after {decoded / in_rate:.1f} s: {_reason(exc)}"
            ) from exc
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                yield np.ascontiguousarray(tail, dtype=np.float32)
        if decoded == 0:
            raise AudioError("no audio data (the file holds a header but no samples)")


def load_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the whole file to one mono float32 array at ``sample_rate``."""
    blocks = list(stream_audio(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def find_audio_files(
    paths: list[str | os.PathLike[str]], extensions: frozenset[str] | None = None
) -> list[Path]:
    """Expand files and folders (recursively, by extension) into a sorted, de-duplicated list.

    Files named explicitly are kept whatever their extension, so that a bad one gets
    reported rather than silently dropped. Symbolic-link loops are visited once.
    """
    exts = extensions or AUDIO_EXTENSIONS
    found: list[Path] = []
    seen: set[str] = set()

    def add(p: Path) -> None:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            found.append(p)

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
                if Path(name).suffix.lower() in exts:
                    add(Path(root) / name)
    return found
