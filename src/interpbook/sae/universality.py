"""Feature-space universality: do two models' SAE dictionaries share their geometry (Lan et al., 2024)?

Context. Lan et al. train (or load) one sparse autoencoder per residual layer of two language models that share
a tokenizer, pair the features of the two dictionaries by activation correlation on the same tokens
(:func:`interpbook.sae.pair_features`), and compare the *decoder directions* of the paired features::

    D_A = W_dec^A[a]  [n, d_A],    D_B = W_dec^B[b]  [n, d_B]       (row r: the r-th pair)

with two measures that allow ``d_A != d_B``: SVCCA (:func:`interpbook.similarity.svcca`, 99 % of the variance
kept on each side) and RSA (:func:`interpbook.similarity.rsa`, correlation-distance RDMs compared by Spearman's
rho). A score means nothing without a null: the rows of ``D_B`` are shuffled ``R`` times, which keeps both
dictionaries intact and destroys only the pairing, and the paired score is compared with the shuffled ones
(the official ``shuffle_rand``; :func:`interpbook.similarity.permutation_null`). "Universal" in the paper's
sense means: the paired score lies far beyond the null (p < 0.01 with 100 shuffles in the paper).

Intuition for the null. CCA overfits when the number of samples ``n`` approaches the dimension: two *random*
``n x d`` matrices already have a mean canonical correlation near ``sqrt(d / n)``. The null mean shows how much
of a score is this floor; the gap above it is what the pairing adds.

- :func:`residual_activations`: the residual stream of a :class:`~interpbook.models.transformer.TinyTransformer`
  at chosen block outputs, one row per token, computed in batches.
- :func:`paired_similarity`: SVCCA and RSA of two paired decoder matrices, each against its shuffle null.
- :func:`layer_universality`: the whole per-layer-pair pipeline (pair, filter, decoders, scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interpbook.sae.autoencoder import SparseAutoencoder
from interpbook.sae.pairing import FeaturePairs, pair_features, paired_decoders
from interpbook.similarity.cca import svcca
from interpbook.similarity.nulls import NullResult, permutation_null
from interpbook.similarity.rsa import rsa


@torch.no_grad()
def residual_activations(model, tokens: Tensor, layers, *, skip_first: int = 1, batch_size: int = 256,
                         device=None) -> dict[int, Tensor]:
    """The residual stream after each block in ``layers``: ``{layer: [n * (pos - skip_first), d_model]}``.

    Args:
        model: a :class:`~interpbook.models.transformer.TinyTransformer` (anything with ``run_with_cache`` and
            TransformerLens names ``blocks.{l}.hook_resid_post``).
        tokens: ``[n, pos]`` token ids.
        layers: block indices (``0 .. n_layers - 1``); layer ``l`` is the output of block ``l``.
        skip_first: leading positions left out (default 1: the BOS position, whose residual stream is the same
            in every sequence and, in real models, an outlier an SAE spends latents on).
        batch_size: sequences per forward pass; device: where to run (default: the model's).

    Returns:
        Row ``i * (pos - skip_first) + t`` is position ``skip_first + t`` of sequence ``i``, on the CPU (the
        order of :func:`token_rows`).
    """
    if tokens.dim() != 2 or not 0 <= skip_first < tokens.shape[1]:
        raise ValueError(f"tokens must be [n, pos] with 0 <= skip_first < pos; got shape {tuple(tokens.shape)} "
                         f"and skip_first={skip_first}")
    n_layers = model.cfg.n_layers
    layers = [int(layer) for layer in layers]
    if not layers or any(not 0 <= layer < n_layers for layer in layers):
        raise ValueError(f"layers must be block indices in 0..{n_layers - 1}; got {layers}")
    device = device or next(model.parameters()).device
    names = {layer: f"blocks.{layer}.hook_resid_post" for layer in layers}
    out = {layer: [] for layer in layers}
    for start in range(0, len(tokens), batch_size):
        _, cache = model.run_with_cache(tokens[start:start + batch_size].to(device), list(names.values()))
        for layer, name in names.items():
            out[layer].append(cache[name][:, skip_first:].flatten(0, 1).cpu())  # [b * (pos - skip), d]
    return {layer: torch.cat(parts) for layer, parts in out.items()}


def token_rows(tokens: Tensor, skip_first: int = 1) -> Tensor:
    """The token id of every row of :func:`residual_activations` ``[n * (pos - skip_first)]``."""
    return tokens[:, skip_first:].flatten().cpu()


@dataclass
class PairedSimilarity:
    """SVCCA and RSA of one pair of paired decoder matrices against their shuffle nulls."""

    n_pairs: int
    svcca: NullResult  # mean canonical correlation (99 % variance kept), vs R row shuffles of D_B
    rsa: NullResult  # Spearman rho of correlation-distance RDMs, vs the same kind of shuffles
    svcca_official_rule: float  # SVCCA with the component rule of the official code (module cca docstring)
    pairs: FeaturePairs | None = None


def paired_similarity(dec_a: Tensor, dec_b: Tensor, *, n_shuffles: int = 100, keep: float | int = 0.99,
                      generator: torch.Generator | None = None, batch_size: int = 50,
                      device=None) -> PairedSimilarity:
    """SVCCA and RSA of paired decoder rows ``dec_a [n, d_A]`` and ``dec_b [n, d_B]``, each vs a shuffle null.

    Args:
        dec_a, dec_b: row ``r`` of each is one pair of features (:func:`interpbook.sae.paired_decoders`).
        n_shuffles: ``R``, the number of row permutations of ``dec_b`` in each null (the paper uses 100).
        keep: SVCCA's variance fraction (0.99) or a fixed number of directions.
        generator: CPU generator for the permutations; seed it for reproducible nulls. SVCCA and RSA are
            scored on the same ``R`` permutations when it is seeded (the generator's state is restored).
        batch_size: shuffles scored per call; device: where to compute (default: ``dec_a``'s).

    Returns:
        :class:`PairedSimilarity` (p-values with the ``+1`` correction; ``p_value_uncorrected`` is the paper's).
    """
    if dec_a.dim() != 2 or dec_b.dim() != 2 or len(dec_a) != len(dec_b):
        raise ValueError(f"dec_a [n, d_A] and dec_b [n, d_B] must hold the same n pairs; got {tuple(dec_a.shape)} "
                         f"and {tuple(dec_b.shape)}")
    if len(dec_a) < 4:
        raise ValueError(f"at least 4 pairs are needed for SVCCA and RSA against a null; got {len(dec_a)}")
    device = torch.device(device) if device is not None else dec_a.device
    x = dec_a.detach().to(device, torch.float64)
    y = dec_b.detach().to(device, torch.float64)
    state = generator.get_state() if generator is not None else None
    score = lambda a, b: svcca(a, b, keep)  # noqa: E731
    sv = permutation_null(score, x, y, n_shuffles, batch_size=batch_size, generator=generator)
    if state is not None:
        generator.set_state(state)
    rs = permutation_null(rsa, x, y, n_shuffles, batch_size=batch_size, generator=generator)
    official = float(svcca(x, y, keep, rule="univ_feat_geom")) if isinstance(keep, float) else float("nan")
    return PairedSimilarity(n_pairs=len(x), svcca=sv, rsa=rs, svcca_official_rule=official)


def layer_universality(acts_a: Tensor, acts_b: Tensor, sae_a: SparseAutoencoder | Tensor,
                       sae_b: SparseAutoencoder | Tensor, *, tokens: Tensor | None = None, junk_tokens=(),
                       dedupe: str | None = "first", min_corr: float = 0.1, n_shuffles: int = 100,
                       keep: float | int = 0.99, generator: torch.Generator | None = None,
                       device=None) -> PairedSimilarity:
    """The per-layer-pair pipeline of Lan et al.: pair features, filter, compare decoders against the null.

    Args:
        acts_a, acts_b: the two SAEs' feature activations ``[T, m_A]``, ``[T, m_B]`` on the same tokens.
        sae_a, sae_b: the SAEs (or their decoder matrices ``[m, d]``) whose rows are compared.
        tokens, junk_tokens, dedupe, min_corr: the filters of :func:`interpbook.sae.pair_features`.
        n_shuffles, keep, generator: as in :func:`paired_similarity`.
        device: where to compute.

    Returns:
        :class:`PairedSimilarity` with ``pairs`` set. Raises ``ValueError`` when fewer than 4 pairs survive.
    """
    pairs = pair_features(acts_a, acts_b, tokens=tokens, junk_tokens=junk_tokens, dedupe=dedupe,
                          min_corr=min_corr, device=device)
    if len(pairs) < 4:
        raise ValueError(f"only {len(pairs)} feature pairs survive the filters ({pairs.counts}); SVCCA and RSA "
                         "need at least 4")
    dec_a, dec_b = paired_decoders(sae_a, sae_b, pairs)
    out = paired_similarity(dec_a, dec_b, n_shuffles=n_shuffles, keep=keep, generator=generator, device=device)
    out.pairs = pairs
    return out
