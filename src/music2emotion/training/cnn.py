"""The emotion CNN (PyTorch; imported only by training and export, never by inference).

Three blocks of conv 3x3 -> batch norm -> ReLU -> max pool 2x2, then adaptive average
pooling, so any number of time frames works: the seed's ``[batch, 1, 64, 1292]``, a 10 s
window, or anything else. A small head maps the pooled embedding to
``[batch, 2] = [valence, arousal]`` in [0, 1] through a sigmoid.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # the system description's 3-layer CNN
    "seed": {"channels": (16, 32, 64), "hidden": 64, "dropout": 0.3},
}


class EmotionCNN(nn.Module):
    """``[batch, 1, n_mels, frames] -> [batch, 2]`` valence/arousal in [0, 1]."""

    def __init__(
        self, channels: tuple[int, ...] = (16, 32, 64), hidden: int = 64, dropout: float = 0.3
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c_in, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 2),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


def build_model(arch: str = "seed") -> EmotionCNN:
    """Instantiate a named architecture from :data:`ARCHITECTURES`."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return EmotionCNN(**ARCHITECTURES[arch])
