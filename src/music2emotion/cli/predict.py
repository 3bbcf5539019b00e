"""``predict`` (on this machine or a Ray cluster) and ``plot``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO

from ..model import EmotionModel
from ..output import FORMATS, Output, RowWriter, song_rows
from ..plot import PlanePoint
from ..prediction import Prediction
from ..windows import DEFAULT_BATCH
from .common import (
    UsageError,
    add_model,
    add_scale,
    add_windows,
    audio_files,
    check,
    load_model,
    no_audio_found,
    print_skipped,
    require_plotting,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="valence and arousal of audio files or folders")
    p.add_argument("paths", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument("-o", "--output", help="write rows to this CSV, JSONL or Parquet file, flushed as "
                                          "each file finishes (default: stdout, as a table; as CSV "
                                          "or JSON Lines rows with --timeline or --format)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from the -o extension, else csv)")
    add_model(p)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                   help=f"windows per ONNX batch (default {DEFAULT_BATCH})")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes, one core each (default: all cores); "
                        "with --engine ray, the CPUs of a Ray instance started here")
    add_windows(p)
    p.add_argument("--timeline", action="store_true", help="also output valence/arousal per window")
    add_scale(p)
    p.add_argument("--resume", action="store_true", help="skip files already in --output and append the rest")
    p.add_argument("--plot", metavar="PNG", help="also draw every file on the valence-arousal plane to this image")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local worker processes (default), or a Ray cluster (needs the 'distributed' extra)")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="with --engine ray: the cluster (auto, or HEAD:6379; default: start Ray on this machine)")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("plot", help="draw a song's valence and arousal over time")
    p.add_argument("audio", help="an audio file")
    p.add_argument("-o", "--output", required=True, help="image to write (.png, .svg or .pdf)")
    add_model(p)
    add_windows(p)
    add_scale(p)
    p.add_argument("--title", help="title above the plot (default: the file name)")
    p.set_defaults(run=cmd_plot)


def _table(rows: list[dict[str, object]]) -> str:
    """The rows as the table ``predict`` prints without ``-o``: the values, the quadrant word
    (only from a model with a mood head), the warning (only when a row has one) and the error."""
    optional = [c for c in ("mood", "warning") if any(r.get(c) for r in rows)]
    cols = ["path", "valence", "arousal", *optional, "error"]

    def cell(row: dict[str, object], col: str) -> str:
        value = row[col]
        return "" if value is None else str(value)

    cells = [[cell(r, c) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _input_files(paths: list[str], ray: bool, skipped: list[str]) -> list[str]:
    """Files named or found under folders; with Ray, object-storage URIs too. The line
    counting what folders held that is not audio goes into ``skipped``."""
    if not ray:
        return [str(f) for f in audio_files(paths, skipped)]
    from .. import ray_engine
    from ..audio import scan_audio_files

    local = [p for p in paths if not ray_engine.is_uri(p)]
    try:
        scan = scan_audio_files(local)  # local and object-storage skips in one count
        uris = ray_engine.expand_uris([p for p in paths if ray_engine.is_uri(p)], skipped=scan.skipped)
    except (OSError, ValueError) as exc:
        raise UsageError(" ".join(str(exc).split())) from exc
    if scan.summary():
        skipped.append(scan.summary())
    return [str(f) for f in scan.files] + uris


def _plane_points(args: argparse.Namespace, collected: list[PlanePoint]) -> list[PlanePoint]:
    """Points for --plot: every song row in the output file (so a resumed run draws the
    earlier files too), else this run's results."""
    if not args.output:
        return collected
    return [PlanePoint.from_row(Path(str(row["path"])).stem, row)
            for row in song_rows(args.output, args.format)
            if row.get("valence") not in (None, "") and not row.get("error")]


def _engine(args: argparse.Namespace, model: EmotionModel, files: list[str]
            ) -> tuple[AbstractContextManager[object], Iterable[Prediction]]:
    """Where the files are predicted, and their results as they come."""
    options = {"model": model, "window_seconds": args.window, "hop_seconds": args.hop,
               "batch_size": args.batch_size, "timeline": args.timeline}
    if args.engine == "ray":
        from .. import ray_engine

        if not files:
            return nullcontext(), []
        return (ray_engine.running(args.ray_address, args.jobs),
                _later(lambda: ray_engine.predict(files, **options)))
    from ..audio import quiet_decoder_messages
    from ..engine import predict_files

    return quiet_decoder_messages(), _later(
        lambda: predict_files(files, **options, jobs=args.jobs, ordered=not args.output))


