"""Representation similarity: how alike are two networks' (or layers') representations of the same inputs?

Every measure takes representations ``[..., n, d]`` (``n`` examples in the same order on both sides, any
widths, any device; leading batch dimensions broadcast) and computes in float64 (on a device without
float64, such as Apple's MPS, move the activations to the CPU first).

- :mod:`interpbook.similarity.cka`: linear CKA (feature form, never ``n x n`` when ``d < n``, and Gram form),
  RBF CKA with the median heuristic, biased and unbiased HSIC (Song et al., 2012), debiased CKA, and the
  minibatch CKA of Nguyen et al. (2021) accumulated over batches for layer x layer grids.
- :mod:`interpbook.similarity.cca`: CCA via orthonormal bases and SVD, SVCCA (variance-fraction or fixed-k
  rule, and the rule of Lan et al.'s code), PWCCA, principal angles.
- :mod:`interpbook.similarity.procrustes`: orthogonal Procrustes map, normalised Procrustes distance.
- :mod:`interpbook.similarity.rsa`: RDMs (correlation, cosine, Euclidean), RSA by Spearman or Pearson.
- :mod:`interpbook.similarity.nulls`: permutation and resampling nulls, scored in batches.
- :mod:`interpbook.similarity.matching`: unit matching by activation correlation (Hungarian, many-to-one).
- :mod:`interpbook.similarity.alignment`: MLP surgery for basis questions: compensated rotations of a hidden
  layer, permutation alignment by activation matching, linear interpolation and loss barriers (LMC), basis
  correlation (matched units vs the best rotation), shared frozen early layers.
- :mod:`interpbook.similarity.stitching`: model stitching (Bansal et al., 2021) between two transformers at a
  residual layer: an affine stitch warm-started by least squares, then trained on next-token loss with both
  models frozen; the penalty in nats/token.
"""

from interpbook.similarity.alignment import (
    BasisCorrelation,
    InterpolationCurve,
    activation_matching,
    basis_correlation,
    hidden_activations,
    interpolate,
    interpolation_curve,
    loss_barrier,
    mlp_layers,
    permute_hidden,
    replace_activations,
    rotate_hidden,
    rotation_by_angle,
    share_early_layers,
)
from interpbook.similarity.cca import (
    canonical_correlations,
    cca_similarity,
    n_components,
    principal_angles,
    pwcca,
    svcca,
)
from interpbook.similarity.cka import (
    MinibatchCKA,
    center_gram,
    gram_linear,
    gram_rbf,
    hsic,
    kernel_cka,
    linear_cka,
    linear_hsic,
    minibatch_cka,
    rbf_cka,
    squared_distances,
)
from interpbook.similarity.matching import UnitMatching, correlation_matrix, match_units, max_correlation, zscore
from interpbook.similarity.nulls import NullResult, null_summary, permutation_null, resampling_null
from interpbook.similarity.procrustes import orthogonal_procrustes, procrustes_distance, procrustes_similarity
from interpbook.similarity.rsa import compare_rdms, pearson, rank, rdm, rsa, spearman, upper_triangle
from interpbook.similarity.stitching import (
    AffineStitch,
    StitchedModel,
    StitchResult,
    least_squares_affine,
    stitch_models,
)

__all__ = [
    "BasisCorrelation", "InterpolationCurve", "activation_matching", "basis_correlation", "hidden_activations",
    "interpolate", "interpolation_curve", "loss_barrier", "mlp_layers", "permute_hidden", "replace_activations",
    "rotate_hidden", "rotation_by_angle", "share_early_layers",
    "AffineStitch", "StitchResult", "StitchedModel", "least_squares_affine", "stitch_models",
    "MinibatchCKA", "NullResult", "UnitMatching", "canonical_correlations", "cca_similarity", "center_gram",
    "compare_rdms", "correlation_matrix", "gram_linear", "gram_rbf", "hsic", "kernel_cka", "linear_cka",
    "linear_hsic", "match_units", "max_correlation", "minibatch_cka", "n_components", "null_summary",
    "orthogonal_procrustes", "pearson", "permutation_null", "principal_angles", "procrustes_distance",
    "procrustes_similarity", "pwcca", "rank", "rbf_cka", "rdm", "resampling_null", "rsa", "spearman",
    "squared_distances", "svcca", "upper_triangle", "zscore",
]
