"""Physically consistent weather for multispectral images: fog and haze (Koschmieder), and snow.

Context: ImageNet-C's fog and snow (Hendrycks & Dietterich, 2019) are recipes for RGB photographs. Bishoff et
al. (2023) extend them to RGB + near-infrared imagery so that one weather event perturbs every band
*coherently*: the same fog bank, the same snowflakes, with the band-dependence that the physics prescribes.

**Fog and haze** follow Koschmieder's law of atmospheric visibility: a surface of radiance ``J_b`` seen through
an optical path ``d`` arrives as

    I_b = J_b · t_b + A_b · (1 − t_b),        t_b = exp(−β_b · d),        β_b = β_550 · (λ_b / 550 nm)^(−α),

with ``A_b`` the airlight and one path field ``d`` shared by all bands. The Ångström exponent ``α`` carries
the physics: small aerosol (haze, α ≈ 1.3) scatters blue far more than near-infrared, so NIR sees through
it; fog droplets are much larger than the wavelength and scatter all bands alike (α ≈ 0, grey fog). The
path ``d`` is the scene's depth field (relative to its mean) modulated by a patchy 1/f density field in
the role of ImageNet-C's plasma fractal.

**Snow** is ImageNet-C's recipe (a zoomed, thresholded, motion-blurred Gaussian flake layer added twice,
once rotated by 180°, over a scene blended towards a brightened copy) with *one* flake layer for all bands,
scaled per band by snow's reflectance relative to the visible (≈ 0.95 in the visible, ≈ 0.85 at 830 nm;
textbook values for fresh snow). On an RGB image it is ImageNet-C's snow, with the streak length scaled to
the tile size and one severity constant changed (see :data:`SNOW_PARAMS`).

Every corruption takes ``x: [B, C, H, W]`` in [0, 1] (bands named by ``bands``; by default grey, RGB or
RGB + NIR for C = 1, 3, 4), a ``severity`` (0 is exactly the identity), and either a ``generator`` or a
``seed``; it returns a tensor of ``x``'s shape, dtype and device in [0, 1]. Random fields are drawn on the
generator's device (the CPU for ``seed``) in float64, so a seed gives the same weather on every device.
``fog`` and ``snow`` also serve :func:`interpbook.corruptions.corrupt` by name; ``frost`` (which needs
ImageNet-C's frost photographs) is not provided.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# Band centres in nm (WorldView-3-like multispectral bands; "PAN" stands for a grey, green-centred band).
BAND_CENTRES_NM: dict[str, float] = {"B": 480.0, "G": 545.0, "R": 660.0, "NIR": 830.0, "PAN": 550.0}
DEFAULT_BANDS: dict[int, tuple[str, ...]] = {1: ("PAN",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "NIR")}
ANGSTROM = {"fog": 0.0, "haze": 1.3}  # Ångström exponents: grey fog, continental haze
# β_550 · mean path at severity 1..5: mean green transmission 0.82, 0.64, 0.47, 0.33, 0.22
FOG_OPTICAL_DEPTH = (0.2, 0.45, 0.75, 1.1, 1.5)
# ImageNet-C snow: (flake mean, flake std, zoom, threshold, blur radius, blur sigma, scene kept). One change:
# ImageNet-C keeps 0.7 of the scene at severities 2 and 3, and on tiles below ~64 pixels their flakes add the
# same mean distortion, so the two tie; severity 3 keeps 0.65 here, which makes distortion rise with severity.
SNOW_PARAMS = ((0.1, 0.3, 3.0, 0.5, 10, 4, 0.8), (0.2, 0.3, 2.0, 0.5, 12, 4, 0.7), (0.55, 0.3, 4.0, 0.9, 12, 8, 0.65),
               (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))
SNOW_REFERENCE_SIZE = 224  # ImageNet-C's blur radii are in pixels of a 224-pixel image


# ---------------------------------------------------------------------------------------------- helpers

def band_wavelengths(bands: Sequence[str] | int, *, device=None, dtype=torch.float32) -> Tensor:
    """Centre wavelengths in nm, ``[C]``, for band names (``"R"``, ``"G"``, ``"B"``, ``"NIR"``, ``"PAN"``) or a
    channel count (its default bands)."""
    names = _band_names(bands)
    return torch.tensor([BAND_CENTRES_NM[b] for b in names], device=device, dtype=dtype)


def extinction(wavelengths_nm: Tensor, beta_550: float, angstrom: float) -> Tensor:
    """Ångström's law ``β(λ) = β_550 · (λ / 550 nm)^(−α)``, same shape as ``wavelengths_nm``."""
    if beta_550 < 0:
        raise ValueError(f"beta_550 must be >= 0, got {beta_550}")
    return beta_550 * (wavelengths_nm / 550.0) ** (-angstrom)


