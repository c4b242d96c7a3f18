"""Spectral inspection tools for codecs (Lieberman et al., 2023): error spectra and Fourier heat maps.

Context / intuition. Two images with equal PSNR can have very different errors: JPEG's errors sit on its
8×8 block grid, a learned codec's errors may be mostly missing high frequencies, and a corruption moves
energy into some band of the spectrum. Two tools make this visible:

* **Error spectrum** (the paper's "PSD"): the mean over images of ``|fftshift(fft2(gray(x̂ − x)))|``, after
  normalising images by the dataset mean and std; computed against the clean image and against the
  corrupted input. Summaries: the radially averaged profile, the fraction of error energy above a cutoff
  frequency, and the ratio of the spectrum on the 8×8 block grid to its neighbours.
* **Fourier heat map** (Yin et al., 2019, adapted to compression): perturb clean images by ``ε·U_{k}``, a
  unit-ℓ2 Fourier basis image with a random sign per colour channel, clip to [0, 1], compress, and
  record the PSNR for every frequency ``k``; the map shows which frequencies the codec preserves.

Frequencies are in cycles per pixel (Nyquist = 0.5); centred spectra put the zero frequency at
``(H // 2, W // 2)`` as ``torch.fft.fftshift`` does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from interpbook.compression.metrics import psnr

GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)  # Rec. 709 luma, as skimage.color.rgb2gray (used by ood_nic)


def to_gray(x: Tensor) -> Tensor:
    """``[B, 3, H, W]`` -> luma ``[B, H, W]``; ``[B, 1, H, W]`` -> ``[B, H, W]``."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be [B, C, H, W] with C in (1, 3), got {tuple(x.shape)}")
    if x.shape[1] == 1:
        return x[:, 0]
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device)
    return torch.einsum("bchw,c->bhw", x, w)


def power_spectrum(x: Tensor, centered: bool = True) -> Tensor:
    """Periodogram ``|fft2(x)|² / (H·W)`` of ``x: [..., H, W]`` (same shape).

    Parseval: it sums to ``Σ x²`` over each image; for white noise of variance σ² its mean is σ² at every
    frequency.
    """
    h, w = x.shape[-2:]
    p = torch.fft.fft2(x).abs().pow(2) / (h * w)
    return torch.fft.fftshift(p, dim=(-2, -1)) if centered else p


def error_spectrum(x_hat: Tensor, reference: Tensor, *, mean=None, std=None, kind: str = "amplitude") -> Tensor:
    """Mean error spectrum of a batch, centred: ``[H, W]``.

    Args:
        x_hat, reference: ``[B, C, H, W]`` reconstructions and the images they are compared with (the clean
            images, or the corrupted inputs).
        mean, std: per-channel dataset statistics (sequences of C numbers); the error is divided by ``std``
            as in ood_nic (the mean cancels in the difference but is accepted for symmetry).
        kind: ``"amplitude"`` averages ``|F|`` (the paper's plots); ``"power"`` averages ``|F|²/(H·W)``
            (energies; what :func:`high_frequency_fraction` and :func:`grid_peak_ratio` expect).
    """
    if x_hat.shape != reference.shape:
        raise ValueError(f"x_hat and reference differ in shape: {tuple(x_hat.shape)} vs {tuple(reference.shape)}")
    diff = x_hat - reference
    if std is not None:
        diff = diff / torch.as_tensor(std, dtype=diff.dtype, device=diff.device).view(1, -1, 1, 1)
    g = to_gray(diff)
    if kind == "power":
        return power_spectrum(g).mean(0)
    if kind == "amplitude":
        return torch.fft.fftshift(torch.fft.fft2(g).abs(), dim=(-2, -1)).mean(0)
    raise ValueError(f"kind must be 'amplitude' or 'power', got {kind!r}")


