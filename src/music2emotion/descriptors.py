"""Hand-made audio descriptors of one window of music (numpy and scipy only, no torch).

:func:`describe` turns a window of mono audio at ``SAMPLE_RATE`` (a 10 s DEAM clip, or one
window of a longer file) into a fixed vector of :data:`N_DESCRIPTORS` float32 values whose
names are :data:`DESCRIPTOR_NAMES`. They summarise cues the emotion literature links to
valence and arousal and that a small CNN on normalised log-mels cannot see or learns
slowly: absolute loudness and its dynamics (the CNN's input is standardised per window),
timbre (mel, MFCC, spectral shape), harmony and mode (chroma, key strength, tonnetz and how
fast they change), rhythm (tempo, onset rate, pulse clarity, tempogram shape, modulation
spectrum) and the harmonic/percussive balance.

Everything is derived from one STFT so a window costs a fraction of a second, and the same
function runs at training and at inference, so the two can never drift apart. Silence and
very short audio give finite values (never NaN), which a regressor can still take.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

from . import dsp
from .config import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE

N_MFCC = 20
N_CONTRAST_BANDS = 6
# Modulation spectrum: mel bands averaged into groups, envelope energy per rate band (Hz).
MOD_GROUPS = 8
MOD_RATES = ((0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0))
# Tempogram lag bands in beats per minute, from slow to fast.
TEMPO_BANDS = ((30, 50), (50, 70), (70, 90), (90, 110), (110, 135), (135, 165), (165, 200), (200, 280))
# dB floor: digital silence maps here instead of -inf.
AMIN = 1e-10

# Krumhansl-Kessler key profiles (major, minor), starting on the tonic.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _names() -> list[str]:
    names: list[str] = []
    names += [f"mel{i}_mean" for i in range(N_MELS)] + [f"mel{i}_std" for i in range(N_MELS)]
    names += [f"mfcc{i}_mean" for i in range(N_MFCC)] + [f"mfcc{i}_std" for i in range(N_MFCC)]
    names += [f"dmfcc{i}_std" for i in range(N_MFCC)]
    for s in ("centroid", "bandwidth", "rolloff", "flatness", "zcr"):
        names += [f"{s}_mean", f"{s}_std"]
    names += [f"contrast{i}_mean" for i in range(N_CONTRAST_BANDS + 1)]
    names += [f"contrast{i}_std" for i in range(N_CONTRAST_BANDS + 1)]
    names += [f"chroma{i}_mean" for i in range(12)] + [f"chroma{i}_std" for i in range(12)]
    names += ["key_major", "key_minor", "key_mode", "key_clarity"]
    names += [f"tonnetz{i}_mean" for i in range(6)] + [f"tonnetz{i}_std" for i in range(6)]
    names += ["chroma_flux", "tonnetz_flux"]
    names += ["harmonic_ratio", "percussive_ratio", "percussive_rms_std"]
    names += ["rms_db_mean", "rms_db_std", "rms_db_p10", "rms_db_p50", "rms_db_p90",
              "rms_db_range", "low_energy_fraction"]
    names += ["onset_mean", "onset_std", "onset_max", "onset_p90", "onset_rate",
              "tempo", "log2_tempo", "pulse_clarity"]
    names += [f"tempogram_{lo}_{hi}bpm" for lo, hi in TEMPO_BANDS]
    names += [f"mod_g{g}_{lo:g}_{hi:g}hz" for g in range(MOD_GROUPS) for lo, hi in MOD_RATES]
    return names


DESCRIPTOR_NAMES: tuple[str, ...] = tuple(_names())
N_DESCRIPTORS = len(DESCRIPTOR_NAMES)


def _mean_std(x: np.ndarray) -> list[np.ndarray]:
    """Per-row mean and std of a ``[rows, frames]`` array (or of a 1-D array)."""
    return [np.atleast_1d(x.mean(-1)), np.atleast_1d(x.std(-1))]


def _key_strength(chroma_mean: np.ndarray) -> np.ndarray:
    """Best correlation with any major key, any minor key, their difference (mode) and how
    far the best key stands above the runner-up (clarity)."""
    c = chroma_mean - chroma_mean.mean()
    if not np.any(c):
        return np.zeros(4)

    def corr(profile: np.ndarray) -> np.ndarray:
        rolled = np.stack([np.roll(profile, k) for k in range(12)])
        rolled = rolled - rolled.mean(1, keepdims=True)
        return rolled @ c / (np.linalg.norm(rolled, axis=1) * np.linalg.norm(c))

    major, minor = corr(_MAJOR), corr(_MINOR)
    both = np.sort(np.concatenate([major, minor]))
    return np.array([major.max(), minor.max(), major.max() - minor.max(), both[-1] - both[-2]])


def _modulation(mel_db: np.ndarray, fps: float) -> np.ndarray:
    """Log energy of each mel group's envelope in each modulation-rate band."""
    groups = np.array_split(mel_db, MOD_GROUPS, axis=0)
    env = np.stack([g.mean(0) for g in groups])
    env = env - env.mean(1, keepdims=True)
    spec = np.abs(np.fft.rfft(env * np.hanning(env.shape[1]), axis=1)) ** 2
    freqs = np.fft.rfftfreq(env.shape[1], d=1.0 / fps)
    out = [spec[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in MOD_RATES]
    return np.log10(np.stack(out, 1) + 1e-6).ravel()


def _tempogram_bands(onset: np.ndarray, fps: float) -> tuple[np.ndarray, float]:
    """Autocorrelation of the onset envelope summed in :data:`TEMPO_BANDS`, and its highest
    normalised peak between 30 and 280 BPM (pulse clarity)."""
    o = onset - onset.mean()
    ac = np.correlate(o, o, mode="full")[len(o) - 1 :]
    if ac[0] <= 0:
        return np.zeros(len(TEMPO_BANDS)), 0.0
    ac = ac / ac[0]
    lags = np.arange(len(ac))
    with np.errstate(divide="ignore"):
        bpm = np.where(lags > 0, 60.0 * fps / np.maximum(lags, 1), np.inf)
    bands = np.array([ac[(bpm >= lo) & (bpm < hi)].mean() if np.any((bpm >= lo) & (bpm < hi)) else 0.0
                      for lo, hi in TEMPO_BANDS])
    in_range = (bpm >= TEMPO_BANDS[0][0]) & (bpm < TEMPO_BANDS[-1][1])
    return bands, float(ac[in_range].max()) if np.any(in_range) else 0.0


def hpss(power: np.ndarray, harmonic_frames: int = 31, percussive_bands: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive parts of a ``[bands, frames]`` power spectrogram.

    The soft-mask median-filter split of ``librosa.decompose.hpss`` (the same numbers).
    """
    harm = median_filter(power, size=(1, harmonic_frames), mode="reflect")
    perc = median_filter(power, size=(percussive_bands, 1), mode="reflect")
    return (power * dsp.softmask(harm, perc, power=2, split_zeros=True),
            power * dsp.softmask(perc, harm, power=2, split_zeros=True))


def describe(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The :data:`N_DESCRIPTORS` descriptors of one window of audio.

    Parameters
    ----------
    y : numpy.ndarray
        Mono audio (a 10 s window).
    sr : int
        Its sample rate. Every descriptor covers 0 to ``sr / 2``; the bundled models feed
        windows at :data:`~music2emotion.config.DESCRIPTOR_RATE`.

    Returns
    -------
    numpy.ndarray
        ``[N_DESCRIPTORS]`` float32, all finite, named by :data:`DESCRIPTOR_NAMES`.
    """
    y = np.asarray(y, dtype=np.float32)
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    fps = sr / HOP_LENGTH
    S = np.abs(dsp.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH))
    power = S**2
    # absolute dB (not relative to the window's peak): loudness itself is an arousal cue
    mel_power = dsp.melspectrogram(S=power, sr=sr, n_mels=N_MELS)
    mel_db = dsp.power_to_db(mel_power, ref=1.0, amin=AMIN, top_db=None)
    # rhythm features use dB relative to the peak with an 80 dB floor, so a silent lead-in
    # (at the absolute floor) does not swamp the onset envelope with one huge jump
    mel_rel = np.maximum(mel_db, mel_db.max() - 80.0)
    mfcc = dsp.mfcc(S=mel_db, n_mfcc=N_MFCC)
    dmfcc = np.diff(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)

    parts: list[np.ndarray] = []
    parts += _mean_std(mel_db) + _mean_std(mfcc) + [dmfcc.std(1)]
    spectral = [
        dsp.spectral_centroid(S=S, sr=sr)[0] / (sr / 2),
        dsp.spectral_bandwidth(S=S, sr=sr)[0] / (sr / 2),
        dsp.spectral_rolloff(S=S, sr=sr)[0] / (sr / 2),
        dsp.spectral_flatness(S=S, amin=AMIN)[0],
        dsp.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0],
    ]
    for s in spectral:
        parts += _mean_std(s)
    contrast = dsp.spectral_contrast(S=S, sr=sr, n_bands=N_CONTRAST_BANDS)
    parts += _mean_std(contrast)

    # silence has no pitch to estimate tuning from: A440 is assumed
    chroma = dsp.chroma_stft(S=power, sr=sr)
    parts += _mean_std(chroma) + [_key_strength(chroma.mean(1))]
    tonnetz = dsp.tonnetz(chroma=chroma)
    parts += _mean_std(tonnetz)
    flux = [np.abs(np.diff(m, axis=1)).sum(0).mean() if m.shape[1] > 1 else 0.0 for m in (chroma, tonnetz)]
    parts += [np.array(flux)]

    # on the mel spectrogram, not the STFT: the median filters cost 20x less, the split is alike
    harmonic, percussive = hpss(mel_power)
    total = float(mel_power.sum()) + AMIN
    perc_rms = np.sqrt(percussive.mean(0))
    parts += [np.array([harmonic.sum() / total, percussive.sum() / total,
                        perc_rms.std() / (perc_rms.mean() + AMIN)])]

    rms_db = dsp.amplitude_to_db(dsp.rms(S=S, frame_length=N_FFT)[0], ref=1.0, amin=1e-5,
                                     top_db=None)
    p10, p50, p90 = np.percentile(rms_db, [10, 50, 90])
    parts += [np.array([rms_db.mean(), rms_db.std(), p10, p50, p90, p90 - p10,
                        float((rms_db < rms_db.mean()).mean())])]

    onset = dsp.onset_strength(S=mel_rel, hop_length=HOP_LENGTH)
    n_onsets = len(dsp.onset_detect(onset_envelope=onset, sr=sr, hop_length=HOP_LENGTH))
    tempo = float(np.atleast_1d(dsp.tempo(onset_envelope=onset, sr=sr, hop_length=HOP_LENGTH))[0])
    tempo = tempo if np.isfinite(tempo) and tempo > 0 else 120.0
    bands, clarity = _tempogram_bands(onset, fps)
    parts += [np.array([onset.mean(), onset.std(), onset.max(), np.percentile(onset, 90),
                        n_onsets / (len(y) / sr), tempo, np.log2(tempo), clarity]), bands]
    parts += [_modulation(mel_rel, fps)]

    out = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts]).astype(np.float32)
    if out.shape != (N_DESCRIPTORS,):  # a change in output shapes must not go unnoticed
        raise RuntimeError(f"descriptor vector has {out.size} values, expected {N_DESCRIPTORS}")
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
