"""The seed CNN: shapes, range, any time length."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from music2emotion.training.cnn import build_model  # noqa: E402


@pytest.mark.parametrize("frames", [1292, 431, 87])
def test_output_is_batch_by_two_in_unit_range(frames):
    model = build_model("seed").eval()
    with torch.no_grad():
        y = model(torch.randn(3, 1, 64, frames))
    assert y.shape == (3, 2)
    assert ((y >= 0) & (y <= 1)).all()


def test_three_conv_blocks_and_adaptive_pooling():
    model = build_model("seed")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(convs) == len(bns) == len(pools) == 3
    assert any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in model.modules())


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("nope")
