"""Tiny generated audio for the tests: tones, chords, clicks and noise, never real music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 22_050


def tone(freqs: tuple[float, ...] | float, seconds: float, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    freqs = (freqs,) if np.isscalar(freqs) else freqs
    y = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    return (amp * y / len(freqs)).astype(np.float32)


def clicks(rate: float, seconds: float, sr: int = SR, amp: float = 0.8) -> np.ndarray:
    """A click train: ``rate`` short noise bursts per second."""
    y = np.zeros(int(seconds * sr), np.float32)
    burst = np.random.default_rng(0).standard_normal(int(0.01 * sr)).astype(np.float32) * amp
    for start in np.arange(0, seconds, 1.0 / rate):
        i = int(start * sr)
        y[i : i + len(burst)] += burst[: len(y) - i]
    return y


def write(path: Path, y: np.ndarray, sr: int = SR, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, sr, **kw)
    return path


MAJOR = (261.6, 329.6, 392.0)
MINOR = (261.6, 311.1, 392.0)


def make_deam_like(root: Path, n: int = 48, seconds: float = 3.0, seed: int = 0) -> tuple[Path, Path]:
    """A DEAM-layout folder whose labels follow the sound: arousal rises with click rate and
    loudness, valence with a major (vs minor) chord. Annotations copy DEAM's CSV quirks."""
    rng = np.random.default_rng(seed)
    audio = root / "audio"
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sid = i + 1
        major = i % 2 == 0
        energy = rng.uniform(0, 1)
        y = tone(MAJOR if major else MINOR, seconds, amp=0.2)
        y = y + clicks(1 + 15 * energy, seconds, amp=0.1 + 0.8 * energy)
        write(audio / f"{sid}.mp3" if i % 3 == 0 else audio / f"{sid}.wav", y)
        valence = 1 + 8 * ((0.75 if major else 0.25) + rng.normal(0, 0.03))
        arousal = 1 + 8 * (0.15 + 0.7 * energy)
        rows.append((sid, valence, arousal))
    with (ann / "static_annotations_averaged_songs_1_2000.csv").open("w") as f:
        f.write("song_id, valence_mean, valence_std, arousal_mean, arousal_std\n")
        for sid, v, a in rows[:-4]:
            f.write(f"{sid},{v:.2f},1.0,{a:.2f},1.1\n")
    with (ann / "static_annotations_averaged_songs_2000_2058.csv").open("w") as f:
        f.write("song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, "
                "valence_min_mean, valence_min_std, arousal_mean, arousal_std, arousal_max_mean, "
                "arousal_max_std, arousal_min_mean, arousal_min_std\n")
        for sid, v, a in rows[-4:]:
            f.write(f"{sid},{v:.2f},0.5,8.0,1.0,2.0,1.0,{a:.2f},0.6,7.0,1.0,2.0,1.0\n")
    return audio, ann


@pytest.fixture(scope="session")
def deam_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_deam_like(tmp_path_factory.mktemp("deam"))


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised seed CNN exported with 2 s windows: real graph, meaningless values."""
    torch = pytest.importorskip("torch")
    from music2emotion.config import FeatureSettings
    from music2emotion.export import export_onnx
    from music2emotion.model import build_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("model") / "tiny.onnx"
    return export_onnx(build_model("seed"), FeatureSettings(window_seconds=2.0), out)


@pytest.fixture()
def audio_dir(tmp_path: Path) -> Path:
    """A few good files in a folder (WAV and MP3, stereo and mono, odd sample rates)."""
    d = tmp_path / "songs"
    write(d / "a.wav", tone(MAJOR, 3.0))
    write(d / "b.mp3", tone(MINOR, 2.5) + clicks(4, 2.5, amp=0.3))
    write(d / "sub" / "c.flac", np.stack([tone(440, 4.0, 48_000)] * 2, 1), 48_000)
    return d


def train_config(deam: tuple[Path, Path], out: Path, cache: Path, **overrides):
    """A TrainConfig for quick runs on ``deam_like`` (3 s windows)."""
    from music2emotion.train import TrainConfig

    audio, ann = deam
    base = dict(audio_dir=str(audio), annotations=str(ann), out=str(out), window_seconds=3.0,
                epochs=14, batch_size=8, lr=3e-3, patience=8, val_fraction=0.25, seed=0,
                cache_dir=str(cache), jobs=1)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def trained_run(deam_like, feature_cache, tmp_path_factory: pytest.TempPathFactory):
    """One short training run on ``deam_like``, shared by the tests that need a real
    checkpoint: returns the run folder and train()'s result."""
    pytest.importorskip("torch")
    from music2emotion.train import train

    out = tmp_path_factory.mktemp("train") / "run"
    return out, train(train_config(deam_like, out, feature_cache), log=lambda _: None)


# --- a small music collection in every container the tag command writes --------------------

# soundfile's arguments per extension (libsndfile >= 1.1 writes MP3 too)
SOUNDFILE_FORMATS = {
    ".wav": {}, ".aiff": {}, ".flac": {}, ".ogg": {}, ".mp3": {},
    ".opus": {"format": "OGG", "subtype": "OPUS"},
}


def write_m4a(path: Path, y: np.ndarray, sr: int = 44_100, codec: str = "aac") -> Path:
    """A real MP4 audio file (AAC or ALAC) made with PyAV's bundled FFmpeg: there is no
    ffmpeg program here and libsndfile writes no MP4."""
    av = pytest.importorskip("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream(codec, rate=sr, layout="mono")
        if codec == "alac":
            frame = av.AudioFrame.from_ndarray((y * 32767).astype(np.int16)[None, :], format="s16p", layout="mono")
        else:
            frame = av.AudioFrame.from_ndarray(y.astype(np.float32)[None, :], format="fltp", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def make_song(path: Path, seconds: float = 2.0, seed: int = 0) -> Path:
    """A short song-like clip (a chord, clicks, a little noise) in the container its
    extension names; ``.m4a`` is AAC, ``.alac.m4a`` is ALAC."""
    rng = np.random.default_rng(seed)
    sr = 48_000 if path.suffix == ".opus" else SR
    y = tone((MAJOR, MINOR)[seed % 2], seconds, sr, amp=0.25) + clicks(2 + seed, seconds, sr, amp=0.2)
    y = np.clip(y + rng.normal(0, 0.01, len(y)).astype(np.float32), -1, 1)
    if path.suffix == ".m4a":
        return write_m4a(path, y, sr, "alac" if path.name.endswith(".alac.m4a") else "aac")
    return write(path, y, sr, **SOUNDFILE_FORMATS[path.suffix])


@pytest.fixture()
def song_folder(tmp_path: Path) -> Path:
    """One short clip in each container libsndfile both writes and decodes (MP3, FLAC, Ogg
    Vorbis, Opus, WAV, AIFF)."""
    d = tmp_path / "music"
    for i, ext in enumerate(SOUNDFILE_FORMATS):
        make_song(d / f"song{i}{ext}", seed=i)
    return d
