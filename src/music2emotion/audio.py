"""Audio loading: any file libsndfile decodes, as mono float32 at the model's sample rate.

Files are decoded in blocks and resampled with a streaming resampler, so memory does not
grow with the length of the file. ``load_audio`` is the same stream concatenated, which
keeps training (whole clips) and inference (streamed windows) sample-for-sample identical.
Every failure is an :class:`AudioError` whose message is one line naming the reason: a
missing, empty, unreadable or non-audio file, a header with no samples, a file that stops
short of the length its header declares (a truncated download), samples that are not
finite numbers, or, when a limit is given, more audio than the limit.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .config import AUDIO_EXTENSIONS, SAMPLE_RATE, SILENCE_RMS

BLOCK_SECONDS = 20.0
# A block also stays under this many decoded bytes, so a file with many channels or a huge
# sample rate cannot make one block big (96 kHz x 6 channels x 20 s would be 46 MB).
BLOCK_BYTES = 8 * 1024 * 1024
# Sample rates outside this range are a damaged header rather than audio.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 1_536_000
# Decoding that stops this far short of the length the header declares is a truncated file;
# the slack absorbs MP3 encoder delay and padding.
TRUNCATION_SLACK_SECONDS = 0.25


class AudioError(Exception):
    """A file that cannot be turned into audio; ``str(err)`` is a one-line reason."""


def format_seconds(seconds: float) -> str:
    """``"45 s"``, ``"20 min"``, ``"1 h 30 min"``: a length as people say it."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def too_long(seconds: float, limit: float, *, declared: bool = True) -> str:
    """The one-line reason a file longer than ``limit`` seconds is refused."""
    if declared:
        return f"too long: {format_seconds(seconds)} of audio, over the limit of {format_seconds(limit)}"
    return (f"too long: more than the limit of {format_seconds(limit)} of audio, though its "
            "header declares less or no length")


def _check_path(path: Path) -> None:
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError("symbolic link loop") from exc
        if exc.errno == errno.EACCES:
            raise AudioError("permission denied") from exc
        if path.is_symlink():
            raise AudioError("broken symbolic link") from exc
        raise AudioError("file not found") from exc
    if path.is_dir():
        raise AudioError("is a directory, not an audio file")
    if not path.is_file():
        # a FIFO or device would block or never end: refuse before opening it
        raise AudioError("not a regular file (a pipe, socket or device)")
    if not os.access(path, os.R_OK):
        raise AudioError("permission denied")
    if st.st_size == 0:
        raise AudioError("empty file (0 bytes)")


NOT_AUDIO = "not a supported audio format (libsndfile could not recognise it)"


def _reason(exc: Exception) -> str:
    text = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split()).removeprefix("Error : ")
    low = text.lower()
    # libsndfile's MP3 probe reports an unrecognised file as "does not exist or is not a
    # regular file"; _check_path has already ruled both out, so it is the format
    if "format not recognised" in low or "unknown format" in low or "not a regular file" in low:
        return NOT_AUDIO
    return text


def open_audio(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open ``path`` for reading, raising :class:`AudioError` with a clear reason."""
    p = Path(path)
    _check_path(p)
    try:
        # bytes, because soundfile encodes a str name strictly and fails on names that
        # are not valid UTF-8 (they reach Python as surrogate escapes)
        f = sf.SoundFile(os.fsencode(p))
    except PermissionError as exc:
        raise AudioError("permission denied") from exc
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(_reason(exc)) from exc
    if f.samplerate <= 0 or f.channels <= 0:
        f.close()
        raise AudioError("invalid header (no sample rate or channels)")
    if not MIN_SAMPLE_RATE <= f.samplerate <= MAX_SAMPLE_RATE:
        rate = f.samplerate
        f.close()
        raise AudioError(f"invalid header (implausible sample rate {rate} Hz)")
    return f


def declared_frames(f: sf.SoundFile) -> int | None:
    """The length an open file's header declares, in frames; ``None`` when unknown
    (libsndfile reports an unknown length as a huge number)."""
    return f.frames if 0 <= f.frames < 2**62 else None


def declared_seconds(path: str | os.PathLike[str]) -> float | None:
    """Seconds of audio the file's header declares, read without decoding.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile decodes.

    Returns
    -------
    float or None
        ``None`` when the header does not say.

    Raises
    ------
    AudioError
        The file cannot be opened as audio.
    """
    with open_audio(path) as f:
        frames = declared_frames(f)
        return None if frames is None else frames / f.samplerate


class _Resampler:
    """Blocks of any channel count at ``in_rate`` -> mono float32 blocks at ``out_rate``,
    with one streaming resampler, so a file read in blocks and an array cut into the same
    blocks give the same samples."""

    def __init__(self, in_rate: int, out_rate: int):
        self.stream = (None if in_rate == out_rate else
                       soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ"))

    def block(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` ``[n, channels]`` float32 -> mono at the output rate (maybe empty)."""
        mono = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0].copy()
        if not np.isfinite(mono).all():
            raise AudioError("invalid samples: the audio holds NaN or infinite values")
        out = mono if self.stream is None else self.stream.resample_chunk(mono)
        return np.ascontiguousarray(out, dtype=np.float32)

    def tail(self) -> np.ndarray:
        if self.stream is None:
            return np.zeros(0, np.float32)
        return np.ascontiguousarray(
            self.stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True), dtype=np.float32)


