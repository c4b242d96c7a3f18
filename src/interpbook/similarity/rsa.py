"""Representational similarity analysis (RSA): compare the geometry of two representations, not their axes.

Context. RSA (Kriegeskorte, Mur & Bandettini, 2008) summarises a representation ``X`` ``[n, d]`` by its
representational dissimilarity matrix (RDM), ``D_ij = dist(x_i, x_j)`` ``[n, n]``, and compares two
representations by correlating their RDMs over the ``n (n - 1) / 2`` distinct pairs (the upper triangle):

    RSA(X, Y) = corr( triu(D_X), triu(D_Y) ),   corr = Spearman (default) or Pearson.

Any two representations of the same ``n`` examples can be compared, whatever their widths, and anything
that preserves the distances (rotations; for correlation distance also per-example shifts and scales) leaves
RSA unchanged. Lan et al. (2024) compare SAE decoder directions this way with the correlation distance
``1 - Pearson(x_i, x_j)`` between rows and Spearman's rho between the RDMs. Spearman's rho is Pearson's
correlation of the ranks, with tied values given their average rank.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpbook.similarity._common import as_representation, check_choice, check_pair
from interpbook.similarity.cka import squared_distances

METRICS = ("correlation", "cosine", "euclidean", "sqeuclidean")
COMPARISONS = ("spearman", "pearson")


def rdm(x: Tensor, metric: str = "correlation") -> Tensor:
    """Representational dissimilarity matrix of the rows of ``x`` ``[..., n, d]`` -> ``[..., n, n]``.

    Args:
        x: representation (``n`` examples x ``d`` features).
        metric: ``"correlation"`` (``1 - Pearson`` between rows), ``"cosine"`` (``1 - cosine``),
            ``"euclidean"`` or ``"sqeuclidean"``.

    Returns:
        A symmetric matrix with a zero diagonal.
    """
    check_choice(metric, "metric", METRICS)
    x = as_representation(x, "x")
    if metric in ("euclidean", "sqeuclidean"):
        sq = squared_distances(x)
        return sq if metric == "sqeuclidean" else sq.sqrt()
    if metric == "correlation":
        if x.shape[-1] < 2:
            raise ValueError(f"correlation distance needs d >= 2 features; got shape {tuple(x.shape)}")
        x = x - x.mean(-1, keepdim=True)
    norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    if bool((norms == 0).any()):
        what = "constant" if metric == "correlation" else "zero"
        raise ValueError(f"{int((norms == 0).sum())} rows of x are {what}: the {metric} distance is undefined there")
    x = x / norms
    d = 1 - x @ x.mT
    return d * (1 - torch.eye(d.shape[-1], dtype=d.dtype, device=d.device))


def upper_triangle(m: Tensor) -> Tensor:
    """The strictly upper-triangular entries of ``m`` ``[..., n, n]``, row by row: ``[..., n (n - 1) / 2]``."""
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"expected square matrices [..., n, n]; got shape {tuple(m.shape)}")
    n = m.shape[-1]
    iu = torch.triu_indices(n, n, offset=1, device=m.device)
    return m[..., iu[0], iu[1]]


def rank(v: Tensor) -> Tensor:
    """Ranks ``1..m`` along the last dimension, ties sharing their average rank (scipy's ``"average"``)."""
    srt, order = v.sort(dim=-1)
    m = v.shape[-1]
    starts = torch.ones_like(srt, dtype=torch.bool)
    starts[..., 1:] = srt[..., 1:] != srt[..., :-1]
    group = starts.long().cumsum(-1) - 1  # tie-group id of each sorted position
    position = torch.arange(1, m + 1, dtype=torch.float64, device=v.device).expand(srt.shape)
    total = torch.zeros(srt.shape, dtype=torch.float64, device=v.device).scatter_add(-1, group, position)
    count = torch.zeros(srt.shape, dtype=torch.float64, device=v.device).scatter_add(-1, group,
                                                                                      torch.ones_like(position))
    average = (total / count.clamp_min(1)).gather(-1, group)
    return torch.empty_like(average).scatter(-1, order, average)


def pearson(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation along the last dimension, ``[..., m]`` x ``[..., m]`` -> ``[...]``."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    na, nb = torch.linalg.vector_norm(a, dim=-1), torch.linalg.vector_norm(b, dim=-1)
    if bool((na == 0).any()) or bool((nb == 0).any()):
        raise ValueError("a correlation is undefined: one of the inputs is constant")
    return (a * b).sum(-1) / (na * nb)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman's rank correlation along the last dimension (average ranks for ties) -> ``[...]``."""
    return pearson(rank(a), rank(b))


def compare_rdms(a: Tensor, b: Tensor, method: str = "spearman") -> Tensor:
    """Correlate two RDMs ``[..., n, n]`` over their upper triangles; ``[...]``."""
    check_choice(method, "method", COMPARISONS)
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"RDMs must be [..., n, n] for the same n; got {tuple(a.shape)} and {tuple(b.shape)}")
    ua, ub = upper_triangle(a.to(torch.float64)), upper_triangle(b.to(torch.float64))
    return spearman(ua, ub) if method == "spearman" else pearson(ua, ub)


def rsa(x: Tensor, y: Tensor, *, metric: str = "correlation", compare: str = "spearman") -> Tensor:
    """RSA score of ``x`` ``[..., n, d_x]`` and ``y`` ``[..., n, d_y]``: the correlation of their RDMs, ``[...]``.

    Args:
        x, y: representations of the same ``n >= 3`` examples (widths may differ; batch dims broadcast).
        metric: the dissimilarity inside each representation (see :func:`rdm`).
        compare: ``"spearman"`` (default, as Kriegeskorte et al. and Lan et al.) or ``"pearson"``.

    Returns:
        A correlation in ``[-1, 1]``; 1 for ``rsa(x, x)``.
    """
    check_choice(compare, "compare", COMPARISONS)
    x, y = check_pair(x, y, min_rows=3)
    return compare_rdms(rdm(x, metric), rdm(y, metric), compare)
