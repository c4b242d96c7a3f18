"""The learned codec, JPEG, PSNR / MS-SSIM and the spectral tools: closed forms, identities and a peer."""

from __future__ import annotations

import math

import pytest
import torch

from interpbook.compression import (
    FactorizedPriorCodec,
    LogisticEntropyModel,
    PCACodec,
    error_spectrum,
    field_covariance,
    fourier_basis,
    fourier_heat_map,
    frequency_radius,
    full_heat_map,
    gaussian_field,
    grid_peak_ratio,
    high_frequency_fraction,
    jpeg_roundtrip,
    ms_ssim,
    power_law_spectrum,
    power_spectrum,
    psnr,
    radial_profile,
    ssim,
    train_codec,
)
from interpbook.data.natural import TRAIN_PHOTOS, center_crops, natural_image, natural_images, random_patches


@pytest.fixture(scope="module")
def tiles():
    return center_crops([natural_image("chelsea", 0.5), natural_image("flower", 0.5)], 64, 2)


# ------------------------------------------------------------------ metrics

def test_psnr_closed_form():
    x = torch.rand(3, 3, 16, 16) * 0.5
    for delta in (0.1, 0.01):
        torch.testing.assert_close(psnr(x + delta, x), torch.full((3,), -20 * math.log10(delta)))
    torch.testing.assert_close(psnr(255 * (x + 0.1), 255 * x, data_range=255), psnr(x + 0.1, x))
    assert torch.isinf(psnr(x, x)).all()
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, data_range=0)
    with pytest.raises(ValueError, match="one shape"):
        psnr(x, x[:, :1])


def test_ms_ssim_identity_and_size_check(tiles):
    torch.testing.assert_close(ms_ssim(tiles, tiles, levels=3), torch.ones(len(tiles)))
    noisy = (tiles + 0.1 * torch.randn_like(tiles)).clamp(0, 1)
    assert (ms_ssim(noisy, tiles, levels=3) < 1).all()
    with pytest.raises(ValueError, match="fewer levels"):
        ms_ssim(tiles, tiles, levels=5)


