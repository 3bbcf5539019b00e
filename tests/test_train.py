"""Training end to end on a generated DEAM-layout set whose labels follow the sound."""

from __future__ import annotations

import csv
import json

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # training

from music2emotion.training.train import (  # noqa: E402
    BEST,
    CURVES,
    HISTORY,
    LAST,
    ONNX_NAME,
    TrainConfig,
    spec_augment,
    train,
)


def _history(out):
    with (out / HISTORY).open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def run(trained_run):
    return trained_run


def test_writes_all_artifacts(run):
    out, _ = run
    for name in (BEST, LAST, ONNX_NAME, HISTORY, CURVES, "split.json", "metrics.json"):
        assert (out / name).stat().st_size > 0, name


def test_learns_beyond_first_epoch_and_mean_predictor(run, deam_like):
    out, result = run
    hist = _history(out)
    best = min(h["val_loss"] for h in hist)
    assert best < hist[0]["val_loss"]
    split = json.loads((out / "split.json").read_text())
    from music2emotion.training.data import load_dataset

    ds = load_dataset(*deam_like)
    pos = {sid: i for i, sid in enumerate(ds.ids)}
    tr = ds.targets[[pos[i] for i in split["train"]]]
    va = ds.targets[[pos[i] for i in split["val"]]]
    mean_loss = float(torch.nn.SmoothL1Loss()(torch.full_like(torch.from_numpy(va), 0) + torch.from_numpy(tr.mean(0)),
                                              torch.from_numpy(va)))
    assert best < mean_loss
    assert result["validation"]["arousal"]["r2"] > 0


def test_history_tracks_loss_and_mae_for_both_sets(run):
    hist = _history(run[0])
    assert {"train_loss", "train_mae", "val_loss", "val_mae"} <= set(hist[0])
    assert [h["epoch"] for h in hist] == list(range(1, len(hist) + 1))


def test_split_is_reproducible(run, deam_like, tmp_path):
    from music2emotion.training.data import load_dataset, split_ids

    split = json.loads((run[0] / "split.json").read_text())
    ds = load_dataset(*deam_like)
    assert split_ids(ds.ids, 0.25, 0) == (split["train"], split["val"])


def test_resume_continues_where_it_stopped(train_config, tmp_path):
    out = tmp_path / "run"
    train(train_config(out, epochs=2), log=lambda _: None)
    ckpt = torch.load(out / LAST, weights_only=False)
    assert ckpt["epoch"] == 2 and {"model", "optimizer", "scheduler", "settings", "split"} <= set(ckpt)
    train(train_config(out, epochs=4), resume=True, log=lambda _: None)
    hist = _history(out)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert torch.load(out / LAST, weights_only=False)["split"] == ckpt["split"]


def test_resume_without_a_run_is_a_clear_error(train_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(train_config(tmp_path / "none"), resume=True, log=lambda _: None)


def test_spec_augment_masks_bands_and_spans():
    cfg = TrainConfig(audio_dir="", annotations="", out="", freq_masks=2, freq_mask_width=8,
                      time_masks=2, time_mask_fraction=0.1)
    x = torch.ones(16, 1, 64, 200)
    y = spec_augment(x, cfg, torch.Generator().manual_seed(0))
    zero = (y == 0)
    assert zero.any() and not zero.all()
    assert torch.equal(x, torch.ones_like(x))  # the input is left untouched
    # masks are whole bands or whole spans, never scattered points
    masked_rows = zero.all(dim=3).sum(dim=(1, 2))
    masked_cols = zero.all(dim=2).sum(dim=(1, 2))
    assert (masked_rows <= 16).all() and (masked_cols <= 40).all()
    assert (masked_rows + masked_cols > 0).float().mean() > 0.5
