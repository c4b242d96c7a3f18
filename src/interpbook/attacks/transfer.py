"""Transfer attacks: the sign-gradient family of Gu et al.'s survey (2023), in one batched implementation.

One iterative l_inf attack with switches for each enhancement the survey catalogues; every named attack is
a preset of it (:data:`ATTACKS`):

- FGSM (Goodfellow et al., 2015): one step of size eps;
- I-FGSM / BIM (Kurakin et al., 2017): ``steps`` steps of size ``alpha = eps / steps``; PGD (Madry et al., 2018):
  from a uniform random start, with steps of ``2.5 eps / steps`` (torchattacks' default ratio; Madry et al.'s
  steps also add up to more than ``eps``, or a random start could not reach the far side of the ball);
- MI-FGSM (Dong et al., 2018): ``g <- mu g + grad / mean|grad|``, step along ``sign(g)``. Dong et al. write
  ``grad / ||grad||_1``; dividing by the mean instead (as TransferAttack does) scales ``g`` by the constant
  ``C·H·W``, which leaves MI's sign steps unchanged but sets the size of NI's look-ahead. NI-FGSM (Lin et al.,
  2020): the gradient taken at the Nesterov look-ahead ``x + alpha mu g``;
- DI-FGSM (Xie et al., 2019): with probability ``p`` the gradient is taken at a randomly shrunk and padded
  copy of the input (resize to ``r`` in ``[H, 1.25 H)``, pad to ``1.25 H``, read back at ``H`` — one affine
  resampling per example, so models with a fixed input size work). Differences from Xie et al.'s code: the
  range (theirs resizes 299 px to [299, 330), a ratio ≈ 1.1; the plan's 1.25 here), bilinear rather than
  nearest resampling, and one draw per example rather than one per batch;
- TI-FGSM (Dong et al., 2019): the gradient is smoothed by a Gaussian kernel before the sign (preset: 3×3,
  σ = 1 px for 16×16 inputs; the reference uses 15×15 with σ ≈ 2.3 px at 299×299);
- SI-FGSM (Lin et al., 2020): the gradient is averaged over the scaled copies ``x / 2^i``. The DI, TI and SI
  presets run without momentum, to isolate each enhancement (reference code stacks them on MI);
- ensembles: the attack's model is :class:`Ensemble`, which fuses its members' logits (Dong et al., 2018, the
  default) or their predicted probabilities (Liu et al., 2017);
- ILA (Huang et al., 2019), a loss-objective attack: :func:`ila` pushes an intermediate feature along the
  direction a reference attack found;
- a generation-based attack: :func:`train_generator` trains a small network ``x -> eps tanh(G(x))`` against a
  surrogate and applies it in one forward pass.

All attacks work on a batch ``x: [B, C, H, W]`` in ``[0, 1]`` with integer labels ``y: [B]``, stay in the
l_inf ball of radius ``eps`` around ``x`` and in the box ``[0, 1]``, follow the device of ``x``, and take a
``torch.Generator`` for every random choice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpbook.models.basic import eval_mode

ATTACKS: dict[str, dict] = {  # name -> keyword arguments of :func:`sign_attack`
    "FGSM": dict(steps=1),
    "I-FGSM": dict(),
    "PGD": dict(random_start=True, step_factor=2.5),
    "MI-FGSM": dict(decay=1.0),
    "NI-FGSM": dict(decay=1.0, nesterov=True),
    "DI-FGSM": dict(diversity=0.5),
    "TI-FGSM": dict(kernel=3, sigma=1.0),
    "SI-FGSM": dict(scales=5),
}
CATEGORIES = {  # the survey's taxonomy, one representative or more each
    "FGSM": "baseline", "I-FGSM": "baseline", "PGD": "baseline",
    "MI-FGSM": "optimization technique", "NI-FGSM": "optimization technique",
    "DI-FGSM": "data augmentation", "TI-FGSM": "data augmentation", "SI-FGSM": "data augmentation",
    "ILA": "loss objective", "ensemble": "model components", "generator": "generation-based",
}


ENSEMBLE_FUSIONS = ("logits", "probs")


class Ensemble(nn.Module):
    """An ensemble surrogate with weights ``w_k`` summing to 1, fused where ``fuse`` says.

    - ``"logits"`` (Dong et al., 2018, who found it the best of the three places to fuse): the output is
      ``sum_k w_k f_k(x)``;
    - ``"probs"`` (Liu et al., 2017): the output is ``log sum_k w_k softmax(f_k(x))``, a log-probability vector,
      so the cross-entropy an attack maximises is Liu et al.'s ``-log sum_k w_k p_k(y | x)``.

    Fusing the losses (the third place Dong et al. compare) is not a fused output and is not offered.
    """

    def __init__(self, models: Sequence[nn.Module], weights: Sequence[float] | None = None, *,
                 fuse: str = "logits"):
        super().__init__()
        if fuse not in ENSEMBLE_FUSIONS:
            raise ValueError(f"unknown fuse {fuse!r}; allowed: {', '.join(ENSEMBLE_FUSIONS)}")
        self.fuse = fuse
        if not models:
            raise ValueError("an ensemble needs at least one model")
        weights = [1.0 / len(models)] * len(models) if weights is None else list(weights)
        if len(weights) != len(models) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"need one non-negative weight per model ({len(models)}), not all zero; got {weights}")
        self.members = nn.ModuleList(models)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32) / sum(weights))

    def forward(self, x: Tensor) -> Tensor:
        if self.fuse == "logits":
            return sum(w * m(x) for w, m in zip(self.weights, self.members))
        logp = torch.stack([m(x).log_softmax(-1) for m in self.members])  # [K, B, classes]
        return torch.logsumexp(logp + self.weights.to(logp).log().view(-1, 1, 1), dim=0)


def gaussian_kernel(size: int, sigma: float, device=None) -> Tensor:
    """Normalised 2-D Gaussian ``[size, size]`` (TI-FGSM's smoothing kernel); ``size`` odd."""
    if size < 1 or size % 2 == 0 or sigma <= 0:
        raise ValueError(f"kernel size must be odd and >= 1 and sigma > 0; got size={size}, sigma={sigma}")
    t = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


def smooth(grad: Tensor, kernel: Tensor) -> Tensor:
    """Depthwise convolution of ``grad: [B, C, H, W]`` with ``kernel: [k, k]`` (zero padding, same size)."""
    c, k = grad.shape[1], kernel.shape[-1]
    weight = kernel.to(grad).expand(c, 1, k, k)
    return F.conv2d(grad, weight, padding=k // 2, groups=c)


def input_diversity(x: Tensor, p: float, *, ratio: float = 1.25, generator: torch.Generator | None = None) -> Tensor:
    """DI's random resize-and-pad, one draw per example, read back at the input size (differentiable).

    With probability ``p`` an example is shrunk to ``r / (ratio H)`` of the frame, ``r`` uniform in
    ``[H, ratio H)``, and placed at a uniformly random offset inside it (zeros around), as resizing to ``r``
    and padding to ``ratio H`` do; otherwise it is returned unchanged.
    """
    if not 0 <= p <= 1 or ratio < 1:
        raise ValueError(f"p must lie in [0, 1] and ratio >= 1; got p={p}, ratio={ratio}")
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator, device=x.device if generator is None else generator.device).to(x.device)
    shrink = (1 + u[:, 0] * (ratio - 1)) / ratio  # r / (ratio H) in [1/ratio, 1)
    free = 1 - shrink  # room for the offset, in units of half the frame
    tx, ty = (2 * u[:, 1] - 1) * free, (2 * u[:, 2] - 1) * free
    apply = u[:, 3] < p
    shrink = torch.where(apply, shrink, torch.ones_like(shrink))
    tx, ty = torch.where(apply, tx, torch.zeros_like(tx)), torch.where(apply, ty, torch.zeros_like(ty))
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / shrink
    theta[:, 0, 2], theta[:, 1, 2] = -tx / shrink, -ty / shrink
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(apply.view(-1, 1, 1, 1), out, x)


def _project(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)


def sign_attack(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int = 10, alpha: float | None = None,
                decay: float = 0.0, nesterov: bool = False, random_start: bool = False, diversity: float = 0.0,
                kernel: int = 1, sigma: float = 1.0, scales: int = 1, step_factor: float = 1.0,
                generator: torch.Generator | None = None) -> Tensor:
    """The survey's sign-gradient family in the l_inf ball (untargeted, cross-entropy): ``[B, C, H, W]``.

    Args:
        model: the surrogate (or an :class:`Ensemble`); run in eval mode (its mode is restored afterwards).
        eps: radius of the l_inf ball (pixels in ``[0, 1]``); ``steps``: iterations (1 = FGSM).
        alpha: step size, default ``step_factor * eps / steps``.
        step_factor: total step length in units of ``eps`` when ``alpha`` is not given (1; the PGD preset 2.5).
        decay: momentum ``mu`` (0: none; MI-FGSM uses 1); ``nesterov``: take the gradient at ``x + alpha mu g``.
        random_start: begin at a uniform point of the ball (PGD).
        diversity: probability of DI's resize-and-pad transform per example and step (0: off).
        kernel, sigma: TI's Gaussian smoothing of the gradient (``kernel=1``: off).
        scales: SI's number of scaled copies ``x / 2^i`` whose gradients are averaged (1: off).
        generator: source of randomness (random start, DI); default torch's global one.
    """
    if eps < 0 or steps < 1 or scales < 1:
        raise ValueError(f"need eps >= 0, steps >= 1 and scales >= 1; got eps={eps}, steps={steps}, scales={scales}")
    if x.dim() != 4 or y.shape != x.shape[:1]:
        raise ValueError(f"x must be [B, C, H, W] and y [B]; got {tuple(x.shape)} and {tuple(y.shape)}")
    if decay < 0 or step_factor <= 0:
        raise ValueError(f"decay (momentum) must be >= 0 and step_factor > 0, got {decay}, {step_factor}")
    alpha = step_factor * eps / steps if alpha is None else alpha
    with eval_mode(model):
        return _sign_attack(model, x, y, eps, steps, alpha, decay, nesterov, random_start, diversity, kernel, sigma,
                            scales, generator)


def _sign_attack(model, x, y, eps, steps, alpha, decay, nesterov, random_start, diversity, kernel, sigma, scales,
                 generator) -> Tensor:
    k = gaussian_kernel(kernel, sigma, device=x.device) if kernel > 1 else None
    x = x.detach()
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device=x.device if generator is None else generator.device)
        x_adv = _project(x + (2 * noise.to(x.device) - 1) * eps, x, eps)
    g = torch.zeros_like(x)
    for _ in range(steps):
        point = (x_adv + alpha * decay * g) if nesterov else x_adv
        point = point.detach().requires_grad_(True)
        loss = 0.0
        for i in range(scales):
            inp = point / 2 ** i
            if diversity > 0:
                inp = input_diversity(inp, diversity, generator=generator)
            loss = loss + F.cross_entropy(model(inp), y, reduction="sum")
        grad, = torch.autograd.grad(loss / scales, point)
        if k is not None:
            grad = smooth(grad, k)
        if decay > 0:
            grad = grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
            g = decay * g + grad
        else:
            g = grad
        x_adv = _project(x_adv.detach() + alpha * g.sign(), x, eps)
    return x_adv.detach()


