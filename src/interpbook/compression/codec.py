"""A small learned image codec: Ballé et al.'s factorized-prior autoencoder, with a variable rate.

Context / intuition. A learned codec maps an image ``x`` to latents ``y = g_a(x)``, rounds them to
integers ``ŷ``, codes ``ŷ`` with an entropy model ``p(ŷ)`` (cost ``-log2 p(ŷ)`` bits) and decodes
``x̂ = g_s(ŷ)``. Training minimises ``λ·255²·MSE(x, x̂) + bpp`` (the ood_nic loss); rounding has no
gradient, so training replaces it by additive uniform noise ``y + U(-½, ½)``, whose density is the
entropy model convolved with the unit box, ``p(ŷ) = F(ŷ + ½) - F(ŷ - ½)`` (Ballé, Laparra & Simoncelli,
2017; Ballé et al., 2018).

This module's codec:

* **Transforms.** ``levels`` stride-2 convolutions with GDN in the analysis transform, mirrored
  transposed convolutions with inverse GDN in the synthesis (total stride ``2**levels``).
* **Entropy model.** Factorized: every latent channel has its own logistic density with a learned
  location and scale (a simple stand-in for Ballé's non-parametric density).
* **Variable rate.** One network serves a range of λ, as the paper's "LCT" models do: every layer's
  output is modulated by a FiLM block (per-channel scale and shift) computed from ``log λ``, and so are
  the entropy model's location and scale. With ``lmbda_range=(λ, λ)`` it is an ordinary fixed-rate codec.
* **Rate.** Bits per pixel are the ideal code length ``-Σ log2 p(ŷ) / (H·W)``; an arithmetic coder spends
  this plus a few bytes per image, which are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpbook.compression.jpeg import CodecOutput


class _LowerBound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        passes = (x >= ctx.bound) | (grad < 0)  # below the bound, only gradients that push x up get through
        return grad * passes, None


def lower_bound(x: Tensor, bound: float) -> Tensor:
    """``max(x, bound)`` whose gradient still reaches ``x`` below the bound when descent would raise ``x``.

    A plain ``clamp_min`` passes no gradient below the bound, so a likelihood or scale that falls under its
    floor could never come back (CompressAI's ``LowerBound`` works this way for the same reason).
    """
    return _LowerBound.apply(x, bound)


class GDN(nn.Module):
    """Generalized divisive normalization: ``y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²)`` (inverse: times the root).

    β and γ are kept non-negative by squaring unconstrained parameters (β also bounded below). The square
    has zero gradient at zero, so γ's off-diagonal entries start at a small pedestal; started at exactly zero
    they would never train. CompressAI's non-negative reparametrisation also starts from a pedestal (2^-36)
    but subtracts it again, so its off-diagonal γ is exactly 0 at first with a tiny gradient; here the pedestal
    stays in γ (off-diagonal entries 1e-4 at initialisation) and the gradient is about 2,600× larger.
    """

    def __init__(self, channels: int, inverse: bool = False, gamma_init: float = 0.1, pedestal: float = 1e-4):
        super().__init__()
        self.inverse = inverse
        self.beta_sqrt = nn.Parameter(torch.ones(channels))
        self.gamma_sqrt = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + pedestal))

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W] -> [B, C, H, W]
        beta = self.beta_sqrt**2 + 1e-6
        gamma = self.gamma_sqrt**2
        norm = F.conv2d(x * x, gamma[:, :, None, None], beta).sqrt()
        return x * norm if self.inverse else x / norm


class FiLM(nn.Module):
    """Per-channel scale and shift from a rate code ``t: [B, 1]``; the identity at initialisation."""

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 2 * channels))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:  # x [B, C, H, W], t [B, 1]
        scale, shift = self.net(t).chunk(2, dim=1)
        return x * (1 + scale)[:, :, None, None] + shift[:, :, None, None]


class LogisticEntropyModel(nn.Module):
    """Factorized prior: per-channel logistic ``(μ_c, s_c)``, shifted by a FiLM-style map of the rate code."""

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.condition = FiLM(channels, hidden)

    def parameters_for(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Location and scale ``[B, C, 1, 1]`` for rate codes ``t: [B, 1]``."""
        d_log_scale, d_loc = self.condition.net(t).chunk(2, dim=1)
        loc = (self.loc + d_loc)[:, :, None, None]
        scale = lower_bound((self.log_scale + d_log_scale).exp(), 0.05)[:, :, None, None]
        return loc, scale

    def likelihood(self, y_hat: Tensor, t: Tensor) -> Tensor:
        """``p(ŷ) = F(ŷ + ½) − F(ŷ − ½)`` elementwise, floored at 1e-9: same shape as ``y_hat``."""
        loc, scale = self.parameters_for(t)
        v = y_hat - loc
        sign = torch.where(v > 0, -1.0, 1.0)  # evaluate in the lower tail, where a difference of sigmoids is accurate
        upper = torch.sigmoid(sign * (v + 0.5) / scale)
        lower = torch.sigmoid(sign * (v - 0.5) / scale)
        return lower_bound((upper - lower).abs(), 1e-9)

    def quantize(self, y: Tensor, t: Tensor) -> Tensor:
        """Round around the location: ``μ + round(y − μ)`` (the latents the decoder receives)."""
        loc, _ = self.parameters_for(t)
        return loc + torch.round(y - loc)


