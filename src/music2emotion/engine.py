"""The local engine: many files predicted in parallel worker processes.

:func:`predict_files` spreads files over spawned worker processes, each holding its own
:class:`~music2emotion.model.EmotionModel`; :func:`run_in_processes` is the pool under it,
built so that a worker that dies (a decoder crash, the out-of-memory killer) costs only the
file it was working on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as wait_for_ready
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

from .audio import quiet_decoder_messages
from .model import EmotionModel
from .modelfile import resolve_model
from .prediction import Prediction
from .windows import DEFAULT_BATCH, check_options

WORKER_DIED = (
    "the worker process died while predicting this file "
    "(a crash in the decoder, or killed, e.g. for lack of memory)"
)

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

    At most a few items per worker are in flight, so memory does not grow with
    ``len(items)``. When a worker dies, the items that were in flight are retried one at a
    time in a fresh single-worker pool, so only an item that kills its worker on its own
    gets ``failed(item, reason)``; the other items go on in a fresh pool.

    Parameters
    ----------
    items : sequence
        The work.
    fn : callable
        ``fn(item) -> result``; an importable module-level function (spawn pickles it by name).
    jobs : int
        Worker processes.
    failed : callable
        ``failed(item, reason) -> result`` for an item whose worker died, or whose ``fn`` raised.
    initializer : callable, optional
        Run once in each worker (importable, like ``fn``), with ``initargs``.
    initargs : tuple
        Arguments of ``initializer``.
    ordered : bool
        Yield in input order; with ``False``, as items finish.

    Yields
    ------
    object
        One result per item.

    Raises
    ------
    WorkersKeepDying
        Workers die before finishing any item: the setup, not one item, is broken.
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
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    timeline: bool = False,
    jobs: int | None = None,
    ordered: bool = True,
) -> Iterator[Prediction]:
    """Predict many files in parallel, one :class:`~music2emotion.prediction.Prediction` each.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Audio files.
    model : EmotionModel, str or os.PathLike, optional
        A loaded model, a bundled model's name or a model file (default: the bundled
        ``accurate``); by keyword, or second by position. Each worker process loads its own
        copy from the file.
    window_seconds, hop_seconds, batch_size, timeline
        As for :meth:`music2emotion.EmotionModel.predict_file`.
    jobs : int, optional
        Worker processes, one core each (default: every core this process may use);
        ``jobs=1`` runs everything in this process, on one core.
    ordered : bool
        Yield in input order; with ``False``, as each file is done (the biggest files
        then start first, so that no worker is left with a long file at the end).

    Returns
    -------
    iterator of Prediction
        One per path. A file that fails, or whose worker dies, gets ``error`` set.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing or unloadable model, or an option out of range: raised here, before any
        file is read.
    """
    check_options(window_seconds=window_seconds, hop_seconds=hop_seconds, batch_size=batch_size,
                  jobs=jobs)
    options = {"window_seconds": window_seconds, "hop_seconds": hop_seconds,
               "batch_size": batch_size, "timeline": timeline}
    jobs = max(1, min(jobs or available_cores(), len(paths)))
    if isinstance(model, EmotionModel):
        loaded = model
    else:
        # here, once, rather than failing in every worker
        loaded = EmotionModel(resolve_model(model), threads=1)
    loaded.window_settings(window_seconds)
    if jobs == 1:
        return _in_this_process(loaded, paths, options)
    tasks = [(str(p), options) for p in paths]
    if not ordered:
        # longest first (file size stands in for length)
        tasks.sort(key=lambda t: _size(t[0]), reverse=True)
    return run_in_processes(tasks, _predict_in_worker, jobs, _failed_prediction,
                            _init_worker, (str(loaded.path),), ordered)


def _in_this_process(model: EmotionModel, paths: Sequence[str | os.PathLike[str]],
                     options: dict[str, Any]) -> Iterator[Prediction]:
    with threadpool_limits(1):
        for p in paths:
            yield model.predict_file(p, **options)
