"""Prediction with an ONNX model: one file, or many in parallel processes. No torch here.

A file is streamed in blocks, cut into the model's windows (see
:func:`music2emotion.features.iter_windows`), and the windows are run through ONNX Runtime
in batches, so memory stays bounded by ``batch_size`` windows whatever the file's length.
The song-level valence and arousal are the mean over its windows, each window weighing the
same. A file that fails gives a :class:`Prediction` with ``error`` set; it never raises.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .audio import AudioError, stream_audio
from .config import METADATA_KEY, SILENCE_RMS, FeatureSettings, to_deam
from .features import TooShortError, iter_windows, window_features

MODEL_FILE = "emotion_model.onnx"
DEFAULT_BATCH = 16


def bundled_model_path() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("music2emotion") / "models" / MODEL_FILE))


@dataclass
class Segment:
    """Valence and arousal of one window, ``start``-``end`` in seconds."""

    start: float
    end: float
    valence: float
    arousal: float


@dataclass
class Prediction:
    """The result for one file. On failure ``error`` holds a one-line reason and the values
    are ``None``. ``warning`` flags results to treat with care (e.g. digital silence)."""

    path: str
    valence: float | None = None
    arousal: float | None = None
    duration: float | None = None
    windows: int = 0
    error: str = ""
    warning: str = ""
    timeline: list[Segment] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    def row(self, scale: str = "unit") -> dict[str, Any]:
        """A flat record for CSV/JSON output; ``scale="deam"`` gives 1-9 ratings."""
        def conv(v: float | None) -> float | None:
            if v is None:
                return None
            return round(float(to_deam(v)) if scale == "deam" else v, 4)

        return {
            "path": self.path,
            "valence": conv(self.valence),
            "arousal": conv(self.arousal),
            "duration": None if self.duration is None else round(self.duration, 3),
            "windows": self.windows,
            "warning": self.warning,
            "error": self.error,
        }


class EmotionModel:
    """An ONNX emotion model and the :class:`FeatureSettings` it was trained with."""

    def __init__(self, path: str | os.PathLike[str] | None = None, threads: int = 0):
        self.path = Path(path) if path is not None else bundled_model_path()
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: model file not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0 lets ONNX Runtime use every core
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: not a loadable ONNX model ({exc})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise ValueError(f"{self.path}: not a music2emotion model (no {METADATA_KEY} metadata)")
        self.info: dict[str, Any] = json.loads(meta)
        self.settings = FeatureSettings.from_dict(self.info["settings"])
        self.input_name = self.session.get_inputs()[0].name

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """``[batch, 1, n_mels, frames] -> [batch, 2]`` valence/arousal in [0, 1]."""
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})[0]
        return np.clip(out, 0.0, 1.0)

    def predict_file(
        self,
        path: str | os.PathLike[str],
        hop_seconds: float | None = None,
        batch_size: int = DEFAULT_BATCH,
        timeline: bool = False,
    ) -> Prediction:
        """Predict one file; errors come back in ``Prediction.error``, never as exceptions."""
        result = Prediction(str(path))
        samples = 0
        sumsq = 0.0

        def tapped(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
            nonlocal samples, sumsq
            for b in blocks:
                samples += len(b)
                sumsq += float(np.dot(b, b))
                yield b

        total = np.zeros(2)
        pending: list[tuple[float, float, np.ndarray]] = []

        def flush() -> None:
            out = self.predict_features(np.stack([x for _, _, x in pending]))
            total[:] += out.sum(0)
            result.windows += len(pending)
            if timeline:
                result.timeline += [
                    Segment(round(a, 3), round(b, 3), float(v), float(ar))
                    for (a, b, _), (v, ar) in zip(pending, out)
                ]
            pending.clear()

        try:
            blocks = tapped(stream_audio(path, self.settings.sample_rate))
            for w in iter_windows(blocks, self.settings, hop_seconds):
                pending.append((w.start, w.end, window_features(w.samples, self.settings)))
                if len(pending) >= batch_size:
                    flush()
            if pending:
                flush()
        except (AudioError, TooShortError) as exc:
            result.error = str(exc)
            return result
        except MemoryError:
            result.error = "out of memory while decoding"
            return result
        except Exception as exc:  # a decoder or feature bug must not take other files down
            result.error = f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"
            return result
        result.duration = samples / self.settings.sample_rate
        result.valence, result.arousal = (float(v) for v in total / result.windows)
        if samples and np.sqrt(sumsq / samples) < SILENCE_RMS:
            result.warning = "silent: the audio is digital silence, so the values mean nothing"
        return result


# Worker processes each hold their own single-threaded session: decoding and features
# dominate, and one process per core scales them without threads fighting over cores.
_worker_model: EmotionModel | None = None


def _init_worker(model_path: str) -> None:
    global _worker_model
    _worker_model = EmotionModel(model_path, threads=1)


def _predict_in_worker(args: tuple[str, float | None, int, bool]) -> Prediction:
    assert _worker_model is not None
    return _worker_model.predict_file(*args)


def predict_files(
    paths: Sequence[str | os.PathLike[str]],
    model: EmotionModel | str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    timeline: bool = False,
) -> Iterator[Prediction]:
    """Predict many files, yielding results in input order as they finish.

    ``jobs`` worker processes (default: every core) decode and predict in parallel; with
    ``jobs=1`` everything runs in this process.
    """
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    if jobs == 1:
        m = model if isinstance(model, EmotionModel) else EmotionModel(model)
        for p in paths:
            yield m.predict_file(p, hop_seconds, batch_size, timeline)
        return
    model_path = str(model.path if isinstance(model, EmotionModel) else (model or bundled_model_path()))
    EmotionModel(model_path)  # fail here, once, on a bad model rather than in every worker
    # spawn, not fork: the caller may hold threads (a server, a progress bar)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(model_path,)) as pool:
        tasks = ((str(p), hop_seconds, batch_size, timeline) for p in paths)
        yield from pool.map(_predict_in_worker, tasks, chunksize=1)


def predict_file(
    path: str | os.PathLike[str],
    model: EmotionModel | str | os.PathLike[str] | None = None,
    hop_seconds: float | None = None,
    timeline: bool = False,
) -> Prediction:
    """Predict one file with ``model`` (default: the bundled model)."""
    m = model if isinstance(model, EmotionModel) else _cached_model(model)
    return m.predict_file(path, hop_seconds, timeline=timeline)


_models: dict[str, EmotionModel] = {}


def _cached_model(path: str | os.PathLike[str] | None) -> EmotionModel:
    key = str(path or bundled_model_path())
    if key not in _models:
        _models[key] = EmotionModel(key)
    return _models[key]
