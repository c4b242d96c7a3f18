"""Pairing the features of two SAEs by activation correlation (Lan et al., 2024).

Context. Two models each get an SAE; to compare the geometry of the two dictionaries we first need to know
which feature of A "is" which feature of B. Run both models on the SAME tokens, record each SAE's feature
activations ``F_A [T, m_A]`` and ``F_B [T, m_B]``, and give every feature ``j`` of B the feature of A whose
activations correlate best with it::

    C = Z_Aᵀ Z_B / T          # Pearson correlation; Z = column-wise z-scores over the T tokens
    i*(j) = argmax_i C_ij     # many-to-one: several B features may pick the same A feature

(the official pipeline's direction, ``batched_correlation``: "use the list with the smaller number of features"
as B). ``C`` is never held whole: :func:`max_correlation` (one implementation, in
:mod:`interpbook.similarity.matching`, re-exported here) builds it in blocks of B's columns, each block summed
over chunks of rows.
The official code (``wlg1/univ_feat_geom``, ``run_pipeline/run_expm_fns.py``) then filters the pairs, in order:

1. *tokens* (optional): with the top-``m`` (5) activating tokens of each feature, drop a pair if either
   feature's list holds a "junk" token (punctuation, whitespace, BOS/EOS/PAD: :data:`OFFICIAL_JUNK_STRINGS`),
   and keep it only if the two lists share a token;
2. *one-to-one* (the ``--oneToOne_bool`` runs): an A feature chosen by several B features keeps only its first
   pair in B's order (``dedupe="first"``); ``"best"`` keeps its most correlated pair instead, ``None`` all;
3. *correlation*: keep pairs with ``C > min_corr`` (0.1).

The decoder rows of the surviving pairs, :func:`paired_decoders`, are the two representations (samples =
features, dimensions = residual-stream coordinates) that SVCCA and RSA compare.

Where this differs from the official code: token lists are compared as token ids, not decoded strings;
features with zero variance on the data ("dead") have an undefined correlation: they are never chosen on
A's side and leave B's side unpaired (the official code z-scores with ``std + 1e-8``, pairs a dead B feature
to A's feature 0 at correlation 0, and relies on filters 1 and 3 to remove it, after such a pair may already
have taken that A feature's one-to-one slot); correlations use the population standard deviation (the
official z-scores use the unbiased one and divide by ``T``, shrinking them by ``(T − 1) / T``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from interpbook.sae.autoencoder import SparseAutoencoder
from interpbook.similarity.matching import correlation_blocks, max_correlation

DEDUPES = ("first", "best", None)
# run_expm_fns.py's junk_words, as decoded strings; map them to token ids for `junk_tokens`
OFFICIAL_JUNK_STRINGS = (".", "\\n", "\n", "", " ", "-", ",", "!", "?", "<|endoftext|>", "<bos>", "|bos|", "<pad>")


def correlation_matrix(acts_a: Tensor, acts_b: Tensor, *, block_size: int = 1024, chunk: int = 16384,
                       device=None) -> Tensor:
    """Pearson correlations ``C [m_A, m_B]`` between the columns of ``acts_a [T, m_A]`` and ``acts_b [T, m_B]``.

    Streamed like :func:`max_correlation` (for small dictionaries, figures and tests). Entries of a
    zero-variance column are ``nan`` (:func:`interpbook.similarity.correlation_matrix` raises instead).
    """
    parts = []
    for _, c, live_a, live_b in correlation_blocks(acts_a, acts_b, block_size=block_size, chunk=chunk,
                                                   device=device):
        parts.append(torch.where(live_a[:, None] & live_b[None, :], c, torch.full_like(c, torch.nan)))
    return torch.cat(parts, dim=1)


def top_tokens(acts: Tensor, tokens: Tensor, m: int = 5, *, features: Tensor | None = None,
               block_size: int = 1024) -> Tensor:
    """Token ids at the ``m`` highest activations of each feature: ``[n_features, m]`` (``features`` or all).

    ``tokens [T]`` holds the token id of every row of ``acts [T, n]``. Ties (e.g. a feature that fires on fewer
    than ``m`` tokens, its other activations all 0) are broken by ``topk``, as in the official code.
    """
    if tokens.shape != (len(acts),):
        raise ValueError(f"tokens must have shape [T={len(acts)}] (one id per row), got {tuple(tokens.shape)}")
    if not 1 <= m <= len(acts):
        raise ValueError(f"m must lie in [1, T={len(acts)}], got {m}")
    features = torch.arange(acts.shape[1], device=acts.device) if features is None else features.to(acts.device)
    out = []
    for start in range(0, len(features), block_size):
        rows = acts[:, features[start:start + block_size]].topk(m, dim=0).indices  # [m, block]
        out.append(tokens[rows.to(tokens.device)].t())
    return torch.cat(out) if out else tokens.new_zeros(0, m)


@dataclass
class FeaturePairs:
    a: Tensor  # [n] features of A
    b: Tensor  # [n] features of B (increasing)
    corr: Tensor  # [n] their activation correlations
    max_corr: Tensor  # [m_B] best correlation of every B feature before filtering (nan: zero variance)
    argmax: Tensor  # [m_B] its A feature (-1: zero variance)
    counts: dict[str, int] = field(default_factory=dict)  # pairs left after each stage, in order

    def __len__(self) -> int:
        return len(self.a)

    @property
    def mean_max_corr(self) -> float:
        """Mean best correlation over B's live features, before any filter (the official ``mean_actv_corr``)."""
        return float(self.max_corr.nanmean())

    @property
    def mean_corr(self) -> float:
        """Mean correlation of the kept pairs (the official ``mean_actv_corr_filt``)."""
        return float(self.corr.mean()) if len(self.corr) else float("nan")


