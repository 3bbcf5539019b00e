"""``serve``: the web page and JSON API (the ``serve`` extra)."""

from __future__ import annotations

import argparse

from .common import UsageError, add_model, add_windows, check

# each flag, the setting it sets and how a value on the command line becomes the setting's
# (defaults live in server.settings, imported only when serving: fastapi is optional)
LIMITS = [
    ("--max-upload-mb", "max_upload_bytes", lambda v: max(1, int(v * 1_000_000)), float,
     "largest file accepted, in MB (default 50)"),
    ("--max-files", "max_files", int, int, "files per request (default 64)"),
    ("--max-duration", "max_duration", lambda v: v * 60, float,
     "longest file analysed, in minutes of audio (default 20); refused from its header"),
    ("--max-request-duration", "max_request_duration", lambda v: v * 60, float,
     "minutes of audio one request may hold, all its files together (default 120)"),
    ("--max-requests", "max_requests", int, int,
     "requests in progress at once, uploading or analysed; more get 503 (default 32)"),
    ("--max-temp-mb", "max_temp_bytes", lambda v: int(v * 1_000_000), float,
     "MB of uploads on disk at once, all requests together (default 1000)"),
    ("--header-timeout", "header_timeout", float, float,
     "seconds a connection has to send its request headers (default 10)"),
    ("--idle-timeout", "idle_timeout", float, float,
     "seconds an upload may send nothing before it is dropped (default 30)"),
    ("--body-timeout", "body_timeout", float, float,
     "seconds a whole upload may take (default 300)"),
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a web page and JSON API (needs the 'serve' extra)",
                       description="Serve the web page and the JSON API. Analysis runs in worker "
                                   "processes; every upload is bounded in size, length and time.")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only; "
                                  "another address needs --token or --no-token)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    add_model(p)
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes analysing files (default: one per core)")
    add_windows(p, window=False)
    limits = p.add_argument_group("limits")
    for flag, _, _, kind, text in LIMITS:
        unit = "MB" if flag.endswith("-mb") else "MIN" if "duration" in flag else (
            "SECONDS" if "timeout" in flag else "N")
        limits.add_argument(flag, type=kind, metavar=unit, help=text)
    access = p.add_argument_group("access")
    access.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on the API (default: "
                                        "$MUSIC2EMOTION_TOKEN; the environment keeps it out of ps)")
    access.add_argument("--no-token", action="store_true",
                        help="listen on a non-loopback address without a token (e.g. behind a proxy "
                             "that authenticates)")
    access.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="also answer requests addressed to host NAME (repeatable; default: "
                             "localhost, 127.0.0.1, ::1 and the --host address; '*' for any)")
    access.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="let pages from ORIGIN call the API (repeatable; default: none, and "
                             "POSTs from other pages are refused)")
    p.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .. import server
        from ..server.settings import is_loopback, is_wildcard, token_from_env
    except ImportError as exc:
        raise UsageError(f"serve needs the 'serve' extra: pip install 'music2emotion[serve]' ({exc})") from exc

    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError("--port must be between 1 and 65535")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    check(hop_seconds=args.hop)
    changes: dict[str, object] = {"workers": args.workers, "hop_seconds": args.hop}
    for flag, name, convert, _, _ in LIMITS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            if not value > 0:
                raise UsageError(f"{flag} must be positive")
            changes[name] = convert(value)
    host = args.host or server.DEFAULT_HOST
    token = args.token or token_from_env()
    if token is not None and not token.strip():
        raise UsageError("--token must not be empty")
    if token and args.no_token:
        raise UsageError("--token and --no-token contradict each other")
    if not is_loopback(host) and not token and not args.no_token:
        raise UsageError(f"--host {host} lets other machines upload files: set a token (--token, or "
                         f"{server.TOKEN_ENV} in the environment), or pass --no-token to serve "
                         "without one")
    hosts = [*server.LOOPBACK_NAMES, *args.allow_host]
    if not is_wildcard(host) and host.strip("[]").lower() not in hosts:
        hosts.append(host.strip("[]"))
    try:
        settings = server.ServerSettings(**changes, token=token, allowed_hosts=tuple(hosts),  # type: ignore[arg-type]
                                         cors_origins=tuple(args.cors_origin))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    from ..model import EmotionModel

    try:
        model = EmotionModel(args.model, threads=1)  # checked here, before any worker starts
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    server.serve(server.create_app(model, settings), host=host,
                 port=args.port or server.DEFAULT_PORT)
    return 0

