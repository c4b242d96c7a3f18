"""A small configurable convolutional classifier for 8×8–32×32 images.

``SmallCNN(in_shape, channels=(16, 32, 32), strides=(1, 2, 2))`` is ``[Conv3x3 -> ReLU] * n`` then
``Flatten -> Linear -> ReLU -> Linear``. The convolutions are reachable as ``model.convs[i]`` and the
feature extractor as ``model.features``, so filter-wise and layer-wise methods (Grad-CAM, parameter
saliency) can address them by name.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SmallCNN(nn.Module):
    """Args:
    in_shape: ``(C, H, W)`` of one input.
    channels: output channels of each ``kernel × kernel`` convolution (padding ``kernel // 2``).
    strides: stride of each convolution (same length as ``channels``).
    hidden: width of the hidden fully connected layer (0 for none).
    classes: number of outputs.
    kernel: side of the (odd) convolution kernels.
    """

    def __init__(self, in_shape: tuple[int, int, int], channels=(16, 32, 32), strides=(1, 2, 2), hidden: int = 64,
                 classes: int = 10, kernel: int = 3):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {in_shape}")
        if len(channels) != len(strides) or not channels:
            raise ValueError(f"channels and strides must be non-empty and of equal length, got {channels}, {strides}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 1, got {kernel}")
        layers: list[nn.Module] = []
        c_in = in_shape[0]
        for c_out, s in zip(channels, strides):
            layers += [nn.Conv2d(c_in, c_out, kernel, stride=s, padding=kernel // 2), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *in_shape)).numel()
        head: list[nn.Module] = [nn.Flatten()]
        head += [nn.Linear(n_flat, hidden), nn.ReLU(), nn.Linear(hidden, classes)] if hidden else [
            nn.Linear(n_flat, classes)]
        self.head = nn.Sequential(*head)

    @property
    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.features if isinstance(m, nn.Conv2d)]

    def forward(self, x: Tensor) -> Tensor:  # [batch, C, H, W] -> [batch, classes]
        return self.head(self.features(x))
