"""Per-clip inputs of the regressors: descriptors and tagger outputs of every clip, cached.

Training fits on one row per clip (a DEAM clip is one 10 s window): the mean over its
windows of exactly what inference computes per window (:func:`music2emotion.descriptors.describe`,
and the pretrained taggers on :func:`music2emotion.frontends.musicnn_patches`). Computing
them is most of a training run, so each part is kept in its own ``.npz``, keyed by the
files' paths, sizes and modification times and by what computed them; a matching cache is
read instead of recomputed, anything else is recomputed and replaces it atomically.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import AudioError, stream_audio
from ..config import DEFAULT_WINDOW_SECONDS, DESCRIPTOR_RATE, EncoderSettings, FeatureSettings
from ..descriptors import DESCRIPTOR_NAMES, describe
from ..frontends import PATCHES, descriptor_audio, encoder_mel, heard_bands, musicnn_patches
from ..windows import TooShortError, iter_windows

# The windows the regressors are fitted and run on: DEAM's 10 s clips, one window each,
# heard at 16 kHz by the descriptors and the taggers alike.
CLIP_SETTINGS = FeatureSettings(window_seconds=DEFAULT_WINDOW_SECONDS, descriptor_rate=DESCRIPTOR_RATE)
# ...and those of models with the pretrained AudioSet encoder, which hears the same copy
AUDIOSET_SETTINGS = FeatureSettings(window_seconds=DEFAULT_WINDOW_SECONDS, descriptor_rate=DESCRIPTOR_RATE,
                                    encoder=EncoderSettings())
# ...and the fast model's, whose encoder hears the middle 5 s of each window: half the mel
# front end and half the network for 0.021 of 4Q valence AUC (0.834 against 0.855) and
# 0.011 of quadrants right (0.691 against 0.702), on the artist-grouped folds
FAST_SETTINGS = FeatureSettings(window_seconds=DEFAULT_WINDOW_SECONDS, descriptor_rate=DESCRIPTOR_RATE,
                                encoder=EncoderSettings(seconds=5.0))


def describe_file(
    path: str | os.PathLike[str],
    settings: FeatureSettings = CLIP_SETTINGS,
    hop_seconds: float | None = None,
) -> np.ndarray:
    """Descriptors of every window of a file, ``[windows, N_DESCRIPTORS]``.

    Windows are cut as inference cuts them (:func:`music2emotion.windows.iter_windows`), so
    a 10 s DEAM clip is one window. Raises :class:`~music2emotion.audio.AudioError` or
    :class:`~music2emotion.windows.TooShortError` for unreadable or too short audio.
    """
    blocks = stream_audio(path, settings.sample_rate)
    return np.stack([describe(*descriptor_audio(w.samples, settings))
                     for w in iter_windows(blocks, settings, hop_seconds)])


def _described(path: str) -> np.ndarray:
    return describe_file(path).mean(0)


_encoder: Any = None


def _load_encoder(path: str) -> None:
    global _encoder
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    _encoder = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _embedded(path: str) -> np.ndarray:
    """Mean over the clip's windows of the encoder's [mean tags, mean embedding]."""
    rows = []
    for w in iter_windows(stream_audio(path, CLIP_SETTINGS.sample_rate), CLIP_SETTINGS):
        tags, emb = _encoder.run(None, {"patches": musicnn_patches(*descriptor_audio(w.samples, CLIP_SETTINGS))})
        rows.append(np.concatenate([tags.mean(0), emb.mean(0)]))
    return np.mean(rows, 0).astype(np.float32)


class _Encoded:
    """``fn(path)``: the mean over the clip's windows of the AudioSet encoder's [embedding,
    logits], the windows heard as ``settings`` say (picklable, for worker processes)."""

    def __init__(self, settings: FeatureSettings):
        self.settings = settings

    def __call__(self, path: str) -> np.ndarray:
        rows = []
        for w in iter_windows(stream_audio(path, self.settings.sample_rate), self.settings):
            y, rate = descriptor_audio(w.samples, self.settings)
            logits, embedding = _encoder.run(None, {"spec": encoder_mel(y, rate, self.settings.encoder)[np.newaxis]})
            rows.append(np.concatenate([embedding[0], logits[0]]))
        return np.mean(rows, 0).astype(np.float32)


def mel_statistics(mel: np.ndarray, bands: int) -> np.ndarray:
    """``[2 * bands]``: the mean and standard deviation over the frames of each of the first
    ``bands`` bands of an encoder input ``[1, n_mels, frames]``, in float32 as a mel model's
    graph computes them (the level and spread of the mel bands, the cheapest of the
    descriptors' groups; :func:`~music2emotion.frontends.heard_bands` says how many)."""
    m = np.asarray(mel, np.float32)[0, :bands]
    mean = m.mean(1, dtype=np.float32)
    return np.concatenate([mean, np.sqrt(((m - mean[:, None]) ** 2).mean(1, dtype=np.float32))])


def _mel_stats(path: str) -> np.ndarray:
    """Mean over the clip's windows of :func:`mel_statistics`."""
    rows = []
    for w in iter_windows(stream_audio(path, AUDIOSET_SETTINGS.sample_rate), AUDIOSET_SETTINGS):
        y, rate = descriptor_audio(w.samples, AUDIOSET_SETTINGS)
        rows.append(mel_statistics(encoder_mel(y, rate, AUDIOSET_SETTINGS.encoder), heard_bands(AUDIOSET_SETTINGS.encoder)))
    return np.mean(rows, 0).astype(np.float32)


def clip_mel_statistics(
    paths: Sequence[str | os.PathLike[str]],
    cache: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> np.ndarray:
    """``[clips, 2 * heard bands]`` :func:`mel_statistics` of each clip's encoder input, cached."""
    bands = str(heard_bands(AUDIOSET_SETTINGS.encoder))
    return _cached_rows(paths, _mel_stats, ["melstats", bands, AUDIOSET_SETTINGS.to_json()], cache, jobs, progress,
                        "mel statistics")


def _file_key(files: Sequence[Path], *extra: str) -> str:
    return hashlib.sha1("\n".join(
        [f"{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in files] + list(extra)
    ).encode()).hexdigest()


class _OrError:
    """``fn(path)``, or ``"path: reason"`` for a file that cannot be read (picklable)."""

    def __init__(self, fn: Callable[[str], np.ndarray]):
        self.fn = fn

    def __call__(self, path: str) -> np.ndarray | str:
        try:
            return self.fn(path)
        except (AudioError, TooShortError) as exc:
            return f"{path}: {exc}"


def _cached_rows(
    paths: Sequence[str | os.PathLike[str]],
    fn: Callable[[str], np.ndarray],
    key_parts: Sequence[str],
    cache: str | os.PathLike[str] | None,
    jobs: int,
    progress: bool,
    desc: str,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    dtype: Any = np.float32,
) -> np.ndarray:
    from tqdm import tqdm

    files = [Path(p) for p in paths]
    key = _file_key(files, *key_parts)
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return stored["x"]
    task = _OrError(fn)
    if jobs > 1:
        with ProcessPoolExecutor(jobs, initializer=initializer, initargs=initargs) as pool:
            results = list(tqdm(pool.map(task, map(str, files), chunksize=4), total=len(files),
                                desc=desc, disable=not progress, unit="clip"))
    else:
        if initializer is not None:
            initializer(*initargs)
        results = [task(str(p)) for p in tqdm(files, desc=desc, disable=not progress, unit="clip")]
    return stack_and_cache(results, cache, key, dtype)


def describe_clips(
    paths: Sequence[str | os.PathLike[str]],
    cache: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> np.ndarray:
    """Mean descriptors of each file, ``[files, N_DESCRIPTORS]``, cached in ``cache``."""
    return _cached_rows(paths, _described, [*DESCRIPTOR_NAMES, CLIP_SETTINGS.to_json()],
                        cache, jobs, progress, "descriptors")


def clip_embeddings(
    paths: Sequence[str | os.PathLike[str]],
    encoder: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> np.ndarray:
    """``[clips, 250]`` mean tags and embedding of one musicnn encoder (an ONNX file), cached."""
    return _encoder_rows(paths, encoder, _embedded, [str(PATCHES), CLIP_SETTINGS.to_json()], cache, jobs, progress)


def clip_encodings(
    paths: Sequence[str | os.PathLike[str]],
    encoder: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
    settings: FeatureSettings = AUDIOSET_SETTINGS,
) -> np.ndarray:
    """``[clips, 384 + 527]`` mean embedding and AudioSet logits of the EfficientAT encoder
    (its ONNX file, input ``spec``, outputs ``logits`` and ``features``), each window heard
    as ``settings`` say, cached."""
    return _encoder_rows(paths, encoder, _Encoded(settings), [settings.to_json()], cache, jobs, progress)


def _encoder_rows(paths: Sequence[str | os.PathLike[str]], encoder: str | os.PathLike[str],
                  fn: Callable[[str], np.ndarray], key_parts: list[str], cache: str | os.PathLike[str] | None,
                  jobs: int, progress: bool) -> np.ndarray:
    """Rows of ``fn`` run with ``encoder`` loaded in each worker, cached under the encoder's
    digest and ``key_parts``."""
    digest = hashlib.sha1(Path(encoder).read_bytes()).hexdigest()
    return _cached_rows(paths, fn, [digest, *key_parts], cache, max(1, jobs), progress,
                        Path(encoder).stem, _load_encoder, (str(encoder),))


def clip_features(
    paths: Sequence[str | os.PathLike[str]],
    encoders: Sequence[str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> np.ndarray:
    """``[clips, features]``: descriptors, then every encoder's outputs, each cached in
    ``cache_dir`` (the columns of :func:`music2emotion.training.recipe.feature_names`)."""
    cache = Path(cache_dir) if cache_dir else None
    parts = [describe_clips(paths, cache and cache / "descriptors.npz", jobs, progress)]
    for enc in encoders:
        parts.append(clip_embeddings(paths, enc, cache and cache / f"{Path(enc).stem}.npz", jobs, progress))
    return np.hstack(parts)


def stack_and_cache(results: list[np.ndarray | str], cache: str | os.PathLike[str] | None,
                    key: str, dtype: Any = np.float32) -> np.ndarray:
    """Stack per-clip rows (an error string fails the whole set, naming a file) and store
    them in ``cache`` under ``key``, atomically, so a killed run never leaves half a file."""
    errors = [r for r in results if isinstance(r, str)]
    if errors:
        raise AudioError(f"{len(errors)} file(s) could not be read, e.g. {errors[0]}")
    x = np.stack(results).astype(dtype)  # type: ignore[arg-type]
    if cache is not None:
        out = Path(cache)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, x=x, key=np.array(key))
        os.replace(tmp, out)
    return x
