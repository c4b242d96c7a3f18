"""interpbook.attribution: known answers and axioms, captum-style.

On a linear logit every method has a closed form (saliency = w, input×gradient = w·x, IG = DeepLIFT =
w·(x − x'), one-feature occlusion = w_i (x_i − x'_i)); on nonlinear nets the axioms must hold (IG
completeness within 1 %, DeepLIFT summation-to-delta exactly, Kernel SHAP with every coalition = the
brute-force Shapley value of the segment game); Grad-CAM matches its formula on a net where the gradient
is constant; bad input raises ``ValueError``. Device parity runs where a GPU exists.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from interpbook.attribution import (
    METHODS,
    RULES,
    attribute,
    completeness_gap,
    deeplift,
    grad_cam,
    gradient_shap,
    grid_segments,
    guided_backprop,
    input_x_gradient,
    integrated_gradients,
    kernel_shap,
    lime,
    occlusion,
    options,
    quadrature,
    saliency,
)
from interpbook.attribution.perturbation import constrained_wls, lime_kernel, shapley_kernel, weighted_ridge

EXACT = dict(rtol=1e-5, atol=1e-6)  # float32 round-off of closed forms
SHAPE = (3, 6, 6)


def linear_model(seed=0, classes=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), classes)).eval()


def weights(model, target):  # [C, H, W] weight map of one class
    return model[1].weight[target].detach().view(SHAPE)


def mlp(seed=0, act=nn.ReLU, inplace=False):
    """A 108-32-16-5 net with He-scaled weights, so logits (and f(x) - f(x')) are of order one."""
    torch.manual_seed(seed)
    a1 = act(inplace=True) if inplace else act()
    model = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), 32), a1, nn.Linear(32, 16), act(),
                          nn.Linear(16, 5)).eval()
    for layer in model[1::2]:
        nn.init.normal_(layer.weight, std=2 / layer.in_features**0.5)
    return model


def cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(8 * 3 * 3, 5)).eval()


def inputs(n=5, seed=1):
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


def logit(model, x, t):
    with torch.no_grad():
        return model(x)[:, t]


# --- linear logits: closed forms ------------------------------------------------------------------------

def test_saliency_on_linear_is_w_or_abs_w():
    model, x = linear_model(), inputs()
    w = weights(model, 2).expand(len(x), *SHAPE)
    torch.testing.assert_close(saliency(model, x, 2, abs=False), w, **EXACT)
    torch.testing.assert_close(saliency(model, x, 2), w.abs(), **EXACT)  # captum's default abs=True


def test_input_x_gradient_on_linear_is_w_times_x():
    model, x = linear_model(), inputs()
    torch.testing.assert_close(input_x_gradient(model, x, 1), weights(model, 1) * x, **EXACT)


@pytest.mark.parametrize("rule", RULES)
def test_ig_and_deeplift_on_linear_are_w_times_delta(rule):
    model, x = linear_model(), inputs()
    base = torch.rand(*SHAPE)
    expected = weights(model, 3) * (x - base)
    torch.testing.assert_close(integrated_gradients(model, x, 3, baseline=base, n_steps=7, rule=rule), expected,
                               **EXACT)
    torch.testing.assert_close(deeplift(model, x, 3, baseline=base), expected, **EXACT)


def test_occlusion_single_feature_window_on_linear():
    model, x = linear_model(), inputs()
    base = torch.rand(len(x), *SHAPE)
    got = occlusion(model, x, 0, window=(1, 1, 1), baseline=base)
    torch.testing.assert_close(got, weights(model, 0) * (x - base), **EXACT)


def test_occlusion_window_over_everything_gives_total_drop():
    model, x = mlp(), inputs()
    got = occlusion(model, x, 1, window=(6, 6), baseline=0.5)
    drop = logit(model, x, 1) - logit(model, torch.full_like(x, 0.5), 1)
    torch.testing.assert_close(got, drop.view(-1, 1, 1, 1).expand_as(x), **EXACT)


def test_occlusion_averages_over_covering_windows():
    """A 2-pixel window, stride 1, on a 1-D linear input: feature i gets the mean of the windows' drops."""
    torch.manual_seed(0)
    model = nn.Linear(5, 2).eval()
    x = torch.rand(3, 5)
    got = occlusion(model, x, 1, window=2, stride=1)
    c = model.weight[1].detach() * x  # per-feature contribution against a zero baseline
    drops = c[:, :-1] + c[:, 1:]  # windows [0,1], [1,2], [2,3], [3,4]
    expected = torch.stack([drops[:, 0], (drops[:, 0] + drops[:, 1]) / 2, (drops[:, 1] + drops[:, 2]) / 2,
                            (drops[:, 2] + drops[:, 3]) / 2, drops[:, 3]], 1)
    torch.testing.assert_close(got, expected, **EXACT)


