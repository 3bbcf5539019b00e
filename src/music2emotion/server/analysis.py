"""Analysis for the server: uploads read and predicted in worker processes, shared fairly.

Two pools of :class:`music2emotion.engine.WorkerPool`, so that no decoder runs in the
server process (a crash costs one file, never the server):

- one *probe* process reads each upload's header (ms per file): how long it says it is, or
  why it is not audio. A file over the per-file limit, or a request over its total, is
  refused from that, before it waits for a worker or anything is decoded.
- ``workers`` processes predict, each with the model loaded and warmed up, through
  :meth:`music2emotion.EmotionModel.predict_file` (with ``max_duration``, so a header that
  lies is caught while decoding).

Files reach the workers fairly: each request's files wait in its own line, and a free
worker takes the next file of the next request in turn, so a batch of 64 files does not
hold up a request of one. Files longer than ``LONG_FILE_SECONDS`` (or of unknown length)
never take the last free worker: however many long files arrive, short ones still find a
worker within the time of one short file. A request whose client goes away has its files
cancelled, the running ones stopped in their workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..engine import (
    WorkerDied,
    WorkerPool,
    init_model_worker,
    init_quiet_worker,
    predict_in_worker,
    read_header_in_worker,
)
from ..prediction import Prediction
from .settings import ServerSettings

# Longer than almost any song: such files (DJ mixes, concerts, hostile headers) may use every
# worker but one.
LONG_FILE_SECONDS = 10 * 60.0
# Reading a header takes milliseconds; one that takes this long is stuck (a hostile file),
# and its probe process is stopped.
PROBE_TIMEOUT = 10.0

log = logging.getLogger("music2emotion.server")


@dataclass
class Header:
    """What the probe read: ``seconds`` the header declares (``None``: it does not say),
    or ``error``, the one-line reason the file is not audio."""

    seconds: float | None = None
    error: str = ""


@dataclass(eq=False)
class QueuedFile:
    """A file waiting for, or on, a worker; ``long`` files may not take the last free one."""

    path: str
    long: bool
    future: asyncio.Future[Any] | None = None  # the request's, in the event loop
    job: Future[Any] | None = None  # the worker pool's


class FairQueue:
    """Which waiting file a free worker takes next.

    Each request's files wait in their own line; requests take turns, one file each, so a
    request of one file waits for at most one file of each other request. A long file is
    taken only while fewer than ``workers - 1`` long ones run (one, with one worker), so a
    worker is always left for short files.

    Parameters
    ----------
    workers : int
        Files that may run at once.
    """

    def __init__(self, workers: int):
        self.workers = workers
        self.running = 0
        self.running_long = 0
        self._lines: deque[deque[QueuedFile]] = deque()

    @property
    def waiting(self) -> int:
        """Files waiting for a worker."""
        return sum(len(line) for line in self._lines)

    def add(self, files: Sequence[QueuedFile]) -> None:
        """A request's files, in order, as one line."""
        if files:
            self._lines.append(deque(files))

    def take(self) -> QueuedFile | None:
        """The next file to run, counted as running; ``None`` if none may run now."""
        if self.running >= self.workers:
            return None
        long_cap = max(1, self.workers - 1)
        for _ in range(len(self._lines)):
            line = self._lines[0]
            self._lines.rotate(-1)  # whatever happens, this request's turn is over
            if line[0].long and self.running_long >= long_cap:
                continue
            f = line.popleft()
            if not line:
                self._lines.pop()
            self.running += 1
            self.running_long += f.long
            return f
        return None

    def finished(self, f: QueuedFile) -> None:
        """A file taken by :meth:`take` is done."""
        self.running -= 1
        self.running_long -= f.long

    def remove(self, files: Sequence[QueuedFile]) -> None:
        """Drop those of ``files`` still waiting."""
        gone = set(map(id, files))
        for line in list(self._lines):
            kept = deque(f for f in line if id(f) not in gone)
            if not kept:
                self._lines.remove(line)
            elif len(kept) != len(line):
                line.clear()
                line.extend(kept)


