"""Geometry of data and representations.

- :mod:`interpbook.geometry.frames`: neural frames (Kvinge et al., 2022): infinitesimal augmentations, noise and
  local-PCA tangents at a data point, pushed through every layer by forward-mode differentiation, and the
  statistics that compare them layer by layer (lengths relative to noise, cosines, effective rank).
"""

from interpbook.geometry.frames import (
    AFFINE_KINDS,
    PHOTOMETRIC_KINDS,
    NeuralFrame,
    adversarial_loss,
    affine_matrix,
    affine_tangents,
    augmented_loss,
    effective_rank,
    family_ratio,
    frame_cosines,
    frame_norms,
    local_pca_tangents,
    neural_frame,
    noise_directions,
    photometric_tangents,
    random_affine,
    sequential_stages,
    unit,
    warp_affine,
)

__all__ = [
    "AFFINE_KINDS", "PHOTOMETRIC_KINDS", "NeuralFrame", "adversarial_loss", "affine_matrix", "affine_tangents",
    "augmented_loss", "effective_rank", "family_ratio", "frame_cosines", "frame_norms", "local_pca_tangents",
    "neural_frame", "noise_directions", "photometric_tangents", "random_affine", "sequential_stages", "unit",
    "warp_affine",
]
