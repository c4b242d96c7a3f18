"""Multilayer perceptron and linear (logistic-regression) classifiers over flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class MLP(nn.Module):
    """``Flatten -> [Linear -> ReLU] * len(hidden) -> Linear``.

    Args:
        in_shape: shape of one input, e.g. ``(1, 16, 16)``.
        hidden: widths of the hidden layers.
        classes: number of outputs.
    """

    def __init__(self, in_shape: tuple[int, ...], hidden: tuple[int, ...] = (128,), classes: int = 10):
        super().__init__()
        widths = [math.prod(in_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # [batch, *in_shape] -> [batch, classes]
        return self.net(x)


class Linear(nn.Module):
    """Logistic regression: ``logits = W x + b`` on the flattened input."""

    def __init__(self, in_shape: tuple[int, ...], classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(math.prod(in_shape), classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1))

    @property
    def weight(self) -> Tensor:  # [classes, D]
        return self.linear.weight

    @property
    def bias(self) -> Tensor:  # [classes]
        return self.linear.bias


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode and give it back in the mode it came in (an evaluation or attack inside a
    training loop must not leave the loop's model in eval mode)."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 4096) -> float:
    """Fraction of ``x`` classified as ``y``."""
    was = model.training
    model.eval()
    correct = sum((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    model.train(was)
    return correct / len(x)
