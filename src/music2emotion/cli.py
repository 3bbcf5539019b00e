"""The ``music2emotion`` command: a thin layer over the library.

Exit status: 0 when everything worked, 1 when some files failed, 2 for usage errors
(bad options, a missing model, no input files). Errors are one line, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .collection import commands as collection_commands
from .config import BUNDLED_MODELS, DEFAULT_MODEL, SEED_WINDOW_SECONDS, FeatureSettings

MODEL_HELP = ("ONNX model file, or a bundled model by name: "
              + ", ".join(f"{n} (the default)" if n == DEFAULT_MODEL else n for n in BUNDLED_MODELS))

if TYPE_CHECKING:
    from .inference import EmotionModel


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="valence and arousal of audio files or folders")
    p.add_argument("paths", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument("-o", "--output", help="write rows to this CSV or JSONL file, flushed as each file finishes (default: a table on stdout)")
    p.add_argument("--format", choices=["csv", "jsonl"], help="output format (default: from the -o extension, else csv)")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--batch-size", type=int, default=16, help="windows per ONNX batch (default 16)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes, one core each (default: all cores)")
    p.add_argument("--window", type=float, default=None, help="window length in seconds (default: the model's)")
    p.add_argument("--hop", type=float, default=None, help="seconds between window starts (default: the window length)")
    p.add_argument("--timeline", action="store_true", help="also output valence/arousal per window")
    p.add_argument("--scale", choices=["unit", "deam"], default="unit", help="0-1 (default) or DEAM's 1-9 scale")
    p.add_argument("--resume", action="store_true", help="skip files already in --output and append the rest")
    p.add_argument("--plot", metavar="PNG", help="also draw every file on the valence-arousal plane to this image")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local worker processes (default), or a Ray cluster (needs the 'distributed' extra)")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="with --engine ray: the cluster (auto, or HEAD:6379; default: start Ray on this machine)")


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="draw a song's valence and arousal over time")
    p.add_argument("audio", help="an audio file")
    p.add_argument("-o", "--output", required=True, help="image to write (.png, .svg or .pdf)")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--window", type=float, default=None, help="window length in seconds (default: the model's)")
    p.add_argument("--hop", type=float, default=None, help="seconds between window starts (default: the window length)")
    p.add_argument("--scale", choices=["unit", "deam"], default="unit", help="0-1 (default) or DEAM's 1-9 scale")
    p.add_argument("--title", help="title above the plot (default: the file name)")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on DEAM-layout data")
    p.add_argument("--audio-dir", required=True, help="folder of <song_id>.<ext> audio files")
    p.add_argument("--annotations", required=True, help="DEAM static-annotation CSV file or folder")
    p.add_argument("--out", required=True, help="run folder for checkpoints, history, curves and ONNX")
    p.add_argument("--window", type=float, default=FeatureSettings().window_seconds,
                   help=f"window in seconds (default {FeatureSettings().window_seconds:g}; the seed used {SEED_WINDOW_SECONDS:g})")
    p.add_argument("--arch", default="seed", help="network architecture (default: seed)")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--patience", type=int, default=8, help="early stopping patience in epochs")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--val-ids", help="file of validation song ids (one per line) instead of a random split")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--cache-dir", help="feature cache (default ~/.cache/music2emotion/features)")
    p.add_argument("--jobs", type=int, default=None, help="processes for feature extraction")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a training checkpoint to ONNX")
    p.add_argument("checkpoint", help="best_emotion_model.pt")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")


def _add_serve(sub: argparse._SubParsersAction) -> None:
    # defaults live in server.py, which is imported only when serving (fastapi is optional)
    p = sub.add_parser("serve", help="a local web page and JSON API (needs the 'serve' extra)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--max-upload-mb", type=float, help="largest file accepted, in MB (default 50)")
    p.add_argument("--concurrency", type=int, help="files analysed at once (default: cores, at most 4)")
    p.add_argument("--hop", type=float, help="seconds between window starts (default: the window length)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN to call the API (repeatable; default: none)")
def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a model beside baselines, or k-fold CV of the candidates")
    p.add_argument("--audio-dir", required=True, help="folder of <song_id>.<ext> audio files")
    p.add_argument("--annotations", required=True, help="DEAM static-annotation CSV file or folder")
    p.add_argument("--model", help="ONNX model to score (a file, or a bundled model by name); without it, cross-validate the candidates")
    p.add_argument("--split", help="file of song ids to score --model on (default: every song)")
    p.add_argument("--folds", type=int, default=5, help="folds for cross-validation and out-of-fold baselines (default 5)")
    p.add_argument("--folds-file", help="folds.json from an earlier run, to reuse its folds")
    p.add_argument("--seed", type=int, default=42, help="seed of the fold assignment (default 42)")
    p.add_argument("--encoder", action="append", default=[],
                   help="musicnn encoder ONNX, once per tagger in recipe.ENCODERS order (scripts/reproduce_model.py builds them)")
    p.add_argument("--candidates", help="comma-separated candidate names (default: all that the features allow)")
    p.add_argument("--out", default="evaluation", help="folder for the JSON report, tables and plots (default ./evaluation)")
    p.add_argument("--cache-dir", help="folder for cached descriptors/features")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="music2emotion",
        description="Valence (sad to happy) and arousal (calm to energetic) of music, on a 0-1 scale.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_predict(sub)
    _add_plot(sub)
    _add_train(sub)
    _add_export(sub)
    _add_serve(sub)
    _add_evaluate(sub)
    collection_commands.add_parsers(sub)  # tag, read-tags, playlist
    return parser


def _table(rows: list[dict[str, object]]) -> str:
    cols = ["path", "valence", "arousal", "error"]

    def cell(row: dict[str, object], col: str) -> str:
        value = (row["error"] or row["warning"]) if col == "error" else row[col]
        return "" if value is None else str(value)

    cells = [[cell(r, c) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _check_windows(args: argparse.Namespace) -> None:
    from .config import MIN_AUDIO_SECONDS

    if args.hop is not None and not args.hop > 0:
        raise UsageError("--hop must be positive")
    if args.window is not None and not args.window >= MIN_AUDIO_SECONDS:
        raise UsageError(f"--window must be at least {MIN_AUDIO_SECONDS} s")


def _load_model(path: str | None) -> EmotionModel:
    from .inference import EmotionModel

    try:
        # one thread: with --jobs 1 this process is the one core; otherwise workers load
        # their own copy and this one only checks the file and reads its settings
        return EmotionModel(path, threads=1)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


def _require_plotting() -> None:
    from .plot import PlotUnavailable, require_matplotlib

    try:
        require_matplotlib()
    except PlotUnavailable as exc:
        raise UsageError(str(exc)) from exc


def _plane_points(args: argparse.Namespace, collected: list[tuple[str, float, float]]
                  ) -> list[tuple[str, float, float]]:
    """Points for --plot: every song row in the output file (so a resumed run draws the
    earlier files too), else this run's results."""
    from .results import read_output

    if not args.output:
        return collected
    state = read_output(args.output, args.format, repair=False, keep_rows=True)
    points = []
    for row in state.rows:
        if row.get("valence") not in (None, "") and not row.get("error"):
            points.append((Path(str(row["path"])).stem, float(row["valence"]), float(row["arousal"])))
    return points


