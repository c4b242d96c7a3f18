"""interpbook.attacks: PGD in a coordinate subspace, lp projections, masks and the collapse analysis.

Known answers, captum-style: the threat set is never left; on a linear logit PGD reaches the closed form
``eps * ||w_S||_q`` and the minimal budget ``margin / ||w_S||_q``; the l1 projection matches an
independent bisection and satisfies the projection's variational inequality; the collapse fit recovers an
exponent planted in synthetic data.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from interpbook.attacks import (
    collapse_fit,
    linear_max_change,
    loglog_slope,
    lp_norm,
    max_violation,
    minimal_epsilon,
    patch_masks,
    perturb,
    pixel_masks,
    project_l1_ball,
    project_lp_ball,
    success_grid,
)
from interpbook.models import MLP, Linear

NORM_TOL = 1e-5  # float32 slack on ||x_adv - x||_p <= eps
SHAPE = (1, 8, 8)
D = math.prod(SHAPE)
# (norm, l1_method, p, q): p is the ball's exponent, q its dual
NORMS = [("inf", "slide", math.inf, 1.0), (2, "slide", 2.0, 2.0), (1, "slide", 1.0, math.inf),
         (1, "steepest", 1.0, math.inf)]


def _mlp_batch(n=12, seed=0):
    torch.manual_seed(seed)
    model = MLP(SHAPE, hidden=(16,), classes=3)
    x = torch.rand(n, *SHAPE)
    y = torch.randint(0, 3, (n,))
    return model, x, y


# --- PGD never leaves the threat set ------------------------------------------------------------------


@pytest.mark.parametrize("keep_best", [False, True])
@pytest.mark.parametrize("random_start", [False, True])
@pytest.mark.parametrize("per_example_eps", [False, True])
@pytest.mark.parametrize("norm,l1_method,p,q", NORMS, ids=["inf", "l2", "l1-slide", "l1-steepest"])
def test_pgd_stays_in_ball_subspace_and_box(norm, l1_method, p, q, per_example_eps, random_start, keep_best):
    model, x, y = _mlp_batch()
    n = len(x)
    scale = {"inf": 0.3, 2: 2.0, 1: 4.0}[norm]  # large enough that the box binds for some pixels
    eps = scale * torch.rand(n) if per_example_eps else scale
    if per_example_eps:
        eps[0] = 0.0  # a zero budget must leave the input untouched
    mask = pixel_masks(n, SHAPE, [10], generator=torch.Generator().manual_seed(1))[0]
    gen = torch.Generator().manual_seed(2)
    adv = perturb(model, x, y, norm=norm, eps=eps, steps=8, mask=mask, random_start=random_start,
                  l1_method=l1_method, keep_best=keep_best, generator=gen)
    assert adv.shape == x.shape
    delta = adv - x
    budget = torch.as_tensor(eps).expand(n)
    assert (lp_norm(delta, p) <= budget + NORM_TOL).all(), (lp_norm(delta, p) - budget).max()
    assert torch.equal(adv[~mask], x[~mask]), "a coordinate outside the subspace moved"
    assert adv.min() >= 0 and adv.max() <= 1
    assert ((adv == 0) | (adv == 1))[mask].any(), "the box should bind somewhere to be tested"
    assert delta[mask].abs().max() > 0, "the attack did not move at all"
    if per_example_eps:
        assert torch.equal(adv[0], x[0])


@pytest.mark.parametrize("norm,p", [("inf", math.inf), (2, 2.0), (1, 1.0)])
def test_random_start_is_uniform_in_ball_and_subspace(norm, p):
    # steps=0 returns the random start. For a uniform point of a d-dimensional lp ball of radius eps,
    # P(||delta||_p <= t * eps) = t**d, so E||delta||_p = eps * d / (d + 1) for every p.
    torch.manual_seed(0)
    n, d, eps = 4000, 10, 0.2
    model = MLP(SHAPE, hidden=(4,), classes=2)
    x, y = torch.full((n, *SHAPE), 0.5), torch.zeros(n, dtype=torch.long)
    mask = pixel_masks(n, SHAPE, [d], generator=torch.Generator().manual_seed(1))[0]
    adv = perturb(model, x, y, norm=norm, eps=eps, steps=0, mask=mask, clip=None,
                  generator=torch.Generator().manual_seed(2))
    delta = adv - x
    assert torch.equal(adv[~mask], x[~mask])
    r = lp_norm(delta, p) / eps
    assert r.max() <= 1 + NORM_TOL
    assert r.mean().item() == pytest.approx(d / (d + 1), abs=0.01)
    assert (r <= 0.8).float().mean().item() == pytest.approx(0.8 ** d, abs=0.02)
    sign_balance = torch.sign(delta[mask]).mean().item()
    assert abs(sign_balance) < 0.05, "no direction is preferred"


def test_pgd_with_shared_mask_and_no_mask():
    model, x, y = _mlp_batch()
    shared = torch.zeros(SHAPE, dtype=torch.bool)
    shared[0, :2] = True  # the first two rows of every image
    adv = perturb(model, x, y, norm="inf", eps=0.1, steps=5, mask=shared)
    assert torch.equal(adv[:, 0, 2:], x[:, 0, 2:])
    assert (adv[:, 0, :2] != x[:, 0, :2]).any()
    full = perturb(model, x, y, norm="inf", eps=0.1, steps=5, random_start=False)
    assert (full != x).float().mean() > 0.5, "mask=None lets every coordinate move"


class _Tent(torch.nn.Module):
    """Two classes on one pixel t; class 1 wins on (0.53, 0.5705), rising slowly and falling steeply."""

    def forward(self, x):
        t = x.flatten(1)[:, 0]
        z1 = torch.minimum(100 * (t - 0.53), 1000 * (0.575 - t))
        return torch.stack([torch.zeros_like(t), z1], 1)


def test_keep_best_returns_the_first_misclassified_iterate():
    # sign steps of 0.02 climb 0.5, 0.52, 0.54 (wrong), 0.56 (wrong), 0.58 (right again), then fall back
    model, x, y = _Tent(), torch.full((1, 1, 1, 1), 0.5), torch.zeros(1, dtype=torch.long)
    kw = dict(eps=0.1, step_size=0.02, random_start=False)
    last = perturb(model, x, y, steps=4, **kw)
    assert last.item() == pytest.approx(0.58) and model(last).argmax(1).item() == 0
    best = perturb(model, x, y, steps=4, keep_best=True, **kw)
    assert best.item() == pytest.approx(0.54) and model(best).argmax(1).item() == 1
    # a misclassified last iterate is returned as it is
    assert perturb(model, x, y, steps=5, keep_best=True, **kw).item() == pytest.approx(0.56)


def test_pgd_restores_training_mode():
    model, x, y = _mlp_batch()
    model.train()
    perturb(model, x, y, eps=0.1, steps=2)
    assert model.training


# --- the linear toy model: the analytic optimum ---------------------------------------------------------


def _linear_problem(n=8, d=16, seed=0):
    """A two-class linear model on inputs at 0.5 (the box does not bind for small eps), one mask per row."""
    torch.manual_seed(seed)
    model = Linear(SHAPE, classes=2)
    with torch.no_grad():
        model.linear.weight.normal_()
        model.linear.bias.zero_()
    x = torch.full((n, *SHAPE), 0.5)
    y = torch.randint(0, 2, (n,))
    mask = pixel_masks(n, SHAPE, [d], generator=torch.Generator().manual_seed(seed))[0]
    return model, x, y, mask


def _margin(model, x, y):
    """``z_y - z_other`` for a two-class model: the cross-entropy ascent drives it down."""
    z = model(x)
    return (z.gather(1, y[:, None]) - z.gather(1, 1 - y[:, None])).squeeze(1)


def _w_true(model, y):
    """``W[y] - W[1 - y]`` per example, ``[n, D]``: the margin's gradient."""
    w = model.weight.detach()
    return w[y] - w[1 - y]


