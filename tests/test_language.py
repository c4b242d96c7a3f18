"""The synthetic language (sparse bigram chain + repeated segments) and the premise/hypothesis task."""

import math

import numpy as np
import pytest
import torch

from interpbook.data.language import (
    BOS,
    MISSING,
    ORDERED,
    SEP,
    SWAPPED,
    SynthLanguage,
    subsequence_task,
    unigram_entropy,
)


@pytest.fixture(scope="module")
def lang():
    return SynthLanguage(seed=0)


@pytest.fixture(scope="module")
def sample(lang):
    return lang.sample_annotated(4000, seed=1)


def test_shapes_bos_and_range(lang, sample):
    x = sample.tokens
    assert x.shape == (4000, 32) and x.dtype == torch.long
    assert (x[:, 0] == BOS).all() and (x[:, 1:] != BOS).all()  # BOS first and only first
    assert x.max() == 63 and x.min() == 0
    assert sample.first.shape == sample.second.shape == (4000, 32) and sample.first.dtype == torch.bool
    assert lang.sample(5, seed=3, device="cpu").device.type == "cpu"
    assert lang.sample(0).shape == (0, 32)


def test_the_chain_as_specified(lang):
    """vocab 64 (BOS + 63), 4 successors per token with Dirichlet weights, first token uniform."""
    p = lang.transition
    assert p.shape == (64, 64)
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert (p[:, BOS] == 0).all()
    np.testing.assert_allclose(p[BOS, 1:], 1 / 63)
    assert ((p[1:] > 0).sum(1) == 4).all()
    assert lang.successor_ids.shape == (63, 4)


def test_determinism_per_seed(lang):
    again = SynthLanguage(seed=0)
    np.testing.assert_array_equal(lang.transition, again.transition)
    assert torch.equal(lang.sample(50, seed=4), again.sample(50, seed=4))
    assert not torch.equal(lang.sample(50, seed=4), lang.sample(50, seed=5))
    assert not np.array_equal(lang.transition, SynthLanguage(seed=1).transition)
    train, test = lang.split(20, 10, seed=2)
    assert torch.equal(train, lang.sample(20, seed=4)) and torch.equal(test, lang.sample(10, seed=5))


def test_chain_positions_follow_the_chain(lang, sample):
    x, copied = sample.tokens.numpy(), (sample.first | sample.second).numpy()
    chain_step = ~copied[:, 1:]  # [n, 31]: target position not inside a copy
    prev, nxt = x[:, :-1][chain_step], x[:, 1:][chain_step]
    assert (lang.transition[prev, nxt] > 0).all()
    # empirical transition frequencies approach the Dirichlet weights
    counts = np.zeros((64, 64))
    np.add.at(counts, (prev, nxt), 1)
    rows = counts.sum(1) > 400
    freq = counts[rows] / counts[rows].sum(1, keepdims=True)
    assert rows.sum() > 30
    assert np.abs(freq - lang.transition[rows]).max() < 0.08


def test_repeated_segments_as_specified(lang, sample):
    """Probability 0.5 of a repeat, length 6..10, the second copy equals the first, copies do not overlap."""
    rep = sample.repeated
    frac = rep.float().mean().item()
    assert abs(frac - 0.5) < 4 * math.sqrt(0.25 / 4000)
    first, second, x = sample.first, sample.second, sample.tokens
    assert torch.equal(first.any(1), rep)
    lengths = second.sum(1)[rep]
    assert torch.equal(first.sum(1)[rep], lengths)
    assert lengths.min() == 6 and lengths.max() == 10
    assert not (first & second).any() and not first[:, 0].any()
    last_first = first.float().cumsum(1).argmax(1)  # index of the last position of the first copy
    first_second = second.float().argmax(1)
    assert (first_second[rep] > last_first[rep]).all()
    assert torch.equal(x[first], x[second])  # row-major order: copy i of row r lines up with copy i of row r
    # p_repeat 0 / 1
    assert not SynthLanguage(p_repeat=0.0).sample_annotated(200).repeated.any()
    assert SynthLanguage(p_repeat=1.0).sample_annotated(200).repeated.all()


