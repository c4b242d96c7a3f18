"""Permutation nulls: is a similarity score larger than it would be without the pairing?

Context. A similarity score between ``X`` and ``Y`` means little on its own: CCA of two *random* subspaces
of ``R^n`` is already large when ``d`` approaches ``n``, and CKA of unrelated representations is positive at
finite ``n``. The question a paper's claim needs is whether the *pairing* of rows (example ``i`` of ``X``
with example ``i`` of ``Y``; or SAE feature ``i`` of model A with its matched feature of model B) carries
information. Shuffling the rows of ``Y`` destroys the pairing while keeping each representation intact, so
the shuffled scores form the null distribution:

    null_b = s(X, Y[pi_b]),   b = 1..R,     p = (1 + #{b : null_b >= s(X, Y)}) / (1 + R).

The ``+1`` (Phipson & Smyth, 2010) keeps the p-value valid and never 0 for a finite ``R``; the official code
of Lan et al. (2024) reports ``#{null_b >= observed} / R``, kept here as ``p_value_uncorrected``.

Every measure of :mod:`interpbook.similarity` accepts a batch ``y`` ``[B, n, d]`` against one ``x``
``[n, d]``, so ``B`` shuffles are scored in one call; ``batch_size`` bounds the memory of a call.
:func:`resampling_null` is the general form for other nulls (e.g. random subsets of features re-paired by
correlation): a ``draw`` function makes a batch of null pairs and the statistic scores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from interpbook.similarity._common import check_choice, check_pair

ALTERNATIVES = ("greater", "less")


@dataclass(frozen=True)
class NullResult:
    """An observed statistic against its null sample.

    Attributes:
        observed: the statistic on the true pairing.
        null: ``[R]`` statistics under the null (float64, CPU).
        p_value: ``(1 + #{null at least as extreme}) / (1 + R)``.
        p_value_uncorrected: ``#{null at least as extreme} / R`` (Lan et al.'s convention).
        percentile: where ``observed`` falls in the null, ``100 * mean(null < observed)``.
        alternative: ``"greater"`` (large = similar, e.g. CKA) or ``"less"`` (e.g. a distance).
    """

    observed: float
    null: Tensor
    p_value: float
    p_value_uncorrected: float
    percentile: float
    alternative: str

    def quantile(self, q: float) -> float:
        """The ``q``-quantile of the null sample (``q`` in ``[0, 1]``)."""
        if not 0 <= q <= 1:
            raise ValueError(f"q must lie in [0, 1], got {q!r}")
        return float(torch.quantile(self.null, q))

    def exceeds(self, q: float = 0.99) -> bool:
        """Whether ``observed`` lies beyond the null's ``q``-quantile (below ``1 - q`` for ``"less"``)."""
        if self.alternative == "greater":
            return self.observed > self.quantile(q)
        return self.observed < self.quantile(1 - q)

    @property
    def null_mean(self) -> float:
        return float(self.null.mean())


def null_summary(observed, null, *, alternative: str = "greater") -> NullResult:
    """Summarise an observed statistic against a null sample ``[R]`` (see :class:`NullResult`)."""
    check_choice(alternative, "alternative", ALTERNATIVES)
    null = torch.as_tensor(null).detach().to("cpu", torch.float64).flatten()
    if null.numel() == 0:
        raise ValueError("the null sample is empty")
    if not bool(torch.isfinite(null).all()):
        raise ValueError(f"the null sample holds {int((~torch.isfinite(null)).sum())} non-finite values")
    observed = float(observed)
    extreme = null >= observed if alternative == "greater" else null <= observed
    count, r = int(extreme.sum()), null.numel()
    return NullResult(
        observed=observed,
        null=null,
        p_value=(1 + count) / (1 + r),
        p_value_uncorrected=count / r,
        percentile=100 * float((null < observed).double().mean()),
        alternative=alternative,
    )


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def resampling_null(statistic: Callable, draw: Callable, n_draws: int, *, observed, batch_size: int = 100,
                    generator: torch.Generator | None = None, alternative: str = "greater") -> NullResult:
    """A null distribution from any sampler of null pairs, scored in batches.

    Args:
        statistic: ``statistic(xb, yb) -> [B]`` for a batch of pairs (any measure of this package).
        draw: ``draw(generator, B) -> (xb, yb)``, ``B`` null pairs with a leading batch dimension (``xb`` may
            be one unbatched representation that broadcasts).
        n_draws: the size ``R`` of the null sample.
        observed: the statistic on the true pairing.
        batch_size: pairs per call of ``statistic``.
        generator: the source of randomness passed to ``draw`` (seed it for reproducible nulls).
        alternative: ``"greater"`` or ``"less"``.
    """
    _check_count(n_draws, "n_draws")
    _check_count(batch_size, "batch_size")
    values = []
    for start in range(0, n_draws, batch_size):
        b = min(batch_size, n_draws - start)
        xb, yb = draw(generator, b)
        out = torch.as_tensor(statistic(xb, yb)).flatten()
        if out.numel() != b:
            raise ValueError(f"statistic returned {out.numel()} values for a batch of {b} pairs; it must score "
                             "each pair of a batch [B, n, d]")
        values.append(out.detach().to("cpu", torch.float64))
    return null_summary(observed, torch.cat(values), alternative=alternative)


def permutation_null(statistic: Callable, x: Tensor, y: Tensor, n_permutations: int = 1000, *,
                     batch_size: int = 100, generator: torch.Generator | None = None,
                     alternative: str = "greater") -> NullResult:
    """Null of ``statistic(x, y)`` under random re-pairings of the rows of ``y``.

    Args:
        statistic: a measure ``statistic(x, y)`` that accepts ``y`` with a leading batch dimension
            ``[B, n, d_y]`` and returns ``[B]`` (every measure of this package does).
        x: ``[n, d_x]``; y: ``[n, d_y]`` (same examples, unbatched).
        n_permutations: ``R``, the number of shuffles.
        batch_size: shuffles scored per call (memory ``~ batch_size * n * d_y``).
        generator: CPU generator for the permutations (seed it for a reproducible null).
        alternative: ``"greater"`` for similarities, ``"less"`` for distances.

    Returns:
        :class:`NullResult` with the observed statistic, the ``[R]`` null sample, p-values and percentile.

    Example:
        >>> res = permutation_null(linear_cka, x, y, 1000, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> res.p_value, res.exceeds(0.99)  # doctest: +SKIP
    """
    x, y = check_pair(x, y, dtype=None)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"permutation_null takes unbatched x [n, d_x] and y [n, d_y]; got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")
    n = x.shape[0]
    observed = float(statistic(x, y))

    def draw(gen, b):
        perms = torch.rand(b, n, generator=gen).argsort(-1).to(y.device)  # [b, n]: b uniform permutations
        return x, y[perms]  # x broadcasts against the [b, n, d_y] shuffles

    return resampling_null(statistic, draw, _check_count(n_permutations, "n_permutations"), observed=observed,
                           batch_size=batch_size, generator=generator, alternative=alternative)
