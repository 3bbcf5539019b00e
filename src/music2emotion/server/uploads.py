"""Receiving uploads: a multipart body streamed, as it arrives, into private temporary files.

The body is parsed chunk by chunk (python-multipart's streaming parser) straight into
temporary files made with ``mkstemp`` (mode 0600, random names) that the caller deletes when
the request ends, whatever happens. The client's file name is only echoed back, never used on
disk: at most its suffix is kept, and only when it is one of ``AUDIO_EXTENSIONS`` (the
decoder may go by it). A file that grows past the limit stops the reading there.
"""

from __future__ import annotations

import mimetypes
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ..config import AUDIO_EXTENSIONS

MAX_FILES = 64  # per request; with the per-file limit this bounds what one request may send
# Multipart overhead per part (boundary and part headers) allowed on top of the file limit
# when a declared Content-Length is checked before reading anything.
PART_OVERHEAD = 16 * 1024
TEMP_PREFIX = "music2emotion-upload-"


class RequestRefused(Exception):
    """The request as a whole cannot be served: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


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

    The name's suffix counts when it is one of ``AUDIO_EXTENSIONS``; otherwise an
    ``audio/*`` content type is trusted and mapped to a suffix where one is known.
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return suffix
    if content_type.startswith("audio/"):
        guessed = (mimetypes.guess_extension(content_type) or "").lower()
        return guessed if guessed in AUDIO_EXTENSIONS else ""
    return None


def _not_audio(name: str, content_type: str) -> str:
    kinds = " ".join(sorted(AUDIO_EXTENSIONS))
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
                 charset: str = "utf-8"):
        self.max_bytes, self.max_files, self.charset = max_bytes, max_files, charset
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
            raise RequestRefused(400, f"malformed multipart body ({exc})") from exc

    def finish(self) -> list[Upload]:
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise RequestRefused(400, f"malformed multipart body ({exc})") from exc
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
        self._size += end - start
        if self._size > self.max_bytes:
            what = self._upload.name if self._upload else "a form field"
            raise RequestRefused(
                413, f"{what}: larger than the upload limit of {format_size(self.max_bytes)} per file"
            )
        if self._file is not None:
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


async def receive_uploads(request: Request, max_bytes: int) -> UploadReceiver:
    """Stream the request body into a :class:`UploadReceiver` (caller cleans up)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise RequestRefused(415, "send the audio as multipart/form-data file fields")
    boundary = params.get(b"boundary")
    if not boundary:
        raise RequestRefused(400, "malformed multipart body (no boundary)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILES * (max_bytes + PART_OVERHEAD):
        raise RequestRefused(413, f"request of {format_size(int(declared))} is larger than "
                                  f"{MAX_FILES} files of {format_size(max_bytes)}")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        "".encode(charset)
    except LookupError:
        charset = "utf-8"
    receiver = UploadReceiver(boundary, max_bytes, MAX_FILES, charset)
    try:
        async for chunk in request.stream():
            receiver.feed(chunk)
        receiver.finish()
    except BaseException:
        receiver.cleanup()
        raise
    return receiver
