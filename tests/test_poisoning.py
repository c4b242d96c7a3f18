"""Backdoor poisoning: exact poison fraction, trigger placement and bands, relabelling, attack success rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interpbook.poisoning import (
    Trigger,
    apply_trigger,
    attack_success_rate,
    backdoor_success,
    nir_trigger,
    poison,
    rgb_trigger,
    trigger_mask,
    trigger_positions,
)
from interpbook.train import fit

VICTIM, TARGET = 2, 0


def blob_scenes(n: int, size: int = 16, seed: int = 0):
    """Three-class maps of random rectangles; each class a colour in RGB and a level in NIR, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n, size, size, dtype=torch.long)
    rows = torch.arange(size)[None, :, None]
    cols = torch.arange(size)[None, None, :]
    for cls in (1, 2):
        for _ in range(2):
            r0, c0 = torch.randint(0, size - 4, (2, n, 1, 1), generator=gen)
            hr, wc = torch.randint(3, 7, (2, n, 1, 1), generator=gen)
            labels[(rows >= r0) & (rows < r0 + hr) & (cols >= c0) & (cols < c0 + wc)] = cls
    colour = torch.tensor([[0.25, 0.2, 0.15, 0.3], [0.05, 0.08, 0.04, 0.45], [0.3, 0.3, 0.3, 0.33]])
    x = colour[labels].permute(0, 3, 1, 2) + 0.02 * torch.randn(n, 4, size, size, generator=gen)
    return x.clamp(0, 1), labels


@pytest.fixture(scope="module")
def data():
    return blob_scenes(200)


@pytest.mark.parametrize("rate", [0.0, 0.013, 0.05, 0.5, 1.0])
def test_poison_changes_exactly_the_requested_fraction(rate, data):
    x, labels = data
    p = poison(x, labels, rgb_trigger(2), rate, target=TARGET, victim=VICTIM, seed=1)
    k = {0.0: 0, 0.013: round(0.013 * len(x)), 0.05: round(0.05 * len(x)), 0.5: len(x) // 2 + len(x) % 2,
         1.0: len(x)}[rate]
    changed = ((p.x != x).flatten(1).any(1) | (p.labels != labels).flatten(1).any(1)).nonzero().flatten()
    assert len(p.index) == k and torch.equal(changed, p.index)
    assert torch.equal(p.index, p.index.unique())  # sorted, no repeats
    assert int(p.mask.sum()) == k * 4 and p.positions.shape == (k, 2)
    assert not torch.equal(p.x, x) or k == 0  # the inputs themselves are left alone
    assert torch.equal(x, data[0])


def test_trigger_lands_where_specified(data):
    x, labels = data
    for trig in (rgb_trigger(3), nir_trigger(3, nir=0.95)):
        p = poison(x, labels, trig, 0.1, target=TARGET, victim=VICTIM, location=(5, 9), seed=0)
        xp, xc = p.x[p.index], x[p.index]
        for b, v in enumerate(trig.signature):
            patch = xp[:, b, 5:8, 9:12]
            if v is None:  # untouched band: bit for bit the clean tile
                assert torch.equal(xp[:, b], xc[:, b])
            else:
                assert torch.equal(patch, torch.full_like(patch, v))
        outside = ~trigger_mask(p.positions, (16, 16), 3)[:, None].expand_as(xp)
        assert torch.equal(xp[outside], xc[outside])
        assert bool((p.positions == torch.tensor([5, 9])).all())


def test_nir_trigger_is_invisible_to_rgb_and_rgb_trigger_to_nir(data):
    x, labels = data
    p_nir = poison(x, labels, nir_trigger(2), 0.3, target=TARGET, victim=VICTIM, seed=2)
    assert torch.equal(p_nir.x[:, :3], x[:, :3]) and not torch.equal(p_nir.x[:, 3], x[:, 3])
    p_rgb = poison(x, labels, rgb_trigger(2), 0.3, target=TARGET, victim=VICTIM, seed=2)
    assert torch.equal(p_rgb.x[:, 3], x[:, 3]) and not torch.equal(p_rgb.x[:, :3], x[:, :3])


def test_random_positions_fit_and_follow_the_seed():
    pos = trigger_positions(500, (16, 12), 3, generator=torch.Generator().manual_seed(0))
    assert pos[:, 0].min() == 0 and pos[:, 0].max() == 13 and pos[:, 1].min() == 0 and pos[:, 1].max() == 9
    assert torch.equal(pos, trigger_positions(500, (16, 12), 3, generator=torch.Generator().manual_seed(0)))
    assert (trigger_mask(pos, (16, 12), 3).sum((1, 2)) == 9).all()


@pytest.mark.parametrize("relabel", ["victim", "region", "all"])
def test_relabelling_modes(relabel, data):
    x, labels = data
    p = poison(x, labels, rgb_trigger(2), 0.2, target=TARGET, victim=VICTIM, relabel=relabel, seed=3)
    before, after, mask = labels[p.index], p.labels[p.index], p.mask[p.index]
    if relabel == "victim":
        expected = torch.where(before == VICTIM, TARGET, before)
    elif relabel == "region":
        expected = torch.where(mask, TARGET, before)
    else:
        expected = torch.full_like(before, TARGET)
    assert torch.equal(after, expected)
    clean = torch.ones(len(x), dtype=torch.bool)
    clean[p.index] = False
    assert torch.equal(p.labels[clean], labels[clean])