def test_chain_entropy_known_answers():
    # one successor: the chain is deterministic after the first token
    det = SynthLanguage(vocab=10, n_ctx=12, successors=1, p_repeat=0.0, repeat_len=(1, 2))
    assert det.chain_entropy() == pytest.approx(0.0, abs=1e-12)
    x = det.sample(300, seed=0)
    again = det.sample(300, seed=9)
    for a in (x, again):  # the whole sequence is a function of its first token
        table = {}
        for row in a.tolist():
            assert table.setdefault(row[1], row) == row
    # k successors with near-equal weights: log k
    flat = SynthLanguage(vocab=20, successors=5, alpha=1e6, p_repeat=0.0)
    assert flat.chain_entropy() == pytest.approx(math.log(5), rel=1e-3)
    assert flat.marginals().sum(1) == pytest.approx(np.ones(32))


def test_unigram_entropy_known_answers(lang, sample):
    assert unigram_entropy(torch.zeros(4, 5, dtype=torch.long), 8) == 0.0
    cycle = torch.arange(64).view(1, 64).repeat(3, 1)[:, :33]  # targets 1..32
    assert unigram_entropy(cycle, 64) == pytest.approx(math.log(32))
    h = unigram_entropy(sample.tokens, 64)
    assert lang.chain_entropy() + 2.0 < h <= math.log(63)  # context is worth a lot in this language


def test_language_errors():
    with pytest.raises(ValueError, match="vocab must be an integer >= 3"):
        SynthLanguage(vocab=2)
    with pytest.raises(ValueError, match="successors must be an integer in 1..vocab-1 = 63"):
        SynthLanguage(successors=64)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        SynthLanguage(alpha=0.0)
    with pytest.raises(ValueError, match=r"p_repeat must be a probability in \[0, 1\]"):
        SynthLanguage(p_repeat=1.5)
    with pytest.raises(ValueError, match="2 \\* max <= n_ctx - 1 = 31"):
        SynthLanguage(repeat_len=(6, 16))
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        SynthLanguage().sample(-1)


def _is_ordered_subsequence(h, p):
    it = iter(p)
    return all(tok in it for tok in h)


def test_subsequence_task_labels_are_right():
    data = subsequence_task(600, p_counter=0.2, seed=3)
    x, y, kind = data.tokens, data.labels, data.kind
    assert x.shape == (600, 13) and (x[:, 0] == BOS).all() and (x[:, 9] == SEP).all()
    assert torch.equal(y, (kind == ORDERED).long())
    for row, k in zip(x.tolist(), kind.tolist()):
        premise, hyp = row[1:9], row[10:]
        assert len(set(premise)) == 8 and min(premise) >= 2 and len(set(hyp)) == 3
        overlap = all(t in premise for t in hyp)
        assert _is_ordered_subsequence(hyp, premise) == (k == ORDERED)
        assert overlap == (k != MISSING)


def test_subsequence_task_splits_and_the_shortcut():
    """In distribution with no counter-examples, "every hypothesis token is in the premise" is a perfect rule;
    on the OOD set (half ordered, half swapped) the same rule scores 50 %."""
    def overlap_rule(data):
        premise, hyp = data.tokens[:, 1:9], data.tokens[:, 10:]
        return (hyp.unsqueeze(-1) == premise.unsqueeze(1)).any(-1).all(-1).long()

    clean = subsequence_task(4000, seed=0)
    assert (clean.kind != SWAPPED).all()
    assert (overlap_rule(clean) == clean.labels).all()
    assert abs(clean.labels.float().mean().item() - 0.5) < 0.04
    ood = subsequence_task(4000, ood=True, seed=1)
    assert (ood.kind != MISSING).all() and abs(ood.labels.float().mean().item() - 0.5) < 0.04
    assert abs((overlap_rule(ood) == ood.labels).float().mean().item() - 0.5) < 0.04
    counter = subsequence_task(20000, p_counter=0.01, seed=2)
    assert abs((counter.kind == SWAPPED).float().mean().item() - 0.01) < 0.003
    assert torch.equal(subsequence_task(50, seed=5).tokens, subsequence_task(50, seed=5).tokens)
    assert not torch.equal(subsequence_task(50, seed=5).tokens, subsequence_task(50, seed=6).tokens)


def test_subsequence_task_errors():
    with pytest.raises(ValueError, match="2 <= hypothesis_len <= premise_len"):
        subsequence_task(10, hypothesis_len=1)
    with pytest.raises(ValueError, match="vocab >= 11"):
        subsequence_task(10, vocab=10)
    with pytest.raises(ValueError, match=r"p_counter must be a probability in \[0, 1\]"):
        subsequence_task(10, p_counter=-0.1)