def frequency_radius(h: int, w: int, device=None) -> Tensor:
    """Radial frequency ``sqrt(fy² + fx²)`` in cycles/pixel of every bin of a centred ``[H, W]`` spectrum."""
    fy = torch.fft.fftshift(torch.fft.fftfreq(h, device=device))
    fx = torch.fft.fftshift(torch.fft.fftfreq(w, device=device))
    return (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt()


def radial_profile(spectrum: Tensor, n_bins: int | None = None) -> tuple[Tensor, Tensor]:
    """Radially averaged centred spectrum ``[H, W]``: bin centres (cycles/pixel) and means, ``[R]`` each.

    Bins are equal-width rings from 0 to Nyquist (``n_bins`` defaults to ``min(H, W) // 2``); the corners
    beyond Nyquist are left out. For square spectra of even side ``N`` and the default ``n_bins``, the axis
    frequency ``k/N`` falls in ring ``k`` (ring 0 holds DC alone); for odd sides the first ring also holds ``1/N``.
    """
    h, w = spectrum.shape[-2:]
    n_bins = n_bins or min(h, w) // 2
    r = frequency_radius(h, w, spectrum.device)
    edges = torch.linspace(0, 0.5, n_bins + 1, device=spectrum.device)
    idx = torch.bucketize(r.flatten(), edges[1:-1], right=True)
    keep = r.flatten() <= 0.5
    sums = torch.zeros(n_bins, dtype=spectrum.dtype, device=spectrum.device).index_add_(
        0, idx[keep], spectrum.flatten()[keep])
    counts = torch.zeros(n_bins, dtype=spectrum.dtype, device=spectrum.device).index_add_(
        0, idx[keep], torch.ones_like(spectrum.flatten()[keep]))
    return (edges[:-1] + edges[1:]) / 2, sums / counts.clamp_min(1)


def high_frequency_fraction(power: Tensor, cutoff: float = 0.25) -> float:
    """Share of the energy of a centred power spectrum ``[H, W]`` at radius > ``cutoff`` (DC excluded).

    ``cutoff=0.25`` is half the Nyquist frequency; white noise gives ``1 − π/16 ≈ 0.80`` (the area share).
    """
    h, w = power.shape[-2:]
    r = frequency_radius(h, w, power.device)
    ac = power.clone()
    ac[h // 2, w // 2] = 0
    return float(ac[r > cutoff].sum() / ac.sum())


def grid_peak_ratio(power: Tensor, period: int = 8) -> float:
    """Mean power on the block-grid frequencies ``(k·H/period, l·W/period) ≠ 0`` over their 8 neighbours.

    A codec working on ``period × period`` blocks leaves peaks there (ratio well above 1); a stationary
    error spectrum gives about 1. ``power`` is a centred ``[H, W]`` spectrum with sides divisible by ``period``
    and at least ``2·period`` (at ``2·period`` the neighbours of DC, the lowest frequencies, enter the denominator).
    """
    h, w = power.shape[-2:]
    if h % period or w % period or min(h, w) < 2 * period:
        raise ValueError(f"spectrum sides {h}×{w} must be multiples of the period {period} and at least "
                         f"{2 * period}")
    p = torch.fft.ifftshift(power, dim=(-2, -1))
    on = torch.zeros(h, w, dtype=torch.bool, device=power.device)
    on[:: h // period, :: w // period] = True
    on[0, 0] = False
    near = torch.zeros_like(on)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= torch.roll(on, (dy, dx), dims=(0, 1))
    grid = on.clone()
    grid[0, 0] = True
    near &= ~grid
    return float(p[on].mean() / p[near].mean())


def fourier_basis(h: int, w: int | None = None, device=None, dtype=torch.float32) -> Tensor:
    """All real Fourier basis images of one half-plane, unit ℓ2 norm: ``[H, W//2 + 1, H, W]``.

    Entry ``[ky, kx]`` is ``irfft2`` of a one-hot half-spectrum at ``(ky, kx)`` (``ky`` in ``fftfreq``
    order), a cosine of frequency ``(fftfreq(H)[ky], kx/W)``; the other half-plane holds the same images.
    """
    w = w or h
    n = h * (w // 2 + 1)
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    basis = torch.empty(n, h, w, dtype=dtype, device=device)
    chunk = max(1, 2**22 // n)  # one-hot spectra a chunk at a time: memory O(chunk · n), not O(n²)
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n), device=device)
        one_hot = torch.zeros(len(rows), n, dtype=cdtype, device=device)
        one_hot[torch.arange(len(rows), device=device), rows] = 1
        basis[start:start + len(rows)] = torch.fft.irfft2(one_hot.view(-1, h, w // 2 + 1), s=(h, w)).to(dtype)
    basis = basis / basis.flatten(1).norm(dim=1).view(n, 1, 1)
    return basis.view(h, w // 2 + 1, h, w)


def fourier_heat_map(codec: Callable[[Tensor], Tensor], images: Tensor, eps: float, *, seed: int = 0,
                     reference: str = "perturbed", chunk: int = 1024) -> Tensor:
    """PSNR of ``codec`` on Fourier-perturbed images, per frequency of the half-plane: ``[H, W//2 + 1]``.

    Every image of ``images: [B, 3, H, W]`` is perturbed by ``eps · s_c · U_k`` (``U_k`` from
    :func:`fourier_basis`, an independent random sign ``s_c`` per channel, image and frequency), clipped to
    [0, 1] and passed through ``codec`` (a function ``[N, 3, H, W] -> [N, 3, H, W]``) in chunks of at most
    ``chunk`` images. The PSNR is taken against the perturbed input (``reference="perturbed"``, the
    paper's choice) or the clean image (``"clean"``) and averaged over the batch.
    """
    if reference not in ("perturbed", "clean"):
        raise ValueError(f"reference must be 'perturbed' or 'clean', got {reference!r}")
    b, c, h, w = images.shape
    bases = fourier_basis(h, w, device=images.device, dtype=images.dtype).flatten(0, 1)  # [K, H, W]
    k = len(bases)
    gen = torch.Generator().manual_seed(seed)
    signs = (torch.randint(0, 2, (k, b, c), generator=gen) * 2 - 1).to(images)
    per_basis = max(chunk // b, 1)
    scores = []
    for start in range(0, k, per_basis):
        u = bases[start:start + per_basis]  # [k', H, W]
        s = signs[start:start + per_basis]  # [k', B, C]
        clean = images.unsqueeze(0).expand(len(u), -1, -1, -1, -1)
        noisy = (clean + eps * s[..., None, None] * u[:, None, None]).clamp(0, 1).flatten(0, 1)
        out = codec(noisy)
        ref = noisy if reference == "perturbed" else clean.flatten(0, 1)
        scores.append(psnr(out, ref).view(len(u), b).mean(1))
    return torch.cat(scores).view(h, w // 2 + 1)


def full_heat_map(half: Tensor, width: int | None = None) -> Tensor:
    """Complete a half-plane map ``[H, W//2 + 1]`` by the symmetry ``k ↔ −k``; centred ``[H, W]``."""
    h = half.shape[0]
    w = width or 2 * (half.shape[1] - 1)
    ky = torch.arange(h, device=half.device)[:, None].expand(h, w)
    kx = torch.arange(w, device=half.device)[None, :].expand(h, w)
    mirrored = kx > w // 2
    rows = torch.where(mirrored, (-ky) % h, ky)
    cols = torch.where(mirrored, w - kx, kx)
    return torch.fft.fftshift(half[rows, cols], dim=(-2, -1))
