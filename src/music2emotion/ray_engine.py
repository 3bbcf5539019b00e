"""Batch prediction on a Ray cluster (Ray Data): the ``--engine ray`` of ``music2emotion predict``.

It gives the same predictions as the local engine (:func:`music2emotion.engine.predict_files`)
for the same files, up to float rounding, but spreads the work over every machine of a
Ray cluster, or over a Ray instance it starts on this machine when no address is given
(:func:`running`). The CLI imports this module only for ``--engine ray`` and writes its
results with the same :class:`~music2emotion.output.Output` as the local engine's; the
library never imports it, and Ray itself is imported only when a run starts, so
``music2emotion`` works without the ``distributed`` extra.

The pipeline (one Ray Dataset, streamed, so memory does not grow with the catalogue):

1. the file list becomes a Dataset of paths (``ray.data.from_items``), a few files a block;
2. CPU tasks (one core each) decode each file and cut it into the model's windows with the
   library's own :func:`~music2emotion.windows.iter_windows` and
   :func:`~music2emotion.frontends.window_inputs`, emitting one row per window (its
   model inputs pickled, about 110 KB for a CNN's 10 s window) as the file streams in, and
   then one summary row per file (window count, duration, silence, what was skipped as
   damaged, or the error);
3. a pool of actors, each holding one ONNX Runtime session, runs the windows in batches;
   the pool starts with one actor and grows only while its actors are all busy (see
   :func:`_pipeline` for why actors reserve no CPU);
4. this process gathers each file's window values and hands them to
   :func:`~music2emotion.prediction.song_prediction`, as the local engine does, yielding
   each file's result as soon as it is complete.

Object-storage paths (``s3://``, ``gs://``, ...) are listed and read through pyarrow's
filesystems; each task copies its file to local temporary storage to decode it.

Bad files give error rows, as locally. A task that dies (a decoder crash, a lost node)
after Ray's retries costs its block's unfinished files a second pass, one file a task;
only files that fail on their own then get an error row.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import socket
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SCAN_EXTENSIONS, AudioError, LevelMeter, quiet_decoder_messages, skipped_kind, stream_audio
from .config import FeatureSettings
from .frontends import window_inputs
from .engine import keep_freed_memory
from .model import EmotionModel
from .modelfile import OUTPUT, Convention, output_width
from .prediction import PLAIN, Prediction, failure_reason, song_prediction
from .windows import DEFAULT_BATCH, check_options, iter_windows

# A block's files are decoded one after the other by one task: a few per block keeps the
# per-task overhead small, and at least BLOCKS_PER_CPU blocks per CPU keep the load even.
FILES_PER_BLOCK = 16
BLOCKS_PER_CPU = 4
# Seconds to wait for a Ray head node to accept a connection before giving up.
CONNECT_TIMEOUT = 10
# Retries of a task whose worker died: enough for a lost node, few for a crashing file.
TASK_RETRIES = 2
TASK_DIED = (
    "the Ray task decoding this file died (a crash in the decoder, or its worker was "
    "killed, e.g. for lack of memory)"
)

class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached; ``str()`` is one line."""


class ClusterFailed(RuntimeError):
    """Ray itself failed during the run (not a bad file); ``str()`` is one line. The rows
    written so far are kept, and ``--resume`` continues."""


def _one_line(exc: BaseException) -> str:
    """The gist of a Ray error, whose text is a remote traceback: its last ``...Error:`` line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    causes = [ln for ln in lines if "Error: " in ln]
    gist = causes[-1] if causes else f"{type(exc).__name__}: {lines[0] if lines else ''}"
    hint = ""
    if "No module named" in gist:
        hint = " (install music2emotion[distributed] on every node of the cluster)"
    return f"the Ray cluster failed: {gist}{hint}"


def is_uri(path: str | os.PathLike[str]) -> bool:
    """``s3://bucket/key`` and the like; local paths (also on Windows, ``C:\\``) are not."""
    text = str(path)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


# --- object storage ---------------------------------------------------------------------