def _later(make: Callable[[], Iterable[Prediction]]) -> Iterator[Prediction]:
    """Start the engine only when the first result is asked for (inside its context)."""
    yield from make()


def cmd_predict(args: argparse.Namespace) -> int:
    ray = args.engine == "ray"
    if args.ray_address and not ray:
        raise UsageError("--ray-address is for --engine ray")
    if ray and not args.output:
        raise UsageError("--engine ray needs --output (a CSV, JSONL or Parquet file)")
    if args.resume and not args.output:
        raise UsageError("--resume needs --output")
    check(window_seconds=args.window, hop_seconds=args.hop, batch_size=args.batch_size, jobs=args.jobs)
    if args.plot:
        require_plotting()
    skipped: list[str] = []
    files = _input_files(args.paths, ray, skipped)
    if not files:
        raise no_audio_found(args.paths, "; ".join(skipped))
    model = load_model(args.model)
    out = None
    if args.output:
        try:
            out = Output(args.output, fmt=args.format, scale=args.scale, timeline=args.timeline,
                         resume=args.resume)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if args.resume:
            total = len(files)
            files = [f for f in files if f not in out.done]
            print(f"resuming: {total - len(files)} of {total} files already in {args.output}",
                  file=sys.stderr)
    context, results = _engine(args, model, files)
    if hasattr(sys.stdout, "reconfigure"):
        # file names that are not UTF-8 are printed as their raw bytes, as ls does
        sys.stdout.reconfigure(errors="surrogateescape")
    with context:
        failed, points, rows = _write(results, len(files), out, args)
    if rows:
        print(_table(rows))
    if args.plot:
        from ..plot import plot_plane

        written = plot_plane(_plane_points(args, points), args.plot, args.scale)
        print(f"wrote {written}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(files)} files failed", file=sys.stderr)
    print_skipped(skipped)
    return 1 if failed else 0


def _write(results: Iterable[Prediction], total: int, out: Output | None, args: argparse.Namespace
           ) -> tuple[int, list[PlanePoint], list[dict[str, object]]]:
    """Every result to the output (or stdout), a line per failed file; returns the number
    that failed, this run's points for --plot and the rows of the stdout table."""
    from tqdm import tqdm

    failed = 0
    rows: list[dict[str, object]] = []
    points: list[PlanePoint] = []
    stream: IO[str] | None = None
    writer: Output | RowWriter | None = out
    if out is None and (args.format or args.timeline):
        stream = sys.stdout
        writer = RowWriter(stream, args.format or "csv", args.scale, args.timeline)
    show = not args.no_progress and total > 1 and sys.stderr.isatty()
    with out if out is not None else nullcontext():
        bar = tqdm(results, total=total, disable=not show, unit="file")
        for pred in bar:
            if writer is not None:
                writer.write(pred)
            else:
                rows.append(pred.row(args.scale))
            if not pred.ok:
                failed += 1
                bar.write(f"error: {pred.path}: {pred.error}", file=sys.stderr)
                continue
            if args.plot and not args.output:  # else read back from the output
                points.append(PlanePoint.from_row(Path(pred.path).stem, pred.row(args.scale)))
            if pred.warning:
                bar.write(f"warning: {pred.path}: {pred.warning}", file=sys.stderr)
    return failed, points, rows


def cmd_plot(args: argparse.Namespace) -> int:
    from ..audio import quiet_decoder_messages
    from ..plot import plot_timeline

    check(window_seconds=args.window, hop_seconds=args.hop)
    require_plotting()
    model = load_model(args.model)
    with quiet_decoder_messages():
        pred = model.predict_file(args.audio, window_seconds=args.window, hop_seconds=args.hop,
                                  timeline=True)
    if not pred.ok:
        print(f"error: {pred.path}: {pred.error}", file=sys.stderr)
        return 1
    out = plot_timeline(pred, args.output, args.scale, args.title)
    row = pred.row(args.scale)
    print(f"{pred.path}: valence {row['valence']}, arousal {row['arousal']} "
          f"over {pred.windows} window{'s' * (pred.windows != 1)}; wrote {out}")
    if pred.warning:
        print(f"warning: {pred.path}: {pred.warning}", file=sys.stderr)
    return 0