@pytest.mark.parametrize("clip", [(0.0, 1.0), None])
@pytest.mark.parametrize("norm,eps", [("inf", 0.05), (2, 0.3), (1, 0.3)])
def test_pgd_reaches_linear_optimum(norm, eps, clip):
    model, x, y, mask = _linear_problem()
    adv = perturb(model, x, y, norm=norm, eps=eps, steps=40, mask=mask, random_start=False, clip=clip,
                  l1_method="steepest")
    with torch.no_grad():
        decrease = _margin(model, x, y) - _margin(model, adv, y)
    optimum = linear_max_change(_w_true(model, y), mask.flatten(1).float(), eps, norm)
    torch.testing.assert_close(decrease, optimum, rtol=0.01, atol=0)


@pytest.mark.parametrize("norm", ["inf", 2, 1])
def test_one_step_moves_step_size_along_the_steepest_direction(norm):
    # eps large enough not to bind: one step of size alpha changes the margin by alpha * ||w_S||_q
    model, x, y, mask = _linear_problem()
    alpha = 0.02
    adv = perturb(model, x, y, norm=norm, eps=1.0, steps=1, step_size=alpha, mask=mask, random_start=False,
                  l1_method="steepest")
    with torch.no_grad():
        decrease = _margin(model, x, y) - _margin(model, adv, y)
    torch.testing.assert_close(decrease, linear_max_change(_w_true(model, y), mask.flatten(1).float(), alpha, norm),
                               rtol=1e-4, atol=0)
    p = {"inf": math.inf, 2: 2.0, 1: 1.0}[norm]
    torch.testing.assert_close(lp_norm(adv - x, p), torch.full((len(x),), alpha), rtol=1e-4, atol=0)


