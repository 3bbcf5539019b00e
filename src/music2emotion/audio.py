"""Audio loading: any file libsndfile or FFmpeg decodes, as mono float32 at the model's rate.

libsndfile (soundfile) reads what it knows (WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF, ...); every
other file goes to FFmpeg through PyAV (AAC and ALAC in M4A/MP4, Opus and Vorbis in
WebM/Matroska, WMA, APE, WavPack, AC-3, ...), which only decodes: mixing to mono and
resampling are the same code for both, so a file gives the same samples whichever decoder
reads it. An MP3 with bytes before its first frame is read by libsndfile from that frame.

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
import io
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


NOT_AUDIO = "not a supported audio format (neither libsndfile nor FFmpeg recognise it)"


def _reason(exc: Exception) -> str:
    text = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split()).removeprefix("Error : ")
    low = text.lower()
    # libsndfile's MP3 probe reports an unrecognised file as "does not exist or is not a
    # regular file"; _check_path has already ruled both out, so it is the format. Beside a
    # "._name" file (macOS's AppleDouble, on every song of a disk a Mac wrote) it takes an
    # unrecognised file for a Sound Designer II one and reports its "bad resource fork".
    if ("format not recognised" in low or "unknown format" in low or "not a regular file" in low
            or "resource fork" in low):
        return NOT_AUDIO
    return text


def open_audio(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open ``path`` with libsndfile, raising :class:`AudioError` with a clear reason
    (:data:`NOT_AUDIO` for a format libsndfile does not know; FFmpeg may still read it)."""
    p = Path(path)
    _check_path(p)
    return _checked(_open_sndfile(os.fsencode(p)))


def _open_sndfile(source: bytes | io.RawIOBase) -> sf.SoundFile:
    try:
        # bytes, because soundfile encodes a str name strictly and fails on names that
        # are not valid UTF-8 (they reach Python as surrogate escapes)
        return sf.SoundFile(source)
    except PermissionError as exc:
        raise AudioError("permission denied") from exc
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(_reason(exc)) from exc


def _check_header(rate: int, channels: int) -> None:
    if rate <= 0 or channels <= 0:
        raise AudioError("invalid header (no sample rate or channels)")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"invalid header (implausible sample rate {rate} Hz)")


