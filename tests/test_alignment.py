"""Known answers for interpbook.similarity.alignment: symmetries of MLPs, alignment, interpolation barriers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from interpbook.models import MLP
from interpbook.similarity.alignment import (
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

ATOL = 1e-5  # float32 logits of a small MLP


def net(seed=0, widths=(12, 10), linear=False):
    torch.manual_seed(seed)
    m = MLP((6,), widths, 4)
    return replace_activations(m) if linear else m


@pytest.fixture
def x():
    return torch.randn(200, 6, generator=torch.Generator().manual_seed(1))


def random_perms(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(layer.out_features, generator=g) for layer in mlp_layers(model)[:-1]]


def test_permuting_hidden_units_leaves_the_function_unchanged(x):
    model = net()
    permuted = permute_hidden(model, random_perms(model))
    assert not torch.equal(mlp_layers(permuted)[0].weight, mlp_layers(model)[0].weight)
    torch.testing.assert_close(permuted(x), model(x), atol=ATOL, rtol=0)


def test_activation_matching_recovers_a_permutation_and_the_barrier_vanishes(x):
    model = net()
    y = model(x).argmax(1)
    perms = random_perms(model, seed=3)
    shuffled = permute_hidden(model, perms)
    aligned = permute_hidden(shuffled, activation_matching(model, shuffled, x))
    for a, b in zip(mlp_layers(aligned), mlp_layers(model)):
        torch.testing.assert_close(a.weight, b.weight)
    curve = interpolation_curve(model, aligned, x, y, alphas=11)
    assert abs(loss_barrier(curve)) < 1e-5
    assert loss_barrier(interpolation_curve(model, shuffled, x, y, alphas=11)) > 1e-3  # unaligned: a real barrier


def test_rotation_is_a_symmetry_of_a_linear_net_but_not_of_a_relu_net(x):
    r = rotation_by_angle(12, math.pi / 2, generator=torch.Generator().manual_seed(0)).float()
    linear, relu = net(linear=True), net()
    torch.testing.assert_close(rotate_hidden(linear, 0, r)(x), linear(x), atol=ATOL, rtol=0)
    change = (rotate_hidden(relu, 0, r)(x) - relu(x)).abs().max()
    assert change > 0.05 * relu(x).abs().max()


def test_rotation_by_angle_turns_every_vector_by_theta():
    for d in (8, 9):
        for theta in (0.0, 0.3, math.pi / 2):
            r = rotation_by_angle(d, theta, generator=torch.Generator().manual_seed(d))
            torch.testing.assert_close(r @ r.T, torch.eye(d, dtype=torch.float64))
            v = torch.randn(d, 50, dtype=torch.float64)
            if d % 2:  # the fixed direction of an odd-dimensional R: remove it from v
                w, vec = torch.linalg.eig(r)
                fixed = vec[:, (w - 1).abs().argmin()].real
                v = v - fixed[:, None] * (fixed @ v)
            cos = (v * (r @ v)).sum(0) / v.square().sum(0)
            torch.testing.assert_close(cos, torch.full_like(cos, math.cos(theta)))


def test_permutation_matrix_as_rotation_leaves_a_relu_net_unchanged(x):
    model = net()
    p = torch.eye(12)[torch.randperm(12, generator=torch.Generator().manual_seed(0))]
    torch.testing.assert_close(rotate_hidden(model, 0, p)(x), model(x), atol=ATOL, rtol=0)


def test_interpolate_endpoints_and_batched_curve_agree(x):
    a, b = net(0), net(1)
    y = a(x).argmax(1)
    torch.testing.assert_close(interpolate(a, b, 0.0)(x), a(x))
    torch.testing.assert_close(interpolate(a, b, 1.0)(x), b(x))
    curve = interpolation_curve(a, b, x, y, alphas=torch.tensor([0.0, 0.25, 1.0]))
    mid = interpolate(a, b, 0.25)
    torch.testing.assert_close(curve.loss[1], nn.functional.cross_entropy(mid(x), y), atol=1e-5, rtol=1e-5)
    assert curve.accuracy[0] == 1.0


def test_loss_barrier_of_a_known_curve():
    from interpbook.similarity.alignment import InterpolationCurve

    alphas = torch.linspace(0, 1, 5)
    loss = torch.tensor([1.0, 2.0, 3.5, 2.0, 1.0])
    acc = torch.tensor([1.0, 0.8, 0.5, 0.8, 0.9])
    curve = InterpolationCurve(alphas, loss, acc)
    assert loss_barrier(curve) == pytest.approx(2.5)
    assert loss_barrier(curve, metric="error") == pytest.approx(0.5 - 0.05)


def test_basis_correlation_of_a_net_with_a_permuted_copy_is_one(x):
    model = net(widths=(12,))
    shuffled = permute_hidden(model, random_perms(model))
    x_fit, x_eval = x[:120], x[120:]
    za, zb = hidden_activations(model, x_fit)[0], hidden_activations(shuffled, x_fit)[0]
    ea, eb = hidden_activations(model, x_eval)[0], hidden_activations(shuffled, x_eval)[0]
    result = basis_correlation(za, zb, ea, eb)
    assert result.match == pytest.approx(1.0, abs=1e-6)
    assert result.rotation == pytest.approx(1.0, abs=1e-6)


def test_basis_correlation_rotation_ceiling_sees_through_a_rotation():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(400, 10, generator=g, dtype=torch.float64)
    r = rotation_by_angle(10, math.pi / 3, generator=g)
    result = basis_correlation(z[:300], z[:300] @ r, z[300:], z[300:] @ r)
    assert result.rotation == pytest.approx(1.0, abs=1e-6)
    assert result.match < 0.9


def test_share_early_layers_copies_and_returns_the_rest():
    a, b = net(0), net(1)
    trainable = share_early_layers(a, b, 1)
    torch.testing.assert_close(mlp_layers(b)[0].weight, mlp_layers(a)[0].weight)
    assert len(trainable) == 4 and all(p is not mlp_layers(b)[0].weight for p in trainable)


def test_hidden_activations_are_post_relu(x):
    model = net()
    h1, h2 = hidden_activations(model, x)
    assert h1.shape == (200, 12) and h2.shape == (200, 10) and bool((h1 >= 0).all())


def test_bad_inputs_raise_clear_errors(x):
    model = net()
    with pytest.raises(ValueError, match="hidden-layer index"):
        rotate_hidden(model, 2, torch.eye(12))
    with pytest.raises(ValueError, match="orthogonal"):
        rotate_hidden(model, 0, 2 * torch.eye(12))
    with pytest.raises(ValueError, match=r"\[12, 12\]"):
        rotate_hidden(model, 0, torch.eye(10))
    with pytest.raises(ValueError, match="permutation of 0..11"):
        permute_hidden(model, [torch.zeros(12, dtype=torch.long), torch.arange(10)])
    with pytest.raises(ValueError, match="same widths"):
        activation_matching(model, net(widths=(12, 8)), x)
    with pytest.raises(ValueError, match="nn.Linear layers and elementwise"):
        mlp_layers(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="metric"):
        loss_barrier(interpolation_curve(model, model, x, model(x).argmax(1)), metric="acc")
    with pytest.raises(ValueError, match="alphas"):
        interpolation_curve(model, model, x, model(x).argmax(1), alphas=1)
    with pytest.raises(ValueError, match="k must be"):
        share_early_layers(model, net(1), 3)
