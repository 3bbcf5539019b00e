"""Prediction with an ONNX model: one file, or many in parallel processes. No torch here.

A file is streamed in blocks, cut into the model's windows (see
:func:`music2emotion.features.iter_windows`), and the windows are run through ONNX Runtime
in batches, so memory stays bounded by ``batch_size`` windows whatever the file's length.

The song-level valence and arousal are the time-weighted mean of the window values in
which every second of audio counts the same: a second covered by one window takes that
window's value, a second covered by several (the last window, aligned to the end of the
file, overlaps its neighbour; ``hop_seconds`` shorter than the window overlaps them all)
takes their mean. With the default hop (one window length) that is the plain mean of the
windows, except that the overlapping last window counts only for the audio it adds.

A file that fails gives a :class:`Prediction` with ``error`` set; nothing here raises for a
bad file. :func:`predict_files` spreads files over spawned worker processes; a worker that
dies (a decoder crash, the out-of-memory killer) costs only the file it was working on.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from importlib import resources
from multiprocessing.connection import wait as wait_for_ready
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnxruntime as ort
from threadpoolctl import threadpool_limits

from .audio import AudioError, LevelMeter, quiet_decoder_messages, stream_audio
from .config import (
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    METADATA_KEY,
    MIN_AUDIO_SECONDS,
    FeatureSettings,
    to_deam,
)
from .features import TooShortError, iter_windows, window_features

# model kinds this version runs, by what each window feeds the ONNX graph
MODEL_KINDS = ("cnn", "fusion", "descriptors")
DEFAULT_BATCH = 16
SILENT_WARNING = "silent: the audio is digital silence, so the values mean nothing"
WORKER_DIED = (
    "the worker process died while predicting this file "
    "(a crash in the decoder, or killed, e.g. for lack of memory)"
)


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """The file of a model shipped inside the package (:data:`BUNDLED_MODELS`)."""
    if name not in BUNDLED_MODELS:
        raise ValueError(f"no bundled model {name!r}; choose from {', '.join(BUNDLED_MODELS)}")
    return Path(str(resources.files("music2emotion") / "models" / BUNDLED_MODELS[name]))


def resolve_model(model: str | os.PathLike[str] | None = None) -> Path:
    """The model file ``model`` stands for: ``None`` is the default bundled model, a name in
    :data:`BUNDLED_MODELS` a bundled one (unless a file of that name exists here), anything
    else a path. Raises ``FileNotFoundError`` when there is no such file."""
    if model is None:
        return bundled_model_path()
    path = Path(model)
    if not path.exists() and str(model) in BUNDLED_MODELS:
        return bundled_model_path(str(model))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found "
                                f"(or name a bundled model: {', '.join(BUNDLED_MODELS)})")
    return path


@dataclass
class Segment:
    """Valence and arousal of one window, ``start``-``end`` in seconds."""

    start: float
    end: float
    valence: float
    arousal: float


def _scaled(value: float | None, scale: str) -> float | None:
    if value is None:
        return None
    return round(float(to_deam(value)) if scale == "deam" else float(value), 4)


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
        return {
            "path": self.path,
            "valence": _scaled(self.valence, scale),
            "arousal": _scaled(self.arousal, scale),
            "duration": None if self.duration is None else round(self.duration, 3),
            "windows": self.windows,
            "warning": self.warning,
            "error": self.error,
        }

    def segment_rows(self, scale: str = "unit") -> list[dict[str, Any]]:
        """One record per window of the timeline (``path, start, end, valence, arousal``)."""
        return [
            {
                "path": self.path,
                "start": s.start,
                "end": s.end,
                "valence": _scaled(s.valence, scale),
                "arousal": _scaled(s.arousal, scale),
            }
            for s in self.timeline
        ]


def time_weighted_mean(starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (one row per window) in which every second counts the same.

    Each stretch of time between window edges is shared equally by the windows covering
    it, so a window's weight is the audio it covers, less what it shares. Time covered by
    no window (a hop longer than the window) does not count.
    """
    starts, ends = np.asarray(starts, np.float64), np.asarray(ends, np.float64)
    edges = np.unique(np.concatenate([starts, ends]))
    mids = (edges[:-1] + edges[1:]) / 2
    cover = np.searchsorted(np.sort(starts), mids, "right") - np.searchsorted(
        np.sort(ends), mids, "right"
    )
    share = np.where(cover > 0, np.diff(edges) / np.maximum(cover, 1), 0.0)
    cum = np.concatenate([[0.0], np.cumsum(share)])
    weights = cum[np.searchsorted(edges, ends)] - cum[np.searchsorted(edges, starts)]
    return weights @ np.asarray(values, np.float64) / weights.sum()