def _block_frames(rate: int, channels: int, block_seconds: float = BLOCK_SECONDS) -> int:
    return max(1024, min(int(block_seconds * rate), BLOCK_BYTES // (4 * channels)))


def stream_audio(
    path: str | os.PathLike[str],
    sample_rate: int = SAMPLE_RATE,
    block_seconds: float = BLOCK_SECONDS,
    *,
    max_seconds: float | None = None,
) -> Iterator[np.ndarray]:
    """Yield the file as consecutive mono float32 blocks at ``sample_rate``.

    Memory is one block (at most ``block_seconds`` and ``BLOCK_BYTES``) whatever the file's
    length. Errors found late (truncation, a decoder failure midway) are raised after the
    blocks decoded so far, so callers must not treat a partial stream as a result.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile decodes.
    sample_rate : int
        The rate of the blocks yielded.
    block_seconds : float
        Length of a block of the file, before resampling.
    max_seconds : float, optional
        Refuse a file longer than this: before decoding anything when the header declares
        more, else as soon as the decoded audio passes it (a header that lies, or says
        nothing), so no more than this (and one block) is ever decoded.

    Yields
    ------
    numpy.ndarray
        1-D float32 blocks.

    Raises
    ------
    AudioError
        The file cannot be decoded, or is longer than ``max_seconds``; the message is a
        one-line reason.
    """
    with open_audio(path) as f:
        in_rate, channels = f.samplerate, f.channels
        declared = declared_frames(f)
        if max_seconds is not None and declared is not None and declared > max_seconds * in_rate:
            raise AudioError(too_long(declared / in_rate, max_seconds))
        limit = None if max_seconds is None else int(max_seconds * in_rate)
        resampler = _Resampler(in_rate, sample_rate)
        blocksize = _block_frames(in_rate, channels, block_seconds)
        buf = np.empty((blocksize, channels), dtype=np.float32)
        decoded = 0
        try:
            while True:
                # read() returns only the frames it got; SoundFile.blocks() would hand back
                # the whole buffer, stale samples included, when a file ends early
                block = f.read(blocksize, dtype="float32", always_2d=True, out=buf)
                if len(block) == 0:
                    break
                decoded += len(block)
                if limit is not None and decoded > limit:
                    raise AudioError(too_long(decoded / in_rate, max_seconds, declared=False))
                out = resampler.block(block)
                if out.size:
                    yield out
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            raise AudioError(
                f"decoding failed after {decoded / in_rate:.1f} s of audio: {_reason(exc)}"
            ) from exc
        if decoded == 0:
            raise AudioError("no audio data (the file holds a header but no samples)")
        if declared and declared - decoded > TRUNCATION_SLACK_SECONDS * in_rate:
            raise AudioError(
                f"truncated: the audio stops at {decoded / in_rate:.1f} s but the header "
                f"declares {declared / in_rate:.1f} s"
            )
        tail = resampler.tail()
        if tail.size:
            yield tail


def as_frames(samples: np.ndarray) -> np.ndarray:
    """Audio held in memory as ``[frames, channels]`` float32.

    Parameters
    ----------
    samples : numpy.ndarray
        1-D mono, or 2-D ``[frames, channels]`` as soundfile returns it. Floating-point
        samples are taken as they are (full scale is 1.0); integer PCM is scaled by its
        type's range.

    Returns
    -------
    numpy.ndarray
        ``[frames, channels]`` float32.

    Raises
    ------
    ValueError
        ``samples`` is not 1-D or 2-D, not numbers, or has more channels than frames
        (librosa's ``[channels, frames]``: pass ``samples.T``).
    """
    a = np.asarray(samples)
    if a.ndim not in (1, 2):
        raise ValueError(f"samples must be 1-D or [frames, channels], not of shape {a.shape}")
    if a.ndim == 2 and a.shape[1] > a.shape[0]:
        raise ValueError(f"samples of shape {a.shape} have more channels than frames; "
                         "pass [frames, channels] (for librosa's [channels, frames], samples.T)")
    if np.issubdtype(a.dtype, np.integer):
        a = a / float(np.iinfo(a.dtype).max + 1)
    elif not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"samples must be floating-point or integer PCM, not {a.dtype}")
    return np.asarray(a if a.ndim == 2 else a[:, np.newaxis], dtype=np.float32)


def stream_array(
    samples: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Audio held in memory as the blocks :func:`stream_audio` yields for a file of it.

    Parameters
    ----------
    samples : numpy.ndarray
        See :func:`as_frames`.
    rate : int
        The sample rate of ``samples``, in Hz.
    sample_rate : int
        The rate of the blocks yielded.

    Yields
    ------
    numpy.ndarray
        1-D float32 blocks, the same samples a lossless file of this audio gives.

    Raises
    ------
    ValueError
        A sample rate outside 1 kHz to 1,536 kHz, or samples of the wrong shape or type
        (before anything is yielded).
    AudioError
        No samples, or samples that are not finite numbers (while streaming).
    """
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample rate must be {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz, not {rate}")
    frames = as_frames(samples)
    return _stream_frames(frames, int(rate), sample_rate)


def _stream_frames(frames: np.ndarray, rate: int, sample_rate: int) -> Iterator[np.ndarray]:
    if len(frames) == 0:
        raise AudioError("no audio data (the array holds no samples)")
    resampler = _Resampler(rate, sample_rate)
    step = _block_frames(rate, frames.shape[1])
    for i in range(0, len(frames), step):
        out = resampler.block(frames[i : i + step])
        if out.size:
            yield out
    tail = resampler.tail()
    if tail.size:
        yield tail


def load_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the whole file to one mono float32 array at ``sample_rate``.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile decodes.
    sample_rate : int
        The rate of the array returned.

    Returns
    -------
    numpy.ndarray
        1-D float32, the blocks of :func:`stream_audio` concatenated.
    """
    blocks = list(stream_audio(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


@contextmanager
def quiet_decoder_messages() -> Iterator[None]:
    """Send what C libraries print on file descriptor 2 to /dev/null, keeping Python's own
    ``sys.stderr`` where it writes now.

    libmpg123 (inside libsndfile) prints notes such as "Warning: Xing stream size off" or
    "Illegal Audio-MPEG-Header" for damaged MP3s straight to the stderr descriptor; each
    such file already gets a clear one-line error, so the notes are only noise. Process-wide:
    for worker processes and the command line, not for a library caller's threads.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to quieten
        yield
        return
    try:
        on_fd2 = sys.stderr.fileno() == 2
    except (OSError, ValueError, AttributeError):  # e.g. a test's in-memory capture
        on_fd2 = False
    devnull = os.open(os.devnull, os.O_WRONLY)
    old_stderr = sys.stderr
    try:
        if on_fd2:
            sys.stderr = open(  # noqa: SIM115 - closed in finally
                saved, "w", encoding=getattr(old_stderr, "encoding", None) or "utf-8",
                errors="backslashreplace", buffering=1, closefd=False,
            )
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        if on_fd2:
            sys.stderr.close()
            sys.stderr = old_stderr
        os.close(devnull)
        os.close(saved)


def find_audio_files(
    paths: list[str | os.PathLike[str]], extensions: frozenset[str] | None = None
) -> list[Path]:
    """Expand files and folders (recursively, by extension) into a sorted, de-duplicated list.

    Files named explicitly are kept whatever their extension, so that a bad one gets
    reported rather than silently dropped. Symbolic-link loops are visited once.

    Parameters
    ----------
    paths : list of str or os.PathLike
        Files and folders.
    extensions : frozenset of str, optional
        Lower-case suffixes to find in folders (default: ``AUDIO_EXTENSIONS``).

    Returns
    -------
    list of pathlib.Path
        In the order given, each folder's files sorted.
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


class LevelMeter:
    """Passes a stream of blocks through while counting its samples and energy, so a file's
    duration and whether it is digital silence come without a second pass."""

    def __init__(self, blocks: Iterable[np.ndarray]):
        self._blocks = blocks
        self.samples = 0
        self.sumsq = 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        for b in self._blocks:
            self.samples += len(b)
            self.sumsq += float(np.dot(b, b))
            yield b

    @property
    def silent(self) -> bool:
        return bool(self.samples) and float(np.sqrt(self.sumsq / self.samples)) < SILENCE_RMS
