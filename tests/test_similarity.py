"""interpbook.similarity: known answers and properties of CKA, HSIC, CCA, Procrustes, RSA, nulls, matching.

Known answers: CKA is 1 for identical inputs and unchanged by rotations and isotropic scaling, but not by a
general invertible map; the feature form equals the Gram form; the unbiased HSIC equals the U-statistic it
is defined as (enumerated over every 4-tuple) and averages to the population HSIC over draws; CCA recovers
planted principal angles and is invariant to invertible maps; PWCCA reproduces a hand-computed weighting;
Procrustes is 0 for rotated copies and the angle for planted ones; nulls are calibrated under independence.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
import torch

from interpbook.similarity import (
    MinibatchCKA,
    canonical_correlations,
    cca_similarity,
    center_gram,
    compare_rdms,
    correlation_matrix,
    gram_linear,
    gram_rbf,
    hsic,
    kernel_cka,
    linear_cka,
    linear_hsic,
    match_units,
    max_correlation,
    minibatch_cka,
    n_components,
    null_summary,
    orthogonal_procrustes,
    permutation_null,
    principal_angles,
    procrustes_distance,
    procrustes_similarity,
    pwcca,
    rank,
    rbf_cka,
    rdm,
    resampling_null,
    rsa,
    spearman,
    svcca,
)

TOL = dict(rtol=1e-9, atol=1e-9)  # float64 round-off over a few thousand terms
F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=F64)


def orthogonal(d: int, seed: int = 1) -> torch.Tensor:
    q, _ = torch.linalg.qr(randn(d, d, seed=seed))
    return q


def centred_orthonormal(n: int, k: int, seed: int = 2) -> torch.Tensor:
    """``k`` orthonormal columns in ``R^n``, each orthogonal to the all-ones vector (already centred)."""
    a = randn(n, k, seed=seed)
    q, _ = torch.linalg.qr(a - a.mean(0))
    return q


# ------------------------------------------------------------------------------------------------------ CKA
@pytest.mark.parametrize("form", ["feature", "gram"])
@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_is_one_for_identical_inputs(form, debiased):
    x = randn(60, 8)
    assert float(linear_cka(x, x, form=form, debiased=debiased)) == pytest.approx(1, abs=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_invariant_to_rotation_and_isotropic_scaling(debiased):
    x, z = randn(80, 10), randn(80, 6, seed=5)
    y = 3.7 * x @ orthogonal(10) + 2.0  # rotate, scale, translate
    assert float(linear_cka(x, y, debiased=debiased)) == pytest.approx(1, abs=1e-12)
    torch.testing.assert_close(linear_cka(y, z, debiased=debiased), linear_cka(x, z, debiased=debiased), **TOL)


def test_linear_cka_not_invariant_to_general_invertible_maps():
    x, z = randn(200, 10), randn(200, 6, seed=5)
    stretch = torch.diag(torch.logspace(0, 2, 10, dtype=F64)) @ orthogonal(10)  # invertible, anisotropic
    assert float(linear_cka(x, x @ stretch)) < 0.8
    assert abs(float(linear_cka(x @ stretch, z)) - float(linear_cka(x, z))) > 1e-3
    assert float(cca_similarity(x, x @ stretch)) == pytest.approx(1, abs=1e-10)  # CCA does not see it


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("shape", [(50, 7, 5), (12, 30, 40)])  # d < n (feature form cheaper) and d > n
def test_feature_form_equals_gram_form(debiased, shape):
    n, dx, dy = shape
    x, y = randn(n, dx), randn(n, dy, seed=3) + randn(n, dx)[:, :1]
    torch.testing.assert_close(linear_cka(x, y, debiased=debiased, form="feature"),
                               linear_cka(x, y, debiased=debiased, form="gram"), **TOL)
    torch.testing.assert_close(linear_hsic(x, y, unbiased=debiased),
                               hsic(gram_linear(x), gram_linear(y), unbiased=debiased), **TOL)


def test_linear_cka_never_builds_an_n_by_n_matrix_when_d_is_small():
    # 200k x 200k float64 would be 320 GB: only the feature form can return here
    n = 200_000
    x = torch.randn(n, 8, generator=gen(0))
    y = x[:, :4] + 0.1 * torch.randn(n, 4, generator=gen(1))
    value = float(linear_cka(x, y, debiased=True))
    assert 0.3 < value < 1


def test_biased_hsic_matches_its_trace_definition():
    x, y = randn(9, 3), randn(9, 4, seed=1)
    k, l = gram_linear(x), gram_rbf(y)
    h = torch.eye(9, dtype=F64) - 1 / 9
    torch.testing.assert_close(hsic(k, l), torch.trace(k @ h @ l @ h) / 8**2, **TOL)
    torch.testing.assert_close(center_gram(k), h @ k @ h, **TOL)


def _u_statistic(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012): HSIC_1 = mean over distinct ordered (t, u, v, w) of K_tu L_tu + K_tu L_vw - 2 K_tu L_tv."""
    n = len(k)
    t, u, v, w = np.array(list(itertools.permutations(range(n), 4))).T
    return float(np.mean(k[t, u] * l[t, u] + k[t, u] * l[v, w] - 2 * k[t, u] * l[t, v]))


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_unbiased_hsic_equals_the_u_statistic(kernel):
    x, y = randn(7, 3), randn(7, 2, seed=1)
    x[:, 0] += 2 * y[:, 0]  # dependent, so the value is far from 0
    k, l = (gram_linear(x), gram_linear(y)) if kernel == "linear" else (gram_rbf(x), gram_rbf(y))
    expected = _u_statistic(k.numpy(), l.numpy())
    assert float(hsic(k, l, unbiased=True)) == pytest.approx(expected, rel=1e-10)
    if kernel == "linear":
        assert float(linear_hsic(x, y, unbiased=True)) == pytest.approx(expected, rel=1e-10)


