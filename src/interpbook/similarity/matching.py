"""Unit matching by activation correlation: which neuron (or SAE feature) of one model is which of another?

Context. Rotation-invariant measures (CKA, CCA, Procrustes) ignore the basis. To ask whether two networks
share a *privileged* basis, or which SAE latents of two models play the same role, one correlates
individual units over the same examples. With columns z-scored over the ``n`` examples,

    C_ij = Pearson(x_:i, y_:j) = (Z_x^T Z_y)_ij / n        ([d_x, d_y]).

Two ways to turn ``C`` into a matching:

* one-to-one (Hungarian, ``scipy.optimize.linear_sum_assignment`` on ``-C``): the permutation maximising the
  total correlation; ``rho_match`` = the mean matched correlation (Li et al., 2016; Brown et al., 2023).
* many-to-one (``max``): every unit of ``y`` takes its best-correlated unit of ``x``, as in the official
  code of Lan et al. (2024) (``batched_correlation``), which never stores ``C`` when ``d`` is in the tens of
  thousands: :func:`max_correlation` streams over blocks of ``y``'s columns and chunks of rows
  (:func:`correlation_blocks`); :mod:`interpbook.sae.pairing` builds the SAE feature pairing on it.

Constant units (dead neurons, SAE latents that never fire) have no correlation. :func:`correlation_matrix`
and :func:`match_units` raise an error naming how many there are, so that the caller drops them explicitly;
:func:`max_correlation` never chooses a dead unit of ``x`` and leaves a dead unit of ``y`` unpaired
(``nan``, index ``-1``), as SAE dictionaries routinely hold latents that never fire.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from interpbook.similarity._common import check_choice, check_pair

METHODS = ("hungarian", "max")


def zscore(x: Tensor, name: str = "x") -> Tensor:
    """Centre each column of ``x`` ``[n, d]`` and scale it to unit (population) standard deviation."""
    x = x - x.mean(-2, keepdim=True)
    std = x.square().mean(-2, keepdim=True).sqrt()
    dead = std == 0
    if bool(dead.any()):
        raise ValueError(f"{int(dead.sum())} columns of {name} are constant over the examples (dead units); "
                         "drop them before correlating")
    return x / std


def _unbatched_pair(x, y, dtype):
    x, y = check_pair(x, y, dtype=dtype)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"expected unbatched x [n, d_x] and y [n, d_y]; got {tuple(x.shape)}, {tuple(y.shape)}")
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x, y = x.float(), y.float()  # correlations accumulate over n: at least float32
    return x, y


def correlation_matrix(x: Tensor, y: Tensor, *, dtype: torch.dtype | None = None) -> Tensor:
    """Pearson correlations between every column of ``x`` ``[n, d_x]`` and of ``y`` ``[n, d_y]``: ``[d_x, d_y]``.

    Computed in the inputs' floating dtype (at least float32) unless ``dtype`` is given.
    """
    x, y = _unbatched_pair(x, y, dtype)
    return zscore(x, "x").mT @ zscore(y, "y") / x.shape[0]


def _check_tokens_pair(x: Tensor, y: Tensor) -> None:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.dim() != 2 or y.dim() != 2:
        raise ValueError(f"activations must be [T, features] matrices, got {tuple(getattr(x, 'shape', ()))} and "
                         f"{tuple(getattr(y, 'shape', ()))}")
    if len(x) != len(y):
        raise ValueError(f"activations must cover the same tokens: {len(x)} rows for A, {len(y)} for B")
    if len(x) < 2:
        raise ValueError(f"correlations need at least 2 tokens, got {len(x)}")


def _column_stats(acts: Tensor, chunk: int, device) -> tuple[Tensor, Tensor]:
    """Column means and population standard deviations, accumulated in float64 over row chunks."""
    n = len(acts)
    mean = torch.zeros(acts.shape[1], dtype=torch.float64, device=device)
    for i in range(0, n, chunk):
        mean += acts[i:i + chunk].to(device, torch.float64).sum(0)
    mean /= n
    var = torch.zeros_like(mean)
    for i in range(0, n, chunk):
        var += (acts[i:i + chunk].to(device, torch.float64) - mean).pow(2).sum(0)
    return mean, (var / n).sqrt()


def correlation_blocks(x: Tensor, y: Tensor, *, block_size: int = 1024, chunk: int = 16384, device=None,
                       dtype: torch.dtype | None = None):
    """Stream the correlation matrix of ``x [T, d_x]`` and ``y [T, d_y]`` in blocks of ``y``'s columns.

    Yields ``(columns, C[:, columns] [d_x, len(columns)], live_x [d_x], live_y [len(columns)])``, where ``live``
    marks columns with non-zero variance (the entries of a constant column are 0, not a correlation). Rows are
    read ``chunk`` at a time and moved to ``device`` (default: ``x``'s), so ``x`` and ``y`` may stay on the CPU
    while the products run on an accelerator; means and variances accumulate in float64, the products in
    ``dtype`` (default: the inputs' floating dtype, at least float32).
    """
    _check_tokens_pair(x, y)
    for name, value in (("block_size", block_size), ("chunk", chunk)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    device = torch.device(device) if device is not None else x.device
    if dtype is None:
        dtype = torch.promote_types(x.dtype, y.dtype)
        if not dtype.is_floating_point or dtype in (torch.float16, torch.bfloat16):
            dtype = torch.float32  # correlations accumulate over T: at least float32
    mean_x, std_x = _column_stats(x, chunk, device)
    mean_y, std_y = _column_stats(y, chunk, device)
    inv_x = torch.where(std_x > 0, 1 / std_x, torch.zeros_like(std_x)).to(dtype)  # [d_x]
    inv_y = torch.where(std_y > 0, 1 / std_y, torch.zeros_like(std_y)).to(dtype)
    mean_x, mean_y = mean_x.to(dtype), mean_y.to(dtype)
    n = len(x)
    for start in range(0, y.shape[1], block_size):
        cols = slice(start, min(start + block_size, y.shape[1]))
        acc = torch.zeros(x.shape[1], cols.stop - start, device=device, dtype=dtype)  # [d_x, block]
        for i in range(0, n, chunk):
            zx = (x[i:i + chunk].to(device, dtype) - mean_x) * inv_x  # [chunk, d_x]
            zy = (y[i:i + chunk, cols].to(device, dtype) - mean_y[cols]) * inv_y[cols]
            acc += zx.t() @ zy
        yield cols, acc / n, std_x > 0, std_y[cols] > 0


def max_correlation(x: Tensor, y: Tensor, *, block_size: int = 1024, chunk: int = 16384, device=None,
                    dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """For every column ``j`` of ``y``, the best-correlated column of ``x``, without storing ``[d_x, d_y]``.

    The many-to-one matching of Lan et al. (2024) (``batched_correlation``; put the smaller dictionary in ``y``).

    Args:
        x, y: activations ``[T, d_x]`` and ``[T, d_y]`` of the same T examples (e.g. two SAEs' feature
            activations on the same tokens), on any device.
        block_size: columns of ``y`` per block; the largest temporaries are ``[d_x, block_size]`` and
            ``[chunk, d_x]``.
        chunk: rows (examples) per step.
        device: where to compute (default: ``x``'s device).
        dtype: compute dtype of the products (default: the inputs', at least float32).

    Returns:
        ``(values [d_y], indices [d_y])`` on ``device``: ``values[j] = max_i C_ij`` and ``indices[j]`` the
        maximising non-constant column of ``x``. A constant column of ``x`` (a dead unit) is never chosen; a
        constant column ``j`` of ``y`` gets ``values[j] = nan`` and ``indices[j] = -1``. Unlike
        :func:`correlation_matrix`, which raises on dead units, the pairing pipeline can thus run on SAE
        latents that never fire without dropping them first.
    """
    values, indices = [], []
    for _, c, live_x, live_y in correlation_blocks(x, y, block_size=block_size, chunk=chunk, device=device,
                                                   dtype=dtype):
        if not bool(live_x.any()):
            raise ValueError("every feature of A has zero variance on these examples (every column of x is constant); "
                             "nothing to pair with")
        c = c.masked_fill(~live_x[:, None], -torch.inf)  # a dead unit of x is never chosen
        v, i = c.max(0)
        values.append(v.masked_fill(~live_y, torch.nan))
        indices.append(i.masked_fill(~live_y, -1))
    return torch.cat(values), torch.cat(indices)


@dataclass(frozen=True)
class UnitMatching:
    """A matching of units of ``x`` to units of ``y``.

    Attributes:
        x_units, y_units: ``[m]`` matched indices (pair ``k`` is ``x_units[k]`` <-> ``y_units[k]``).
        correlations: ``[m]`` Pearson correlation of each matched pair.
        mean: the mean matched correlation (``rho_match`` for one-to-one, ``rho_max`` for ``max``).
    """

    x_units: Tensor
    y_units: Tensor
    correlations: Tensor
    mean: float


def match_units(x: Tensor, y: Tensor, *, method: str = "hungarian") -> UnitMatching:
    """Match the units (columns) of ``x`` ``[n, d_x]`` to those of ``y`` ``[n, d_y]`` by activation correlation.

    Args:
        x, y: activations of the same ``n`` examples.
        method: ``"hungarian"``: the one-to-one matching of ``min(d_x, d_y)`` pairs maximising the summed
            correlation; ``"max"``: every unit of ``x`` to its best-correlated unit of ``y`` (semi-matching).

    Returns:
        :class:`UnitMatching` (indices on the CPU).
    """
    check_choice(method, "method", METHODS)
    c = correlation_matrix(x, y, dtype=torch.float64).cpu()
    if method == "max":
        best = c.max(dim=1)
        rows = torch.arange(c.shape[0])
        return UnitMatching(rows, best.indices, best.values, float(best.values.mean()))
    rows, cols = linear_sum_assignment(c.numpy(), maximize=True)
    rows, cols = torch.from_numpy(np.asarray(rows)), torch.from_numpy(np.asarray(cols))
    corr = c[rows, cols]
    return UnitMatching(rows, cols, corr, float(corr.mean()))

