"""The ``music2emotion`` command: a thin layer over the library.

Each module here adds its subcommands to the parser (``register``) and runs them: predicting
and plotting (:mod:`.predict`), training, export and evaluation (:mod:`.training`), the
server (:mod:`.serve`), and tags and playlists for a music collection (:mod:`.collection`). Exit status: 0 when everything worked, 1 when some files failed,
2 for usage errors (bad options, a missing model, no input files). Errors are one line,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..engine import keep_freed_memory
from . import collection, predict, serve, training
from .common import UsageError

# every module that adds subcommands, in the order --help lists them
SUBCOMMANDS = (predict, training, serve, collection)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="music2emotion",
        description="Valence (sad to happy) and arousal (calm to energetic) of music, on a 0-1 scale "
                    "(DEAM's 1-9 with --scale deam).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"music2emotion {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"music2emotion {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