def _checked(f: sf.SoundFile) -> sf.SoundFile:
    try:
        _check_header(f.samplerate, f.channels)
    except AudioError:
        f.close()
        raise
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
        Any file libsndfile or FFmpeg decodes.

    Returns
    -------
    float or None
        ``None`` when the header does not say.

    Raises
    ------
    AudioError
        The file cannot be opened as audio.
    """
    with _open_decoder(path) as f:
        return None if f.frames is None else f.frames / f.samplerate


# --- decoders: one interface over libsndfile and FFmpeg ---------------------------------


class _Decoder:
    """An open file: ``samplerate``, ``channels``, ``frames`` (what the header declares,
    ``None`` when it does not say) and :meth:`read`, which fills ``out`` ``[n, channels]``
    float32 and returns the part it filled (empty at the end)."""

    samplerate: int
    channels: int
    frames: int | None

    def read(self, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SndfileDecoder(_Decoder):
    def __init__(self, f: sf.SoundFile, raw: io.RawIOBase | None = None):
        self.f, self.raw = f, raw
        self.samplerate, self.channels, self.frames = f.samplerate, f.channels, declared_frames(f)

    def read(self, out: np.ndarray) -> np.ndarray:
        # read() returns only the frames it got; SoundFile.blocks() would hand back the
        # whole buffer, stale samples included, when a file ends early
        return self.f.read(len(out), dtype="float32", always_2d=True, out=out)

    def close(self) -> None:
        self.f.close()
        if self.raw is not None:
            self.raw.close()


class _FileFrom(io.RawIOBase):
    """A file seen from ``offset`` on, as if the bytes before it were not there."""

    def __init__(self, path: Path, offset: int):
        self.file = open(path, "rb")  # noqa: SIM115 - closed with this object
        self.offset = offset
        self.file.seek(offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self.file.readinto(b)

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos += self.offset
        return max(0, self.file.seek(pos, whence) - self.offset)

    def tell(self) -> int:
        return self.file.tell() - self.offset

    def close(self) -> None:
        self.file.close()
        super().close()


# MPEG audio frame headers, to find where an MP3's frames really start: kbit/s by
# (MPEG-1?, layer) and bitrate index, and sample rates of MPEG-1 (MPEG-2 halves them,
# MPEG-2.5 quarters them).
_MPEG_KBPS = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = (44_100, 48_000, 32_000)
# Frames in a row that make a real start (junk rarely holds even two headers that chain),
# and how far past the ID3 tag the first frame is looked for.
MP3_CHAIN = 4
MP3_SCAN_BYTES = 256 * 1024


def _mpeg_frame(buf: bytes, i: int) -> tuple[int, int] | None:
    """``(length in bytes, a key of version, layer and rate)`` of the MPEG audio frame
    header at ``buf[i]``, or ``None`` when there is none."""
    if i + 4 > len(buf) or buf[i] != 0xFF or buf[i + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (buf[i + 1] >> 3) & 3, 4 - ((buf[i + 1] >> 1) & 3)
    bitrate, rate, pad = buf[i + 2] >> 4, (buf[i + 2] >> 2) & 3, (buf[i + 2] >> 1) & 1
    if version == 1 or layer == 4 or bitrate in (0, 15) or rate == 3:
        return None
    mpeg1 = version == 3
    bps = _MPEG_KBPS[mpeg1, layer][bitrate] * 1000
    hz = _MPEG_RATES[rate] >> (0 if mpeg1 else 1 if version == 2 else 2)
    if layer == 1:
        size = (12 * bps // hz + pad) * 4
    else:
        size = (144 if mpeg1 or layer == 2 else 72) * bps // hz + pad
    return size, buf[i + 1] & 0xFE | (rate << 8)


def _mpeg_chain(buf: bytes, i: int) -> bool:
    key = None
    for _ in range(MP3_CHAIN):
        frame = _mpeg_frame(buf, i)
        if frame is None or key not in (None, frame[1]):
            return False
        i, key = i + frame[0], frame[1]
    return True


def _mp3_junk_end(path: Path) -> int:
    """Where the MPEG audio frames of ``path`` start when bytes that are not frames lie
    between the start (or its ID3v2 tag) and the first frame; 0 when nothing does (or no
    run of frames is found: the file is left to the decoders as it is)."""
    with open(path, "rb") as f:
        head = f.read(10)
        start = 0
        if len(head) == 10 and head[:3] == b"ID3":
            size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F
            start = 10 + size + (10 if head[5] & 0x10 else 0)
        f.seek(start)
        buf = f.read(MP3_SCAN_BYTES)
    if _mpeg_chain(buf, 0):
        return 0
    i = buf.find(b"\xff", 1)
    while i >= 0:
        if _mpeg_chain(buf, i):
            return start + i
        i = buf.find(b"\xff", i + 1)
    return 0


# FFmpeg's demuxers whose header states the length (the sample tables of MP4, Matroska's
# Duration, Ogg's last page, ASF's file properties, APE's and WavPack's totals). For the
# rest (ADTS AAC, MP3, AC-3, ...) FFmpeg estimates the length from the bitrate, which is no
# ground for refusing a file or calling it truncated.
FFMPEG_DECLARED_LENGTH = frozenset({"mov", "mp4", "m4a", "matroska", "webm", "ogg", "asf", "ape", "wv"})


def _ffmpeg_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


class _DecoderFailure(RuntimeError):
    """FFmpeg failed midway; ``str()`` is its reason."""


# FFmpeg's sample formats that are integers: divide by this to get full scale 1.0
_FFMPEG_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}


def _frame_samples(frame: Any) -> np.ndarray:
    """A decoded PyAV audio frame as ``[n, channels]`` float32 (no resampling, no mixing)."""
    a = frame.to_ndarray()
    name = frame.format.name.rstrip("p")
    if frame.format.is_planar:
        a = a.T
    else:
        a = a.reshape(-1, len(frame.layout.channels))
    if name == "u8":
        return ((a.astype(np.float32) - 128.0) / 128.0)
    if name in _FFMPEG_INT_SCALE:
        return (a / _FFMPEG_INT_SCALE[name]).astype(np.float32)
    return a.astype(np.float32, copy=False)


class _FFmpegDecoder(_Decoder):
    """The first audio stream of a file FFmpeg demuxes (PyAV), decoded frame by frame into
    the caller's buffer: memory is one block whatever the file's length."""

    def __init__(self, path: Path):
        import av  # FFmpeg's libraries load only for files libsndfile does not read

        self._errors: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, ValueError)
        name = os.fsdecode(path)
        try:
            name.encode("utf-8")
            source: Any = name
        except UnicodeEncodeError:  # a name that is not valid UTF-8: FFmpeg gets the file itself
            source = open(path, "rb")  # noqa: SIM115 - closed with the container
        self._source = None if isinstance(source, str) else source
        try:
            try:
                # a tag that is not valid UTF-8 must not cost the audio (PyAV before 19
                # decodes tags strictly by default; 19 has no such option and never fails)
                self.container = av.open(source, metadata_errors="ignore")
            except TypeError:
                self.container = av.open(source)
        except self._errors as exc:
            self._close_source()
            raise AudioError(self._open_failure(path, exc)) from exc
        try:
            streams = self.container.streams.audio
            if not streams:
                raise AudioError("no audio stream (the file holds only video or data)")
            self.stream = streams[0]
            ctx = self.stream.codec_context
            self.samplerate = int(ctx.sample_rate or 0)
            self.channels = int(ctx.channels or 0)
            _check_header(self.samplerate, self.channels)
            self.frames = self._declared()
            self._packets = self.container.demux(self.stream)
        except BaseException:
            self.close()
            raise
        self._pending = np.zeros((0, self.channels), np.float32)
        self._frames: Iterator[Any] = iter(())
        self._done = False
        self._failure: _DecoderFailure | None = None

    @staticmethod
    def _open_failure(path: Path, exc: BaseException) -> str:
        """Why FFmpeg could not open ``path``: a container it knows but cannot read is
        damaged (an MP4 cut before its index, a header overwritten), anything else is not
        audio."""
        with open(path, "rb") as f:
            head = f.read(12)
        known = {b"ftyp": "MP4", b"\x1aE\xdf\xa3": "Matroska/WebM", b"OggS": "Ogg",
                 b"0&\xb2u": "ASF/WMA", b"MAC ": "APE", b"wvpk": "WavPack"}
        for magic, kind in known.items():
            if head[4:8] == magic or head.startswith(magic):
                return (f"truncated or damaged {kind} file: FFmpeg cannot read it "
                        f"({_ffmpeg_reason(exc)})")
        return NOT_AUDIO

    def _declared(self) -> int | None:
        import av

        if not FFMPEG_DECLARED_LENGTH & set(self.container.format.name.split(",")):
            return None
        s = self.stream
        if s.duration and s.time_base:
            seconds = float(s.duration * s.time_base)
        elif self.container.duration:
            seconds = self.container.duration / av.time_base
        else:
            return None
        return round(seconds * self.samplerate) if seconds > 0 else None

    def _next(self) -> np.ndarray | None:
        """The next decoded frame's samples, ``None`` at the end."""
        while True:
            for frame in self._frames:
                if frame.sample_rate != self.samplerate:
                    raise _DecoderFailure(f"the sample rate changes midway "
                                          f"({self.samplerate} Hz, then {frame.sample_rate} Hz)")
                a = _frame_samples(frame)
                if a.shape[1] != self.channels:
                    raise _DecoderFailure(f"the channel count changes midway "
                                          f"({self.channels}, then {a.shape[1]})")
                return a
            packet = self._packet()
            if packet is None:
                return None
            try:
                self._frames = iter(packet.decode())  # the last, empty packet flushes the decoder
            except self._errors:
                # a packet cut short by the end of a file that states its length: the end
                # (stream_audio compares it with that length); anywhere else, a failure
                if self.frames is None or getattr(self._packet(), "size", 0):
                    raise  # more than the empty packet that marks the end follows
                return None

    def _packet(self) -> Any:
        """The next packet, ``None`` at the end; a container that ends early (a cut file)
        ends there when its header states the length, which then says how much is missing."""
        try:
            return next(self._packets, None)
        except self._errors:
            if self.frames is None:
                raise
            return None

    def read(self, out: np.ndarray) -> np.ndarray:
        if self._failure is not None:
            raise self._failure
        n = 0
        try:
            while n < len(out) and not self._done:
                if not len(self._pending):
                    got = self._next()
                    if got is None:
                        self._done = True
                        break
                    self._pending = got
                take = min(len(out) - n, len(self._pending))
                out[n : n + take] = self._pending[:take]
                self._pending = self._pending[take:]
                n += take
        except (*self._errors, _DecoderFailure) as exc:
            failure = exc if isinstance(exc, _DecoderFailure) else _DecoderFailure(_ffmpeg_reason(exc))
            if not n:
                raise failure from exc
            self._failure = failure  # raised on the next call, after the samples before it
        return out[:n]

    def _close_source(self) -> None:
        if self._source is not None:
            self._source.close()

    def close(self) -> None:
        container = getattr(self, "container", None)
        if container is not None:
            container.close()
        self._close_source()


