"""Distortion metrics for image codecs, per image: MSE, PSNR and MS-SSIM (Wang, Simoncelli & Bovik, 2003).

MS-SSIM follows the usual definition (the one of ``pytorch_msssim``): an 11-tap Gaussian window with
sigma 1.5 applied without padding, K1 = .01, K2 = .03, five scales with 2×2 average pooling between them
and the weights of Wang et al. The five-scale version needs images wider than 160 pixels; ``levels``
selects fewer scales (the first ``levels`` weights, renormalised) for the small images of the ci scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"x and y must be [B, C, H, W] tensors of one shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")


def mse(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error per image: ``[B, C, H, W]`` pair -> ``[B]``."""
    _pair(x, y)
    return (x - y).pow(2).flatten(1).mean(1)


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio per image in dB, ``10·log10(data_range² / MSE)``: ``[B]``.

    Identical images give ``inf``. The paper's PSNR of a dataset is the mean of these per-image values.
    """
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    return 10 * torch.log10(data_range**2 / mse(x, y))


def _gaussian_window(size: int, sigma: float, like: Tensor) -> Tensor:
    t = torch.arange(size, dtype=like.dtype, device=like.device) - size // 2
    g = torch.exp(-t**2 / (2 * sigma**2))
    return g / g.sum()


def _filter(x: Tensor, g: Tensor) -> Tensor:
    """Separable valid-mode filtering of every channel; an axis shorter than the window is left unfiltered."""
    c = x.shape[1]
    if x.shape[2] >= len(g):
        x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    if x.shape[3] >= len(g):
        x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return x


def _ssim_cs(x: Tensor, y: Tensor, g: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    """SSIM and its contrast-structure term, averaged over space: two ``[B, C]`` tensors."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    var_x = _filter(x * x, g) - mu_x**2
    var_y = _filter(y * y, g) - mu_y**2
    cov = _filter(x * y, g) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs).flatten(2).mean(-1), cs.flatten(2).mean(-1)


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, sigma: float = 1.5) -> Tensor:
    """Single-scale SSIM per image (mean over channels): ``[B]``."""
    _pair(x, y)
    return _ssim_cs(x, y, _gaussian_window(win_size, sigma, x), data_range)[0].mean(1)


def ms_ssim(x: Tensor, y: Tensor, data_range: float = 1.0, levels: int = 5, win_size: int = 11,
            sigma: float = 1.5) -> Tensor:
    """Multi-scale SSIM per image: ``[B]``; 1 for identical images.

    ``prod_{j<L} relu(cs_j)^{w_j} · relu(ssim_L)^{w_L}`` over ``levels`` scales, averaged over channels.
    The smaller image side must exceed ``(win_size - 1)·2^(levels-1)``.
    """
    _pair(x, y)
    if not 1 <= levels <= len(MS_SSIM_WEIGHTS):
        raise ValueError(f"levels must be in 1..{len(MS_SSIM_WEIGHTS)}, got {levels}")
    need = (win_size - 1) * 2 ** (levels - 1)
    if min(x.shape[-2:]) <= need:
        raise ValueError(f"MS-SSIM with {levels} levels needs images larger than {need} pixels per side, got "
                         f"{tuple(x.shape[-2:])}; use fewer levels")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    g = _gaussian_window(win_size, sigma, x)
    terms = []
    for level in range(levels):
        s, cs = _ssim_cs(x, y, g, data_range)
        if level < levels - 1:
            terms.append(cs.relu())
            pad = [d % 2 for d in x.shape[-2:]]
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
    terms.append(s.relu())
    stacked = torch.stack(terms)  # [levels, B, C]
    return stacked.pow(weights.view(-1, 1, 1)).prod(0).mean(1)
