"""interpbook.sae: sparse autoencoders and cross-model feature pairing.

Known answers: TopK keeps exactly the k largest pre-activations; a hand-built dictionary reconstructs exactly;
decoder rows stay unit-norm and their gradients tangent; an SAE trained on sparse combinations of known atoms
recovers the atoms (and an untrained one does not); pairing recovers a planted permutation; blockwise
correlations equal a direct computation; each filter of the official pipeline does what it says.
"""

from __future__ import annotations

import pytest
import torch

from interpbook.sae import (
    FeaturePairs,
    SparseAutoencoder,
    correlation_matrix,
    evaluate,
    feature_activations,
    max_correlation,
    pair_features,
    paired_decoders,
    sae_loss,
    top_tokens,
    train_sae,
)

ATOL = 1e-5  # float32 slack


def _sparse_dictionary_data(n=8192, d=24, atoms=48, active=3, seed=0):
    """Rows = sums of ``active`` random unit atoms (of ``atoms`` in R^d) with magnitudes in [0.5, 1.5]."""
    g = torch.Generator().manual_seed(seed)
    dictionary = torch.randn(atoms, d, generator=g)
    dictionary = dictionary / dictionary.norm(dim=1, keepdim=True)
    chosen = torch.rand(n, atoms, generator=g).topk(active, dim=1).indices
    coeffs = torch.zeros(n, atoms).scatter(1, chosen, 0.5 + torch.rand(n, active, generator=g))
    return coeffs @ dictionary, dictionary


def _sparse_acts(t, m, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(t, m, generator=g) - 1.0)  # ~16 % of entries non-zero


# --- the autoencoder --------------------------------------------------------------------------------------


def test_topk_keeps_exactly_the_k_largest():
    torch.manual_seed(0)
    sae = SparseAutoencoder(16, 64, kind="topk", k=5)
    x = torch.randn(32, 16)
    with torch.no_grad():
        sae.b_enc.fill_(10.0)  # every pre-activation positive: exactly k survive
    out = sae(x)
    assert ((out.codes != 0).sum(1) == 5).all()
    top = out.pre_acts.topk(5, dim=1)
    torch.testing.assert_close(out.codes.gather(1, top.indices), top.values)
    with torch.no_grad():
        sae.b_enc.fill_(-2.0)  # few positive pre-activations
    out = sae(x)
    n_pos = (out.pre_acts > 0).sum(1)
    assert (n_pos < 5).any()
    assert ((out.codes != 0).sum(1) == n_pos.clamp(max=5)).all()  # ReLU after TopK: fewer if < k positive
    assert (out.codes >= 0).all()


def test_l1_codes_are_relu_of_preacts_and_forward_formula():
    torch.manual_seed(0)
    sae = SparseAutoencoder(8, 20, kind="l1", l1_coeff=0.1)
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.b_dec.normal_()
    x = torch.randn(10, 8)
    out = sae(x)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    torch.testing.assert_close(out.pre_acts, pre)
    torch.testing.assert_close(out.codes, torch.relu(pre))
    torch.testing.assert_close(out.x_hat, torch.relu(pre) @ sae.W_dec + sae.b_dec)
    assert sae(torch.randn(3, 5, 8)).codes.shape == (3, 5, 20)  # leading dimensions pass through


def test_l1_loss_known_answer():
    sae = SparseAutoencoder(3, 4, kind="l1", l1_coeff=0.5, normalise_decoder=False)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(3, 4))
        sae.W_dec.copy_(2 * torch.eye(4, 3))  # decoder norms 2, 2, 2, 0
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.tensor([[1.0, -1.0, 2.0]])
    # f = (1, 0, 2, 0); x_hat = (2, 0, 4); ||x - x_hat||^2 = 1 + 1 + 4 = 6; penalty = 0.5 * (1*2 + 2*2) = 3
    with torch.no_grad():
        assert float(sae_loss(sae, (x,))) == pytest.approx(9.0)


