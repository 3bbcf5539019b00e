"""Receiving uploads: a multipart body streamed, as it arrives, into private temporary files.

The body is parsed chunk by chunk (python-multipart's streaming parser) straight into
temporary files made with ``mkstemp`` (mode 0600, random names) that the caller deletes when
the request ends, whatever happens. The client's file name is only echoed back, never used on
disk: at most its suffix is kept, and only when it is one a folder scan takes as audio
(:data:`~music2emotion.audio.SCAN_EXTENSIONS`: the audio formats and the containers that
usually hold video); the decoders go by the content, not the suffix.

Everything a body can hold is bounded as it arrives, whether its length was declared or it
comes chunked: each file (the byte that crosses the limit stops the reading there), the
number of files, the form fields that are not files, the bytes on disk across all requests
(:class:`TempSpace`), the pause between two pieces of the body and the time the whole body
takes.
"""

from __future__ import annotations

import mimetypes
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ..audio import SCAN_EXTENSIONS
from .settings import ServerSettings

MAX_FILES = ServerSettings.max_files  # the default number of files per request
# Multipart overhead per part (boundary and part headers) allowed on top of the file limit
# when a declared Content-Length is checked before reading anything.
PART_OVERHEAD = 16 * 1024
# Form fields that are not files are read and ignored; together they may hold this much
# (the page and curl send none; without a bound, a chunked body of small fields never ends).
MAX_FIELD_BYTES = 64_000
TEMP_PREFIX = "music2emotion-upload-"


