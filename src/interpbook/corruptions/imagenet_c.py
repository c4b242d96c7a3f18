"""Twelve of the fifteen ImageNet-C corruptions (Hendrycks & Dietterich, 2019) in torch, batched and seeded.

Context: ImageNet-C, and the Kodak-C / CLIC-C benchmarks of Lieberman et al. (2023) built from it, corrupt
each image with one of 15 corruptions at severities 1 to 5. The constants below are those of the
``imagecorruptions`` package (the image-size-agnostic port the -C benchmarks use); its PyPI release no
longer imports with current scikit-image, so the corruptions are re-implemented here on tensors.

Every corruption takes ``x: [B, C, H, W]`` in [0, 1] (C = 1 or 3), an integer ``severity`` in 1..5 and a
``seed``; it returns a tensor of the same shape, dtype and device, clipped to [0, 1]. Randomness is drawn
on the CPU from ``torch.Generator().manual_seed(seed)`` and moved to ``x``'s device, so a seed gives the
same corruption on every device. The weather corruptions live in :mod:`interpbook.corruptions.weather`
(snow is ImageNet-C's; fog is Koschmieder's law, a physical model in place of ImageNet-C's plasma-fractal
recipe; frost needs ImageNet-C's photographs and is absent); :func:`corrupt` dispatches by name.

Where this port departs from the numpy reference (all visible only at the pixel level):
glass blur replaces the sequential random pixel swaps by a vectorised random local resampling (same
neighbourhood size and number of passes); pixelate's box downsampling uses torch's area interpolation;
Gaussian and elastic filters use reflect-101 borders.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# The paper's grouping by the frequency content of the corruption (ood_nic, data/corruptions.py).
CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "low": ("snow", "frost", "fog", "brightness", "contrast"),
    "mid": ("motion_blur", "zoom_blur", "defocus_blur", "glass_blur", "elastic_transform", "jpeg_compression",
            "pixelate"),
    "high": ("gaussian_noise", "shot_noise", "impulse_noise"),
}
CORRUPTIONS: dict[str, Callable[..., Tensor]] = {}  # name -> corruption(x, severity, *, seed)
_ELSEWHERE = {"snow": "interpbook.corruptions.weather", "frost": "interpbook.corruptions.weather",
              "fog": "interpbook.corruptions.weather"}
SEVERITIES = (1, 2, 3, 4, 5)


def register_corruption(name: str):
    """Decorator adding ``fn(x, severity, *, seed)`` to :data:`CORRUPTIONS` under ``name``."""
    def add(fn):
        CORRUPTIONS[name] = fn
        return fn
    return add


def corrupt(x: Tensor, name: str, severity: int, seed: int = 0) -> Tensor:
    """Apply corruption ``name`` at ``severity`` (1..5) to ``x: [B, C, H, W]`` in [0, 1]; same shape back.

    Random draws are made for the whole batch from one generator seeded by ``seed``: the result is
    deterministic for a seed and a batch, but an image corrupted alone differs from the same image corrupted
    inside a batch. ``fog`` and ``snow`` are :mod:`interpbook.corruptions.weather`'s (``fog`` is Koschmieder's
    law over a depth field, not ImageNet-C's plasma-fractal recipe; see there).

    >>> corrupt(torch.rand(2, 3, 32, 32), "gaussian_noise", 3, seed=0).shape
    torch.Size([2, 3, 32, 32])
    """
    if name not in CORRUPTIONS and name in _ELSEWHERE:
        fn = getattr(importlib.import_module(_ELSEWHERE[name]), name, None)
        if fn is not None:
            CORRUPTIONS[name] = fn
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; available: {', '.join(sorted(CORRUPTIONS))}")
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    return CORRUPTIONS[name](x, severity, seed=seed)


def available_corruptions() -> list[str]:
    """The corruptions of :data:`CORRUPTION_GROUPS` that can run here, in the paper's order."""
    names = []
    for group in CORRUPTION_GROUPS.values():
        for name in group:
            try:
                corrupt(torch.full((1, 3, 16, 16), 0.5), name, 1)
            except (ImportError, ValueError):
                continue
            names.append(name)
    return names


