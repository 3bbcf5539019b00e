"""Training on DEAM: features cached once, then epochs over in-memory spectrograms.

Recipe (the system description's): SpecAugment time and frequency masks on training batches,
AdamW with weight decay, ReduceLROnPlateau on validation loss, SmoothL1Loss, early stopping
after ``patience`` epochs without improvement. Every epoch appends train/validation loss
and MAE to ``history.csv`` and writes ``last.pt``; an improvement also writes
``best_emotion_model.pt``. Both hold model, optimizer, scheduler, epoch, settings and the
split, so ``resume=True`` continues a stopped run exactly. At the end the best epoch is
exported to ``emotion_model_improved.onnx`` and the curves are drawn to
``training_curves.png``. Requires torch and matplotlib (the ``train`` extra).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import FeatureSettings
from . import metrics
from .cnn import build_model
from .data import FeatureCache, load_dataset, split_ids
from .export import export_checkpoint
from .features import default_cache_dir

BEST = "best_emotion_model.pt"
LAST = "last.pt"
ONNX_NAME = "emotion_model_improved.onnx"
HISTORY = "history.csv"
CURVES = "training_curves.png"
HISTORY_COLUMNS = ["epoch", "train_loss", "train_mae", "val_loss", "val_mae", "val_r2_valence",
                   "val_r2_arousal", "lr"]


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in the checkpoint)."""

    audio_dir: str
    annotations: str
    out: str
    window_seconds: float = FeatureSettings().window_seconds
    arch: str = "seed"
    epochs: int = 80
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 8
    lr_patience: int = 3
    val_fraction: float = 0.2
    seed: int = 42
    device: str = "cpu"
    cache_dir: str | None = None
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    val_ids: list[int] | None = None  # a fixed validation set instead of a random split
    freq_masks: int = 2
    freq_mask_width: int = 8
    time_masks: int = 2
    time_mask_fraction: float = 0.1


