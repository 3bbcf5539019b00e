"""``music2emotion serve``: a JSON API and a web page over one model, safe to expose.

Routes:

- ``GET /`` the page (``web/``: drag and drop audio, the valence-arousal plane, the
  emotion-over-time curve, a table to download as CSV). Everything it loads comes from
  this package; a Content-Security-Policy forbids any other origin.
- ``POST /api/predict`` multipart/form-data with one or more files (any field name).
- ``GET /api/health`` the model loaded, its settings, the limits, whether a token is needed;
  503 and ``status: failing`` with the cause while the workers keep crashing.
- ``GET /docs`` and ``/redoc`` (served offline), ``GET /openapi.json``.

Status codes of ``/api/predict``. Each file gets a result with its own ``status``: 200,
413 (its header declares more audio than ``max_duration``), 415 (not an audio type we
read: neither its name ends in one of ``SCAN_EXTENSIONS``, the suffixes a folder scan
takes, nor is it sent as ``audio/*``), 422 (it claims to be audio but cannot be decoded,
holds no audio stream, is too short, or decodes past ``max_duration`` though its header
declared less) or 500 (its worker process died). A
request holding **one** file answers with that file's status; a request holding
**several** answers 200 and the caller reads each result's ``status``, so one bad file in
a batch does not hide the others. The whole request is refused with 400 (malformed body,
no file, a bad query parameter), 401 (token), 403 (a page of another origin), 408 (the
upload stalled or took too long), 413 (a file past the upload limit, more files than
allowed, more audio in all than ``max_request_duration``), 415 (not multipart) and 503
(busy: too many requests in progress, or no space for uploads; with ``Retry-After``).
Every error body, FastAPI's own (404, 405) included, is JSON with a one-line ``error``;
those of ``/api/predict`` also carry ``results``.

Work per request is bounded before it starts (:mod:`.uploads` bounds the body,
:mod:`.analysis` reads headers in a probe process), analysis runs in worker processes
shared fairly between requests and stops when its client goes away, and the connection
layer (:mod:`.http`) bounds the time a client may take. Rows come from
:meth:`music2emotion.EmotionModel.predict_file` in the workers, so they are the library's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from .._version import __version__
from ..audio import SCAN_EXTENSIONS, format_seconds, too_long
from ..config import MOOD_CLASSES, MOOD_COLORS, TARGET_COLORS, Scale
from ..engine import WORKER_DIED, Cancelled, WorkerDied
from ..model import EmotionModel
from ..modelfile import model_name
from ..prediction import MOOD_FIELDS, Prediction
from .analysis import Analysis
from .guard import CLOSE, Guard, json_error
from .settings import ServerSettings
from .uploads import RequestRefused, TempSpace, Upload, receive_uploads

log = logging.getLogger("music2emotion.server")

# Seconds the worker processes get to load and warm up the model at start-up.
START_TIMEOUT = 300.0

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

T = TypeVar("T")


def web_dir() -> Path:
    """The page's files, shipped inside the package."""
    return Path(str(resources.files("music2emotion.server") / "web"))


# ---- response schemas (they also document the API at /docs) -------------------------


class MoodsOut(BaseModel):
    """What a mood head and intervals add, after the values (null for a model without them)."""

    mood: str | None = Field(None, description="the quadrant the values lie in, also the most probable one: "
                                               "happy, angry, sad or tender")
    p_happy: float | None = Field(None, description="probability of happy: valence and arousal high (the "
                                                    "four sum to 1)")
    p_angry: float | None = Field(None, description="probability of angry: valence low, arousal high")
    p_sad: float | None = Field(None, description="probability of sad: valence and arousal low")
    p_tender: float | None = Field(None, description="probability of tender: valence high, arousal low")
    valence_low: float | None = Field(None, description="the valence interval's lower bound, on the "
                                                        "values' scale (the model's coverage, e.g. 90 %)")
    valence_high: float | None = None
    arousal_low: float | None = None
    arousal_high: float | None = None


class _SegmentValues(BaseModel):
    start: float = Field(description="window start, seconds")
    end: float = Field(description="window end, seconds")
    valence: float
    arousal: float


class SegmentOut(MoodsOut, _SegmentValues):
    """One window: its values, then its probabilities and intervals."""


