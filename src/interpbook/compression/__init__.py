"""Image compression: a small learned codec, JPEG via Pillow, distortion metrics and spectral inspection tools.

Modules: ``codec`` (factorized-prior autoencoder, GDN, rate-distortion loss, training), ``jpeg`` (Pillow
round trip), ``metrics`` (MSE, PSNR, SSIM, MS-SSIM), ``spectral`` (error spectra, Fourier heat maps),
``transform_coding`` (linear PCA codec of a 1/f Gaussian source, the toy theory).
"""

from interpbook.compression.codec import (
    GDN,
    FactorizedPriorCodec,
    FiLM,
    LogisticEntropyModel,
    RDOutput,
    rate_distortion_loss,
    train_codec,
)
from interpbook.compression.jpeg import CodecOutput, jpeg_roundtrip
from interpbook.compression.metrics import ms_ssim, mse, psnr, ssim
from interpbook.compression.spectral import (
    error_spectrum,
    fourier_basis,
    fourier_heat_map,
    frequency_radius,
    full_heat_map,
    grid_peak_ratio,
    high_frequency_fraction,
    power_spectrum,
    radial_profile,
    to_gray,
)
from interpbook.compression.transform_coding import (
    PCACodec,
    field_covariance,
    gaussian_field,
    power_law_spectrum,
)

__all__ = [
    "GDN", "CodecOutput", "FactorizedPriorCodec", "FiLM", "LogisticEntropyModel", "PCACodec", "RDOutput",
    "error_spectrum", "field_covariance", "fourier_basis", "fourier_heat_map", "frequency_radius",
    "full_heat_map", "gaussian_field", "grid_peak_ratio", "high_frequency_fraction", "jpeg_roundtrip",
    "ms_ssim", "mse", "power_law_spectrum", "power_spectrum", "psnr", "radial_profile", "rate_distortion_loss",
    "ssim", "to_gray", "train_codec",
]