def spec_augment(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """SpecAugment: zero random frequency bands and time spans, independently per example.

    Zero is the per-window mean after normalisation, so a mask removes information without
    adding an out-of-distribution value.
    """
    b, _, n_mels, n_frames = x.shape
    keep = torch.ones(b, 1, n_mels, n_frames, dtype=torch.bool, device=x.device)
    mels = torch.arange(n_mels, device=x.device).view(1, -1, 1)
    frames = torch.arange(n_frames, device=x.device).view(1, 1, -1)
    max_t = max(1, int(n_frames * cfg.time_mask_fraction))
    for count, width, axis, size in (
        (cfg.freq_masks, cfg.freq_mask_width, mels, n_mels),
        (cfg.time_masks, max_t, frames, n_frames),
    ):
        for _ in range(count):
            w = torch.randint(0, width + 1, (b, 1, 1), generator=gen).to(x.device)
            start = (torch.rand(b, 1, 1, generator=gen).to(x.device) * (size - w + 1)).long()
            keep &= ~((axis >= start) & (axis < start + w)).unsqueeze(1)
    return x * keep


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        w.writeheader()
        w.writerows(history)
    os.replace(tmp, path)


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a run killed mid-write never leaves a torn checkpoint


def plot_history(history: list[dict[str, float]], out: str | os.PathLike[str]) -> None:
    """Loss and MAE per epoch, train vs validation, side by side."""
    from ..plot import new_figure

    epochs = [h["epoch"] for h in history]
    fig = new_figure(10, 4, dpi=120)
    axes = fig.subplots(1, 2)
    for ax, key, title in ((axes[0], "loss", "SmoothL1 loss"), (axes[1], "mae", "MAE (0-1 scale)")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(out)


def _predict(model: nn.Module, x: torch.Tensor, device: str, batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(x[i : i + batch].to(device)).cpu())
    return torch.cat(out).numpy()


def train(cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) training; returns the best epoch's validation metrics."""
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt: dict[str, Any] | None = None
    if resume:
        source = out / LAST if (out / LAST).exists() else out / BEST
        if not source.exists():
            raise FileNotFoundError(f"{out}: nothing to resume (no {LAST} or {BEST})")
        ckpt = torch.load(source, map_location="cpu", weights_only=False)
        saved = TrainConfig(**ckpt["config"])
        # the run's identity comes from the checkpoint; only where it runs may change
        cfg = TrainConfig(**{**asdict(saved), "device": cfg.device, "jobs": cfg.jobs,
                             "epochs": max(cfg.epochs, saved.epochs), "out": cfg.out})
        log(f"resuming {source} at epoch {ckpt['epoch'] + 1}")

    torch.manual_seed(cfg.seed)
    settings = FeatureSettings(window_seconds=cfg.window_seconds)
    data = load_dataset(cfg.audio_dir, cfg.annotations)
    log(data.report())
    if ckpt is not None:
        train_ids, val_ids = ckpt["split"]["train"], ckpt["split"]["val"]
    elif cfg.val_ids is not None:
        val_ids = sorted(set(cfg.val_ids) & set(data.ids))
        train_ids = sorted(set(data.ids) - set(val_ids))
    else:
        train_ids, val_ids = split_ids(data.ids, cfg.val_fraction, cfg.seed)
    missing = (set(train_ids) | set(val_ids)) - set(data.ids)
    if missing:
        raise ValueError(f"split names {len(missing)} song(s) without audio, e.g. {sorted(missing)[:3]}")
    (out / "split.json").write_text(json.dumps({"train": train_ids, "val": val_ids}))

    cache = FeatureCache(cfg.cache_dir or default_cache_dir(), settings)
    feats = torch.from_numpy(cache.load_all(data.paths, jobs=cfg.jobs))
    targets = torch.from_numpy(data.targets)
    pos = {sid: i for i, sid in enumerate(data.ids)}
    tr = torch.tensor([pos[i] for i in train_ids])
    va = torch.tensor([pos[i] for i in val_ids])
    log(f"train {len(tr)} / validation {len(va)} songs; input {tuple(feats.shape[1:])}")

    device = cfg.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    model = build_model(cfg.arch).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=cfg.lr_patience)
    # on 0-1 targets every error is below beta=1, so this is half the squared error: the
    # loss R² measures, with L1's gentler gradient kept for outliers on other scales
    loss_fn = nn.SmoothL1Loss()
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, float]] = []
    start, best, bad, best_epoch = 1, float("inf"), 0, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        gen.set_state(ckpt["generator"])
        history = ckpt["history"]
        start, best, bad, best_epoch = ckpt["epoch"] + 1, ckpt["best_val"], ckpt["bad_epochs"], ckpt["best_epoch"]

    bar = tqdm(range(start, cfg.epochs + 1), desc="epochs", unit="epoch", initial=start - 1,
               total=cfg.epochs)
    for epoch in bar:
        if bad >= cfg.patience:
            break
        model.train()
        order = tr[torch.randperm(len(tr), generator=gen)]
        tot_loss = tot_mae = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            if len(idx) < 2:  # batch norm needs two examples
                continue
            x = spec_augment(feats[idx], cfg, gen).to(device)
            y = targets[idx].to(device)
            pred = model(x)
            loss = loss_fn(pred, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot_loss += loss.item() * len(idx)
            tot_mae += (pred - y).abs().mean().item() * len(idx)
        val_pred = _predict(model, feats[va], device)
        val_true = targets[va].numpy()
        val_loss = float(loss_fn(torch.from_numpy(val_pred), targets[va]))
        r2 = metrics.r2(val_true, val_pred)
        sched.step(val_loss)
        history.append({
            "epoch": epoch, "train_loss": tot_loss / len(tr), "train_mae": tot_mae / len(tr),
            "val_loss": val_loss, "val_mae": float(np.abs(val_pred - val_true).mean()),
            "val_r2_valence": float(r2[0]), "val_r2_arousal": float(r2[1]),
            "lr": opt.param_groups[0]["lr"],
        })
        _write_history(out / HISTORY, history)
        bar.set_postfix(train=f"{tot_loss / len(tr):.4f}", val=f"{val_loss:.4f}",
                        r2=f"{r2[0]:.2f}/{r2[1]:.2f}")
        improved = val_loss < best
        if improved:
            best, bad, best_epoch = val_loss, 0, epoch
        else:
            bad += 1
        state = {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "generator": gen.get_state(), "epoch": epoch, "best_epoch": best_epoch, "best_val": best,
            "bad_epochs": bad, "history": history, "arch": cfg.arch, "settings": settings.to_dict(),
            "config": asdict(cfg), "split": {"train": train_ids, "val": val_ids},
        }
        if improved:
            state["val_metrics"] = metrics.report(val_true, val_pred)
            _save(out / BEST, state)
        _save(out / LAST, state)
    bar.close()
    if bad >= cfg.patience:
        log(f"early stopping: no validation improvement for {cfg.patience} epochs")

    best_state = torch.load(out / BEST, map_location="cpu", weights_only=False)
    export_checkpoint(out / BEST, out / ONNX_NAME)
    plot_history(best_state["history"] if not history else history, out / CURVES)
    result = {"best_epoch": best_epoch, "validation": best_state["val_metrics"]}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    log(f"best epoch {best_epoch}: " + ", ".join(
        f"{t} R² {m['r2']:.3f} MAE {m['mae']:.3f} r {m['pearson_r']:.3f}"
        for t, m in best_state["val_metrics"].items()))
    return result
