"""Fine-tune the AudioSet encoder on DEAM and 4Q, fold by fold, against the frozen encoder.

    python scripts/finetune_encoder.py --deam ../shared/deam --quadrants ../shared/4q/labels.csv \\
        --encoder ../shared/encoders/efficientat_mn04/mn04_as.onnx --out runs/finetune \\
        --config "from_block=15" --config "from_block=14" --config "from_block=13"

For each ``--config`` (keyword arguments of :class:`music2emotion.training.finetune.FineTune`),
on 0.4's folds (DEAM in 5 random folds, 4Q in 5 folds
grouped by artist, fold k of both held out together): fine-tune a copy of the encoder on the
other folds (an artist-grouped inner split of them for early stopping), embed every clip with
it, and score the bundled models' heads on fold k (the one answer on the embedding, DEAM's
convention on the embedding and the mel statistics). The frozen encoder is scored the same
way. Writes ``finetune.md`` (fold by fold, and the mean) and ``finetune.json``; each fold's
embeddings are kept in ``--out`` so a killed run redoes only what is missing; ``--only`` runs
some folds, so that two processes (with their own ``--out`` and one ``--cache-dir``) share
the folds of a long configuration.

``--final CONFIG`` instead fine-tunes on every song of both sets for ``--epochs`` epochs (the
fold runs' median best epoch) and writes the encoder as an ONNX file shaped like the
original (``--out``/encoder.onnx), which ``training.graph.audioset_ear`` makes an ear of.

CPU only, one thread, seeded. Needs the ``train`` and ``ml`` extras.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from music2emotion.training import evaluate as ev
from music2emotion.training import finetune as ft
from music2emotion.training import metrics, recipe
from music2emotion.training.answer import Answer, deam_scale
from music2emotion.training.data import load_dataset
from music2emotion.training.quadrants import TABLE_SCORES, load_quadrants, quadrant_scores

SCORES = {"dv": "DEAM V R²", "da": "DEAM A R²", **TABLE_SCORES}


def parse_config(text: str) -> ft.FineTune:
    """``from_block=13, lr=3e-4`` (Python literals) as a :class:`FineTune`."""
    import ast

    call = ast.parse(f"f({text})", mode="eval").body
    return ft.FineTune(**{kw.arg: ast.literal_eval(kw.value) for kw in call.keywords})


def score_fold(emb_d: np.ndarray, emb_q: np.ndarray, x: np.ndarray, xq: np.ndarray, y: np.ndarray,
               quadrants: np.ndarray, d_test: np.ndarray, q_test: np.ndarray) -> dict[str, float]:
    """The bundled heads fitted on the other folds' rows, scored on fold k: ``emb_*`` the
    encoder's embedding of every clip, ``x``/``xq`` the feature rows (for the mel statistics)."""
    cols = recipe.audioset_columns("embedding", "melstats")
    fd, fq = x.copy(), xq.copy()
    fd[:, recipe.audioset_columns("embedding")], fq[:, recipe.audioset_columns("embedding")] = emb_d, emb_q
    d_train, q_train = np.setdiff1d(np.arange(len(y)), d_test), np.setdiff1d(np.arange(len(quadrants)), q_test)
    answer = Answer(recipe.ANSWER_COLUMNS, recipe.ANSWER_C).fit(fq[q_train], quadrants[q_train])
    answer.scale = deam_scale(answer.margins(fd[d_train]), y[d_train, 1])
    s = quadrant_scores(quadrants[q_test], answer.values(fq[q_test]))
    cand = recipe.candidates()[recipe.SHIPPED]
    deam = cand.make().fit(fd[d_train][:, cols], y[d_train])
    r2 = metrics.r2(y[d_test], deam.predict(fd[d_test][:, cols]))
    return {"dv": float(r2[0]), "da": float(r2[1]), **{k: float(s[k]) for k in TABLE_SCORES}}


def check_port(source, path: str, mels: np.ndarray) -> None:
    """The torch port gives ONNX Runtime's outputs on real clips to 1e-5 of each output's
    largest magnitude, or the run stops: float32 sums in another order differ by a few units
    in the last place, which on logits of up to 16 is 2e-5 absolute."""
    import onnxruntime as ort
    import torch

    from music2emotion.training.encoder_torch import OnnxEncoder

    x = mels.astype(np.float32)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["logits", "features"], {"spec": x})
    with torch.no_grad():
        got = OnnxEncoder(source).eval()(torch.from_numpy(x))
    worst = max(float(np.abs(g.numpy() - w).max() / np.abs(w).max()) for g, w in zip(got, want))
    print(f"torch port against ONNX Runtime on {len(x)} clips: max |diff| {worst:.1e} of the outputs' range")
    if worst > 1e-5:
        raise SystemExit("the torch port of the encoder does not match its ONNX graph")