def test_hand_built_dictionary_reconstructs_exactly_and_metrics():
    d = 4
    sae = SparseAutoencoder(d, 2 * d, kind="l1", l1_coeff=0.0)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([torch.eye(d), -torch.eye(d)], 1))  # f = (relu(x), relu(-x))
        sae.W_dec.copy_(torch.cat([torch.eye(d), -torch.eye(d)], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.randn(1000, d, generator=torch.Generator().manual_seed(0))
    x[:, 0] = x[:, 0].abs() + 0.1  # latent d (= relu(-x_0)) never fires
    metrics = evaluate(sae, x, batch_size=128)
    assert metrics.fve == pytest.approx(1.0, abs=1e-6) and metrics.mse == pytest.approx(0.0, abs=1e-10)
    assert metrics.l0 == pytest.approx(d)  # every coordinate is non-zero, so exactly one of each pair fires
    assert metrics.dead_fraction == pytest.approx(1 / (2 * d))
    torch.testing.assert_close(metrics.frequencies[:d], (x > 0).float().mean(0))


def test_feature_activations_codes_and_dense_preacts():
    torch.manual_seed(0)
    sae = SparseAutoencoder(8, 32, kind="topk", k=3)
    x = torch.randn(50, 8)
    codes = feature_activations(sae, x, batch_size=7)
    torch.testing.assert_close(codes, sae.encode(x).detach())
    dense = feature_activations(sae, x, which="relu_pre", batch_size=7)
    torch.testing.assert_close(dense, torch.relu(sae.pre_acts(x)).detach())
    assert ((codes > 0).sum(1) <= 3).all() and ((dense > 0).sum(1) > 3).any()


def test_decoder_rows_stay_unit_norm_and_gradients_are_tangent():
    torch.manual_seed(0)
    x, _ = _sparse_dictionary_data(n=1024, d=12, atoms=20)
    sae = SparseAutoencoder(12, 40, kind="topk", k=3)
    sae.train()
    sae_loss(sae, (x[:256],)).backward()
    radial = (sae.W_dec.grad * sae.W_dec).sum(1)  # the gradient's component along each row
    assert radial.abs().max() < ATOL and sae.W_dec.grad.abs().max() > 1e-4
    train_sae(sae, x, epochs=3, batch_size=128, lr=1e-2)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(40), atol=ATOL, rtol=0)
    free = SparseAutoencoder(12, 40, kind="l1", l1_coeff=0.01, normalise_decoder=False)
    train_sae(free, x, epochs=3, batch_size=128, lr=1e-2)
    assert (free.W_dec.norm(dim=1) - 1).abs().max() > 0.05  # without the constraint the norms move


@pytest.mark.parametrize("kind,kwargs,batch_size,b_dec_init", [("topk", {"k": 3}, 256, "mean"),
                                                              ("l1", {"l1_coeff": 0.5}, 128, "keep")])
def test_sae_recovers_planted_dictionary(kind, kwargs, batch_size, b_dec_init):
    x, dictionary = _sparse_dictionary_data()  # 48 atoms in R^24, 3 active per row
    torch.manual_seed(1)  # not the data's seed: the initial decoder must not be the dictionary itself
    sae = SparseAutoencoder(24, 96, kind=kind, **kwargs)
    untrained = (dictionary @ sae.W_dec.detach().t()).max(1).values
    assert (untrained > 0.9).float().mean() < 0.2  # control: random directions do not pass
    train_sae(sae, x, epochs=10, batch_size=batch_size, lr=1e-2, b_dec_init=b_dec_init)
    best = (dictionary @ sae.W_dec.detach().t()).max(1).values  # [atoms] max cosine with a learned row
    assert (best > 0.9).float().mean() >= 0.9
    assert evaluate(sae, x).fve > 0.8


def test_auxk_gives_dead_latents_a_gradient_and_counter_updates():
    torch.manual_seed(0)
    x = torch.randn(8, 8)  # 8 inputs x 2 active latents: at least 16 of the 32 never fire
    sae = SparseAutoencoder(8, 32, kind="topk", k=2, dead_tokens=100)
    sae.train()
    fired = (sae.encode(x) > 0).any(0).detach()
    assert (~fired).any()
    sae_loss(sae, (x,)).backward()
    assert sae.W_enc.grad[:, ~fired].abs().max() == 0  # no AuxK yet: a latent that never fires learns nothing
    assert (sae.tokens_since_fired[fired] == 0).all() and (sae.tokens_since_fired[~fired] == 8).all()
    sae.zero_grad()
    with torch.no_grad():
        sae.tokens_since_fired[~fired] = 1000  # now dead
    sae_loss(sae, (x,)).backward()
    assert sae.W_enc.grad[:, ~fired].abs().max() > 0
    before = sae.tokens_since_fired.clone()
    with torch.no_grad():  # evaluation changes nothing
        sae_loss(sae, (x,))
    assert torch.equal(before, sae.tokens_since_fired)


# --- pairing ----------------------------------------------------------------------------------------------


def test_blockwise_correlation_equals_direct():
    a, b = _sparse_acts(500, 13, 0), _sparse_acts(500, 9, 1)
    b[:, 2] = 0.5 * a[:, 4] + 0.1 * b[:, 2]
    a[:, 7] = 0.0  # zero variance: undefined correlation
    direct = torch.corrcoef(torch.cat([a, b], 1).t())[:13, 13:]
    blocked = correlation_matrix(a, b, block_size=4, chunk=77)
    assert torch.equal(blocked.isnan(), direct.isnan())
    torch.testing.assert_close(blocked.nan_to_num(), direct.nan_to_num(), atol=ATOL, rtol=0)
    values, indices = max_correlation(a, b, block_size=2, chunk=64)
    ref = direct.nan_to_num(nan=-torch.inf).max(0)
    torch.testing.assert_close(values, ref.values, atol=ATOL, rtol=0)
    assert torch.equal(indices, ref.indices) and indices[2] == 4 and (indices != 7).all()


def test_dead_b_feature_stays_unpaired():
    a, b = _sparse_acts(300, 6, 0), _sparse_acts(300, 5, 1)
    b[:, 3] = 0.0
    values, indices = max_correlation(a, b)
    assert values[3].isnan() and indices[3] == -1
    pairs = pair_features(a, b, min_corr=-1.0)
    assert 3 not in pairs.b.tolist() and pairs.counts["live"] == 4


def test_dead_a_feature_is_never_chosen():
    a = _sparse_acts(300, 3, 0)
    a[:, 1] = 0.0
    b = (3.0 - a[:, 0] - a[:, 2])[:, None]  # anti-correlated with both live features of A
    values, indices = max_correlation(a, b)
    assert indices.item() in (0, 2) and values.item() < 0  # not the dead feature's "correlation" 0


def test_pairing_recovers_a_permutation():
    t, m = 4000, 60
    a = _sparse_acts(t, m, 0)
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(2))
    b = a[:, perm] + 0.3 * _sparse_acts(t, m, 3)  # B's feature j is A's feature perm[j], noisily
    pairs = pair_features(a, b, block_size=16, chunk=1000)
    assert len(pairs) == m and torch.equal(pairs.a, perm[pairs.b])
    assert pairs.mean_corr > 0.8 and pairs.mean_max_corr == pytest.approx(pairs.mean_corr)
    shuffled = pair_features(a, _sparse_acts(t, m, 4))  # independent activations: nothing survives 0.1
    assert len(shuffled) == 0 and shuffled.mean_max_corr < 0.1


