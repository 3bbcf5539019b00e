"""The local engine: many files predicted in parallel worker processes.

:func:`predict_files` spreads files over spawned worker processes, each holding its own
:class:`~music2emotion.model.EmotionModel`. :class:`WorkerPool` is the pool under it (and
under the server): long-lived worker processes, each on one item at a time, so that a
worker that dies (a decoder crash, the out-of-memory killer) costs exactly the item it was
working on, and an item can be cancelled while it runs. :func:`run_in_processes` runs a
list of items through one.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from itertools import count
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_ready
from typing import Any, Generic, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from .audio import declared_seconds, quiet_decoder_messages
from .model import EmotionModel
from .modelfile import resolve_model
from .prediction import Prediction, failure_reason
from .windows import DEFAULT_BATCH, check_options

WORKER_DIED = (
    "the worker process died while predicting this file "
    "(a crash in the decoder, or killed, e.g. for lack of memory)"
)
# A cancelled item stops at the next Python instruction its worker runs: the signal's
# handler raises there. The longest stretch of C code in a prediction is one ONNX Runtime
# call or one block of decoding, well under a second; a worker still busy after this long
# is stuck and is killed (and replaced).
CANCEL_SIGNAL = signal.SIGUSR1
CANCEL_GRACE = 3.0
# Starts in a row that fail (the initializer raised or the process died) before a pool
# gives up: a model that cannot load fails every time, not now and then. The same count of
# workers dying on their items in a row, before any item succeeded, means the machine (a
# broken native library, a corrupt cache of compiled code, no memory) and not the files:
# a pool stops there instead of failing every file for the same cause.
START_ATTEMPTS = 3
# What a worker's death by each signal most likely means, for the one line that reports it.
_SIGNAL_CAUSES = {
    signal.SIGKILL: "most likely out of memory (the kernel's OOM killer), or killed from outside",
    signal.SIGSEGV: "a broken install or native library (a corrupt cache of compiled code, mismatched "
                    "numpy/onnxruntime/libsndfile builds), not the files",
    signal.SIGBUS: "a broken install or native library, or a full or vanished disk under a mapped file",
    signal.SIGILL: "a native library built for another CPU",
    signal.SIGABRT: "a native library aborted (a broken install, or out of memory)",
}
# A spawned worker imports the main module before it runs anything else; a script that
# starts a pool at its top level, outside ``if __name__ == "__main__":``, therefore starts
# one again in every worker, where multiprocessing refuses it. The worker cannot tell its
# parent through the pool's pipe (that arrives only after the import), so it exits with
# this code, and the parent names the fix.
MAIN_REIMPORTED_EXIT = 86
MAIN_REIMPORTED = ("worker processes cannot start: each one re-ran this script's top-level code, which "
                   "starts workers again (spawned processes import the main module); put the script's "
                   "code under `if __name__ == \"__main__\":`")

T = TypeVar("T")
R = TypeVar("R")

# Each worker process holds its own single-threaded session and single-threaded BLAS: the
# work is decoding and features, one process per core scales it, and threads inside each
# process would only fight over the same cores (OpenBLAS spinning on a busy 2-core machine
# made the mel projection 3x slower).
_worker_model: EmotionModel | None = None


class WorkersKeepDying(RuntimeError):
    """Worker processes die before finishing any item: the setup, not one input, is broken."""


def _importing_main() -> bool:
    """Whether this process is a spawned worker still importing its parent's main module
    (multiprocessing's own check for starting a process then, which it refuses, reads the
    same flag)."""
    return bool(getattr(mp.current_process(), "_inheriting", False))


class WorkerDied(RuntimeError):
    """The worker process died while working on this item; ``signum`` is the signal that
    ended it (``None``: it exited, or the reason is unknown)."""

    def __init__(self, message: str = WORKER_DIED, signum: int | None = None):
        super().__init__(message)
        self.signum = signum


def signal_name(signum: int) -> str:
    """``SIGSEGV`` for 11; ``signal 64`` for a number without a name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def keeps_dying_message(signum: int | None) -> str:
    """The one line for workers that died on :data:`START_ATTEMPTS` items in a row before
    any item succeeded: the signal that ended the last, and what it likely means."""
    if signum is None:
        return ("worker processes die before finishing any file; "
                "check that the model loads and memory suffices")
    cause = _SIGNAL_CAUSES.get(signum, "a crash in a native library, or a signal from outside")
    return (f"worker processes keep dying by {signal_name(signum)} ({START_ATTEMPTS} in a row, before "
            f"any file finished): {cause}")