def _open_decoder(path: str | os.PathLike[str]) -> _Decoder:
    """The file opened by the decoder that reads it: libsndfile for what it knows (an MP3
    from its first real frame), FFmpeg for the rest."""
    p = Path(path)
    _check_path(p)
    try:
        f: sf.SoundFile | None = _checked(_open_sndfile(os.fsencode(p)))
    except AudioError as exc:
        if str(exc) != NOT_AUDIO:
            raise
        f = None
    if f is None or f.format == "MP3":
        offset = _mp3_junk_end(p)
        if offset:
            if f is not None:
                f.close()
            raw = _FileFrom(p, offset)
            try:
                return _SndfileDecoder(_checked(_open_sndfile(raw)), raw)
            except BaseException:
                raw.close()
                raise
    if f is not None:
        return _SndfileDecoder(f)
    return _FFmpegDecoder(p)


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
        Any file libsndfile or FFmpeg decodes.
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
    with _open_decoder(path) as f:
        in_rate, channels = f.samplerate, f.channels
        declared = f.frames
        if max_seconds is not None and declared is not None and declared > max_seconds * in_rate:
            raise AudioError(too_long(declared / in_rate, max_seconds))
        limit = None if max_seconds is None else int(max_seconds * in_rate)
        resampler = _Resampler(in_rate, sample_rate)
        blocksize = _block_frames(in_rate, channels, block_seconds)
        buf = np.empty((blocksize, channels), dtype=np.float32)
        decoded = 0
        try:
            while True:
                block = f.read(buf)
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
        Any file libsndfile or FFmpeg decodes.
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
    counted under among the skipped files."""
    if name.startswith("._"):
        return "._*"
    suffix = os.path.splitext(name)[1].lower()
    if suffix in (extensions or AUDIO_EXTENSIONS):
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
        Lower-case suffixes to find in folders (default: ``AUDIO_EXTENSIONS``).

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