def attack(name: str, model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int = 10,
           generator: torch.Generator | None = None, **overrides) -> Tensor:
    """Run a named attack of :data:`ATTACKS` (``overrides`` replace its preset's keywords)."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; allowed: {', '.join(ATTACKS)}")
    kwargs = {"steps": steps, **ATTACKS[name], **overrides}
    return sign_attack(model, x, y, eps=eps, generator=generator, **kwargs)


@torch.no_grad()
def fooling_rate(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> float:
    """Among the examples ``model`` classifies correctly when clean, the fraction it gets wrong on ``x_adv``."""
    with eval_mode(model):
        right = model(x).argmax(1) == y
        if not right.any():
            return float("nan")
        return float((model(x_adv[right]).argmax(1) != y[right]).float().mean())


@torch.no_grad()
def transfer_outcomes(adversarials: Sequence[Tensor], targets: Sequence[nn.Module], x: Tensor,
                      y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-example outcomes of every (surrogate, target) pair, for rates and bootstrap intervals.

    Args:
        adversarials: one ``[B, C, H, W]`` batch per surrogate, crafted from the same clean ``x`` and labels ``y``.
        targets: the models to fool.
    Returns:
        ``fooled [S, T, B]`` (the target misclassifies the adversarial example) and ``valid [T, B]`` (the target
        classifies the clean example correctly: the fooling rate counts only these).
    """
    with contextlib.ExitStack() as modes:
        for t in targets:
            modes.enter_context(eval_mode(t))
        valid = torch.stack([t(x).argmax(1) == y for t in targets])
        fooled = torch.stack([torch.stack([t(xa).argmax(1) != y for t in targets]) for xa in adversarials])
    return fooled, valid


