"""``music2emotion serve``: a local JSON API and a web page over one loaded model.

Routes:

- ``GET /`` the page (``web/``: drag and drop audio, the valence-arousal plane, the
  emotion-over-time curve, a table to download as CSV). Everything it loads comes from
  this package; a Content-Security-Policy forbids any other origin.
- ``POST /api/predict`` multipart/form-data with one or more files (any field name).
- ``GET /api/health`` the model loaded, its settings and the upload limits.
- ``GET /docs`` and ``/redoc`` (served offline), ``GET /openapi.json``.

Status codes of ``/api/predict``. Each file gets a result with its own ``status``: 200,
415 (not an audio type we read: neither its name ends in one of ``AUDIO_EXTENSIONS`` nor is
it sent as ``audio/*``) or 422 (it claims to be audio but cannot be decoded, or is too
short). A request holding **one** file answers with that file's status; a request holding
**several** answers 200 and the caller reads each result's ``status``, so one bad file in a
batch does not hide the others. The whole request is refused with 413 as soon as any file
grows past the per-file limit while it streams in (the server stops reading there), with
400 for a malformed body or no file at all, 415 when the body is not multipart, and 503
when the server cannot write temporary files. Every error body is JSON:
``{"error": "<one line>", "results": [...]}``.

Safety: uploads stream into private temporary files deleted when the request ends
(:mod:`music2emotion.server.uploads`). Inference runs in worker threads, at most
``concurrency`` at a time, through :meth:`music2emotion.EmotionModel.predict_file`, so the
results are the library's, and the event loop keeps answering while files are analysed.
No CORS header is sent unless origins are given.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect

from .._version import __version__
from ..config import AUDIO_EXTENSIONS, Scale
from ..model import EmotionModel
from ..prediction import Prediction
from .uploads import MAX_FILES, RequestRefused, Upload, receive_uploads

log = logging.getLogger("music2emotion.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_MB = 50.0

# The page may load only what this server serves; inline scripts and styles are refused.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def web_dir() -> Path:
    """The page's files, shipped inside the package."""
    return Path(str(resources.files("music2emotion.server") / "web"))


def default_concurrency() -> int:
    """Files analysed at once: one per core, at most 4 (each holds a window batch in memory)."""
    return max(1, min(4, os.cpu_count() or 1))


