"""Orthogonal Procrustes: the best rotation between two representations, and the distance that remains.

Context. If two networks learned the same representation up to a rotation of feature space, some
orthogonal ``R`` maps one onto the other. The orthogonal Procrustes problem

    min_{R^T R = I} ||X R - Y||_F     is solved by   R = U V^T,   where   X^T Y = U S V^T

(Schönemann, 1966). After centring both sides and scaling each to unit Frobenius norm (so that translation
and isotropic scaling do not count), the residual is

    d_P(X, Y)^2 = min_R ||X R - Y||_F^2 = 2 - 2 ||X^T Y||_*,

with ``||.||_*`` the nuclear norm (sum of singular values). ``||X^T Y||_*`` in ``[0, 1]`` is the Procrustes
*similarity*; ``arccos`` of it is the angular shape metric of Williams et al. (2021), a proper metric on
representations modulo rotations. Ding, Denain & Steinhardt (2021) found this distance more sensitive than
CKA to changes that matter functionally. Unequal widths are handled as if the narrower side were
zero-padded (the nuclear norm of the ``d_x x d_y`` matrix ``X^T Y`` does not see the padding), so ``R`` is
then a partial isometry ``[d_x, d_y]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpbook.similarity._common import center, check_choice, check_pair

KINDS = ("euclidean", "angular")


def orthogonal_procrustes(x: Tensor, y: Tensor) -> Tensor:
    """The ``R`` with orthonormal columns (or rows) minimising ``||x R - y||_F``; ``[..., d_x, d_y]``.

    Nothing is centred or scaled: centre the inputs first if translations should not count. Leading batch
    dimensions of ``x`` ``[..., n, d_x]`` and ``y`` ``[..., n, d_y]`` broadcast.
    """
    x, y = check_pair(x, y, min_rows=1)
    u, _, vh = torch.linalg.svd(x.mT @ y, full_matrices=False)
    return u @ vh


def _normalised(x: Tensor) -> Tensor:
    x = center(x)
    norm = torch.linalg.matrix_norm(x, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError("a representation is constant over the examples (zero norm after centring)")
    return x / norm


def procrustes_similarity(x: Tensor, y: Tensor) -> Tensor:
    """``||X^T Y||_*`` of the centred, unit-Frobenius-norm representations, in ``[0, 1]``; ``[...]``."""
    x, y = check_pair(x, y)
    return torch.linalg.svdvals(_normalised(x).mT @ _normalised(y)).sum(-1).clamp(0, 1)


def procrustes_distance(x: Tensor, y: Tensor, *, kind: str = "euclidean") -> Tensor:
    """Normalised orthogonal Procrustes distance between ``x`` ``[..., n, d_x]`` and ``y`` ``[..., n, d_y]``.

    Args:
        x, y: representations of the same examples (leading batch dimensions broadcast).
        kind: ``"euclidean"``: ``sqrt(2 - 2 ||X^T Y||_*)`` in ``[0, sqrt 2]`` (the Procrustes residual);
            ``"angular"``: ``arccos ||X^T Y||_*`` in ``[0, pi/2]`` (Williams et al.'s shape metric).

    Returns:
        ``[...]``: 0 when ``y`` is a rotated, translated and rescaled copy of ``x``.
    """
    check_choice(kind, "kind", KINDS)
    sim = procrustes_similarity(x, y)
    if kind == "angular":
        return torch.arccos(sim)
    return (2 - 2 * sim).clamp_min(0).sqrt()
