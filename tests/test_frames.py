"""interpbook.geometry.frames: known answers for neural frames.

Known answers: for a linear model the frame at the output is exactly ``W v``; the forward-mode frame agrees
with finite differences and with reverse-mode Jacobians at every layer; affine-warp tangents agree with the
finite difference of the warp, a translation tangent is the image's spatial derivative, and the brightness
tangent of a bias-free linear layer is its row sums; ReLU layers are invariant along directions that only
touch inactive units; effective rank is K for orthogonal frames and 1 for parallel ones; the family ratio is
1 at the input for unit directions and unchanged by rescaling a layer.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interpbook.geometry import (
    AFFINE_KINDS,
    affine_matrix,
    affine_tangents,
    effective_rank,
    family_ratio,
    frame_cosines,
    frame_norms,
    local_pca_tangents,
    neural_frame,
    noise_directions,
    photometric_tangents,
    sequential_stages,
    unit,
    warp_affine,
)
from interpbook.models import MLP, SmallCNN

RTOL = 1e-5  # float64 forward-mode vs closed forms


def smooth_images(b: int, size: int = 16) -> torch.Tensor:
    """Smooth random blobs in float64 (so finite differences of warps are well conditioned)."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size, dtype=torch.float64),
                            torch.linspace(-1, 1, size, dtype=torch.float64), indexing="ij")
    c = torch.rand(b, 2, 1, 1, generator=g, dtype=torch.float64) - 0.5
    return torch.exp(-((xx - c[:, :1]) ** 2 + 2 * (yy - c[:, 1:]) ** 2) / 0.2)  # [b, 1, size, size]


def test_linear_model_frame_is_w_times_v():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).double()
    x = torch.randn(4, 3, 4, dtype=torch.float64)
    v = torch.randn(4, 6, 3, 4, dtype=torch.float64)
    frame = neural_frame(model, x, v)
    assert frame.layers == ["input", "output"]
    expected = v.flatten(2) @ model[1].weight.T
    torch.testing.assert_close(frame["output"], expected, rtol=RTOL, atol=1e-12)
    torch.testing.assert_close(frame["input"], v.flatten(2))


def test_frame_agrees_with_finite_differences_and_reverse_mode():
    torch.manual_seed(0)
    model = SmallCNN((1, 8, 8), channels=(4, 6), strides=(1, 2), hidden=7).double()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    v = torch.randn(3, 5, 1, 8, 8, dtype=torch.float64)
    frame = neural_frame(model, x, v, chunk=2)
    stages, taps, names = sequential_stages(model)
    assert names == ["conv1", "conv2", "fc1", "output"]

    def upto(z, last):
        for m in stages[:last + 1]:
            z = m(z)
        return z.flatten(1)

    h = 1e-6
    for name, tap in zip(names, taps):
        xp = (x.unsqueeze(1) + h * v).flatten(0, 1)
        xm = (x.unsqueeze(1) - h * v).flatten(0, 1)
        fd = ((upto(xp, tap) - upto(xm, tap)) / (2 * h)).view(3, 5, -1)
        torch.testing.assert_close(frame[name], fd, rtol=1e-5, atol=1e-7)
    # reverse mode: the full Jacobian of one point times its directions
    jac = torch.autograd.functional.jacobian(lambda z: model(z.unsqueeze(0)).squeeze(0), x[0])  # [10, 1, 8, 8]
    torch.testing.assert_close(frame["output"][0], v[0].flatten(1) @ jac.flatten(1).T, rtol=RTOL, atol=1e-10)


@pytest.mark.parametrize("kind", AFFINE_KINDS)
def test_affine_tangent_is_the_derivative_of_the_warp(kind):
    x = smooth_images(3)
    tangent = affine_tangents(x, [kind])[:, 0]
    h = 1e-6
    theta = lambda e: affine_matrix(3, size=(16, 16), dtype=torch.float64, **{kind: e})  # noqa: E731
    fd = (warp_affine(x, theta(h)) - warp_affine(x, theta(-h))) / (2 * h)
    scale = tangent.abs().max()
    assert scale > 1e-3
    torch.testing.assert_close(tangent / scale, fd / scale, rtol=0, atol=1e-4)