def cmd_predict(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        return _predict_on_ray(args)
    if args.ray_address:
        raise UsageError("--ray-address is for --engine ray")
    if args.output and args.output.lower().endswith((".parquet", ".pq")):
        raise UsageError("Parquet output needs --engine ray")
    from tqdm import tqdm

    from .audio import find_audio_files, quiet_decoder_messages
    from .inference import predict_files
    from .results import RowWriter, columns_for, format_for, open_output, read_output

    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    _check_windows(args)
    if args.resume and not args.output:
        raise UsageError("--resume needs --output")
    if args.plot:
        _require_plotting()
    files = find_audio_files(args.paths)
    if not files:
        raise UsageError("no audio files found in " + ", ".join(args.paths))
    model = _load_model(args.model)
    fmt = format_for(args.output, args.format)
    total = len(files)
    if args.resume:
        try:
            state = read_output(args.output, fmt, columns=columns_for(fmt, args.timeline))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        files = [f for f in files if str(f) not in state.done]
        print(f"resuming: {total - len(files)} of {total} files already in {args.output}",
              file=sys.stderr)
    if hasattr(sys.stdout, "reconfigure"):
        # file names that are not UTF-8 are printed as their raw bytes, as ls does
        sys.stdout.reconfigure(errors="surrogateescape")
    failed = 0
    rows: list[dict[str, object]] = []
    points: list[tuple[str, float, float]] = []
    with quiet_decoder_messages():
        show = not args.no_progress and len(files) > 1 and sys.stderr.isatty()
        results = predict_files(files, model, jobs=args.jobs, hop_seconds=args.hop,
                                batch_size=args.batch_size, timeline=args.timeline,
                                window_seconds=args.window, ordered=not args.output)
        stream = None
        if args.output:
            stream, header = open_output(args.output, args.resume)
            writer = RowWriter(stream, fmt, args.scale, args.timeline, header)
        elif args.format or args.timeline:
            writer = RowWriter(sys.stdout, fmt, args.scale, args.timeline)
        else:
            writer = None
        try:
            bar = tqdm(results, total=len(files), disable=not show, unit="file")
            for pred in bar:
                if writer is not None:
                    writer.write(pred)
                else:
                    rows.append(pred.row(args.scale))
                if pred.ok:
                    if args.plot and not args.output:  # else read back from the output
                        row = pred.row(args.scale)
                        points.append((Path(pred.path).stem, row["valence"], row["arousal"]))
                    if pred.warning:
                        bar.write(f"warning: {pred.path}: {pred.warning}", file=sys.stderr)
                else:
                    failed += 1
                    bar.write(f"error: {pred.path}: {pred.error}", file=sys.stderr)
        finally:
            if stream is not None:
                stream.close()
    if rows:
        print(_table(rows))
    if args.plot:
        from .plot import plot_plane

        out = plot_plane(_plane_points(args, points), args.plot, args.scale)
        print(f"wrote {out}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(files)} files failed", file=sys.stderr)
    return 1 if failed else 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .audio import quiet_decoder_messages
    from .plot import plot_timeline

    _check_windows(args)
    _require_plotting()
    model = _load_model(args.model)
    with quiet_decoder_messages():
        pred = model.predict_file(args.audio, args.hop, timeline=True,
                                  window_seconds=args.window)
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


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    val_ids = None
    if args.val_ids:
        val_ids = [int(t) for t in Path(args.val_ids).read_text().split()]
    cfg = TrainConfig(
        audio_dir=args.audio_dir, annotations=args.annotations, out=args.out,
        window_seconds=args.window, arch=args.arch, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        patience=args.patience, val_fraction=args.val_fraction, seed=args.seed,
        device=args.device, cache_dir=args.cache_dir, jobs=args.jobs or os.cpu_count() or 1,
        val_ids=val_ids,
    )
    train(cfg, resume=args.resume)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint

    if not Path(args.checkpoint).is_file():
        raise UsageError(f"{args.checkpoint}: checkpoint not found")
    out = export_checkpoint(args.checkpoint, args.output)
    print(f"wrote {out}")
    return 0


def _predict_on_ray(args: argparse.Namespace) -> int:
    """``predict --engine ray``: the local engine's checks, rows and exit statuses."""
    from . import ray_engine
    from .audio import find_audio_files
    from .config import MIN_AUDIO_SECONDS
    from .inference import EmotionModel

    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.hop is not None and not args.hop > 0:
        raise UsageError("--hop must be positive")
    if not args.output:
        raise UsageError("--engine ray needs --output (a CSV, JSONL or Parquet file)")
    if args.timeline:
        raise UsageError("--timeline is not available with --engine ray")
    # --window and --plot come with the catalog-scale predict options (issue 4)
    window = getattr(args, "window", None)
    if window is not None and not window >= MIN_AUDIO_SECONDS:
        raise UsageError(f"--window must be at least {MIN_AUDIO_SECONDS} s")
    if getattr(args, "plot", None):
        raise UsageError("--plot is not available with --engine ray")
    if args.format and ray_engine.is_parquet(args.output):
        raise UsageError("--format does not apply to Parquet output")
    local = [p for p in args.paths if not ray_engine.is_uri(p)]
    try:
        files = [str(f) for f in find_audio_files(local)] if local else []
        files += ray_engine.expand_uris([p for p in args.paths if ray_engine.is_uri(p)])
    except (OSError, ValueError) as exc:
        raise UsageError(" ".join(str(exc).split())) from exc
    if not files:
        raise UsageError("no audio files found in " + ", ".join(args.paths))
    try:
        model = EmotionModel(args.model, threads=1)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    show = not args.no_progress and len(files) > 1 and sys.stderr.isatty()
    try:
        summary = ray_engine.run(
            files, model, args.output, args.format, args.scale, args.resume, args.hop,
            args.batch_size, window, args.ray_address, args.jobs, progress=show)
    except ValueError as exc:  # an earlier output that cannot be resumed
        raise UsageError(str(exc)) from exc
    return 1 if summary.failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from . import server
    except ImportError as exc:
        raise UsageError(f"serve needs the 'serve' extra: pip install 'music2emotion[serve]' ({exc})") from exc

    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError("--port must be between 1 and 65535")
    if args.max_upload_mb is not None and args.max_upload_mb <= 0:
        raise UsageError("--max-upload-mb must be positive")
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.hop is not None and args.hop <= 0:
        raise UsageError("--hop must be positive")
    conc = args.concurrency or server.default_concurrency()
    try:
        model = server.load_model(args.model, conc)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    given = {"host": args.host, "port": args.port, "max_upload_mb": args.max_upload_mb}
    server.run(model, concurrency=conc, hop_seconds=args.hop, cors_origins=args.cors_origin,
               **{k: v for k, v in given.items() if v is not None})
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluate as ev

    jobs = args.jobs or os.cpu_count() or 1
    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    for opt, path in (("--split", args.split), ("--folds-file", args.folds_file),
                      *(("--encoder", e) for e in args.encoder)):
        if path and not Path(path).is_file():
            raise UsageError(f"{opt} {path}: file not found")
    if args.model:
        from .inference import resolve_model

        try:
            model = resolve_model(args.model)  # a file, or a bundled model's name
        except FileNotFoundError as exc:
            raise UsageError(f"--model {exc}") from exc
        if args.candidates or args.encoder or args.folds_file:
            raise UsageError("--candidates, --encoder and --folds-file are for cross-validation, without --model")
        cache = Path(args.cache_dir) / "descriptors.npz" if args.cache_dir else None
        ev.evaluate_model(model, args.audio_dir, args.annotations, args.out,
                          ev.read_ids(args.split) if args.split else None, args.folds, args.seed, jobs, cache)
    else:
        if args.split:
            raise UsageError("--split scores a trained --model; cross-validation uses every song")
        names = [n.strip() for n in args.candidates.split(",")] if args.candidates else None
        ev.run_cross_validation(args.audio_dir, args.annotations, args.out, args.folds, args.seed,
                                args.folds_file, args.encoder, names, jobs, args.cache_dir)
    return 0


COMMANDS = {
    "predict": cmd_predict, "plot": cmd_plot, "train": cmd_train, "export": cmd_export,
    "serve": cmd_serve, "evaluate": cmd_evaluate, **collection_commands.COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"music2emotion {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"music2emotion {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
