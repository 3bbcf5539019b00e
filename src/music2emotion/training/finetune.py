"""Fine-tuning the AudioSet encoder's last blocks on DEAM's and 4Q's losses, on a CPU.

The plan that makes it fit two cores:

1. :func:`clip_mels` computes every clip's encoder input once, exactly as inference does
   (float16, 0.25 MB per 10 s clip), cached beside the other features;
2. :func:`block_inputs` runs the frozen blocks once per clip (and per gain: a gain is a
   shift of the log-mel input, so each gain the training may draw is run through the
   frozen blocks once) and keeps what the first trained block reads (48 kB per clip for
   the last three blocks);
3. :func:`finetune` trains the blocks from there on, with two linear heads on the pooled
   embedding: the four quadrants (cross-entropy on 4Q songs) and DEAM's two ratings (squared
   error on DEAM songs), in mixed batches, with mixup, time and frequency masks on the
   cached maps and gains, stopping early on an inner split of the training songs;
4. the trained encoder goes back into the ONNX graph it came from
   (:meth:`~music2emotion.training.encoder_torch.OnnxEncoder.write_onnx`), and the
   shipped heads are fitted on its embeddings as on the pretrained encoder's.

Everything is seeded and runs on one thread, so a run repeats exactly.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import stream_audio
from ..frontends import descriptor_audio, encoder_mel
from ..windows import iter_windows
from .clips import AUDIOSET_SETTINGS, _cached_rows

# A gain of g dB moves the encoder's input (log(mel + 1e-5) + 4.5) / 5 by g ln(10) / 50
# wherever the mel power is well above 1e-5 (all but silence): what a louder or quieter
# master does to the input, without recomputing the spectrogram.
GAIN_SHIFT_PER_DB = float(np.log(10.0) / 10.0 / 5.0)


def _mel(path: str) -> np.ndarray:
    """The encoder input of a clip's first window, float16 ``[1, 128, frames]``."""
    w = next(iter(iter_windows(stream_audio(path, AUDIOSET_SETTINGS.sample_rate), AUDIOSET_SETTINGS)))
    y, rate = descriptor_audio(w.samples, AUDIOSET_SETTINGS)
    return encoder_mel(y, rate, AUDIOSET_SETTINGS.encoder).astype(np.float16)


def clip_mels(paths: Sequence[str | os.PathLike[str]], cache: str | os.PathLike[str] | None = None,
              jobs: int = 1, progress: bool = True) -> np.ndarray:
    """``[clips, 1, 128, frames]`` float16 encoder inputs of 10 s clips (one window each),
    cached in ``cache``."""
    return _cached_rows(paths, _mel, ["mel", AUDIOSET_SETTINGS.to_json()], cache, jobs, progress, "mel",
                        dtype=np.float16)


@dataclass(frozen=True)
class FineTune:
    """How :func:`finetune` trains.

    ``from_block``: the first trained block (``features.N``; 16 is the final 1x1
    convolution alone, 0 the whole encoder); ``deam_weight``: DEAM's squared error, in
    units of its rating variance, beside 4Q's cross-entropy; ``gains``: the dB offsets a
    batch may draw.
    """

    from_block: int = 13
    epochs: int = 30
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    head_lr: float = 3e-3
    deam_weight: float = 1.0
    mixup: float = 0.2
    time_mask: float = 0.2
    freq_mask: float = 0.2
    gains: tuple[float, ...] = (-6.0, 0.0, 6.0)
    patience: int = 5
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def block_inputs(encoder: Any, mels: np.ndarray, block: int, gains: Sequence[float],
                 chunk: int = 64) -> np.ndarray:
    """``[len(gains), clips, ...]`` float16: what block ``block`` reads, for every clip at
    every gain, computed once by the frozen blocks before it."""
    import torch

    name = encoder.block_input(block)
    out = None
    with torch.no_grad():
        for g, gain in enumerate(gains):
            for i in range(0, len(mels), chunk):
                x = torch.from_numpy(mels[i : i + chunk].astype(np.float32) + np.float32(gain * GAIN_SHIFT_PER_DB))
                h = x if block == 0 else encoder.run("spec", x, (name,))[0]
                if out is None:
                    out = np.zeros((len(gains), len(mels), *h.shape[1:]), np.float16)
                out[g, i : i + chunk] = h.numpy().astype(np.float16)
    assert out is not None
    return out


