"""ROAD: remove pixels by attribution order and fill them by noisy linear imputation.

Context. A faithfulness metric removes the pixels an attribution ranks highest (or lowest) and watches the
classifier. Replacing them by a constant leaks the mask's *shape* to the model, which can then classify
from the hole instead of from what was removed. ROAD (Rong et al., 2022) instead fills every removed pixel
with the weighted mean of its 8 neighbours, edge neighbours weighing 1/6 and diagonal ones 1/12, and adds
a little Gaussian noise. All removed pixels are filled at once: for the set U of removed pixels,

    s_i u_i - sum_{j in N(i), j in U} w_ij u_j = sum_{j in N(i), j not in U} w_ij x_j     for i in U,

where s_i is the sum of the weights of the in-image neighbours of i. The matrix is symmetric and
(irreducibly) diagonally dominant, hence positive definite whenever the image keeps at least one pixel:
a sparse solve (``scipy.sparse.linalg.spsolve``, as in the official code of Li et al., 2024) or
conjugate gradients (:func:`road_impute` with ``solver="cg"``, torch, runs on a GPU).

Masks follow the soundness/completeness code (``soco``): *by area* removes ``int(H*W*ratio)`` pixels in
MoRF (most relevant first) or LeRF (least relevant first) order, ties broken by a fresh random
permutation; *by value* removes every pixel whose attribution exceeds ``(1 - ratio) * max`` (MoRF) or
falls below ``ratio * max`` (LeRF).

Everything is batched: the systems of a whole batch form one block-diagonal sparse matrix, built with
array operations and solved in one call.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import spsolve
from torch import Tensor

# (row offset, column offset) -> weight: edge neighbours 1/6, diagonal neighbours 1/12 (they sum to 1)
NEIGHBOUR_WEIGHTS: tuple[tuple[tuple[int, int], float], ...] = (
    ((-1, -1), 1 / 12), ((-1, 0), 1 / 6), ((-1, 1), 1 / 12),
    ((0, -1), 1 / 6), ((0, 1), 1 / 6),
    ((1, -1), 1 / 12), ((1, 0), 1 / 6), ((1, 1), 1 / 12),
)
MODES = ("morf", "lerf")
SOLVERS = ("spsolve", "cg")


def _check_maps(attr: Tensor) -> None:
    if attr.dim() != 3:
        raise ValueError(f"attribution maps must be [n, H, W], got shape {tuple(attr.shape)}")


def _check_ratio(ratio: float, mode: str) -> None:
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"ratio must lie in [0, 1], got {ratio}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")


def mask_by_area(attr: Tensor, ratio: float, *, mode: str = "morf", generator: torch.Generator | None = None) -> Tensor:
    """Keep-masks that remove ``int(H*W*ratio)`` pixels per map, in MoRF or LeRF order.

    LeRF at ``ratio`` removes the ``ratio`` share of *least* relevant pixels, as in the soundness/completeness
    code (``soco``); Rong et al.'s own ROAD code (``road/imputed_dataset.py``, ``remove=False``) indexes its
    LeRF axis the other way (at ``p`` it removes the least relevant ``1 − p``), and breaks ties with fixed
    noise where this uses a random permutation.

    Args:
        attr: attribution maps ``[n, H, W]``.
        ratio: fraction of pixels to remove, in [0, 1].
        mode: ``"morf"`` removes the largest attributions first, ``"lerf"`` the smallest.
        generator: draws the random permutation that breaks ties (a fresh one per call and per map,
            as in ``soco``'s ``get_road_mask_by_area``).

    Returns:
        Boolean ``[n, H, W]``: True where the original pixel is kept, False where it is to be imputed.
    """
    _check_maps(attr)
    _check_ratio(ratio, mode)
    n, h, w = attr.shape
    flat = attr.reshape(n, h * w)
    k = int(h * w * float(ratio))  # soco's rounding: int() of the product
    perm = torch.rand(flat.shape, generator=generator, device=flat.device).argsort(1)  # [n, P] tie-break
    order_in_perm = flat.gather(1, perm).sort(dim=1, descending=mode == "morf", stable=True).indices
    order = perm.gather(1, order_in_perm)  # [n, P] pixel indices, removal order
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep.scatter_(1, order[:, :k], False)
    return keep.view(n, h, w)


def mask_by_value(attr: Tensor, ratio: float, *, mode: str = "morf") -> Tensor:
    """Keep-masks by attribution value relative to each map's maximum.

    MoRF keeps pixels with ``A <= (1 - ratio) * max A`` (so ratio 0.2 removes everything in the top 20 % of
    the value range); LeRF keeps pixels with ``A >= ratio * max A``. Order-free: unlike
    :func:`mask_by_area`, the number of removed pixels depends on the attribution's values.

    Returns:
        Boolean ``[n, H, W]``: True where the original pixel is kept.
    """
    _check_maps(attr)
    _check_ratio(ratio, mode)
    # torch's promotion, as in soco: uint8 maps compare in float32, float maps in their own precision, so
    # values that sit exactly on a threshold (204 of 255 at t = 0.2) fall on the same side as in the paper
    amax = attr.flatten(1).max(1).values.view(-1, 1, 1)
    if mode == "morf":
        return attr <= amax * (1.0 - float(ratio))
    return attr >= amax * float(ratio)


def _grid_index(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices, rows and columns of the removed pixels of a batch of [n, H, W] keep-masks."""
    n, h, w = keep.shape
    removed = np.flatnonzero(~keep.reshape(-1))  # global flat index over n*H*W
    return removed, (removed // w) % h, removed % w


def _spsolve_fill(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Exact infill of the removed pixels: one block-diagonal sparse system for the whole batch.

    Args:
        x: images ``[n, C, H, W]`` (float64).
        keep: ``[n, H, W]`` bool; every map keeps at least one pixel.

    Returns:
        ``[m, C]`` values of the m removed pixels, in flat (image, row, column) order.
    """
    n, c, h, w = x.shape
    flat_keep = keep.reshape(-1)
    pix = x.transpose(0, 2, 3, 1).reshape(n * h * w, c)  # [n*H*W, C], one row per pixel
    idx, row, col = _grid_index(keep)
    m = len(idx)
    var_of = np.full(n * h * w, -1, dtype=np.int64)
    var_of[idx] = np.arange(m)
    diag = np.zeros(m)
    rhs = np.zeros((m, c))
    rows, cols, vals = [], [], []
    for (dr, dc), weight in NEIGHBOUR_WEIGHTS:  # 8 vectorised passes, one per neighbour direction
        inside = (row + dr >= 0) & (row + dr < h) & (col + dc >= 0) & (col + dc < w)
        eq = np.flatnonzero(inside)  # equations whose neighbour in this direction exists
        nb = idx[eq] + dr * w + dc  # the neighbour's global flat index (same image: bounds checked)
        diag[eq] += weight
        known = flat_keep[nb]
        rhs[eq[known]] += weight * pix[nb[known]]
        rows.append(eq[~known])
        cols.append(var_of[nb[~known]])
        vals.append(np.full((~known).sum(), -weight))
    a = csc_matrix((np.concatenate([diag, *vals]), (np.concatenate([np.arange(m), *rows]),
                                                      np.concatenate([np.arange(m), *cols]))), shape=(m, m))
    return np.asarray(spsolve(a, rhs)).reshape(m, c)


def _cg_fill(x: Tensor, keep: Tensor, tol: float, max_iter: int | None) -> Tensor:
    """The same system solved by batched conjugate gradients in torch (one system per image and channel).

    The operator is a 3x3 convolution restricted to the removed pixels, so it runs wherever ``x`` lives.
    """
    n, c, h, w = x.shape
    kernel = torch.zeros(3, 3, dtype=x.dtype, device=x.device)
    for (dr, dc), weight in NEIGHBOUR_WEIGHTS:
        kernel[1 + dr, 1 + dc] = weight
    kernel = kernel.view(1, 1, 3, 3)
    conv = lambda t: F.conv2d(t.reshape(n * c, 1, h, w), kernel, padding=1).view(n, c, h, w)
    unknown = (~keep).unsqueeze(1).to(x.dtype)  # [n, 1, H, W]
    s = conv(torch.ones_like(x))  # sum of in-image neighbour weights
    apply = lambda u: unknown * (s * u - conv(u))  # u is zero on kept pixels
    b = unknown * conv(x * (1 - unknown))  # [n, C, H, W]
    dot = lambda p, q: (p * q).sum((2, 3), keepdim=True)  # [n, C, 1, 1]
    u = torch.zeros_like(x)
    r = b.clone()
    p = r.clone()
    rr = dot(r, r)
    stop = tol**2 * dot(b, b).clamp_min(torch.finfo(x.dtype).tiny)
    for _ in range(max_iter or h * w):
        if bool((rr <= stop).all()):
            break
        ap = apply(p)
        alpha = rr / dot(p, ap).clamp_min(torch.finfo(x.dtype).tiny)
        u = u + alpha * p
        r = r - alpha * ap
        rr_new = dot(r, r)
        p = r + (rr_new / rr.clamp_min(torch.finfo(x.dtype).tiny)) * p
        rr = rr_new
    return u


def road_impute(x: Tensor, keep: Tensor, *, noise: float = 0.01, generator: torch.Generator | None = None,
                solver: str = "spsolve", cg_tol: float = 1e-10, cg_max_iter: int | None = None) -> Tensor:
    """Fill the pixels where ``keep`` is False by ROAD's noisy linear imputation.

    Args:
        x: images ``[n, C, H, W]``.
        keep: ``[n, H, W]`` bool, True where the original pixel stays (all channels of a pixel together).
        noise: standard deviation of the Gaussian noise added to every imputed value (ROAD: 0.01).
        generator: for the noise (on ``x``'s device).
        solver: ``"spsolve"`` (scipy's sparse direct solver on the CPU, as in the paper's code) or ``"cg"``
            (conjugate gradients in torch on ``x``'s device, in float64; agrees with ``spsolve`` to ~1e-8).
        cg_tol, cg_max_iter: relative residual tolerance and iteration cap of ``"cg"`` (default cap: H*W,
            where CG is exact in exact arithmetic).

    Returns:
        ``[n, C, H, W]`` images of ``x``'s dtype and device; kept pixels are untouched. A map that removes
        every pixel leaves nothing to interpolate from: those images become 0 plus noise (the
        minimum-norm solution of their singular system).

    Example:
        >>> x = torch.rand(4, 3, 16, 16); keep = torch.rand(4, 16, 16) > 0.5
        >>> road_impute(x, keep, noise=0.0).shape
        torch.Size([4, 3, 16, 16])
    """
    if x.dim() != 4:
        raise ValueError(f"x must be [n, C, H, W], got shape {tuple(x.shape)}")
    if keep.shape != (x.shape[0], *x.shape[2:]) or keep.dtype != torch.bool:
        raise ValueError(f"keep must be a bool tensor of shape {(x.shape[0], *x.shape[2:])}, "
                         f"got {keep.dtype} {tuple(keep.shape)}")
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; allowed: {', '.join(SOLVERS)}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    keep = keep.to(x.device)
    empty = ~keep.flatten(1).any(1)  # [n] maps that removed every pixel
    solvable = keep | empty.view(-1, 1, 1)  # treat their pixels as known zeros below
    base = torch.where(empty.view(-1, 1, 1, 1), torch.zeros_like(x), x)
    removed = ~keep.unsqueeze(1).expand_as(x)  # [n, C, H, W]
    out = x.clone()
    if solver == "spsolve":
        vals = _spsolve_fill(base.detach().double().cpu().numpy(), solvable.cpu().numpy())  # [m, C]
        fill = torch.zeros_like(x)
        mask_hwc = (~solvable).unsqueeze(-1).expand(*solvable.shape, x.shape[1])  # [n, H, W, C]
        fill_hwc = fill.permute(0, 2, 3, 1).clone()
        fill_hwc[mask_hwc] = torch.as_tensor(vals, dtype=x.dtype, device=x.device).reshape(-1)
        fill = fill_hwc.permute(0, 3, 1, 2)
    else:
        fill = _cg_fill(base.detach().double(), solvable, cg_tol, cg_max_iter).to(x.dtype)
    if noise > 0:
        fill = fill + noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    out[removed] = fill[removed]
    return out


def road_perturb(x: Tensor, attr: Tensor, ratio: float, *, mode: str = "morf", by_area: bool = True,
                 noise: float = 0.01, generator: torch.Generator | None = None, solver: str = "spsolve",
                 ) -> tuple[Tensor, Tensor]:
    """Remove pixels of ``x`` by attribution (by area or by value) and impute them: ``(imputed, keep)``.

    This is ``soco``'s ``ROAD`` module: :func:`mask_by_area` or :func:`mask_by_value` followed by
    :func:`road_impute`. ``attr`` is ``[n, H, W]``; see those functions for the arguments.
    """
    keep = (mask_by_area(attr, ratio, mode=mode, generator=generator) if by_area
            else mask_by_value(attr, ratio, mode=mode))
    return road_impute(x, keep.to(x.device), noise=noise, generator=generator, solver=solver), keep
