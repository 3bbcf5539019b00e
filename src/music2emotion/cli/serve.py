"""``serve``: the web page and JSON API (the ``serve`` extra)."""

from __future__ import annotations

import argparse

from .common import UsageError, add_model, add_windows, check


def register(sub: argparse._SubParsersAction) -> None:
    # defaults live in the server package, imported only when serving (fastapi is optional)
    p = sub.add_parser("serve", help="a local web page and JSON API (needs the 'serve' extra)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    add_model(p)
    p.add_argument("--max-upload-mb", type=float, help="largest file accepted, in MB (default 50)")
    p.add_argument("--concurrency", type=int, help="files analysed at once (default: cores, at most 4)")
    add_windows(p, window=False)
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN to call the API (repeatable; default: none)")
    p.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .. import server
    except ImportError as exc:
        raise UsageError(f"serve needs the 'serve' extra: pip install 'music2emotion[serve]' ({exc})") from exc

    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError("--port must be between 1 and 65535")
    if args.max_upload_mb is not None and args.max_upload_mb <= 0:
        raise UsageError("--max-upload-mb must be positive")
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    check(hop_seconds=args.hop)
    conc = args.concurrency or server.default_concurrency()
    try:
        model = server.load_model(args.model, conc)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    given = {"host": args.host, "port": args.port, "max_upload_mb": args.max_upload_mb}
    server.run(model, concurrency=conc, hop_seconds=args.hop, cors_origins=args.cors_origin,
               **{k: v for k, v in given.items() if v is not None})
    return 0
