"""Every limit, timeout and access rule of the server, with its default, in one place.

``music2emotion serve`` maps its options onto :class:`ServerSettings`, :func:`create_app`
and the HTTP layer read it, and ``GET /api/health`` reports the limits a client must
respect. Tests shorten the timeouts through it.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, fields, replace

from ..engine import available_cores

# Names a browser uses for this machine. A page served from any other name that reaches us
# (DNS rebinding: evil.example resolving to 127.0.0.1) is refused by the Host check.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
TOKEN_ENV = "MUSIC2EMOTION_TOKEN"
MB = 1_000_000


@dataclass(frozen=True)
class ServerSettings:
    """The server's limits and access rules.

    Parameters
    ----------
    workers : int, optional
        Worker processes analysing files (default: the cores this process may use).
    max_upload_bytes : int
        Largest file accepted; checked while it streams in.
    max_files : int
        Files per request.
    max_duration : float
        Longest file analysed, in seconds of audio: refused from its header before any
        decoding (413), or as decoding passes the limit when the header does not tell (422).
    max_request_duration : float
        Seconds of audio, summed over a request's files, that one request may ask for (413).
    max_requests : int
        Requests in progress at once (being uploaded, waiting for a worker or analysed);
        one more gets 503 with ``Retry-After`` at once, before its body is read.
    max_temp_bytes : int
        Bytes of uploads on disk at once, all requests together: a request that would pass
        it gets 503 (413 if it alone is larger).
    max_connections : int
        Open connections; one more gets 503 and is closed.
    header_timeout : float
        Seconds a connection has to send a request's headers, from when it opens or its
        previous response ends.
    idle_timeout : float
        Seconds an upload may send nothing before it is dropped (408).
    body_timeout : float
        Seconds a request's whole body may take (408).
    keepalive_timeout : float
        Seconds an idle keep-alive connection stays open.
    shutdown_timeout : float
        Seconds requests being analysed get to finish when the server stops; uploads still
        arriving are dropped at once.
    retry_after : int
        Seconds a 503 asks the client to wait (``Retry-After``).
    hop_seconds : float, optional
        Seconds between window starts for the timelines (default: the window length).
    token : str, optional
        When set, ``/api/predict`` needs ``Authorization: Bearer <token>``.
    allowed_hosts : tuple of str
        Host names requests may address (the ``Host`` header): loopback names by default;
        ``*`` allows any, ``*.example.org`` any subdomain.
    cors_origins : tuple of str
        Origins whose pages may call the API; any other page's POST is refused (403).
    """

    workers: int | None = None
    max_upload_bytes: int = 50 * MB
    max_files: int = 64
    max_duration: float = 20 * 60.0
    max_request_duration: float = 120 * 60.0
    max_requests: int = 32
    max_temp_bytes: int = 1000 * MB
    max_connections: int = 256
    header_timeout: float = 10.0
    idle_timeout: float = 30.0
    body_timeout: float = 300.0
    keepalive_timeout: float = 5.0
    shutdown_timeout: float = 5.0
    retry_after: int = 5
    hop_seconds: float | None = None
    token: str | None = None
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        positive = ("max_upload_bytes", "max_files", "max_duration", "max_request_duration",
                    "max_requests", "max_temp_bytes", "max_connections", "header_timeout",
                    "idle_timeout", "body_timeout", "keepalive_timeout", "retry_after")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        if self.workers is not None and not self.workers >= 1:
            raise ValueError(f"workers must be at least 1, not {self.workers!r}")
        if self.hop_seconds is not None and not self.hop_seconds > 0:
            raise ValueError(f"hop_seconds must be positive, not {self.hop_seconds!r}")
        if not self.shutdown_timeout >= 0:
            raise ValueError(f"shutdown_timeout must be at least 0, not {self.shutdown_timeout!r}")
        if self.max_temp_bytes < self.max_upload_bytes:
            raise ValueError("max_temp_bytes must be at least max_upload_bytes (one file must fit)")
        if self.token is not None and not self.token.strip():
            raise ValueError("the token must not be empty")
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))
        object.__setattr__(self, "cors_origins", tuple(o.rstrip("/") for o in self.cors_origins))

    @property
    def worker_count(self) -> int:
        """``workers``, or the cores this process may use."""
        return self.workers or available_cores()

    def with_changes(self, **changes: object) -> ServerSettings:
        """A copy with some fields changed (checked again)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown server settings: {', '.join(unknown)}")
        return replace(self, **changes)  # type: ignore[arg-type]


def token_from_env() -> str | None:
    """The token in ``MUSIC2EMOTION_TOKEN`` (better than ``--token``, which ``ps`` shows)."""
    return os.environ.get(TOKEN_ENV) or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name to bind) reaches this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """Whether binding ``host`` listens on every interface (``0.0.0.0``, ``::``, ``""``)."""
    try:
        return not host or ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False
