"""The signal processing of the inference path, in numpy and scipy alone.

Each function is a port of the librosa 0.11 function it names, restricted to the arguments
:mod:`music2emotion.descriptors` and :mod:`music2emotion.frontends` pass, and gives the same
numbers (``tests/test_dsp.py`` compares every one with librosa). The bundled models were
trained on librosa's features, so "close" is not enough: the same array operations run in
the same order and dtypes.

Why not librosa itself: its kernels are numba functions compiled with ``cache=True`` at
import time, whose cache files live in librosa's own ``__pycache__``. Processes that start
at once (a parallel cold start) can leave a corrupt cache there, after which every process
in that environment segfaults on import. Nothing here compiles or writes anything to disk;
filter banks are cached in memory only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import get_window


def _tiny(x: np.ndarray) -> float:
    """``librosa.util.tiny``: the smallest normal number of ``x``'s float type."""
    dtype = x.dtype if np.issubdtype(x.dtype, np.inexact) else np.dtype(np.float32)
    return np.finfo(dtype).tiny


def _frame(x: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """``librosa.util.frame`` of a 1-D array: ``[frame_length, n_frames]``, a view."""
    return sliding_window_view(x, frame_length)[::hop_length].T


def normalize(S: np.ndarray, *, norm: float = np.inf, axis: int = 0) -> np.ndarray:
    """``librosa.util.normalize`` with ``threshold=None, fill=None``: each slice along
    ``axis`` scaled to unit ``norm`` (``inf``, or a positive number); slices whose norm is
    below the dtype's tiny value are left as they are."""
    if not np.all(np.isfinite(S)):
        raise ValueError("input must be finite")
    mag = np.abs(S).astype(float)
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    else:
        length = np.sum(mag**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    length[length < _tiny(S)] = 1.0
    out = np.empty_like(S)
    out[:] = S / length
    return out


def softmask(X: np.ndarray, X_ref: np.ndarray, *, power: float = 1, split_zeros: bool = False) -> np.ndarray:
    """``librosa.util.softmask`` for a finite ``power``: ``X**p / (X**p + X_ref**p)``,
    computed relative to their maximum so that large values do not overflow."""
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float32)
    Z = np.maximum(X, X_ref).astype(dtype)
    bad = Z < np.finfo(dtype).tiny
    Z[bad] = 1
    mask = (X / Z) ** power
    ref_mask = (X_ref / Z) ** power
    good = ~bad
    mask[good] /= mask[good] + ref_mask[good]
    mask[bad] = 0.5 if split_zeros else 0.0
    return mask


# ---- spectrograms ------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    w = get_window("hann", n, fftbins=True)  # periodic, as librosa.filters.get_window asks
    w.setflags(write=False)
    return w


def stft(y: np.ndarray, *, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """``librosa.stft`` with its defaults (periodic Hann window of ``n_fft``, ``center=True``,
    ``pad_mode="constant"``) on 1-D float32 audio: ``[1 + n_fft // 2, frames]`` complex64.

    librosa pads only the head and tail frames to save a copy; padding the whole signal
    gives the same frames. Each frame is windowed in float64 and transformed by scipy.fft,
    as there, then stored as complex64.
    """
    y = np.asarray(y)
    if not np.all(np.isfinite(y)):
        raise ValueError("audio buffer is not finite everywhere")
    padded = np.pad(y, n_fft // 2, mode="constant")
    frames = sliding_window_view(padded, n_fft)[::hop_length]
    # transformed along rows and transposed, the result is Fortran-ordered as librosa's:
    # later reductions over frequency then sum in the same order, to the same float32 bits
    return scipy.fft.rfft(_hann(n_fft) * frames, axis=-1).astype(np.complex64).T


def fft_frequencies(*, sr: float, n_fft: int) -> np.ndarray:
    """``librosa.fft_frequencies``: the centre frequency of each STFT bin."""
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """``librosa.hz_to_mel`` (Slaney: linear below 1 kHz, logarithmic above)."""
    f = np.asanyarray(f, dtype=float)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    if mels.ndim:
        log_t = f >= 1000.0
        mels[log_t] = min_log_mel + np.log(f[log_t] / 1000.0) / logstep
    elif f >= 1000.0:
        mels = min_log_mel + np.log(f / 1000.0) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """``librosa.mel_to_hz`` (Slaney), the inverse of :func:`_hz_to_mel`."""
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = 1000.0 * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


@lru_cache(maxsize=16)
def mel_filters(sr: float, n_fft: int, n_mels: int) -> np.ndarray:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)``: Slaney-style mel filter
    bank (htk=False, norm="slaney", 0 Hz to ``sr / 2``), ``[n_mels, 1 + n_fft // 2]``
    float32, read-only."""
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fftfreqs = fft_frequencies(sr=sr, n_fft=n_fft)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sr) / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    weights.setflags(write=False)
    return weights


def melspectrogram(*, S: np.ndarray, sr: float, n_mels: int) -> np.ndarray:
    """``librosa.feature.melspectrogram(S=S, sr=sr, n_mels=n_mels)``: a power spectrogram
    ``[1 + n_fft // 2, frames]`` projected onto :func:`mel_filters`."""
    basis = mel_filters(sr, 2 * (S.shape[-2] - 1), n_mels)
    # the same contraction as librosa's, so that BLAS sums in the same order
    return np.einsum("...ft,mf->...mt", S, basis, optimize=True)


def power_to_db(S: np.ndarray, *, ref: float | Callable[[np.ndarray], Any] = 1.0, amin: float = 1e-10,
                top_db: float | None = 80.0) -> np.ndarray:
    """``librosa.power_to_db``: ``10 log10(S / ref)``, floored at ``amin`` and at ``top_db``
    below the peak; ``ref`` may be a function of ``S`` (``np.max``)."""
    S = np.asarray(S)
    ref_value = ref(S) if callable(ref) else np.abs(ref)
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec -= 10.0 * np.log10(np.maximum(amin, ref_value))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def amplitude_to_db(S: np.ndarray, *, ref: float = 1.0, amin: float = 1e-5,
                    top_db: float | None = 80.0) -> np.ndarray:
    """``librosa.amplitude_to_db`` with a fixed ``ref``."""
    magnitude = np.abs(np.asarray(S))
    power = np.square(magnitude, out=magnitude)
    return power_to_db(power, ref=np.abs(ref) ** 2, amin=amin**2, top_db=top_db)


# ---- spectral features (librosa.feature) ----------------------------------------------------


def mfcc(*, S: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """``librosa.feature.mfcc(S=S, n_mfcc=n_mfcc)`` of a log-power mel spectrogram: its
    orthonormal type-2 DCT along the bands, the first ``n_mfcc`` rows."""
    return scipy.fft.dct(S, axis=-2, type=2, norm="ortho")[..., :n_mfcc, :]


def spectral_centroid(*, S: np.ndarray, sr: float) -> np.ndarray:
    """``librosa.feature.spectral_centroid(S=S, sr=sr)``: ``[1, frames]`` in Hz."""
    freq = fft_frequencies(sr=sr, n_fft=2 * (S.shape[-2] - 1))[:, np.newaxis]
    return np.sum(freq * normalize(S, norm=1, axis=-2), axis=-2, keepdims=True)


def spectral_bandwidth(*, S: np.ndarray, sr: float) -> np.ndarray:
    """``librosa.feature.spectral_bandwidth(S=S, sr=sr)`` (p=2, normalised): ``[1, frames]``."""
    centroid = spectral_centroid(S=S, sr=sr)
    freq = fft_frequencies(sr=sr, n_fft=2 * (S.shape[-2] - 1))
    deviation = np.abs(np.subtract.outer(centroid[..., 0, :], freq).swapaxes(-2, -1))
    return np.sum(normalize(S, norm=1, axis=-2) * deviation**2, axis=-2, keepdims=True) ** (1.0 / 2)


def spectral_rolloff(*, S: np.ndarray, sr: float, roll_percent: float = 0.85) -> np.ndarray:
    """``librosa.feature.spectral_rolloff(S=S, sr=sr)``: the lowest bin frequency below
    which ``roll_percent`` of each frame's energy lies, ``[1, frames]``."""
    freq = fft_frequencies(sr=sr, n_fft=2 * (S.shape[-2] - 1))[:, np.newaxis]
    total_energy = np.cumsum(S, axis=-2)
    threshold = np.expand_dims(roll_percent * total_energy[..., -1, :], axis=-2)
    ind = np.where(total_energy < threshold, np.nan, 1)
    return np.nanmin(ind * freq, axis=-2, keepdims=True)


def spectral_flatness(*, S: np.ndarray, amin: float = 1e-10) -> np.ndarray:
    """``librosa.feature.spectral_flatness(S=S, amin=amin)`` (power 2): geometric over
    arithmetic mean of each frame's power, ``[1, frames]``."""
    S_thresh = np.maximum(amin, S**2.0)
    gmean = np.exp(np.mean(np.log(S_thresh), axis=-2, keepdims=True))
    return gmean / np.mean(S_thresh, axis=-2, keepdims=True)


def spectral_contrast(*, S: np.ndarray, sr: float, n_bands: int = 6, fmin: float = 200.0,
                      quantile: float = 0.02) -> np.ndarray:
    """``librosa.feature.spectral_contrast(S=S, sr=sr, n_bands=n_bands)``: peak over valley
    in dB in ``n_bands + 1`` octave bands, ``[n_bands + 1, frames]``."""
    freq = fft_frequencies(sr=sr, n_fft=2 * (S.shape[-2] - 1))
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * 2.0 ** np.arange(0, n_bands + 1)
    if np.any(octa[:-1] >= 0.5 * sr):
        raise ValueError("frequency band exceeds Nyquist; reduce fmin or n_bands")
    valley = np.zeros((n_bands + 1, S.shape[-1]))
    peak = np.zeros_like(valley)
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        band = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(band)
        if k > 0:
            band[idx[0] - 1] = True
        if k == n_bands:
            band[idx[-1] + 1 :] = True
        sub_band = S[band, :]
        if k < n_bands:
            sub_band = sub_band[:-1, :]
        n = int(np.maximum(np.rint(quantile * np.sum(band)), 1))
        ordered = np.sort(sub_band, axis=-2)
        valley[k] = np.mean(ordered[:n, :], axis=-2)
        peak[k] = np.mean(ordered[-n:, :], axis=-2)
    return power_to_db(peak) - power_to_db(valley)


def zero_crossing_rate(y: np.ndarray, *, frame_length: int = 2048, hop_length: int = 512,
                       threshold: float = 1e-10) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate(y, frame_length=..., hop_length=...)``: the
    fraction of sign changes per centred frame (edge-padded), ``[1, frames]``; samples within
    ``threshold`` of zero count as positive, as in ``librosa.zero_crossings``."""
    y = np.pad(np.asarray(y), frame_length // 2, mode="edge")
    thr = y.dtype.type(threshold) if np.issubdtype(y.dtype, np.floating) else threshold
    sign = np.signbit(np.where(np.abs(y) <= thr, 0, y))
    # crossing[i]: between samples i - 1 and i; a frame's first sample counts none
    crossing = np.concatenate([[0], np.cumsum(sign[1:] != sign[:-1])])
    starts = np.arange(0, len(y) - frame_length + 1, hop_length)
    counts = crossing[starts + frame_length - 1] - crossing[starts]
    return (counts / frame_length)[np.newaxis]


def rms(*, S: np.ndarray, frame_length: int = 2048) -> np.ndarray:
    """``librosa.feature.rms(S=S, frame_length=frame_length)`` of a magnitude spectrogram,
    by Parseval: ``[1, frames]`` float32."""
    x = np.square(S, dtype=np.float32)
    x[..., 0, :] *= 0.5
    if frame_length % 2 == 0:
        x[..., -1, :] *= 0.5
    return np.sqrt(2 * np.sum(x, axis=-2, keepdims=True) / frame_length**2)


# ---- pitch and harmony ------------------------------------------------------------------------


def _localmax(x: np.ndarray) -> np.ndarray:
    """``librosa.util.localmax(x, axis=0)``: greater than the one before, not smaller than
    the one after; the first never is, the last is if above the one before."""
    out = np.zeros(x.shape, dtype=bool)
    out[1:-1] = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])
    out[-1] = x[-1] > x[-2]
    return out


def _parabolic_shift(S: np.ndarray) -> np.ndarray:
    """librosa's ``_parabolic_interpolation`` along axis 0: each bin's offset to the vertex
    of the parabola through it and its neighbours (0 at the ends, and where the vertex lies
    more than a bin away). librosa's numba kernel mixes float32 sums with float64 products;
    so does this, to give its float32 result."""
    x0 = S[1:-1].astype(np.float64)
    a = (S[2:] + S[:-2]).astype(np.float64) - 2 * x0
    b = (S[2:] - S[:-2]).astype(np.float64) / 2
    inside = np.abs(b) < np.abs(a)
    shift = np.zeros_like(S)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift[1:-1] = np.where(inside, -b / np.where(inside, a, 1.0), 0.0)
    return shift


def piptrack(*, S: np.ndarray, sr: float, fmin: float = 150.0, fmax: float = 4000.0,
             threshold: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``librosa.piptrack(S=S, sr=sr)``: the interpolated frequency and magnitude of each
    spectral peak above ``threshold`` of its frame's maximum, between ``fmin`` and
    ``fmax``; zero elsewhere."""
    S = np.abs(S)
    n_fft = 2 * (S.shape[-2] - 1)
    fmax = np.minimum(fmax, float(sr) / 2)
    fft_freqs = fft_frequencies(sr=sr, n_fft=n_fft)
    avg = np.gradient(S, axis=-2)
    shift = _parabolic_shift(S)
    dskew = 0.5 * avg * shift
    pitches = np.zeros_like(S)
    mags = np.zeros_like(S)
    freq_mask = ((fmin <= fft_freqs) & (fft_freqs < fmax))[:, np.newaxis]
    ref_value = np.expand_dims(threshold * np.max(S, axis=-2), -2)
    idx = np.nonzero(freq_mask & _localmax(S * (S > ref_value)))
    pitches[idx] = (idx[-2] + shift[idx]) * float(sr) / n_fft
    mags[idx] = S[idx] + dskew[idx]
    return pitches, mags


def _hz_to_octs(frequencies: np.ndarray, *, tuning: float = 0.0, bins_per_octave: int = 12) -> np.ndarray:
    """``librosa.hz_to_octs``: octaves above C0 (A4 = 440 Hz shifted by ``tuning`` bins)."""
    a440 = 440.0 * 2.0 ** (tuning / bins_per_octave)
    return np.log2(np.asanyarray(frequencies) / (float(a440) / 16))


def pitch_tuning(frequencies: np.ndarray, *, resolution: float = 0.01, bins_per_octave: int = 12) -> float:
    """``librosa.pitch_tuning``: the most common deviation from equal temperament, in
    fractions of a bin; 0 when there is no frequency to go by (librosa warns there)."""
    frequencies = np.atleast_1d(frequencies)
    frequencies = frequencies[frequencies > 0]
    if not np.any(frequencies):
        return 0.0
    residual = np.mod(bins_per_octave * _hz_to_octs(frequencies), 1.0)
    residual[residual >= 0.5] -= 1.0
    bins = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, tuning = np.histogram(residual, bins)
    return float(tuning[np.argmax(counts)])


def estimate_tuning(*, S: np.ndarray, sr: float, bins_per_octave: int = 12) -> float:
    """``librosa.estimate_tuning(S=S, sr=sr)``: :func:`pitch_tuning` of the peaks
    :func:`piptrack` finds, those at least as strong as their median."""
    pitch, mag = piptrack(S=S, sr=sr)
    pitch_mask = pitch > 0
    threshold = np.median(mag[pitch_mask]) if pitch_mask.any() else 0.0
    return pitch_tuning(pitch[(mag >= threshold) & pitch_mask], bins_per_octave=bins_per_octave)


@lru_cache(maxsize=128)
def chroma_filters(sr: float, n_fft: int, tuning: float = 0.0, n_chroma: int = 12) -> np.ndarray:
    """``librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning)`` (ctroct 5, octwidth 2,
    norm 2, starting on C): ``[n_chroma, 1 + n_fft // 2]`` float32, read-only."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * _hz_to_octs(frequencies, tuning=tuning, bins_per_octave=n_chroma)
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    half = np.round(float(n_chroma) / 2)
    D = np.remainder(D + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2 * D / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    wts = normalize(wts, norm=2, axis=0)
    wts *= np.tile(np.exp(-0.5 * ((frqbins / n_chroma - 5.0) / 2) ** 2), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    out = np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)
    out.setflags(write=False)
    return out


def chroma_stft(*, S: np.ndarray, sr: float) -> np.ndarray:
    """``librosa.feature.chroma_stft(S=S, sr=sr)`` of a power spectrogram, tuning estimated
    from it: ``[12, frames]``, each frame scaled to a maximum of 1."""
    tuning = estimate_tuning(S=S, sr=sr)
    basis = chroma_filters(sr, 2 * (S.shape[-2] - 1), tuning)
    raw = np.einsum("cf,...ft->...ct", basis, S, optimize=True)
    return normalize(raw, norm=np.inf, axis=-2)


def tonnetz(*, chroma: np.ndarray) -> np.ndarray:
    """``librosa.feature.tonnetz(chroma=chroma)``: the chroma projected on the circles of
    fifths, minor and major thirds, ``[6, frames]``."""
    dim_map = np.linspace(0, 12, num=chroma.shape[-2], endpoint=False)
    scale = np.asarray([7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3])
    V = np.multiply.outer(scale, dim_map)
    V[::2] -= 0.5
    R = np.array([1, 1, 1, 1, 0.5, 0.5])
    phi = R[:, np.newaxis] * np.cos(np.pi * V)
    return np.einsum("pc,...ci->...pi", phi, normalize(chroma, norm=1, axis=-2), optimize=True)


# ---- rhythm -------------------------------------------------------------------------------------


def onset_strength(*, S: np.ndarray, lag: int = 1, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """``librosa.onset.onset_strength(S=S)`` of a dB spectrogram: the mean positive rise
    per band from one frame to the next, shifted to the frame centres (``n_fft`` and
    ``hop_length`` only set that shift), ``[frames]``."""
    S = np.atleast_2d(S)
    onset_env = np.maximum(0.0, S[..., lag:] - S[..., :-lag])
    agg = np.empty((1, onset_env.shape[-1]), dtype=onset_env.dtype)
    agg[0] = np.mean(onset_env, axis=-2)
    pad_width = lag + n_fft // (2 * hop_length)
    return np.pad(agg, [(0, 0), (int(pad_width), 0)], mode="constant")[0, : S.shape[-1]]


def _numba_float32_mean(x: np.ndarray) -> np.float32:
    """``np.mean`` as numba compiles it for float32 (librosa's peak picker runs there):
    summed one by one in float32, divided in float64, stored as float32."""
    return np.float32(np.float64(np.cumsum(x, dtype=np.float32)[-1]) / x.size)


def peak_pick(x: np.ndarray, *, pre_max: int, post_max: int, pre_avg: int, post_avg: int,
              delta: float, wait: int) -> np.ndarray:
    """``librosa.util.peak_pick`` of a 1-D float32 array: the indices ``n`` where ``x[n]``
    is the maximum of ``x[n - pre_max : n + post_max]``, at least ``delta`` above the mean
    of ``x[n - pre_avg : n + post_avg]``, and more than ``wait`` after the last peak."""
    x = np.asarray(x, dtype=np.float32)
    delta32 = np.float32(delta)
    n_x = len(x)
    peaks: list[int] = []
    first = (x[0] >= np.max(x[: min(post_max, n_x)])
             and x[0] >= _numba_float32_mean(x[: min(post_avg, n_x)]) + delta32)
    if first:
        peaks.append(0)
    n = wait + 1 if first else 1
    while n < n_x:
        if x[n] != np.max(x[max(0, n - pre_max) : min(n + post_max, n_x)]):
            n += 1
            continue
        if not x[n] >= _numba_float32_mean(x[max(0, n - pre_avg) : min(n + post_avg, n_x)]) + delta32:
            n += 1
            continue
        peaks.append(n)
        n += wait + 1
    return np.array(peaks, dtype=int)


def onset_detect(*, onset_envelope: np.ndarray, sr: float, hop_length: int = 512) -> np.ndarray:
    """``librosa.onset.onset_detect(onset_envelope=..., sr=sr, hop_length=hop_length)``:
    frame indices of the onsets, picked from the envelope scaled to 0-1."""
    env = onset_envelope - np.min(onset_envelope, keepdims=True, axis=-1)
    env /= np.max(env, keepdims=True, axis=-1) + _tiny(env)
    if not env.any() or not np.all(np.isfinite(env)):
        return np.array([], dtype=int)

    # librosa's defaults, in frames (floats there, rounded up by peak_pick)
    def frames(seconds: float, plus: int = 0) -> int:
        return int(np.ceil(seconds * sr // hop_length + plus))

    return peak_pick(env, pre_max=frames(0.03), post_max=frames(0.0, 1), pre_avg=frames(0.1),
                     post_avg=frames(0.1, 1), delta=0.07, wait=frames(0.03))


def autocorrelate(y: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``librosa.autocorrelate`` of real ``y`` along ``axis``, by FFT (every lag)."""
    size = y.shape[axis]
    n_pad = scipy.fft.next_fast_len(2 * size - 1, real=True)
    spectrum = scipy.fft.rfft(y, n=n_pad, axis=axis)
    autocorr = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_pad, axis=axis)
    index = [slice(None)] * autocorr.ndim
    index[axis] = slice(size)
    return autocorr[tuple(index)]


def tempogram(*, onset_envelope: np.ndarray, win_length: int) -> np.ndarray:
    """``librosa.feature.tempogram(onset_envelope=..., win_length=...)``: the windowed
    autocorrelation of the onset envelope around each frame, ``[win_length, frames]``, each
    frame scaled to a maximum of 1."""
    n = onset_envelope.shape[-1]
    padded = np.pad(onset_envelope, (win_length // 2,) * 2, mode="linear_ramp", end_values=[0, 0])
    odf_frame = _frame(padded, win_length, 1)[..., :n]
    window = _hann(win_length)[:, np.newaxis]
    return normalize(autocorrelate(odf_frame * window, axis=-2), norm=np.inf, axis=-2)


def tempo(*, onset_envelope: np.ndarray, sr: float, hop_length: int = 512, start_bpm: float = 120,
          std_bpm: float = 1.0, ac_size: float = 8.0, max_tempo: float = 320.0) -> np.ndarray:
    """``librosa.feature.tempo(onset_envelope=..., sr=sr, hop_length=hop_length)``: the
    global tempo in BPM, ``[1]``: the lag of the mean tempogram's highest peak, weighted by
    a log-normal prior around ``start_bpm``."""
    win_length = int(np.floor(int(ac_size * sr) // hop_length))
    tg = np.mean(tempogram(onset_envelope=onset_envelope, win_length=win_length), axis=-1, keepdims=True)
    bpms = np.zeros(win_length, dtype=np.float64)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop_length * np.arange(1.0, win_length))
    logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    logprior[: int(np.argmax(bpms < max_tempo))] = -np.inf
    best_period = np.argmax(np.log1p(1000000.0 * tg) + logprior[:, np.newaxis], axis=-2)
    return np.take(bpms, best_period)
