"""Physically consistent weather: identity at severity 0, Koschmieder in closed form, coherence across bands."""

from __future__ import annotations

import math

import pytest
import torch

from interpbook.corruptions import corrupt, fog, haze, snow
from interpbook.corruptions.weather import (
    FOG_OPTICAL_DEPTH,
    SNOW_PARAMS,
    band_wavelengths,
    fog_optical_depth,
    fog_transmission,
    koschmieder,
    plasma_field,
    snow_layer,
    snow_reflectance,
)

WEATHER = {"fog": fog, "haze": haze, "snow": snow}
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 arithmetic of exp and a convex combination


@pytest.fixture(scope="module")
def tiles():
    """Eight smooth random 4-band tiles in [0.05, 0.6] with a depth field, ``[8, 4, 32, 32]``, ``[8, 1, 32, 32]``."""
    gen = torch.Generator().manual_seed(0)
    x = 0.05 + 0.55 * plasma_field(32, 32, decay=1.5, generator=gen).view(8, 4, 32, 32)
    depth = 1 + plasma_field(8, 32, generator=gen)
    return x, depth


@pytest.mark.parametrize("name", ["fog", "haze", "snow"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_severity_zero_is_exactly_the_identity(name, channels, tiles):
    x, depth = tiles
    out = WEATHER[name](x[:, :channels], 0, depth=depth, seed=3)
    assert torch.equal(out, x[:, :channels])


@pytest.mark.parametrize("name", ["fog", "haze", "snow"])
def test_deterministic_for_a_seed_and_generator(name, tiles):
    x, depth = tiles
    fn = WEATHER[name]
    a = fn(x, 3, depth=depth, seed=5)
    assert torch.equal(a, fn(x, 3, depth=depth, seed=5))
    assert torch.equal(a, fn(x, 3, depth=depth, generator=torch.Generator().manual_seed(5)))
    assert not torch.equal(a, fn(x, 3, depth=depth, seed=6))
    assert a.shape == x.shape and a.dtype == x.dtype and 0 <= a.min() and a.max() <= 1


@pytest.mark.parametrize("name", ["fog", "haze", "snow"])
@pytest.mark.parametrize("channels", [3, 4])
def test_severity_is_monotone_in_distortion(name, channels, tiles):
    x, depth = tiles[0][:, :channels], tiles[1]
    outs = [WEATHER[name](x, s, depth=depth, seed=0) for s in range(6)]
    mse = [float(((o - x) ** 2).mean()) for o in outs]
    assert mse[0] == 0 and all(b > a for a, b in zip(mse, mse[1:])), mse
    if name != "snow":  # fog and haze also wash out contrast: the spatial spread of every band shrinks
        spread = [float(o.std((2, 3)).mean()) for o in outs]
        assert all(b < a for a, b in zip(spread, spread[1:])), spread


@pytest.mark.parametrize("angstrom", [0.0, 1.3])
@pytest.mark.parametrize("severity", [1, 2.5, 5])
def test_fog_on_a_constant_scene_matches_koschmieder(angstrom, severity):
    """Constant scene J, homogeneous fog, any constant depth: I_b = J t_b + A (1 - t_b), t_b = exp(-beta_b)."""
    j, airlight = 0.3, 0.8
    x = torch.full((2, 4, 8, 8), j)
    out = fog(x, severity, depth=torch.full((2, 1, 8, 8), 7.0), angstrom=angstrom, airlight=airlight,
              patchiness=0.0)
    tau = fog_optical_depth(severity)
    for b, lam in enumerate((660.0, 545.0, 480.0, 830.0)):  # R, G, B, NIR
        t = math.exp(-tau * (lam / 550.0) ** (-angstrom))
        torch.testing.assert_close(out[:, b], torch.full((2, 8, 8), j * t + airlight * (1 - t)), **TOL)


def test_fog_optical_depth_table_and_interpolation():
    assert fog_optical_depth(0) == 0
    assert [fog_optical_depth(s) for s in range(1, 6)] == list(FOG_OPTICAL_DEPTH)
    assert fog_optical_depth(2.5) == pytest.approx((FOG_OPTICAL_DEPTH[1] + FOG_OPTICAL_DEPTH[2]) / 2)


def test_depth_field_enters_per_pixel(tiles):
    """With a depth field and no patchiness, t = exp(-beta * d / mean(d)) pixel by pixel."""
    x, depth = tiles
    t = fog_transmission(x, 4, depth=depth, patchiness=0.0)
    rel = depth / depth.mean((2, 3), keepdim=True)
    for b, lam in enumerate(band_wavelengths(4).tolist()):
        torch.testing.assert_close(t[:, b:b + 1], torch.exp(-fog_optical_depth(4) * rel), **TOL)
        del lam  # grey fog: every band alike
    torch.testing.assert_close(fog(x, 4, depth=depth, patchiness=0.0), koschmieder(x, t, 0.9).clamp(0, 1))


@pytest.mark.parametrize("angstrom", [0.0, 1.3])
def test_one_path_field_for_all_bands(angstrom, tiles):
    """Coherence: log t_b / log t_G = (lambda_b / lambda_G)^(-alpha) at every pixel, patchy fog included."""
    x, depth = tiles
    t = fog_transmission(x, 3, depth=depth, angstrom=angstrom, seed=1).double()
    lam = band_wavelengths(4, dtype=torch.float64)
    ratio = torch.log(t) / torch.log(t[:, 1:2])
    expected = (lam / lam[1]) ** (-angstrom)
    torch.testing.assert_close(ratio, expected.view(1, 4, 1, 1).expand_as(ratio), rtol=1e-4, atol=1e-5)


def test_haze_spares_the_near_infrared_and_fog_is_grey(tiles):
    x, depth = tiles
    t_haze = fog_transmission(x, 3, depth=depth, angstrom=1.3).mean((0, 2, 3))  # R, G, B, NIR
    assert t_haze[3] > t_haze[0] > t_haze[1] > t_haze[2]
    t_fog = fog_transmission(x, 3, depth=depth, angstrom=0.0).mean((0, 2, 3))
    torch.testing.assert_close(t_fog, t_fog[:1].expand(4))


def test_snow_is_coherent_across_bands():
    """On a black scene every band gets the same flakes; NIR is the visible value times 0.85 / 0.95."""
    x = torch.zeros(6, 4, 32, 32)
    out = snow(x, 4, seed=2)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    below = out[:, 0] < 0.999  # where the visible band is not clipped
    torch.testing.assert_close(out[:, 3][below], out[:, 0][below] * 0.85 / 0.95, **TOL)
    layer = snow_layer(6, 32, 4, seed=2)
    layer = layer + torch.rot90(layer, 2, dims=(2, 3))
    kept = SNOW_PARAMS[3][6]
    torch.testing.assert_close(out[:, :1], ((1 - kept) * 0.5 + layer).clamp(0, 1), **TOL)


def test_snow_reflectance_values():
    r = snow_reflectance(torch.tensor([480.0, 660.0, 765.0, 830.0, 900.0]))
    torch.testing.assert_close(r, torch.tensor([0.95, 0.95, 0.90, 0.85, 0.85]))


def test_plasma_field_range_and_spectral_slope():
    """Min-max normalised to [0, 1]; log-log slope of the radial amplitude spectrum is -(1 + log2 decay)."""
    for decay in (1.5, 2.0):
        f = plasma_field(64, 64, decay=decay, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        assert torch.allclose(f.amin((2, 3)), torch.zeros(64, 1, dtype=torch.float64))
        assert torch.allclose(f.amax((2, 3)), torch.ones(64, 1, dtype=torch.float64))
        amp = torch.fft.fft2(f - f.mean((2, 3), keepdim=True)).abs().mean((0, 1))
        fy = torch.fft.fftfreq(64, dtype=torch.float64)[:, None]
        fx = torch.fft.fftfreq(64, dtype=torch.float64)[None, :]
        r = torch.sqrt(fy**2 + fx**2)
        keep = (r > 0.03) & (r < 0.4)
        slope = torch.linalg.lstsq(torch.stack([torch.log(r[keep]), torch.ones(int(keep.sum()), dtype=torch.float64)],
                                               1), torch.log(amp[keep])[:, None]).solution[0, 0]
        assert abs(float(slope) + 1 + math.log2(decay)) < 0.1, float(slope)


def test_registry_serves_fog_and_snow_on_rgb(tiles):
    x = tiles[0][:, :3]
    torch.testing.assert_close(corrupt(x, "fog", 3, seed=4), fog(x, 3, seed=4))
    torch.testing.assert_close(corrupt(x, "snow", 2, seed=4), snow(x, 2, seed=4))


def test_bad_inputs_raise(tiles):
    x, depth = tiles
    with pytest.raises(ValueError, match="severity"):
        fog(x, 6)
    with pytest.raises(ValueError, match="severity"):
        fog(x, -1)
    with pytest.raises(ValueError, match="integer"):
        snow(x, 2.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fog(x + 1, 1)
    with pytest.raises(ValueError, match="bands"):
        fog(x, 1, bands=("R", "G", "B"))
    with pytest.raises(ValueError, match="unknown band"):
        fog(x, 1, bands=("R", "G", "B", "SWIR"))
    with pytest.raises(ValueError, match="no default band names"):
        fog(torch.rand(1, 2, 8, 8), 1)
    with pytest.raises(ValueError, match="> 0"):
        fog(x, 1, depth=-depth)
    with pytest.raises(ValueError, match="depth must be"):
        fog(x, 1, depth=depth[:, :, :5])
    with pytest.raises(ValueError, match="airlight"):
        fog(x, 1, airlight=(0.9, 0.9))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["fog", "haze", "snow"])
def test_same_weather_on_gpu(name, tiles):
    x, depth = tiles
    cpu = WEATHER[name](x, 4, depth=depth, seed=1)
    gpu = WEATHER[name](x.cuda(), 4, depth=depth.cuda(), seed=1)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)