def transfer_matrix(adversarials: Sequence[Tensor], targets: Sequence[nn.Module], x: Tensor, y: Tensor) -> Tensor:
    """Fooling rate of the examples crafted on surrogate ``i`` against target ``j``: ``[n_surrogates, n_targets]``."""
    fooled, valid = transfer_outcomes(adversarials, targets, x, y)
    return rates(fooled, valid)


def rates(fooled: Tensor, valid: Tensor, index: Tensor | None = None) -> Tensor:
    """Fooling rates ``[..., S, T]`` from outcomes ``fooled [S, T, B]`` and ``valid [T, B]``.

    ``index [R, B']`` (optional) resamples the examples, e.g. bootstrap draws; the result is then ``[R, S, T]``.
    A target with no correctly classified clean example has no fooling rate: NaN, as in :func:`fooling_rate`.
    """
    if index is not None:
        fooled, valid = fooled[..., index].movedim(-2, 0), valid[..., index].movedim(-2, 0)
    hits = (fooled & valid.unsqueeze(-3)).sum(-1).float()
    return hits / valid.sum(-1).unsqueeze(-2).float()  # 0 / 0 = NaN where a target has no valid example


def off_diagonal_mean(matrix: Tensor) -> Tensor:
    """Mean of the off-diagonal entries of ``[..., n, n]`` matrices (transfer), ``[...]``."""
    n = matrix.shape[-1]
    mask = ~torch.eye(n, dtype=torch.bool, device=matrix.device)
    return matrix[..., mask].mean(-1)


