"""What one window of audio becomes before the ONNX graph, for each model kind.

- ``cnn``: a normalised log-mel spectrogram ``[1, n_mels, n_frames]`` (30 s gives the
  seed's ``[1, 64, 1292]``): 64 mel bands, hop 512, power in dB relative to the window's
  peak, then standardised to mean 0 / std 1 so that loudness differences between masters
  do not dominate (:func:`window_features`).
- ``descriptors``: the :data:`~music2emotion.descriptors.N_DESCRIPTORS` hand-made
  descriptors of :mod:`music2emotion.descriptors`, of the window resampled to the settings'
  ``descriptor_rate`` (16 kHz in the bundled models; see
  :data:`~music2emotion.config.DESCRIPTOR_RATE`).
- ``fusion``: the descriptors, and :data:`PATCHES` evenly spaced 3 s patches of musicnn's
  own spectrogram, ``log10(1 + 10000 * mel)`` at 16 kHz (:func:`musicnn_patches`), which
  the pretrained taggers inside the graph take; both come from one resampled copy.
- ``audioset``: the descriptors, and the mel spectrogram the pretrained AudioSet encoder
  inside the graph takes (:func:`encoder_mel`, as the settings' ``encoder`` says), of the
  same 16 kHz copy brought to the encoder's 32 kHz.
- ``mel``: that mel spectrogram alone; ``mel-patches``: it and the musicnn patches, both from
  the one 16 kHz copy.

Plain arrays, so that worker processes and Ray tasks compute them without a session.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import soxr
from numpy.lib.stride_tricks import sliding_window_view

from . import dsp
from .config import EncoderSettings, FeatureSettings
from .descriptors import describe
from .modelfile import (
    AUDIOSET,
    CNN,
    DESCRIPTORS,
    DESCRIPTORS_INPUT,
    ENCODER_INPUT,
    FUSION,
    KINDS,
    LOG_MEL_INPUT,
    MEL,
    MEL_PATCHES,
    PATCHES_INPUT,
)
from .windows import fit_length

# musicnn's input, fixed by its training (Pons & Serra 2019): 16 kHz, 512-point FFT, hop 256,
# 96 mel bands, log10(1 + 10000 x), 187-frame (3 s) patches.
MUSICNN_SR = 16_000
MUSICNN_N_FFT = 512
MUSICNN_HOP = 256
MUSICNN_MELS = 96
PATCH_FRAMES = 187
# 3 patches cover a 10 s window (625 frames) with a little overlap
PATCHES = 3


def normalize(m: np.ndarray) -> np.ndarray:
    """Standardise to mean 0 / std 1; a constant input (silence) becomes all zeros."""
    m = m - m.mean()
    std = m.std()
    return (m / std if std > 1e-8 else m).astype(np.float32)


def _mel_power(y: np.ndarray, sr: int, n_fft: int, hop_length: int, n_mels: int) -> np.ndarray:
    """Mel power spectrogram ``[n_mels, frames]`` of ``y`` (``librosa.feature.melspectrogram``
    with its defaults)."""
    return dsp.melspectrogram(S=np.abs(dsp.stft(y, n_fft=n_fft, hop_length=hop_length)) ** 2.0,
                              sr=sr, n_mels=n_mels)


def log_mel(y: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Normalised log-mel spectrogram ``[n_mels, frames]`` of ``y``, as float32."""
    power = _mel_power(np.asarray(y, dtype=np.float32), settings.sample_rate, settings.n_fft,
                      settings.hop_length, settings.n_mels)
    return normalize(dsp.power_to_db(power, ref=np.max))