def test_unbiased_hsic_is_unbiased_and_the_biased_one_is_not():
    draws, n = 4000, 6
    # independent x, y: population HSIC is 0
    x, y = randn(draws, n, 3, seed=0), randn(draws, n, 3, seed=1)
    u, b = linear_hsic(x, y, unbiased=True), linear_hsic(x, y)
    se = float(u.std()) / math.sqrt(draws)
    assert abs(float(u.mean())) < 4 * se
    assert float(b.mean()) > 20 * float(b.std()) / math.sqrt(draws)  # biased: clearly positive
    # y = x A^T + noise, x ~ N(0, I): linear-kernel HSIC is ||Cov(x, y)||_F^2 = ||A||_F^2
    a = torch.tensor([[1.0, 0.5, 0.0], [0.0, -1.0, 0.3]], dtype=F64)
    y = x @ a.T + randn(draws, n, 2, seed=2)
    u = linear_hsic(x, y, unbiased=True)
    target = float(a.square().sum())
    assert abs(float(u.mean()) - target) < 4 * float(u.std()) / math.sqrt(draws)
    assert abs(float(linear_hsic(x, y).mean()) - target) > 0.2  # the biased estimator misses it at n = 6


def test_gram_rbf_median_rules_known_answer():
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=F64)  # squared distances 1, 9, 4
    # all 9 entries [0, 0, 0, 1, 1, 4, 4, 9, 9] -> median 1; the 3 distinct pairs -> median 4
    assert float(gram_rbf(x, median="all")[0, 1]) == pytest.approx(math.exp(-1 / 2))
    assert float(gram_rbf(x, median="pairs")[0, 1]) == pytest.approx(math.exp(-1 / 8))
    assert float(gram_rbf(x, 0.5, median="pairs")[0, 2]) == pytest.approx(math.exp(-9 / (2 * 0.25 * 4)))
    assert float(gram_rbf(x, sigma=1.0)[1, 2]) == pytest.approx(math.exp(-2))