def _three_to_one():
    """B features 0, 1, 2 all pick A feature 0 (correlations ~0.05, ~0.9, ~0.5); B feature 3 picks A feature 1."""
    base = _sparse_acts(5000, 3, 0)
    noise = _sparse_acts(5000, 4, 1)
    a = base[:, :2]
    b = torch.stack([0.05 * a[:, 0] + noise[:, 0], a[:, 0] + 0.3 * noise[:, 1], a[:, 0] + 2 * noise[:, 2],
                     a[:, 1] + 0.3 * noise[:, 3]], 1)
    return a, b


def test_one_to_one_first_best_and_threshold():
    a, b = _three_to_one()
    many = pair_features(a, b, dedupe=None, min_corr=-1.0)
    assert many.a.tolist() == [0, 0, 0, 1]
    assert many.corr[0] < 0.1 < many.corr[2] < many.corr[1]
    first = pair_features(a, b, dedupe="first")  # official order: one-to-one, then the 0.1 threshold
    assert first.b.tolist() == [3] and first.counts == {"live": 4, "tokens": 4, "one_to_one": 2, "min_corr": 1}
    best = pair_features(a, b, dedupe="best")
    assert best.b.tolist() == [1, 3] and best.a.tolist() == [0, 1]
    strict = pair_features(a, b, dedupe=None, min_corr=float(many.corr[2]))
    assert 2 not in strict.b.tolist()  # strictly above the threshold