def window_inputs(kind: str, samples: np.ndarray, settings: FeatureSettings) -> dict[str, np.ndarray]:
    """The ONNX inputs for one window of audio, by model kind.

    ``"cnn"`` (the seed CNN): ``{"input": [1, n_mels, frames]}``; ``"fusion"`` (see
    :mod:`music2emotion.fusion`): ``{"descriptors": [D], "patches": [P, 187, 96]}``;
    ``"descriptors"`` (a regressor on the descriptors alone): ``{"descriptors": [D]}``.
    Plain arrays, so worker processes and Ray tasks can compute them without a session.
    """
    if kind == "fusion":
        from .fusion import window_inputs as fusion_inputs  # fusion imports this module

        descriptors, patches = fusion_inputs(samples, settings.sample_rate)
        return {"descriptors": descriptors, "patches": patches}
    if kind == "descriptors":
        from .descriptors import describe  # librosa-heavy, and a CNN never needs it

        return {"descriptors": describe(samples, settings.sample_rate)}
    return {"input": window_features(samples, settings)}


class EmotionModel:
    """An ONNX emotion model and the :class:`FeatureSettings` it was trained with."""

    def __init__(self, path: str | os.PathLike[str] | None = None, threads: int = 0):
        """``path``: a model file, or the name of a bundled one (see :func:`resolve_model`)."""
        self.path = resolve_model(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0 lets ONNX Runtime use every core
        opts.inter_op_num_threads = 1
        # ONNX Runtime's memory patterns keep one more arena block per batch shape seen
        # (36 MB more for a batch of 16 ten-second windows, allocated on the second batch),
        # so a long file peaked higher than a short one; without them memory is flat and,
        # measured on this model, inference is no slower
        opts.enable_mem_pattern = False
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
        self.kind: str = self.info.get("kind", "cnn")
        self.input_names = [i.name for i in self.session.get_inputs()]
        # Windows per ONNX Runtime call (None: all that are given). A fusion window is six
        # tagger passes whose convolution activations take about 80 MB: 16 windows at once
        # peaked at 1.7 GB against 0.45 GB for one, and ran no faster per window (0.28 s
        # against 0.32 s, within noise), so its windows go one at a time.
        self.session_batch: int | None = 1 if self.kind == "fusion" else None
        if self.kind in ("fusion", "descriptors"):
            from .descriptors import N_DESCRIPTORS

            if self.info.get("n_descriptors") != N_DESCRIPTORS:
                raise ValueError(f"{self.path}: made for {self.info.get('n_descriptors')} descriptors, "
                                 f"this version computes {N_DESCRIPTORS}")
        elif self.kind not in MODEL_KINDS:
            raise ValueError(f"{self.path}: unknown model kind {self.kind!r}; upgrade music2emotion")

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """CNN models: ``[batch, 1, n_mels, frames] -> [batch, 2]`` valence/arousal in [0, 1]."""
        return self.predict_windows([{"input": w} for w in x])

    def window_inputs(self, samples: np.ndarray, settings: FeatureSettings | None = None) -> dict[str, np.ndarray]:
        """This model's inputs for one window (see :func:`window_inputs`)."""
        return window_inputs(self.kind, samples, settings or self.settings)

    def predict_windows(self, windows: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Stacks per-window inputs into batches: ``[len(windows), 2]`` in [0, 1]."""
        step = self.session_batch or len(windows)
        out = []
        for i in range(0, len(windows), step):
            feed = {name: np.ascontiguousarray(np.stack([w[name] for w in windows[i : i + step]]), np.float32)
                    for name in self.input_names}
            out.append(self.session.run(None, feed)[0])
        return np.clip(np.concatenate(out), 0.0, 1.0)

    def window_settings(self, window_seconds: float | None = None) -> FeatureSettings:
        """The model's settings with another window length (``None``: the model's own)."""
        if window_seconds is None:
            return self.settings
        if not window_seconds >= MIN_AUDIO_SECONDS:
            raise ValueError(f"window must be at least {MIN_AUDIO_SECONDS} s, not {window_seconds}")
        return replace(self.settings, window_seconds=float(window_seconds))

    def predict_file(
        self,
        path: str | os.PathLike[str],
        hop_seconds: float | None = None,
        batch_size: int = DEFAULT_BATCH,
        timeline: bool = False,
        window_seconds: float | None = None,
    ) -> Prediction:
        """Predict one file; errors come back in ``Prediction.error``, never as exceptions.

        ``window_seconds`` (default: the model's window) and ``hop_seconds`` (default: the
        window) choose the windows; ``timeline`` keeps each window's values in
        ``Prediction.timeline``. Only bad arguments raise (``ValueError``).
        """
        settings = self.window_settings(window_seconds)
        if hop_seconds is not None and not hop_seconds > 0:
            raise ValueError(f"hop must be positive, not {hop_seconds}")
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, not {batch_size}")
        result = Prediction(str(path))
        spans: list[tuple[float, float]] = []
        outputs: list[np.ndarray] = []
        pending: list[dict[str, np.ndarray]] = []

        def flush() -> None:
            outputs.append(self.predict_windows(pending))
            pending.clear()

        meter = LevelMeter(stream_audio(path, settings.sample_rate))
        try:
            for w in iter_windows(meter, settings, hop_seconds):
                spans.append((w.start, w.end))
                pending.append(self.window_inputs(w.samples, settings))
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
        values = np.concatenate(outputs)
        if not np.isfinite(values).all():
            result.error = "the model gave no valid values for this audio (NaN)"
            return result
        starts, ends = np.array(spans).T
        result.windows = len(values)
        result.duration = meter.samples / settings.sample_rate
        result.valence, result.arousal = (
            float(v) for v in time_weighted_mean(starts, ends, values)
        )
        if timeline:
            result.timeline = [
                Segment(round(a, 3), round(b, 3), float(v), float(ar))
                for (a, b), (v, ar) in zip(spans, values)
            ]
        if meter.silent:
            result.warning = SILENT_WARNING
        return result


# --- many files in worker processes -------------------------------------------------------

T = TypeVar("T")
R = TypeVar("R")

# Each worker process holds its own single-threaded session and single-threaded BLAS: the
# work is decoding and features, one process per core scales it, and threads inside each
# process would only fight over the same cores (OpenBLAS spinning on a busy 2-core machine
# made the mel projection 3x slower).
_worker_model: EmotionModel | None = None


def _exit_with_parent() -> None:
    """End this worker when its parent dies: a pool's workers would otherwise wait for
    work forever after the parent is killed (``kill -9``, the out-of-memory killer)."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait_for_ready([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_worker(model_path: str) -> None:
    global _worker_model
    _exit_with_parent()
    # Ctrl-C goes to the whole process group; the parent alone decides how to stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)
    quiet_decoder_messages().__enter__()  # for the life of the worker
    _worker_model = EmotionModel(model_path, threads=1)


def _predict_in_worker(task: tuple[str, dict[str, Any]]) -> Prediction:
    assert _worker_model is not None
    path, options = task
    return _worker_model.predict_file(path, **options)


class WorkersKeepDying(RuntimeError):
    """Worker processes die before finishing any item: the setup, not one input, is broken."""


def run_in_processes(
    items: Sequence[T],
    fn: Callable[[T], R],
    jobs: int,
    failed: Callable[[T, str], R],
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    ordered: bool = True,
) -> Iterator[R]:
    """Yield ``fn(item)`` for every item, computed in ``jobs`` spawned processes.

    ``ordered`` yields in input order, otherwise as items finish; either way at most a few
    items per worker are in flight, so memory does not grow with ``len(items)``. When a
    worker dies, the items that were in flight are retried one at a time in a fresh
    single-worker pool, so only an item that kills its worker on its own gets
    ``failed(item, reason)``; the other items go on in a fresh pool. ``fn`` and
    ``initializer`` must be importable module-level functions (spawn pickles them by name).
    """
    ctx = mp.get_context("spawn")  # not fork: the caller may hold threads or locks
    window = 2 * jobs  # one running and one queued per worker keeps every worker busy
    todo: deque[int] = deque(range(len(items)))
    suspects: deque[int] = deque()
    buffered: dict[int, R] = {}
    next_out = 0
    succeeded = False
    died_in_a_row = 0
    pool: ProcessPoolExecutor | None = None
    pool_size = 0

    def ensure_pool(size: int) -> ProcessPoolExecutor:
        nonlocal pool, pool_size
        if pool is None or pool_size != size:
            drop_pool()
            pool = ProcessPoolExecutor(size, mp_context=ctx, initializer=initializer,
                                       initargs=initargs)
            pool_size = size
        return pool

    def drop_pool() -> None:
        nonlocal pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            pool = None

    def emit(i: int, r: R) -> Iterator[R]:
        nonlocal next_out
        if not ordered:
            yield r
            return
        buffered[i] = r
        while next_out in buffered:
            yield buffered.pop(next_out)
            next_out += 1

    completed = False
    try:
        while todo or suspects:
            if suspects:
                # one suspect at a time: if the worker dies now, this item killed it
                i = suspects.popleft()
                fut = ensure_pool(1).submit(fn, items[i])
                try:
                    r = fut.result()
                    succeeded, died_in_a_row = True, 0
                except BrokenProcessPool:
                    drop_pool()
                    died_in_a_row += 1
                    if not succeeded and died_in_a_row >= 3:
                        raise WorkersKeepDying(
                            "worker processes die before finishing any file; "
                            "check that the model loads and memory suffices"
                        ) from None
                    r = failed(items[i], WORKER_DIED)
                except Exception as exc:  # fn itself raised: report it for this item only
                    r = failed(items[i], f"unexpected {type(exc).__name__}: {exc}")
                yield from emit(i, r)
                continue
            p = ensure_pool(jobs)
            inflight: dict[Future[R], int] = {}
            broken = False
            while (todo or inflight) and not broken:
                while todo and len(inflight) < window and (
                    not ordered or len(buffered) < 4 * window or not inflight
                ):
                    i = todo.popleft()
                    inflight[p.submit(fn, items[i])] = i
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=inflight.__getitem__):
                    i = inflight.pop(fut)
                    try:
                        r = fut.result()
                        succeeded = True
                    except BrokenProcessPool:
                        broken = True
                        suspects.append(i)
                        continue
                    except Exception as exc:
                        r = failed(items[i], f"unexpected {type(exc).__name__}: {exc}")
                    yield from emit(i, r)
            if broken:
                # every unfinished item is a suspect; items never submitted go on later
                for fut, i in inflight.items():
                    if fut.done() and fut.exception() is None:
                        yield from emit(i, fut.result())
                    else:
                        suspects.append(i)
                suspects = deque(sorted(suspects))
                drop_pool()
        completed = True
    finally:
        if pool is not None and not completed:
            # an early stop (Ctrl-C, a consumer that breaks off): nothing the workers hold
            # has been handed out yet, so stop them now rather than after their files
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
        elif pool is not None:
            pool.shutdown(wait=True)


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or a container
    limit), not every core of the machine."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _failed_prediction(task: tuple[str, dict[str, Any]], reason: str) -> Prediction:
    return Prediction(task[0], error=reason)


