"""Projected gradient descent in an lp ball, optionally restricted to a coordinate subspace.

PGD (Madry et al., 2018) ascends the classification loss and projects back onto the threat set after
every step. Here the threat set is ``{x + delta : ||delta||_p <= eps, delta in V, x + delta in box}`` with
``V = span{e_i : mask_i = 1}`` (Godfrey et al., 2023, "How many dimensions are required to find an
adversarial example?"). Steps are the lp steepest-ascent directions of the masked gradient:

* ``p = inf``: ``alpha * sign(g)``, projection = clamp to ``[-eps, eps]``;
* ``p = 2``: ``alpha * g / ||g||_2``, projection = radial rescale;
* ``p = 1``: either steepest ascent (move the single largest-gradient coordinate) or SLIDE (Tramèr &
  Boneh, 2019: move the top ``1 - sparsity`` fraction of free coordinates, by sign, with an l1-normalised
  step), both followed by the exact Euclidean projection onto the l1 ball (Duchi et al., 2008).

Everything is batched: ``eps`` may be a per-example tensor, and ``mask`` a per-example tensor, so one
call attacks a whole (eps, subspace) grid at once on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

NORMS = ("inf", "2", "1")
L1_METHODS = ("slide", "steepest")


def parse_norm(norm) -> float:
    """``"inf" | "linf" | inf | 2 | "2" | 1 | "1"`` -> ``math.inf``, ``2.0`` or ``1.0``."""
    if isinstance(norm, bool):
        raise ValueError(f"unknown norm {norm!r}; allowed: inf, 2, 1")
    key = str(norm).lower().replace("l", "") if not isinstance(norm, (int, float)) else norm
    table = {"inf": math.inf, math.inf: math.inf, "2": 2.0, 2: 2.0, "1": 1.0, 1: 1.0}
    if key not in table:
        raise ValueError(f"unknown norm {norm!r}; allowed: inf, 2, 1")
    return table[key]


def dual_exponent(p: float) -> float:
    """``q`` with ``1/p + 1/q = 1`` (``inf`` for ``p = 1``, ``1`` for ``p = inf``)."""
    p = parse_norm(p)
    return 1.0 if p == math.inf else (math.inf if p == 1 else p / (p - 1))


def lp_norm(v: Tensor, p: float) -> Tensor:
    """Row-wise lp norm of a ``[batch, ...]`` tensor -> ``[batch]``."""
    return torch.linalg.vector_norm(v.flatten(1), ord=p, dim=1)


def project_l1_ball(v: Tensor, radius: Tensor | float) -> Tensor:
    """Exact Euclidean projection of each row of ``v`` ``[batch, D]`` onto ``{||z||_1 <= radius}``.

    Duchi et al. (2008), sort-based O(D log D): soft-threshold ``|v|`` at the ``theta`` that makes the
    l1 norm equal to the radius; rows already inside the ball are returned unchanged.
    """
    radius = torch.as_tensor(radius, dtype=v.dtype, device=v.device).expand(v.shape[0]).unsqueeze(1)
    a = v.abs()
    inside = a.sum(1, keepdim=True) <= radius
    srt, _ = torch.sort(a, dim=1, descending=True)
    css = srt.cumsum(1) - radius
    k = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    cond = srt - css / k > 0
    rho = cond.to(v.dtype).cumsum(1).argmax(1, keepdim=True)  # last index where cond holds
    theta = css.gather(1, rho) / (rho + 1).to(v.dtype)
    projected = v.sign() * (a - theta).clamp_min(0)
    return torch.where(inside, v, projected)


def project_lp_ball(delta: Tensor, eps: Tensor | float, p) -> Tensor:
    """Project each row of ``delta`` ``[batch, D]`` onto the lp ball of radius ``eps`` (float or ``[batch]``)."""
    p = parse_norm(p)
    eps = torch.as_tensor(eps, dtype=delta.dtype, device=delta.device).expand(delta.shape[0])
    if p == math.inf:
        e = eps.unsqueeze(1)
        return torch.maximum(torch.minimum(delta, e), -e)
    if p == 2:
        norms = delta.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return delta * (eps.unsqueeze(1) / norms).clamp(max=1.0)
    return project_l1_ball(delta, eps)


def _random_start(mask: Tensor, eps: Tensor, p: float, generator) -> Tensor:
    """A uniform sample of the lp ball intersected with the subspace, as ``[batch, D]``."""
    d = mask.sum(1, keepdim=True).clamp_min(1)
    e = eps.unsqueeze(1)
    if p == math.inf:
        u = torch.rand(mask.shape, generator=generator, device=mask.device, dtype=e.dtype)
        return (2 * u - 1) * e * mask
    if p == 2:
        g = torch.randn(mask.shape, generator=generator, device=mask.device, dtype=e.dtype) * mask
        g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
        r = torch.rand(d.shape, generator=generator, device=mask.device, dtype=e.dtype) ** (1 / d)
        return g * r * e
    # l1: |z_i| = E_i / (E_1 + ... + E_d + E_{d+1}) with E ~ Exp(1) is uniform in the d-dim l1 ball
    expo = -torch.log(torch.rand((mask.shape[0], mask.shape[1] + 1), generator=generator,
                                 device=mask.device, dtype=e.dtype).clamp_min(1e-12))
    body = expo[:, :-1] * mask
    total = body.sum(1, keepdim=True) + expo[:, -1:]
    signs = torch.randint(0, 2, mask.shape, generator=generator, device=mask.device).to(e.dtype) * 2 - 1
    return signs * body / total * e


def _l1_direction(g: Tensor, free: Tensor, method: str, sparsity: float) -> Tensor:
    """An l1-normalised ascent direction using only ``free`` coordinates."""
    score = torch.where(free, g.abs(), torch.full_like(g, -1.0))
    if method == "steepest":
        idx = score.argmax(1, keepdim=True)
        out = torch.zeros_like(g).scatter_(1, idx, 1.0)
        return out * g.sign() * (score.gather(1, idx) > 0)
    n_free = free.sum(1, keepdim=True)
    k = torch.ceil((1 - sparsity) * n_free).clamp_min(1).long().clamp(max=g.shape[1])
    top, _ = torch.topk(score, int(k.max()), dim=1)  # sorted, descending; cheaper than a full sort
    kth = top.gather(1, k - 1)
    chosen = free & (score >= kth) & (score > 0)
    out = chosen.to(g.dtype) * g.sign()
    return out / chosen.sum(1, keepdim=True).clamp_min(1)


def _per_example(value, name: str, batch: int, like: Tensor) -> Tensor:
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.dim() > 1 or (t.dim() == 1 and t.shape[0] not in (1, batch)):
        raise ValueError(f"{name} must be a number or a tensor of shape [{batch}] (one per example), "
                         f"got shape {tuple(t.shape)}")
    return t.expand(batch).clone()


def perturb(
    model: torch.nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    norm="inf",
    eps: float | Tensor,
    steps: int = 20,
    step_size: float | Tensor | None = None,
    mask: Tensor | None = None,
    random_start: bool = True,
    clip: tuple[float, float] | None = (0.0, 1.0),
    l1_method: str = "slide",
    l1_sparsity: float = 0.9,
    keep_best: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Untargeted PGD on the cross-entropy loss, inside ``B_p(eps) ∩ span(mask) ∩ box``.

    Args:
        model: maps ``x`` ``[batch, ...]`` to logits ``[batch, classes]``.
        x, y: inputs and true labels.
        norm: ``"inf"``, ``2`` or ``1``.
        eps: budget, a float or a per-example tensor ``[batch]``.
        steps: number of PGD iterations.
        step_size: ``alpha``; default ``2.5 * eps / steps`` (Madry et al.).
        mask: which coordinates may change; broadcastable to ``x`` (per example or shared). ``None``
            means every coordinate.
        random_start: start from a uniform sample of the ball ∩ subspace (then clipped to the box).
        clip: the valid input box, or ``None`` for an unconstrained input space; ``x`` must lie in it. Each
            step projects onto the ball, applies the mask, then clips to the box: for l_inf this is the exact
            projection onto ball ∩ box; for l2 and l1 it is feasible but not the exact projection onto the
            intersection (ART clips first, then projects; both differ from the exact one).
        l1_method: ``"slide"`` or ``"steepest"`` (only for ``norm=1``).
        l1_sparsity: SLIDE moves the top ``1 - l1_sparsity`` fraction of *free* (subspace) coordinates. The
            references move fewer: cleverhans' ``grad_sparsity=99`` and foolbox the top 1 % of all
            coordinates, Tramèr & Boneh a percentile drawn from [80, 99]; with 0.9 and d ≤ 10 free
            coordinates SLIDE is steepest ascent (one coordinate).
        keep_best: per example, return the last iterate if it is misclassified, else the first earlier
            iterate that was (else the last iterate).
        generator: a ``torch.Generator`` on ``x.device`` for the random start.

    Returns:
        The adversarial inputs, same shape as ``x``; ``x_adv - x`` lies in the threat set.

    Example:
        >>> x_adv = perturb(model, x, y, norm=2, eps=1.0, mask=mask)  # doctest: +SKIP
    """
    p = parse_norm(norm)
    if l1_method not in L1_METHODS:
        raise ValueError(f"unknown l1_method {l1_method!r}; allowed: {', '.join(L1_METHODS)}")
    if not 0 <= l1_sparsity < 1:
        raise ValueError(f"l1_sparsity must be in [0, 1), got {l1_sparsity}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    batch, shape = x.shape[0], x.shape
    x0 = x.detach().flatten(1)
    eps_t = _per_example(eps, "eps", batch, x0)
    if (eps_t < 0).any():
        raise ValueError("eps must be non-negative")
    alpha = 2.5 * eps_t / max(steps, 1) if step_size is None else _per_example(step_size, "step_size", batch, x0)
    if mask is None:
        m = torch.ones_like(x0)
    else:
        try:
            m = torch.broadcast_to(mask.to(device=x.device), shape).reshape(batch, -1).to(x0.dtype)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to x {tuple(shape)}") from None
    lo, hi = clip if clip is not None else (-math.inf, math.inf)
    if clip is not None and (float(x0.min()) < lo - 1e-6 or float(x0.max()) > hi + 1e-6):
        raise ValueError(f"x must lie in the box clip={clip} (got values in [{float(x0.min()):.4g}, "
                         f"{float(x0.max()):.4g}]); pass clip=None or the data's own range")

    def to_box(delta):
        return (x0 + delta).clamp(lo, hi) - x0 if clip is not None else delta

    delta = to_box(_random_start(m, eps_t, p, generator)) if random_start else torch.zeros_like(x0)
    best = None
    if keep_best:
        best, found = delta.clone(), torch.zeros(batch, dtype=torch.bool, device=x.device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            delta.requires_grad_(True)
            logits = model((x0 + delta).view(shape))
            loss = F.cross_entropy(logits, y, reduction="sum")
            (g,) = torch.autograd.grad(loss, delta)
            delta = delta.detach()
            if keep_best:
                wrong = logits.detach().argmax(1) != y
                new = wrong & ~found
                best[new], found = delta[new], found | wrong
            g = g * m
            if p == math.inf:
                step = g.sign()
            elif p == 2:
                step = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
            else:
                xa = x0 + delta
                free = (m > 0) & ~(((xa <= lo) & (g < 0)) | ((xa >= hi) & (g > 0)))
                step = _l1_direction(g, free, l1_method, l1_sparsity)
            delta = to_box(project_lp_ball(delta + alpha.unsqueeze(1) * step, eps_t, p) * m)
        if keep_best:
            with torch.no_grad():
                wrong = model((x0 + delta).view(shape)).argmax(1) != y
            delta = torch.where((found & ~wrong).unsqueeze(1), best, delta)
    finally:
        model.train(was_training)
    return (x0 + delta).view(shape).detach()