def pair_features(acts_a: Tensor, acts_b: Tensor, *, tokens: Tensor | None = None, junk_tokens=(), top_m: int = 5,
                  dedupe: str | None = "first", min_corr: float = 0.1, block_size: int = 1024, chunk: int = 16384,
                  device=None) -> FeaturePairs:
    """Pair every feature of B with its max-correlation feature of A, then filter as the official pipeline does.

    Args:
        acts_a, acts_b: feature activations ``[T, m_A]``, ``[T, m_B]`` of the two SAEs on the same tokens
            (the official runs put the smaller dictionary as B).
        tokens: ``[T]`` token ids of the rows; given, the token filter runs (stage 1 of the module docstring).
        junk_tokens: ids that disqualify a feature when among its top-``top_m`` tokens.
        dedupe: ``"first"`` (official one-to-one), ``"best"``, or ``None`` (keep many-to-one pairs).
        min_corr: keep pairs with correlation strictly above it (official: 0.1).
        block_size, chunk, device: as in :func:`max_correlation`.

    Returns:
        :class:`FeaturePairs` on ``device``; ``counts`` records the pairs left after each stage
        (``live``, ``tokens``, ``one_to_one``, ``min_corr``).
    """
    if dedupe not in DEDUPES:
        raise ValueError(f"unknown dedupe {dedupe!r}; allowed: first, best, None")
    values, indices = max_correlation(acts_a, acts_b, block_size=block_size, chunk=chunk, device=device)
    b = torch.nonzero(indices >= 0).flatten()  # [n] live B features
    a, corr = indices[b], values[b]
    counts = {"live": len(b)}
    if tokens is not None:
        tok_a = top_tokens(acts_a, tokens, top_m, features=a.cpu(), block_size=block_size).to(a.device)  # [n, top_m]
        tok_b = top_tokens(acts_b, tokens, top_m, features=b.cpu(), block_size=block_size).to(a.device)
        junk = torch.as_tensor(list(junk_tokens), dtype=tok_a.dtype, device=a.device)
        clean = ~(torch.isin(tok_a, junk).any(1) | torch.isin(tok_b, junk).any(1))
        shared = (tok_a[:, :, None] == tok_b[:, None, :]).flatten(1).any(1)
        keep = clean & shared
        a, b, corr = a[keep], b[keep], corr[keep]
    counts["tokens"] = len(b)
    if dedupe is not None and len(a):
        # priority of each pair: its position in B's order ("first") or in decreasing correlation ("best")
        order = torch.arange(len(a), device=a.device) if dedupe == "first" else corr.argsort(descending=True,
                                                                                                stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(a), device=a.device)
        best = torch.full((int(a.max()) + 1,), len(a), dtype=rank.dtype, device=a.device)
        best = best.scatter_reduce(0, a, rank, "amin")
        keep = rank == best[a]
        a, b, corr = a[keep], b[keep], corr[keep]
    counts["one_to_one"] = len(b)
    keep = corr > min_corr
    a, b, corr = a[keep], b[keep], corr[keep]
    counts["min_corr"] = len(b)
    return FeaturePairs(a=a, b=b, corr=corr, max_corr=values, argmax=indices, counts=counts)


def _decoder_rows(sae, name: str) -> Tensor:
    if isinstance(sae, SparseAutoencoder):
        return sae.W_dec.detach()
    if isinstance(sae, Tensor) and sae.dim() == 2:
        return sae.detach()
    raise ValueError(f"{name} must be a SparseAutoencoder or a decoder matrix [d_sae, d_in], got "
                     f"{type(sae).__name__}{tuple(sae.shape) if isinstance(sae, Tensor) else ''}")


def paired_decoders(sae_a, sae_b, pairs: FeaturePairs) -> tuple[Tensor, Tensor]:
    """Decoder directions of the paired features: ``(D_A [n, d_A], D_B [n, d_B])``, row ``r`` of each a pair.

    ``sae_a``/``sae_b`` are :class:`SparseAutoencoder` s or decoder matrices ``[d_sae, d_in]`` (e.g. a pretrained
    SAE's ``W_dec``). These are the inputs of SVCCA / RSA in :mod:`interpbook.similarity`.
    """
    dec_a, dec_b = _decoder_rows(sae_a, "sae_a"), _decoder_rows(sae_b, "sae_b")
    for name, idx, dec in (("a", pairs.a, dec_a), ("b", pairs.b, dec_b)):
        if len(idx) and not (0 <= int(idx.min()) and int(idx.max()) < len(dec)):
            raise ValueError(f"pairs.{name} indexes features outside [0, {len(dec)}) of sae_{name}'s decoder")
    return dec_a[pairs.a.to(dec_a.device)].clone(), dec_b[pairs.b.to(dec_b.device)].clone()