@dataclass
class RDOutput:
    """One pass through the codec: ``x_hat [B, C, H, W]``, ``bpp [B]``, quantised latents ``y_hat [B, M, h, w]``."""

    x_hat: Tensor
    bpp: Tensor
    y_hat: Tensor


class FactorizedPriorCodec(nn.Module):
    """Variable-rate factorized-prior autoencoder (see the module docstring).

    Args:
        channels: width N of the hidden layers.
        latent_channels: number M of latent channels.
        levels: stride-2 stages; the latent grid is the image downsampled by ``2**levels``.
        lmbda_range: (λ_min, λ_max) the codec is trained over; ``(λ, λ)`` gives a fixed-rate codec.
        kernel: convolution kernel size (odd).
        gdn: GDN / inverse GDN between layers; ``False`` uses ReLU instead (a common simple substitute).
    """

    def __init__(self, channels: int = 24, latent_channels: int = 16, levels: int = 3,
                 lmbda_range: tuple[float, float] = (0.0035, 0.05), kernel: int = 5, gdn: bool = True):
        super().__init__()
        lo, hi = lmbda_range
        if not 0 < lo <= hi:
            raise ValueError(f"lmbda_range must satisfy 0 < min <= max, got {lmbda_range}")
        if levels < 1 or kernel % 2 == 0:
            raise ValueError(f"levels must be >= 1 and kernel odd, got levels={levels}, kernel={kernel}")
        self.lmbda_range = (float(lo), float(hi))
        self.levels = levels
        pad = kernel // 2
        widths_in = [3] + [channels] * (levels - 1)
        widths_out = [channels] * (levels - 1) + [latent_channels]
        self.analysis = nn.ModuleList(nn.Conv2d(a, b, kernel, 2, pad) for a, b in zip(widths_in, widths_out))
        self.synthesis = nn.ModuleList(nn.ConvTranspose2d(b, a, kernel, 2, pad, output_padding=1)
                                       for a, b in reversed(list(zip(widths_in, widths_out))))
        self.analysis_film = nn.ModuleList(FiLM(b) for b in widths_out)
        self.synthesis_film = nn.ModuleList(FiLM(m.out_channels) for m in self.synthesis)
        act = (lambda c, inverse: GDN(c, inverse)) if gdn else (lambda c, inverse: nn.ReLU())
        self.analysis_act = nn.ModuleList(act(b, False) for b in widths_out[:-1])
        self.synthesis_act = nn.ModuleList(act(m.out_channels, True) for m in list(self.synthesis)[:-1])
        self.entropy_model = LogisticEntropyModel(latent_channels)

    def rate_code(self, lmbda: float | Tensor, batch: int, device=None) -> Tensor:
        """Map λ (scalar or ``[B]``) to the conditioning input ``t ∈ [-1, 1]``: ``[B, 1]``."""
        lam = torch.as_tensor(lmbda, dtype=torch.float32, device=device).reshape(-1)
        if lam.numel() == 1:
            lam = lam.expand(batch)
        if lam.numel() != batch:
            raise ValueError(f"lmbda must be a scalar or hold one value per image ({batch}), got {lam.numel()}")
        if (lam <= 0).any():
            raise ValueError("lmbda must be positive")
        lo, hi = self.lmbda_range
        if hi == lo:
            return torch.zeros(batch, 1, device=lam.device)
        return (2 * (lam.log() - math.log(lo)) / (math.log(hi) - math.log(lo)) - 1).unsqueeze(1)

    def encode(self, x: Tensor, t: Tensor) -> Tensor:
        """Analysis transform: ``[B, 3, H, W]`` -> latents ``[B, M, H/2^L, W/2^L]``."""
        x = x - 0.5  # centre the pixels
        for i, conv in enumerate(self.analysis):
            x = self.analysis_film[i](conv(x), t)
            if i < len(self.analysis_act):
                x = self.analysis_act[i](x)
        return x

    def decode(self, y_hat: Tensor, t: Tensor) -> Tensor:
        """Synthesis transform: latents -> ``[B, 3, H, W]`` (not clamped)."""
        for i, deconv in enumerate(self.synthesis):
            y_hat = self.synthesis_film[i](deconv(y_hat), t)
            if i < len(self.synthesis_act):
                y_hat = self.synthesis_act[i](y_hat)
        return y_hat + 0.5

    def forward(self, x: Tensor, lmbda: float | Tensor, *, quantize: str = "round",
                generator: torch.Generator | None = None) -> RDOutput:
        """Code ``x: [B, 3, H, W]`` (sides divisible by ``2**levels``) at rate parameter ``lmbda``.

        ``quantize="noise"`` adds U(-½, ½) (training proxy; ``generator`` draws it on the CPU);
        ``"round"`` rounds (evaluation).
        """
        step = 2**self.levels
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] % step or x.shape[3] % step:
            raise ValueError(f"x must be [B, 3, H, W] with H and W divisible by {step}, got {tuple(x.shape)}")
        t = self.rate_code(lmbda, x.shape[0], x.device)
        y = self.encode(x, t)
        if quantize == "noise":
            noise = torch.rand(y.shape, generator=generator, dtype=y.dtype) if generator is not None else \
                torch.rand_like(y)
            y_hat = y + noise.to(y.device) - 0.5
        elif quantize == "round":
            y_hat = self.entropy_model.quantize(y, t)
        else:
            raise ValueError(f"quantize must be 'noise' or 'round', got {quantize!r}")
        bits = -torch.log2(self.entropy_model.likelihood(y_hat, t)).flatten(1).sum(1)
        return RDOutput(self.decode(y_hat, t), bits / (x.shape[2] * x.shape[3]), y_hat)

    @torch.no_grad()
    def compress(self, x: Tensor, lmbda: float) -> CodecOutput:
        """Evaluation round trip: rounded latents, reconstruction clamped to [0, 1], bits per pixel ``[B]``."""
        was_training = self.training
        self.eval()
        out = self.forward(x, lmbda, quantize="round")
        self.train(was_training)
        return CodecOutput(out.x_hat.clamp(0, 1), out.bpp)