def test_translation_tangent_is_the_spatial_derivative():
    # warp samples x at p + t: d/dt x(p + t e_x) = d x / d col. Compare with the derivative of a smooth image.
    size = 32
    xx = torch.linspace(-1, 1, size * 2 + 1, dtype=torch.float64)[1::2]  # pixel centres, align_corners=False
    img = torch.sin(2.0 * xx).expand(size, size)[None, None]  # varies along columns only
    t = affine_tangents(img, ["translate_x", "translate_y"])[0, :, 0]
    analytic = (2.0 * torch.cos(2.0 * xx) * (2 / size)).expand(size, size)  # chain rule: one pixel = 2/size
    inner = (slice(3, -3), slice(3, -3))  # away from the zero padding
    torch.testing.assert_close(t[0][inner], analytic[inner], rtol=0, atol=2e-3)
    assert t[1][inner].abs().max() < 1e-10


def test_zero_parameters_give_the_identity_warp():
    x = smooth_images(2)
    out = warp_affine(x, affine_matrix(2, size=(16, 16), dtype=torch.float64))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-12)


def test_brightness_tangent_through_linear_layer_is_row_sums():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3, bias=False)).double()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    v = photometric_tangents(x)
    frame = neural_frame(model, x, v)
    torch.testing.assert_close(frame["output"][:, 0], model[1].weight.sum(1).expand(2, 3), rtol=RTOL, atol=1e-12)
    # contrast tangent has zero mean and is parallel to x - mean(x)
    assert v[:, 1].flatten(1).sum(1).abs().max() < 1e-12


def test_relu_layer_is_invariant_along_inactive_units():
    lin = nn.Linear(4, 4, bias=True).double()
    with torch.no_grad():
        lin.weight.copy_(torch.eye(4, dtype=torch.float64))
        lin.bias.copy_(torch.tensor([1.0, 1.0, -10.0, -10.0], dtype=torch.float64))
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(4, 2).double())
    x = torch.zeros(1, 4, dtype=torch.float64)
    v = torch.eye(4, dtype=torch.float64).unsqueeze(0)  # one direction per unit
    norms = frame_norms(neural_frame(model, x, v))  # [layers, 1, 4]
    assert norms[1, 0, 2:].abs().max() == 0 and norms[2, 0, 2:].abs().max() == 0  # dead units: invariant
    torch.testing.assert_close(norms[1, 0, :2], torch.ones(2, dtype=torch.float64))


def test_effective_rank_and_cosines():
    q, _ = torch.linalg.qr(torch.randn(20, 5, dtype=torch.float64))
    ortho = q.T.unsqueeze(0)  # 5 orthonormal vectors
    parallel = torch.randn(1, 1, 20, dtype=torch.float64) * torch.arange(1, 5, dtype=torch.float64).view(1, 4, 1)
    torch.testing.assert_close(effective_rank(ortho), torch.tensor([5.0], dtype=torch.float64))
    torch.testing.assert_close(effective_rank(parallel), torch.tensor([1.0], dtype=torch.float64))
    torch.testing.assert_close(frame_cosines(ortho)[0], torch.eye(5, dtype=torch.float64), rtol=0, atol=1e-12)
    assert torch.allclose(frame_cosines(parallel), torch.ones(1, 4, 4, dtype=torch.float64))


def test_family_ratio_is_one_at_input_and_scale_free():
    torch.manual_seed(0)
    model = MLP((1, 6, 6), hidden=(8,)).double()
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    v = unit(torch.cat([affine_tangents(x, ["rotation"]), noise_directions(x, 4)], 1))
    norms = frame_norms(neural_frame(model, x, v))
    rho = family_ratio(norms, [0], [1, 2, 3, 4])
    torch.testing.assert_close(rho[0], torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(family_ratio(norms * 7.0, [0], [1, 2, 3, 4]), rho)


def test_local_pca_recovers_a_planted_plane():
    g = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(30, 2, generator=g, dtype=torch.float64))  # a plane in R^30
    ref = (torch.randn(500, 2, generator=g, dtype=torch.float64) @ basis.T).view(500, 5, 6)
    x = ref[:3] + 0.0
    t = local_pca_tangents(x, ref, neighbors=25, rank=2).flatten(2)  # [3, 2, 30]
    proj = t @ basis  # components inside the plane
    torch.testing.assert_close(proj.norm(dim=-1), torch.ones(3, 2, dtype=torch.float64), rtol=1e-8, atol=1e-8)


