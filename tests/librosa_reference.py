"""The inference path's features as librosa computes them: the reference ``tests/test_dsp.py``
holds :mod:`music2emotion.dsp` to.

These are :func:`music2emotion.descriptors.describe` and the front ends as they were written
on librosa before the port, kept here (and only here: the package must not import librosa,
whose numba kernels write an on-disk cache at import). The descriptor module's own
non-spectral helpers (key strength, modulation, tempogram bands) are shared: they involve no
librosa call.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
from scipy.ndimage import median_filter

from music2emotion.config import HOP_LENGTH, N_FFT, N_MELS
from music2emotion.descriptors import (
    AMIN,
    N_CONTRAST_BANDS,
    N_DESCRIPTORS,
    N_MFCC,
    _key_strength,
    _mean_std,
    _modulation,
    _tempogram_bands,
)


def hpss(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    harm = median_filter(power, size=(1, 31), mode="reflect")
    perc = median_filter(power, size=(9, 1), mode="reflect")
    return (power * librosa.util.softmask(harm, perc, power=2, split_zeros=True),
            power * librosa.util.softmask(perc, harm, power=2, split_zeros=True))


def describe(y: np.ndarray, sr: int) -> np.ndarray:
    """``describe`` on librosa, line for line as it was."""
    y = np.asarray(y, dtype=np.float32)
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    fps = sr / HOP_LENGTH
    S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH))
    power = S**2
    mel_power = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS)
    mel_db = librosa.power_to_db(mel_power, ref=1.0, amin=AMIN, top_db=None)
    mel_rel = np.maximum(mel_db, mel_db.max() - 80.0)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    dmfcc = np.diff(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)

    parts: list[np.ndarray] = []
    parts += _mean_std(mel_db) + _mean_std(mfcc) + [dmfcc.std(1)]
    spectral = [
        librosa.feature.spectral_centroid(S=S, sr=sr)[0] / (sr / 2),
        librosa.feature.spectral_bandwidth(S=S, sr=sr)[0] / (sr / 2),
        librosa.feature.spectral_rolloff(S=S, sr=sr)[0] / (sr / 2),
        librosa.feature.spectral_flatness(S=S, amin=AMIN)[0],
        librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0],
    ]
    for s in spectral:
        parts += _mean_std(s)
    parts += _mean_std(librosa.feature.spectral_contrast(S=S, sr=sr, n_bands=N_CONTRAST_BANDS))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        chroma = librosa.feature.chroma_stft(S=power, sr=sr)
    parts += _mean_std(chroma) + [_key_strength(chroma.mean(1))]
    tonnetz = librosa.feature.tonnetz(chroma=chroma)
    parts += _mean_std(tonnetz)
    flux = [np.abs(np.diff(m, axis=1)).sum(0).mean() if m.shape[1] > 1 else 0.0 for m in (chroma, tonnetz)]
    parts += [np.array(flux)]

    harmonic, percussive = hpss(mel_power)
    total = float(mel_power.sum()) + AMIN
    perc_rms = np.sqrt(percussive.mean(0))
    parts += [np.array([harmonic.sum() / total, percussive.sum() / total,
                        perc_rms.std() / (perc_rms.mean() + AMIN)])]

    rms_db = librosa.amplitude_to_db(librosa.feature.rms(S=S, frame_length=N_FFT)[0], ref=1.0, amin=1e-5,
                                     top_db=None)
    p10, p50, p90 = np.percentile(rms_db, [10, 50, 90])
    parts += [np.array([rms_db.mean(), rms_db.std(), p10, p50, p90, p90 - p10,
                        float((rms_db < rms_db.mean()).mean())])]

    onset = librosa.onset.onset_strength(S=mel_rel, sr=sr, hop_length=HOP_LENGTH)
    n_onsets = len(librosa.onset.onset_detect(onset_envelope=onset, sr=sr, hop_length=HOP_LENGTH))
    tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP_LENGTH))[0])
    tempo = tempo if np.isfinite(tempo) and tempo > 0 else 120.0
    bands, clarity = _tempogram_bands(onset, fps)
    parts += [np.array([onset.mean(), onset.std(), onset.max(), np.percentile(onset, 90),
                        n_onsets / (len(y) / sr), tempo, np.log2(tempo), clarity]), bands]
    parts += [_modulation(mel_rel, fps)]

    out = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts]).astype(np.float32)
    assert out.shape == (N_DESCRIPTORS,)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def log_mel_power(y: np.ndarray, sr: int, n_fft: int, hop_length: int, n_mels: int) -> np.ndarray:
    """What the CNN and the taggers' front ends took from librosa: a mel power spectrogram."""
    return librosa.feature.melspectrogram(y=np.asarray(y, np.float32), sr=sr, n_fft=n_fft,
                                          hop_length=hop_length, n_mels=n_mels)