def snow_reflectance(wavelengths_nm: Tensor) -> Tensor:
    """Fresh snow's reflectance: 0.95 up to 700 nm, falling linearly to 0.85 at 830 nm (held beyond)."""
    lam = wavelengths_nm.double().cpu().numpy()
    return torch.as_tensor(np.interp(lam, [700.0, 830.0], [0.95, 0.85])).to(wavelengths_nm)


def koschmieder(x: Tensor, transmission: Tensor, airlight: Tensor | float) -> Tensor:
    """Koschmieder's model ``I = J · t + A · (1 − t)``.

    Args:
        x: the clear scene ``J``, ``[B, C, H, W]``.
        transmission: ``t`` in [0, 1], broadcastable to ``x`` (e.g. ``[B, C, H, W]`` or ``[B, 1, H, W]``).
        airlight: ``A``, a scalar or one value per band ``[C]``.
    """
    a = torch.as_tensor(airlight, dtype=x.dtype, device=x.device)
    if a.dim() == 1:
        a = a.view(1, -1, 1, 1)
    return x * transmission + a * (1 - transmission)


def plasma_field(n: int, size: int | tuple[int, int], *, decay: float = 2.0, generator: torch.Generator | None = None,
                 device=None, dtype=torch.float32) -> Tensor:
    """Patchy random fields in [0, 1], ``[n, 1, H, W]``: ImageNet-C's plasma fractal by spectral synthesis.

    ImageNet-C's diamond-square divides the random displacement by ``decay`` at every halving of the scale, so
    the variance per octave falls as ``f^(−2 log2 decay)``; in two dimensions that is a Fourier amplitude
    ``f^(−1 − log2 decay)``, which is what is drawn here (white Gaussian noise shaped in the Fourier domain,
    then min-max normalised per field, as ImageNet-C does).
    """
    h, w = (size, size) if isinstance(size, int) else size
    gen = generator if generator is not None else torch.Generator()
    noise = torch.randn((n, 1, h, w), generator=gen, device=gen.device, dtype=torch.float64)
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=gen.device)[:, None]
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=gen.device)[None, :]
    radius = torch.sqrt(fy**2 + fx**2)
    amplitude = torch.where(radius > 0, radius.clamp_min(1e-12) ** (-1 - math.log2(decay)), torch.zeros_like(radius))
    field = torch.fft.ifft2(torch.fft.fft2(noise) * amplitude).real
    lo = field.amin((2, 3), keepdim=True)
    hi = field.amax((2, 3), keepdim=True)
    return ((field - lo) / (hi - lo).clamp_min(1e-12)).to(device=device, dtype=dtype)


def _band_names(bands: Sequence[str] | int) -> tuple[str, ...]:
    if isinstance(bands, int):
        if bands not in DEFAULT_BANDS:
            raise ValueError(f"no default band names for {bands} channels; pass bands=... (known channel counts "
                             f"{sorted(DEFAULT_BANDS)}, band names {sorted(BAND_CENTRES_NM)})")
        return DEFAULT_BANDS[bands]
    unknown = [b for b in bands if b not in BAND_CENTRES_NM]
    if unknown:
        raise ValueError(f"unknown band {unknown[0]!r}; known bands: {', '.join(BAND_CENTRES_NM)}")
    return tuple(bands)