def test_one_slide_step_spreads_over_the_top_fraction():
    # SLIDE with sparsity 0.75 on a 16-pixel subspace moves the top ceil(0.25 * 16) = 4 coordinates by
    # alpha / 4 each: the margin falls by alpha * mean(top-4 |w_S|)
    model, x, y, mask = _linear_problem()
    alpha = 0.02
    adv = perturb(model, x, y, norm=1, eps=1.0, steps=1, step_size=alpha, mask=mask, random_start=False,
                  l1_method="slide", l1_sparsity=0.75)
    with torch.no_grad():
        decrease = _margin(model, x, y) - _margin(model, adv, y)
    top4 = (_w_true(model, y) * mask.flatten(1)).abs().topk(4, dim=1).values
    torch.testing.assert_close(decrease, alpha * top4.mean(1), rtol=1e-4, atol=0)
    assert torch.equal(((adv - x).flatten(1) != 0).sum(1), torch.full((len(x),), 4))


def test_l1_steps_skip_coordinates_pinned_at_the_box():
    # the best coordinate already sits at the box edge in its ascent direction: steepest l1 moves the next one
    model, x, y, mask = _linear_problem()
    ascent = -_w_true(model, y) * mask.flatten(1)  # the direction that lowers the margin
    order = ascent.abs().argsort(1, descending=True)
    first, second = order[:, 0], order[:, 1]
    xf = x.flatten(1).clone()
    rows = torch.arange(len(x))
    xf[rows, first] = (ascent[rows, first] > 0).float()  # 1 where it wants to rise, 0 where it wants to fall
    x = xf.view_as(x)
    adv = perturb(model, x, y, norm=1, eps=1.0, steps=1, step_size=0.02, mask=mask, random_start=False,
                  l1_method="steepest")
    moved = (adv - x).flatten(1)
    assert torch.equal(moved.ne(0).sum(1), torch.ones(len(x), dtype=torch.long))
    torch.testing.assert_close(moved[rows, second], 0.02 * ascent[rows, second].sign())