def test_occlusion_border_window_is_cut_as_captum_does():
    """Width 5, window 2, stride 2: windows start at 0, 2, 4; the last covers one feature only."""
    torch.manual_seed(0)
    model = nn.Linear(5, 2).eval()
    x = torch.rand(2, 5)
    c = model.weight[0].detach() * x
    expected = torch.stack([c[:, 0] + c[:, 1]] * 2 + [c[:, 2] + c[:, 3]] * 2 + [c[:, 4]], 1)
    torch.testing.assert_close(occlusion(model, x, 0, window=2, stride=2), expected, **EXACT)


def test_gradient_shap_on_linear_with_one_baseline_is_exact():
    model, x = linear_model(), inputs()
    base = torch.rand(*SHAPE)
    got = gradient_shap(model, x, 2, baselines=base, n_samples=4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(got, weights(model, 2) * (x - base), **EXACT)


def test_gradient_shap_sum_is_expected_delta_over_drawn_baselines():
    model, x = linear_model(), inputs(n=1)
    pool = torch.rand(3, *SHAPE)
    got = gradient_shap(model, x, 0, baselines=pool, n_samples=3000, generator=torch.Generator().manual_seed(0))
    expected = logit(model, x, 0) - logit(model, pool, 0).mean()
    assert abs(float(got.sum()) - float(expected)) < 0.05 * abs(float(expected)) + 0.02


# --- axioms on nonlinear nets ---------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid", "riemann_middle"])
@pytest.mark.parametrize("baseline", ["zeros", "white", "noise", "per-example"])
def test_ig_completeness_within_one_percent(rule, baseline):
    """sum(IG) = f_t(x) - f_t(x') within 1 % on a ReLU MLP; each example explains the class whose logit
    moves most between x' and x (a relative error needs a difference to be relative to)."""
    model, x = mlp(), inputs()
    base = {"zeros": None, "white": 1.0, "noise": torch.rand(*SHAPE), "per-example": torch.rand(len(x), *SHAPE)}[
        baseline]
    b = torch.zeros_like(x) if base is None else torch.broadcast_to(torch.as_tensor(base), x.shape)
    moves = logit(model, x, slice(None)) - logit(model, b, slice(None))  # [n, classes]
    target = moves.abs().argmax(1)
    attr = integrated_gradients(model, x, target, baseline=base, n_steps=256, rule=rule)
    gap = completeness_gap(model, x, attr, target, baseline=base)
    delta = moves.gather(1, target[:, None]).squeeze(1)
    assert (gap.abs() <= 0.01 * delta.abs()).all(), (gap, delta)


def test_ig_internal_batching_changes_nothing():
    model, x = mlp(), inputs()
    full = integrated_gradients(model, x, 0, n_steps=20)
    torch.testing.assert_close(integrated_gradients(model, x, 0, n_steps=20, internal_batch_size=7), full, **EXACT)


@pytest.mark.parametrize("rule", RULES)
def test_quadrature_rules(rule):
    a, w = quadrature(10, rule)
    assert len(a) == len(w) == 10 and all(0 <= v <= 1 for v in a)
    assert math.isclose(sum(w), 1.0, rel_tol=1e-12)
    if rule == "gausslegendre":  # exact for polynomials of degree <= 2n - 1
        assert math.isclose(sum(wk * ak**19 for ak, wk in zip(a, w)), 1 / 20, rel_tol=1e-10)


@pytest.mark.parametrize("act", [nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.ELU])
def test_deeplift_summation_to_delta_is_exact(act):
    model, x = mlp(act=act), inputs()
    base = torch.rand(len(x), *SHAPE)
    attr = deeplift(model, x, 2, baseline=base)
    delta = logit(model, x, 2) - logit(model, base, 2)
    torch.testing.assert_close(attr.flatten(1).sum(1), delta, rtol=1e-5, atol=1e-5)
    # ... and differs from input×gradient on a nonlinear net (the multipliers are not the gradients)
    ixg = (x - base) * saliency(model, x, 2, abs=False)
    assert (attr - ixg).abs().max() > 0.05 * attr.abs().max()


def test_deeplift_on_cnn_and_inplace_relu():
    for model in (cnn(), mlp(inplace=True)):
        x = inputs()
        attr = deeplift(model, x, 1, baseline=0.3)
        delta = logit(model, x, 1) - logit(model, torch.full_like(x, 0.3), 1)
        torch.testing.assert_close(attr.flatten(1).sum(1), delta, rtol=1e-5, atol=1e-5)


def test_deeplift_rescale_multiplier_by_hand():
    """f(x) = relu(x1 - x2) at x = (3, 1). From x' = (0, 0) the pre-activation z moves 0 -> 2 and so does
    the unit: multiplier 1, contributions (3, -1). From x' = (1, 2), z moves -1 -> 2 while the unit moves
    0 -> 2: multiplier 2/3, contributions (x - x') * w * 2/3 = (2, 1) * 2/3, which sum to f(x) - f(x') = 2."""
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.ReLU(), nn.Linear(1, 1, bias=False)).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[2].weight.fill_(1.0)
    x = torch.tensor([[3.0, 1.0]])
    torch.testing.assert_close(deeplift(model, x, 0), torch.tensor([[3.0, -1.0]]))
    got = deeplift(model, x, 0, baseline=torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(got, torch.tensor([[2.0, 1.0]]) * 2 / 3)  # (x - x') * w * (2 / 3)


def test_guided_backprop_one_hidden_layer_closed_form():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3)).eval()
    x = torch.randn(4, 6)
    W, v = model[0].weight.detach(), model[2].weight[1].detach()
    active = (model[0](x) > 0).float()  # [4, 10]
    expected = (active * v.clamp_min(0)) @ W
    torch.testing.assert_close(guided_backprop(model, x, 1), expected, **EXACT)


