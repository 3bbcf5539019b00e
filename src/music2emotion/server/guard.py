"""Who may call the server, and the one shape of every error.

:class:`Guard` wraps the whole app and refuses, before any route runs and before any body
is read:

- a ``Host`` the server does not answer to (400): a page on another name that resolves to
  this machine (DNS rebinding) cannot read or drive it;
- a POST from a page of another origin (403), unless ``--cors-origin`` allows that origin:
  a web page the user visits cannot spend the user's CPU;
- with a token set, an API call without ``Authorization: Bearer <token>`` or with another
  token (401); ``/api/health``, the page and the API docs stay open, so the page can say
  that it needs a token.

Every error the server sends, these and FastAPI's own included, is JSON with a one-line
``error`` (:func:`json_error`, :func:`raw_error` below the ASGI layer).
"""

from __future__ import annotations

import hmac
import http
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .settings import ServerSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_API_PATHS = frozenset({"/api/health"})
REALM = 'Bearer realm="music2emotion"'
CLOSE = {"Connection": "close"}


def json_error(status: int, message: str, *, headers: Mapping[str, str] | None = None,
               **extra: Any) -> JSONResponse:
    """An error response: ``{"error": message, **extra}`` (``/api/predict`` adds ``results``)."""
    return JSONResponse({"error": message, **extra}, status_code=status, headers=dict(headers or {}))


def raw_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> bytes:
    """The same error as whole HTTP/1.1 bytes, for the connection layer (no app to answer
    yet); the connection closes after it."""
    body = json.dumps({"error": message}).encode()
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
             "content-type: application/json", f"content-length: {len(body)}", "connection: close"]
    lines += [f"{k.lower()}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def host_name(host_header: str) -> str:
    """``"[::1]:8000"`` -> ``"::1"``, ``"Example.org:80"`` -> ``"example.org"``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(name: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``name`` matches an entry: exact, ``*``, or ``*.domain`` (any subdomain)."""
    for pattern in allowed:
        if pattern == "*" or name == pattern.strip("[]"):
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _authority(netloc: str) -> str:
    netloc = netloc.lower()
    for default in (":80", ":443"):
        if netloc.endswith(default):
            return netloc[: -len(default)]
    return netloc


def same_origin(origin: str, host_header: str) -> bool:
    """Whether a browser's ``Origin`` names the host the request was sent to."""
    if origin == "null":
        return False
    return _authority(urlsplit(origin).netloc) == _authority(host_header.strip())


class Guard:
    """ASGI middleware: the Host allow-list, cross-origin refusal and the bearer token."""

    def __init__(self, app: ASGIApp, settings: ServerSettings):
        self.app, self.settings = app, settings
        self._token = settings.token.encode() if settings.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> JSONResponse | None:
        """The refusal of this request, or ``None`` to let it through."""
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        name = host_name(host)
        if not host_allowed(name, self.settings.allowed_hosts):
            shown = ", ".join(self.settings.allowed_hosts)
            return json_error(400, f"this server does not answer to the host name {name!r} "
                                   f"(it answers to {shown}; start it with --allow-host {name or 'NAME'} "
                                   "to add one)", headers=CLOSE)
        path, method = scope["path"], scope["method"]
        if not path.startswith("/api/"):
            return None
        origin = headers.get("origin")
        preflight = method == "OPTIONS" and "access-control-request-method" in headers
        if (origin is not None and (method not in SAFE_METHODS or preflight)
                and not same_origin(origin, host) and origin not in self.settings.cors_origins):
            return json_error(403, f"requests from pages of {origin} are refused (start the server "
                                   f"with --cors-origin {origin} to allow them)", headers=CLOSE)
        if self._token is None or path in OPEN_API_PATHS or preflight:
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return json_error(401, "this server needs a token: send the header "
                                   "'Authorization: Bearer <token>'",
                              headers={"WWW-Authenticate": REALM, **CLOSE})
        if not hmac.compare_digest(given.strip().encode(), self._token):
            return json_error(401, "wrong token",
                              headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"', **CLOSE})
        return None
