"""The book's one training loop: minibatch AdamW (or SGD) on cross-entropy, seeded and device-agnostic.

Chapters with a loss of their own (the progressive loss of deep-thinking nets, for instance) pass it as
``loss=``; everything else — batching, the optimiser, warm-up and cosine schedule, gradient clipping — stays here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"  # adamw | sgd (momentum 0.9)
    seed: int = 0  # shuffling order (only)
    clip_grad: float | None = None  # max global gradient norm (None: no clipping)
    warmup_steps: int = 0  # linear learning-rate warm-up over this many optimiser steps
    schedule: str = "constant"  # constant | cosine (decay to 0 over all steps, after the warm-up)


@dataclass
class History:
    loss: list[float] = field(default_factory=list)  # mean training loss per epoch


LossFn = Callable[[nn.Module, tuple, Tensor], Tensor]


def fit(model: nn.Module, x: Tensor | tuple[Tensor, ...], y: Tensor, config: TrainConfig | None = None, *,
        parameters=None, loss: LossFn | None = None, on_epoch: Callable[[int, History], None] | None = None,
        **overrides) -> History:
    """Train ``model`` on ``(x, y)`` in place; returns the per-epoch mean loss.

    Args:
        model: called as ``model(x_batch)``, or ``model(*x_batch)`` when ``x`` is a tuple of tensors
            (e.g. node features, adjacency and node mask of a batch of graphs), all indexed along dim 0.
        x, y: inputs and integer class labels; ``y`` may hold one label per position (N, *spatial) when the
            model returns (N, C, *spatial) logits.
        config: a :class:`TrainConfig`; keyword ``overrides`` replace its fields for this call only.
        parameters: the parameters to optimise (default: all of ``model``'s); the rest stay frozen. A list of
            torch param-group dicts is accepted (e.g. a smaller ``lr`` for some parameters).
        loss: ``loss(model, inputs, targets) -> scalar`` for one batch (``inputs`` the tuple of input tensors);
            default cross-entropy of ``model(*inputs)``.
        on_epoch: called as ``on_epoch(epoch, history)`` after every epoch (logging, early inspection).

    The data stay on their device; batches are index slices of a permutation seeded by ``seed``, so the
    same seed, the same initial weights and the same machine give the same model, unless the model draws
    random numbers itself (dropout uses torch's global generator: seed it too). The last batch may be
    partial. Parameters left out by ``parameters`` are not updated, but the model runs in train mode, so
    dropout and batch-norm statistics in the frozen part still act. The model is left in eval mode.
    """
    cfg = config or TrainConfig()
    unknown = [key for key in overrides if not hasattr(cfg, key)]
    if unknown:
        raise ValueError(f"unknown training option {unknown[0]!r}; allowed: {', '.join(vars(cfg))}")
    cfg = dataclasses.replace(cfg, **overrides)  # never modify the caller's config
    params = list(model.parameters() if parameters is None else parameters)
    inputs = x if isinstance(x, tuple) else (x,)
    if any(len(t) != len(y) for t in inputs):
        raise ValueError(f"inputs and labels differ in length: {[len(t) for t in inputs]} vs {len(y)}")
    if cfg.schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown schedule {cfg.schedule!r}; allowed: constant, cosine")
    if cfg.warmup_steps < 0 or (cfg.clip_grad is not None and cfg.clip_grad <= 0):
        raise ValueError(f"warmup_steps must be >= 0 and clip_grad > 0 or None; got warmup_steps={cfg.warmup_steps}, "
                         f"clip_grad={cfg.clip_grad}")
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; allowed: adamw, sgd")
    total_steps = cfg.epochs * math.ceil(len(y) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: _lr_factor(step, cfg, total_steps))
    trained = [p for group in opt.param_groups for p in group["params"]]
    loss_fn = loss or _cross_entropy
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    history = History()
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(y), generator=gen).to(y.device)
        total = 0.0
        for i in range(0, len(y), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            value = loss_fn(model, tuple(t[idx] for t in inputs), y[idx])
            opt.zero_grad(set_to_none=True)
            value.backward()
            if cfg.clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(trained, cfg.clip_grad)
            opt.step()
            sched.step()
            total += value.item() * len(idx)
        history.loss.append(total / len(y))
        if on_epoch is not None:
            on_epoch(epoch, history)
    model.eval()
    return history


def _cross_entropy(model: nn.Module, inputs: tuple, targets: Tensor) -> Tensor:
    return F.cross_entropy(model(*inputs), targets)


def _lr_factor(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Multiplier of the base learning rate before optimiser step ``step`` (0-based)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        span = max(total_steps - cfg.warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - cfg.warmup_steps, span) / span))
    return 1.0