def load_model(path: str | os.PathLike[str] | None, concurrency: int) -> EmotionModel:
    """Load the model once for the server; ONNX Runtime threads are split between the
    concurrent analyses so they do not fight over the cores."""
    threads = max(1, (os.cpu_count() or 1) // max(1, concurrency))
    return EmotionModel(path, threads=threads)


# ---- response schemas (they also document the API at /docs) -------------------------


class SegmentOut(BaseModel):
    start: float = Field(description="window start, seconds")
    end: float = Field(description="window end, seconds")
    valence: float
    arousal: float


class FileResult(BaseModel):
    file: str = Field(description="the uploaded file's name, as the client sent it")
    status: int = Field(description="200, or 415 (not audio) / 422 (undecodable, too short)")
    valence: float | None = Field(None, description="mean over the windows; null on error")
    arousal: float | None = None
    duration: float | None = Field(None, description="seconds of audio")
    windows: int = 0
    warning: str = ""
    error: str = Field("", description="one-line reason when status is not 200")
    timeline: list[SegmentOut] = Field(
        default_factory=list, description="one entry per window when the file is longer than one window"
    )


class PredictResponse(BaseModel):
    results: list[FileResult]
    error: str = Field("", description="one line; set when the status is not 200")


class ModelInfo(BaseModel):
    file: str
    settings: dict[str, Any]
    info: dict[str, Any]


class Limits(BaseModel):
    max_upload_bytes: int
    max_files: int
    concurrency: int
    audio_extensions: list[str]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    model: ModelInfo
    limits: Limits


# ---- streaming multipart reception ---------------------------------------------------


class PageFiles(StaticFiles):
    """The page's scripts and styles, with the same security headers as the page."""

    async def get_response(self, path: str, scope: Any) -> Any:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


# ---- the app -------------------------------------------------------------------------


@dataclass
class ServerState:
    model: EmotionModel | None
    model_path: str | os.PathLike[str] | None
    max_upload_bytes: int
    concurrency: int
    hop_seconds: float | None
    limiter: anyio.CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = anyio.CapacityLimiter(self.concurrency)

    def get_model(self) -> EmotionModel:
        if self.model is None:
            self.model = load_model(self.model_path, self.concurrency)
        return self.model


def file_result(up: Upload, pred: Prediction | None, scale: Scale) -> FileResult:
    """The API record for one upload; the temp path never leaks into it."""
    if pred is None:
        return FileResult(file=up.name, status=up.status, error=up.error)
    row = pred.row(scale)
    error = pred.error.replace(str(up.path), up.name) if up.path else pred.error
    return FileResult(
        file=up.name,
        status=200 if pred.ok else 422,
        valence=row["valence"],
        arousal=row["arousal"],
        duration=row["duration"],
        windows=row["windows"],
        warning=row["warning"],
        error=error,
        timeline=[s.row(scale) for s in pred.timeline] if pred.windows > 1 else [],
    )


async def analyse(state: ServerState, up: Upload, scale: Scale) -> FileResult:
    if up.path is None:
        return file_result(up, None, scale)
    model = state.get_model()
    pred = await anyio.to_thread.run_sync(
        partial(model.predict_file, up.path, hop_seconds=state.hop_seconds, timeline=True),
        limiter=state.limiter,
    )
    return file_result(up, pred, scale)


def _error(status: int, message: str, results: list[FileResult] | None = None) -> JSONResponse:
    body = PredictResponse(results=results or [], error=message)
    return JSONResponse(body.model_dump(), status_code=status)


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one or more audio files (any field name works)",
                        }
                    },
                }
            }
        },
    }
}