class _FileValues(BaseModel):
    file: str = Field(description="the uploaded file's name, as the client sent it")
    status: int = Field(description="200, or 413 (too long) / 415 (not audio) / 422 (undecodable, "
                                    "too short) / 500 (its worker died)")
    valence: float | None = Field(None, description="mean over the windows; null on error")
    arousal: float | None = None
    duration: float | None = Field(None, description="seconds of audio")
    windows: int = 0
    warning: str = ""
    error: str = Field("", description="one-line reason when status is not 200")
    timeline: list[SegmentOut] = Field(
        default_factory=list, description="one entry per window when the file is longer than one window"
    )


class FileResult(MoodsOut, _FileValues):
    """One file: its values and timeline, then its probabilities and intervals."""


class PredictResponse(BaseModel):
    results: list[FileResult]
    error: str = Field("", description="one line; set when the status is not 200")


class ErrorResponse(BaseModel):
    error: str = Field(description="one line: what was refused and why")


class ModelInfo(BaseModel):
    name: str = Field(description="what --model calls it: a bundled model's name, else the file's stem")
    file: str
    settings: dict[str, Any]
    info: dict[str, Any]


class Limits(BaseModel):
    max_upload_bytes: int
    max_files: int
    max_duration: float = Field(description="seconds of audio per file")
    max_request_duration: float = Field(description="seconds of audio per request")
    workers: int = Field(description="files analysed at once")
    audio_extensions: list[str] = Field(description="file suffixes accepted whatever type they are sent as: "
                                                    "those a folder scan takes")


class Health(BaseModel):
    status: Literal["ok", "failing"] = Field(
        "ok", description="'failing' (with HTTP 503) while the analysis workers keep crashing")
    problem: str | None = Field(None, description="why the workers keep crashing: the signal, its likely causes")
    version: str
    auth: bool = Field(description="whether /api/predict needs 'Authorization: Bearer <token>'")
    model: ModelInfo
    limits: Limits
    moods: list[str] = Field(description="the quadrant words, in the order of the p_* fields")
    colors: dict[str, str] = Field(description="the colour of each quadrant word and axis, as the "
                                               "pictures draw them")


class PageFiles(StaticFiles):
    """The page's scripts and styles, with the same security headers as the page."""

    async def get_response(self, path: str, scope: Any) -> Any:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


# ---- the app -------------------------------------------------------------------------


@dataclass
class ServerState:
    settings: ServerSettings
    model: EmotionModel | None
    model_path: str | os.PathLike[str] | None
    space: TempSpace
    analysis: Analysis | None = None
    in_progress: int = 0  # requests admitted to /api/predict and not answered yet

    def get_model(self) -> EmotionModel:
        if self.model is None:
            # here for the model's settings and metadata only: the workers predict
            self.model = EmotionModel(self.model_path, threads=1)
        return self.model


def _failure(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, WorkerDied):
        return 500, WORKER_DIED
    if isinstance(exc, Cancelled):
        return 503, "the server is stopping"
    return 500, f"internal error: {exc}"


def file_result(up: Upload, outcome: Prediction | BaseException | None, scale: Scale) -> FileResult:
    """The API record for one upload; the temp path never leaks into it."""
    if outcome is None:
        return FileResult(file=up.name, status=up.status, error=up.error)
    if isinstance(outcome, BaseException):
        status, error = _failure(outcome)
        return FileResult(file=up.name, status=status, error=error)
    row = outcome.row(scale)
    error = outcome.error.replace(str(up.path), up.name) if up.path else outcome.error
    return FileResult(
        file=up.name,
        status=200 if outcome.ok else 422,
        valence=row["valence"],
        arousal=row["arousal"],
        duration=row["duration"],
        windows=row["windows"],
        warning=row["warning"],
        error=error,
        timeline=[s.row(scale) for s in outcome.timeline] if outcome.windows > 1 else [],
        **{k: row[k] for k in MOOD_FIELDS},
    )


