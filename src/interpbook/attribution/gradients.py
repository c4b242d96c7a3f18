"""Gradient-based attribution: saliency, input×gradient, integrated gradients, DeepLIFT, guided backprop, gradient SHAP.

Context. A gradient says how the target logit ``f_t`` moves when one input feature moves a little. Used raw
(*saliency*, Simonyan et al. 2014) it is local: it says nothing about how much a feature contributed to
``f_t(x)`` itself. Multiplying by the input (*input×gradient*) or by the input's distance to a reference
point (a *baseline* ``x'``) turns sensitivities into contributions. Two methods make the contributions add
up exactly:

* **Integrated gradients** (Sundararajan et al. 2017) average the gradient along the straight path from
  ``x'`` to ``x``: ``IG_i = (x_i - x'_i) * int_0^1 df_t/dx_i(x' + a (x - x')) da``. By the fundamental
  theorem of calculus ``sum_i IG_i = f_t(x) - f_t(x')`` (*completeness*). The integral is a quadrature
  over ``n_steps`` points, all evaluated in one batched pass: Gauss–Legendre (captum's default) or a
  Riemann rule (left, right, middle, trapezoid), named as captum names them.
* **DeepLIFT-rescale** (Shrikumar et al. 2017) runs ``x`` and ``x'`` through the network side by side and
  replaces the derivative of every elementwise nonlinearity ``y = g(z)`` by the secant slope
  ``(g(z) - g(z')) / (z - z')``. Back-propagating these *multipliers* through the (linear) rest of the net
  gives contributions that sum to ``f_t(x) - f_t(x')`` exactly (*summation to delta*). Here the rule sits
  on activation *modules* (``nn.ReLU``, ``nn.LeakyReLU``, ``nn.ELU``, ``nn.Sigmoid``, ``nn.Tanh``,
  ``nn.Softplus``), set with forward hooks, as captum does; functional activations are differentiated
  normally.

*Guided backpropagation* (Springenberg et al. 2015) lets only positive gradients pass backwards through
ReLUs; *gradient SHAP* (Lundberg & Lee 2017, captum's ``GradientShap``) averages ``grad * (x - x')`` at
random points between ``x`` and baselines drawn from a distribution.

Every function takes a model returning logits ``[batch, classes]``, an input batch ``x``, and a
``target`` (int, ``[batch]`` tensor, or ``None`` for the prediction), and returns a tensor shaped like
``x``. The model is used as given: put it in ``eval()`` mode first.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from interpbook.attribution._common import (
    as_baseline,
    check_input,
    check_positive_int,
    chunks,
    input_gradient,
    resolve_target,
    rows_per_pass,
    select,
)

RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
# activation modules that get DeepLIFT's rescale multiplier (captum's elementwise "nonlinear" set)
RESCALE_MODULES = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Sigmoid, nn.Tanh, nn.Softplus)
# modules whose DeepLIFT rule is not elementwise; refused rather than silently differentiated
NON_ELEMENTWISE = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.Softmax)


def saliency(model: nn.Module, x: Tensor, target=None, *, abs: bool = True) -> Tensor:  # noqa: A002 (captum's name)
    """Gradient of the target logit with respect to the input (Simonyan et al., 2014).

    Args:
        model: maps ``x`` to logits ``[batch, classes]``.
        x: input batch ``[batch, ...]``.
        target: class to explain (int, ``[batch]`` tensor, or ``None`` for the prediction).
        abs: return ``|grad|`` (captum's default) rather than the signed gradient. Simonyan et al. then take
            the maximum of ``|grad|`` over colour channels for a pixel map; this returns every channel, and
            :func:`interpbook.attribution.groundtruth.pixel_map` (used by the deletion and ground-truth scores)
            sums them instead.

    Returns:
        ``[batch, ...]`` like ``x``.

    Example:
        >>> model = nn.Linear(3, 2); x = torch.ones(4, 3)
        >>> torch.equal(saliency(model, x, 1, abs=False), model.weight[1].detach().expand(4, 3))
        True
    """
    check_input(x)
    grad = input_gradient(model, x, resolve_target(model, x, target))
    return grad.abs() if abs else grad


def input_x_gradient(model: nn.Module, x: Tensor, target=None) -> Tensor:
    """Input times gradient, ``x * df_t/dx`` (Shrikumar et al., 2016): ``w * x`` for a linear logit."""
    check_input(x)
    return x * input_gradient(model, x, resolve_target(model, x, target))


def quadrature(n_steps: int, rule: str = "gausslegendre") -> tuple[list[float], list[float]]:
    """Points ``a_k`` in [0, 1] and weights ``w_k`` with ``int_0^1 g(a) da ~ sum_k w_k g(a_k)``.

    ``rule`` is one of :data:`RULES` (captum's ``method`` names). Riemann rules need ``n_steps >= 2``.
    Every rule's weights sum to one. (captum 0.9's ``riemann_trapezoid`` gives the ``n`` nodes weights
    ``1/n`` with halved ends, which sum to ``(n - 1)/n``: its integrals are ours times ``(n - 1)/n``.)
    """
    if rule not in RULES:
        raise ValueError(f"unknown quadrature rule {rule!r}; allowed: {', '.join(RULES)}")
    check_positive_int(n_steps, "n_steps", 1 if rule == "gausslegendre" else 2)
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)  # on [-1, 1]
        return (0.5 * (1 + nodes)).tolist(), (0.5 * weights).tolist()
    n = n_steps
    weights = [1.0 / n] * n
    if rule == "riemann_trapezoid":  # n nodes, n - 1 intervals; captum's weights sum to (n - 1) / n instead
        weights = [1.0 / (n - 1)] * n
        weights[0] /= 2
        weights[-1] /= 2
        alphas = np.linspace(0, 1, n)
    elif rule == "riemann_left":
        alphas = np.linspace(0, 1 - 1 / n, n)
    elif rule == "riemann_right":
        alphas = np.linspace(1 / n, 1, n)
    else:  # riemann_middle
        alphas = np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    return alphas.tolist(), weights


def integrated_gradients(model: nn.Module, x: Tensor, target=None, *, baseline=None, n_steps: int = 50,
                         rule: str = "gausslegendre", internal_batch_size: int | None = None) -> Tensor:
    """Integrated gradients (Sundararajan et al., 2017) from any baseline, all path points batched.

    Args:
        model, x, target: as in :func:`saliency`.
        baseline: the reference ``x'``: ``None`` (zeros), a number, or a tensor broadcastable to ``x``
            (one input ``x.shape[1:]`` or one per example).
        n_steps: quadrature points on the path.
        rule: ``"gausslegendre"`` (captum's default) or ``"riemann_left|right|middle|trapezoid"``.
        internal_batch_size: path points per forward pass (``None``: automatic, see
            :func:`~interpbook.attribution._common.rows_per_pass`).

    Returns:
        ``[batch, ...]``; ``attr.flatten(1).sum(1) ~ f_t(x) - f_t(x')`` up to the quadrature error.
    """
    check_input(x)
    tgt = resolve_target(model, x, target)
    base = as_baseline(baseline, x)
    alphas, weights = quadrature(n_steps, rule)
    alphas_t = torch.tensor(alphas, dtype=x.dtype, device=x.device)
    weights_t = torch.tensor(weights, dtype=x.dtype, device=x.device)
    diff = x - base
    total = torch.zeros_like(x)
    n, bcast = len(x), (-1,) + (1,) * (x.ndim - 1)
    for s in chunks(n_steps * n, rows_per_pass(x, internal_batch_size)):  # row r = (step r // n, example r % n)
        rows = torch.arange(s.start, s.stop, device=x.device)
        k, b = rows // n, rows % n
        grads = input_gradient(model, base[b] + alphas_t[k].view(bcast) * diff[b], tgt[b])
        total.index_add_(0, b, weights_t[k].view(bcast) * grads)
    return total * diff


def deeplift(model: nn.Module, x: Tensor, target=None, *, baseline=None, eps: float = 1e-10) -> Tensor:
    """DeepLIFT with the rescale rule (Shrikumar et al., 2017), as captum's ``DeepLift``.

    ``x`` and the baseline pass through the model as one batch ``[x; x']``. A forward hook on every
    activation module in :data:`RESCALE_MODULES` replaces its local derivative, for the ``x`` half, by the
    multiplier ``(g(z) - g(z')) / (z - z')`` (the ordinary derivative where ``|z - z'| < eps``); the
    attribution is ``(x - x') * d f_t / d x`` under these multipliers. For a network of linear maps and
    such activations ``attr.sum() == f_t(x) - f_t(x')`` exactly.

    Args:
        model, x, target: as in :func:`saliency`. Each activation module may be called once per forward.
        baseline: the reference ``x'`` (``None`` = zeros, a number, or broadcastable to ``x``).
        eps: below this input difference a unit keeps its gradient (captum's default 1e-10).
    """
    check_input(x)
    bad = sorted({type(m).__name__ for m in model.modules() if isinstance(m, NON_ELEMENTWISE)})
    if bad:
        raise ValueError(f"deeplift here implements the rescale rule for elementwise activations only; the model "
                         f"contains {', '.join(bad)} (supported: {', '.join(c.__name__ for c in RESCALE_MODULES)})")
    tgt = resolve_target(model, x, target)
    base = as_baseline(baseline, x)
    n = len(x)
    saved: dict[nn.Module, Tensor] = {}
    done: set[nn.Module] = set()

    def pre_hook(module, inputs):
        if module in done or module in saved:
            raise ValueError(f"module {module} runs more than once per forward pass; DeepLIFT needs each "
                             "activation module to be used once (as captum does)")
        saved[module] = inputs[0].clone()  # before an in-place activation overwrites it

    def hook(module, inputs, out):
        z = saved.pop(module)
        done.add(module)
        zx, zb, yx, yb = z[:n], z[n:], out[:n], out[n:]
        dz, dy = (zx - zb).detach(), (yx - yb).detach()
        small = dz.abs() < eps
        slope = dy / torch.where(small, torch.ones_like(dz), dz)
        rescaled = yx.detach() + slope * (zx - zx.detach())  # value g(z), derivative the secant slope
        return torch.cat([torch.where(small, yx, rescaled), yb])

    handles = []
    try:
        for m in model.modules():
            if isinstance(m, RESCALE_MODULES):
                handles += [m.register_forward_pre_hook(pre_hook), m.register_forward_hook(hook)]
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            out = model(torch.cat([leaf, base]))
            (grad,) = torch.autograd.grad(select(out[:n], tgt).sum(), leaf)
    finally:
        for h in handles:
            h.remove()
    return (x - base) * grad


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward passes only the positive part of the incoming gradient."""

    @staticmethod
    def forward(ctx, t):
        return t.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp_min(0)


def guided_backprop(model: nn.Module, x: Tensor, target=None) -> Tensor:
    """Guided backpropagation (Springenberg et al., 2015), as captum's ``GuidedBackprop``.

    Every ``nn.ReLU`` module passes back ``relu(mask * grad)``: the gradient where the unit was active
    *and* the incoming gradient is positive.
    """
    check_input(x)
    tgt = resolve_target(model, x, target)
    handles = [m.register_forward_hook(lambda mod, inp, out: _PositiveGradient.apply(out))
               for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        return input_gradient(model, x, tgt)
    finally:
        for h in handles:
            h.remove()


def gradient_shap(model: nn.Module, x: Tensor, target=None, *, baselines=None, n_samples: int = 5,
                  stdevs: float = 0.0, generator: torch.Generator | None = None,
                  internal_batch_size: int | None = None) -> Tensor:
    """Gradient SHAP (Lundberg & Lee, 2017; captum's ``GradientShap``): expected gradients.

    For each example, ``n_samples`` times: draw a baseline ``x'`` from ``baselines``, a point
    ``a ~ U(0, 1)`` and optional input noise ``e ~ N(0, stdevs^2)``; the attribution is the mean of
    ``grad f_t(x' + a (x + e - x')) * (x + e - x')``. In expectation its sum is
    ``f_t(x) - E f_t(x')`` for models linear along the path, and exactly so for linear models.

    Args:
        baselines: ``[n_baselines, *x.shape[1:]]`` to draw from, or one baseline broadcastable to an
            input (``None``: zeros).
        n_samples: draws per example (all evaluated in one batched pass).
        stdevs: standard deviation of the Gaussian noise added to the input (captum's default 0).
        generator: for reproducible draws.
        internal_batch_size: gradient evaluations per backward pass (``None``: automatic).
    """
    check_input(x)
    check_positive_int(n_samples, "n_samples")
    if not (isinstance(stdevs, (int, float)) and stdevs >= 0):
        raise ValueError(f"stdevs must be a non-negative number, got {stdevs!r}")
    tgt = resolve_target(model, x, target)
    if baselines is None:
        pool = torch.zeros(1, *x.shape[1:], dtype=x.dtype, device=x.device)
    elif isinstance(baselines, Tensor) and baselines.ndim == x.ndim:
        if baselines.shape[1:] != x.shape[1:] or len(baselines) == 0:
            raise ValueError(f"baselines [n, ...] must have shape [n, {', '.join(map(str, x.shape[1:]))}], "
                             f"got {tuple(baselines.shape)}")
        pool = baselines.to(device=x.device, dtype=x.dtype)
    else:
        pool = as_baseline(baselines, x[:1], name="baselines")
    dev = generator.device if generator is not None else x.device
    n, s = len(x), n_samples
    idx = torch.randint(len(pool), (s * n,), generator=generator, device=dev).to(x.device)
    alpha = torch.rand(s * n, generator=generator, device=dev).to(x.device, x.dtype)
    xs = x.repeat(s, *([1] * (x.ndim - 1)))  # [s * n, ...], sample-major
    if stdevs > 0:
        xs = xs + stdevs * torch.randn(xs.shape, generator=generator, device=dev).to(x.device, x.dtype)
    base = pool[idx]
    a = alpha.view(-1, *([1] * (x.ndim - 1)))
    points, tgts = base + a * (xs - base), tgt.repeat(s)
    rows = rows_per_pass(x, internal_batch_size)
    grads = torch.cat([input_gradient(model, points[c], tgts[c]) for c in chunks(len(points), rows)])
    return (grads * (xs - base)).view(s, *x.shape).mean(0)


def completeness_gap(model: nn.Module, x: Tensor, attributions: Tensor, target=None, *, baseline=None) -> Tensor:
    """``sum(attr) - (f_t(x) - f_t(x'))`` per example: zero for a complete attribution (IG, DeepLIFT)."""
    check_input(x)
    tgt = resolve_target(model, x, target)
    base = as_baseline(baseline, x)
    with torch.no_grad():
        delta = select(model(x), tgt) - select(model(base), tgt)
    return attributions.flatten(1).sum(1) - delta


__all__ = ["RULES", "completeness_gap", "deeplift", "gradient_shap", "guided_backprop", "input_x_gradient",
           "integrated_gradients", "quadrature", "saliency"]