def test_bad_inputs_raise_clear_errors():
    model = SmallCNN((1, 8, 8))
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="directions must be"):
        neural_frame(model, x, torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="unknown affine direction"):
        affine_tangents(x, ["zoom"])
    with pytest.raises(ValueError, match="unknown photometric"):
        photometric_tangents(x, ["gamma"])
    with pytest.raises(ValueError, match="neighbors <= len"):
        local_pca_tangents(x, x, neighbors=5, rank=2)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Sequential(nn.Flatten(), nn.Linear(64, 64))
            self.b = nn.Sequential(nn.ReLU(), nn.Linear(64, 3))

        def forward(self, z):
            h = self.a(z)
            return self.b(h + z.flatten(1))

    with pytest.raises(ValueError, match="not the chain of its stages"):
        neural_frame(Residual(), x, torch.rand(2, 3, 1, 8, 8))


def test_effective_rank_is_the_energy_form_below_roy_vetterli():
    # two vectors with singular values 2 and 1: energy form exp(H(4/5, 1/5)); Roy & Vetterli's exp(H(2/3, 1/3))
    frame = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    energy = torch.exp(-(0.8 * torch.log(torch.tensor(0.8)) + 0.2 * torch.log(torch.tensor(0.2))))
    torch.testing.assert_close(effective_rank(frame), energy.to(torch.float64).view(1))
    s = torch.linalg.svdvals(torch.randn(50, 4, 9, dtype=torch.float64))
    p = s / s.sum(-1, keepdim=True)
    roy_vetterli = torch.exp(-(p * p.log()).sum(-1))
    frames = torch.diag_embed(s)  # a frame with exactly these singular values
    assert (effective_rank(frames) <= roy_vetterli + 1e-12).all()


def test_rotation_is_rigid_on_non_square_images():
    # the sampling-position velocity of a rotation about the centre is (-y, x) in pixels, whatever H and W
    h, w = 16, 32
    theta = affine_matrix(1, rotation=1e-3, size=(h, w), dtype=torch.float64)
    ident = affine_matrix(1, size=(h, w), dtype=torch.float64)
    grid = torch.nn.functional.affine_grid(theta, [1, 1, h, w], align_corners=False)
    grid0 = torch.nn.functional.affine_grid(ident, [1, 1, h, w], align_corners=False)
    vel = (grid - grid0)[0] / 1e-3 * torch.tensor([w / 2, h / 2], dtype=torch.float64)  # pixels per radian
    px = grid0[0] * torch.tensor([w / 2, h / 2], dtype=torch.float64)
    torch.testing.assert_close(vel[..., 0], -px[..., 1], atol=1e-2, rtol=1e-3)
    torch.testing.assert_close(vel[..., 1], px[..., 0], atol=1e-2, rtol=1e-3)


def test_degenerate_points_and_frames():
    norms = torch.ones(1, 5, 3)
    norms[0, 0] = 0.0  # a point where the layer is dead: 0 / 0
    torch.testing.assert_close(family_ratio(norms, [0], [1, 2]), torch.ones(1))
    assert torch.isnan(family_ratio(torch.zeros(1, 4, 3), [0], [1, 2])).all()
    assert torch.isnan(effective_rank(torch.zeros(2, 3, 10))).all()
    x, ref = torch.rand(2, 1, 4, 4), torch.rand(10, 1, 4, 4)
    with pytest.raises(ValueError, match="rank < neighbors"):
        local_pca_tangents(x, ref, neighbors=3, rank=3)
