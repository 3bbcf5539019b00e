"""The FFmpeg decoder (PyAV, whose wheels carry FFmpeg): AAC and ALAC in M4A/MP4, Opus and
Vorbis in WebM/Matroska, WMA, APE, WavPack, AC-3, the audio of video files, and every file
libsndfile cannot read or stumbles on.

It only decodes: mixing to mono and resampling are :mod:`.stream`'s, the same for both
decoders. Packets it cannot decode (damaged bytes) are skipped, as players skip them, and
the audio they held is counted in :attr:`FFmpegDecoder.losses` from the timestamps of the
audio that follows: the demuxers resynchronise by themselves (at the next MP3 or FLAC frame,
Ogg page or Matroska cluster), so a gap in the timestamps is what was lost, whichever layer
lost it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .content import FileView, sniff
from .decoder import Decoder, DecoderFailure, Losses
from .errors import NO_AUDIO_STREAM, NO_DECODER, NOT_AUDIO, AudioError, check_header, damaged_container, one_line

# FFmpeg's demuxers whose header states the length (the sample tables of MP4, Matroska's
# Duration, Ogg's last page, ASF's file properties, APE's and WavPack's totals). For the
# rest (ADTS AAC, MP3, AC-3, ...) FFmpeg estimates the length from the bitrate, which is no
# ground for refusing a file or calling it truncated.
FFMPEG_DECLARED_LENGTH = frozenset({"mov", "mp4", "m4a", "matroska", "webm", "ogg", "asf", "ape", "wv"})

# FFmpeg's demuxers of bare streams, whose packets carry no timestamps of their own: FFmpeg
# numbers the frames it finds, so neither the bytes its resynchronisation passes over nor
# the frames inside one undecodable packet (3,386 damaged bytes of an MP3 made one packet,
# some 8 frames, stamped as one) leave a gap; there the bytes lost tell the audio lost.
FFMPEG_BARE_STREAMS = frozenset({"mp3", "aac", "ac3", "eac3", "dts", "truehd", "mlp"})

# FFmpeg's signed integer sample formats: divide by this to get full scale 1.0 (u8 is offset)
_FFMPEG_INT_SCALE = {"s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's reason for ``exc``, in one line."""
    return one_line(getattr(exc, "strerror", None) or exc)


def frame_samples(frame: Any) -> np.ndarray:
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