async def analyse(state: ServerState, uploads: list[Upload], scale: Scale) -> list[FileResult]:
    """Every upload's result: headers read first (too long, not audio: refused at once),
    the rest predicted in the workers.

    Raises
    ------
    RequestRefused
        413 when the files hold more audio in all than the request may; 503 while the
        workers are not running (before start-up ends, after shutdown begins).
    """
    settings, analysis = state.settings, state.analysis
    stored = [up for up in uploads if up.path is not None]
    if stored and analysis is None:
        raise RequestRefused(503, "the server is starting or stopping; retry shortly",
                             {"Retry-After": str(settings.retry_after)})
    headers = dict(zip(map(id, stored),
                       await asyncio.gather(*(analysis.read_header(str(up.path)) for up in stored))))
    results: dict[int, FileResult] = {}
    todo: list[tuple[Upload, float | None]] = []
    total = 0.0
    for up in uploads:
        head = headers.get(id(up))
        if head is None:
            results[id(up)] = file_result(up, None, scale)
        elif head.error:
            results[id(up)] = FileResult(file=up.name, status=422, error=head.error)
        elif head.seconds is not None and head.seconds > settings.max_duration:
            results[id(up)] = FileResult(file=up.name, status=413,
                                         error=too_long(head.seconds, settings.max_duration))
        else:
            todo.append((up, head.seconds))
            # a file whose header does not tell may run up to the per-file limit
            total += settings.max_duration if head.seconds is None else head.seconds
    if total > settings.max_request_duration:
        raise RequestRefused(413, f"the files hold {format_seconds(total)} of audio, over the limit "
                                  f"of {format_seconds(settings.max_request_duration)} per request; "
                                  "send them in several requests")
    outcomes = await analysis.predict([(str(up.path), seconds) for up, seconds in todo]) if todo else []
    for (up, _), outcome in zip(todo, outcomes):
        results[id(up)] = file_result(up, outcome, scale)
    return [results[id(up)] for up in uploads]


async def _disconnected(receive: Receive) -> None:
    """Return when the client has gone (the body has been read: only a disconnect is left)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_client_leaves(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it if the client disconnects first.

    Raises
    ------
    starlette.requests.ClientDisconnect
        The client went away; ``work`` has been cancelled and has finished cleaning up.
    """
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, gone):
            if not t.done():
                t.cancel()
    if not task.done() or task.cancelled():
        await asyncio.gather(task, return_exceptions=True)  # let its cleanup run
        raise ClientDisconnect()
    return task.result()