def expand_uris(uris: Iterable[str], extensions: frozenset[str] = SCAN_EXTENSIONS,
                skipped: Counter[str] | None = None) -> list[str]:
    """Audio files under object-storage URIs, like
    :func:`~music2emotion.audio.scan_audio_files` for local paths.

    Parameters
    ----------
    uris : iterable of str
        Files, or prefixes listed recursively (``s3://bucket/music/``).
    extensions : frozenset of str
        Suffixes to find under prefixes.
    skipped : collections.Counter, optional
        Where to count the objects under prefixes left out as not audio, by kind, as a local
        scan counts them (:func:`~music2emotion.audio.skipped_kind`; ``AudioScan.skipped``).

    Returns
    -------
    list of str
        URIs, sorted, each once; one named explicitly is kept, so that a missing one is
        reported.
    """
    from pyarrow import fs

    found: list[str] = []
    for uri in uris:
        filesystem, root = fs.FileSystem.from_uri(uri)
        scheme = uri.partition("://")[0]
        info = filesystem.get_file_info(root)
        if info.type != fs.FileType.Directory:
            found.append(uri)  # named explicitly: kept, so that a missing one is reported
            continue
        for entry in filesystem.get_file_info(fs.FileSelector(root, recursive=True)):
            if entry.type != fs.FileType.File:
                continue
            kind = skipped_kind(entry.base_name, extensions)
            if kind is None:
                found.append(f"{scheme}://{entry.path}")
            elif skipped is not None:
                skipped[kind] += 1
    return sorted(dict.fromkeys(found))