class Analysis:
    """The probe and the analysis workers of one server, and the fair queue between them.

    Parameters
    ----------
    model_path : str
        The model file each worker loads.
    settings : ServerSettings
        ``worker_count``, ``max_duration`` and ``hop_seconds`` are used here.
    """

    def __init__(self, model_path: str, settings: ServerSettings):
        self.settings = settings
        self.size = settings.worker_count
        self.options = {"hop_seconds": settings.hop_seconds, "timeline": True,
                        "max_duration": settings.max_duration}
        self.workers: WorkerPool[tuple[str, dict[str, Any]], Prediction] = WorkerPool(
            predict_in_worker, self.size, initializer=init_model_worker,
            initargs=(model_path, True), name="music2emotion-analysis",
            # a client could upload files that crash a decoder: the server keeps going, and
            # reports workers that keep crashing (crashing, the health) instead
            stop_when_crashing=False)
        self._reported: str | None = None
        self.probe: WorkerPool[str, tuple[float | None, str]] = WorkerPool(
            read_header_in_worker, 1, initializer=init_quiet_worker, name="music2emotion-probe")
        self.queue = FairQueue(self.size)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every worker has loaded the model (raises if they cannot)."""
        self.probe.wait_ready(timeout)
        self.workers.wait_ready(timeout)

    def close(self) -> None:
        """Stop every process now; files still running are cancelled."""
        self.probe.close(kill=True)
        self.workers.close(kill=True)

    @property
    def crashing(self) -> str | None:
        """One line while the workers keep dying on their files before any succeeded
        (:attr:`music2emotion.engine.WorkerPool.crashing`), else ``None``."""
        return self.workers.crashing

    def pids(self) -> list[int]:
        """The analysis workers' processes."""
        return self.workers.pids()

    async def read_header(self, path: str) -> Header:
        """The file's header, read in the probe process."""
        job = self.probe.submit(path)
        try:
            seconds, error = await asyncio.wait_for(asyncio.wrap_future(job), PROBE_TIMEOUT)
        except asyncio.TimeoutError:
            self.probe.cancel(job)
            return Header(error=f"reading its header took over {PROBE_TIMEOUT:g} s")
        except asyncio.CancelledError:
            self.probe.cancel(job)
            raise
        return Header(seconds, error)

    async def predict(self, files: Sequence[tuple[str, float | None]]) -> list[Prediction | BaseException]:
        """Predict files of one request, ``(path, declared seconds)`` each; for each, its
        :class:`~music2emotion.prediction.Prediction` or the exception that stopped it
        (:class:`~music2emotion.engine.WorkerDied` and the like). Cancelling the call
        cancels the files, also those running."""
        loop = asyncio.get_running_loop()
        items = [QueuedFile(path, seconds is None or seconds > LONG_FILE_SECONDS, loop.create_future())
                 for path, seconds in files]
        self.queue.add(items)
        self._dispatch()
        try:
            return list(await asyncio.gather(*(f.future for f in items if f.future),
                                             return_exceptions=True))
        finally:
            self.queue.remove(items)
            for f in items:
                if f.job is not None and not f.job.done():
                    self.workers.cancel(f.job)  # the client left: stop its running files

    def _dispatch(self) -> None:
        while (f := self.queue.take()) is not None:
            f.job = self.workers.submit((f.path, self.options))
            asyncio.wrap_future(f.job).add_done_callback(lambda done, f=f: self._finished(f, done))

    def _finished(self, f: QueuedFile, done: asyncio.Future[Any]) -> None:
        self.queue.finished(f)
        if f.future is not None and not f.future.done():
            if done.cancelled():
                f.future.cancel()
            elif done.exception() is not None:
                if isinstance(done.exception(), WorkerDied) and self.crashing and self._reported != self.crashing:
                    self._reported = self.crashing
                    log.error("%s", self.crashing)  # once, not once per file
                f.future.set_exception(done.exception())  # type: ignore[arg-type]
            else:
                f.future.set_result(done.result())
        self._dispatch()
