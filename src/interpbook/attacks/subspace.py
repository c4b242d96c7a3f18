"""Adversarial vulnerability as a function of the dimension of the perturbation subspace.

Godfrey et al. (2023) find that PGD success in a d-dimensional coordinate subspace of a D-dimensional
input space behaves like a monotone function of ``eps * (d / D) ** (1 / q)``, with ``1/p + 1/q = 1``.
For a linear logit ``w.x + b`` the largest change reachable inside ``B_p(eps) ∩ V`` is exactly
``eps * ||w_S||_q``, and for a random coordinate set ``||w_S||_q ≈ (d / D) ** (1/q) * ||w||_q``. This
module holds the pieces of that analysis: subspace masks, success rates, minimal budgets by bisection,
the linear closed form and the collapse fit (isotonic regression on ``log(eps * (d/D)**gamma)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from interpbook.attacks.pgd import dual_exponent, parse_norm, perturb
from interpbook.models.basic import eval_mode


def pixel_masks(n: int, shape: tuple[int, ...], dims: list[int], *, generator=None, device=None) -> Tensor:
    """Nested random pixel subsets: ``[len(dims), n, *shape]`` boolean masks.

    Each example draws one random order of the pixel positions; its d-dimensional subspace is the first d
    pixels of that order (all channels of a pixel move together), so the subspaces for increasing d are
    nested. ``shape`` is ``(C, H, W)`` or ``(D,)``; ``d`` counts pixels.
    """
    pixels = math.prod(shape[1:]) if len(shape) == 3 else math.prod(shape)
    if any(not 1 <= d <= pixels for d in dims):
        raise ValueError(f"dims must lie in [1, {pixels}] (the number of pixels), got {dims}")
    keys = torch.rand((n, pixels), generator=generator, device=device)
    rank = keys.argsort(1).argsort(1)  # rank of each pixel in the example's random order
    d = torch.as_tensor(dims, device=rank.device).view(-1, 1, 1)
    masks = rank.unsqueeze(0) < d  # [len(dims), n, pixels]
    if len(shape) == 3:
        masks = masks.view(len(dims), n, 1, *shape[1:]).expand(len(dims), n, *shape)
    else:
        masks = masks.view(len(dims), n, *shape)
    return masks


def patch_masks(n: int, shape: tuple[int, int, int], sides: list[int], *, generator=None, device=None) -> Tensor:
    """Square patches of the given side lengths at random positions: ``[len(sides), n, C, H, W]``."""
    c, h, w = shape
    if any(not 1 <= s <= min(h, w) for s in sides):
        raise ValueError(f"patch sides must lie in [1, {min(h, w)}], got {sides}")
    out = torch.zeros((len(sides), n, c, h, w), dtype=torch.bool, device=device)
    u = torch.rand((2, n), generator=generator, device=device)
    rows = torch.arange(h, device=out.device).view(1, h)
    cols = torch.arange(w, device=out.device).view(1, w)
    for i, s in enumerate(sides):
        top = (u[0] * (h - s + 1)).long().view(n, 1)
        left = (u[1] * (w - s + 1)).long().view(n, 1)
        in_r = (rows >= top) & (rows < top + s)  # [n, h]
        in_c = (cols >= left) & (cols < left + s)  # [n, w]
        out[i] = (in_r.unsqueeze(2) & in_c.unsqueeze(1)).unsqueeze(1).expand(n, c, h, w)
    return out


@torch.no_grad()
def is_adversarial(model, x_adv: Tensor, y: Tensor) -> Tensor:
    """Misclassified in eval mode (as :func:`perturb` judges), the model's mode given back: ``[batch]`` bool."""
    with eval_mode(model):
        return model(x_adv).argmax(1) != y


def success_grid(model, x, y, *, norm, eps_grid, masks, chunk: int = 8192, **pgd) -> np.ndarray:
    """Attack success rate for every (subspace, eps) pair: ``[len(masks), len(eps_grid)]``.

    ``masks`` is ``[n_dims, n, ...]`` (one subspace per example per dimension). All pairs are stacked
    into one batch (split into chunks of ``chunk`` rows) so the grid costs ``steps`` batched passes.
    """
    n_d, n = masks.shape[0], x.shape[0]
    eps_grid = torch.as_tensor(eps_grid, dtype=x.dtype, device=x.device)
    n_e = len(eps_grid)
    # rows ordered (dim, eps, example)
    xs = x.unsqueeze(0).expand(n_d * n_e, *x.shape).reshape(-1, *x.shape[1:])
    ys = y.repeat(n_d * n_e)
    ms = masks.unsqueeze(1).expand(n_d, n_e, *masks.shape[1:]).reshape(-1, *masks.shape[2:])
    es = eps_grid.view(1, n_e, 1).expand(n_d, n_e, n).reshape(-1)
    hits = []
    for s in range(0, xs.shape[0], chunk):
        sl = slice(s, s + chunk)
        adv = perturb(model, xs[sl], ys[sl], norm=norm, eps=es[sl], mask=ms[sl], **pgd)
        hits.append(is_adversarial(model, adv, ys[sl]))
    return torch.cat(hits).view(n_d, n_e, n).float().mean(2).cpu().numpy()