@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_identity_and_invariances(debiased):
    x, z = randn(40, 5), randn(40, 3, seed=4)
    y = 0.3 * x @ orthogonal(5) - 1.0
    assert float(rbf_cka(x, x, debiased=debiased)) == pytest.approx(1, abs=1e-12)
    assert float(rbf_cka(x, y, debiased=debiased)) == pytest.approx(1, abs=1e-10)
    torch.testing.assert_close(rbf_cka(y, z, debiased=debiased), rbf_cka(x, z, debiased=debiased), **TOL)
    assert float(rbf_cka(x, z)) < 0.5


def test_minibatch_cka_one_batch_is_debiased_cka():
    x, y = randn(64, 6), randn(64, 4, seed=1) + randn(64, 6)[:, :4]
    acc = MinibatchCKA().update(x, y)
    torch.testing.assert_close(acc.compute(), linear_cka(x, y, debiased=True), **TOL)


def test_minibatch_cka_converges_to_full_cka():
    n = 4096
    x = randn(n, 12)
    y = torch.tanh(x[:, :6] @ randn(6, 8, seed=1)) + 0.5 * randn(n, 8, seed=2)
    full = float(linear_cka(x, y, debiased=True))
    est = float(minibatch_cka(x, y, 128, generator=gen(3), epochs=2))
    assert est == pytest.approx(full, abs=0.01)
    assert est == pytest.approx(float(linear_cka(x, y)), abs=0.02)  # at n = 4096 the bias is small too


def test_minibatch_cka_grid_matches_pairwise_accumulation():
    n, m = 256, 64
    layers_a = [randn(n, 5, seed=s) for s in range(2)]
    layers_b = [layers_a[0] @ randn(5, 3, seed=9), randn(n, 4, seed=7), layers_a[1]]
    grid_acc, one = MinibatchCKA(), MinibatchCKA()
    for start in range(0, n, m):
        sl = slice(start, start + m)
        grid_acc.update([h[sl] for h in layers_a], [h[sl] for h in layers_b])
        one.update(layers_a[1][sl], layers_b[1][sl])
    grid = grid_acc.compute()
    assert grid.shape == (2, 3)
    torch.testing.assert_close(grid[1, 1], one.compute(), **TOL)
    assert float(grid[1, 2]) == pytest.approx(1, abs=1e-12)
    assert float(grid[0, 0]) > 0.5 > abs(float(grid[0, 1]))


# ------------------------------------------------------------------------------------------------------ CCA
def test_canonical_correlations_recover_planted_angles():
    n, thetas = 100, torch.tensor([0.3, 1.1], dtype=F64)
    u = centred_orthonormal(n, 4)
    x = u[:, :2]
    y = torch.cos(thetas) * u[:, :2] + torch.sin(thetas) * u[:, 2:]
    a, b = randn(2, 2, seed=7), randn(2, 2, seed=8)  # invertible maps must not matter
    torch.testing.assert_close(canonical_correlations(x @ a + 5, y @ b), torch.cos(thetas), **TOL)
    assert float(cca_similarity(x, y)) == pytest.approx(float(torch.cos(thetas).mean()))
    assert float(cca_similarity(x, y, summary="mean_sq")) == pytest.approx(float(torch.cos(thetas).square().mean()))
    torch.testing.assert_close(principal_angles(x, y), thetas, **TOL)


def test_cca_family_is_one_for_x_and_invertible_maps_of_x():
    x = randn(120, 9)
    a = randn(9, 9, seed=3) + 3 * torch.eye(9, dtype=F64)
    assert float(svcca(x, x)) == pytest.approx(1, abs=1e-10)
    assert float(svcca(x, x, keep=4)) == pytest.approx(1, abs=1e-10)
    assert float(pwcca(x, x)) == pytest.approx(1, abs=1e-10)
    assert float(cca_similarity(x, x @ a)) == pytest.approx(1, abs=1e-10)
    assert float(pwcca(x, x @ a)) == pytest.approx(1, abs=1e-10)
    assert float(svcca(x, x @ a, keep=1.0)) == pytest.approx(1, abs=1e-10)
    assert float(svcca(x, randn(120, 9, seed=4))) < 0.5