class FFmpegDecoder(Decoder):
    """The first audio stream of a file FFmpeg demuxes, decoded frame by frame into the
    caller's buffer: memory is one block whatever the file's length.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    offset : int
        Read the file from this byte on (an MP3 from its first real frame).
    skip : int
        Drop this many decoded frames first: the audio another decoder already gave before
        it stumbled (the stretches lost in them still count in ``losses``).
    view : FileView, optional
        The file as FFmpeg should read it (a damaged Ogg file's, from
        :meth:`.content.OggScan.view`), instead of ``path`` from ``offset``; closed with
        the decoder.

    Raises
    ------
    AudioError
        FFmpeg cannot open the file, it holds no audio stream, no decoder for it, or its
        header is implausible.
    """

    def __init__(self, path: Path, *, offset: int = 0, skip: int = 0, view: FileView | None = None):
        import av  # FFmpeg's libraries load only for files that need them

        self._errors: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, ValueError)
        self._source: Any = view
        if offset and view is None:
            self._source = FileView(path, offset)
        elif view is None:
            try:
                os.fsdecode(path).encode("utf-8")
            except UnicodeEncodeError:  # a name that is not valid UTF-8: FFmpeg gets the file itself
                self._source = open(path, "rb")  # noqa: SIM115 - closed with the container
        source = self._source if self._source is not None else os.fsdecode(path)
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
                raise AudioError(NO_AUDIO_STREAM)
            self.stream = streams[0]
            ctx = self.stream.codec_context
            if ctx is None:  # PyAV opens no decoder for a codec FFmpeg does not know
                raise AudioError(NO_DECODER)
            self.samplerate = int(ctx.sample_rate or 0)
            self.channels = int(ctx.channels or 0)
            check_header(self.samplerate, self.channels)
            self.frames = self._declared()
            self._packets = self.container.demux(self.stream)
        except BaseException:
            self.close()
            raise
        self.losses = Losses(self.samplerate)
        self._pending = np.zeros((0, self.channels), np.float32)
        self._frames: Iterator[Any] = iter(())
        self._done = False
        self._failure: DecoderFailure | None = None
        self._skip = skip
        self._decoded = 0
        # where the stream's audio should go on, in frames of its own timeline: the end of
        # the last frame decoded (None before the first: a decoder's first output may come
        # a packet or two after the stream's start, 45 ms into a WMA file, without loss)
        self._end: float | None = None
        self._unaccounted = 0  # frames of packets skipped since the last frame decoded
        self._reason = ""  # why the first packet skipped could not be decoded
        # for a bare stream, the bytes and frames of the packets decoded (the stream's rate in
        # frames per byte), and where the next packet should start
        self._bare = bool(FFMPEG_BARE_STREAMS & set(self.container.format.name.split(",")))
        self._bytes = self._frames_of_bytes = 0
        self._next_byte: int | None = None

    @staticmethod
    def _open_failure(path: Path, exc: BaseException) -> str:
        """Why FFmpeg could not open ``path``: a container it knows but cannot read is
        damaged (an MP4 cut before its index, a header overwritten), anything else is not
        audio."""
        content = sniff(path)
        if content is None:
            return NOT_AUDIO
        return damaged_container(content.name, ffmpeg_reason(exc))

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

    def _position(self, pts: int, time_base: Any) -> float:
        return float(pts * time_base) * self.samplerate

    def _account(self, frame: Any, n: int) -> None:
        """Count what was lost before ``frame`` (``n`` frames of audio): the jump of its
        timestamp past where the audio before it ended, or the packets skipped since,
        whichever is more."""
        stamped = frame.pts is not None and frame.time_base is not None
        pos = self._position(frame.pts, frame.time_base) if stamped else None
        gap = 0 if pos is None or self._end is None else round(pos - self._end)
        lost = max(gap, self._unaccounted)
        self.losses.add(self._decoded + self.losses.frames, lost)
        if pos is not None:
            self._end = pos + n
        elif self._end is not None:  # a demuxer resynchronising after damage leaves a few unstamped
            self._end += lost + n
        self._unaccounted = 0
        self._decoded += n

    def _odd(self, frame: Any) -> str:
        """Why ``frame`` cannot be part of this stream's audio (another sample rate or
        channel count than the stream's, planes that do not match its channels), or ``""``."""
        channels = len(frame.layout.channels)
        if frame.sample_rate != self.samplerate:
            return f"the sample rate changes midway ({self.samplerate} Hz, then {frame.sample_rate} Hz)"
        if channels != self.channels:
            return f"the channel count changes midway ({self.channels}, then {channels})"
        if len(frame.planes) != (channels if frame.format.is_planar else 1):
            return f"a frame of {channels} channels holds {len(frame.planes)} planes"
        return ""

    def _skipped(self, packet: Any) -> int:
        """Frames of audio an undecodable ``packet`` held."""
        if self._bare and self._bytes:
            return round(packet.size * self._frames_of_bytes / self._bytes)
        if packet.duration and packet.time_base is not None:
            return round(self._position(packet.duration, packet.time_base))
        return 0

    def _passed_over(self, packet: Any) -> None:
        """For a bare stream, count the bytes the demuxer passed over before ``packet``."""
        pos = packet.pos if packet.pos is not None and packet.pos >= 0 else None
        if self._next_byte is not None and pos is not None and pos > self._next_byte and self._bytes:
            self._unaccounted += round((pos - self._next_byte) * self._frames_of_bytes / self._bytes)
        self._next_byte = None if pos is None else pos + packet.size

    def _next(self) -> np.ndarray | None:
        """The next decoded frame's samples, ``None`` at the end."""
        while True:
            for frame in self._frames:
                odd = self._odd(frame)
                if odd:
                    # most often damaged bytes decoded as a frame of garbage (a 10 s AAC file
                    # with its data overwritten gave one of 35 channels, whose conversion to
                    # an array crashed the process): skipped as damage
                    self._reason = self._reason or odd
                    self._unaccounted += round(frame.samples * self.samplerate / (frame.sample_rate or 1))
                    continue
                a = frame_samples(frame)
                self._account(frame, len(a))
                if self._skip:
                    drop = min(self._skip, len(a))
                    a, self._skip = a[drop:], self._skip - drop
                if len(a):
                    return a
            packet = self._packet()
            if packet is None:
                if not self._decoded and self._reason:
                    raise DecoderFailure(self._reason)  # not one packet could be decoded
                # packets skipped after the last frame: audio lost at the end
                self.losses.add(self._decoded + self.losses.frames, self._unaccounted)
                return None
            if self._bare and packet.size:
                self._passed_over(packet)
            try:
                frames = packet.decode()  # the last, empty packet flushes the decoder
            except self._errors as exc:
                # damaged bytes: the packet is skipped, as players skip it, and the audio it
                # held is counted from the timestamps of what follows
                self._reason = self._reason or ffmpeg_reason(exc)
                self._unaccounted += self._skipped(packet)
                continue
            if self._bare and packet.size and frames:
                self._bytes += packet.size
                self._frames_of_bytes += sum(f.samples for f in frames)
            self._frames = iter(frames)

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
        except (*self._errors, DecoderFailure) as exc:
            failure = exc if isinstance(exc, DecoderFailure) else DecoderFailure(ffmpeg_reason(exc))
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
