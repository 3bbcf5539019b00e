"""The HTTP layer: uvicorn's HTTP/1.1 protocol with the bounds it lacks, and serving.

uvicorn closes idle keep-alive connections but puts no time limit on a request's headers:
a client that opens a connection and sends nothing, or one byte now and then, holds it for
ever. :class:`BoundedH11Protocol` adds a header timeout, a cap on open connections, JSON
for the errors it answers itself, a shutdown that drops uploads still arriving instead of
waiting for them, and a lingering close: a refusal sent before the body was read (413, 401,
503) would otherwise be lost to the reset that closing on unread data sends, and the
client would see "connection reset" instead of the reason. Body timeouts are the app's
(:mod:`.uploads`), where reading is.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from .guard import raw_error
from .settings import ServerSettings, is_loopback, is_wildcard

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# After a refusal of a request whose body was still arriving: how long, and how much more,
# to read and drop before closing, so that the client reads the answer rather than a reset.
LINGER_SECONDS = 5.0
LINGER_BYTES = 64_000_000


class _LingeringTransport:
    """A connection's transport whose ``close`` lingers when the request's body is unread:
    it half-closes (the client gets the whole answer and an end-of-file) and lets the
    protocol drop what still arrives, for at most ``LINGER_SECONDS``/``LINGER_BYTES``."""

    def __init__(self, transport: Any, protocol: BoundedH11Protocol):
        self._transport, self._protocol, self._closing = transport, protocol, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        cycle = self._protocol.cycle
        unread = cycle is not None and cycle.more_body and not cycle.disconnected
        if unread and self._transport.can_write_eof() and not self._transport.is_closing():
            self._protocol._linger(self._transport)
        else:
            self._transport.close()


class BoundedH11Protocol(H11Protocol):
    """One connection: uvicorn's h11 protocol, bounded by ``settings``."""

    settings = ServerSettings()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_after: Any = None  # the cycle whose successor's headers are due
        self._got_bytes = False
        self._lingering: Any = None  # the real transport, while a close lingers
        self._dropped = 0

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(_LingeringTransport(transport, self))
        if len(self.connections) > self.settings.max_connections:
            self._refuse(503, "too many connections to this server; retry shortly",
                         {"Retry-After": str(self.settings.retry_after)})
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:  # the rest of a refused body: dropped unread
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self._lingering.close()
            return
        self._got_bytes = True
        super().data_received(data)
        if self._header_timer is not None and self.cycle is not self._waiting_after:
            self._header_timer.cancel()  # the headers are in: a request has started
            self._header_timer = None

    def on_response_complete(self) -> None:
        # armed before uvicorn looks at pipelined data, which may start the next request
        if not self.transport.is_closing():
            self._arm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:
        if self._lingering is not None:
            self._lingering.close()  # the client has sent everything: nothing left to drop
        return None

    def _linger(self, transport: Any) -> None:
        self._disarm()
        self._lingering = transport
        transport.write_eof()  # after the answer already written
        transport.resume_reading()
        self.loop.call_later(LINGER_SECONDS, transport.close)

    def send_400_response(self, msg: str) -> None:
        # h11 could not parse the request (malformed, or headers over its 16 kB bound)
        self._refuse(400, "invalid HTTP request: malformed, or headers larger than 16 kB")

    def shutdown(self) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and cycle.more_body:
            # an upload still arriving would hold the shutdown up for as long as the client
            # likes: end it now (the app sees a disconnect and removes its temp files)
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.close()
            return
        super().shutdown()

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after, self._got_bytes = self.cycle, False
        self._header_timer = self.loop.call_later(self.settings.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.cycle is not self._waiting_after or self.transport.is_closing():
            return
        if self._got_bytes:
            self._refuse(408, f"the request headers did not arrive within "
                              f"{self.settings.header_timeout:g} s")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(raw_error(status, message, headers))
            self.transport.close()


def uvicorn_config(app: FastAPI, host: str, port: int, settings: ServerSettings,
                   log_level: str = "info") -> uvicorn.Config:
    """uvicorn's configuration for ``app``, with the protocol and timeouts of ``settings``."""
    protocol = type("BoundedH11Protocol", (BoundedH11Protocol,), {"settings": settings})
    return uvicorn.Config(
        app, host=host, port=port, http=protocol, ws="none", lifespan="on", log_level=log_level,
        timeout_keep_alive=settings.keepalive_timeout,  # type: ignore[arg-type]
        timeout_graceful_shutdown=settings.shutdown_timeout,  # type: ignore[arg-type]
        server_header=False,
    )


def serve(app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve an app made by :func:`~.app.create_app` until SIGINT or SIGTERM.

    Parameters
    ----------
    app : fastapi.FastAPI
        From :func:`~.app.create_app`; its settings bound the connections too.
    host, port : str, int
        Where to listen.
    """
    settings: ServerSettings = app.state.m2e.settings
    shown = f"[{host}]" if ":" in host else host
    if not is_loopback(host):
        who = "anyone who can reach this machine" if is_wildcard(host) else f"anyone who can reach {host}"
        auth = "with the token" if settings.token else "WITHOUT A TOKEN"
        print(f"warning: listening on {shown}: {who} can upload files ({auth})", file=sys.stderr)
        print(f"music2emotion: answering to host names {', '.join(settings.allowed_hosts)} "
              "(--allow-host adds one)", file=sys.stderr)
    print(f"music2emotion: serving http://{shown}:{port}/ with {settings.worker_count} worker "
          f"process{'es' if settings.worker_count > 1 else ''} (Ctrl+C to stop)", file=sys.stderr)
    uvicorn.Server(uvicorn_config(app, host, port, settings)).run()


@contextmanager
def running(app: FastAPI, host: str = DEFAULT_HOST, port: int = 0,
            timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` from a background thread while the block runs (tests, benchmarks,
    screenshots).

    Parameters
    ----------
    app : fastapi.FastAPI
        From :func:`~.app.create_app`.
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
    settings: ServerSettings = app.state.m2e.settings
    server = uvicorn.Server(uvicorn_config(app, host, port, settings, log_level="warning"))
    thread = threading.Thread(target=server.run, name="music2emotion-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
