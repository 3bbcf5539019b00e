"""Audio loading: any file libsndfile or FFmpeg decodes, as mono float32 at the model's rate.

The file's content decides which decoder reads it, never its name (:mod:`.content`).
libsndfile (:mod:`.sndfile`) reads what it knows (WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF,
...), an MP3 with junk before its first frame from that frame (:mod:`.mpeg`); FFmpeg through
PyAV (:mod:`.ffmpeg`) reads everything else (AAC and ALAC in M4A/MP4, Opus and Vorbis in
WebM/Matroska, WMA, APE, WavPack, AC-3, the audio of video files) and takes over where
libsndfile stumbles. Damaged stretches are skipped, as players skip them, and counted
(:class:`~.decoder.Losses`); what a file's bytes say of its end (:class:`~.decoder.Ending`)
tells a file cut short. One policy decides for every container (:func:`~.decoder.verdict`):
the stream says how much was skipped and where (``damaged: ...``) and how much of a
truncated file is missing (``truncated: ...``), and a file missing more than
``MAX_DAMAGED_SHARE`` of its audio fails. Mixing to mono and resampling are the same code
for both decoders (:mod:`.stream`), so a file gives the same samples whichever reads it.
Folder scans are :mod:`.scan`'s.

Every failure is an :class:`AudioError` whose message is one line naming the reason
(:mod:`.errors`): a missing, empty, unreadable or non-audio file, a header with no samples,
more than ``MAX_DAMAGED_SHARE`` of the audio damaged or cut off, samples that are not finite
numbers, or, when a limit is given, more audio than the limit.
"""

from __future__ import annotations

from .decoder import GAP_TOLERANCE_SECONDS, MAX_DAMAGED_SHARE, TRUNCATION_SLACK_SECONDS, Ending, Losses, verdict
from .errors import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    NO_AUDIO_STREAM,
    NOT_AUDIO,
    AudioError,
    format_seconds,
    quiet_decoder_messages,
    too_long,
)
from .ffmpeg import FFMPEG_DECLARED_LENGTH
from .mpeg import MP3_CHAIN, MP3_SCAN_BYTES
from .scan import SCAN_EXTENSIONS, VIDEO_EXTENSIONS, AudioScan, find_audio_files, scan_audio_files, skipped_kind
from .sndfile import declared_frames
from .stream import (
    BLOCK_BYTES,
    BLOCK_SECONDS,
    AudioStream,
    LevelMeter,
    as_frames,
    declared_seconds,
    load_audio,
    open_decoder,
    stream_array,
    stream_audio,
)

__all__ = [
    "BLOCK_BYTES", "BLOCK_SECONDS", "FFMPEG_DECLARED_LENGTH", "GAP_TOLERANCE_SECONDS",
    "MAX_DAMAGED_SHARE", "MAX_SAMPLE_RATE", "MIN_SAMPLE_RATE", "MP3_CHAIN", "MP3_SCAN_BYTES",
    "NOT_AUDIO", "NO_AUDIO_STREAM", "SCAN_EXTENSIONS", "TRUNCATION_SLACK_SECONDS",
    "VIDEO_EXTENSIONS", "AudioError", "AudioScan", "AudioStream", "Ending", "LevelMeter", "Losses",
    "as_frames", "declared_frames", "declared_seconds", "find_audio_files", "format_seconds",
    "load_audio", "open_decoder", "quiet_decoder_messages", "scan_audio_files",
    "skipped_kind", "stream_array", "stream_audio", "too_long", "verdict",
]