@pytest.mark.parametrize("norm,l1_method,p,q", NORMS, ids=["inf", "l2", "l1-slide", "l1-steepest"])
def test_no_attack_beats_the_linear_bound(norm, l1_method, p, q):
    model, x, y, mask = _linear_problem(seed=1)
    eps = 0.05 if norm == "inf" else 0.3
    adv = perturb(model, x, y, norm=norm, eps=eps, steps=20, mask=mask, l1_method=l1_method,
                  generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        decrease = _margin(model, x, y) - _margin(model, adv, y)
    bound = linear_max_change(_w_true(model, y), mask.flatten(1).float(), eps, norm)
    assert (decrease <= bound * (1 + 1e-5) + 1e-6).all()


def test_linear_max_change_matches_brute_force():
    torch.manual_seed(0)
    w = torch.randn(10, dtype=torch.float64)
    mask = torch.zeros(10, dtype=torch.float64)
    support = [0, 2, 3, 5, 7, 9]  # a 6-dimensional subspace
    mask[support] = 1
    # a float64 tensor: a Python float would be turned into a float32 tensor (1e-8 relative error)
    eps = torch.tensor(0.37, dtype=torch.float64)
    # l_inf: a linear function peaks at a vertex of the cube: enumerate all 2**6 sign vectors
    best_inf = max(eps.item() * sum(s * w[i].item() for s, i in zip(signs, support))
                   for signs in itertools.product((-1, 1), repeat=len(support)))
    # l1: the vertices of the cross-polytope are +-eps * e_i
    best_l1 = max(eps.item() * abs(w[i].item()) for i in support)
    # l2: the maximiser is eps * w_S / ||w_S||, and no random direction in the ball beats it
    w_s = w * mask
    best_l2 = float(w_s @ (eps * w_s / w_s.norm()))
    dirs = torch.randn(2000, 10, dtype=torch.float64) * mask
    dirs = eps * dirs / dirs.norm(dim=1, keepdim=True)
    assert (dirs @ w).max() <= best_l2 + 1e-12
    assert linear_max_change(w, mask, eps, "inf").item() == pytest.approx(best_inf, rel=1e-12)
    assert linear_max_change(w, mask, eps, 1).item() == pytest.approx(best_l1, rel=1e-12)
    assert linear_max_change(w, mask, eps, 2).item() == pytest.approx(best_l2, rel=1e-12)
    batched = linear_max_change(w, torch.stack([mask, torch.ones(10, dtype=torch.float64)]), eps, "inf")
    assert batched.shape == (2,) and batched[1].item() == pytest.approx(eps.item() * w.abs().sum().item())


def _minimal_problem(norm, n=16, seed=0):
    """Linear model, inputs near 0.5, labels = predictions; the closed-form minimal budget per example."""
    model, _, _, mask = _linear_problem(n=n, seed=seed)
    q = {"inf": 1.0, 2: 2.0, 1: math.inf}[norm]
    gen = torch.Generator().manual_seed(seed)
    x = 0.5 + 0.02 * torch.randn(n, *SHAPE, generator=gen)
    with torch.no_grad():
        # centre the logits so that margins are O(0.1) and the optimal perturbation stays inside the box
        model.linear.bias.copy_(-model(torch.full((1, *SHAPE), 0.5))[0] + torch.tensor([0.0, 0.3]))
        y = model(x).argmax(1)
        margin = _margin(model, x, y)
    w = _w_true(model, y) * mask.flatten(1)
    closed = margin / torch.linalg.vector_norm(w, ord=q, dim=1)
    # the optimal perturbation's largest coordinate: it must not reach the box
    top = {"inf": closed, 2: closed * w.abs().max(1).values / w.norm(dim=1), 1: closed}[norm]
    assert (top * 1.01 < 0.4).all() and (margin > 0).all()
    return model, x, y, mask, closed


@pytest.mark.parametrize("norm", ["inf", 2, 1])
def test_minimal_epsilon_matches_closed_form(norm):
    model, x, y, mask, closed = _minimal_problem(norm)
    eps_star = minimal_epsilon(model, x, y, norm=norm, mask=mask, eps_max=2 * closed, iters=20, steps=20,
                               random_start=False, l1_method="steepest")
    torch.testing.assert_close(eps_star, closed, rtol=0.005, atol=0)
    assert (eps_star >= closed * (1 - 1e-4)).all(), "PGD cannot succeed below the analytic minimum"


def test_minimal_epsilon_is_inf_where_the_bracket_is_too_small():
    model, x, y, mask, closed = _minimal_problem("inf")
    eps_max = closed * torch.where(torch.arange(len(x)) % 2 == 0, 2.0, 0.5)
    eps_star = minimal_epsilon(model, x, y, norm="inf", mask=mask, eps_max=eps_max, iters=12,
                               random_start=False)
    assert torch.isinf(eps_star[1::2]).all()
    assert torch.isfinite(eps_star[::2]).all()
    torch.testing.assert_close(eps_star[::2], closed[::2], rtol=0.005, atol=0)


@pytest.mark.parametrize("norm", ["inf", 2])
def test_success_grid_on_linear_model_matches_closed_form(norm):
    model, x, y, _, _ = _minimal_problem(norm, n=24, seed=3)
    dims = [4, 16, 64]
    masks = pixel_masks(len(x), SHAPE, dims, generator=torch.Generator().manual_seed(5))
    eps_grid = [0.01, 0.03, 0.1] if norm == "inf" else [0.03, 0.1, 0.3]
    grid = success_grid(model, x, y, norm=norm, eps_grid=eps_grid, masks=masks, steps=20, random_start=False,
                        chunk=50)  # chunk < rows: the chunking must not reorder results
    assert grid.shape == (len(dims), len(eps_grid))
    with torch.no_grad():
        margin = _margin(model, x, y)
    w = _w_true(model, y)
    expected = np.array([[(linear_max_change(w, m.flatten(1).float(), e, norm) > margin).float().mean().item()
                          for e in eps_grid] for m in masks])
    np.testing.assert_allclose(grid, expected, atol=1.5 / len(x))  # one example may sit on the threshold
    assert max_violation(grid) == 0
    assert 0 < grid.mean() < 1, "the grid should cover both outcomes to be informative"


# --- projections ------------------------------------------------------------------------------------------


def _l1_projection_by_bisection(v: np.ndarray, r: float) -> np.ndarray:
    """Soft-threshold ``v`` at the theta solving ``sum(max(|v| - theta, 0)) = r``, found by bisection."""
    a = np.abs(v)
    if a.sum() <= r:
        return v.copy()
    lo, hi = 0.0, a.max()
    while hi - lo > 1e-12:
        theta = (lo + hi) / 2
        lo, hi = (theta, hi) if np.maximum(a - theta, 0).sum() > r else (lo, theta)
    return np.sign(v) * np.maximum(a - (lo + hi) / 2, 0)


def test_project_l1_ball_is_exact():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 5)) * rng.uniform(0.1, 3, size=(200, 1))
    r = rng.uniform(0.05, 4, size=200)
    p = project_l1_ball(torch.tensor(v), torch.tensor(r)).numpy()
    ref = np.stack([_l1_projection_by_bisection(vi, ri) for vi, ri in zip(v, r)])
    np.testing.assert_allclose(p, ref, atol=1e-9)
    outside = np.abs(v).sum(1) > r
    assert 20 < outside.sum() < 200, "both cases should occur"
    np.testing.assert_allclose(np.abs(p[outside]).sum(1), r[outside], rtol=1e-12)
    assert np.array_equal(p[~outside], v[~outside]), "rows inside the ball are returned unchanged"
    # variational inequality <v - p, z - p> <= 0 for every z in the ball: random points of the ball ...
    z = rng.normal(size=(200, 500, 5))
    z = z / np.abs(z).sum(2, keepdims=True) * (r[:, None, None] * rng.uniform(0, 1, size=(200, 500, 1)))
    vi = np.einsum("nd,nkd->nk", v - p, z - p[:, None, :])
    assert vi.max() <= 1e-6
    # ... and its vertices +-r e_i, where the linear form <v - p, z> peaks
    assert (r * np.abs(v - p).max(1) - ((v - p) * p).sum(1)).max() <= 1e-6