def _mask(h: Any, fraction: float, axis: int, rng: np.random.Generator) -> None:
    """Zero a random stretch of up to ``fraction`` of ``h``'s ``axis`` in every example."""
    size = h.shape[axis]
    for i in range(h.shape[0]):
        width = int(rng.integers(0, max(1, int(size * fraction)) + 1))
        if width:
            start = int(rng.integers(0, size - width + 1))
            idx = [i, slice(None), slice(None), slice(None)]
            idx[axis] = slice(start, start + width)
            h[tuple(idx)] = 0.0


class _Heads:
    """The two linear heads trained with the encoder (torch)."""

    def __init__(self, n_in: int, seed: int):
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.quadrants = torch.nn.Linear(n_in, 4)
        self.deam = torch.nn.Linear(n_in, 2)
        for lin in (self.quadrants, self.deam):
            torch.nn.init.normal_(lin.weight, std=0.01, generator=gen)
            torch.nn.init.zeros_(lin.bias)

    def parameters(self) -> list[Any]:
        return [*self.quadrants.parameters(), *self.deam.parameters()]


def finetune(
    encoder: Any,
    deam_h: np.ndarray,
    y: np.ndarray,
    quad_h: np.ndarray,
    quadrants: np.ndarray,
    deam_val: np.ndarray,
    quad_val: np.ndarray,
    cfg: FineTune,
    log: Any = print,
) -> dict[str, Any]:
    """Train ``encoder`` (an :class:`~music2emotion.training.encoder_torch.OnnxEncoder`,
    changed in place) from ``cfg.from_block`` on.

    Parameters
    ----------
    deam_h, quad_h : numpy.ndarray
        :func:`block_inputs` of the DEAM and the quadrant clips (every gain).
    y : numpy.ndarray
        ``[n, 2]`` DEAM ratings, 0-1.
    quadrants : numpy.ndarray
        ``[m]`` quadrant labels 1-4.
    deam_val, quad_val : numpy.ndarray
        Boolean masks of the songs held out for early stopping; with none held out, every
        epoch is trained and the last one kept (a final run on every song).
    cfg : FineTune

    Returns
    -------
    dict
        ``best_epoch``, ``history`` (per epoch: training loss, validation loss, DEAM R² and
        4Q accuracy of the linear heads on the inner split) and ``seconds``.
    """
    import time

    import torch
    import torch.nn.functional as F

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    start = "spec" if cfg.from_block == 0 else encoder.block_input(cfg.from_block)
    params = encoder.train_from(cfg.from_block)
    with torch.no_grad():  # the embedding's width, from one example
        width = encoder.run(start, torch.from_numpy(deam_h[0, :1].astype(np.float32)))[0].shape[1]
    heads = _Heads(width, cfg.seed)
    opt = torch.optim.AdamW([{"params": params, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                             {"params": heads.parameters(), "lr": cfg.head_lr, "weight_decay": cfg.weight_decay}])
    y_var = torch.tensor(y[~deam_val].var(0), dtype=torch.float32)
    ymean = y[~deam_val].mean(0)
    with torch.no_grad():
        heads.deam.bias.copy_(torch.tensor(ymean, dtype=torch.float32))
    d_train, q_train = np.flatnonzero(~deam_val), np.flatnonzero(~quad_val)
    held_out = bool(deam_val.any() and quad_val.any())
    gain0 = int(np.argmin(np.abs(np.asarray(cfg.gains) - 0.0)))
    # one DEAM and one quadrant example per step, in proportion to the sets' sizes
    n_steps = int(np.ceil((len(d_train) + len(q_train)) / cfg.batch))
    frac_q = len(q_train) / (len(d_train) + len(q_train))

    def forward(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = encoder.run(start, h)[0]
        return heads.quadrants(emb), heads.deam(emb)

    def evaluate() -> dict[str, float]:
        encoder.eval()
        with torch.no_grad():
            qi, di = np.flatnonzero(quad_val), np.flatnonzero(deam_val)
            zq = torch.cat([forward(torch.from_numpy(quad_h[gain0, qi[i : i + 128]].astype(np.float32)))[0]
                            for i in range(0, len(qi), 128)])
            pd = torch.cat([forward(torch.from_numpy(deam_h[gain0, di[i : i + 128]].astype(np.float32)))[1]
                            for i in range(0, len(di), 128)])
        tq = torch.from_numpy(quadrants[qi] - 1)
        ce = float(F.cross_entropy(zq, tq))
        td = torch.tensor(y[di], dtype=torch.float32)
        mse = ((pd - td) ** 2).mean(0) / y_var
        r2 = 1 - ((pd - td) ** 2).sum(0) / ((td - td.mean(0)) ** 2).sum(0)
        return {"val_loss": ce + cfg.deam_weight * float(mse.sum()), "ce": ce,
                "accuracy": float((zq.argmax(1) == tq).float().mean()),
                "r2_valence": float(r2[0]), "r2_arousal": float(r2[1])}

    history: list[dict[str, float]] = []
    best, best_state, bad = np.inf, None, 0
    t0 = time.time()
    for epoch in range(cfg.epochs):
        encoder.train()
        losses = []
        for _ in range(n_steps):
            nq = int(rng.binomial(cfg.batch, frac_q))
            qi = rng.choice(q_train, nq, replace=False) if nq else np.zeros(0, np.int64)
            di = rng.choice(d_train, cfg.batch - nq, replace=False)
            gq = rng.integers(0, len(cfg.gains), len(qi))
            gd = rng.integers(0, len(cfg.gains), len(di))
            h = np.concatenate([quad_h[gq, qi], deam_h[gd, di]]).astype(np.float32)
            if cfg.time_mask:
                _mask(h, cfg.time_mask, 3, rng)
            if cfg.freq_mask:
                _mask(h, cfg.freq_mask, 2, rng)
            h_t = torch.from_numpy(h)
            # mixup within each set, so a quadrant song is mixed with a quadrant song
            lam = float(rng.beta(cfg.mixup, cfg.mixup)) if cfg.mixup else 1.0
            perm = np.concatenate([rng.permutation(len(qi)), len(qi) + rng.permutation(len(di))])
            h_t = lam * h_t + (1 - lam) * h_t[perm]
            zq, pd = forward(h_t)
            loss = torch.zeros(())
            if len(qi):
                tq = torch.from_numpy(quadrants[qi] - 1)
                loss = loss + frac_q * (lam * F.cross_entropy(zq[: len(qi)], tq)
                                        + (1 - lam) * F.cross_entropy(zq[: len(qi)], tq[perm[: len(qi)]]))
            td = torch.tensor(y[di], dtype=torch.float32)
            td = lam * td + (1 - lam) * td[perm[len(qi):] - len(qi)]
            loss = loss + (1 - frac_q) * cfg.deam_weight * (((pd[len(qi):] - td) ** 2).mean(0) / y_var).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        if not held_out:  # a final run on every song: every epoch is trained, the last kept
            history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "seconds": time.time() - t0})
            log(f"  epoch {epoch}: train {history[-1]['train_loss']:.3f} {history[-1]['seconds']:.0f} s")
            continue
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), **evaluate(),
               "seconds": time.time() - t0}
        history.append(row)
        log(f"  epoch {epoch}: train {row['train_loss']:.3f} val {row['val_loss']:.3f} (4Q acc {row['accuracy']:.3f}, "
            f"DEAM R² {row['r2_valence']:.3f} / {row['r2_arousal']:.3f}) {row['seconds']:.0f} s")
        if row["val_loss"] < best - 1e-4:
            best, bad = row["val_loss"], 0
            best_state = copy.deepcopy({k: v.detach().clone() for k, v in encoder.state_dict().items()})
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        encoder.load_state_dict(best_state)
    encoder.eval()
    best_epoch = int(np.argmin([r["val_loss"] for r in history])) if held_out else len(history) - 1
    return {"best_epoch": best_epoch, "history": history, "seconds": time.time() - t0}


