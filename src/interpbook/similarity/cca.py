"""Canonical correlation analysis (CCA), SVCCA and PWCCA.

Context. CCA asks how well *some* linear read-out of one representation can be matched by *some* linear
read-out of the other. For column-centred ``X`` ``[n, d_x]``, ``Y`` ``[n, d_y]`` it finds unit-variance,
mutually uncorrelated pairs ``(X a_i, Y b_i)`` with the largest correlations ``rho_1 >= rho_2 >= ...``. With
orthonormal bases ``Q_X``, ``Q_Y`` of the column spaces (QR or thin SVD), the canonical correlations are the
singular values of ``Q_X^T Q_Y``, i.e. the cosines of the principal angles between the two column spaces:

    rho = svd(Q_X^T Q_Y),    r = min(rank X, rank Y) of them.

So CCA only sees the *subspaces* spanned by the neurons: it is invariant to every invertible linear map
of either side (stronger than CKA's orthogonal invariance), and it overfits when ``d`` approaches ``n`` (two
random subspaces of dimension ``d`` in ``R^n`` already have large canonical correlations).

SVCCA (Raghu et al., 2017) first denoises each side by keeping only its top singular directions, then runs
CCA between the kept subspaces and reports the mean canonical correlation. How many directions are kept is
an explicit choice here, the ``keep`` argument:

* ``keep`` a float in ``(0, 1]``: the fewest ``k`` whose squared singular values explain at least that
  fraction of the variance, ``sum_{i<=k} s_i^2 / sum_i s_i^2 >= keep`` (Raghu et al. keep 0.99);
* ``keep`` an int: exactly ``k`` directions (use it to compare layers of different widths on equal terms).

The ``rule="univ_feat_geom"`` option reproduces the selection in the official code of Lan et al. (2024),
which compares the *normalised* cumulative variance with ``keep * total_variance``: whenever the total
variance exceeds ``1 / keep`` no index qualifies and ``k = 1``, so their SVCCA is then the correlation of the
two top principal components. :func:`n_components` exposes both rules.

PWCCA (Morcos et al., 2018) weights the canonical correlations by how much of ``X`` each canonical variate
accounts for: with the canonical variates ``h_i = Q_X a_i`` (unit vectors in example space) and the centred
neurons ``x_j`` (columns of ``X``), ``alpha_i = sum_j |<h_i, x_j>|``, normalised to sum to 1, and
``PWCCA(X, Y) = sum_i alpha_i rho_i``. It is not symmetric; the weights come from the first argument.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpbook.similarity._common import as_representation, center, check_choice, check_pair

RULES = ("normalised", "univ_feat_geom")
SUMMARIES = ("mean", "mean_sq")


def n_components(singular_values: Tensor, keep: float | int, *, rule: str = "normalised") -> Tensor:
    """How many leading singular directions SVCCA keeps, ``[..., r]`` (descending) -> ``[...]`` (int64).

    Args:
        singular_values: singular values ``s`` of a centred representation, descending along the last dim.
        keep: a variance fraction in ``(0, 1]`` (float) or a fixed count ``1 <= k <= r`` (int).
        rule: for a fraction, ``"normalised"``: the fewest ``k`` with ``cumsum(s^2)_k / sum(s^2) >= keep``;
            ``"univ_feat_geom"``: the official code of Lan et al. (2024), ``argmax(cumsum(s^2) / sum(s^2) >=
            keep * sum(s^2)) + 1``, which gives ``k = 1`` whenever ``sum(s^2) > 1 / keep``.
    """
    check_choice(rule, "rule", RULES)
    s = torch.as_tensor(singular_values)
    if s.ndim < 1 or s.shape[-1] < 1:
        raise ValueError(f"singular_values must be [..., r] with r >= 1; got shape {tuple(s.shape)}")
    r = s.shape[-1]
    if isinstance(keep, bool) or not isinstance(keep, (int, float)):
        raise ValueError(f"keep must be a variance fraction in (0, 1] or an integer count; got {keep!r}")
    if isinstance(keep, int):
        if not 1 <= keep <= r:
            raise ValueError(f"keep = {keep} directions, but only 1..{r} exist")
        return torch.full(s.shape[:-1], keep, dtype=torch.long, device=s.device)
    if not 0 < keep <= 1:
        raise ValueError(f"a variance fraction keep must lie in (0, 1], got {keep!r}")
    var = s.to(torch.float64).square()
    total = var.sum(-1, keepdim=True)
    explained = var.cumsum(-1) / total
    if rule == "univ_feat_geom":
        return (explained >= keep * total).to(torch.int8).argmax(-1) + 1  # argmax of all-False is 0
    # 1e-12 absorbs round-off in the last cumulative sum (keep = 1 must keep r, not r + 1)
    return ((explained < keep - 1e-12).sum(-1) + 1).clamp(max=r)


def _basis(x: Tensor, keep, rule: str) -> tuple[Tensor, Tensor]:
    """Orthonormal basis of the kept column space of centred ``x`` ``[..., n, d]``.

    Returns ``q`` ``[..., n, min(n, d)]`` whose columns past ``k`` are zeroed, and ``k`` ``[...]``. Directions
    with (numerically) zero singular value are never kept: ``k <= rank``.
    """
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    tol = max(x.shape[-2:]) * torch.finfo(s.dtype).eps * s[..., :1]
    rank = (s > tol).sum(-1)
    if bool((rank == 0).any()):
        raise ValueError("a representation is constant over the examples (rank 0 after centring)")
    k = rank if keep is None else torch.minimum(n_components(s, keep, rule=rule), rank)
    mask = torch.arange(s.shape[-1], device=s.device) < k.unsqueeze(-1)
    return u * mask.unsqueeze(-2).to(u.dtype), k


def _cca(x: Tensor, y: Tensor, keep_x=None, keep_y=None, rule: str = "normalised"):
    """Batched CCA core. Returns ``rho`` ``[..., p]`` (zero past ``r``), ``r`` ``[...]``, ``q_x`` and the left
    singular vectors ``a`` of ``Q_X^T Q_Y`` (so that ``Q_X a`` are the canonical variates of ``x``)."""
    qx, kx = _basis(center(x), keep_x, rule)
    qy, ky = _basis(center(y), keep_y, rule)
    a, rho, _ = torch.linalg.svd(qx.mT @ qy, full_matrices=False)
    r = torch.minimum(kx, ky)
    mask = torch.arange(rho.shape[-1], device=rho.device) < r.unsqueeze(-1)
    return rho.clamp(0, 1) * mask, r, qx, a, mask


def _summarise(rho: Tensor, r: Tensor, summary: str) -> Tensor:
    check_choice(summary, "summary", SUMMARIES)
    values = rho if summary == "mean" else rho.square()
    return values.sum(-1) / r.to(rho.dtype)


def canonical_correlations(x: Tensor, y: Tensor) -> Tensor:
    """Canonical correlations of ``x`` ``[n, d_x]`` and ``y`` ``[n, d_y]``, descending, ``[min(rank x, rank y)]``."""
    x, y = check_pair(x, y)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"canonical_correlations takes unbatched x [n, d_x], y [n, d_y]; got {tuple(x.shape)}, "
                         f"{tuple(y.shape)} (use cca_similarity for batches)")
    rho, r, *_ = _cca(x, y)
    return rho[: int(r)]


def cca_similarity(x: Tensor, y: Tensor, *, summary: str = "mean") -> Tensor:
    """Mean canonical correlation over all ``r = min(rank x, rank y)`` pairs, ``[...]``.

    Args:
        x, y: representations ``[..., n, d]`` of the same examples.
        summary: ``"mean"``: ``sum(rho) / r`` (Pillai's trace over r); ``"mean_sq"``: ``sum(rho^2) / r``
            (Yanai's GCD, the ``R^2_CCA`` of Kornblith et al.).
    """
    x, y = check_pair(x, y)
    rho, r, *_ = _cca(x, y)
    return _summarise(rho, r, summary)


def svcca(x: Tensor, y: Tensor, keep: float | int | tuple = 0.99, *, summary: str = "mean",
          rule: str = "normalised") -> Tensor:
    """SVCCA: CCA between the top singular directions of each centred representation, ``[...]``.

    Args:
        x, y: representations ``[..., n, d]`` of the same examples.
        keep: variance fraction in ``(0, 1]`` or integer count of directions, the same for both sides, or a
            pair ``(keep_x, keep_y)``; never more than a side's rank. See :func:`n_components`.
        summary: ``"mean"`` canonical correlation (Raghu et al.) or ``"mean_sq"``.
        rule: ``"normalised"`` (the stated rule) or ``"univ_feat_geom"`` (Lan et al.'s code; module docstring).

    Returns:
        The summary of the ``min(k_x, k_y)`` canonical correlations; 1 for ``svcca(x, x)``.
    """
    x, y = check_pair(x, y)
    keep_x, keep_y = keep if isinstance(keep, tuple) else (keep, keep)
    rho, r, *_ = _cca(x, y, keep_x, keep_y, rule)
    return _summarise(rho, r, summary)


def pwcca(x: Tensor, y: Tensor) -> Tensor:
    """Projection-weighted CCA of Morcos et al. (2018), weights from ``x``, ``[...]``.

    ``alpha_i = sum_j |<h_i, x_j>|`` over the centred neurons ``x_j`` of ``x`` and its canonical variates
    ``h_i``, normalised to sum 1; returns ``sum_i alpha_i rho_i`` over the ``r`` canonical pairs.
    """
    x, y = check_pair(x, y)
    rho, _, qx, a, mask = _cca(x, y)
    h = qx @ a  # [..., n, p]: unit canonical variates of x in example space
    weights = (h.mT @ center(x)).abs().sum(-1) * mask  # [..., p]
    return (weights * rho).sum(-1) / weights.sum(-1)


def principal_angles(a: Tensor, b: Tensor) -> Tensor:
    """Principal angles (radians, ascending) between the column spans of ``a`` ``[..., D, k_a]`` and ``b``
    ``[..., D, k_b]``: ``arccos`` of the singular values of ``Q_a^T Q_b``; ``[..., min(k_a, k_b)]``.

    Unlike CCA nothing is centred: the columns are directions in a ``D``-dimensional space (e.g. the
    perturbation directions of a neural frame). The columns of each side must be linearly independent.
    """
    a = as_representation(a, "a", min_rows=1)
    b = as_representation(b, "b", min_rows=1)
    if a.shape[-2] != b.shape[-2]:
        raise ValueError(f"a [..., D, k_a] and b [..., D, k_b] must live in the same dimension D; got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if a.device != b.device:
        raise ValueError(f"a is on {a.device} and b on {b.device}; put both on one device")
    bases = []
    for name, m in (("a", a), ("b", b)):
        if m.shape[-1] > m.shape[-2]:
            raise ValueError(f"{name} has more columns than dimensions: {tuple(m.shape)}")
        u, s, _ = torch.linalg.svd(m, full_matrices=False)
        if bool((s[..., -1] <= max(m.shape[-2:]) * torch.finfo(s.dtype).eps * s[..., 0]).any()):
            raise ValueError(f"the columns of {name} are linearly dependent; pass a basis of the subspace")
        bases.append(u)
    cosines = torch.linalg.svdvals(bases[0].mT @ bases[1]).clamp(-1, 1)
    return torch.arccos(cosines)