def window_features(y: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """The CNN's input ``[1, n_mels, n_frames]`` for one window: ``y`` cut or padded to fit."""
    return log_mel(fit_length(y, settings.window_samples), settings)[np.newaxis]


def musicnn_patches(y: np.ndarray, sr: int, patches: int = PATCHES) -> np.ndarray:
    """``[patches, 187, 96]`` musicnn inputs evenly spread over mono audio ``y`` at ``sr``."""
    mel = _mel_power(resample(y, sr, MUSICNN_SR), MUSICNN_SR, MUSICNN_N_FFT, MUSICNN_HOP, MUSICNN_MELS).T
    mel = np.log10(10000.0 * mel + 1.0).astype(np.float32)
    if len(mel) < PATCH_FRAMES:
        mel = np.pad(mel, ((0, PATCH_FRAMES - len(mel)), (0, 0)))
    starts = np.linspace(0, len(mel) - PATCH_FRAMES, patches).round().astype(int)
    return np.stack([mel[s : s + PATCH_FRAMES] for s in starts])


def window_inputs(kind: str, samples: np.ndarray, settings: FeatureSettings) -> dict[str, np.ndarray]:
    """The ONNX inputs for one window of audio, by model kind.

    Parameters
    ----------
    kind : str
        One of :data:`~music2emotion.modelfile.KINDS`.
    samples : numpy.ndarray
        One window of mono audio at ``settings.sample_rate``.
    settings : FeatureSettings
        The model's settings (with the window length in use).

    Returns
    -------
    dict of str to numpy.ndarray
        ``cnn``: ``{"input": [1, n_mels, frames]}``; ``descriptors``:
        ``{"descriptors": [D]}``; ``fusion``: ``{"descriptors": [D], "patches": [P, 187, 96]}``;
        ``audioset``: ``{"descriptors": [D], "mel": [1, 128, frames]}``; ``mel``:
        ``{"mel": [1, 128, frames]}``; ``mel-patches``: ``{"mel": [1, 128, frames],
        "patches": [P, 187, 96]}``.
    """
    if kind == CNN:
        return {LOG_MEL_INPUT: window_features(samples, settings)}
    if kind not in (DESCRIPTORS, FUSION, AUDIOSET, MEL, MEL_PATCHES):
        raise ValueError(f"unknown model kind {kind!r}; choose from {', '.join(KINDS)}")
    y, rate = descriptor_audio(samples, settings)
    # the mel kinds' graphs compute everything from the networks' inputs: no descriptors,
    # which were three quarters of a window's CPU
    inputs = {} if kind in (MEL, MEL_PATCHES) else {DESCRIPTORS_INPUT: describe(y, rate)}
    if kind in (FUSION, MEL_PATCHES):
        inputs[PATCHES_INPUT] = musicnn_patches(y, rate)
    if kind in (AUDIOSET, MEL, MEL_PATCHES):
        if settings.encoder is None:
            raise ValueError(f"an {kind} model needs the encoder's settings")
        inputs[ENCODER_INPUT] = encoder_mel(y, rate, settings.encoder)
    return inputs


def descriptor_audio(samples: np.ndarray, settings: FeatureSettings) -> tuple[np.ndarray, int]:
    """One window as the descriptors and the taggers hear it: resampled to the settings'
    ``descriptor_rate`` (or left at ``sample_rate`` for models that have none).

    Returns
    -------
    tuple of (numpy.ndarray, int)
        The audio and its rate.
    """
    rate = settings.descriptor_rate or settings.sample_rate
    return resample(samples, settings.sample_rate, rate), rate


def resample(y: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Mono audio ``y`` at ``sr`` resampled to ``target`` (unchanged when the rates agree)."""
    y = np.asarray(y, np.float32)
    return y if sr == target else soxr.resample(y, sr, target).astype(np.float32)


@lru_cache(maxsize=4)
def kaldi_mel_banks(enc: EncoderSettings) -> np.ndarray:
    """``[n_mels, n_fft // 2 + 1]`` Kaldi triangular mel filters (``torchaudio.compliance.
    kaldi.get_mel_banks``, as EfficientAT builds them): triangles equally spaced on the mel
    scale ``1127 ln(1 + f / 700)`` between ``fmin`` and ``fmax``, evaluated in mel at the
    bins ``k sr / n_fft`` below Nyquist, and a zero column for the Nyquist bin."""
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)

    low = mel(enc.fmin)
    delta = (mel(enc.fmax) - low) / (enc.n_mels + 1)
    band = np.arange(enc.n_mels)[:, None]
    left, centre, right = low + band * delta, low + (band + 1) * delta, low + (band + 2) * delta
    bins = mel(enc.sample_rate / enc.n_fft * np.arange(enc.n_fft // 2))[None, :]
    banks = np.maximum(0.0, np.minimum((bins - left) / (centre - left), (right - bins) / (right - centre)))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


def heard_bands(enc: EncoderSettings) -> int:
    """How many of the encoder's mel bands (from the lowest) lie wholly below
    ``band_rate / 2``: the ones that hear the music. The others hold only the resampler's
    leakage near log(1e-5), whose tiny differences a standardised regressor would magnify."""
    last_bin = np.array([np.flatnonzero(row).max() for row in kaldi_mel_banks(enc)])
    return int(np.sum(last_bin * enc.sample_rate / enc.n_fft < enc.band_rate / 2))


@lru_cache(maxsize=4)
def _encoder_window(enc: EncoderSettings) -> np.ndarray:
    """A symmetric Hann window of ``win_length`` points, zero-padded to ``n_fft``, centred
    (``torch.stft``'s placement of a shorter window)."""
    left = (enc.n_fft - enc.win_length) // 2
    return np.pad(np.hanning(enc.win_length), (left, enc.n_fft - enc.win_length - left)).astype(np.float32)


def encoder_mel(y: np.ndarray, sr: int, enc: EncoderSettings) -> np.ndarray:
    """The AudioSet encoder's input ``[1, n_mels, frames]`` for mono audio ``y`` at ``sr``
    (:class:`~music2emotion.config.EncoderSettings` says every step; with ``seconds``, of the
    middle of ``y`` only); 10 s make 1000 frames."""
    if enc.seconds is not None and len(y) > round(enc.seconds * sr):
        keep = int(round(enc.seconds * sr))
        start = (len(y) - keep) // 2
        y = y[start : start + keep]
    y = resample(resample(y, sr, enc.band_rate), enc.band_rate, enc.sample_rate)
    x = y[1:] - np.float32(enc.preemphasis) * y[:-1]
    pad = enc.n_fft // 2
    if len(x) <= pad:  # reflect padding needs more samples than it pads
        x = np.pad(x, (0, pad + 1 - len(x)))
    x = np.pad(x, pad, mode="reflect")
    frames = sliding_window_view(x, enc.n_fft)[:: enc.hop_length] * _encoder_window(enc)
    spec = scipy.fft.rfft(frames, axis=1)
    power = spec.real**2 + spec.imag**2
    mel = kaldi_mel_banks(enc) @ power.T
    return ((np.log(mel + np.float32(enc.log_offset)) + np.float32(enc.shift)) / np.float32(enc.scale)
            ).astype(np.float32)[np.newaxis]