def test_pwcca_weights_known_answer():
    # x's canonical variates are u1 (rho 1) and u2 (rho cos t); x loads 10 on u1 and 1 on u2
    n, t = 50, 0.8
    u = centred_orthonormal(n, 3)
    x = torch.stack([10 * u[:, 0], u[:, 1]], 1)
    y = torch.stack([u[:, 0], math.cos(t) * u[:, 1] + math.sin(t) * u[:, 2]], 1)
    assert float(pwcca(x, y)) == pytest.approx((10 + math.cos(t)) / 11, rel=1e-10)
    assert float(cca_similarity(x, y)) == pytest.approx((1 + math.cos(t)) / 2, rel=1e-10)


def test_n_components_rules_and_the_reference_code_quirk():
    s = torch.tensor([3.0, 2.0, 1.0], dtype=F64)  # variance fractions 9/14, 13/14, 1
    assert int(n_components(s, 0.99)) == 3
    assert int(n_components(s, 0.9)) == 2
    assert int(n_components(s, 0.5)) == 1
    assert int(n_components(s, 2)) == 2
    assert int(n_components(s, 1.0)) == 3
    # total variance 14 > 1 / 0.99: the reference comparison never holds and keeps 1 direction
    assert int(n_components(s, 0.99, rule="univ_feat_geom")) == 1
    # with unit total variance the two rules coincide
    unit = s / s.square().sum().sqrt()
    assert int(n_components(unit, 0.99, rule="univ_feat_geom")) == int(n_components(unit, 0.99)) == 3


def test_svcca_reference_rule_reduces_to_top_component_correlation():
    x = randn(300, 6) * torch.tensor([5.0, 3, 2, 1, 1, 1], dtype=F64)
    y = x @ randn(6, 6, seed=2) + randn(300, 6, seed=3)
    xc, yc = x - x.mean(0), y - y.mean(0)
    pc_x = torch.linalg.svd(xc, full_matrices=False)[0][:, 0]
    pc_y = torch.linalg.svd(yc, full_matrices=False)[0][:, 0]
    top = abs(float(pc_x @ pc_y))  # |Pearson| of the two top principal components (both centred, unit norm)
    assert float(svcca(x, y, rule="univ_feat_geom")) == pytest.approx(top, rel=1e-10)
    assert abs(float(svcca(x, y)) - top) > 0.05  # the stated 99% rule keeps more directions
    # a fixed k is CCA between the top-k principal subspaces
    ux = torch.linalg.svd(xc, full_matrices=False)[0][:, :2]
    uy = torch.linalg.svd(yc, full_matrices=False)[0][:, :2]
    assert float(svcca(x, y, keep=2)) == pytest.approx(float(canonical_correlations(ux, uy).mean()), rel=1e-10)
    ux5 = torch.linalg.svd(xc, full_matrices=False)[0][:, :5]  # a pair of counts: 5 directions of x, 2 of y
    assert float(svcca(x, y, keep=(5, 2))) == pytest.approx(float(canonical_correlations(ux5, uy).mean()),
                                                            rel=1e-10)


# ----------------------------------------------------------------------------------------------- Procrustes
def test_procrustes_zero_for_rotated_copies_and_recovers_the_rotation():
    x, q = randn(40, 6), orthogonal(6)
    y = 2.5 * x @ q + 1.0
    assert float(procrustes_distance(x, y)) == pytest.approx(0, abs=1e-6)
    assert float(procrustes_distance(x, y, kind="angular")) == pytest.approx(0, abs=1e-6)
    torch.testing.assert_close(orthogonal_procrustes(x, x @ q), q, **TOL)
    wide = torch.cat([x @ q, torch.zeros(40, 3, dtype=F64)], 1)  # unequal widths: zero-padding is invisible
    assert float(procrustes_distance(x, wide)) == pytest.approx(0, abs=1e-6)