def ila(model: nn.Module, layer: nn.Module, x: Tensor, x_ref: Tensor, *, eps: float, steps: int = 10,
        alpha: float | None = None) -> Tensor:
    """Intermediate Level Attack (Huang et al., 2019), projection loss, l_inf: ``[B, C, H, W]``.

    Maximises ``<h(x') - h(x), h(x_ref) - h(x)>`` per example, ``h`` the output of ``layer`` (a submodule of
    ``model``), starting from ``x`` with sign steps; ``x_ref`` is a reference adversarial example (usually
    I-FGSM's on the same surrogate).
    """
    if x_ref.shape != x.shape:
        raise ValueError(f"x_ref must have x's shape {tuple(x.shape)}, got {tuple(x_ref.shape)}")
    alpha = eps / steps if alpha is None else alpha
    store: dict[str, Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("h", out))
    try:
        with eval_mode(model):
            with torch.no_grad():
                model(x)
                h0 = store["h"].flatten(1)
                model(x_ref)
                direction = store["h"].flatten(1) - h0
            x_adv = x.detach().clone()
            for _ in range(steps):
                x_adv.requires_grad_(True)
                model(x_adv)
                objective = ((store["h"].flatten(1) - h0) * direction).sum()
                grad, = torch.autograd.grad(objective, x_adv)
                x_adv = _project(x_adv.detach() + alpha * grad.sign(), x, eps)
    finally:
        handle.remove()
    return x_adv.detach()


class PerturbationGenerator(nn.Module):
    """A small fully convolutional ``G``: ``x -> clamp(x + eps tanh(G(x)), 0, 1)`` (generation-based attacks)."""

    def __init__(self, channels: int = 1, width: int = 32, eps: float = 0.1):
        super().__init__()
        self.eps = eps
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return (x + self.eps * torch.tanh(self.net(x))).clamp(0, 1)


class _Attacker(nn.Module):
    """``surrogate(generator(x))`` with only the generator registered, so training never touches the surrogate
    (its batch-norm statistics included)."""

    def __init__(self, generator: nn.Module, surrogate: nn.Module):
        super().__init__()
        self.generator = generator
        self._surrogate = [surrogate]

    def forward(self, x: Tensor) -> Tensor:
        return self._surrogate[0](self.generator(x))


def train_generator(surrogate: nn.Module, x: Tensor, y: Tensor, *, eps: float, epochs: int = 20,
                    batch_size: int = 128, lr: float = 1e-3, width: int = 32, seed: int = 0) -> PerturbationGenerator:
    """Train a :class:`PerturbationGenerator` to maximise the surrogate's cross-entropy (the surrogate stays frozen).

    Adversarial examples for new inputs then cost one forward pass: ``generator(x_new)``.
    """
    from interpbook.train import fit  # the one training loop

    with torch.random.fork_rng(devices=[]):  # seeded initial weights without touching torch's global generator
        torch.manual_seed(seed)
        gen = PerturbationGenerator(x.shape[1], width, eps)
    gen = gen.to(x.device)
    surrogate.eval()
    frozen = [p for p in surrogate.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        fit(_Attacker(gen, surrogate), x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
            loss=lambda m, inputs, targets: -F.cross_entropy(m(*inputs), targets))
    finally:
        for p in frozen:
            p.requires_grad_(True)
    gen.eval()
    return gen


def linf_distance(a: Tensor, b: Tensor) -> Tensor:
    """Per-example l_inf distance ``[B]``."""
    return (a - b).flatten(1).abs().amax(1)


__all__ = ["ATTACKS", "CATEGORIES", "Ensemble", "PerturbationGenerator", "attack", "fooling_rate", "gaussian_kernel",
           "ila", "input_diversity", "linf_distance", "off_diagonal_mean", "rates", "sign_attack", "smooth",
           "train_generator", "transfer_matrix", "transfer_outcomes"]
