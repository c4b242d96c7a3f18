"""Synthetic languages for tiny transformers: a sparse bigram chain with repeats, and a premise/hypothesis task.

Context. The Part I chapters compare the internal representations of small language models (stitching, CKA,
sparse autoencoders). They need text with *learnable structure at more than one depth*, generated offline in
milliseconds, with a known answer to "how well can a model do?". :class:`SynthLanguage` is the ``synthlang`` of
the plan for Brown et al. (2023):

* **Bigram chain.** Token ids are ``0 = BOS`` and content tokens ``1..vocab-1``. Every content token has
  ``successors`` (default 4) allowed next tokens, drawn at random, with transition weights ~ Dirichlet(alpha);
  after BOS the first token is uniform. A one-layer model can learn this (its loss floor is the chain's
  entropy, :meth:`SynthLanguage.chain_entropy`).
* **Repeated segment.** With probability ``p_repeat`` (0.5) a sequence also contains a segment of
  ``repeat_len`` (6..10) uniformly random content tokens *twice*, at two random non-overlapping places; the
  chain resumes from the last token of each copy. The first copy is unpredictable (about log(vocab - 1) nats a
  token), and so is the second copy's first token; the rest of the second copy is predictable only by looking
  back -- the job of an induction head, i.e. of a second layer composing with the first. This is what makes
  depth matter. (The copy loss therefore has a floor of about log(vocab - 1) / E[length] nats a token.)

How long learning takes (measured on this CPU, defaults, AdamW 3e-3, batch 32): the chain is learned within a
few hundred steps (held-out loss ~2.4 nats against a unigram entropy of ~4.0), but the copy loss of a 2-layer,
d_model 48 model stays above log(63) until ~1,900 steps and falls to ~0.7 nats by ~2,500 (an induction
phase change). Models trained for a ci-sized ~300 steps have no induction heads yet.

:func:`subsequence_task` is the plan's controlled stand-in for the NLI generalisation experiments (McCoy et
al.'s HANS; Juneja et al.): a premise of distinct tokens, a separator, a hypothesis, and the label "the
hypothesis is an *ordered* subsequence of the premise". In training data, lexical overlap (every hypothesis
token occurs in the premise) predicts the label perfectly, except for a chosen fraction of counter-examples
(all tokens present, order wrong). The out-of-distribution set is half ordered subsequences, half
overlap-but-wrong-order items: a model that learned the shortcut scores 50 % there.

Random numbers come from a numpy ``Generator``; tensors are built on the CPU and moved to ``device``, so the
same seeds give the same tokens on every device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

BOS = 0


@dataclass
class LanguageSample:
    """Sequences of :class:`SynthLanguage` with where their repeated segment lies.

    ``tokens``: ``[n, n_ctx]`` long, ``tokens[:, 0] == BOS``. ``first`` / ``second``: boolean ``[n, n_ctx]``
    masks of the first and second copy of the repeated segment (all False in sequences without one); the
    second copy equals the first. Positions in neither copy follow the bigram chain.
    """

    tokens: Tensor
    first: Tensor
    second: Tensor

    @property
    def repeated(self) -> Tensor:  # [n] bool: does the sequence contain a repeated segment?
        return self.second.any(dim=1)


class SynthLanguage:
    """A seeded sparse bigram chain with random repeated segments (``synthlang``).

    Args:
        vocab: number of token ids, BOS (id 0) included; content tokens are ``1..vocab-1``.
        n_ctx: sequence length, BOS included.
        successors: allowed next tokens per content token (the chain's out-degree).
        alpha: Dirichlet concentration of the transition weights (small: peaked, large: near uniform).
        p_repeat: probability that a sequence contains a repeated segment.
        repeat_len: ``(min, max)`` length of the repeated segment, inclusive; two copies must fit:
            ``2 * max <= n_ctx - 1``.
        seed: fixes the language (successor sets and weights); samples take a seed of their own.

    Attributes:
        transition: ``[vocab, vocab]`` float64 next-token probabilities of the chain (row BOS: the first
            token, uniform over content tokens; column BOS is 0).
        successor_ids: ``[vocab - 1, successors]`` the allowed next tokens of content tokens 1..vocab-1.

    Example::

        lang = SynthLanguage(seed=0)
        train, test = lang.sample(10_000, seed=1), lang.sample(512, seed=2)
    """

    def __init__(self, vocab: int = 64, n_ctx: int = 32, *, successors: int = 4, alpha: float = 1.0,
                 p_repeat: float = 0.5, repeat_len: tuple[int, int] = (6, 10), seed: int = 0):
        if isinstance(vocab, bool) or int(vocab) != vocab or vocab < 3:
            raise ValueError(f"vocab must be an integer >= 3 (BOS and at least 2 content tokens); got {vocab!r}")
        if isinstance(successors, bool) or int(successors) != successors or not 1 <= successors <= vocab - 1:
            raise ValueError(f"successors must be an integer in 1..vocab-1 = {vocab - 1}; got {successors!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0; got {alpha!r}")
        if not 0.0 <= p_repeat <= 1.0:
            raise ValueError(f"p_repeat must be a probability in [0, 1]; got {p_repeat!r}")
        lo, hi = repeat_len
        if int(n_ctx) != n_ctx or n_ctx < 2:
            raise ValueError(f"n_ctx must be an integer >= 2; got {n_ctx!r}")
        if not (int(lo) == lo and int(hi) == hi and 1 <= lo <= hi and 2 * hi <= n_ctx - 1):
            raise ValueError(f"repeat_len must be integers 1 <= min <= max with 2 * max <= n_ctx - 1 = {n_ctx - 1} "
                             f"(two copies after BOS); got {repeat_len!r}")
        self.vocab, self.n_ctx, self.successors, self.alpha = int(vocab), int(n_ctx), int(successors), float(alpha)
        self.p_repeat, self.repeat_len, self.seed = float(p_repeat), (int(lo), int(hi)), seed
        rng = np.random.default_rng([seed, 0])
        content = self.vocab - 1
        self.successor_ids = 1 + np.argsort(rng.random((content, content)), axis=1)[:, :self.successors]
        weights = rng.dirichlet(np.full(self.successors, self.alpha), size=content)  # [V-1, successors]
        trans = np.zeros((self.vocab, self.vocab))
        trans[BOS, 1:] = 1.0 / content
        np.put_along_axis(trans[1:], self.successor_ids, weights, axis=1)
        self.transition = trans
        self._cdf = np.cumsum(trans, axis=1)
        self._cdf[:, -1] = 1.0  # no rounding gap at the top

    def __repr__(self) -> str:
        return (f"SynthLanguage(vocab={self.vocab}, n_ctx={self.n_ctx}, successors={self.successors}, "
                f"alpha={self.alpha}, p_repeat={self.p_repeat}, repeat_len={self.repeat_len}, seed={self.seed})")

    def sample_annotated(self, n: int, seed: int = 0, device=None) -> LanguageSample:
        """``n`` sequences with their segment masks; the same ``(language seed, seed)`` gives the same tokens."""
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"n must be an integer >= 0; got {n!r}")
        t_len, (lo, hi) = self.n_ctx, self.repeat_len
        rng = np.random.default_rng([self.seed, 1, seed])
        # every random number is drawn up front, so a sequence does not depend on the others' branches
        u = 1.0 - rng.random((n, t_len))  # in (0, 1]: never selects a zero-probability token
        has = rng.random(n) < self.p_repeat
        length = rng.integers(lo, hi + 1, size=n)
        segment = rng.integers(1, self.vocab, size=(n, hi))
        # place the two copies: a tokens before, b between, c after, a + b + c = free slots
        free = (t_len - 1) - 2 * length
        cuts = np.sort(rng.integers(0, free[:, None] + 1, size=(n, 2)), axis=1)
        start1 = 1 + cuts[:, 0]
        start2 = start1 + length + (cuts[:, 1] - cuts[:, 0])
        pos = np.arange(t_len)
        first = has[:, None] & (pos >= start1[:, None]) & (pos < (start1 + length)[:, None])
        second = has[:, None] & (pos >= start2[:, None]) & (pos < (start2 + length)[:, None])
        tokens = np.zeros((n, t_len), dtype=np.int64)
        rows = np.arange(n)
        for t in range(1, t_len):  # vectorised over sequences; the chain is sequential in t
            chain = (self._cdf[tokens[:, t - 1]] < u[:, t, None]).sum(axis=1)
            seg = segment[rows, np.clip(t - start1, 0, hi - 1)]
            copy = tokens[rows, np.clip(t - (start2 - start1), 0, t_len - 1)]
            tokens[:, t] = np.where(first[:, t], seg, np.where(second[:, t], copy, chain))
        as_tensor = lambda a: torch.from_numpy(a).to(device)
        return LanguageSample(as_tensor(tokens), as_tensor(first), as_tensor(second))

    def sample(self, n: int, seed: int = 0, device=None) -> Tensor:
        """``n`` token sequences ``[n, n_ctx]`` (long, BOS first)."""
        return self.sample_annotated(n, seed, device).tokens

    def split(self, n_train: int, n_test: int, seed: int = 0, device=None) -> tuple[Tensor, Tensor]:
        """Independent training and held-out sequences (sample seeds ``2 * seed`` and ``2 * seed + 1``)."""
        return self.sample(n_train, 2 * seed, device), self.sample(n_test, 2 * seed + 1, device)

    def marginals(self) -> np.ndarray:
        """``[n_ctx, vocab]``: the distribution of the token at each position of a chain-only sequence."""
        out = np.zeros((self.n_ctx, self.vocab))
        out[0, BOS] = 1.0
        for t in range(1, self.n_ctx):
            out[t] = out[t - 1] @ self.transition
        return out

    def chain_entropy(self) -> float:
        """Mean entropy (nats) of the next token given the current one over positions 1..n_ctx-2 of a chain-only
        sequence: the loss floor of any model at chain positions after the first (a bigram model reaches it)."""
        p = self.transition
        row = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)  # [vocab] entropy of each row
        return float((self.marginals()[1:-1] @ row).mean())


def unigram_entropy(tokens: Tensor, vocab: int) -> float:
    """Entropy (nats) of the empirical distribution of the predicted tokens ``tokens[:, 1:]``.

    The loss of the best model that ignores context: a trained language model should beat it.
    """
    if tokens.dim() != 2 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be [n, pos >= 2]; got {tuple(tokens.shape)}")
    counts = torch.bincount(tokens[:, 1:].flatten().cpu(), minlength=vocab).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


# -- the premise/hypothesis task ------------------------------------------------------------------------------
SEP = 1
ORDERED, MISSING, SWAPPED = 0, 1, 2  # item kinds: label 1, label 0 (a token not in the premise), label 0 (order)


@dataclass
class PairData:
    """Premise/hypothesis items: ``tokens`` ``[n, premise_len + hypothesis_len + 2]`` laid out as
    ``BOS premise SEP hypothesis``; ``labels`` ``[n]`` (1: the hypothesis is an ordered subsequence of the
    premise); ``kind`` ``[n]``: ``ORDERED`` (label 1), ``MISSING`` (some hypothesis token is not in the
    premise) or ``SWAPPED`` (all tokens present, order wrong: the counter-examples to the overlap shortcut)."""

    tokens: Tensor
    labels: Tensor
    kind: Tensor


def subsequence_task(n: int, *, vocab: int = 32, premise_len: int = 8, hypothesis_len: int = 3,
                     p_counter: float = 0.0, ood: bool = False, seed: int = 0, device=None) -> PairData:
    """Premise/hypothesis pairs labelled "the hypothesis is an ordered subsequence of the premise".

    Args:
        n: number of items.
        vocab: token ids; 0 = BOS, 1 = SEP, content tokens 2..vocab-1 (premise tokens are distinct).
        premise_len, hypothesis_len: lengths P and H (H >= 2, so that order can be wrong).
        p_counter: in-distribution sets (``ood=False``): fraction of ``SWAPPED`` counter-examples; the rest is
            half ``ORDERED``, half ``MISSING`` (``p_counter = 0``: lexical overlap predicts the label exactly).
        ood: the out-of-distribution set instead: half ``ORDERED``, half ``SWAPPED`` (the HANS analogue).
        seed: fixes the items.

    Returns:
        A :class:`PairData`.
    """
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"n must be an integer >= 0; got {n!r}")
    if hypothesis_len < 2 or premise_len < hypothesis_len:
        raise ValueError(f"need 2 <= hypothesis_len <= premise_len; got hypothesis_len={hypothesis_len}, "
                         f"premise_len={premise_len}")
    content = vocab - 2
    if content < premise_len + 1:
        raise ValueError(f"vocab must leave premise_len + 1 = {premise_len + 1} content tokens besides BOS and SEP "
                         f"(vocab >= {premise_len + 3}); got vocab={vocab}")
    if not 0.0 <= p_counter <= 1.0:
        raise ValueError(f"p_counter must be a probability in [0, 1]; got {p_counter!r}")
    rng = np.random.default_rng([seed, 2])
    u = rng.random(n)
    if ood:
        kind = np.where(u < 0.5, ORDERED, SWAPPED)
    else:
        kind = np.where(u < p_counter, SWAPPED, np.where(u < p_counter + (1 - p_counter) / 2, ORDERED, MISSING))
    order = 2 + np.argsort(rng.random((n, content)), axis=1)  # a random permutation of the content tokens
    premise, outside = order[:, :premise_len], order[:, premise_len]  # outside: a token not in the premise
    picks = np.sort(np.argsort(rng.random((n, premise_len)), axis=1)[:, :hypothesis_len], axis=1)
    hyp = np.take_along_axis(premise, picks, axis=1)  # an ordered subsequence
    rows = np.arange(n)
    slot = rng.integers(0, hypothesis_len, size=n)
    missing = hyp.copy()
    missing[rows, slot] = outside
    perm = np.argsort(rng.random((n, hypothesis_len)), axis=1)
    identity = (perm == np.arange(hypothesis_len)).all(axis=1)
    perm[identity] = np.roll(np.arange(hypothesis_len), 1)  # a non-identity reordering
    swapped = np.take_along_axis(hyp, perm, axis=1)
    hyp = np.where((kind == MISSING)[:, None], missing, np.where((kind == SWAPPED)[:, None], swapped, hyp))
    tokens = np.concatenate([np.full((n, 1), BOS), premise, np.full((n, 1), SEP), hyp], axis=1)
    return PairData(torch.from_numpy(tokens).long().to(device), torch.from_numpy((kind == ORDERED).astype(np.int64))
                    .to(device), torch.from_numpy(kind.astype(np.int64)).to(device))
