"""The one interface every decoder gives (:class:`Decoder`), the record of what a decoder had
to skip (:class:`Losses`), what a file's bytes say of its end (:class:`Ending`), and the one
policy on audio missing from a file, whatever its container and decoder (:func:`verdict`):
damaged stretches skipped and truncated ends each get a warning, and past
``MAX_DAMAGED_SHARE`` of the audio missing the file is refused instead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import NO_SAMPLES, AudioError, format_seconds, too_much_missing, truncated, truncated_before_audio

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
# what is left of a broken file, and it gets an error instead. Audio a truncated file never
# held counts the same: an interrupted download is missing audio like a damaged one.
MAX_DAMAGED_SHARE = 0.25

# Decoding that stops this far short of the length the header declares is a truncated (or,
# for a file known to hold all its bytes, damaged) file; the slack absorbs MP3 encoder delay
# and padding.
TRUNCATION_SLACK_SECONDS = 0.25


@dataclass(frozen=True)
class Ending:
    """What a file's bytes say of its end, beside the length its decoder declares.

    Attributes
    ----------
    complete : bool
        Every byte the header states is there (an MP3 whose Xing header states its bytes,
        an MP4 whose boxes all end inside the file): audio short of the declared length was
        lost to damage in the middle, not cut off.
    cut : bool
        Bytes are missing at the end: the last MP3 frame or Ogg page is cut short, an Ogg
        stream ends without its last page, a WAV or AIFF data chunk or an MP4 box runs past
        the end of the file.
    seconds : float or None
        The length the container states where its decoder declares less or nothing: a WAV
        or AIFF header's count when the data is cut short (libsndfile declares what is
        there), an MP3's ID3 ``TLEN`` when no Xing header states the length.
    """

    complete: bool = False
    cut: bool = False
    seconds: float | None = None


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
        # the share of the audio decoded from data that fails its checksum, kept rather than
        # skipped because skipping it would lose most of the file (Ogg pages: OggScan.kept)
        self.kept = 0.0

    def __bool__(self) -> bool:
        return bool(self.frames)

    @property
    def frames(self) -> int:
        """The frames lost, all stretches together."""
        return sum(n for _, n in self.stretches) if self.settled is None else self.settled

    def last(self, decoded: int) -> int:
        """The frames of the last stretch when nothing was decoded after it (``decoded``
        frames were), else 0."""
        if self.stretches and self.settled is None:
            start, frames = self.stretches[-1]
            if start + frames >= decoded + self.frames:
                return frames
        return 0

    def drop_last(self, decoded: int) -> None:
        """Forget the last stretch when nothing was decoded after it: what a file cut short
        loses at its end is its cut (a packet cut in two, which no decoder decodes)."""
        if self.last(decoded):
            self.stretches.pop()

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

    def warning(self, decoded: int) -> str:
        """``"damaged: 0.209 s of audio could not be decoded and was skipped (at 10.1 s)"``,
        with what was decoded from data that fails its checksum when some was, or ``""``
        when nothing was lost; ``decoded`` frames were decoded."""
        parts = []
        if self.frames:
            if not self.stretches:
                where = "the decoder does not say where"
            elif len(self.stretches) == 1:
                where = f"at {self.stretches[0][0] / self.rate:.1f} s"
            else:
                where = f"in {len(self.stretches)} stretches, the first at {self.stretches[0][0] / self.rate:.1f} s"
            parts.append(f"{format_seconds(self.frames / self.rate)} of audio could not be decoded and was "
                         f"skipped ({where})")
        if self.kept:
            kept = self.kept * (decoded + self.frames) / self.rate
            parts.append(f"{format_seconds(kept)} of audio was decoded from data that fails its checksum")
        return "damaged: " + ", and ".join(parts) if parts else ""


def verdict(losses: Losses, decoded: int, declared: int | None, ending: Ending) -> str:
    """The one policy on audio missing from a file, for every container and decoder: what
    was skipped as damaged and what a truncated file never held each get a warning, and
    past ``MAX_DAMAGED_SHARE`` of the audio missing, both together, the file is refused.

    A file is truncated when its audio stops more than ``TRUNCATION_SLACK_SECONDS`` short
    of the length its header or container states (beyond what was skipped as damaged),
    unless its bytes are all there (``ending.complete``: then the shortfall was lost to
    damage), or when its bytes show it cut short (``ending.cut``) though nothing states how
    long it should be (a cut Ogg file, an MP3 without a Xing header or ``TLEN``): then the
    warning says what was decoded, and the bound applies to the damage alone, since the
    part cut off is unknown. A file of which nothing decodes is an error either way.

    Parameters
    ----------
    losses : Losses
        What the decoder skipped; settled here against the declared length.
    decoded : int
        Frames decoded.
    declared : int or None
        Frames the decoder's header declares.
    ending : Ending
        What the file's bytes say of its end.

    Returns
    -------
    str
        The warnings, ``"; "``-joined: ``damaged: ...`` and ``truncated: ...``; ``""`` when
        nothing is missing.

    Raises
    ------
    AudioError
        More than ``MAX_DAMAGED_SHARE`` of the audio is missing, or none was decoded; the
        one-line reason says how much, and why.
    """
    rate = losses.rate
    stated = declared
    if ending.seconds is not None:
        stated = max(stated or 0, round(ending.seconds * rate))
    # what is missing at the end, a stretch lost last included: a packet cut in two at the
    # end of a cut file does not decode, and is part of the cut, not damage
    short = stated - decoded - losses.frames + losses.last(decoded) if stated is not None else 0
    cut_short = ending.cut or (short > TRUNCATION_SLACK_SECONDS * rate and not ending.complete)
    if not decoded:
        if cut_short:
            raise AudioError(truncated_before_audio())
        if stated and ending.complete:  # all its bytes, and not a sample of them decoded
            raise AudioError(too_much_missing(stated / rate, 0, stated / rate, MAX_DAMAGED_SHARE))
        raise AudioError(NO_SAMPLES)
    cut = 0
    if cut_short:
        losses.drop_last(decoded)
        # how much is cut off, when a header states it (an Ogg file's length is its last page's)
        cut = short if short > GAP_TOLERANCE_SECONDS * rate else 0
    else:
        losses.settle(decoded, stated, ending.complete)
    lost = losses.frames
    total = decoded + lost + cut
    if lost + cut > MAX_DAMAGED_SHARE * total:
        raise AudioError(too_much_missing(lost / rate, cut / rate, total / rate, MAX_DAMAGED_SHARE))
    warnings = [losses.warning(decoded)]
    if cut_short:
        warnings.append(truncated(decoded / rate, total / rate if cut else None))
    return "; ".join(w for w in warnings if w)


class Decoder:
    """An open file: ``samplerate``, ``channels``, ``frames`` (what the header declares,
    ``None`` when it does not say), ``losses`` (what was skipped so far), ``ending`` (what
    the file's bytes say of its end) and :meth:`read`,
    which fills ``out`` ``[n, channels]`` float32 and returns the part it filled (empty at
    the end), raising :class:`DecoderFailure` when it cannot go on."""

    samplerate: int
    channels: int
    frames: int | None
    losses: Losses
    # what the file's bytes say of its end (set by open_decoder)
    ending: Ending = Ending()

    def read(self, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