def predict_files(
    paths: Sequence[str | os.PathLike[str]],
    model: EmotionModel | str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    timeline: bool = False,
    window_seconds: float | None = None,
    ordered: bool = True,
) -> Iterator[Prediction]:
    """Predict many files, yielding one :class:`Prediction` per path.

    ``jobs`` worker processes (default: every core) decode and predict in parallel, each
    on one core; ``jobs=1`` runs everything in this process, also on one core (BLAS
    threads are limited while it runs). Results come in input order, or with
    ``ordered=False`` as soon as each file is done (then the biggest files start first).
    """
    jobs = max(1, min(jobs or available_cores(), len(paths)))
    options = {"hop_seconds": hop_seconds, "batch_size": batch_size, "timeline": timeline,
               "window_seconds": window_seconds}
    if jobs == 1:
        m = model if isinstance(model, EmotionModel) else EmotionModel(model, threads=1)
        m.window_settings(window_seconds)  # bad arguments fail before the first file
        with threadpool_limits(1):
            for p in paths:
                yield m.predict_file(p, **options)
        return
    if isinstance(model, EmotionModel):
        model.window_settings(window_seconds)
        model_path = str(model.path)
    else:
        model_path = str(resolve_model(model))
        # fail here, once, on a bad model or arguments rather than in every worker
        EmotionModel(model_path, threads=1).window_settings(window_seconds)
    tasks = [(str(p), options) for p in paths]
    if not ordered:
        # longest first (file size stands in for length), so that no worker is left with
        # one long file at the end while the others idle
        tasks.sort(key=lambda t: _size(t[0]), reverse=True)
    yield from run_in_processes(tasks, _predict_in_worker, jobs, _failed_prediction,
                                _init_worker, (model_path,), ordered)


def predict_file(
    path: str | os.PathLike[str],
    model: EmotionModel | str | os.PathLike[str] | None = None,
    hop_seconds: float | None = None,
    timeline: bool = False,
    window_seconds: float | None = None,
) -> Prediction:
    """Predict one file with ``model`` (default: the bundled model)."""
    m = model if isinstance(model, EmotionModel) else _cached_model(model)
    return m.predict_file(path, hop_seconds, timeline=timeline, window_seconds=window_seconds)


_models: dict[str, EmotionModel] = {}


def _cached_model(path: str | os.PathLike[str] | None) -> EmotionModel:
    key = str(resolve_model(path))
    if key not in _models:
        _models[key] = EmotionModel(key)
    return _models[key]