def _check(x: Tensor, severity: float, bands, *, integer: bool) -> tuple[str, ...]:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor [B, C, H, W]; got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if x.numel() and (x.min() < -1e-6 or x.max() > 1 + 1e-6):
        raise ValueError(f"x must lie in [0, 1]; got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    ok = isinstance(severity, (int, float)) and not isinstance(severity, bool) and 0 <= severity <= 5
    if not ok or (integer and int(severity) != severity):
        kind = "an integer in 0..5" if integer else "a number in [0, 5]"
        raise ValueError(f"severity must be {kind}, got {severity!r}")
    names = _band_names(x.shape[1] if bands is None else bands)
    if len(names) != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but bands names {len(names)}: {names}")
    return names


def _generator(generator: torch.Generator | None, seed: int) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(int(seed))


def _relative_depth(depth: Tensor | None, x: Tensor) -> Tensor:
    """Depth divided by each image's mean depth, ``[B, 1, H, W]`` (ones when no depth is given)."""
    b, _, h, w = x.shape
    if depth is None:
        return torch.ones((b, 1, h, w), dtype=x.dtype, device=x.device)
    d = torch.as_tensor(depth, dtype=x.dtype, device=x.device)
    if d.dim() == 2:
        d = d[None, None]
    if d.dim() != 4 or d.shape[1] != 1 or d.shape[-2:] != (h, w) or d.shape[0] not in (1, b):
        raise ValueError(f"depth must be [B, 1, H, W] (or [1, 1, H, W], [H, W]) matching x {tuple(x.shape)}; "
                         f"got {tuple(d.shape)}")
    if not bool((d > 0).all()):
        raise ValueError("depth must be > 0 everywhere")
    return (d / d.mean((2, 3), keepdim=True)).expand(b, 1, h, w)


# ---------------------------------------------------------------------------------------------- fog, haze

def fog_optical_depth(severity: float) -> float:
    """Mean optical depth ``β_550 · d̄`` at a severity in [0, 5]: the table, linear in between, 0 at 0."""
    return float(np.interp(severity, np.arange(6), (0.0, *FOG_OPTICAL_DEPTH)))


def fog_transmission(x: Tensor, severity: float, *, depth: Tensor | None = None,
                     generator: torch.Generator | None = None, seed: int = 0, angstrom: float = ANGSTROM["fog"],
                     patchiness: float = 0.5, decay: float = 2.0, bands: Sequence[str] | None = None) -> Tensor:
    """Per-band transmission ``t_b = exp(−β_b · d)`` of :func:`fog`, ``[B, C, H, W]``.

    The path ``d = depth / mean(depth) · (1 + patchiness · (2 ρ − 1))`` has mean ≈ 1, with ``ρ`` a
    :func:`plasma_field`; ``patchiness = 0`` gives homogeneous fog.
    """
    names = _check(x, severity, bands, integer=False)
    if not 0 <= patchiness <= 1:
        raise ValueError(f"patchiness must be in [0, 1], got {patchiness}")
    b, _, h, w = x.shape
    path = _relative_depth(depth, x)
    if patchiness > 0:
        rho = plasma_field(b, (h, w), decay=decay, generator=_generator(generator, seed), device=x.device,
                           dtype=x.dtype)
        path = path * (1 + patchiness * (2 * rho - 1))
    beta = extinction(band_wavelengths(names, device=x.device, dtype=x.dtype), fog_optical_depth(severity), angstrom)
    return torch.exp(-beta.view(1, -1, 1, 1) * path)


def fog(x: Tensor, severity: float = 1, *, depth: Tensor | None = None, generator: torch.Generator | None = None,
        seed: int = 0, angstrom: float = ANGSTROM["fog"], airlight: float | Sequence[float] = 0.9,
        patchiness: float = 0.5, decay: float = 2.0, bands: Sequence[str] | None = None) -> Tensor:
    """Fog by Koschmieder's law, one path field for all bands; grey (α = 0) by default.

    Args:
        x: clear scenes ``[B, C, H, W]`` in [0, 1].
        severity: in [0, 5]; sets the mean green optical depth (:data:`FOG_OPTICAL_DEPTH`, 0 at 0: identity).
        depth: optional scene depth ``[B, 1, H, W]`` > 0; the path is proportional to it (mean 1 per image).
        generator, seed: randomness of the patchy density field (``generator`` wins when given).
        angstrom: Ångström exponent α of ``β_b ∝ λ_b^(−α)``; 0 for fog, 1.3 for haze (see :func:`haze`).
        airlight: ``A``, a scalar or one value per band.
        patchiness, decay: amplitude and spectral decay of the density field (0: homogeneous).
        bands: band names of ``x``'s channels (default by channel count: grey, RGB, RGB + NIR).

    Returns:
        ``[B, C, H, W]`` in [0, 1].

    >>> fog(torch.full((1, 4, 8, 8), 0.2), 0).equal(torch.full((1, 4, 8, 8), 0.2))
    True
    """
    t = fog_transmission(x, severity, depth=depth, generator=generator, seed=seed, angstrom=angstrom,
                         patchiness=patchiness, decay=decay, bands=bands)
    a = torch.as_tensor(airlight, dtype=x.dtype)
    if a.dim() == 1 and a.numel() != x.shape[1]:
        raise ValueError(f"airlight needs one value per band ({x.shape[1]}), got {a.numel()}")
    if bool(((a < 0) | (a > 1)).any()):
        raise ValueError(f"airlight must lie in [0, 1], got {a.tolist()}")
    return koschmieder(x, t, a).clamp(0, 1)


def haze(x: Tensor, severity: float = 1, **kwargs) -> Tensor:
    """Haze: :func:`fog` with the Ångström exponent of small aerosol, α = 1.3 (NIR attenuated least)."""
    kwargs.setdefault("angstrom", ANGSTROM["haze"])
    return fog(x, severity, **kwargs)


# ---------------------------------------------------------------------------------------------- snow

def _clipped_zoom(layer: Tensor, zoom: float) -> Tensor:
    """Zoom ``[B, 1, H, W]`` about its centre by ``zoom`` >= 1 (bilinear), cropped back to H × W."""
    _, _, h, w = layer.shape
    ch, cw = max(math.ceil(h / zoom), 1), max(math.ceil(w / zoom), 1)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = layer[:, :, top:top + ch, left:left + cw]
    size = (max(round(ch * zoom), h), max(round(cw * zoom), w))
    big = F.interpolate(crop, size=size, mode="bilinear", align_corners=False)
    t, lft = (size[0] - h) // 2, (size[1] - w) // 2
    return big[:, :, t:t + h, lft:lft + w]


def _streak(layer: Tensor, radius: float, sigma: float, angle: Tensor) -> Tensor:
    """ImageNet-C's one-sided motion blur of ``[B, 1, H, W]`` along ``angle`` (radians, one per image).

    The image is averaged with copies shifted by 0 … 2·radius pixels along the direction, weighted by a
    half-Gaussian of width ``sigma``; what is shifted in from outside is zero (flakes leave the frame).
    """
    b, _, h, w = layer.shape
    width = 2 * max(int(round(radius)), 1) + 1
    weights = torch.exp(-torch.arange(width, dtype=torch.float64) ** 2 / (2 * max(sigma, 1e-3) ** 2))
    weights = (weights / weights.sum()).tolist()
    sin, cos = torch.sin(angle).to(layer.device), torch.cos(angle).to(layer.device)
    rows = torch.arange(h, device=layer.device)[None, :, None]
    cols = torch.arange(w, device=layer.device)[None, None, :]
    flat = layer.reshape(b, h * w)
    out = torch.zeros_like(flat)
    for i, wgt in enumerate(weights):
        dy = -torch.ceil(i * sin - 0.5).long()[:, None, None]
        dx = -torch.ceil(i * cos - 0.5).long()[:, None, None]
        src_r, src_c = rows - dy, cols - dx
        inside = (src_r >= 0) & (src_r < h) & (src_c >= 0) & (src_c < w)
        idx = (src_r.clamp(0, h - 1) * w + src_c.clamp(0, w - 1)).reshape(b, h * w)
        out = out + wgt * flat.gather(1, idx) * inside.reshape(b, h * w).to(flat.dtype)
    return out.reshape(b, 1, h, w)


def snow_layer(n: int, size: int | tuple[int, int], severity: int, *, generator: torch.Generator | None = None,
               seed: int = 0, device=None, dtype=torch.float32) -> Tensor:
    """The flake layer of :func:`snow` (before the 180° copy is added), ``[n, 1, H, W]``, >= 0.

    Gaussian noise (mean, std of :data:`SNOW_PARAMS`) zoomed about the centre (flakes of ``zoom`` pixels),
    zeroed below the threshold, then streaked along an angle U(−135°, −45°) per image. The streak radius
    and sigma are ImageNet-C's scaled by ``min(H, W) / 224`` so that a streak covers the same share of the
    image at any size.
    """
    if isinstance(severity, bool) or int(severity) != severity or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer in 1..5 for a snow layer, got {severity!r}")
    h, w = (size, size) if isinstance(size, int) else size
    mean, std, zoom, threshold, radius, sigma, _ = SNOW_PARAMS[int(severity) - 1]
    gen = _generator(generator, seed)
    layer = mean + std * torch.randn((n, 1, h, w), generator=gen, device=gen.device, dtype=torch.float64)
    angle = torch.deg2rad(torch.empty(n, dtype=torch.float64, device=gen.device).uniform_(-135, -45, generator=gen))
    layer = _clipped_zoom(layer, zoom)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)  # clipped before the blur
    shrink = min(h, w) / SNOW_REFERENCE_SIZE
    layer = _streak(layer, radius * shrink, sigma * shrink, angle).clamp_min(0)
    return layer.to(device=device, dtype=dtype)


