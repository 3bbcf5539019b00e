"""Which decoder reads a file (:func:`open_decoder`), and its audio as mono float32 blocks at
the model's rate (:func:`stream_audio`; :func:`stream_array` for audio in memory).

Files are decoded in blocks and resampled with a streaming resampler, so memory does not
grow with the length of the file. ``load_audio`` is the same stream concatenated, which
keeps training (whole clips) and inference (streamed windows) sample-for-sample identical.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soxr

from ..config import SAMPLE_RATE, SILENCE_RMS
from .content import (
    ADTS,
    AIFF,
    FLAC,
    MATROSKA,
    MP4,
    MPEG,
    OGG,
    WAV,
    Content,
    OggScan,
    flac_last_frame_cut,
    matroska_ending,
    mp4_ending,
    ogg_scan,
    pcm_ending,
    sniff,
)
from .decoder import TRUNCATION_SLACK_SECONDS, Decoder, DecoderFailure, Ending, Losses, verdict
from .errors import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    NOT_AUDIO,
    NOT_FINITE,
    AudioError,
    check_path,
    damaged_container,
    decoding_failed,
    one_line,
    too_long,
)
from .ffmpeg import FFmpegDecoder
from .mpeg import junk_end, last_frame_cut, length_header, mpeg_ending
from .sndfile import SndfileDecoder

BLOCK_SECONDS = 20.0
# A block also stays under this many decoded bytes, so a file with many channels or a huge
# sample rate cannot make one block big (96 kHz x 6 channels x 20 s would be 46 MB).
BLOCK_BYTES = 8 * 1024 * 1024


class _Handover(Decoder):
    """libsndfile's decoding, handed over to FFmpeg where libsndfile stumbles.

    libsndfile gives up on a damaged stretch (an MP3's "Unspecified internal error", a
    FLAC's "lost sync") or stops short of the length its header declares. FFmpeg then
    decodes the file from its start, drops the audio libsndfile already gave and goes on,
    skipping what it cannot decode; both decoders give the same samples up to there (FLAC
    and WAV bit for bit, MP3 within 7e-7, Vorbis within 1e-7), so the blocks join up.
    """

    def __init__(self, first: SndfileDecoder, path: Path, offset: int):
        self.first: SndfileDecoder = first
        self.then: FFmpegDecoder | None = None
        self.path, self.offset = path, offset
        self.samplerate, self.channels, self.frames = first.samplerate, first.channels, first.frames
        self.given = 0  # frames given so far, by either decoder
        self.failure: DecoderFailure | None = None  # libsndfile's, when it gave up

    @property
    def losses(self) -> Losses:  # type: ignore[override]
        return (self.then or self.first).losses

    def _hand_over(self) -> bool:
        """Open FFmpeg past what libsndfile gave; ``False`` when it cannot take over."""
        try:
            then = FFmpegDecoder(self.path, offset=self.offset, skip=self.given)
        except AudioError:
            return False
        if (then.samplerate, then.channels) != (self.samplerate, self.channels):
            then.close()
            return False
        self.first.close()
        self.then = then
        return True

    def read(self, out: np.ndarray) -> np.ndarray:
        if self.then is not None:
            got = self.then.read(out)
            if len(got):
                self.failure = None  # FFmpeg got past where libsndfile gave up
            elif self.failure is not None and self.frames is None:
                # FFmpeg ends where libsndfile gave up, and no declared length tells
                # how much is missing: libsndfile's reason stands
                raise self.failure
            self.given += len(got)
            return got
        try:
            got = self.first.read(out)
        except DecoderFailure as exc:
            if not self._hand_over():
                raise
            self.failure = exc
            return self.read(out)
        if (not len(got) and self.frames is not None and not self.ending.cut
                and self.frames - self.given > TRUNCATION_SLACK_SECONDS * self.samplerate
                and self._hand_over()):
            # stopped short: perhaps at damage FFmpeg gets past (not where the file's bytes
            # show it cut, which FFmpeg would only reach again)
            return self.read(out)
        self.given += len(got)
        return got

    def close(self) -> None:
        (self.then or self.first).close()


def open_decoder(path: str | os.PathLike[str], *, pages: bool = True) -> Decoder:
    """The file opened by the decoder its content calls for, whatever its name, with what
    its bytes say of its end (``ending``).

    libsndfile reads what it knows (an MP3 from its first real frame), handing over to
    FFmpeg where it stumbles midway (:class:`_Handover`); FFmpeg reads the rest: content
    libsndfile does not read (MP4, Matroska, raw AAC, ...), an Ogg file with a damaged
    page, an MP3 whose first frame does not state its length (cut at the head, or old
    encoders), a file libsndfile takes for MP3 only because of its name, and a file
    libsndfile fails to open.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    pages : bool
        Check an Ogg file's pages first, which reads all of it, and what the file's bytes
        say of its end; ``False`` when only the header is wanted (the length it declares,
        by libsndfile's reading).

    Returns
    -------
    Decoder
        Open; close it (or use it as a context manager).

    Raises
    ------
    AudioError
        Neither decoder can open the file; the reason is libsndfile's when it says more
        than :data:`NOT_AUDIO`, else FFmpeg's.
    """
    p = Path(path)
    check_path(p)
    try:
        content = sniff(p)
        scan = ogg_scan(p) if content is OGG and pages else None
        # the junk scan only where the content may be MPEG audio behind junk: never on content
        # known to be something else, whose bytes hold false frame headers
        offset = junk_end(p) if content is None else 0
        states, whole = length_header(p, offset) if content is MPEG or offset else (True, False)
        ending = _ending(p, content, scan, offset, states, whole) if pages else Ending()
    except OSError as exc:  # a disk error, or the file changed after check_path looked
        raise AudioError(f"unreadable: {one_line(exc.strerror or exc)}") from exc
    decoder = _open(p, content, scan, offset, states)
    decoder.ending = ending
    return decoder


def _ending(path: Path, content: Content | None, scan: OggScan | None, offset: int, states: bool,
            whole: bool) -> Ending:
    """What the bytes of ``path`` say of its end, by its content (see :class:`Ending`)."""
    if content is MPEG or offset:
        return mpeg_ending(path, states, whole)
    if scan is not None:  # a stream that ends with its last page holds all its audio
        return Ending(complete=not scan.cut, cut=scan.cut)
    if content in (WAV, AIFF):
        return pcm_ending(path, content)
    if content is MP4:
        return mp4_ending(path)
    if content is MATROSKA:
        return matroska_ending(path)
    if content is FLAC:
        return Ending(cut=flac_last_frame_cut(path))
    if content is ADTS:
        return Ending(cut=last_frame_cut(path, adts=True))
    return Ending()


def _open(p: Path, content: Content | None, scan: OggScan | None, offset: int, states: bool) -> Decoder:
    """``p`` opened by the decoder its content calls for (see :func:`open_decoder`)."""
    if content is not None and not content.sndfile:
        return FFmpegDecoder(p)
    if scan is not None and (scan.damaged or scan.gaps):
        try:
            decoder = FFmpegDecoder(p, view=scan.view(p))
        except AudioError as exc:
            if scan.headers:  # what fails is what the damage hit
                raise AudioError(damaged_container(OGG.name, "its stream headers are damaged")) from exc
            raise
        decoder.losses.kept = scan.kept
        return decoder
    if not states:
        return FFmpegDecoder(p, offset=offset)
    failure: AudioError | None = None
    try:
        first = SndfileDecoder(p, offset)
    except AudioError as exc:
        if str(exc) == "permission denied":
            raise
        failure = exc
    else:
        if first.format != "MP3" or content is MPEG or offset:
            return _Handover(first, p, offset)
        first.close()  # libsndfile took it for MP3 by its name alone: its content is not
    try:
        return FFmpegDecoder(p)
    except AudioError as exc:
        if failure is not None and str(exc) == NOT_AUDIO:
            raise failure from exc
        raise


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
    with open_decoder(path, pages=False) as f:
        return None if f.frames is None else f.frames / f.samplerate


def downmix(frames: np.ndarray) -> np.ndarray:
    """The mean of ``frames``' channels, ``[n, channels]`` float32 -> ``[n]``.

    The same numbers as ``frames.mean(axis=1, dtype=np.float32)``, but a column at a time:
    numpy's reduction along the short axis took 13 ms per 20 s stereo block against 0.7 ms,
    which was 40 % of decoding an MP3. Below 8 values numpy adds a row's values one after the
    other and divides by their count, as this does; from 8 channels on it sums in pairs, so
    those files keep numpy's own mean.
    """
    if frames.shape[1] >= 8:
        return frames.mean(axis=1, dtype=np.float32)
    mono = frames[:, 0].copy()
    for c in range(1, frames.shape[1]):
        mono += frames[:, c]
    if frames.shape[1] > 1:
        mono /= np.float32(frames.shape[1])
    return mono


class _Resampler:
    """Blocks of any channel count at ``in_rate`` -> mono float32 blocks at ``out_rate``,
    with one streaming resampler, so a file read in blocks and an array cut into the same
    blocks give the same samples."""

    def __init__(self, in_rate: int, out_rate: int):
        self.stream = (None if in_rate == out_rate else
                       soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ"))

    def block(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` ``[n, channels]`` float32 -> mono at the output rate (maybe empty)."""
        mono = downmix(frames)
        if not np.isfinite(mono).all():
            raise AudioError(NOT_FINITE)
        out = mono if self.stream is None else self.stream.resample_chunk(mono)
        return np.ascontiguousarray(out, dtype=np.float32)

    def tail(self) -> np.ndarray:
        if self.stream is None:
            return np.zeros(0, np.float32)
        return np.ascontiguousarray(
            self.stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True), dtype=np.float32)


def _block_frames(rate: int, channels: int, block_seconds: float = BLOCK_SECONDS) -> int:
    return max(1024, min(int(block_seconds * rate), BLOCK_BYTES // (4 * channels)))


class AudioStream(Iterator[np.ndarray]):
    """The blocks of :func:`stream_audio`, and once they are all yielded, ``damage``: the
    warnings for what is missing from the audio (:func:`~.decoder.verdict`: ``damaged: ...``
    for what decoding had to skip, ``truncated: ...`` for a file cut short; ``""`` when
    nothing is)."""

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, block_seconds: float,
                 max_seconds: float | None):
        self.damage = ""
        self._blocks = self._decode(path, sample_rate, block_seconds, max_seconds)

    def __iter__(self) -> AudioStream:
        return self

    def __next__(self) -> np.ndarray:
        return next(self._blocks)

    def close(self) -> None:
        """Stop decoding and close the file."""
        self._blocks.close()

    def _decode(self, path: str | os.PathLike[str], sample_rate: int, block_seconds: float,
                max_seconds: float | None) -> Iterator[np.ndarray]:
        with open_decoder(path) as f:
            in_rate, channels = f.samplerate, f.channels
            declared = f.frames
            if max_seconds is not None and declared is not None and declared > max_seconds * in_rate:
                raise AudioError(too_long(declared / in_rate, max_seconds))
            limit = None if max_seconds is None else int(max_seconds * in_rate)
            resampler = _Resampler(in_rate, sample_rate)
            buf = np.empty((_block_frames(in_rate, channels, block_seconds), channels), dtype=np.float32)
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
            except (DecoderFailure, RuntimeError, ValueError) as exc:
                raise AudioError(decoding_failed(decoded / in_rate, one_line(exc))) from exc
            self.damage = verdict(f.losses, decoded, declared, f.ending)
        tail = resampler.tail()
        if tail.size:
            yield tail


def stream_audio(
    path: str | os.PathLike[str],
    sample_rate: int = SAMPLE_RATE,
    block_seconds: float = BLOCK_SECONDS,
    *,
    max_seconds: float | None = None,
) -> AudioStream:
    """The file as consecutive mono float32 blocks at ``sample_rate``.

    Memory is one block (at most ``block_seconds`` and ``BLOCK_BYTES``) whatever the file's
    length. Errors found late (a decoder failure midway, too much of the audio damaged or
    cut off) are raised after the blocks decoded so far, so callers must not treat a partial
    stream as a result. Damaged stretches a decoder skips (see
    :mod:`music2emotion.audio.ffmpeg`) are left out of the blocks, and the stream's
    ``damage`` says how much was lost and where, and how much of a truncated file is missing.

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

    Returns
    -------
    AudioStream
        An iterator of 1-D float32 blocks; its ``damage`` is set once they are all yielded.

    Raises
    ------
    AudioError
        While iterating: the file cannot be decoded, is longer than ``max_seconds``, or
        misses more than ``MAX_DAMAGED_SHARE`` of its audio, damaged or cut off; the message
        is a one-line reason.
    """
    return AudioStream(path, sample_rate, block_seconds, max_seconds)


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
        1-D float32, the blocks of :func:`stream_audio` concatenated (damaged stretches
        left out, as there).
    """
    blocks = list(stream_audio(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


class LevelMeter:
    """Passes a stream of blocks through while counting its samples and energy, so a file's
    duration and whether it is digital silence come without a second pass; ``damage`` is
    the stream's warnings for what is missing from its audio, damaged or cut off (``""``
    for audio in memory)."""

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

    @property
    def damage(self) -> str:
        """What is missing from the audio, damaged or cut off, once the stream is done
        (:class:`AudioStream`)."""
        return str(getattr(self._blocks, "damage", ""))
