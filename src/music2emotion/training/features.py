"""Every window of every training file as the feature rows its model's graph computes,
cached per file.

A file is cut into windows exactly as inference cuts it (:func:`music2emotion.audio.stream_audio`,
:func:`music2emotion.windows.iter_windows`, :func:`music2emotion.frontends.window_inputs`), and
each window goes through the model's feature graph
(:func:`~music2emotion.training.graph.feature_graph`) in ONNX Runtime, so a 4-minute song
gives 24 rows where a 10 s clip gives one. A file's rows are kept in their own ``.npz``,
named after the file's path, size and modification time and after what computed them (the
graph's bytes, the settings, the package version): a changed file or setting is never read
from a stale entry, and a run that is killed keeps every file it finished, so the next run
starts where it stopped. Entries are written whole (a temporary file renamed into place), so
runs sharing a cache never read half of one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..audio import LevelMeter, stream_audio
from ..config import FeatureSettings
from ..frontends import window_inputs
from ..prediction import SILENT_WARNING, failure_reason
from ..windows import iter_windows
from .graph import FEATURES


@dataclass
class FileRows:
    """One file's windows: ``x`` ``[windows, F]`` feature rows, ``spans`` ``[windows, 2]``
    start and end in seconds, the seconds decoded, and the decoder's warning (damaged
    stretches skipped; ``""`` when none)."""

    x: np.ndarray
    spans: np.ndarray
    duration: float
    warning: str = ""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/music2emotion/features`` (``~/.cache`` when it is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "music2emotion" / "features"


def graph_digest(graph: Any, kind: str, settings: FeatureSettings) -> str:
    """What a cache entry's rows depend on besides the file: the feature graph, the model
    kind and settings, and the package version (the windows and front ends)."""
    h = hashlib.sha1(graph.SerializeToString())
    h.update(f"{kind}|{settings.to_json()}|{__version__}".encode())
    return h.hexdigest()


def entry_path(path: str | os.PathLike[str], folder: Path) -> Path:
    """The cache entry of an audio file in ``folder`` (one folder per :func:`graph_digest`)."""
    p = Path(path)
    st = p.stat()
    return folder / (hashlib.sha1(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest() + ".npz")


def _read_entry(file: Path) -> FileRows | None:
    try:
        with np.load(file) as z:
            return FileRows(z["x"], z["spans"], float(z["duration"]), str(z["warning"]))
    except (OSError, ValueError, KeyError, EOFError):
        return None  # absent, or damaged by something other than us: compute it again


def _write_entry(file: Path, rows: FileRows) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f"{file.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, x=rows.x, spans=rows.spans, duration=np.float64(rows.duration), warning=np.array(rows.warning))
    os.replace(tmp, file)


def _remove_stale(folder: Path) -> None:
    """Delete the temporary entries of runs that died while writing them (their process is
    gone); those of live runs are theirs to rename."""
    for tmp in folder.glob("*.tmp.npz"):
        try:
            os.kill(int(tmp.name.split(".")[-3]), 0)
        except (ValueError, IndexError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass  # another user's process: alive


_session: Any = None


def _load_graph(graph_bytes: bytes) -> None:
    """Each worker's one ONNX Runtime session of the feature graph, on one thread: the
    workers are the parallelism."""
    global _session
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.enable_mem_pattern = False
    _session = ort.InferenceSession(graph_bytes, opts, providers=["CPUExecutionProvider"])


class _Compute:
    """``fn(path, entry)``: a file's :class:`FileRows`, written to ``entry``, or the one-line
    reason it has none (picklable, for worker processes)."""

    def __init__(self, kind: str, settings: FeatureSettings):
        self.kind, self.settings = kind, settings

    def __call__(self, path: str, entry: str) -> FileRows | str:
        try:
            meter = LevelMeter(stream_audio(path, self.settings.sample_rate))
            rows, spans = [], []
            for w in iter_windows(meter, self.settings):
                feed = {k: v[np.newaxis] for k, v in window_inputs(self.kind, w.samples, self.settings).items()}
                rows.append(_session.run([FEATURES], feed)[0][0])
                spans.append((w.start, w.end))
        except Exception as exc:  # one file's failure is that file's, whatever it is
            return failure_reason(exc)
        if meter.silent:
            return SILENT_WARNING
        out = FileRows(np.asarray(rows, np.float32), np.asarray(spans, np.float64),
                       meter.samples / self.settings.sample_rate, meter.damage)
        _write_entry(Path(entry), out)
        return out


def file_rows(
    paths: Sequence[str | os.PathLike[str]],
    graph: Any,
    kind: str,
    settings: FeatureSettings,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[FileRows | str]:
    """Each file's :class:`FileRows`, from the cache or computed (in ``jobs`` processes),
    or the one-line reason a file has none (unreadable, too short, digital silence).

    Parameters
    ----------
    paths : sequence of path-like
        The audio files.
    graph : onnx.ModelProto
        The feature graph (:func:`~music2emotion.training.graph.feature_graph`).
    kind : str
        The model kind, which says what each window feeds the graph.
    settings : FeatureSettings
        The model's windows and front end.
    cache_dir : path-like, optional
        The cache (default: :func:`default_cache_dir`); entries go in a folder per
        :func:`graph_digest`.
    jobs : int
        Worker processes for the files not in the cache.
    progress : bool
        Show a progress bar.
    log : callable
        Where the line saying how many files were cached goes.

    Returns
    -------
    list
        In the order of ``paths``.
    """
    from tqdm import tqdm

    folder = Path(cache_dir or default_cache_dir()) / graph_digest(graph, kind, settings)[:16]
    if folder.is_dir():
        _remove_stale(folder)
    out: list[FileRows | str | None] = []
    todo: list[tuple[int, str, str]] = []
    for i, p in enumerate(paths):
        try:
            entry = entry_path(p, folder)
        except OSError as exc:  # gone since the labels were read
            out.append(f"unreadable: {exc.strerror or type(exc).__name__}")
            continue
        cached = _read_entry(entry) if entry.is_file() else None
        out.append(cached)
        if cached is None:
            todo.append((i, str(p), str(entry)))
    log(f"features: {len(paths) - len(todo)} of {len(paths)} files cached in {folder}, {len(todo)} to compute")
    if todo:
        compute = _Compute(kind, settings)
        graph_bytes = graph.SerializeToString()
        bar = tqdm(total=len(todo), desc="features", unit="file", disable=not progress)
        if jobs > 1 and len(todo) > 1:
            with ProcessPoolExecutor(min(jobs, len(todo)), initializer=_load_graph, initargs=(graph_bytes,)) as pool:
                for (i, _, _), result in zip(todo, pool.map(compute, [t[1] for t in todo], [t[2] for t in todo],
                                                            chunksize=1)):
                    out[i] = result
                    bar.update()
        else:
            _load_graph(graph_bytes)
            for i, path, entry in todo:
                out[i] = compute(path, entry)
                bar.update()
        bar.close()
    return out  # type: ignore[return-value]
