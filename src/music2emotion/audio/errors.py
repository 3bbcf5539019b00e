"""What goes wrong with a file, in one line: :class:`AudioError` and every message the
decoders give, the checks made before a file is opened, and the quieting of what C decoders
print themselves."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Sample rates outside this range are a damaged header rather than audio.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 1_536_000

NOT_AUDIO = "not a supported audio format (neither libsndfile nor FFmpeg recognise it)"
NO_AUDIO_STREAM = "no audio stream (the file holds only video or data)"
NO_SAMPLES = "no audio data (the file holds a header but no samples)"
NOT_FINITE = "invalid samples: the audio holds NaN or infinite values"
NO_DECODER = "no decoder for its audio (an unknown codec, or a damaged header)"


class AudioError(Exception):
    """A file that cannot be turned into audio; ``str(err)`` is a one-line reason."""


def one_line(text: object) -> str:
    """``text`` with every run of white space (newlines included) made one space; an
    exception without a message gives its type's name."""
    line = " ".join(str(text).split())
    return line or (type(text).__name__ if isinstance(text, BaseException) else "")


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


def truncated(decoded: float, declared: float | None) -> str:
    """The warning for a file that stops at ``decoded`` seconds, short of the ``declared``
    length (``None`` when the file shows it is cut but states no length)."""
    if declared is None:
        return (f"truncated: {format_seconds(decoded)} decoded, then the file stops short "
                "(it does not state its full length)")
    return f"truncated: {format_seconds(decoded)} of {format_seconds(declared)} decoded, the rest is missing"


def truncated_before_audio() -> str:
    """The reason a file cut short before its first audio fails."""
    return "truncated: the file stops before any of its audio (it holds a header and no samples)"


def too_much_missing(lost: float, cut: float, total: float, bound: float) -> str:
    """The reason a file whose audio is more than the ``bound`` share missing fails:
    ``lost`` seconds could not be decoded (damage), ``cut`` seconds were never in the file
    (truncation), of ``total``."""
    share = f"{100 * (lost + cut) / total:.0f} %"
    limit = f"more than the {100 * bound:.0f} % a prediction may skip"
    if not cut:
        return (f"damaged: {share} of the audio could not be decoded ({format_seconds(lost)} of "
                f"{format_seconds(total)}), {limit}")
    if not lost:
        return (f"truncated: {format_seconds(total - cut)} of {format_seconds(total)} decoded ({share} "
                f"missing), {limit}")
    kind = "truncated" if cut >= lost else "damaged"
    return (f"{kind}: {share} of the audio is missing ({format_seconds(lost)} could not be decoded, "
            f"{format_seconds(cut)} cut off, of {format_seconds(total)}), {limit}")


def decoding_failed(seconds: float, reason: str) -> str:
    """The reason a decoder that gave up after ``seconds`` of audio fails its file."""
    return f"decoding failed after {seconds:.1f} s of audio: {reason}"


def damaged_container(kind: str, reason: str) -> str:
    """The reason a file that starts as a ``kind`` container FFmpeg cannot open fails."""
    return f"truncated or damaged {kind} file: FFmpeg cannot read it ({reason})"


def check_path(path: Path) -> None:
    """Refuse what is not a readable, non-empty regular file before anything opens it.

    Raises
    ------
    AudioError
        A missing file, a link loop or a broken link, a folder, a pipe or device (which
        could block forever), a file not readable, an empty file.
    """
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


def check_header(rate: int, channels: int) -> None:
    """Refuse a header whose sample rate or channel count cannot be audio.

    Raises
    ------
    AudioError
        No rate or channels, or a rate outside ``MIN_SAMPLE_RATE``-``MAX_SAMPLE_RATE``.
    """
    if rate <= 0 or channels <= 0:
        raise AudioError("invalid header (no sample rate or channels)")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"invalid header (implausible sample rate {rate} Hz)")


@contextmanager
def quiet_decoder_messages() -> Iterator[None]:
    """Send what C libraries print on file descriptor 2 to /dev/null, keeping Python's own
    ``sys.stderr`` where it writes now.

    libmpg123 (inside libsndfile) prints notes such as "Warning: Xing stream size off" or
    "Illegal Audio-MPEG-Header" for damaged MP3s straight to the stderr descriptor; each
    such file already gets a clear one-line error or warning, so the notes are only noise.
    Process-wide: for worker processes and the command line, not for a library caller's
    threads.
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