def test_attack_success_rate_known_answers(data):
    _, labels = data
    assert attack_success_rate(labels, labels, target=TARGET, victim=VICTIM) == 0.0
    backdoored = torch.where(labels == VICTIM, TARGET, labels)
    assert attack_success_rate(backdoored, labels, target=TARGET, victim=VICTIM) == 1.0
    half = backdoored.clone()
    victim_pixels = (labels == VICTIM).nonzero()
    drop = victim_pixels[: len(victim_pixels) // 2]
    half[drop[:, 0], drop[:, 1], drop[:, 2]] = VICTIM
    expected = 1 - len(drop) / len(victim_pixels)
    assert attack_success_rate(half, labels, target=TARGET, victim=VICTIM) == pytest.approx(expected)
    logits = nn.functional.one_hot(backdoored, 3).permute(0, 3, 1, 2).float()
    assert attack_success_rate(logits, labels, target=TARGET, victim=VICTIM) == 1.0
    assert np.isnan(attack_success_rate(labels, torch.zeros_like(labels), target=TARGET, victim=VICTIM))
    # 'all' counts every pixel not already the target
    assert attack_success_rate(torch.full_like(labels, TARGET), labels, target=TARGET, relabel="all") == 1.0


class TinySeg(nn.Module):
    """Two 3×3 convolutions: a receptive field of 5 pixels, enough for a local (region) backdoor."""

    def __init__(self, bands: int = 4, classes: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(bands, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                                 nn.ReLU(), nn.Conv2d(16, classes, 1))

    def forward(self, x):
        return self.net(x)


def trained(x, labels, seed=0):
    torch.manual_seed(seed)
    model = TinySeg()
    fit(model, x, labels, epochs=15, lr=1e-2, batch_size=32, seed=seed)
    return model


def test_attack_success_low_on_clean_model_and_high_on_poisoned_model():
    x, labels = blob_scenes(400, seed=1)
    x_test, labels_test = blob_scenes(200, seed=2)
    clean = trained(x, labels)
    for trig in (rgb_trigger(2), nir_trigger(2)):
        res = backdoor_success(clean, x_test, labels_test, trig, target=TARGET, victim=VICTIM, seed=0)
        assert res["asr"] < 0.05 and res["clean"] < 0.05, res
    # a local backdoor the small network can learn: the trigger's own pixels read as the target
    p = poison(x, labels, rgb_trigger(2), 0.3, target=TARGET, relabel="region", seed=0)
    backdoored = trained(p.x, p.labels)
    res = backdoor_success(backdoored, x_test, labels_test, rgb_trigger(2), target=TARGET, relabel="region", seed=0)
    assert res["asr"] > 0.5 and res["clean"] < 0.05, res  # 0.70 at this seed: 4 trigger pixels per tile to learn


def test_agrees_with_art_single_pixel_backdoor(data):
    """ART's add_single_bd writes one pixel at distance 2 from the bottom-right corner in every channel."""
    perturbations = pytest.importorskip("art.attacks.poisoning.perturbations")
    x = data[0][:10]
    ours = apply_trigger(x, Trigger(1, (1.0,) * 4), torch.tensor([[14, 14]]).expand(10, 2))
    theirs = perturbations.add_single_bd(x.permute(0, 2, 3, 1).numpy(), distance=2, pixel_value=1)
    torch.testing.assert_close(ours, torch.from_numpy(theirs).permute(0, 3, 1, 2), rtol=0, atol=0)


def test_bad_inputs_raise(data):
    x, labels = data
    with pytest.raises(ValueError, match="rate"):
        poison(x, labels, rgb_trigger(), 1.5, target=TARGET, victim=VICTIM)
    with pytest.raises(ValueError, match="labels"):
        poison(x, labels[:, :8], rgb_trigger(), 0.1, target=TARGET, victim=VICTIM)
    with pytest.raises(ValueError, match="relabel"):
        poison(x, labels, rgb_trigger(), 0.1, target=TARGET, victim=VICTIM, relabel="everything")
    with pytest.raises(ValueError, match="victim"):
        poison(x, labels, rgb_trigger(), 0.1, target=TARGET)
    with pytest.raises(ValueError, match="bands"):
        apply_trigger(x[:, :3], nir_trigger(), torch.zeros(len(x), 2, dtype=torch.long))
    with pytest.raises(ValueError, match="does not fit"):
        trigger_positions(3, (16, 16), 2, location=(15, 0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Trigger(2, (1.5, None))
    with pytest.raises(ValueError, match="at least one band"):
        Trigger(2, (None, None))
    with pytest.raises(ValueError, match="mask"):
        attack_success_rate(labels, labels, target=TARGET, relabel="region")


def test_half_a_tile_rounds_up(data):
    x, labels = data
    p = poison(x[:10], labels[:10], rgb_trigger(2), 0.05, target=TARGET, victim=VICTIM, seed=0)
    assert len(p.index) == 1  # 0.5 tiles: Python's round() gave 0, i.e. no poison at all
