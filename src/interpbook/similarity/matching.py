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
  thousands: :func:`max_correlation` streams over blocks of ``y``'s columns.

Constant units (dead neurons, SAE latents that never fire) have no correlation; they raise an error
naming how many there are, so that the caller drops them explicitly.
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


def max_correlation(x: Tensor, y: Tensor, *, block_size: int = 1024,
                    dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """For every column ``j`` of ``y``, the best-correlated column of ``x``, without storing ``[d_x, d_y]``.

    Args:
        x: ``[n, d_x]``; y: ``[n, d_y]`` (e.g. SAE latent activations of two models on the same tokens).
        block_size: columns of ``y`` correlated per step (memory ``d_x * block_size``).
        dtype: compute dtype (default: the inputs', at least float32).

    Returns:
        ``(values, indices)``, both ``[d_y]``: ``values[j] = max_i C_ij`` and ``indices[j] = argmax_i C_ij``.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    x, y = _unbatched_pair(x, y, dtype)
    zx, zy, n = zscore(x, "x"), zscore(y, "y"), x.shape[0]
    values, indices = [], []
    for start in range(0, zy.shape[1], block_size):
        best = (zx.mT @ zy[:, start:start + block_size] / n).max(dim=0)
        values.append(best.values)
        indices.append(best.indices)
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