def _fetch(uri: str, folder: str) -> str:
    """Copy an object to a local file (the decoder needs a seekable file)."""
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        local = os.path.join(folder, "audio" + Path(path).suffix)
        with filesystem.open_input_stream(path) as src, open(local, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except (OSError, ValueError) as exc:
        raise AudioError(f"cannot read from object storage: {' '.join(str(exc).split())}") from exc
    return local


# --- stage 2: decode and features (Ray tasks) -------------------------------------------

# Row layout between the stages: window rows have ``index >= 0`` and their features; the
# one summary row per file has ``index == -1``, no features, and the file's totals.
_SUMMARY = -1


def _rows(path: str, index: list[int], start: list[float], end: list[float],
          features: list[bytes], windows: int = 0, duration: float = math.nan,
          silent: bool = False, damage: str = "", error: str = "") -> dict[str, list[Any]]:
    n = len(index)
    return {"path": [path] * n, "index": index, "start": start, "end": end,
            "features": features, "windows": [windows] * n, "duration": [duration] * n,
            "silent": [silent] * n, "damage": [damage] * n, "error": [error] * n}


def _file_rows(path: str, kind: str, settings: FeatureSettings, hop_seconds: float | None,
               rows_per_batch: int) -> Iterator[dict[str, list[Any]]]:
    """One file's window rows, ``rows_per_batch`` at a time, then its summary row. Never
    raises for a bad file: the error goes into the summary (the reason ``predict_file``
    gives)."""
    count = 0
    pending: dict[str, list[Any]] = {"index": [], "start": [], "end": [], "features": []}

    def flush() -> dict[str, list[Any]]:
        out = _rows(path, **{k: list(v) for k, v in pending.items()})
        for v in pending.values():
            v.clear()
        return out

    error = ""
    with tempfile.TemporaryDirectory(prefix="music2emotion-") as tmp:
        try:
            local = _fetch(path, tmp) if is_uri(path) else path
            meter = LevelMeter(stream_audio(local, settings.sample_rate))
            for w in iter_windows(meter, settings, hop_seconds):
                # pickled, since each model kind has its own set of named input arrays
                inputs = pickle.dumps(window_inputs(kind, w.samples, settings), protocol=5)
                pending["index"].append(count)
                pending["start"].append(w.start)
                pending["end"].append(w.end)
                pending["features"].append(inputs)
                count += 1
                if len(pending["index"]) >= rows_per_batch:
                    yield flush()
        except Exception as exc:  # a decoder or feature bug must not take other files down
            error = failure_reason(exc)
    if error:
        # windows already sent are dropped by the gatherer once it sees the error
        yield _rows(path, [_SUMMARY], [math.nan], [math.nan], [b""], error=error)
        return
    if pending["index"]:
        yield flush()
    yield _rows(path, [_SUMMARY], [math.nan], [math.nan], [b""], windows=count,
                duration=meter.samples / settings.sample_rate, silent=meter.silent, damage=meter.damage)


def _decode(batch: dict[str, np.ndarray], kind: str, settings: dict[str, Any],
            hop_seconds: float | None, rows_per_batch: int) -> Iterator[dict[str, list[Any]]]:
    s = FeatureSettings.from_dict(settings)
    keep_freed_memory()
    for path in batch["path"]:
        yield from _file_rows(str(path), kind, s, hop_seconds, rows_per_batch)


# --- stage 3: the model (an actor pool) -------------------------------------------------


class _ModelActor:
    """One ONNX Runtime session per actor, run on batches of window rows."""

    def __init__(self, model: list[Any], settings: dict[str, Any]):
        import ray

        # The model travels as bytes through the object store, so the cluster's nodes need
        # no copy of the file. (Inside a list: Ray leaves nested references unresolved,
        # which keeps the constructor's arguments small enough to restart the actor.)
        self._dir = tempfile.TemporaryDirectory(prefix="music2emotion-model-")
        path = os.path.join(self._dir.name, "model.onnx")
        Path(path).write_bytes(ray.get(model[0]))
        self.model = EmotionModel(path, threads=1)
        keep_freed_memory()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = batch.pop("features")
        windows = np.flatnonzero(batch["index"] >= 0)
        outputs = self.model.run_windows([pickle.loads(features[i]) for i in windows]) if windows.size else {}
        for name, width in self.model.window_widths.items():
            values = np.full((len(features), width), np.nan)  # NaN: a summary row
            if name in outputs:
                values[windows] = outputs[name]
            for j in range(width):
                batch[_column(name, j)] = values[:, j]
        return batch


def _column(output: str, j: int) -> str:
    """The batch column of a graph output's ``j``-th value."""
    return f"{output}:{j}"


# --- stage 4: gathering files (this process) --------------------------------------------


@dataclass
class _Partial:
    # the _Gatherer's columns of each window, by its index
    spans: dict[int, tuple[float, ...]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None


class _Gatherer:
    """Collects window values per file and hands back each file's :class:`Prediction` once
    its summary and all its windows have arrived. A window that arrives twice (a retried
    task) counts once. ``window_widths`` and ``conventions`` are the model's (its
    :class:`EmotionModel` attributes): what each window's row carries (the values, and what
    the encoder heard), and how the values read."""

    def __init__(self, timeline: bool = False, window_widths: Mapping[str, int] | None = None,
                 conventions: Mapping[str, Convention] = PLAIN) -> None:
        self.partial: dict[str, _Partial] = {}
        self.finished: set[str] = set()
        self.timeline, self.conventions = timeline, conventions
        self.widths = dict(window_widths or {OUTPUT: output_width(OUTPUT)})
        self.columns = ("start", "end", *(_column(n, j) for n, w in self.widths.items() for j in range(w)))

    def add(self, batch: dict[str, np.ndarray]) -> list[Prediction]:
        touched = []
        for i in range(len(batch["path"])):
            path = str(batch["path"][i])
            if path in self.finished:
                continue
            part = self.partial.setdefault(path, _Partial())
            index = int(batch["index"][i])
            if index == _SUMMARY:
                part.summary = {k: batch[k][i] for k in ("windows", "duration", "silent", "damage", "error")}
            else:
                part.spans[index] = tuple(float(batch[c][i]) for c in self.columns)
            touched.append(path)
        done = []
        for path in dict.fromkeys(touched):
            pred = self._complete(path)
            if pred is not None:
                done.append(pred)
        return done

    def _complete(self, path: str) -> Prediction | None:
        part = self.partial[path]
        s = part.summary
        if s is None:
            return None
        if s["error"]:
            pred = Prediction(path, error=str(s["error"]))
        elif len(part.spans) < int(s["windows"]):
            return None
        else:
            windows = np.array([part.spans[i] for i in sorted(part.spans)]).reshape(-1, len(self.columns))
            bounds = np.cumsum([2, *self.widths.values()])
            outputs = {name: windows[:, a:b] for name, a, b in zip(self.widths, bounds[:-1], bounds[1:])}
            pred = song_prediction(path, [(float(a), float(b)) for a, b in windows[:, :2]], outputs,
                                   conventions=self.conventions, duration=float(s["duration"]),
                                   silent=bool(s["silent"]), damage=str(s["damage"]),
                                   timeline=self.timeline)
        del self.partial[path]
        self.finished.add(path)
        return pred


# --- running ----------------------------------------------------------------------------


def _quiet_ray() -> None:
    """Keep Ray Data's progress bars, banners and tracebacks off the console: the CLI shows
    its own bar and one line per failed file. Ray Data still logs everything to
    ``ray-data.log`` in the Ray session's log folder."""
    import ray.data

    logging.getLogger("ray").setLevel(logging.WARNING)
    for handler in logging.getLogger("ray.data").handlers:
        if type(handler) is not logging.FileHandler and isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.CRITICAL)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_auto_log_stats = False
    ctx.print_on_execution_start = False
    # a dead task must not stop a catalogue run: its files get a second pass instead
    ctx.max_errored_blocks = -1


@contextmanager
def _quiet_console() -> Iterator[None]:
    """Keep what Ray prints on its own off the console for the duration of a run.

    Ray's C++ core writes notices straight to file descriptor 2 (one about actor restarts
    for every actor pool, ray-project/ray#53727); its driver log file keeps them, so fd 2
    goes to /dev/null while Python's ``sys.stderr`` stays where it was. Ray's Python side
    prints the cluster's error notices (a worker that died, and its retries) with ``print``
    to ``sys.stdout``; each affected file gets its own error line and the raylet's log
    keeps the notice, so ``sys.stdout`` goes to /dev/null too (a run writes its rows to a
    file, never to stdout). Ray Data's advisory UserWarnings are dropped.
    """
    with open(os.devnull, "w", encoding="utf-8") as null, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\.")
        old_stdout, sys.stdout = sys.stdout, null
        try:
            with quiet_decoder_messages():  # and Ray's C++ notices, on the same descriptor
                yield
        finally:
            sys.stdout = old_stdout


def _check_reachable(address: str) -> None:
    """Fail fast on a ``host:port`` nobody listens on: ``ray.init`` would retry for minutes."""
    host, sep, port = address.partition("://")[2 if "://" in address else 0].rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", a bare host, ...: Ray itself answers those quickly
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from exc


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to a Ray cluster, or start a local instance.

    Parameters
    ----------
    address : str, optional
        ``auto`` (the cluster this node belongs to) or ``HOST:PORT`` of its head node;
        ``None`` starts a private instance here, without dashboard or usage statistics.
    num_cpus : int, optional
        CPUs of an instance started here (default: all).

    Returns
    -------
    bool
        Whether it connected now (so the caller shuts it down); ``False`` when this process
        was already connected.

    Raises
    ------
    RayUnavailable
        Ray is not installed, the address is a Ray Client one, or nobody answers there.
    """
    if address and address.startswith("ray://"):
        # Ray Data runs its scheduler in the driver, which Ray Client does not provide
        # (2.60 fails with "'Worker' object has no attribute 'core_worker'")
        raise RayUnavailable(
            "the Ray engine cannot run through Ray Client (ray://); run predict on a node of "
            "the cluster with --ray-address auto (ssh, ray exec, or ray job submit)"
        )
    if address:
        _check_reachable(address)
    try:
        import ray
        import ray.data  # noqa: F401  (the 'data' part of the extra)
    except ImportError as exc:
        raise RayUnavailable(
            f"the Ray engine needs the 'distributed' extra: pip install 'music2emotion[distributed]' ({exc})"
        ) from exc
    if ray.is_initialized():
        _quiet_ray()
        return False
    # Ray warns whenever it turns token authentication on (for a new local instance, or
    # because a token file exists): a notice that things are as they should be.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR)
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        # The cluster's workers run this process's music2emotion, shipped with the job, so
        # the rows cannot depend on which version each node has installed (its
        # dependencies must be installed there all the same).
        options.update(address=address,
                       runtime_env={"py_modules": [str(Path(__file__).resolve().parent)]})
    else:
        # a private instance on the user's machine sends nothing home (Ray's usage
        # statistics), unless the user's own setting says otherwise
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        options.update(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
    try:
        ray.init(**options)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise RayUnavailable(f"cannot start or reach {where}: {' '.join(str(exc).split())}") from exc
    _quiet_ray()
    return True


def _pipeline(paths: Sequence[str], model_ref: Any, kind: str, settings: FeatureSettings,
              hop_seconds: float | None, batch_size: int, blocks: int) -> Iterator[dict[str, np.ndarray]]:
    import ray
    import ray.data

    s = settings.to_dict()
    ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
    with warnings.catch_warnings():
        # Ray Data retries a task whose worker died without limit, so one file that crashes
        # the decoder would stall the run forever; 2.60 takes a limit only through the
        # deprecated ``**ray_remote_args``.
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(_decode, batch_size=1, num_cpus=1, max_retries=TASK_RETRIES,
                            fn_kwargs={"kind": kind, "settings": s, "hop_seconds": hop_seconds,
                                       "rows_per_batch": batch_size})
    # For a CNN or the fast model the ONNX session is a tenth or less of a window's work
    # (bench/model_speed.py, one core: 2 ms of session against 33 ms of decoding and
    # features per 10 s clip for the CNN, under 1 ms against 108 ms for the fast model), so one
    # actor keeps up with many decoding CPUs, and reserving a CPU for it would leave a core
    # of a small machine idle. The accurate model's taggers are about two-thirds of its
    # work (239 of 360 ms), so with it the actor pool grows while its actors are all busy
    # and they share the cores with the decoding tasks; this also follows a cluster that
    # autoscales. (Differing CPU reservations also keep Ray from fusing the two stages.)
    ds = ds.map_batches(_ModelActor, batch_size=batch_size, num_cpus=0,
                        batch_format="numpy",
                        fn_constructor_kwargs={"model": [model_ref], "settings": s},
                        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=None))
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")


def predict(
    paths: Sequence[str | os.PathLike[str]],
    *,
    model: EmotionModel,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    timeline: bool = False,
) -> Iterator[Prediction]:
    """Predict files on the Ray cluster this process is connected to (see :func:`running`).

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Local paths every node can read, or object-storage URIs.
    model : EmotionModel
        The model; its file travels to the actors through the object store.
    window_seconds, hop_seconds, batch_size, timeline
        As for :meth:`music2emotion.EmotionModel.predict_file`.

    Returns
    -------
    iterator of Prediction
        One per path, in the order files finish.

    Raises
    ------
    OptionError
        An option out of range: raised here, before anything runs (a ``ValueError``).
    """
    check_options(window_seconds=window_seconds, hop_seconds=hop_seconds, batch_size=batch_size)
    settings = model.window_settings(window_seconds)
    return _predict([str(p) for p in paths], model, settings, hop_seconds, batch_size, timeline)


def _predict(names: list[str], model: EmotionModel, settings: FeatureSettings,
             hop_seconds: float | None, batch_size: int, timeline: bool) -> Iterator[Prediction]:
    import ray

    if not names:
        return
    model_ref = ray.put(model.path.read_bytes())
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    gatherer = _Gatherer(timeline, model.window_widths, model.conventions)
    todo = names
    # a first pass a few files a task; the files of tasks that died get a second pass one
    # file a task, so that a file that kills its worker takes only itself down
    for blocks in (max(cpus * BLOCKS_PER_CPU, math.ceil(len(todo) / FILES_PER_BLOCK)), None):
        n_blocks = min(len(todo), blocks or len(todo))
        for batch in _pipeline(todo, model_ref, model.kind, settings, hop_seconds, batch_size, n_blocks):
            yield from gatherer.add(batch)
        todo = [p for p in todo if p not in gatherer.finished]
        if not todo:
            return
    if not gatherer.finished and len(todo) > 1:
        raise RuntimeError(
            "every Ray task failed (is music2emotion installed on every node?); "
            "the reasons are in ray-data.log in the Ray session's log folder on the head node "
            "(/tmp/ray/session_latest/logs/ray-data)"
        )
    for path in todo:
        yield Prediction(path, error=TASK_DIED)


@contextmanager
def running(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Run the block connected to a Ray cluster, quietly.

    Connects (or starts a local instance, see :func:`init_ray`) and keeps Ray's own console
    output away (see :func:`_quiet_console`); an instance started here is stopped at the
    end. Ray failing inside the block is raised as :class:`ClusterFailed`, in one line;
    ``OSError`` (the output cannot be written) passes as it is.

    Parameters
    ----------
    address : str, optional
        ``auto`` or ``HOST:PORT`` of a cluster's head node; default: start Ray here.
    num_cpus : int, optional
        CPUs of an instance started here (default: all).

    Raises
    ------
    RayUnavailable
        Ray is not installed, or the cluster cannot be reached.
    ClusterFailed
        Ray failed during the run.
    """
    with _quiet_console():
        started = init_ray(address, num_cpus)
        try:
            yield
        except (OSError, ClusterFailed, RayUnavailable):
            raise  # the output cannot be written, or already one line
        except Exception as exc:  # Ray's errors carry remote tracebacks: one line instead
            raise ClusterFailed(_one_line(exc)) from exc
        finally:
            if started:
                import ray

                ray.shutdown()
