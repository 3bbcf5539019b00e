"""``train``, ``export`` and ``evaluate``: the training side (the ``train`` / ``ml`` extras)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config import SEED_WINDOW_SECONDS, FeatureSettings
from .common import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a CNN on DEAM-layout data")
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
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("export", help="export a training checkpoint to ONNX")
    p.add_argument("checkpoint", help="best_emotion_model.pt")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("evaluate", help="accuracy of a model beside baselines, or k-fold CV of the candidates",
                       description="Score --model on rated songs (DEAM layout: --audio-dir, --annotations) "
                                   "and/or quadrant-labelled songs (--quadrants), or, without --model, "
                                   "cross-validate the candidates on DEAM and, with --quadrants, on both.")
    p.add_argument("--audio-dir", help="folder of <song_id>.<ext> audio files rated like DEAM")
    p.add_argument("--annotations", help="DEAM static-annotation CSV file or folder")
    p.add_argument("--quadrants", metavar="LABELS_CSV",
                   help="CSV of song_id, quadrant (Q1-Q4)[, artist]: songs labelled by Russell quadrant, "
                        "e.g. the 4Q set's labels.csv (docs/training.md)")
    p.add_argument("--quadrant-audio", metavar="DIR", help="their audio folder (default: audio/ beside the CSV)")
    p.add_argument("--model", help="ONNX model to score (a file, or a bundled model by name); without it, cross-validate the candidates")
    p.add_argument("--split", help="file of song ids to score --model on (default: every song)")
    p.add_argument("--folds", type=int, default=5, help="folds for cross-validation and out-of-fold baselines (default 5)")
    p.add_argument("--folds-file", help="folds.json from an earlier run, to reuse its folds")
    p.add_argument("--seed", type=int, default=42, help="seed of the fold assignment (default 42)")
    p.add_argument("--encoder", metavar="ONNX",
                   help="the pretrained AudioSet encoder (EfficientAT mn04_as.onnx), for the audioset candidates")
    p.add_argument("--candidates", help="comma-separated candidate names (default: all that the features allow)")
    p.add_argument("--out", default="evaluation", help="folder for the JSON report, tables and plots (default ./evaluation)")
    p.add_argument("--cache-dir", help="folder for cached descriptors/features")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(run=cmd_evaluate)


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.train import TrainConfig, train

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
    from ..training.export import export_checkpoint

    if not Path(args.checkpoint).is_file():
        raise UsageError(f"{args.checkpoint}: checkpoint not found")
    out = export_checkpoint(args.checkpoint, args.output)
    print(f"wrote {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..training import evaluate as ev

    jobs = args.jobs or os.cpu_count() or 1
    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    for opt, path in (("--split", args.split), ("--folds-file", args.folds_file), ("--quadrants", args.quadrants),
                      ("--annotations", args.annotations), ("--encoder", args.encoder)):
        if path and not Path(path).exists():
            raise UsageError(f"{opt} {path}: file not found")
    for opt, path in (("--audio-dir", args.audio_dir), ("--quadrant-audio", args.quadrant_audio)):
        if path and not Path(path).is_dir():
            raise UsageError(f"{opt} {path}: no such folder")
    if bool(args.audio_dir) != bool(args.annotations):
        raise UsageError("--audio-dir and --annotations go together")
    if args.quadrant_audio and not args.quadrants:
        raise UsageError("--quadrant-audio needs --quadrants")
    if args.model:
        from ..modelfile import resolve_model

        try:
            model = resolve_model(args.model)  # a file, or a bundled model's name
        except FileNotFoundError as exc:
            raise UsageError(f"--model {exc}") from exc
        if args.candidates or args.encoder or args.folds_file:
            raise UsageError("--candidates, --encoder and --folds-file are for cross-validation, without --model")
        if not args.audio_dir and not args.quadrants:
            raise UsageError("give --audio-dir and --annotations, --quadrants, or both")
        if args.split and not args.audio_dir:
            raise UsageError("--split picks DEAM songs: it needs --audio-dir and --annotations")
        ev.evaluate_model(model, args.out, audio_dir=args.audio_dir, annotations=args.annotations,
                          quadrant_labels=args.quadrants, quadrant_audio=args.quadrant_audio,
                          split=ev.read_ids(args.split) if args.split else None, folds=args.folds,
                          seed=args.seed, jobs=jobs, cache_dir=args.cache_dir)
    else:
        from ..training.recipe import run_cross_validation

        if args.split:
            raise UsageError("--split scores a trained --model; cross-validation uses every song")
        if not args.audio_dir:
            raise UsageError("cross-validation needs DEAM-rated songs: --audio-dir and --annotations")
        names = [n.strip() for n in args.candidates.split(",")] if args.candidates else None
        run_cross_validation(args.audio_dir, args.annotations, args.out, args.folds, args.seed,
                             args.folds_file, args.encoder, names, jobs, args.cache_dir,
                             quadrant_labels=args.quadrants, quadrant_audio=args.quadrant_audio)
    return 0