def test_token_filter():
    t = 200
    tokens = torch.arange(t) % 10  # token id of every row
    a = torch.zeros(t, 3)
    b = torch.zeros(t, 3)
    rows = {tok: torch.nonzero(tokens == tok).flatten() for tok in range(10)}
    a[rows[1], 0], b[rows[1], 0] = 2.0, 1.0  # same top token 1: kept
    a[rows[2], 1], b[rows[2], 1] = 1.0, 1.0  # top token 2 is junk: dropped
    a[rows[3], 2] = 1.0  # A peaks on token 4 then 3, B on token 4 then 5: they share 4
    a[rows[4][:2], 2] = 5.0
    b[rows[5], 2] = 1.0
    b[rows[4][:1], 2] = 5.0
    assert top_tokens(a, tokens, 3)[0].tolist() == [1, 1, 1]
    pairs = pair_features(a, b, tokens=tokens, junk_tokens=[2], top_m=5, min_corr=-1.0)
    assert pairs.counts["live"] == 3
    assert pairs.b.tolist() == [0, 2]  # pair 1 has junk; pair 2 shares token 4 in its top 5
    disjoint = pair_features(a, b, tokens=tokens, junk_tokens=[2], top_m=1, min_corr=-1.0)
    assert disjoint.b.tolist() == [0, 2]  # top-1 tokens: 1/1 and 4/4
    b[rows[4][:1], 2] = 0.0  # B's feature 2 no longer peaks on token 4: no shared top token
    assert pair_features(a, b, tokens=tokens, junk_tokens=[2], top_m=5, min_corr=-1.0).b.tolist() == [0]


def test_paired_decoders_rows():
    torch.manual_seed(0)
    sae_a, sae_b = SparseAutoencoder(6, 10, k=2), SparseAutoencoder(9, 8, k=2)
    pairs = FeaturePairs(a=torch.tensor([3, 3, 0]), b=torch.tensor([1, 5, 7]), corr=torch.ones(3),
                         max_corr=torch.ones(8), argmax=torch.zeros(8, dtype=torch.long))
    dec_a, dec_b = paired_decoders(sae_a, sae_b, pairs)
    assert dec_a.shape == (3, 6) and dec_b.shape == (3, 9) and not dec_a.requires_grad
    torch.testing.assert_close(dec_a[2], sae_a.W_dec[0].detach())
    torch.testing.assert_close(dec_b[1], sae_b.W_dec[5].detach())
    torch.testing.assert_close(paired_decoders(sae_a.W_dec, sae_b.W_dec, pairs)[0], dec_a)
    with pytest.raises(ValueError, match=r"pairs.b indexes features outside \[0, 4\)"):
        paired_decoders(sae_a, sae_b.W_dec[:4], pairs)


# --- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda: SparseAutoencoder(4, 8, kind="relu", k=2), "allowed: topk, l1"),
    (lambda: SparseAutoencoder(4, 8, kind="topk"), "1 <= k <= d_sae=8"),
    (lambda: SparseAutoencoder(4, 8, kind="topk", k=9), "1 <= k <= d_sae=8"),
    (lambda: SparseAutoencoder(4, 8, kind="topk", k=2.5), "integer k"),
    (lambda: SparseAutoencoder(4, 8, kind="l1"), "l1_coeff >= 0"),
    (lambda: SparseAutoencoder(4, 8, kind="l1", l1_coeff=0.1, k=2), "k belongs to kind='topk'"),
    (lambda: SparseAutoencoder(4, 8, k=2)(torch.randn(3, 5)), "d_in=4"),
    (lambda: sae_loss(torch.nn.Linear(4, 4), (torch.randn(3, 4),)), "needs a SparseAutoencoder"),
    (lambda: train_sae(SparseAutoencoder(4, 8, k=2), torch.randn(10, 4), b_dec_init="median"),
     "allowed: mean, keep"),
    (lambda: train_sae(SparseAutoencoder(4, 8, k=2, device="meta"), torch.randn(10, 4)), "move one of them"),
    (lambda: feature_activations(SparseAutoencoder(4, 8, k=2), torch.randn(3, 4), which="pre"),
     "allowed: codes, relu_pre"),
    (lambda: pair_features(torch.rand(10, 3), torch.rand(10, 3), dedupe="last"), "allowed: first, best, None"),
    (lambda: max_correlation(torch.rand(10, 3), torch.rand(9, 3)), "same tokens: 10 rows for A, 9 for B"),
    (lambda: max_correlation(torch.zeros(10, 3), torch.rand(10, 3)), "every feature of A has zero variance"),
    (lambda: top_tokens(torch.rand(10, 3), torch.arange(9)), r"shape \[T=10\]"),
    (lambda: paired_decoders("sae", torch.zeros(2, 2), None), "SparseAutoencoder or a decoder matrix"),
])
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- device parity (where a GPU exists) -------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    a, b = _sparse_acts(3000, 40, 0), _sparse_acts(3000, 30, 1)
    b[:, :20] += a[:, 10:30]
    cpu = pair_features(a, b)
    gpu = pair_features(a, b, device="cuda")  # activations stay on the CPU, blocks move
    assert torch.equal(gpu.a.cpu(), cpu.a) and torch.equal(gpu.b.cpu(), cpu.b)
    torch.testing.assert_close(gpu.corr.cpu(), cpu.corr, atol=ATOL, rtol=0)
    sae = SparseAutoencoder(40, 80, k=4)
    x = torch.randn(64, 40)
    ref = sae(x)
    out = sae.to("cuda")(x.cuda())
    torch.testing.assert_close(out.x_hat.cpu(), ref.x_hat, atol=ATOL, rtol=1e-4)
    train_sae(sae, x.cuda(), epochs=2, batch_size=16)
    torch.testing.assert_close(sae.W_dec.norm(dim=1).cpu(), torch.ones(80), atol=ATOL, rtol=0)


