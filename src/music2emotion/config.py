"""Settings shared by training, export and inference.

Every number that shapes the model's input or output is defined here once (the model
file's own constants, kinds and metadata live in :mod:`music2emotion.modelfile`). A trained
model carries its :class:`FeatureSettings` (inside the checkpoint and inside the ONNX
file's metadata), so inference rebuilds exactly the features the model was trained on,
whatever the defaults of the installed version are.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

import numpy as np

SAMPLE_RATE = 22_050
# Descriptors and tagger patches hear the window resampled to 16 kHz, i.e. nothing above
# 8 kHz. An MP3's lowpass moves with its bitrate (about 8.5 kHz in 52 kbit/s files, 10 kHz
# at 64 kbit/s, none in a CD rip), so content up there says more about the encoder than the
# song: at 22,050 Hz, re-encoding 206 DEAM clips as mono 56 kbit/s MP3 moved the accurate
# model's valence by 0.045 on average and cut its valence R² from 0.56 to 0.49; at 16 kHz
# the same clips moved by 0.004 and kept their R² (MODEL_CARD.md, "Robustness").
DESCRIPTOR_RATE = 16_000
N_MELS = 64
N_FFT = 2048
HOP_LENGTH = 512
SEED_WINDOW_SECONDS = 30.0
# DEAM clips are 10 s; docs/training.md, "Window length", gives the measurement behind it.
DEFAULT_WINDOW_SECONDS = 10.0
# Shorter files carry too little music to say anything; they are refused, not padded.
MIN_AUDIO_SECONDS = 0.5
# Below this RMS (about -80 dBFS) a file is treated as digital silence and flagged.
SILENCE_RMS = 1e-4

TARGETS = ("valence", "arousal")
DEAM_MIN, DEAM_MAX = 1.0, 9.0
# The middle of the 0-1 scale, where the quadrants of Russell's plane meet: the mood words,
# the web page and the quadrant scores cut both axes here; a value on it counts as high.
NEUTRAL = 0.5
# Output scales: ``unit`` is the model's own 0-1, ``deam`` DEAM's 1-9 ratings.
Scale = Literal["unit", "deam"]
SCALES: tuple[str, ...] = get_args(Scale)

# The four quadrants of Russell's plane as the 4Q data set names them, in the order of a
# mood head's probabilities (Q1 happy/excited, Q2 angry/tense, Q3 sad/depressed, Q4
# calm/tender), and the output columns that carry them; the one list of quadrant words.
MOOD_CLASSES = ("happy", "angry", "sad", "tender")
MOOD_COLUMNS = tuple(f"p_{m}" for m in MOOD_CLASSES)
# One colour per quadrant word and per axis for every picture a user sees: the PNGs
# (plot.py) and the web page (served to it in /api/health), so that a mood or an axis looks
# the same wherever it is drawn. The words themselves are the quadrants' only names. Dark
# enough to read as text on white, distinct in hue from each other and from the axes'.
MOOD_COLORS = dict(zip(MOOD_CLASSES, ("#c98a00", "#c62828", "#1e63c4", "#2e8b57")))
TARGET_COLORS = dict(zip(TARGETS, ("#8e24aa", "#00838f")))
# Each value's interval, as the columns name its bounds.
INTERVAL_COLUMNS = ("valence_low", "valence_high", "arousal_low", "arousal_high")

# What a folder walk picks up (a file named explicitly is read whatever its name, and by
# what it holds, not by its extension): libsndfile's formats, then the audio containers and
# codecs a music library holds that FFmpeg decodes (AAC and ALAC in MP4, Opus and Vorbis in
# WebM/Matroska, WMA, Monkey's Audio, WavPack, Dolby and DTS, Musepack, TTA, TAK, DSD, ...).
# Video containers (.mkv, .avi, .mov) are left out: their audio is read when named.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf",
    ".m4a", ".m4b", ".mp4", ".aac", ".webm", ".weba", ".mka", ".wma", ".ape", ".wv", ".ac3",
    ".eac3", ".dts", ".mpc", ".tta", ".tak", ".mp2", ".spx", ".dsf", ".dff", ".w64", ".aifc",
})


def to_unit(rating: Any) -> Any:
    """Map a DEAM rating on the 1-9 scale to [0, 1]: (r - 1) / 8."""
    return (np.asarray(rating, dtype=np.float64) - DEAM_MIN) / (DEAM_MAX - DEAM_MIN)


def to_deam(value: Any) -> Any:
    """Map a [0, 1] prediction back to DEAM's 1-9 scale."""
    return np.asarray(value, dtype=np.float64) * (DEAM_MAX - DEAM_MIN) + DEAM_MIN


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that name fields of the dataclass ``cls``: a file written by a
    newer version may hold settings this one does not know, and they are left out."""
    known = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in known}


@dataclass(frozen=True)
class EncoderSettings:
    """The mel spectrogram a pretrained AudioSet encoder takes, and the band it hears.

    The defaults are EfficientAT's evaluation-mode front end (Schmid, Koutini & Widmer,
    2023), which its AudioSet weights were trained on: audio at ``sample_rate``, pre-emphasis
    ``x[n] - preemphasis * x[n-1]``, a centred STFT of ``n_fft`` points with reflect padding
    and a symmetric Hann window of ``win_length`` points zero-padded to ``n_fft``, hop
    ``hop_length``, the power spectrum through ``n_mels`` Kaldi triangular mel bands from
    ``fmin`` to ``fmax`` Hz, then ``(log(mel + log_offset) + shift) / scale``.

    ``band_rate``: the window is first resampled to this rate, so the encoder hears nothing
    above ``band_rate / 2``, like the descriptors (:data:`DESCRIPTOR_RATE`): an MP3's
    bitrate-dependent lowpass then cannot tell the encoder anything.

    ``seconds``: the encoder hears only the middle ``seconds`` of each window (``None``: the
    whole window), which halves its cost for a 5 s middle of a 10 s window.
    """

    sample_rate: int = 32_000
    band_rate: int = DESCRIPTOR_RATE
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 15_000.0
    preemphasis: float = 0.97
    log_offset: float = 1e-5
    shift: float = 4.5
    scale: float = 5.0
    seconds: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSettings:
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True)
class FeatureSettings:
    """How audio becomes a model's inputs.

    ``sample_rate`` is the rate files are decoded at and windows are cut at; ``n_mels``,
    ``n_fft`` and ``hop_length`` shape the CNN's log-mel input ``[batch, 1, n_mels,
    n_frames]``; ``descriptor_rate`` is the rate each window is resampled to before its
    descriptors and tagger patches are computed (``None``: ``sample_rate`` itself, as in
    models made before version 0.2); ``encoder``, for models with a pretrained AudioSet
    encoder inside, how a window becomes its mel input.
    """

    sample_rate: int = SAMPLE_RATE
    n_mels: int = N_MELS
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    descriptor_rate: int | None = None
    encoder: EncoderSettings | None = None

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        """Frames in one window (librosa centres frames, hence the +1)."""
        return 1 + self.window_samples // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSettings:
        values = _known_fields(cls, data)
        if isinstance(values.get("encoder"), dict):
            values["encoder"] = EncoderSettings.from_dict(values["encoder"])
        return cls(**values)