def test_procrustes_known_angle():
    t = 0.7
    u = centred_orthonormal(30, 2)
    x, y = u[:, :1], math.cos(t) * u[:, :1] + math.sin(t) * u[:, 1:]
    assert float(procrustes_similarity(x, y)) == pytest.approx(math.cos(t))
    assert float(procrustes_distance(x, y, kind="angular")) == pytest.approx(t)
    assert float(procrustes_distance(x, y)) == pytest.approx(math.sqrt(2 - 2 * math.cos(t)))


# ------------------------------------------------------------------------------------------------------ RSA
def test_rdms_match_scipy():
    x = randn(12, 5)
    for metric, ref in [("correlation", "correlation"), ("cosine", "cosine"), ("euclidean", "euclidean"),
                        ("sqeuclidean", "sqeuclidean")]:
        expected = scipy.spatial.distance.squareform(scipy.spatial.distance.pdist(x.numpy(), ref))
        np.testing.assert_allclose(rdm(x, metric).numpy(), expected, rtol=1e-9, atol=1e-12)


def test_rank_and_spearman_match_scipy_with_ties():
    v = torch.tensor([[3.0, 1, 2, 2, 5, 1, 1], [0.5, 0.5, 0.5, 0.5, 2, 1, 0]], dtype=F64)
    np.testing.assert_allclose(rank(v).numpy(), scipy.stats.rankdata(v.numpy(), axis=1))
    a, b = v[0], torch.tensor([1.0, 2, 2, 4, 4, 0, 3], dtype=F64)
    assert float(spearman(a, b)) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, rel=1e-12)


def test_rsa_identity_invariance_and_independence():
    x = randn(30, 8)
    assert float(rsa(x, x)) == pytest.approx(1, abs=1e-12)
    assert float(rsa(x, 2 * x @ orthogonal(8) + 3, metric="euclidean")) == pytest.approx(1, abs=1e-12)
    assert float(rsa(x, x * 4 + 1, compare="pearson")) == pytest.approx(1, abs=1e-12)  # per-row affine
    assert abs(float(rsa(x, randn(30, 3, seed=9)))) < 0.2
    d = rdm(x)
    assert float(compare_rdms(d, d.square())) == pytest.approx(1)  # Spearman sees only the order


# ---------------------------------------------------------------------------------------------------- nulls
def test_null_summary_known_answer():
    res = null_summary(0.5, [0.1, 0.6, 0.7, 0.2])
    assert (res.p_value, res.p_value_uncorrected, res.percentile) == (3 / 5, 2 / 4, 50.0)
    low = null_summary(0.15, [0.1, 0.6, 0.7, 0.2], alternative="less")
    assert low.p_value == pytest.approx(2 / 5)


def test_true_pairing_beats_the_99th_percentile_and_a_random_one_does_not():
    x = randn(60, 5)
    y = x[:, :3] @ randn(3, 4, seed=1) + randn(60, 4, seed=2)
    g = gen(0)
    true = permutation_null(linear_cka, x, y, 500, generator=g)
    assert true.exceeds(0.99) and true.p_value <= 1 / 501 + 1e-12 and true.percentile == 100
    unrelated = permutation_null(linear_cka, x, randn(60, 4, seed=3), 500, generator=g)
    assert not unrelated.exceeds(0.99) and unrelated.p_value > 0.05