def create_app(
    model: EmotionModel | str | os.PathLike[str] | None = None,
    *,
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1_000_000),
    concurrency: int | None = None,
    hop_seconds: float | None = None,
    cors_origins: list[str] | tuple[str, ...] = (),
) -> FastAPI:
    """The FastAPI app: the page, ``/api/predict``, ``/api/health`` and the API docs.

    Parameters
    ----------
    model : EmotionModel, str or os.PathLike, optional
        A loaded model, or a bundled model's name or a model file (default: the bundled
        ``accurate``), loaded once at start-up.
    max_upload_bytes : int
        The largest file accepted; checked while the upload streams in.
    concurrency : int, optional
        Files analysed at once (default: :func:`default_concurrency`).
    hop_seconds : float, optional
        Seconds between window starts for the timelines (default: the window length).
    cors_origins : sequence of str
        Origins whose pages may call the API; none by default.

    Returns
    -------
    fastapi.FastAPI
    """
    if max_upload_bytes < 1:
        raise ValueError("the upload limit must be at least 1 byte")
    conc = concurrency or default_concurrency()
    state = ServerState(
        model=model if isinstance(model, EmotionModel) else None,
        model_path=None if isinstance(model, EmotionModel) else model,
        max_upload_bytes=max_upload_bytes,
        concurrency=conc,
        hop_seconds=hop_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(state.get_model)  # load once, before the first request
        yield

    app = FastAPIOffline(
        title="music2emotion",
        version=__version__,
        description=(
            "Valence (sad to happy) and arousal (calm to energetic) of music on a 0-1 scale. "
            "POST audio files to /api/predict; the page at / does the same in a browser."
        ),
        lifespan=lifespan,
    )
    app.state.m2e = state
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug must cost one request a 500, never the server
        log.exception("unexpected error on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.post(
        "/api/predict",
        response_model=PredictResponse,
        openapi_extra=_UPLOAD_BODY,
        responses={s: {"model": PredictResponse, "description": d} for s, d in [
            (400, "malformed body or no file"), (413, "a file is larger than the limit"),
            (415, "not audio (single file) or not multipart"), (422, "undecodable (single file)"),
        ]},
        summary="Valence and arousal of uploaded audio files",
    )
    async def predict(
        request: Request,
        scale: Scale = Query("unit", description="0-1, or DEAM's 1-9 ratings"),
    ) -> JSONResponse:
        """One file: the status is that file's. Several files: 200, and each result
        carries its own ``status`` and ``error``."""
        try:
            receiver = await receive_uploads(request, state.max_upload_bytes)
        except RequestRefused as exc:
            return _error(exc.status, exc.message)
        except ClientDisconnect:
            return _error(400, "the client went away during the upload")
        except OSError as exc:  # no space or no temp dir: the server's problem, not the file's
            log.error("cannot store an upload: %s", exc)
            return _error(503, f"the server cannot store uploads right now ({exc.strerror or exc})")
        try:
            uploads = receiver.uploads
            if not uploads:
                return _error(400, "no file in the request: send audio as multipart file fields")
            results: list[FileResult | None] = [None] * len(uploads)

            async def run(i: int, up: Upload) -> None:
                try:
                    results[i] = await analyse(state, up, scale)
                except Exception as exc:  # a bug on one file must not sink the batch
                    log.exception("unexpected error analysing an upload")
                    results[i] = FileResult(file=up.name, status=500,
                                            error=f"internal error: {type(exc).__name__}")

            async with anyio.create_task_group() as tg:
                for i, up in enumerate(uploads):
                    tg.start_soon(run, i, up)
        finally:
            receiver.cleanup()
        done = [r for r in results if r is not None]
        if len(done) == 1 and done[0].status != 200:
            return _error(done[0].status, f"{done[0].file}: {done[0].error}", done)
        return JSONResponse(PredictResponse(results=done).model_dump())

    @app.get("/api/health", response_model=Health, summary="The model loaded and the limits")
    async def health() -> Health:
        m = state.get_model()
        return Health(
            version=__version__,
            model=ModelInfo(file=m.path.name, settings=m.settings.to_dict(), info=m.info),
            limits=Limits(max_upload_bytes=state.max_upload_bytes, max_files=MAX_FILES,
                          concurrency=state.concurrency,
                          audio_extensions=sorted(AUDIO_EXTENSIONS)),
        )

    page = web_dir()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(page / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", PageFiles(directory=page), name="static")
    return app


def run(
    model: EmotionModel,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    concurrency: int | None = None,
    hop_seconds: float | None = None,
    cors_origins: list[str] | tuple[str, ...] = (),
) -> None:
    """Serve :func:`create_app` with uvicorn until interrupted.

    Parameters
    ----------
    model : EmotionModel
        The loaded model.
    host, port : str, int
        Where to listen; anything but loopback prints a warning.
    max_upload_mb : float
        The largest file accepted, in MB.
    concurrency, hop_seconds, cors_origins
        As for :func:`create_app`.
    """
    import uvicorn

    app = create_app(model, max_upload_bytes=max(1, math.floor(max_upload_mb * 1_000_000)),
                     concurrency=concurrency, hop_seconds=hop_seconds, cors_origins=cors_origins)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}: anyone who can reach it can upload files",
              file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"music2emotion: serving http://{shown}:{port}/ (Ctrl+C to stop)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)


@contextmanager
def running(app: FastAPI, host: str = DEFAULT_HOST, port: int = 0,
            timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` from a background thread while the block runs (tests, benchmarks,
    screenshots).

    Parameters
    ----------
    app : fastapi.FastAPI
        From :func:`create_app`.
    host : str
        Where to listen.
    port : int
        0 picks a free port.
    timeout : float
        Seconds to wait for the server to start, and to stop.

    Yields
    ------
    str
        The base URL, ``http://host:port``.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="music2emotion-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
