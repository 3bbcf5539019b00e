"""The libsndfile decoder (soundfile): WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF and the rest of
what libsndfile reads. It goes first where it reads the content, because it declares exact
lengths and decodes these formats without FFmpeg's per-packet overhead."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .decoder import Decoder, DecoderFailure, Losses
from .errors import NOT_AUDIO, AudioError, check_header, one_line
from .content import FileView


def sndfile_reason(exc: Exception) -> str:
    """libsndfile's reason for ``exc``, in one line (:data:`NOT_AUDIO` for a format it does
    not know)."""
    text = one_line(getattr(exc, "error_string", None) or exc)
    text = text.removeprefix("Error : ")
    low = text.lower()
    # libsndfile's MP3 probe reports an unrecognised file as "does not exist or is not a
    # regular file"; check_path has already ruled both out, so it is the format. Beside a
    # "._name" file (macOS's AppleDouble, on every song of a disk a Mac wrote) it takes an
    # unrecognised file for a Sound Designer II one and reports its "bad resource fork".
    if ("format not recognised" in low or "unknown format" in low or "not a regular file" in low
            or "resource fork" in low):
        return NOT_AUDIO
    return text


def _open(source: bytes | io.RawIOBase) -> sf.SoundFile:
    try:
        # bytes, because soundfile encodes a str name strictly and fails on names that
        # are not valid UTF-8 (they reach Python as surrogate escapes)
        f = sf.SoundFile(source)
    except PermissionError as exc:
        raise AudioError("permission denied") from exc
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(sndfile_reason(exc)) from exc
    try:
        check_header(f.samplerate, f.channels)
    except AudioError:
        f.close()
        raise
    return f


def declared_frames(f: sf.SoundFile) -> int | None:
    """The length an open file's header declares, in frames; ``None`` when unknown
    (libsndfile reports an unknown length as a huge number)."""
    return f.frames if 0 <= f.frames < 2**62 else None


class SndfileDecoder(Decoder):
    """A file libsndfile opened: ``format`` is libsndfile's name for it (``"WAV"``,
    ``"MP3"``, ...). It skips nothing itself: a damaged stretch is a
    :class:`DecoderFailure`, which :mod:`.stream` hands over to FFmpeg."""

    def __init__(self, path: Path, offset: int = 0):
        """Open ``path`` (from byte ``offset`` on: an MP3 from its first real frame).

        Raises
        ------
        AudioError
            libsndfile cannot open it; :data:`NOT_AUDIO` when it does not know the format.
        """
        self.raw = FileView(path, offset) if offset else None
        try:
            self.f = _open(self.raw if self.raw is not None else os.fsencode(path))
        except BaseException:
            if self.raw is not None:
                self.raw.close()
            raise
        self.format: str = self.f.format
        self.samplerate, self.channels = self.f.samplerate, self.f.channels
        self.frames = declared_frames(self.f)
        self.losses = Losses(self.samplerate)

    def read(self, out: np.ndarray) -> np.ndarray:
        try:
            # read() returns only the frames it got; SoundFile.blocks() would hand back the
            # whole buffer, stale samples included, when a file ends early
            return self.f.read(len(out), dtype="float32", always_2d=True, out=out)
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            raise DecoderFailure(sndfile_reason(exc)) from exc

    def close(self) -> None:
        self.f.close()
        if self.raw is not None:
            self.raw.close()