@pytest.mark.parametrize("statistic", [linear_cka, svcca, rsa])
def test_permutation_p_values_are_calibrated_under_independence(statistic):
    # 200 independent experiments: p <= 0.1 should happen about 10% of the time (binomial sd 2.1%)
    x_all, y_all = randn(200, 20, 3, seed=11), randn(200, 20, 2, seed=12)
    g = gen(1)
    p = torch.tensor([permutation_null(statistic, x_all[i], y_all[i], 39, generator=g).p_value for i in range(200)])
    assert 0.035 <= float((p <= 0.1).double().mean()) <= 0.17


def test_resampling_null_rejects_statistics_that_do_not_score_each_pair():
    def draw(g, b):
        return randn(10, 2), randn(b, 10, 2)

    with pytest.raises(ValueError, match="values for a batch"):
        resampling_null(lambda x, y: linear_cka(x, y).mean(), draw, 5, observed=0.1, batch_size=5)


BATCHED = [linear_cka, lambda x, y: linear_cka(x, y, debiased=True, form="gram"), rbf_cka, cca_similarity,
           svcca, lambda x, y: svcca(x, y, keep=2), pwcca, procrustes_distance, rsa,
           lambda x, y: linear_hsic(x, y, unbiased=True)]


@pytest.mark.parametrize("measure", BATCHED)
def test_batched_calls_equal_one_by_one_calls(measure):
    x, ys = randn(25, 4), randn(3, 25, 5, seed=1)
    ys[0] = torch.cat([x, x[:, :1]], 1)  # one highly similar element in the batch
    batched = measure(x, ys)
    assert batched.shape == (3,)
    torch.testing.assert_close(batched, torch.stack([measure(x, y) for y in ys]), rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------------------------------------------- matching
def test_matching_recovers_a_permutation_of_units():
    x = randn(100, 7)
    perm = torch.randperm(7, generator=gen(4))
    y = 3 * x[:, perm] + 1  # y's unit j is x's unit perm[j]
    m = match_units(x, y)
    assert m.mean == pytest.approx(1)
    assert torch.equal(perm[m.y_units], m.x_units)
    values, idx = max_correlation(x, y, block_size=3)  # blocks that do not divide d
    assert torch.equal(idx, perm) and torch.allclose(values, torch.ones(7, dtype=F64))
    np.testing.assert_allclose(correlation_matrix(x, y[:, :2]).numpy(),
                               np.corrcoef(x.numpy().T, y[:, :2].numpy().T)[:7, 7:], atol=1e-12)
    semi = match_units(x, torch.cat([y, y[:, :1]], 1), method="max")
    assert semi.mean == pytest.approx(1) and len(semi.x_units) == 7


def test_dead_units_are_reported():
    x = randn(20, 3)
    x[:, 1] = 0.0
    with pytest.raises(ValueError, match="1 columns of x are constant"):
        correlation_matrix(x, randn(20, 2))


# -------------------------------------------------------------------------------------------- bad inputs
BAD_CALLS = [
    (lambda: linear_cka(torch.zeros(10), torch.zeros(10)), r"\[\.\.\., n, d\]"),
    (lambda: linear_cka(randn(10, 3), randn(11, 3)), "same examples"),
    (lambda: linear_cka(randn(2, 10, 3), randn(3, 10, 3)), "do not broadcast"),
    (lambda: linear_cka(randn(10, 3) * float("nan"), randn(10, 3)), "NaN"),
    (lambda: linear_cka(randn(10, 3), randn(10, 3), form="fast"), "allowed: 'auto', 'feature', 'gram'"),
    (lambda: linear_cka(randn(3, 3), randn(3, 3), debiased=True), "at least 4 examples"),
    (lambda: hsic(randn(5, 4), randn(5, 5)), "square Gram matrix"),
    (lambda: gram_rbf(torch.zeros(5, 2, dtype=F64)), "pass sigma"),
    (lambda: gram_rbf(randn(5, 2), median="mean"), "allowed: 'all', 'pairs'"),
    (lambda: kernel_cka(randn(5, 5), randn(6, 6)), "same n examples"),
    (lambda: svcca(randn(10, 3), randn(10, 3), keep=1.5), r"\(0, 1\]"),
    (lambda: svcca(randn(10, 3), randn(10, 3), keep=4), r"only 1\.\.3 exist"),
    (lambda: svcca(randn(10, 3), randn(10, 3), rule="google"), "allowed: 'normalised'"),
    (lambda: cca_similarity(randn(10, 3), randn(10, 3), summary="max"), "allowed: 'mean', 'mean_sq'"),
    (lambda: cca_similarity(torch.ones(10, 3, dtype=F64), randn(10, 3)), "constant"),
    (lambda: canonical_correlations(randn(2, 10, 3), randn(10, 3)), "unbatched"),
    (lambda: principal_angles(randn(5, 2), randn(6, 2)), "same dimension D"),
    (lambda: principal_angles(torch.ones(5, 2, dtype=F64), randn(5, 2)), "linearly dependent"),
    (lambda: procrustes_distance(torch.ones(5, 2), randn(5, 2)), "constant"),
    (lambda: procrustes_distance(randn(5, 2), randn(5, 2), kind="cosine"), "allowed: 'euclidean', 'angular'"),
    (lambda: rdm(randn(5, 2), metric="manhattan"), "allowed: 'correlation'"),
    (lambda: rdm(torch.ones(5, 3)), "rows of x are constant"),
    (lambda: rsa(randn(5, 2), randn(5, 2), compare="kendall"), "allowed: 'spearman', 'pearson'"),
    (lambda: permutation_null(linear_cka, randn(2, 5, 2), randn(5, 2)), "unbatched"),
    (lambda: permutation_null(linear_cka, randn(5, 2), randn(5, 2), 0), "n_permutations"),
    (lambda: permutation_null(linear_cka, randn(5, 2), randn(5, 2), alternative="two-sided"), "allowed"),
    (lambda: null_summary(0.1, []), "empty"),
    (lambda: null_summary(0.1, [0.2]).quantile(1.5), r"\[0, 1\]"),
    (lambda: minibatch_cka(randn(20, 2), randn(20, 2), 3), "batch_size"),
    (lambda: MinibatchCKA().compute(), "no batch seen"),
    (lambda: MinibatchCKA().update([randn(8, 2), randn(9, 2)], randn(8, 2)), "same m examples"),
    (lambda: MinibatchCKA().update(randn(8, 2), randn(9, 2)), "same minibatch"),
    (lambda: MinibatchCKA().update(randn(8, 2), randn(8, 2)).update([randn(8, 2)] * 2, randn(8, 2)), "grid"),
    (lambda: match_units(randn(5, 2), randn(5, 2), method="greedy"), "allowed: 'hungarian', 'max'"),
    (lambda: max_correlation(randn(5, 2), randn(5, 2), block_size=0), "block_size"),
    (lambda: n_components(torch.tensor([1.0]), True), "keep must be"),
]


@pytest.mark.parametrize("call, message", BAD_CALLS)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------------------------- devices
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("measure", BATCHED + [lambda x, y: minibatch_cka(x, y, 8, generator=gen(0))])
def test_cuda_matches_cpu(measure):
    x, y = randn(40, 4), randn(40, 5, seed=1) + randn(40, 4)[:, :1]
    torch.testing.assert_close(measure(x.cuda(), y.cuda()).cpu(), measure(x, y), rtol=1e-7, atol=1e-9)


def test_minibatch_cka_is_stable_under_a_huge_feature_offset():
    # HSIC_1 is shift-invariant; a massive constant activation must not wreck it through cancellation
    x, y = randn(60, 256), randn(60, 256, seed=1) + randn(60, 256)
    shifted = x.clone()
    shifted[:, 0] += 1e5
    acc = MinibatchCKA().update(shifted + 1e3, y)
    torch.testing.assert_close(acc.compute(), linear_cka(x, y, debiased=True), rtol=1e-9, atol=1e-9)
