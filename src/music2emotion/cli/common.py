"""What every subcommand shares: one-line usage errors, ``--model``, the window options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import SCALES
from ..modelfile import BUNDLED_MODELS, DEFAULT_MODEL
from ..windows import OptionError, check_options

if TYPE_CHECKING:
    from ..model import EmotionModel

MODEL_HELP = ("ONNX model file, or a bundled model by name: "
              + ", ".join(f"{n} (the default)" if n == DEFAULT_MODEL else n for n in BUNDLED_MODELS))
# the flag of each option the library checks (music2emotion.windows.check_options)
FLAGS = {"window_seconds": "--window", "hop_seconds": "--hop", "batch_size": "--batch-size",
         "jobs": "--jobs"}

Command = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help=MODEL_HELP)


def add_windows(p: argparse.ArgumentParser, window: bool = True) -> None:
    if window:
        p.add_argument("--window", type=float, default=None,
                       help="window length in seconds (default: the model's)")
    p.add_argument("--hop", type=float, default=None,
                   help="seconds between window starts (default: the window length)")


def add_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=SCALES, default="unit",
                   help="0-1 (default) or DEAM's 1-9 scale")


def check(**options: Any) -> None:
    """The library's check of the window, hop, batch and jobs options, in the flags' names."""
    try:
        check_options(**options)
    except OptionError as exc:
        raise UsageError(f"{FLAGS.get(exc.option, exc.option)} {exc.requirement}") from exc


def load_model(name: str | None) -> EmotionModel:
    """The model ``--model`` names, on one thread: with ``--jobs 1`` this process is the one
    core; otherwise workers load their own copy and this one only checks the file."""
    from ..model import EmotionModel

    try:
        return EmotionModel(name, threads=1)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


def require_plotting() -> None:
    """Fail now, not after a long run, when matplotlib is missing."""
    from ..plot import PlotUnavailable, require_matplotlib

    try:
        require_matplotlib()
    except PlotUnavailable as exc:
        raise UsageError(str(exc)) from exc


def audio_files(paths: Sequence[str], skipped: list[str]) -> list[Path]:
    """Files named and audio files under folders: the one scan every command uses. The line
    that counts what the folders held that is not audio is added to ``skipped``, for the
    command's summary on stderr (:func:`print_skipped`)."""
    from ..audio import scan_audio_files

    scan = scan_audio_files(list(paths))
    if scan.summary():
        skipped.append(scan.summary())
    return scan.files


def no_audio_found(paths: Sequence[str], skipped: str = "") -> UsageError:
    return UsageError("no audio files found in " + ", ".join(paths) + (f" ({skipped})" if skipped else ""))


def print_skipped(skipped: Sequence[str]) -> None:
    for line in skipped:
        print(line, file=sys.stderr)
