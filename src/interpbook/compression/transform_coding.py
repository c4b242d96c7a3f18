"""Linear transform coding of a Gaussian 1/f source: a toy model of a codec's spectral bias.

Context / intuition. A codec trained on natural images spends its bits where the training data have
variance. For a stationary Gaussian source the optimal linear transform (the KLT / PCA basis) is the
Fourier basis, and the variance falls off like ``1/f^α``: a codec keeping ``k`` components keeps the
``k`` lowest frequencies. Feed it a shifted source ``x' = x + n`` and, with ``P`` the projection on the kept
components,

* distortion w.r.t. the (corrupted) input: ``E‖x' − P x'‖² = tr((I − P) Σ')`` — the shift's energy outside
  the kept band is lost;
* distortion w.r.t. the clean image: ``E‖x − P x'‖² = tr((I − P) Σ_x) + tr(P Σ_n)`` — the shift's energy
  inside the band passes through, the rest is removed (the codec denoises high frequencies).

This is a stand-in for the paper's theoretical section, stated on the chapter page as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def power_law_spectrum(size: int, alpha: float, device=None, dtype=torch.float64) -> Tensor:
    """Power spectrum ``P(f) ∝ |f|^(−α)`` on a ``size × size`` grid (unshifted), zero at DC, mean 1."""
    f = torch.fft.fftfreq(size, device=device, dtype=dtype)
    r = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    p = torch.where(r > 0, r.clamp_min(1e-12) ** (-alpha), torch.zeros_like(r))
    return p / p.mean()


def gaussian_field(n: int, spectrum: Tensor, *, seed: int = 0) -> Tensor:
    """``n`` stationary (periodic) Gaussian images with power spectrum ``spectrum: [S, S]``: ``[n, S, S]``."""
    gen = torch.Generator().manual_seed(seed)
    white = torch.randn(n, *spectrum.shape, generator=gen, dtype=spectrum.dtype).to(spectrum.device)
    return torch.fft.ifft2(torch.fft.fft2(white) * spectrum.sqrt()).real


def field_covariance(spectrum: Tensor) -> Tensor:
    """Exact pixel covariance ``[S², S²]`` of :func:`gaussian_field` images (circulant, from the spectrum)."""
    s = spectrum.shape[-1]
    acf = torch.fft.ifft2(spectrum).real  # autocovariance at every periodic offset
    idx = torch.arange(s, device=spectrum.device)
    dy = (idx[:, None, None, None] - idx[None, None, :, None]) % s
    dx = (idx[None, :, None, None] - idx[None, None, None, :]) % s
    return acf[dy, dx].reshape(s * s, s * s)


@dataclass
class PCACodec:
    """Keep the ``k`` leading principal components (no quantisation): the optimal linear k-term code.

    ``fit`` stores ``mean_`` ``[D]``, ``components_`` ``[D, D]`` (columns by decreasing variance) and
    ``variances_`` ``[D]``.
    """

    k: int

    def fit(self, x: Tensor) -> PCACodec:
        """Fit on ``x: [N, D]`` (or images ``[N, S, S]``, flattened)."""
        x = x.flatten(1)
        if not 1 <= self.k <= x.shape[1]:
            raise ValueError(f"k must be in 1..{x.shape[1]}, got {self.k}")
        self.mean_ = x.mean(0)
        cov = torch.cov((x - self.mean_).T)
        var, vec = torch.linalg.eigh(cov)
        order = var.argsort(descending=True)
        self.variances_, self.components_ = var[order], vec[:, order]
        return self

    def reconstruct(self, x: Tensor) -> Tensor:
        """``mean + U_k U_kᵀ (x − mean)``, same shape as ``x``."""
        u = self.components_[:, : self.k]
        flat = x.flatten(1) - self.mean_
        return (self.mean_ + flat @ u @ u.T).view_as(x)

    def expected_distortion(self, cov_signal: Tensor, cov_shift: Tensor | None = None) -> dict[str, float]:
        """Analytic per-pixel MSE for inputs ``x + n`` (zero-mean, independent; covariances ``[D, D]``).

        Returns ``{"wrt_input": E‖x'−Px'‖²/D, "wrt_clean": E‖x−Px'‖²/D}`` for the fitted projection.
        Assumes the fitted mean is ~0 (zero-mean sources).
        """
        d = cov_signal.shape[0]
        cov_shift = torch.zeros_like(cov_signal) if cov_shift is None else cov_shift
        u = self.components_[:, : self.k]
        proj = u @ u.T
        rest = torch.eye(d, dtype=proj.dtype, device=proj.device) - proj
        wrt_input = torch.trace(rest @ (cov_signal + cov_shift))
        wrt_clean = torch.trace(rest @ cov_signal) + torch.trace(proj @ cov_shift)
        return {"wrt_input": float(wrt_input) / d, "wrt_clean": float(wrt_clean) / d}