class RequestRefused(Exception):
    """The request as a whole cannot be served: ``status``, a one-line ``message`` and
    response ``headers`` (``Retry-After`` for a 503)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


class TempSpace:
    """Bytes of uploads on disk now, across all requests, against one cap. The event loop
    is the only caller, so no lock."""

    def __init__(self, limit: int, retry_after: int):
        self.limit, self.retry_after, self.used = limit, retry_after, 0

    def take(self, n: int, holding: int) -> None:
        """Reserve ``n`` more bytes for a request that holds ``holding`` already."""
        if holding + n > self.limit:
            raise RequestRefused(413, f"the files of this request are larger than the "
                                      f"{format_size(self.limit)} this server stores at once")
        if self.used + n > self.limit:
            raise RequestRefused(503, "the server's space for uploads is full; retry shortly",
                                 {"Retry-After": str(self.retry_after)})
        self.used += n

    def give(self, n: int) -> None:
        self.used -= n


@dataclass
class Upload:
    """One file part: ``name`` is for display only; ``path`` is our private temp file
    (``None`` when the part was refused before any of it was stored)."""

    name: str
    path: Path | None = None
    size: int = 0
    status: int = 200
    error: str = ""


_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def display_name(raw: bytes, charset: str = "utf-8") -> str:
    """The client's file name reduced to something safe to echo: last path component,
    no control characters, at most 200 characters."""
    text = raw.decode(charset, errors="replace")
    text = _UNSAFE.sub("", re.split(r"[\\/]", text)[-1]).strip()
    return text[:200] or "upload"


def audio_suffix(name: str, content_type: str) -> str | None:
    """Suffix for the temp file, or ``None`` when the upload is not audio we read.

    The name's suffix counts when a folder scan would take it (``SCAN_EXTENSIONS``: a
    ``.mkv`` or ``.mov`` too, whatever type it is sent as; one without sound then gets the
    error a local file gets, ``no audio stream``); otherwise an ``audio/*`` content type is
    trusted and mapped to a suffix where one is known.
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in SCAN_EXTENSIONS:
        return suffix
    if content_type.startswith("audio/"):
        guessed = (BROWSER_AUDIO_TYPES.get(content_type)
                   or mimetypes.guess_extension(content_type) or "").lower()
        return guessed if guessed in SCAN_EXTENSIONS else ""
    return None


# Types browsers and recorders send that Python's mimetypes does not map (the decoders go by
# the content, so a suffix is only a hint and an unknown audio/* type is still accepted)
BROWSER_AUDIO_TYPES = {"audio/x-m4a": ".m4a", "audio/m4a": ".m4a", "audio/webm": ".webm",
                       "audio/x-matroska": ".mka", "audio/wav": ".wav", "audio/x-wav": ".wav"}


def _not_audio(name: str, content_type: str) -> str:
    kinds = " ".join(sorted(SCAN_EXTENSIONS))
    sent = f" (sent as {content_type})" if content_type else ""
    return f"not an audio file{sent}: expected one of {kinds}"


class UploadReceiver:
    """Feeds a multipart body, chunk by chunk, into private temp files.

    A part larger than ``max_bytes`` raises :class:`RequestRefused` (413) as the byte that
    crosses the limit arrives, so nothing past it is read or stored. Non-file fields are
    read (counted against the same limit) and ignored. Call :meth:`cleanup` in a
    ``finally``: it closes and deletes every temp file made so far.
    """

    def __init__(self, boundary: bytes, max_bytes: int, max_files: int = MAX_FILES,
                 charset: str = "utf-8", space: TempSpace | None = None):
        self.max_bytes, self.max_files, self.charset = max_bytes, max_files, charset
        self.space = space
        self.stored = 0  # bytes of this request on disk, reserved in ``space``
        self.field_bytes = 0
        self.uploads: list[Upload] = []
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._upload: Upload | None = None
        self._file: Any = None
        self._size = 0
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        })

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise RequestRefused(400, _malformed(exc)) from exc

    def finish(self) -> list[Upload]:
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise RequestRefused(400, _malformed(exc)) from exc
        if self._upload is not None or self._file is not None:
            raise RequestRefused(400, "malformed multipart body (it ends inside a part)")
        return self.uploads

    def cleanup(self) -> None:
        self._close_file()
        for up in self.uploads:
            if up.path is not None:
                try:
                    up.path.unlink()
                except FileNotFoundError:
                    pass
        if self.space is not None:
            self.space.give(self.stored)
        self.stored = 0

    # python-multipart callbacks

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._upload = None
        self._size = 0

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._hname.strip().lower()] = self._hvalue.strip()
        self._hname = self._hvalue = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        raw_name = options.get(b"filename")
        if not raw_name:  # a plain form field, or a file input left empty by a browser
            return
        if len(self.uploads) >= self.max_files:
            raise RequestRefused(413, f"too many files: at most {self.max_files} per request")
        name = display_name(raw_name, self.charset)
        ctype = parse_options_header(self._headers.get(b"content-type", b""))[0].decode("latin-1")
        suffix = audio_suffix(name, ctype)
        up = Upload(name)
        if suffix is None:
            up.status, up.error = 415, _not_audio(name, ctype)
        else:
            fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix)
            up.path = Path(path)
            self._file = os.fdopen(fd, "wb")
        self.uploads.append(up)
        self._upload = up

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        self._size += n
        if self._upload is None:
            self.field_bytes += n
            if self.field_bytes > MAX_FIELD_BYTES:
                raise RequestRefused(413, f"form fields other than files hold more than "
                                          f"{format_size(MAX_FIELD_BYTES)}")
            return
        if self._size > self.max_bytes:
            raise RequestRefused(
                413, f"{self._upload.name}: larger than the upload limit of "
                     f"{format_size(self.max_bytes)} per file"
            )
        if self._file is not None:
            if self.space is not None:
                self.space.take(n, self.stored)
            self.stored += n
            # page-cache writes of one network chunk take microseconds: cheaper here
            # than a hop to a worker thread per chunk
            self._file.write(data[start:end])

    def _on_part_end(self) -> None:
        if self._upload is not None:
            self._upload.size = self._size
        self._close_file()
        self._upload = None

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def format_size(n: int) -> str:
    mb = n / 1e6
    return f"{mb:g} MB" if mb >= 1 else f"{n / 1e3:g} kB"


def _malformed(exc: FormParserError) -> str:
    if "header size" in str(exc).lower():
        # python-multipart's bound on one part header line; a file name is what grows it
        return "malformed multipart body (a part's header is longer than 4 kB: a file name that long?)"
    return f"malformed multipart body ({exc})"


async def receive_uploads(request: Request, settings: ServerSettings,
                          space: TempSpace | None = None) -> UploadReceiver:
    """Stream the request body into a :class:`UploadReceiver` (caller cleans up).

    Parameters
    ----------
    request : starlette.requests.Request
        A multipart/form-data request whose body has not been read.
    settings : ServerSettings
        The limits on files and the timeouts of the body.
    space : TempSpace, optional
        The bytes on disk shared with the other requests.

    Returns
    -------
    UploadReceiver
        Every part received; the caller calls ``cleanup()``.

    Raises
    ------
    RequestRefused
        400 (malformed), 408 (the body stalled, or took too long), 413 (too large, too many
        files), 415 (not multipart), 503 (no space for uploads now).
    starlette.requests.ClientDisconnect
        The client went away, or the server is stopping.
    """
    max_bytes, max_files = settings.max_upload_bytes, settings.max_files
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise RequestRefused(415, "send the audio as multipart/form-data file fields")
    boundary = params.get(b"boundary")
    if not boundary:
        raise RequestRefused(400, "malformed multipart body (no boundary)")
    most = max_files * (max_bytes + PART_OVERHEAD) + MAX_FIELD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        raise RequestRefused(413, f"request of {format_size(int(declared))} is larger than "
                                  f"{max_files} files of {format_size(max_bytes)}")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        "".encode(charset)
    except LookupError:
        charset = "utf-8"
    receiver = UploadReceiver(boundary, max_bytes, max_files, charset, space)
    deadline = time.monotonic() + settings.body_timeout
    received = 0
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                with anyio.fail_after(min(settings.idle_timeout, max(0.0, left))):
                    message = await request.receive()
            except TimeoutError:
                if left <= settings.idle_timeout:
                    raise RequestRefused(408, f"the upload took longer than the "
                                              f"{settings.body_timeout:g} s allowed") from None
                raise RequestRefused(408, f"the upload stalled: nothing received for "
                                          f"{settings.idle_timeout:g} s") from None
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > most:  # also where no length was declared (chunked)
                raise RequestRefused(413, f"request larger than {max_files} files of "
                                          f"{format_size(max_bytes)}")
            if chunk:
                receiver.feed(chunk)
            if not message.get("more_body", False):
                break
        receiver.finish()
    except BaseException:
        receiver.cleanup()
        raise
    return receiver