def brute_force_shapley(v, m):
    """phi_j = sum_S |S|!(m-|S|-1)!/m! (v(S + j) - v(S)) over S not containing j; ``v`` indexed by bitmask."""
    phi = torch.zeros(m, dtype=torch.float64)
    for j in range(m):
        for S in range(2**m):
            if not S >> j & 1:
                r = bin(S).count("1")
                phi[j] += math.factorial(r) * math.factorial(m - r - 1) / math.factorial(m) * (v[S | 1 << j] - v[S])
    return phi


@pytest.mark.parametrize("cell", [3, 2])  # 4 or 9 square segments of a 6x6 image
def test_kernel_shap_exact_enumeration_equals_shapley_values(cell):
    model, x = cnn().double(), inputs(n=2).double()
    seg = grid_segments(6, 6, cell)
    m = int(seg.max()) + 1
    base = torch.rand(*SHAPE, dtype=torch.float64)
    got = kernel_shap(model, x, 3, segments=seg, baseline=base, n_samples=None)
    masks = torch.stack([sum((seg == j) * bool(S >> j & 1) for j in range(m)).bool() for S in range(2**m)])
    for i in range(len(x)):
        with torch.no_grad():  # the game's value on every coalition, by bitmask
            v = model(torch.where(masks[:, None], x[i], base))[:, 3]
        phi = brute_force_shapley(v, m)
        per_segment = torch.stack([got[i, 0][seg == j][0] for j in range(m)])
        torch.testing.assert_close(per_segment, phi, rtol=1e-8, atol=1e-9)
        assert (got[i] == got[i, :1]).all(), "every channel of a pixel holds its segment's value"


def test_kernel_shap_sampling_converges_and_keeps_efficiency():
    model, x = mlp(), inputs(n=2)
    seg = grid_segments(6, 6, 2)  # 9 segments, 510 interior coalitions
    exact = kernel_shap(model, x, 0, segments=seg, n_samples=None)
    approx = kernel_shap(model, x, 0, segments=seg, n_samples=3000, generator=torch.Generator().manual_seed(0))
    cells = [(seg == j).nonzero()[0] for j in range(9)]
    vals = lambda a: torch.stack([a[:, 0, r, c] for r, c in cells], 1)  # [n, 9]
    delta = logit(model, x, 0) - logit(model, torch.zeros_like(x), 0)
    torch.testing.assert_close(vals(approx).sum(1), delta, rtol=1e-4, atol=1e-5)  # efficiency is exact
    err = (vals(approx) - vals(exact)).abs().max()
    assert err < 0.1 * vals(exact).abs().max(), err