def _check(x: Tensor, severity: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3) or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor [B, C, H, W] with C in (1, 3); got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if isinstance(severity, bool) or int(severity) != severity or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    if x.numel() and (x.min() < -1e-6 or x.max() > 1 + 1e-6):
        raise ValueError(f"x must lie in [0, 1]; got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _rand(shape, gen, like: Tensor, kind: str = "uniform") -> Tensor:
    draw = torch.rand if kind == "uniform" else torch.randn
    return draw(tuple(shape), generator=gen, dtype=torch.float64).to(like.device, like.dtype)


# ---------------------------------------------------------------------------------------------- noise

@register_corruption("gaussian_noise")
def gaussian_noise(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Additive white Gaussian noise, standard deviation .08 … .38."""
    _check(x, severity)
    c = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    return (x + c * _rand(x.shape, _generator(seed), x, "normal")).clamp(0, 1)


@register_corruption("shot_noise")
def shot_noise(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Poisson (photon) noise: ``Poisson(c·x) / c`` with photon scale c = 60 … 3."""
    _check(x, severity)
    c = (60, 25, 12, 5, 3)[severity - 1]
    counts = torch.poisson((x.detach().double().cpu() * c), generator=_generator(seed))
    return (counts / c).to(x.device, x.dtype).clamp(0, 1)


@register_corruption("impulse_noise")
def impulse_noise(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Salt-and-pepper noise: a fraction .03 … .27 of the values set to 0 or 1 (even odds), per channel."""
    _check(x, severity)
    c = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    gen = _generator(seed)
    hit = _rand(x.shape, gen, x) < c
    salt = (_rand(x.shape, gen, x) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)


# ---------------------------------------------------------------------------------------------- blur

def _conv_same(x: Tensor, kernel: Tensor, mode: str = "reflect") -> Tensor:
    """Correlate every channel of ``x: [B, C, H, W]`` with ``kernel: [kh, kw]`` (odd sides), same size out."""
    kh, kw = kernel.shape
    b, c, h, w = x.shape
    ph, pw = kh // 2, kw // 2
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"  # reflection needs the image wider than the kernel's half-width
    padded = F.pad(x.reshape(b * c, 1, h, w), (pw, pw, ph, ph), mode=mode)
    return F.conv2d(padded, kernel.to(x)[None, None]).reshape(b, c, h, w)


def _gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float64) -> Tensor:
    radius = max(int(truncate * sigma + 0.5), 1)
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: Tensor, sigma: float, *, truncate: float = 4.0, mode: str = "replicate") -> Tensor:
    """Separable Gaussian filter of ``x: [B, C, H, W]`` (skimage's ``gaussian``: truncate 4, edge mode)."""
    k = _gaussian_kernel1d(sigma, truncate)
    return _conv_same(_conv_same(x, k[None, :], mode), k[:, None], mode)


def disk_kernel(radius: int, alias_blur: float) -> Tensor:
    """ImageNet-C's anti-aliased disk: a normalised disk on a grid of half-width max(radius, 8), Gaussian-smoothed."""
    half = 8 if radius <= 8 else radius
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((t[None, :] ** 2 + t[:, None] ** 2) <= radius**2).double()
    disk = disk / disk.sum()
    ksize = 3 if radius <= 8 else 5
    g = torch.exp(-0.5 * (torch.arange(ksize, dtype=torch.float64) - ksize // 2) ** 2 / alias_blur**2)
    g = g / g.sum()
    return _conv_same(_conv_same(disk[None, None], g[None, :]), g[:, None])[0, 0]


@register_corruption("defocus_blur")
def defocus_blur(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Convolution with an anti-aliased disk of radius 3 … 10 pixels (deterministic; ``seed`` unused)."""
    _check(x, severity)
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[severity - 1]
    return _conv_same(x, disk_kernel(radius, alias)).clamp(0, 1)


def _shift_indices(n: int, shift: Tensor) -> Tensor:
    """Index ``[B, n]`` that shifts a length-``n`` axis by ``shift[b]`` pixels, replicating the edge."""
    return (torch.arange(n, device=shift.device)[None, :] - shift[:, None]).clamp(0, n - 1)


@register_corruption("motion_blur")
def motion_blur(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Blur along a random direction (angle U(-45°, 45°) per image) with a one-sided Gaussian profile.

    ``(radius, sigma)`` = (10, 3) … (20, 15): the image is averaged with copies shifted by 0 … 2·radius
    pixels along the direction, weighted by a half-Gaussian of width ``sigma``; edges are replicated.
    """
    _check(x, severity)
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[severity - 1]
    b, c, h, w = x.shape
    width = 2 * radius + 1
    weights = torch.exp(-torch.arange(width, dtype=torch.float64) ** 2 / (2 * sigma**2))
    weights = (weights / weights.sum()).tolist()
    angle = torch.deg2rad(torch.empty(b, dtype=torch.float64).uniform_(-45, 45, generator=_generator(seed)))
    sin, cos = torch.sin(angle), torch.cos(angle)
    out = torch.zeros_like(x)
    for i, wgt in enumerate(weights):
        dy = -torch.ceil(i * sin - 0.5).long().to(x.device)
        dx = -torch.ceil(i * cos - 0.5).long().to(x.device)
        inside = ((dy.abs() < h) & (dx.abs() < w)).to(x.dtype)  # the reference stops once a shift leaves the image
        rows = _shift_indices(h, dy)[:, None, :, None].expand(b, c, h, w)
        cols = _shift_indices(w, dx)[:, None, None, :].expand(b, c, h, w)
        shifted = x.gather(2, rows).gather(3, cols)
        out = out + wgt * inside[:, None, None, None] * shifted
    return out.clamp(0, 1)


@register_corruption("zoom_blur")
def zoom_blur(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Average of the image with centred zooms by factors 1 … 1.11 up to 1 … 1.31 (deterministic)."""
    _check(x, severity)
    stop, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[severity - 1]
    factors = np.arange(1, stop, step).tolist()  # numpy float steps (1.3000000000000003) round as the reference
    _, _, h, w = x.shape
    out = x.clone()
    for z in factors:
        ch, cw = math.ceil(h / z), math.ceil(w / z)
        top, left = (h - ch) // 2, (w - cw) // 2
        crop = x[:, :, top:top + ch, left:left + cw]
        size = (max(round(ch * z), h), max(round(cw * z), w))
        out = out + F.interpolate(crop, size=size, mode="bilinear", align_corners=True)[:, :, :h, :w]
    return (out / (len(factors) + 1)).clamp(0, 1)


@register_corruption("glass_blur")
def glass_blur(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Gaussian blur, then local pixel scrambling within ±max_delta pixels, then Gaussian blur again.

    ``(sigma, max_delta, passes)`` = (0.7, 1, 2) … (1.5, 4, 2). The reference swaps each interior pixel with
    one at an offset drawn from [-δ, δ), one at a time in a Python loop, so content moves by ``+off`` and
    ``-off`` alike. Here each pass reads every interior pixel from such an offset, with its sign flipped at
    random (both axes together), all at once: the displacement is symmetric as in the reference, but a
    gather is not a permutation (some pixels are read twice, some not at all), and the reference's last
    interior row and column (``H - δ``) are left alone.
    """
    _check(x, severity)
    sigma, delta, passes = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[severity - 1]
    b, c, h, w = x.shape
    y = torch.floor(gaussian_blur(x, sigma) * 255) / 255  # the reference stores the blurred image as uint8
    gen = _generator(seed)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    interior = ((rows > delta) & (rows < h - delta) & (cols > delta) & (cols < w - delta))
    for _ in range(passes):
        offsets = torch.randint(-delta, delta, (2, b, h, w), generator=gen)
        flip = torch.randint(0, 2, (1, b, h, w), generator=gen) * 2 - 1  # a swap moves content both ways
        offsets = (offsets * flip).to(x.device)
        src_r = torch.where(interior, (rows + offsets[0]).clamp(0, h - 1), rows.expand(b, h, w))
        src_c = torch.where(interior, (cols + offsets[1]).clamp(0, w - 1), cols.expand(b, h, w))
        flat = (src_r * w + src_c).reshape(b, 1, h * w).expand(b, c, h * w)
        y = y.reshape(b, c, h * w).gather(2, flat).reshape(b, c, h, w)
    return gaussian_blur(y, sigma).clamp(0, 1)


# ---------------------------------------------------------------------------------------------- digital

@register_corruption("brightness")
def brightness(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Add .1 … .5 to the HSV value channel (hue and saturation kept); plain addition for grey images."""
    _check(x, severity)
    c = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    if x.shape[1] == 1:
        return (x + c).clamp(0, 1)
    value = x.amax(1, keepdim=True)
    new_value = (value + c).clamp(0, 1)
    # with hue and saturation fixed every RGB channel is proportional to V; black pixels (V = 0) turn grey
    scaled = x * new_value / value.clamp_min(1e-12)
    return torch.where(value > 0, scaled, new_value.expand_as(x)).clamp(0, 1)


@register_corruption("contrast")
def contrast(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Shrink each channel towards its mean by a factor .4 … .05."""
    _check(x, severity)
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1]
    mean = x.mean((2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp(0, 1)


@register_corruption("jpeg_compression")
def jpeg_compression(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """JPEG round trip through Pillow at quality 25, 18, 15, 10, 7."""
    from interpbook.compression.jpeg import jpeg_roundtrip

    _check(x, severity)
    quality = (25, 18, 15, 10, 7)[severity - 1]
    return jpeg_roundtrip(x, quality).x_hat


@register_corruption("pixelate")
def pixelate(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Box-downsample by a factor .6 … .25, then nearest-neighbour upsample back to the input size."""
    _check(x, severity)
    c = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(int(h * c), 1), max(int(w * c), 1)), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest-exact").clamp(0, 1)


@register_corruption("elastic_transform")
def elastic_transform(x: Tensor, severity: int = 1, *, seed: int = 0) -> Tensor:
    """Warp by a smooth random displacement field (the image-size-relative version of ``imagecorruptions``).

    Displacements: uniform noise in ±0.005·H, Gaussian-smoothed with sigma 0.01·(H, W), times alpha =
    12.5 … 30; the image is resampled bilinearly with reflected borders.
    """
    _check(x, severity)
    alpha = 250 * (0.05, 0.065, 0.085, 0.1, 0.12)[severity - 1]
    b, c, h, w = x.shape
    gen = _generator(seed)
    max_d = h * 0.005
    field = (_rand((b, 2, h, w), gen, x) * 2 - 1) * max_d
    sig_h, sig_w = 0.01 * h, 0.01 * w
    field = _conv_same(field, _gaussian_kernel1d(sig_w, 3.0)[None, :])
    field = _conv_same(field, _gaussian_kernel1d(sig_h, 3.0)[:, None]) * alpha  # [B, (dx, dy), H, W]
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    gx = 2 * (xs + field[:, 0]) / max(w - 1, 1) - 1
    gy = 2 * (ys + field[:, 1]) / max(h - 1, 1) - 1
    grid = torch.stack([gx, gy], dim=-1)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    return warped.clamp(0, 1)
