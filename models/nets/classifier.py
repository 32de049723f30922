"""The per-dataset classifier whose features and softmax the sample-quality scores read (models/scores.py).

A small LeNet-5-like conv net: two 5x5 conv + batch norm + ReLU + 2x2 max-pool blocks (16, 32 channels; the
batch norms fold into the convolutions at inference, so they cost nothing when scoring), a FEATURES-unit
ReLU layer (the penultimate layer: the features of FD, KID, precision and recall) and a linear class layer.
It works on any (C, H, W) image with H and W divisible by 4 (MNIST 1x28x28, CIFAR-10 3x32x32).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

FEATURES = 128


class Classifier(nn.Module):
    def __init__(self, image_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        c, h, w = image_shape
        self.image_shape = (c, h, w)
        self.convs = nn.Sequential(
            nn.Conv2d(c, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, H/2, W/2)
            nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, H/4, W/4)
        )
        self.penultimate = nn.Sequential(nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, n_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, C*H*W) in [0, 1] -> (features (B, FEATURES), logits (B, classes))."""
        features = self.penultimate(self.convs(x.view(-1, *self.image_shape)))
        return features, self.head(features)


class Exportable(nn.Module):
    """The inference graph: (features, class probabilities), what the ONNX artifact computes."""

    def __init__(self, net: Classifier) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features, logits = self.net(x)
        return features, torch.softmax(logits, dim=1)


__all__ = ["FEATURES", "Classifier", "Exportable"]
