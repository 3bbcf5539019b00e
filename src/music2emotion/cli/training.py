"""``train``, ``export`` and ``evaluate``: the training side (the ``train`` / ``ml`` extras)."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

from ..config import SEED_WINDOW_SECONDS, FeatureSettings
from ..modelfile import BUNDLED_MODELS, DEFAULT_MODEL
from .common import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model on your own labelled songs: moods, ratings or both",
        description="Fit a model of the bundled kind (--arch accurate, fast or large: the encoder inside the "
                    "package, a quadrant head, calibrated moods and intervals) to your labels, cross-validate "
                    "it, and write RUN/emotion_model.onnx with RUN/report.md and RUN/report.json. Labels, in "
                    "any mix: CSV files (path or song_id; mood, or valence and arousal; optional artist), "
                    "folders named by mood, or DEAM's layout. --arch seed trains the seed's CNN on DEAM's "
                    "layout instead. docs/train-your-own.md has examples.")
    p.add_argument("--arch", choices=list(BUNDLED_MODELS), default=DEFAULT_MODEL,
                   help=f"what to build: a model like the bundled one of that name (default {DEFAULT_MODEL})")
    p.add_argument("--labels", action="append", default=[], metavar="CSV",
                   help="a labels CSV: path or song_id; mood (or quadrant), or valence and arousal; optional "
                        "artist (repeatable)")
    p.add_argument("--mood-folders", action="append", default=[], metavar="DIR",
                   help="a folder of folders named by mood (DIR/happy/*.mp3, DIR/sad/...) (repeatable)")
    p.add_argument("--annotations", help="DEAM's static-annotation CSV file or folder (ratings on 1-9)")
    p.add_argument("--audio-dir", metavar="DIR",
                   help="DEAM's audio (<song_id>.<ext>), and where a CSV's song_id files are when there is "
                        "no audio/ folder beside it")
    p.add_argument("--label-scale", metavar="LOW-HIGH",
                   help="the scale of the CSVs' valence and arousal ratings: 1-9, 0-1, -1-1, 1-5, 0-100, ...")
    p.add_argument("--out", required=True, help="run folder for the model, its report and pictures")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--seed", type=int, default=42, help="seed of the folds and the seed CNN's split (default 42)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--cache-dir", help="feature cache (default ~/.cache/music2emotion/features)")
    p.add_argument("--musicnn-wheel", metavar="WHL",
                   help="musicnn 0.1.0's wheel, for --arch large where the package carries no musicnn yet")
    p.add_argument("--resume", action="store_true",
                   help="--arch seed: continue the run in --out (other archs resume from the feature cache "
                        "whenever they are run again)")
    seed = p.add_argument_group("the seed's CNN only (--arch seed)")
    seed.add_argument("--window", type=float, default=None,
                      help=f"window in seconds (default {FeatureSettings().window_seconds:g}; the seed used "
                           f"{SEED_WINDOW_SECONDS:g})")
    seed.add_argument("--epochs", type=int, default=None, help="at most this many epochs (default 80)")
    seed.add_argument("--batch-size", type=int, default=None, help="default 32")
    seed.add_argument("--lr", type=float, default=None, help="default 1e-3")
    seed.add_argument("--weight-decay", type=float, default=None, help="default 1e-2")
    seed.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs (default 8)")
    seed.add_argument("--val-fraction", type=float, default=None, help="default 0.2")
    seed.add_argument("--val-ids", help="file of validation song ids (one per line) instead of a random split")
    seed.add_argument("--device", default=None, help="cpu (default) or cuda")
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


# The seed CNN's options and their defaults; other archs refuse them.
SEED_DEFAULTS = {"window": FeatureSettings().window_seconds, "epochs": 80, "batch_size": 32, "lr": 1e-3,
                 "weight_decay": 1e-2, "patience": 8, "val_fraction": 0.2, "val_ids": None, "device": "cpu"}


def cmd_train(args: argparse.Namespace) -> int:
    jobs = args.jobs or os.cpu_count() or 1
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.arch == "seed":
        return _train_seed(args, jobs)
    given = [f"--{k.replace('_', '-')}" for k in SEED_DEFAULTS if getattr(args, k) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} belong to --arch seed")
    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    missing = [m for m in ("sklearn", "skl2onnx", "onnx", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"training needs {', '.join(missing)}: pip install 'music2emotion[train,ml]'")
    from ..training.arches import arch
    from ..training.labels import parse_scale, read_labels
    from ..training.trainer import train_model

    try:
        scale = parse_scale(args.label_scale) if args.label_scale else None
    except ValueError as exc:
        raise UsageError(f"--label-scale {exc}") from None
    if args.musicnn_wheel and not Path(args.musicnn_wheel).is_file():
        raise UsageError(f"--musicnn-wheel {args.musicnn_wheel}: no such file")
    labels = read_labels(args.labels, args.mood_folders, args.annotations, args.audio_dir, scale)
    for line in labels.notes + labels.missing:
        print(line)
    if labels.missing:
        print(f"{len(labels.missing)} listed file(s) not found, skipped")
    sources = [*args.labels, *args.mood_folders, *([args.annotations] if args.annotations else [])]
    train_model(labels, arch(args.arch), args.out, folds=args.folds, seed=args.seed, jobs=jobs,
                cache_dir=args.cache_dir, musicnn_wheel=args.musicnn_wheel, sources=sources)
    return 0


def _train_seed(args: argparse.Namespace, jobs: int) -> int:
    """Today's CNN run on DEAM's layout, as before there were other archs."""
    from ..training.train import TrainConfig, train

    if not args.audio_dir or not args.annotations:
        raise UsageError("--arch seed trains on DEAM's layout: give --audio-dir and --annotations")
    if args.labels or args.mood_folders or args.label_scale or args.musicnn_wheel:
        raise UsageError("--labels, --mood-folders, --label-scale and --musicnn-wheel are for the other archs")
    opts = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in SEED_DEFAULTS.items()}
    val_ids = None
    if opts["val_ids"]:
        val_ids = [int(t) for t in Path(opts["val_ids"]).read_text().split()]
    cfg = TrainConfig(
        audio_dir=args.audio_dir, annotations=args.annotations, out=args.out,
        window_seconds=opts["window"], arch="seed", epochs=opts["epochs"],
        batch_size=opts["batch_size"], lr=opts["lr"], weight_decay=opts["weight_decay"],
        patience=opts["patience"], val_fraction=opts["val_fraction"], seed=args.seed,
        device=opts["device"], cache_dir=args.cache_dir, jobs=jobs, val_ids=val_ids,
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