def test_project_l1_ball_edge_cases():
    v = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, -1.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0], [0.2, -0.1, 0.0, 0.0]])
    ties = project_l1_ball(v[:1], 2.0)
    torch.testing.assert_close(ties, torch.full((1, 4), 0.5))
    one_big = project_l1_ball(v[1:2], 1.0)  # theta = 2: only the largest coordinate survives
    torch.testing.assert_close(one_big, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert torch.equal(project_l1_ball(v, 0.0), torch.zeros_like(v)), "radius 0 gives 0"
    per_row = project_l1_ball(v, torch.tensor([2.0, 1.0, 1.0, 1.0]))
    torch.testing.assert_close(per_row[:2], torch.cat([ties, one_big]))
    assert torch.equal(per_row[2:], v[2:]), "rows inside their ball are unchanged"


@pytest.mark.parametrize("p", [math.inf, 2.0, 1.0])
def test_project_lp_ball_is_feasible_and_idempotent(p):
    torch.manual_seed(0)
    delta = torch.randn(64, 20, dtype=torch.float64) * torch.rand(64, 1, dtype=torch.float64) * 3
    eps = torch.rand(64, dtype=torch.float64) + 0.1
    once = project_lp_ball(delta, eps, p)
    assert (lp_norm(once, p) <= eps * (1 + 1e-12)).all()
    torch.testing.assert_close(project_lp_ball(once, eps, p), once, rtol=1e-12, atol=1e-12)
    inside = lp_norm(delta, p) <= eps
    assert 0 < inside.sum() < 64
    assert torch.equal(once[inside], delta[inside])
    on_sphere = ~inside
    torch.testing.assert_close(lp_norm(once[on_sphere], p), eps[on_sphere])


# --- subspace masks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 5, 7), (40,)])
def test_pixel_masks_nested_exact_and_channel_tied(shape):
    dims = [1, 3, 10, 35]
    n = 6
    m = pixel_masks(n, shape, dims, generator=torch.Generator().manual_seed(0))
    assert m.shape == (len(dims), n, *shape) and m.dtype == torch.bool
    pix = m[:, :, 0] if len(shape) == 3 else m  # one channel stands for the pixel
    if len(shape) == 3:
        assert torch.equal(m, pix.unsqueeze(2).expand_as(m)), "all channels of a pixel move together"
    counts = pix.flatten(2).sum(2)
    assert torch.equal(counts, torch.tensor(dims).view(-1, 1).expand(len(dims), n))
    assert (m[:-1] <= m[1:]).all(), "the subspace for smaller d is inside the one for larger d"
    assert not torch.equal(m[1, 0], m[1, 1]), "each example draws its own subspace"


def test_pixel_masks_reject_bad_dims():
    for bad in ([0, 3], [65], [-1]):
        with pytest.raises(ValueError, match=r"\[1, 64\]"):
            pixel_masks(2, (1, 8, 8), bad)
    with pytest.raises(ValueError, match=r"\[1, 12\]"):
        pixel_masks(2, (3, 3, 4), [13])


def test_patch_masks_are_contiguous_squares():
    shape = (3, 9, 7)
    sides = [1, 2, 4, 7]
    n = 20
    m = patch_masks(n, shape, sides, generator=torch.Generator().manual_seed(0))
    assert m.shape == (len(sides), n, *shape)
    assert torch.equal(m, m[:, :, :1].expand_as(m)), "all channels of a pixel move together"
    for i, s in enumerate(sides):
        for k in range(n):
            rows, cols = torch.nonzero(m[i, k, 0], as_tuple=True)
            assert len(rows) == s * s
            assert rows.max() - rows.min() == s - 1 and cols.max() - cols.min() == s - 1
    corners = torch.stack([torch.nonzero(m[2, k, 0]).min(0).values for k in range(n)])  # [n, (top, left)]
    assert all(len(set(corners[:, j].tolist())) > 1 for j in (0, 1)), "rows and columns of the corner are random"
    assert (corners.max(0).values <= torch.tensor([9 - 4, 7 - 4])).all()
    with pytest.raises(ValueError, match=r"\[1, 7\]"):
        patch_masks(2, shape, [8])


# --- the collapse analysis --------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_collapse_fit_recovers_planted_exponent(gamma):
    dims = np.array([4, 16, 64, 256])
    eps = np.geomspace(1e-3, 1.0, 40)
    u = eps[None, :] * (dims[:, None] / 256) ** gamma
    success = 1 / (1 + np.exp(-(np.log(u) - np.log(0.02)) / 0.5))  # a logistic in log(u)
    fit = collapse_fit(success, eps, dims, D=256)
    assert abs(fit.gamma_star - gamma) <= 0.05
    assert fit.residual_star < 1e-6 < fit.residual_zero
    lo, hi = fit.valley()
    assert lo <= fit.gamma_star <= hi
    with pytest.raises(ValueError, match="len"):
        collapse_fit(success[:, :-1], eps, dims, D=256)


def test_loglog_slope_recovers_a_power():
    dims = np.array([8, 16, 32, 64, 128])
    assert loglog_slope(dims, 3.0 * dims ** -0.7) == pytest.approx(-0.7, abs=1e-10)


def test_max_violation():
    monotone = np.array([[0.0, 0.2, 0.5], [0.1, 0.4, 0.9], [0.1, 0.6, 1.0]])
    assert max_violation(monotone) == 0
    down_d = monotone.copy()
    down_d[2, 1] = 0.1  # drops 0.3 along d (axis 0) and rises afterwards
    assert max_violation(down_d) == pytest.approx(0.3)
    down_eps = monotone.copy()
    down_eps[0, 2] = 0.05  # drops 0.15 along eps (axis 1)
    assert max_violation(down_eps) == pytest.approx(0.15)


# --- bad input and determinism ----------------------------------------------------------------------------


def test_bad_input_raises_valueerror_naming_what_is_allowed():
    model, x, y = _mlp_batch(n=4)
    with pytest.raises(ValueError, match="allowed: inf, 2, 1"):
        perturb(model, x, y, norm=3, eps=0.1)
    with pytest.raises(ValueError, match="allowed: inf, 2, 1"):
        perturb(model, x, y, norm="fro", eps=0.1)
    with pytest.raises(ValueError, match="allowed: slide, steepest"):
        perturb(model, x, y, norm=1, eps=0.1, l1_method="sparse")
    with pytest.raises(ValueError, match="non-negative"):
        perturb(model, x, y, eps=-0.1)
    with pytest.raises(ValueError, match="non-negative"):
        perturb(model, x, y, eps=torch.tensor([0.1, 0.1, -0.1, 0.1]))
    with pytest.raises(ValueError, match=r"\(4, 1, 8, 8\)"):
        perturb(model, x, y, eps=0.1, mask=torch.ones(3, 1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(4, 1, 8, 8\)"):
        perturb(model, x, y, eps=0.1, mask=torch.ones(64, dtype=torch.bool))
    with pytest.raises(ValueError, match="4 examples but y has 3"):
        perturb(model, x, y[:3], eps=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        perturb(model, x, y, norm=1, eps=0.1, l1_sparsity=1.0)


@pytest.mark.parametrize("norm", ["inf", 2, 1])
def test_same_seed_same_adversarial_examples(norm):
    model, x, y = _mlp_batch()
    mask = pixel_masks(len(x), SHAPE, [20], generator=torch.Generator().manual_seed(0))[0]
    runs = [perturb(model, x, y, norm=norm, eps=0.5, steps=5, mask=mask, random_start=True,
                    generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2]), "the generator drives the random start"


def test_project_lp_ball_accepts_norm_names_and_float_eps():
    v = torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(project_lp_ball(v, 0.4, "inf"), torch.full_like(v, 0.4))
    assert float(project_lp_ball(v, 0.4, "2").norm()) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="allowed: inf, 2, 1"):
        project_lp_ball(v, 0.4, 3)


def test_bad_budget_shapes_and_steps_rejected():
    torch.manual_seed(0)
    model = MLP((1, 4, 4), (8,), 3)
    x, y = torch.rand(5, 1, 4, 4), torch.randint(0, 3, (5,))
    with pytest.raises(ValueError, match=r"eps must be a number or a tensor of shape \[5\]"):
        perturb(model, x, y, eps=torch.ones(3))
    with pytest.raises(ValueError, match=r"step_size must be a number or a tensor of shape \[5\]"):
        perturb(model, x, y, eps=0.1, step_size=torch.ones(2))
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        perturb(model, x, y, eps=0.1, steps=-1)


def test_success_is_judged_in_eval_mode_and_inputs_must_lie_in_the_box():
    from torch import nn

    from interpbook.attacks.pgd import parse_norm, perturb
    from interpbook.attacks.subspace import is_adversarial

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 3))
    x, y = torch.rand(200, 1, 8), torch.randint(0, 3, (200,))
    model.train()
    first, second = is_adversarial(model, x, y), is_adversarial(model, x, y)
    assert torch.equal(first, second) and model.training  # no dropout noise, mode given back
    with pytest.raises(ValueError, match="must lie in the box"):
        perturb(model, x + 1.5, y, norm="inf", eps=0.01, steps=1)
    with pytest.raises(ValueError, match="unknown norm"):
        parse_norm(True)