@pytest.mark.parametrize("levels", [5, 3])
def test_ms_ssim_matches_pytorch_msssim(levels):
    pm = pytest.importorskip("pytorch_msssim")
    x = center_crops([natural_image("astronaut"), natural_image("coffee")], 192, 1)
    y = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:levels]
    theirs = pm.ms_ssim(x, y, data_range=1.0, size_average=False, weights=[w / sum(weights) for w in weights])
    torch.testing.assert_close(ms_ssim(x, y, levels=levels), theirs, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ssim(x, y), pm.ssim(x, y, data_range=1.0, size_average=False), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ JPEG

def test_jpeg_quality_orders_psnr_and_bytes(tiles):
    outs = [jpeg_roundtrip(tiles, q) for q in (10, 30, 60, 90)]
    psnrs = [float(psnr(o.x_hat, tiles).mean()) for o in outs]
    rates = [float(o.bpp.mean()) for o in outs]
    assert all(b > a for a, b in zip(psnrs, psnrs[1:])), psnrs
    assert all(b > a for a, b in zip(rates, rates[1:])), rates
    whole = jpeg_roundtrip(tiles, 60, count_header=True)
    assert (whole.bpp > outs[2].bpp).all() and torch.equal(whole.x_hat, outs[2].x_hat)
    assert outs[0].x_hat.shape == tiles.shape and outs[0].x_hat.min() >= 0 and outs[0].x_hat.max() <= 1
    with pytest.raises(ValueError, match="quality"):
        jpeg_roundtrip(tiles, 0)


# ------------------------------------------------------------------ learned codec

def test_logistic_likelihoods_sum_to_one():
    model = LogisticEntropyModel(3)
    with torch.no_grad():
        model.loc.copy_(torch.tensor([0.0, 0.3, -2.0]))
        model.log_scale.copy_(torch.tensor([0.0, 1.5, -1.0]))
    t = torch.zeros(1, 1)
    grid = torch.arange(-200, 201, dtype=torch.float32).view(1, 1, -1, 1).expand(1, 3, -1, 1)
    p = model.likelihood(model.parameters_for(t)[0] + grid, t)  # integers around each location
    torch.testing.assert_close(p.sum(2).flatten(), torch.ones(3), rtol=0, atol=1e-5)


def test_codec_shapes_rate_and_errors():
    codec = FactorizedPriorCodec(channels=8, latent_channels=4, levels=2, kernel=3)
    x = torch.rand(2, 3, 16, 16)
    out = codec(x, 0.01, quantize="noise", generator=torch.Generator().manual_seed(0))
    assert out.x_hat.shape == x.shape and out.y_hat.shape == (2, 4, 4, 4) and (out.bpp > 0).all()
    rounded = codec(x, torch.tensor([0.001, 0.1]))
    loc, _ = codec.entropy_model.parameters_for(codec.rate_code(torch.tensor([0.001, 0.1]), 2))
    torch.testing.assert_close(rounded.y_hat - loc, torch.round(rounded.y_hat - loc))
    comp = codec.compress(x, 0.01)
    assert comp.x_hat.min() >= 0 and comp.x_hat.max() <= 1 and comp.bpp.shape == (2,)
    with pytest.raises(ValueError, match="divisible"):
        codec(torch.rand(1, 3, 18, 16), 0.01)
    with pytest.raises(ValueError, match="lmbda_range"):
        FactorizedPriorCodec(lmbda_range=(0.1, 0.01))


def test_rate_falls_with_lambda():
    """Two fixed-rate codecs trained alike: the one with the smaller λ spends fewer bits."""
    images = natural_images(TRAIN_PHOTOS[:2], 0.5)
    patches = random_patches(images, 512, 16, seed=0)
    held_out = random_patches(images, 64, 16, seed=1)
    rates = []
    for lam in (0.0005, 0.05):
        torch.manual_seed(0)
        codec = FactorizedPriorCodec(channels=8, latent_channels=4, levels=2, kernel=3, lmbda_range=(lam, lam))
        train_codec(codec, patches, epochs=4, batch_size=32, lr=5e-3, seed=0)
        rates.append(float(codec.compress(held_out, lam).bpp.mean()))
    assert rates[0] < rates[1], rates


# ------------------------------------------------------------------ spectral tools

def test_white_noise_spectrum_is_flat_and_parseval_holds():
    gen = torch.Generator().manual_seed(0)
    noise = 0.3 * torch.randn(4000, 16, 16, generator=gen, dtype=torch.float64)
    p = power_spectrum(noise)
    torch.testing.assert_close(p.sum((-2, -1)), noise.pow(2).sum((-2, -1)))  # Parseval, per image
    mean = p.mean(0)
    assert float((mean / 0.09 - 1).abs().max()) < 0.1  # flat at sigma² everywhere (4000 draws: ~2% noise)
    r = frequency_radius(16, 16)
    area = float(((r > 0.25).sum()) / (r.numel() - 1))
    assert abs(high_frequency_fraction(mean) - area) < 0.01
    _, profile = radial_profile(mean)
    assert float((profile[1:] / 0.09 - 1).abs().max()) < 0.05


def test_error_spectrum_and_grid_ratio():
    x = torch.rand(8, 3, 32, 32)
    noise = 0.05 * torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    amp = error_spectrum(x + noise, x)
    assert amp.shape == (32, 32) and (amp >= 0).all()
    power = error_spectrum(x + noise, x, kind="power")
    assert 0.5 < grid_peak_ratio(power) < 2
    blocky = torch.ones(32, 32)
    blocky[:: 4, :: 4] = 10.0  # a lattice of peaks at multiples of 32/8
    blocky[0, 0] = 1.0
    assert grid_peak_ratio(torch.fft.fftshift(blocky), period=8) > 5
    with pytest.raises(ValueError, match="multiples of the period"):
        grid_peak_ratio(torch.ones(30, 30))
    with pytest.raises(ValueError, match="at least 16"):  # no neighbours to compare with at one period
        grid_peak_ratio(torch.ones(8, 8))
    with pytest.raises(ValueError, match="kind"):
        error_spectrum(x, x, kind="phase")


def test_fourier_basis_and_heat_map_closed_form():
    basis = fourier_basis(8)
    assert basis.shape == (8, 5, 8, 8)
    torch.testing.assert_close(basis.flatten(2).norm(dim=2), torch.ones(8, 5))
    spec = torch.fft.fft2(basis[2, 3]).abs()  # frequency (2, 3) and its mirror only
    assert float(spec[2, 3] ** 2 + spec[-2, -3] ** 2) == pytest.approx(float(spec.pow(2).sum()), rel=1e-5)
    grey = torch.full((2, 3, 8, 8), 0.5)
    eps = 0.2  # no clipping: PSNR against the clean image is exactly -10 log10(eps² / (H·W))
    half = fourier_heat_map(lambda x: x, grey, eps, reference="clean", chunk=7)
    torch.testing.assert_close(half, torch.full((8, 5), -10 * math.log10(eps**2 / 64)), rtol=1e-4, atol=1e-4)
    full = full_heat_map(torch.arange(40.0).view(8, 5))
    assert full.shape == (8, 8)
    centre = 4
    for dy, dx in ((1, 2), (3, -1), (0, 3)):
        assert full[centre + dy, centre + dx] == full[centre - dy, centre - dx]


# ------------------------------------------------------------------ linear toy

def test_linear_toy_identities():
    spec = power_law_spectrum(8, 2.0)
    cov = field_covariance(spec)
    fields = gaussian_field(20000, spec, seed=0)
    emp = torch.cov(fields.flatten(1).T)
    assert float((emp - cov).abs().max()) < 0.05 * float(cov.diagonal().mean())
    full = PCACodec(64).fit(fields)
    torch.testing.assert_close(full.reconstruct(fields[:5]), fields[:5])
    k8 = PCACodec(8).fit(fields)
    theory = k8.expected_distortion(cov)
    assert theory["wrt_input"] == pytest.approx(theory["wrt_clean"])
    discarded = float(torch.diagonal(k8.components_[:, 8:].T @ cov @ k8.components_[:, 8:]).sum()) / 64
    assert theory["wrt_input"] == pytest.approx(discarded)
    with pytest.raises(ValueError, match="k must be"):
        PCACodec(0).fit(fields)


# ------------------------------------------------------------------ data

def test_natural_images_and_patches():
    img = natural_image("coffee", 0.5)
    assert img.shape == (3, 200, 300) and img.min() >= 0 and img.max() <= 1
    patches = random_patches([img], 10, 32, seed=0)
    assert patches.shape == (10, 3, 32, 32) and torch.equal(patches, random_patches([img], 10, 32, seed=0))
    assert center_crops([img], 64, 4).shape == (4, 3, 64, 64)
    with pytest.raises(ValueError, match="unknown photograph"):
        natural_image("lena")
    with pytest.raises(ValueError, match="tiles"):
        center_crops([img], 64, 50)


def test_gdn_off_diagonal_gamma_trains():
    """γ's off-diagonal entries get a gradient (a squared parameter started at exactly 0 never would)."""
    from interpbook.compression import GDN

    gdn = GDN(4)
    gdn(torch.randn(2, 4, 5, 5)).pow(2).sum().backward()
    off = gdn.gamma_sqrt.grad[~torch.eye(4, dtype=torch.bool)]
    assert (off != 0).all()
    torch.testing.assert_close(gdn.gamma_sqrt.detach() ** 2, 0.1 * torch.eye(4) + 1e-4)


def test_balanced_lambda_weighting_keeps_fixed_rate_loss():
    """``balance_lambda`` reweights λ within a range; for a fixed-rate codec it changes nothing."""
    patches = random_patches(natural_images(TRAIN_PHOTOS[:1], 0.5), 64, 16, seed=0)
    losses = []
    for balance in (True, False):
        torch.manual_seed(0)
        codec = FactorizedPriorCodec(channels=8, latent_channels=4, levels=2, kernel=3, lmbda_range=(0.01, 0.01))
        losses.append(train_codec(codec, patches, epochs=1, batch_size=32, seed=0, balance_lambda=balance).loss)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_fourier_basis_built_in_chunks_matches_one_hot_spectra():
    basis = fourier_basis(64)  # 2,112 basis images: more than one chunk
    for ky, kx in [(0, 1), (5, 7), (63, 32), (32, 0)]:
        one_hot = torch.zeros(64, 33, dtype=torch.complex64)
        one_hot[ky, kx] = 1
        img = torch.fft.irfft2(one_hot, s=(64, 64))
        torch.testing.assert_close(basis[ky, kx], img / img.norm())


def test_lower_bound_lets_gradients_that_raise_x_through():
    from interpbook.compression.codec import lower_bound

    x = torch.tensor([0.01, 0.5], requires_grad=True)
    y = lower_bound(x, 0.1)
    assert y.tolist() == pytest.approx([0.1, 0.5])
    (-y).sum().backward()  # descent raises x: the gradient reaches the clamped entry too
    assert x.grad.tolist() == [-1.0, -1.0]
    x.grad = None
    lower_bound(x, 0.1).sum().backward()  # descent would lower x further: blocked below the bound
    assert x.grad.tolist() == [0.0, 1.0]


def test_rate_distortion_loss_accepts_lambda_as_a_column():
    from interpbook.compression.codec import RDOutput, rate_distortion_loss

    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    out = RDOutput(x_hat=x + 0.01 * torch.randn_like(x), bpp=torch.rand(4), y_hat=torch.zeros(4, 2, 1, 1))
    lam = torch.tensor([0.004, 0.01, 0.02, 0.05])
    torch.testing.assert_close(rate_distortion_loss(out, x, lam[:, None]), rate_distortion_loss(out, x, lam))
    with pytest.raises(ValueError, match="one value per image"):
        rate_distortion_loss(out, x, torch.ones(3))
