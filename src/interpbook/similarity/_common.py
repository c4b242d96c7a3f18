"""Shared plumbing of the similarity measures: input checks, centring, batched shapes.

Conventions. A representation is a tensor ``[..., n, d]``: ``n`` examples (rows, the same examples in the
same order for both representations) by ``d`` features (neurons, channels, SAE latents). Leading dimensions
are a batch of independent representations and broadcast between the two arguments, so ``x`` ``[n, d_x]``
against ``y`` ``[B, n, d_y]`` compares ``x`` with each of ``B`` representations in one call (this is how the
permutation nulls are vectorised). Measures compute in float64 unless said otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor


def as_representation(x, name: str = "x", *, min_rows: int = 2, dtype: torch.dtype | None = torch.float64) -> Tensor:
    """Return ``x`` as a finite floating tensor ``[..., n, d]`` (float64 by default), or raise ``ValueError``.

    Args:
        x: a tensor (or array-like) ``[..., n, d]``.
        name: the argument's name, for the error message.
        min_rows: the fewest examples ``n`` the measure is defined for.
        dtype: the dtype to compute in; ``None`` keeps a floating dtype (integers become float32).
    """
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be a tensor [..., n, d]; got {type(x).__name__}") from err
    if x.ndim < 2:
        raise ValueError(f"{name} must be [..., n, d] (n examples x d features); got shape {tuple(x.shape)}")
    if x.shape[-2] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} examples (rows), got shape {tuple(x.shape)}")
    if x.shape[-1] < 1:
        raise ValueError(f"{name} has no features (columns): shape {tuple(x.shape)}")
    if x.is_complex():
        raise ValueError(f"{name} must be real, got dtype {x.dtype}")
    if dtype is not None:
        x = x.to(dtype)
    elif not x.is_floating_point():
        x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def check_pair(x, y, *, min_rows: int = 2, dtype: torch.dtype | None = torch.float64) -> tuple[Tensor, Tensor]:
    """Check two representations ``x`` ``[..., n, d_x]`` and ``y`` ``[..., n, d_y]`` of the same ``n`` examples."""
    x = as_representation(x, "x", min_rows=min_rows, dtype=dtype)
    y = as_representation(y, "y", min_rows=min_rows, dtype=dtype)
    if x.shape[-2] != y.shape[-2]:
        raise ValueError(
            "x and y must hold the same examples: expected x [..., n, d_x] and y [..., n, d_y] with equal n; "
            f"got x {tuple(x.shape)} and y {tuple(y.shape)}"
        )
    try:
        torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except RuntimeError as err:
        raise ValueError(
            f"the batch dimensions of x {tuple(x.shape[:-2])} and y {tuple(y.shape[:-2])} do not broadcast"
        ) from err
    if x.device != y.device:
        raise ValueError(f"x is on {x.device} and y on {y.device}; put both on one device")
    if x.dtype != y.dtype:  # dtype=None keeps each input's own
        common = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(common), y.to(common)
    return x, y


def check_choice(value, name: str, allowed) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(repr, allowed))}")
    return value


def center(x: Tensor) -> Tensor:
    """Subtract each feature's mean over the examples: ``x - mean(x, rows)``, ``[..., n, d]``."""
    return x - x.mean(dim=-2, keepdim=True)