def _error(status: int, message: str, results: list[FileResult] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = PredictResponse(results=results or [], error=message)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


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
_PREDICT_ERRORS = [
    (400, "malformed body, no file, or a bad query parameter"),
    (401, "a token is needed, or the one sent is wrong"),
    (403, "sent by a page of another origin"),
    (408, "the upload stalled, or took too long"),
    (413, "a file past the upload limit, too many files, a file too long (single file), "
          "or more audio in all than a request may hold"),
    (415, "not audio (single file), or not multipart"),
    (422, "undecodable or too short (single file)"),
    (503, "busy: too many requests in progress, or no space for uploads (see Retry-After)"),
]


def create_app(model: EmotionModel | str | os.PathLike[str] | None = None,
               settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI app: the page, ``/api/predict``, ``/api/health`` and the API docs.

    The analysis workers start with the app (its lifespan) and stop with it.

    Parameters
    ----------
    model : EmotionModel, str or os.PathLike, optional
        A loaded model, or a bundled model's name or a model file (default: the bundled
        ``accurate``). Each worker process loads it from its file.
    settings : ServerSettings, optional
        Limits, timeouts and access rules (default: :class:`ServerSettings` ``()``).

    Returns
    -------
    fastapi.FastAPI
        ``app.state.m2e`` holds the settings and, while it runs, the analysis.
    """
    settings = settings or ServerSettings()
    state = ServerState(
        settings=settings,
        model=model if isinstance(model, EmotionModel) else None,
        model_path=None if isinstance(model, EmotionModel) else model,
        space=TempSpace(settings.max_temp_bytes, settings.retry_after),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = await anyio.to_thread.run_sync(state.get_model)
        analysis = Analysis(str(loaded.path), settings)
        try:
            await anyio.to_thread.run_sync(analysis.wait_ready, START_TIMEOUT)
            state.analysis = analysis
            yield
        finally:
            state.analysis = None
            await anyio.to_thread.run_sync(analysis.close)

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
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["authorization"],
                           expose_headers=["retry-after"])
    app.add_middleware(Guard, settings=settings)  # outermost: before CORS answers anything

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path}" + (
                f" (use {allowed})" if allowed else "")
        elif exc.status_code == 404:
            message = f"no such page: {request.url.path}"
        else:
            message = str(exc.detail)
        return json_error(exc.status_code, message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        # the body is left unread: close rather than parse it as the next request
        return json_error(400, "bad parameter " + "; ".join(problems), headers=CLOSE)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug must cost one request a 500, never the server
        log.exception("unexpected error on %s", request.url.path)
        return json_error(500, f"internal error: {type(exc).__name__}")

    @app.post(
        "/api/predict",
        response_model=PredictResponse,
        openapi_extra=_UPLOAD_BODY,
        responses={s: {"model": PredictResponse, "description": d} for s, d in _PREDICT_ERRORS},
        summary="Valence and arousal of uploaded audio files",
    )
    async def predict(
        request: Request,
        scale: Scale = Query("unit", description="0-1, or DEAM's 1-9 ratings"),
    ) -> JSONResponse:
        """One file: the status is that file's. Several files: 200, and each result
        carries its own ``status`` and ``error``."""
        if state.in_progress >= settings.max_requests:
            return _error(503, f"the server is busy ({state.in_progress} requests in progress); "
                               f"retry in {settings.retry_after} s",
                          headers={"Retry-After": str(settings.retry_after), **CLOSE})
        state.in_progress += 1
        try:
            return await _predict(request, scale)
        finally:
            state.in_progress -= 1

    async def _predict(request: Request, scale: Scale) -> JSONResponse:
        try:
            receiver = await receive_uploads(request, settings, state.space)
        except RequestRefused as exc:
            # the rest of the body is unread: close rather than parse it as the next request
            return _error(exc.status, exc.message, headers={**exc.headers, **CLOSE})
        except ClientDisconnect:
            return _error(400, "the client went away during the upload")
        except OSError as exc:  # no space or no temp dir: the server's problem, not the file's
            log.error("cannot store an upload: %s", exc)
            return _error(503, f"the server cannot store uploads right now ({exc.strerror or exc})",
                          headers={"Retry-After": str(settings.retry_after), **CLOSE})
        try:
            uploads = receiver.uploads
            if not uploads:
                return _error(400, "no file in the request: send audio as multipart file fields")
            try:
                done = await unless_client_leaves(request.receive, analyse(state, uploads, scale))
            except RequestRefused as exc:
                return _error(exc.status, exc.message, headers=exc.headers)
            except ClientDisconnect:
                log.info("a client went away; its analysis was stopped")
                return _error(400, "the client went away")
        finally:
            receiver.cleanup()
        if len(done) == 1 and done[0].status != 200:
            headers = {"Retry-After": str(settings.retry_after)} if done[0].status == 503 else None
            return _error(done[0].status, f"{done[0].file}: {done[0].error}", done, headers)
        return JSONResponse(PredictResponse(results=done).model_dump())

    @app.get("/api/health", response_model=Health, summary="The model loaded, the limits, the access")
    async def health(response: Response) -> Health:
        m = state.get_model()
        # a machine problem (workers crashing on every file) is the server's state, not a file's
        problem = state.analysis.crashing if state.analysis is not None else None
        if problem:
            response.status_code = 503
        return Health(
            status="failing" if problem else "ok",
            problem=problem,
            version=__version__,
            auth=settings.token is not None,
            model=ModelInfo(name=model_name(m.path), file=m.path.name, settings=m.settings.to_dict(),
                            info=m.info),
            limits=Limits(max_upload_bytes=settings.max_upload_bytes, max_files=settings.max_files,
                          max_duration=settings.max_duration,
                          max_request_duration=settings.max_request_duration,
                          workers=settings.worker_count,
                          audio_extensions=sorted(SCAN_EXTENSIONS)),
            moods=list(MOOD_CLASSES),
            colors={**MOOD_COLORS, **TARGET_COLORS},
        )

    page = web_dir()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(page / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", PageFiles(directory=page), name="static")
    return app