class WorkerError(RuntimeError):
    """The item's function raised in the worker; ``str`` is ``"TypeName: message"``."""


class Cancelled(RuntimeError):
    """The item was cancelled (:meth:`WorkerPool.cancel`, or the pool closed first)."""


class _Stop(BaseException):
    """Raised in a worker by the cancel signal. Not an ``Exception``, so that the ``except
    Exception`` that turns a file's failure into its error does not catch it."""


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


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


# glibc's mallopt parameters, and the sizes this package's processes set them to: blocks up
# to MMAP_THRESHOLD come from the heap, and up to TRIM_THRESHOLD of freed heap stays there.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD, TRIM_THRESHOLD = 16 * 2**20, 64 * 2**20


@functools.cache  # once per process: Ray's decode tasks call it for every file
def keep_freed_memory() -> None:
    """Let this process's allocator keep freed blocks for the next window instead of handing
    each back to the kernel.

    glibc maps every block above 128 kB afresh and unmaps it when it is freed, so each
    window's arrays (a block of audio, the STFT's frames) cost page faults every time:
    predicting 30 files of 30 s in one process took 0.52-0.66 s of kernel time and 270,000-
    356,000 page faults, against 0.03 s and 3,900 with these settings (8-15 % less wall time,
    5 MB more peak memory). Called in the package's own processes (the command line, worker
    processes, Ray actors), never on import: a program using the library keeps its allocator
    as it set it. Does nothing where the C library is not glibc; a forked child keeps its
    parent's settings.
    """
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def _worker_main(conn: Connection, cancel_id: Any, fn: Callable[[Any], Any],
                 initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """A worker process: run the initializer, then ``fn`` on each item the parent sends,
    one at a time, answering ``(kind, task id, payload)``."""
    _exit_with_parent()
    # Ctrl-C goes to the whole process group; the parent alone decides how to stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    current = -1

    def stop(signum: int, frame: Any) -> None:
        # only the item the parent meant: a late signal must not stop the next one
        if current >= 0 and cancel_id.value == current:
            raise _Stop

    signal.signal(CANCEL_SIGNAL, stop)
    threadpool_limits(1)
    keep_freed_memory()
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # reported, then this process ends
        conn.send(("failed", -1, _one_line(exc)))
        return
    conn.send(("ready", -1, None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if task is None:
            return
        task_id, item = task
        try:
            current = task_id
            try:
                if cancel_id.value == task_id:  # cancelled before it got here
                    raise _Stop
                reply = ("done", task_id, fn(item))
            finally:
                current = -1
        except _Stop:
            reply = ("cancelled", task_id, None)
        except Exception as exc:
            reply = ("error", task_id, _one_line(exc))
        try:
            conn.send(reply)
        except Exception as exc:  # a result that cannot be pickled
            conn.send(("error", task_id, _one_line(exc)))


class _Worker:
    """One worker process of a pool, and the thread of this process that feeds it."""

    def __init__(self, pool: WorkerPool[Any, Any], index: int):
        self.pool = pool
        self.cancel_id = pool._ctx.Value("q", -1, lock=False)
        self.proc: Any = None
        self.conn: Connection | None = None
        self.started = False
        self.task: tuple[int, Future[Any]] | None = None
        self.cancelled = False
        self.kill_at: float | None = None
        self.start_signal: int | None = None  # what ended the last start that failed
        self.main_reimported = False  # the last start failed in the script's top-level code
        self.thread = threading.Thread(target=self._run, name=f"{pool.name}-{index}", daemon=True)

    def _start(self) -> str:
        """Start the process and wait for its initializer; ``""`` when it is ready, else why not."""
        pool = self.pool
        parent, child = pool._ctx.Pipe()
        proc = pool._ctx.Process(target=_worker_main, name=self.thread.name, daemon=True,
                                 args=(child, self.cancel_id, pool._fn, pool._init, pool._initargs))
        with pool._cond:
            if pool._closed:
                return "the pool is closed"
            try:
                proc.start()
            except Exception as exc:  # no processes left, no memory, a main module that spawns
                parent.close()
                child.close()
                return _one_line(exc)
            self.proc, self.conn = proc, parent
        child.close()  # so that the parent end sees end-of-file when the process dies
        try:
            kind, _, payload = parent.recv()
        except (EOFError, OSError):
            code = self._reap()
            self.start_signal = -code if code is not None and code < 0 else None
            self.main_reimported = code == MAIN_REIMPORTED_EXIT
            kind, payload = "failed", (f"the process died by {signal_name(-code)}" if self.start_signal
                                       else f"the process exited with code {code}")
        except Exception as exc:  # its initializer's error could not be unpickled
            kind, payload = "failed", _one_line(exc)
        if kind == "ready":
            return ""
        self._reap()
        return payload

    def _reap(self) -> int | None:
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        if conn is not None:
            conn.close()
        if proc is None:
            return None
        proc.join(5)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
        return proc.exitcode

    def interrupt(self) -> None:
        """Stop the running item (call under the pool's lock)."""
        if self.task is None or self.cancelled:
            return
        self.cancelled = True
        self.cancel_id.value = self.task[0]
        self.kill_at = time.monotonic() + CANCEL_GRACE
        try:
            os.kill(self.proc.pid, CANCEL_SIGNAL)
        except (ProcessLookupError, AttributeError):  # already gone: end-of-file follows
            pass

    def _exchange(self, task_id: int, item: Any) -> tuple[str, Any]:
        """Send one item and wait for its answer; ``("died", None)`` if the process dies."""
        assert self.conn is not None
        try:
            self.conn.send((task_id, item))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return "died", None
        except Exception as exc:  # the item cannot be pickled: its own failure
            return "error", _one_line(exc)
        while not self.conn.poll(0.2):
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                self.proc.kill()  # stuck in C code past the grace: end-of-file follows
                self.kill_at = None
        try:
            kind, _, payload = self.conn.recv()
        except (EOFError, OSError):
            return "died", None
        return kind, payload

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # a bug here must not leave the pool's callers waiting
            self.pool._break(WorkersKeepDying(f"a worker's feeding thread failed: {_one_line(exc)}"))
            raise
        finally:
            self._stop()

    def _serve(self) -> None:
        pool = self.pool
        failures = 0
        while True:
            if self.proc is None:
                why = self._start()
                if pool._closed:
                    return
                if why and self.main_reimported:  # the same on every try
                    pool._break(WorkersKeepDying(MAIN_REIMPORTED))
                    return
                if why:
                    failures += 1
                    if failures >= START_ATTEMPTS:
                        cause = _SIGNAL_CAUSES.get(self.start_signal or 0, "check that the model "
                                                   "loads and memory suffices")
                        pool._break(WorkersKeepDying(f"worker processes fail to start ({why}); {cause}"))
                        return
                    self.start_signal = None
                    continue
                failures = 0
                with pool._cond:
                    self.started = True
                    pool._cond.notify_all()
            job = pool._take(self)
            if job is None:
                return
            task_id, fut, item = job
            kind, payload = self._exchange(task_id, item)
            with pool._cond:
                cancelled = self.cancelled
                self.task, self.cancelled, self.kill_at = None, False, None
            if kind == "died":
                code = self._reap()
                if cancelled or pool._closed:
                    fut.set_exception(Cancelled())
                else:
                    fut.set_exception(pool._item_died(-code if code is not None and code < 0 else None))
            elif kind == "done":
                pool._item_survived(succeeded=True)
                fut.set_result(payload)
            elif kind == "cancelled":
                fut.set_exception(Cancelled())
            else:
                pool._item_survived(succeeded=False)
                fut.set_exception(WorkerError(payload))

    def _stop(self) -> None:
        if self.conn is not None and self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
        self._reap()
        if self.task is not None and not self.task[1].done():
            self.task[1].set_exception(Cancelled())
        self.task = None


class WorkerPool(Generic[T, R]):
    """Long-lived spawned worker processes, each working on one item at a time.

    Items wait in one queue, first in first out. A worker that dies fails only the item it
    was on (:class:`WorkerDied`) and is replaced; one that cannot start ``START_ATTEMPTS``
    times in a row breaks the pool (:class:`WorkersKeepDying` for every item). Workers that
    die on ``START_ATTEMPTS`` items in a row before any item succeeded set :attr:`crashing`
    (one line naming the signal and its likely causes) and, with ``stop_when_crashing``,
    break the pool the same way. Spawned, not forked: the caller may hold threads or locks.
    Workers end with their parent. A spawned worker imports the main module first; one that
    would start a pool while doing so (a script without ``if __name__ == "__main__":``)
    exits at once, and the parent's pool breaks with :data:`MAIN_REIMPORTED`, the fix in
    one line.

    Parameters
    ----------
    fn : callable
        ``fn(item) -> result``, run in a worker; an importable module-level function (spawn
        pickles it by name).
    workers : int
        Worker processes.
    initializer : callable, optional
        Run once in each worker (importable, like ``fn``), with ``initargs``.
    initargs : tuple
        Arguments of ``initializer``.
    name : str
        Names the processes and threads (seen in ``ps`` and tracebacks).
    stop_when_crashing : bool
        Break the pool when workers keep dying on their items (a server, where one client
        could send crashing files, keeps going and reports :attr:`crashing` instead).
    """

    def __init__(self, fn: Callable[[T], R], workers: int, *,
                 initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = (),
                 name: str = "music2emotion-worker", stop_when_crashing: bool = True):
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        if _importing_main():
            # a worker re-running an unguarded script: leave quietly, the parent says why.
            # At once, from whatever thread: a server starting its pool in a thread of its
            # own caught SystemExit and went on to fail in a way the parent cannot tell.
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
            os._exit(MAIN_REIMPORTED_EXIT)
        self._ctx = mp.get_context("spawn")
        self._fn, self._init, self._initargs, self.name = fn, initializer, initargs, name
        self._cond = threading.Condition()
        self._queue: deque[tuple[Future[R], T]] = deque()
        self._ids = count()
        self._closed = False
        self._broken: WorkersKeepDying | None = None
        self._stop_when_crashing = stop_when_crashing
        self._succeeded = False
        self._died_in_a_row = 0
        self.crashing: str | None = None
        """Set when workers died on ``START_ATTEMPTS`` items in a row before any succeeded:
        the one line saying so; cleared when an item succeeds."""
        self._workers = [_Worker(self, i) for i in range(workers)]
        for w in self._workers:
            w.thread.start()

    @property
    def size(self) -> int:
        """Worker processes."""
        return len(self._workers)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every worker has started once (its initializer done).

        Raises
        ------
        WorkersKeepDying
            Workers fail to start.
        TimeoutError
            Not all started within ``timeout`` seconds.
        """
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._broken or self._closed or all(w.started for w in self._workers),
                timeout)
            if self._broken is not None:
                raise self._broken
            if not done:
                raise TimeoutError(f"the worker processes did not start within {timeout:g} s")

    def submit(self, item: T) -> Future[R]:
        """Queue ``item``; the future gets ``fn(item)``, or :class:`WorkerDied`,
        :class:`WorkerError`, :class:`Cancelled` or :class:`WorkersKeepDying`."""
        fut: Future[R] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the pool is closed")
            if self._broken is not None:
                fut.set_exception(self._broken)
                return fut
            self._queue.append((fut, item))
            self._cond.notify()
        return fut

    def cancel(self, fut: Future[R]) -> None:
        """Drop a queued item, or stop a running one: its worker stops at once (killed and
        replaced if it has not stopped ``CANCEL_GRACE`` seconds later)."""
        with self._cond:
            if fut.cancel():
                return
            for w in self._workers:
                if w.task is not None and w.task[1] is fut:
                    w.interrupt()

    def pids(self) -> list[int]:
        """The worker processes running now."""
        with self._cond:
            return [w.proc.pid for w in self._workers if w.proc is not None and w.proc.pid]

    def close(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop the pool: queued items are cancelled; running ones finish first, or, with
        ``kill``, are cancelled and their workers killed at once."""
        with self._cond:
            self._closed = True
            while self._queue:
                self._queue.popleft()[0].cancel()
            self._cond.notify_all()
            if kill:
                for w in self._workers:
                    if w.proc is not None:
                        w.proc.kill()
        deadline = time.monotonic() + timeout
        for w in self._workers:
            w.thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> WorkerPool[T, R]:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(kill=exc_type is not None)

    def _take(self, worker: _Worker) -> tuple[int, Future[R], T] | None:
        with self._cond:
            while True:
                if self._broken is not None:
                    return None
                while self._queue:
                    fut, item = self._queue.popleft()
                    if fut.set_running_or_notify_cancel():
                        task_id = next(self._ids)
                        worker.task = (task_id, fut)
                        return task_id, fut, item
                if self._closed:
                    return None
                self._cond.wait()

    def _item_died(self, signum: int | None) -> Exception:
        """A worker died on its item (``signum``: by that signal): the exception for the item."""
        with self._cond:
            if not self._succeeded:
                self._died_in_a_row += 1
            if self._succeeded or self._died_in_a_row < START_ATTEMPTS:
                return WorkerDied(WORKER_DIED, signum)
            self.crashing = keeps_dying_message(signum)
        if not self._stop_when_crashing:
            return WorkerDied(WORKER_DIED, signum)
        exc = WorkersKeepDying(self.crashing)
        self._break(exc)
        return exc

    def _item_survived(self, succeeded: bool) -> None:
        with self._cond:
            self._died_in_a_row = 0
            if succeeded:
                self._succeeded, self.crashing = True, None

    def _break(self, exc: WorkersKeepDying) -> None:
        with self._cond:
            self._broken = exc
            while self._queue:
                fut, _ = self._queue.popleft()
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(exc)
            self._cond.notify_all()


def init_model_worker(model_path: str, warm: bool = False) -> None:
    """A :class:`WorkerPool` initializer: load the model in the worker; with ``warm``, also
    predict a moment of noise, so that the first real file does not pay for the lazy
    imports and compiled kernels the first prediction loads (measured: 3.5 s more for the
    first 30 s file than for the second)."""
    global _worker_model
    quiet_decoder_messages().__enter__()  # for the life of the worker
    _worker_model = EmotionModel(model_path, threads=1)
    if warm:
        rate = _worker_model.settings.sample_rate
        noise = np.random.default_rng(0).standard_normal(int(rate * _worker_model.settings.window_seconds))
        _worker_model.predict_audio(0.1 * noise.astype(np.float32), rate)


def predict_in_worker(task: tuple[str, dict[str, Any]]) -> Prediction:
    """A :class:`WorkerPool` function: ``(path, predict_file options)`` -> its Prediction."""
    assert _worker_model is not None
    path, options = task
    return _worker_model.predict_file(path, **options)


def init_quiet_worker() -> None:
    """A :class:`WorkerPool` initializer for workers that decode without a model."""
    quiet_decoder_messages().__enter__()  # for the life of the worker


def read_header_in_worker(path: str) -> tuple[float | None, str]:
    """A :class:`WorkerPool` function: the seconds ``path``'s header declares (``None``
    when it does not say) and ``""``, or ``None`` and the one-line reason it is not audio,
    worded as a prediction of it would be."""
    try:
        return declared_seconds(path), ""
    except Exception as exc:
        return None, failure_reason(exc)


def run_in_processes(
    items: Sequence[T],
    fn: Callable[[T], R],
    jobs: int,
    failed: Callable[[T, str], R],
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    ordered: bool = True,
) -> Iterator[R]:
    """Yield ``fn(item)`` for every item, computed in ``jobs`` processes of a
    :class:`WorkerPool`.

    At most a few items per worker are queued, so memory does not grow with
    ``len(items)``. An item whose worker dies gets ``failed(item, reason)``; the others go
    on in a fresh worker. Deaths in a row before any item succeeded are held back: if
    workers keep dying (:class:`WorkerPool`), the run stops with one error rather than a
    row blaming each file.

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
        Workers cannot start, or die on ``START_ATTEMPTS`` items in a row before any item
        succeeded: the setup, not one item, is broken (the message names the signal).
    """
    window = 2 * jobs  # one running and one queued per worker keeps every worker busy
    todo: deque[int] = deque(range(len(items)))
    inflight: dict[Future[R], int] = {}
    buffered: dict[int, R] = {}
    next_out = 0
    succeeded = False
    held: list[tuple[int, R]] = []  # items whose worker died before any item succeeded

    def emit(i: int, r: R) -> Iterator[R]:
        nonlocal next_out
        if not ordered:
            yield r
            return
        buffered[i] = r
        while next_out in buffered:
            yield buffered.pop(next_out)
            next_out += 1

    pool: WorkerPool[T, R] = WorkerPool(fn, jobs, initializer=initializer, initargs=initargs)
    completed = False
    try:
        while todo or inflight:
            while todo and len(inflight) < window and (
                not ordered or len(buffered) < 4 * window or not inflight
            ):
                i = todo.popleft()
                inflight[pool.submit(items[i])] = i
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=inflight.__getitem__):
                i = inflight.pop(fut)
                exc = fut.exception()
                if exc is None:
                    r = fut.result()
                    succeeded = True
                elif isinstance(exc, WorkersKeepDying):
                    raise exc
                elif isinstance(exc, WorkerDied):
                    r = failed(items[i], WORKER_DIED)
                    if not succeeded:
                        held.append((i, r))
                        continue
                else:  # fn itself raised: reported for this item only
                    r = failed(items[i], f"unexpected {exc}")
                # anything but a death ends the streak the pool counts: what it held is news
                for j, h in held:
                    yield from emit(j, h)
                held.clear()
                yield from emit(i, r)
        for j, h in held:  # every item failed, too few of them to tell
            yield from emit(j, h)
        completed = True
    finally:
        # an early stop (Ctrl-C, a consumer that breaks off): nothing the workers hold has
        # been handed out yet, so stop them now rather than after their items
        pool.close(kill=not completed)


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
    return run_in_processes(tasks, predict_in_worker, jobs, _failed_prediction,
                            init_model_worker, (str(loaded.path),), ordered)


def _in_this_process(model: EmotionModel, paths: Sequence[str | os.PathLike[str]],
                     options: dict[str, Any]) -> Iterator[Prediction]:
    with threadpool_limits(1):
        for p in paths:
            yield model.predict_file(p, **options)
