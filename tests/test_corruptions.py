"""ImageNet-C corruptions: determinism, shape and range, severity monotone in a distortion, known answers."""

from __future__ import annotations

import math

import pytest
import torch

from interpbook.compression import frequency_radius, mse, power_spectrum, to_gray
from interpbook.corruptions import CORRUPTION_GROUPS, CORRUPTIONS, corrupt
from interpbook.corruptions.imagenet_c import disk_kernel
from interpbook.data.natural import center_crops, natural_image

OURS = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
        "brightness", "contrast", "jpeg_compression", "pixelate", "elastic_transform"]
RANDOM = ["gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "elastic_transform"]
BLURS = ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur"]


@pytest.fixture(scope="module")
def tiles():
    """Four 64×64 tiles of two bundled photographs, [4, 3, 64, 64]."""
    return center_crops([natural_image("astronaut", 0.5), natural_image("chelsea", 0.5)], 64, 2)


def high_frequency_power(x):
    """Grey-level power above half-Nyquist, summed: what blur removes."""
    r = frequency_radius(*x.shape[-2:])
    return float(power_spectrum(to_gray(x)).mean(0)[r > 0.25].sum())


def changed_columns(x):
    """Share of adjacent pixel columns that differ somewhere: the resolution pixelate keeps."""
    return float((x[..., 1:] != x[..., :-1]).flatten(1, 2).any(1).float().mean())


def test_registry_and_groups():
    assert set(OURS) <= set(CORRUPTIONS)
    assert sum(len(g) for g in CORRUPTION_GROUPS.values()) == 15
    assert set(OURS) | {"snow", "frost", "fog"} == {n for g in CORRUPTION_GROUPS.values() for n in g}


@pytest.mark.parametrize("name", OURS)
def test_deterministic_shape_and_range(name, tiles):
    for severity in (1, 5):
        a = corrupt(tiles, name, severity, seed=3)
        b = corrupt(tiles, name, severity, seed=3)
        assert torch.equal(a, b)
        assert a.shape == tiles.shape and a.dtype == tiles.dtype and a.device == tiles.device
        assert a.min() >= 0 and a.max() <= 1
        assert not torch.equal(a, tiles)
    grey = corrupt(tiles[:, :1], name, 3, seed=0)
    assert grey.shape == tiles[:, :1].shape and grey.min() >= 0 and grey.max() <= 1


@pytest.mark.parametrize("name", RANDOM)
def test_seed_changes_random_corruptions(name, tiles):
    assert not torch.equal(corrupt(tiles, name, 3, seed=0), corrupt(tiles, name, 3, seed=1))


@pytest.mark.parametrize("name", OURS)
def test_severity_is_monotone_in_distortion(name, tiles):
    outs = [corrupt(tiles, name, s, seed=0) for s in range(1, 6)]
    if name in BLURS:  # blur removes high frequencies: less is left at every severity step
        stat = [-high_frequency_power(o) for o in outs]
    elif name == "pixelate":  # the box factor .6 ... .25 keeps fewer distinct columns
        stat = [-changed_columns(o) for o in outs]
    else:
        stat = [float(mse(o, tiles).mean()) for o in outs]
    assert all(b > a for a, b in zip(stat, stat[1:])), stat


def test_noise_statistics_match_constants():
    grey = torch.full((4, 3, 64, 64), 0.5)
    noisy = corrupt(grey, "gaussian_noise", 1, seed=0)  # sigma .08, far from the clip
    assert abs(float((noisy - grey).std()) - 0.08) < 0.003
    shot = corrupt(grey, "shot_noise", 1, seed=0)  # Poisson(30)/60: mean .5, variance .5/60
    assert abs(float(shot.mean()) - 0.5) < 0.005
    assert abs(float(shot.var()) - 0.5 / 60) < 0.001
    salt = corrupt(grey, "impulse_noise", 5, seed=0)  # a share .27 of the values becomes 0 or 1
    assert abs(float((salt != 0.5).float().mean()) - 0.27) < 0.01


def test_contrast_and_brightness_closed_forms(tiles):
    x = 0.25 + 0.5 * tiles  # no clipping
    low = corrupt(x, "contrast", 5)
    torch.testing.assert_close(low.mean((2, 3)), x.mean((2, 3)), rtol=0, atol=1e-6)
    torch.testing.assert_close(low - low.mean((2, 3), keepdim=True), 0.05 * (x - x.mean((2, 3), keepdim=True)))
    grey = corrupt(x[:, :1], "brightness", 2)
    torch.testing.assert_close(grey, (x[:, :1] + 0.2).clamp(0, 1))
    dim = 0.5 * tiles + 0.05  # HSV value stays below 1 after +.1: hue and saturation kept, V up by .1
    bright = corrupt(dim, "brightness", 1)
    torch.testing.assert_close(bright.amax(1), dim.amax(1) + 0.1, rtol=0, atol=1e-6)
    torch.testing.assert_close(bright / bright.amax(1, keepdim=True), dim / dim.amax(1, keepdim=True))


def test_blur_kernels_preserve_constants():
    k = disk_kernel(3, 0.1)
    assert math.isclose(float(k.sum()), 1.0, rel_tol=1e-9) and k.shape == (17, 17)
    # radius 10 fills its grid; the anti-aliasing blur reflects at the border (cv2's reflect-101, as in
    # the reference), which adds about 1% of mass
    k = disk_kernel(10, 0.5)
    assert abs(float(k.sum()) - 1.0) < 0.02 and k.shape == (21, 21)
    flat = torch.full((2, 3, 48, 48), 0.3)
    for name in BLURS + ["pixelate", "elastic_transform"]:
        torch.testing.assert_close(corrupt(flat, name, 4), flat, rtol=0, atol=2 / 255)


def test_bad_input_is_rejected(tiles):
    with pytest.raises(ValueError, match="severity"):
        corrupt(tiles, "contrast", 6)
    with pytest.raises(ValueError, match="severity"):
        corrupt(tiles, "contrast", 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(tiles * 2, "contrast", 1)
    with pytest.raises(ValueError, match="B, C, H, W"):
        corrupt(tiles[0], "contrast", 1)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(tiles, "rain", 1)


def test_glass_blur_scrambling_has_no_drift():
    # a ramp in x: a drift of the scrambled content would show as a mean change in the interior
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(8, 1, 64, 64).contiguous()
    out = corrupt(ramp, "glass_blur", 5, seed=0)
    interior = (slice(None), slice(None), slice(10, 54), slice(10, 54))
    shift_px = float((out[interior] - ramp[interior]).mean()) * 63  # in pixels of the ramp
    # one-sided offsets in [-4, 4) drifted the content by 1.15 px; what is left (0.14 px) is the reference's own
    # uint8 floor of the blurred image (-0.5/255 on average, 0.12 px of this ramp)
    assert abs(shift_px) < 0.4


def test_zoom_blur_uses_numpys_zoom_factors():
    import numpy as np

    from interpbook.corruptions import imagenet_c

    assert np.arange(1, 1.31, 0.03).tolist()[-1] == 1.3000000000000003  # what the reference iterates over
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = x.clone()
    for z in np.arange(1, 1.31, 0.03).tolist():
        ch = math.ceil(32 / z)
        top = (32 - ch) // 2
        crop = x[:, :, top:top + ch, top:top + ch]
        size = max(round(ch * z), 32)
        expected = expected + torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear",
                                                              align_corners=True)[:, :, :32, :32]
    torch.testing.assert_close(imagenet_c.zoom_blur(x, 5), (expected / 12).clamp(0, 1))


def test_corrupt_checks_the_severity_for_every_corruption(tiles):
    for name in ("fog", "snow", "gaussian_noise"):
        for bad in (0, 2.5, 6, True):
            with pytest.raises(ValueError, match="severity must be an integer in 1..5"):
                corrupt(tiles, name, bad)


def test_snow_flakes_are_clipped_before_the_streak():
    from interpbook.corruptions.weather import snow_layer

    layer = snow_layer(16, 64, 3, seed=0)
    assert float(layer.max()) <= 1.0 + 1e-6