def embeddings(encoder: Any, mels: np.ndarray, chunk: int = 64) -> np.ndarray:
    """``[clips, 384 + 527]`` embedding and logits of every clip (``mels`` from
    :func:`clip_mels`), laid out as the encoder columns of the pretrained features."""
    import torch

    rows = []
    with torch.no_grad():
        for i in range(0, len(mels), chunk):
            logits, feats = encoder(torch.from_numpy(mels[i : i + chunk].astype(np.float32)))
            rows.append(np.hstack([feats.numpy(), logits.numpy()]))
    return np.vstack(rows).astype(np.float32)


def inner_split(n: int, fraction: float, seed: int, groups: Sequence[str] | None = None) -> np.ndarray:
    """A boolean mask of about ``fraction`` of ``n`` songs for early stopping; songs of one
    group (artist) fall on one side."""
    rng = np.random.default_rng(seed)
    keys = list(groups) if groups is not None else [str(i) for i in range(n)]
    uniq = sorted(set(keys))
    held = set(rng.permutation(uniq)[: max(1, int(round(len(uniq) * fraction)))])
    return np.array([k in held for k in keys])


def save_encoder(encoder: Any, source: Any, out: str | os.PathLike[str]) -> Path:
    """Write the fine-tuned encoder as an ONNX file shaped like ``source`` (its graph)."""
    import onnx

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(encoder.write_onnx(source), str(tmp))
    os.replace(tmp, out)
    return out