def test_kernel_shap_per_example_segments():
    model, x = mlp(), inputs(n=2)
    seg = torch.stack([grid_segments(6, 6, 3), (torch.arange(36).view(6, 6) % 2)])  # 4 cells vs 2 stripes
    got = kernel_shap(model, x, 1, segments=seg, n_samples=None)
    for i in range(2):
        alone = kernel_shap(model, x[i:i + 1], 1, segments=seg[i], n_samples=None)
        torch.testing.assert_close(got[i], alone[0], rtol=1e-5, atol=1e-6)


def test_constrained_wls_recovers_planted_linear_game():
    torch.manual_seed(0)
    Z = torch.rand(40, 5) < 0.5
    phi = torch.randn(3, 5, dtype=torch.float64)
    v0 = torch.randn(3, dtype=torch.float64)
    y = (v0[:, None] + phi @ Z.double().T).T  # [40, 3]
    got = constrained_wls(Z, torch.rand(40) + 0.5, y, v0, v0 + phi.sum(1))
    torch.testing.assert_close(got, phi)


def test_shapley_kernel_weights():
    w = shapley_kernel(4, torch.tensor([1, 2, 3]))
    torch.testing.assert_close(w, torch.tensor([3 / (4 * 3), 3 / (6 * 4), 3 / (4 * 3)], dtype=torch.float64))


def test_lime_recovers_a_game_linear_in_segments():
    """A linear model's segment game is exactly linear in z, so unpenalised LIME returns its coefficients."""
    model, x = linear_model(), inputs(n=3)
    seg = grid_segments(6, 6, 3)
    base = torch.rand(*SHAPE)
    got = lime(model, x, 2, segments=seg, baseline=base, n_samples=64, ridge=0.0,
               generator=torch.Generator().manual_seed(0))
    contrib = weights(model, 2) * (x - base)  # [n, C, H, W]
    for j in range(4):
        expected = contrib[:, :, seg == j].sum((1, 2))
        torch.testing.assert_close(got[:, 0][:, seg == j][:, 0], expected, rtol=1e-4, atol=1e-5)


def test_weighted_ridge_matches_sklearn():
    from sklearn.linear_model import Ridge

    torch.manual_seed(0)
    Z, y, w = (torch.rand(50, 6) < 0.5), torch.randn(50, 2, dtype=torch.float64), torch.rand(50) + 0.1
    got = weighted_ridge(Z, w, y, 1.0)
    for k in range(2):
        ref = Ridge(alpha=1.0).fit(Z.double().numpy(), y[:, k].numpy(), sample_weight=w.double().numpy()).coef_
        torch.testing.assert_close(got[k], torch.as_tensor(ref), rtol=1e-8, atol=1e-10)