def rate_distortion_loss(out: RDOutput, x: Tensor, lmbda: Tensor | float) -> Tensor:
    """The ood_nic objective ``λ_b·255²·MSE_b + bpp_b``, averaged over the batch (λ scalar, ``[B]`` or ``[B, 1]``).

    ood_nic sums over the images of a batch instead; with gradient clipping the two differ in step size.
    """
    mse = (out.x_hat - x).pow(2).flatten(1).mean(1)
    lam = torch.as_tensor(lmbda, dtype=mse.dtype, device=x.device)
    if lam.numel() not in (1, len(mse)):
        raise ValueError(f"lmbda must be a scalar or hold one value per image ({len(mse)}); got shape "
                         f"{tuple(lam.shape)}")
    return (lam.reshape(-1) * 255**2 * mse + out.bpp).mean()


def train_codec(codec: FactorizedPriorCodec, patches: Tensor, *, epochs: int = 8, batch_size: int = 32,
                lr: float = 3e-3, seed: int = 0, balance_lambda: bool = False, **fit_options):
    """Train ``codec`` on ``patches: [N, 3, h, w]`` with the book's training loop (:func:`interpbook.train.fit`).

    Every training image gets its own λ, drawn log-uniformly from ``codec.lmbda_range``, and quantisation
    is replaced by uniform noise; both are drawn from a generator seeded by ``seed``. ``fit_options``
    (``schedule``, ``clip_grad``, ...) go to :class:`interpbook.train.TrainConfig`. Returns the history.

    ``balance_lambda`` (off by default: the paper's recipe is the plain sum): the per-image loss
    ``λ·255²·MSE + bpp`` grows in proportion to λ, so over a wide range (the paper's spans 0.0012–0.26, a
    factor 217) the largest λ dominate every batch's gradient and the low-rate end barely trains. With
    ``balance_lambda`` each image's loss is divided by its λ and multiplied by the range's geometric mean:
    the minimiser at every λ is unchanged (a positive factor per λ), only the weight each λ gets in the
    batch; a fixed-rate codec's loss is unchanged.
    """
    from interpbook.train import fit

    lo, hi = codec.lmbda_range
    gen = torch.Generator().manual_seed(seed)
    lam_mid = math.sqrt(lo * hi)

    def loss(model, inputs, _targets):
        (x,) = inputs
        u = torch.rand(len(x), generator=gen, dtype=torch.float64)
        lam = torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))).float().to(x.device)
        out = model(x, lam, quantize="noise", generator=gen)
        if not balance_lambda:
            return rate_distortion_loss(out, x, lam)
        mse = (out.x_hat - x).pow(2).flatten(1).mean(1)
        return ((lam * 255**2 * mse + out.bpp) * (lam_mid / lam)).mean()

    targets = torch.zeros(len(patches), device=patches.device)
    return fit(codec, patches, targets, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
               **fit_options)