def snow(x: Tensor, severity: int = 1, *, depth: Tensor | None = None, generator: torch.Generator | None = None,
         seed: int = 0, bands: Sequence[str] | None = None) -> Tensor:
    """Snow, coherent across bands: one flake layer, scaled per band by snow's relative reflectance.

    ``out_b = clip(m·x_b + (1 − m)·max(x_b, k_b·(1.5 L + 0.5)) + k_b·(S + rot180(S)))`` with ``S`` the
    :func:`snow_layer`, ``m`` the share of the scene kept (:data:`SNOW_PARAMS`), ``L`` the luminance of
    the visible bands (Rec. 601 weights; the grey band itself for C = 1) and ``k_b`` =
    ``snow_reflectance(λ_b) / 0.95``, which is 1 in the visible and ≈ 0.89 at 830 nm. On RGB input this is
    ImageNet-C's snow (up to the
    one constant noted at :data:`SNOW_PARAMS`).

    Args:
        x: ``[B, C, H, W]`` in [0, 1]. severity: an integer in 0..5 (0: identity).
        depth: accepted for a uniform weather signature; snow falls between the sensor and every surface, so
            it is unused.
        generator, seed: randomness of the flakes (``generator`` wins when given).
        bands: band names of ``x``'s channels (default by channel count).
    """
    names = _check(x, severity, bands, integer=True)
    if severity == 0:
        return x.clone()
    b, _, h, w = x.shape
    layer = snow_layer(b, (h, w), int(severity), generator=generator, seed=seed, device=x.device, dtype=x.dtype)
    layer = layer + torch.rot90(layer, 2, dims=(2, 3))
    lam = band_wavelengths(names, device=x.device, dtype=x.dtype)
    k = (snow_reflectance(lam) / 0.95).view(1, -1, 1, 1)
    visible = [i for i, n in enumerate(names) if n in ("R", "G", "B")]
    if {"R", "G", "B"} <= set(names):
        weights = {"R": 0.299, "G": 0.587, "B": 0.114}
        lum = sum(weights[names[i]] * x[:, i:i + 1] for i in visible)
    else:
        lum = x[:, visible].mean(1, keepdim=True) if visible else x.mean(1, keepdim=True)
    kept = SNOW_PARAMS[int(severity) - 1][6]
    covered = kept * x + (1 - kept) * torch.maximum(x, k * (1.5 * lum + 0.5))
    return (covered + k * layer).clamp(0, 1)


WEATHER = {"fog": fog, "haze": haze, "snow": snow}  # name -> fn(x, severity, *, depth, generator, seed)
