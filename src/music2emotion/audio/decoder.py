"""The one interface every decoder gives (:class:`Decoder`), and the record of what a decoder
had to skip (:class:`Losses`): the damaged stretches of a file, the warning a prediction
carries for them, and the bound past which a file is refused instead."""

from __future__ import annotations

import numpy as np

from .errors import AudioError, format_seconds

# Timestamps of decoded audio that jump ahead by less than this are no lost audio: Vorbis in
# Ogg jitters by up to 10 ms around block-size changes, Matroska stamps packets to the
# millisecond. A lost MP3 frame is 26 ms, a lost AAC frame 23 ms, a lost Matroska cluster
# about 5 s.
GAP_TOLERANCE_SECONDS = 0.03

# The most of a file's audio that may be lost to damage for it still to be predicted.
# Matroska/WebM resynchronise at the next cluster (about 5 s as FFmpeg writes them), so one
# damaged stretch of 3 kB cost 4.5 s of a 30 s WebM (15 %) and moved its prediction by less
# than 0.01; MP3, AAC and FLAC lose a few frames (0.05-0.2 s). Up to a quarter of the audio
# lost, the song value is still the mean of most of the song; past it, the row would describe
# what is left of a broken file, and it gets an error instead.
MAX_DAMAGED_SHARE = 0.25


class DecoderFailure(Exception):
    """A decoder that cannot go on midway; ``str()`` is its one-line reason."""


class Losses:
    """The stretches of a file a decoder could not decode and skipped, in frames at
    ``rate``: each stretch's start (where it lies in the file, the audio lost before it
    included) and length."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.stretches: list[tuple[int, int]] = []
        self.settled: int | None = None  # the frames lost, from the declared length (settle)

    def __bool__(self) -> bool:
        return bool(self.frames)

    @property
    def frames(self) -> int:
        """The frames lost, all stretches together."""
        return sum(n for _, n in self.stretches) if self.settled is None else self.settled

    def add(self, start: int, frames: int) -> None:
        """Record ``frames`` lost at frame ``start`` of the file; stretches shorter than
        ``GAP_TOLERANCE_SECONDS`` are timestamps' jitter, not damage, and are left out."""
        if frames > GAP_TOLERANCE_SECONDS * self.rate:
            self.stretches.append((int(start), int(frames)))

    def settle(self, decoded: int, declared: int | None, whole: bool = False) -> None:
        """Take what a damaged file's audio falls short of the length its header declares
        as the audio lost, rather than what timestamps tell: MP3 and ADTS carry none, so
        the frames a decoder's resynchronisation passes over leave no gap, and the bytes of
        an undecodable packet only estimate its audio (a 30 s MP3 with 3 kB damaged: 0.05 s
        of gaps, 0.37 s from the bytes, 0.25 s short of its declared length). Nothing
        changes for a file without damage found, or without a declared length, unless the
        file is ``whole``: then any shortfall is damage, found or not (libmpg123 passes
        over damaged frames without a word).

        Parameters
        ----------
        decoded : int
            Frames decoded.
        declared : int or None
            Frames the header declares (checked against truncation already).
        whole : bool
            Whether the file holds every byte its header declares.
        """
        if declared is None or declared <= decoded:
            return
        if self.stretches or (whole and declared - decoded > GAP_TOLERANCE_SECONDS * self.rate):
            self.settled = declared - decoded

    def warning(self) -> str:
        """``"damaged: 0.209 s of audio could not be decoded and was skipped (at 10.1 s)"``,
        or ``""`` when nothing was lost."""
        if not self.frames:
            return ""
        if not self.stretches:
            where = "the decoder does not say where"
        elif len(self.stretches) == 1:
            where = f"at {self.stretches[0][0] / self.rate:.1f} s"
        else:
            where = f"in {len(self.stretches)} stretches, the first at {self.stretches[0][0] / self.rate:.1f} s"
        return (f"damaged: {format_seconds(self.frames / self.rate)} of audio could not be "
                f"decoded and was skipped ({where})")

    def check(self, decoded: int) -> None:
        """Refuse a file that lost more than ``MAX_DAMAGED_SHARE`` of its audio.

        Parameters
        ----------
        decoded : int
            Frames decoded.

        Raises
        ------
        AudioError
            The one-line reason, with how much was lost.
        """
        lost = self.frames
        total = decoded + lost
        if total and lost > MAX_DAMAGED_SHARE * total:
            raise AudioError(
                f"damaged: {100 * lost / total:.0f} % of the audio could not be decoded "
                f"({format_seconds(lost / self.rate)} of {format_seconds(total / self.rate)}), "
                f"more than the {100 * MAX_DAMAGED_SHARE:.0f} % a prediction may skip")


class Decoder:
    """An open file: ``samplerate``, ``channels``, ``frames`` (what the header declares,
    ``None`` when it does not say), ``losses`` (what was skipped so far) and :meth:`read`,
    which fills ``out`` ``[n, channels]`` float32 and returns the part it filled (empty at
    the end), raising :class:`DecoderFailure` when it cannot go on."""

    samplerate: int
    channels: int
    frames: int | None
    losses: Losses
    # whether the file is known to hold every byte its header declares (an MP3's Xing
    # header states them): audio that stops short of the declared length was then damaged
    # in the middle, not cut off
    whole: bool = False

    def read(self, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