# --- universality (Lan et al.'s per-layer pipeline) ---------------------------------------------------------


def test_paired_similarity_separates_a_true_pairing_from_its_shuffles():
    from interpbook.sae.universality import paired_similarity

    g = torch.Generator().manual_seed(0)
    dec_a = torch.randn(120, 8, generator=g)
    dec_b = dec_a @ torch.randn(8, 12, generator=g) + 0.1 * torch.randn(120, 12, generator=g)  # linear image
    res = paired_similarity(dec_a, dec_b, n_shuffles=50, generator=torch.Generator().manual_seed(1))
    assert res.n_pairs == 120 and res.svcca.exceeds(0.99) and res.rsa.exceeds(0.99)
    assert res.svcca.observed > 0.9 and abs(res.rsa.null_mean) < 0.05
    # unit-norm rows: total variance ~ n >> 1, so the official component rule keeps 1 direction only
    unit = dec_a / dec_a.norm(dim=1, keepdim=True)
    assert float((unit - unit.mean(0)).square().sum()) > 1 / 0.99
    rotation = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0].float()
    rotated = paired_similarity(unit, unit @ rotation, n_shuffles=2)
    assert rotated.svcca_official_rule == pytest.approx(1.0)  # the one pair of top components: identical scores
    noisy = paired_similarity(unit, unit + 0.3 * torch.randn(120, 8, generator=g), n_shuffles=2)
    assert noisy.svcca_official_rule != pytest.approx(noisy.svcca.observed)  # k = 1 vs the 99 % rule


def test_layer_universality_pairs_a_permuted_dictionary():
    from interpbook.sae.universality import layer_universality

    t, m = 3000, 40
    a = _sparse_acts(t, m, 0)
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(2))
    b = a[:, perm] + 0.2 * _sparse_acts(t, m, 3)
    dec_a = torch.randn(m, 6, generator=torch.Generator().manual_seed(4))
    res = layer_universality(a, b, dec_a, dec_a[perm], n_shuffles=50, generator=torch.Generator().manual_seed(5))
    assert len(res.pairs) == m and res.svcca.observed == pytest.approx(1.0) and res.rsa.observed == pytest.approx(1.0)
    assert res.svcca.p_value_uncorrected == 0.0


@pytest.mark.parametrize("call, match", [
    (lambda: __import__("interpbook.sae.universality", fromlist=["x"]).paired_similarity(
        torch.randn(5, 2), torch.randn(6, 2)), "same n pairs"),
    (lambda: __import__("interpbook.sae.universality", fromlist=["x"]).paired_similarity(
        torch.randn(3, 2), torch.randn(3, 2)), "at least 4 pairs"),
    (lambda: __import__("interpbook.sae.universality", fromlist=["x"]).residual_activations(
        None, torch.zeros(2, 3, dtype=torch.long), [0], skip_first=3), "skip_first"),
])
def test_universality_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_topk_training_refuses_a_one_row_last_batch():
    from interpbook.sae import SparseAutoencoder, train_sae

    sae = SparseAutoencoder(6, 20, kind="topk", k=3)
    with pytest.raises(ValueError, match="last batch of one row"):
        train_sae(sae, torch.randn(33, 6), epochs=1, batch_size=8)