def test_lime_kernel_is_one_for_the_full_coalition():
    Z = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    k = lime_kernel(Z, 0.25)
    d = torch.tensor([0.0, 1 - 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(k, torch.exp(-d**2 / (2 * 0.25**2)))


# --- Grad-CAM -------------------------------------------------------------------------------------------

class GapNet(nn.Module):
    """conv -> ReLU -> global average pool -> linear: d f_t / d A^k_ij = v_tk / (h w), a constant."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1, stride=2)
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.act(self.conv(x)).mean((2, 3)))


def test_grad_cam_formula_shape_and_positivity():
    model, x = GapNet().eval(), inputs()
    A = model.act(model.conv(x)).detach()  # [n, 4, 3, 3]
    v = model.head.weight[2].detach()
    raw = (v.view(1, 4, 1, 1) / 9 * A).sum(1, keepdim=True)
    got = grad_cam(model, x, 2, layer=model.act, relu=False, upsample=None)
    torch.testing.assert_close(got, raw, **EXACT)
    cam = grad_cam(model, x, 2, layer="act")
    assert cam.shape == (len(x), 1, 6, 6) and (cam >= 0).all()
    nearest = grad_cam(model, x, 2, layer=model.act, upsample="nearest")
    torch.testing.assert_close(nearest, raw.clamp_min(0).repeat_interleave(2, 2).repeat_interleave(2, 3), **EXACT)


# --- the verb, targets, and errors ----------------------------------------------------------------------

def test_attribute_dispatches_every_method_with_the_documented_shape():
    model, x = cnn(), inputs(n=3)
    for method in METHODS:
        got = attribute(model, x, method=method, target=torch.tensor([0, 1, 2]))
        expected = (3, 1, 6, 6) if method == "grad_cam" else x.shape
        assert got.shape == expected and torch.isfinite(got).all(), method
    torch.testing.assert_close(attribute(model, x, method="occlusion", target=1, window=3),
                               occlusion(model, x, 1, window=3))


def test_default_target_is_the_prediction():
    model, x = cnn(), inputs()
    pred = logit(model, x, slice(None)).argmax(1)
    torch.testing.assert_close(saliency(model, x), saliency(model, x, pred))


def test_unknown_method_lists_methods():
    with pytest.raises(ValueError, match="allowed: saliency, input_x_gradient"):
        attribute(cnn(), inputs(), method="smoothgrad")


def test_unknown_option_lists_options():
    assert "baseline" in options("integrated_gradients")
    with pytest.raises(ValueError, match="unknown option 'steps'.*n_steps"):
        attribute(cnn(), inputs(), method="integrated_gradients", steps=10)


@pytest.mark.parametrize("call, match", [
    (lambda m, x: saliency(m, x, torch.tensor([0, 1])), r"shape \[batch\]"),
    (lambda m, x: saliency(m, x, 0.5), "target must be"),
    (lambda m, x: saliency(m, x, torch.zeros(5)), "integer class indices"),
    (lambda m, x: saliency(m, x.long()), "floating-point"),
    (lambda m, x: saliency(m, x[0, 0, 0]), "batched"),
    (lambda m, x: integrated_gradients(m, x, 0, baseline=torch.zeros(2, 6, 6)), "does not broadcast"),
    (lambda m, x: integrated_gradients(m, x, 0, baseline="black"), "baseline must be"),
    (lambda m, x: integrated_gradients(m, x, 0, rule="simpson"), "allowed: gausslegendre"),
    (lambda m, x: integrated_gradients(m, x, 0, n_steps=1, rule="riemann_left"), "n_steps"),
    (lambda m, x: occlusion(m, x, 0, window=7), "exceeds"),
    (lambda m, x: occlusion(m, x, 0, window=2, stride=3), "stride"),
    (lambda m, x: occlusion(m, x, 0, window="big"), "window must be"),
    (lambda m, x: kernel_shap(m, x, 0, segments=torch.zeros(5, 5, dtype=torch.long)), "segments must have shape"),
    (lambda m, x: kernel_shap(m, x, 0, segments=torch.zeros(6, 6)), "integer tensor"),
    (lambda m, x: kernel_shap(m, x, 0, n_samples=0), "n_samples"),
    (lambda m, x: lime(m, x, 0, kernel_width=0), "kernel_width"),
    (lambda m, x: grad_cam(m, x, 0, layer="nope"), "no submodule"),
    (lambda m, x: grad_cam(m, x, 0, upsample="cubic"), "unknown upsample"),
    (lambda m, x: grad_cam(m, x.flatten(2), 0), "images"),
    (lambda m, x: gradient_shap(m, x, 0, baselines=torch.zeros(2, 3, 5, 5)), "baselines"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(cnn(), inputs())


def test_deeplift_refuses_reused_activation_and_maxpool():
    relu = nn.ReLU()
    reused = nn.Sequential(nn.Flatten(), nn.Linear(108, 8), relu, nn.Linear(8, 8), relu, nn.Linear(8, 2))
    with pytest.raises(ValueError, match="more than once"):
        deeplift(reused, inputs(), 0)
    pooled = nn.Sequential(nn.Conv2d(3, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="MaxPool2d"):
        deeplift(pooled, inputs(), 0)
    assert not reused[2]._forward_hooks and not reused[2]._forward_pre_hooks, "hooks are removed after an error"


def test_attribution_leaves_parameters_without_gradients():
    model, x = cnn(), inputs()
    for method in METHODS:
        attribute(model, x, method=method)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_every_method_on_cuda_matches_cpu():
    model, x = cnn().double(), inputs().double()
    seg = grid_segments(6, 6, 3)
    for method in METHODS:
        extra = {"segments": seg, "generator": None, "n_samples": None} if method == "kernel_shap" else {}
        if method in ("lime", "gradient_shap"):
            continue  # random draws differ between devices
        cpu = attribute(model, x, method=method, target=1, **extra)
        extra = {**extra, "segments": seg.cuda()} if extra else extra
        gpu = attribute(model.cuda(), x.cuda(), method=method, target=1, **extra)
        model.cpu()
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-6, atol=1e-8, msg=method)


def test_grad_cam_is_unchanged_by_an_in_place_relu_after_the_layer():
    from interpbook.attribution.gradcam import grad_cam

    def net(inplace):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=inplace), nn.Flatten(),
                             nn.Linear(4 * 8 * 8, 3))

    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(grad_cam(net(True), x, 1), grad_cam(net(False), x, 1))  # layer: the conv
