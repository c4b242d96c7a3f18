"""Sparse autoencoders and cross-model feature pairing.

- :mod:`interpbook.sae.autoencoder`: :class:`SparseAutoencoder` (TopK of Gao et al., 2024; L1 of Towards
  Monosemanticity), its loss for :func:`interpbook.train.fit`, training, feature activations and metrics.
- :mod:`interpbook.sae.pairing`: max-correlation pairing of two SAEs' features with the filters of Lan et al.
  (2024), and the paired decoder matrices that SVCCA / RSA compare.
- :mod:`interpbook.sae.universality`: the per-layer-pair pipeline of Lan et al. (residual activations, pairing,
  SVCCA and RSA of the paired decoders against row-shuffle nulls).
"""

from interpbook.sae.autoencoder import (
    SAEMetrics,
    SAEOutput,
    SparseAutoencoder,
    evaluate,
    feature_activations,
    sae_loss,
    train_sae,
)
from interpbook.sae.pairing import (
    OFFICIAL_JUNK_STRINGS,
    FeaturePairs,
    correlation_matrix,
    max_correlation,
    pair_features,
    paired_decoders,
    top_tokens,
)

__all__ = [
    "OFFICIAL_JUNK_STRINGS", "FeaturePairs", "SAEMetrics", "SAEOutput", "SparseAutoencoder", "correlation_matrix",
    "evaluate", "feature_activations", "max_correlation", "pair_features", "paired_decoders", "sae_loss",
    "top_tokens", "train_sae",
]