def minimal_epsilon(model, x, y, *, norm, mask, eps_max: float | Tensor, iters: int = 10, **pgd) -> Tensor:
    """Smallest budget at which PGD succeeds, per example, by bisection on ``[0, eps_max]``.

    ``eps_max`` is a float or a per-example tensor ``[batch]``; after ``iters`` halvings the answer is
    an upper bound within ``eps_max / 2**iters`` of PGD's threshold. Returns ``[batch]``, ``inf`` where
    PGD fails even at ``eps_max``. All examples bisect together, each with its own ``eps`` (one batched
    PGD call per bisection step).
    """
    lo = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    hi = torch.as_tensor(eps_max, dtype=x.dtype, device=x.device).expand(x.shape[0]).clone()
    ok_max = is_adversarial(model, perturb(model, x, y, norm=norm, eps=hi, mask=mask, **pgd), y)
    for _ in range(iters):
        mid = (lo + hi) / 2
        ok = is_adversarial(model, perturb(model, x, y, norm=norm, eps=mid, mask=mask, **pgd), y)
        hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
    return torch.where(ok_max, hi, torch.full_like(hi, math.inf))


def linear_max_change(w: Tensor, mask: Tensor, eps: float | Tensor, norm) -> Tensor:
    """``eps * ||w_S||_q``: the largest change of ``w.x`` over ``delta in B_p(eps) ∩ span(S)``.

    ``w`` is ``[D]``, ``mask`` ``[..., D]``; returns ``mask.shape[:-1]`` (no box constraint).
    """
    q = dual_exponent(parse_norm(norm))
    return torch.as_tensor(eps, dtype=w.dtype, device=w.device) * torch.linalg.vector_norm(w * mask, ord=q, dim=-1)


@dataclass
class CollapseFit:
    """Residual of the best monotone fit of success on ``log(eps * (d/D)**gamma)``, for each gamma."""

    gammas: np.ndarray
    residuals: np.ndarray
    gamma_star: float
    residual_star: float
    residual_zero: float

    def valley(self, tol: float = 0.01) -> tuple[float, float]:
        """Range of gamma whose residual is within ``tol`` of the way from the best to gamma = 0.

        On a coarse budget grid many exponents order the cells equally well; a wide valley means the
        data pin gamma down only loosely.
        """
        cut = self.residual_star + tol * (self.residual_zero - self.residual_star)
        near = self.gammas[self.residuals <= cut]
        return float(near.min()), float(near.max())


def collapse_fit(success: np.ndarray, eps: np.ndarray, dims: np.ndarray, D: int,
                 gammas: np.ndarray | None = None) -> CollapseFit:
    """Find the exponent gamma that best collapses a success grid onto one monotone curve.

    For each gamma, ``x = log(eps) + gamma * log(d / D)``; isotonic (PAV) regression of success on x
    gives the best non-decreasing curve; its mean squared residual measures how well one function of
    ``eps * (d/D)**gamma`` explains the whole grid. ``success`` is ``[len(dims), len(eps)]``.
    """
    from sklearn.isotonic import IsotonicRegression

    success = np.asarray(success, dtype=float)
    if success.shape != (len(dims), len(eps)):
        raise ValueError(f"success has shape {success.shape}, expected (len(dims), len(eps)) = "
                         f"({len(dims)}, {len(eps)})")
    gammas = np.round(np.linspace(0, 1.5, 151), 10) if gammas is None else np.asarray(gammas, dtype=float)
    log_e = np.log(np.asarray(eps, dtype=float))[None, :]
    log_r = np.log(np.asarray(dims, dtype=float) / D)[:, None]
    y = success.ravel()
    res = np.empty(len(gammas))
    for i, g in enumerate(gammas):
        x = (log_e + g * log_r).ravel()
        fit = IsotonicRegression(increasing=True).fit_transform(x, y)
        res[i] = np.mean((fit - y) ** 2)
    i_star = int(np.argmin(res))
    res_zero = float(res[0]) if gammas[0] == 0 else float(
        np.mean((IsotonicRegression().fit_transform(np.broadcast_to(log_e, success.shape).ravel(), y) - y) ** 2))
    return CollapseFit(gammas, res, float(gammas[i_star]), float(res[i_star]), res_zero)


def loglog_slope(dims, values) -> float:
    """Least-squares slope of ``log(values)`` against ``log(dims)``."""
    return float(np.polyfit(np.log(np.asarray(dims, float)), np.log(np.asarray(values, float)), 1)[0])


def max_violation(success: np.ndarray) -> float:
    """Largest decrease of a success grid along either axis (0 if monotone non-decreasing in both)."""
    s = np.asarray(success, float)
    drops = [np.diff(s, axis=0).min(initial=0), np.diff(s, axis=1).min(initial=0)]
    return max(0.0, float(-min(drops)))