def table(rows: dict[str, list[dict[str, float]]], folds: list[int]) -> str:
    """Fold by fold (``folds``: their numbers) and the mean, one block per encoder."""
    head = ["encoder", "fold", *SCORES.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, scores in rows.items():
        for k, r in zip(folds, scores):
            lines.append(f"| {name} | {k} | " + " | ".join(f"{r[c]:.3f}" for c in SCORES) + " |")
        lines.append(f"| **{name}** | mean | " + " | ".join(
            f"**{np.mean([r[c] for r in scores]):.3f}**" for c in SCORES) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deam", required=True, help="DEAM folder with audio/ and annotations/")
    ap.add_argument("--quadrants", required=True, help="quadrant labels CSV (the 4Q set's labels.csv)")
    ap.add_argument("--encoder", required=True, help="the EfficientAT mn04_as ONNX file")
    ap.add_argument("--out", default="runs/finetune")
    ap.add_argument("--cache-dir", help="feature cache folder (default: --out)")
    ap.add_argument("--config", action="append", default=[], help="FineTune keyword arguments (repeat)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--only", type=int, nargs="+", help="run and report only these folds (0-based)")
    ap.add_argument("--final", help="fine-tune on every song with this config and write encoder.onnx")
    ap.add_argument("--epochs", type=int, help="with --final: the epochs to train")
    args = ap.parse_args()
    import onnx
    import torch

    from music2emotion.training.encoder_torch import OnnxEncoder

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir) if args.cache_dir else out
    data = load_dataset(Path(args.deam) / "audio", Path(args.deam) / "annotations")
    qs = load_quadrants(args.quadrants)
    with threadpool_limits(1):
        x = recipe.audioset_features(data.paths, args.encoder, cache / "deam")
        xq = recipe.audioset_features(qs.paths, args.encoder, cache / "quadrants")
        mel_d = ft.clip_mels(data.paths, cache / "deam" / "mel.npz")
        mel_q = ft.clip_mels(qs.paths, cache / "quadrants" / "mel.npz")
    y = data.targets.astype(np.float64)
    source = onnx.load(args.encoder)
    artists = np.array(qs.artists)
    check_port(source, args.encoder, mel_d[:4])

    if args.final:
        cfg = parse_config(args.final)
        if not args.epochs:
            ap.error("--final needs --epochs (the fold runs' median best epoch)")
        cfg = ft.FineTune(**{**cfg.to_dict(), "epochs": args.epochs, "patience": args.epochs})
        enc = OnnxEncoder(source)
        with threadpool_limits(1):
            hd = ft.block_inputs(enc, mel_d, cfg.from_block, cfg.gains)
            hq = ft.block_inputs(enc, mel_q, cfg.from_block, cfg.gains)
            # no song held out: every epoch is trained, the last one kept
            info = ft.finetune(enc, hd, y, hq, qs.quadrants, np.zeros(len(y), bool), np.zeros(len(qs.ids), bool),
                               cfg)
        path = ft.save_encoder(enc, source, out / "encoder.onnx")
        ev.write_json(out / "final.json", {"config": cfg.to_dict(), "history": info["history"]})
        print(f"wrote {path} ({info['seconds']:.0f} s)")
        return 0

    folds = ev.kfold(data.ids, args.folds, args.seed)
    d_idx = ev.fold_indices(data.ids, folds)
    from music2emotion.training.quadrants import group_folds

    q_pos = {s: i for i, s in enumerate(qs.ids)}
    q_idx = [np.array([q_pos[s] for s in f]) for f in group_folds(qs, args.folds, args.seed)]
    only = sorted(set(args.only)) if args.only else list(range(args.folds))
    if not set(only) <= set(range(args.folds)):
        ap.error(f"--only takes folds from 0 to {args.folds - 1}")
    d_idx, q_idx = [d_idx[k] for k in only], [q_idx[k] for k in only]
    emb = recipe.audioset_columns("embedding")
    rows: dict[str, list[dict[str, float]]] = {"frozen": []}
    with threadpool_limits(1):
        for d_test, q_test in zip(d_idx, q_idx):
            rows["frozen"].append(score_fold(x[:, emb], xq[:, emb], x, xq, y, qs.quadrants, d_test, q_test))
    report: dict = {"folds": args.folds, "seed": args.seed, "run": only, "configs": {}}
    for text in args.config:
        cfg = parse_config(text)
        name = ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items() if v != getattr(ft.FineTune(), k)) or "default"
        enc0 = OnnxEncoder(source)
        with threadpool_limits(1):
            hd = ft.block_inputs(enc0, mel_d, cfg.from_block, cfg.gains)
            hq = ft.block_inputs(enc0, mel_q, cfg.from_block, cfg.gains)
        rows[name], runs = [], []
        for k, d_test, q_test in zip(only, d_idx, q_idx):
            saved = out / f"{name.replace(', ', '_').replace('=', '')}_fold{k}.npz"
            d_train = np.setdiff1d(np.arange(len(y)), d_test)
            q_train = np.setdiff1d(np.arange(len(qs.ids)), q_test)
            if saved.is_file():
                with np.load(saved) as f:
                    emb_d, emb_q, best = f["deam"], f["quad"], int(f["best_epoch"])
            else:
                enc = OnnxEncoder(source)
                t0 = time.time()
                with threadpool_limits(1):
                    info = ft.finetune(enc, hd[:, d_train], y[d_train], hq[:, q_train], qs.quadrants[q_train],
                                       ft.inner_split(len(d_train), 0.15, k),
                                       ft.inner_split(len(q_train), 0.15, k, list(artists[q_train])), cfg,
                                       log=lambda s: None)
                    emb_d, emb_q = ft.embeddings(enc, mel_d)[:, :384], ft.embeddings(enc, mel_q)[:, :384]
                best = info["best_epoch"]
                np.savez(saved, deam=emb_d, quad=emb_q, best_epoch=best)
                print(f"{name} fold {k}: best epoch {best}, {time.time() - t0:.0f} s", flush=True)
            with threadpool_limits(1):
                rows[name].append(score_fold(emb_d, emb_q, x, xq, y, qs.quadrants, d_test, q_test))
            runs.append(best)
        report["configs"][name] = {"config": cfg.to_dict(), "best_epochs": runs, "folds": rows[name]}
    report["frozen"] = rows["frozen"]
    md = table(rows, only)
    print(md)
    (out / "finetune.md").write_text(md + "\n")
    ev.write_json(out / "finetune.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
