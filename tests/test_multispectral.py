"""Multispectral scenes, fusion FCNs and band Shapley: known answers, Shapley axioms, captum parity."""

from __future__ import annotations

import pytest
import torch

from interpbook.attribution.band_shapley import (
    band_ablation,
    band_shapley,
    bootstrap_shapley,
    coalitions,
    confusion_matrix,
    mean_iou,
    miou_from_confusion,
    shapley_from_values,
)
from interpbook.data.multispectral import (
    BANDS,
    MATERIALS,
    REFLECTANCE,
    band_means,
    class_band_means,
    corrupt_bands,
    multispectral_scenes,
)
from interpbook.models.segmentation import FUSIONS, FusionFCN

TOL = dict(rtol=0, atol=1e-9)  # float64 sums of at most 2^k terms
CLEAN = dict(illumination=(1.0, 1.0), shadow=1.0, texture=0.0, noise=(0.0, 0.0, 0.0, 0.0))  # noise-free scenes


@pytest.fixture(scope="module")
def scenes():
    return multispectral_scenes(12, seed=0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FusionFCN("early", classes=len(MATERIALS)).eval()


# ---------------------------------------------------------------------------------------------- data

def test_scenes_shapes_range_and_names(scenes):
    assert scenes.x.shape == (12, 4, 16, 16) and scenes.x.dtype == torch.float32
    assert scenes.labels.shape == (12, 16, 16) and scenes.labels.dtype == torch.long
    assert scenes.depth.shape == (12, 1, 16, 16) and bool((scenes.depth > 0).all())
    assert float(scenes.x.min()) >= 0 and float(scenes.x.max()) <= 1
    assert scenes.bands == BANDS == ("R", "G", "B", "NIR") and scenes.classes == MATERIALS
    assert int(scenes.labels.min()) >= 0 and int(scenes.labels.max()) < len(MATERIALS)


def test_same_seed_same_scenes_other_seed_other_scenes():
    a, b = multispectral_scenes(5, seed=3), multispectral_scenes(5, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels) and torch.equal(a.depth, b.depth)
    c = multispectral_scenes(5, seed=4)
    assert not torch.equal(a.x, c.x)
    gen = torch.Generator().manual_seed(3)
    assert torch.equal(multispectral_scenes(5, generator=gen).x, a.x)  # the generator and the seed agree


def test_device_argument_moves_the_scenes():
    s = multispectral_scenes(2, seed=0, device="cpu")
    assert s.x.device.type == s.labels.device.type == "cpu"


def test_reflectance_table_recovered_without_noise():
    s = multispectral_scenes(40, seed=1, **CLEAN)
    means = class_band_means(s.x, s.labels, len(MATERIALS))
    torch.testing.assert_close(means, REFLECTANCE, rtol=0, atol=1e-6)


def test_vegetation_and_turf_differ_only_in_nir():
    veg, turf = REFLECTANCE[MATERIALS.index("vegetation")], REFLECTANCE[MATERIALS.index("turf")]
    assert (veg[:3] - turf[:3]).abs().max() <= 0.011 and veg[3] - turf[3] > 0.3


def test_dropping_turf_for_the_control():
    materials = tuple(m for m in MATERIALS if m != "turf")
    s = multispectral_scenes(20, materials=materials, seed=2, **CLEAN)
    assert s.classes == materials and int(s.labels.max()) == len(materials) - 1
    table = REFLECTANCE[[MATERIALS.index(m) for m in materials]]
    torch.testing.assert_close(class_band_means(s.x, s.labels, len(materials)), table, rtol=0, atol=1e-6)


def test_shuffled_nir_keeps_values_but_loses_the_label():
    s = multispectral_scenes(40, seed=2, nir="shuffled", **CLEAN)
    nir, own = s.x[:, 3], REFLECTANCE[s.labels, 3]
    assert torch.isin(nir, REFLECTANCE[:, 3]).all()  # NIR values are still materials' reflectances
    assert (nir != own).float().mean() > 0.5  # but mostly not the pixel's own material's
    torch.testing.assert_close(s.x[:, :3], REFLECTANCE[s.labels][..., :3].permute(0, 3, 1, 2))  # RGB untouched


def test_shadows_fall_next_to_roofs():
    s = multispectral_scenes(30, seed=5, **{**CLEAN, "shadow": 0.3})
    ratio = s.x / REFLECTANCE[s.labels].permute(0, 3, 1, 2)
    assert torch.isin(ratio.round(decimals=4), torch.tensor([1.0, 0.3])).all()
    shaded = ratio[:, 0] < 0.5
    assert shaded.any() and not (shaded & (s.labels == MATERIALS.index("roof"))).any()


def test_depth_is_lower_on_roofs_and_trees(scenes):
    roof = scenes.labels == MATERIALS.index("roof")
    ground = scenes.labels == MATERIALS.index("road")
    assert scenes.depth[:, 0][roof].max() < scenes.depth[:, 0][ground].min()


@pytest.mark.parametrize("kwargs, match", [
    (dict(materials=("vegetation", "lava")), "materials"),
    (dict(nir="random"), "nir mode"),
    (dict(noise=(0.1, 0.1)), "one standard deviation per band"),
    (dict(colour=1), "unknown scene option"),
])
def test_scene_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        multispectral_scenes(2, **kwargs)


# ---------------------------------------------------------------------------------------------- corruptions

@pytest.mark.parametrize("name", ["gaussian_noise", "defocus_blur", "contrast", "fog"])
def test_corrupt_bands_touches_only_the_target(scenes, name):
    x = scenes.x
    nir = corrupt_bands(x, name, 3, "NIR", seed=1, depth=scenes.depth)
    rgb = corrupt_bands(x, name, 3, "RGB", seed=1, depth=scenes.depth)
    every = corrupt_bands(x, name, 3, "all", seed=1, depth=scenes.depth)
    assert torch.equal(nir[:, :3], x[:, :3]) and not torch.equal(nir[:, 3], x[:, 3])
    assert torch.equal(rgb[:, 3], x[:, 3]) and not torch.equal(rgb[:, :3], x[:, :3])
    # RGB-only and NIR-only are the two halves of one event
    assert torch.equal(every, torch.cat([rgb[:, :3], nir[:, 3:]], 1))


def test_corrupt_bands_errors(scenes):
    with pytest.raises(ValueError, match="unknown target"):
        corrupt_bands(scenes.x, "fog", 1, "SWIR")
    with pytest.raises(ValueError, match="bands"):
        corrupt_bands(scenes.x[:, :3], "fog", 1, "NIR")


# ---------------------------------------------------------------------------------------------- models

@pytest.mark.parametrize("fusion", FUSIONS)
def test_fusion_output_shape(fusion):
    out = FusionFCN(fusion, classes=5)(torch.rand(3, 4, 16, 16))
    assert out.shape == (3, 5, 16, 16)


def test_rgb_variant_ignores_nir_and_fused_variants_do_not():
    torch.manual_seed(0)
    x = torch.rand(4, 4, 16, 16)
    x2 = x.clone()
    x2[:, 3] = torch.rand(4, 16, 16)
    for fusion in FUSIONS:
        model = FusionFCN(fusion).eval()
        same = torch.equal(model(x), model(x2))
        assert same == (fusion == "rgb"), fusion
    rgb = FusionFCN("rgb").eval()
    assert torch.equal(rgb(x), rgb(x[:, :3]))  # the RGB model also accepts three channels


@pytest.mark.parametrize("fusion", FUSIONS)
def test_context_branch_reads_the_tile_mean_of_the_stage(fusion):
    torch.manual_seed(0)
    plain, ctx = FusionFCN(fusion), FusionFCN(fusion, context=True)
    assert not any(".pool." in k for k in plain.state_dict())  # the default model is unchanged
    assert FusionFCN(fusion).state_dict().keys() == plain.state_dict().keys()
    assert ctx(torch.rand(2, 4, 16, 16)).shape == (2, 6, 16, 16)
    branch = ctx.rgb_branch if fusion == "late" else ctx.branch
    seen = {}
    branch.stage.register_forward_hook(lambda m, i, o: seen.__setitem__("stage", o))
    branch.pool.register_forward_hook(lambda m, i, o: seen.__setitem__("pool_in", i[0]))
    ctx(torch.rand(3, 4, 16, 16))
    torch.testing.assert_close(seen["pool_in"], seen["stage"].mean((2, 3), keepdim=True))


def test_model_errors():
    with pytest.raises(ValueError, match="allowed: rgb, early, mid, late"):
        FusionFCN("intermediate")
    with pytest.raises(ValueError, match="C in"):
        FusionFCN("late")(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="C in"):
        FusionFCN("rgb")(torch.rand(2, 5, 16, 16))
    with pytest.raises(ValueError, match="even"):
        FusionFCN("early")(torch.rand(2, 4, 15, 16))


# ---------------------------------------------------------------------------------------------- mIoU

def test_miou_hand_computed():
    target = torch.tensor([[0, 0, 1, 1, 2, 2]])
    pred = torch.tensor([[0, 1, 1, 1, 2, 0]])
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2; class 3 absent
    assert mean_iou(pred, target, 4) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert mean_iou(target, target, 3) == 1.0


def test_confusion_per_image_sums_to_total(scenes):
    pred = torch.randint(0, 6, scenes.labels.shape, generator=torch.Generator().manual_seed(0))
    per = confusion_matrix(pred, scenes.labels, 6, per_image=True)
    assert per.shape == (12, 6, 6)
    assert torch.equal(per.sum(0), confusion_matrix(pred, scenes.labels, 6))
    assert float(miou_from_confusion(per.sum(0))) == mean_iou(pred, scenes.labels, 6)


def test_miou_matches_torchmetrics(scenes):
    tm = pytest.importorskip("torchmetrics")
    pred = torch.randint(0, 6, scenes.labels.shape, generator=torch.Generator().manual_seed(1))
    ref = tm.JaccardIndex(task="multiclass", num_classes=6, average="macro")(pred, scenes.labels)
    assert mean_iou(pred, scenes.labels, 6) == pytest.approx(float(ref), abs=1e-6)


def test_metric_errors():
    with pytest.raises(ValueError, match="integer class maps"):
        confusion_matrix(torch.rand(2, 4), torch.zeros(2, 4).long(), 3)
    with pytest.raises(ValueError, match="shapes differ"):
        confusion_matrix(torch.zeros(2, 4).long(), torch.zeros(2, 5).long(), 3)
    with pytest.raises(ValueError, match="class indices"):
        confusion_matrix(torch.full((2, 4), 3), torch.zeros(2, 4).long(), 3)


# ---------------------------------------------------------------------------------------------- Shapley

def test_shapley_known_games():
    k = 4
    masks = coalitions(k).double()
    w = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(shapley_from_values(masks @ w), w, **TOL)  # additive game: φ = w
    unanimity = masks[:, [0, 2]].prod(1)  # v(S) = 1 iff {0, 2} ⊆ S
    torch.testing.assert_close(shapley_from_values(unanimity), torch.tensor([0.5, 0, 0.5, 0], dtype=torch.float64),
                               **TOL)
    game = masks[:, :2].sum(1) ** 2 + 3 * masks[:, 2]  # players 0 and 1 symmetric, player 3 a dummy
    phi = shapley_from_values(game)
    assert phi[0] == phi[1] and phi[3] == 0 and phi[2] == pytest.approx(3)
    assert float(phi.sum()) == pytest.approx(float(game[-1] - game[0]))


def test_coalition_order():
    c = coalitions(3)
    assert c.shape == (8, 3) and not c[0].any() and c[-1].all() and c[1].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="2\\^k"):
        shapley_from_values(torch.zeros(6))


def test_band_shapley_efficiency_and_dummy(scenes, model):
    mean = band_means(scenes.x)
    out = band_shapley(model, scenes.x, scenes.labels, baseline=mean, num_classes=6)
    assert float(out["phi"].sum()) == pytest.approx(float(out["values"][-1] - out["values"][0]), abs=1e-9)
    with torch.no_grad():
        full = mean_iou(model(scenes.x).argmax(1), scenes.labels, 6)
    assert float(out["values"][-1]) == pytest.approx(full)
    rgb = band_shapley(FusionFCN("rgb").eval(), scenes.x, scenes.labels, baseline=mean, num_classes=6,
                       metric="accuracy")
    assert float(rgb["phi"][3]) == 0.0  # the RGB model never reads NIR


def test_band_shapley_batching_does_not_change_the_answer(scenes, model):
    mean = band_means(scenes.x)
    a = band_shapley(model, scenes.x, scenes.labels, baseline=mean, num_classes=6, batch_size=4096)
    b = band_shapley(model, scenes.x, scenes.labels, baseline=mean, num_classes=6, batch_size=5)
    assert torch.equal(a["confusions"], b["confusions"])


def test_bootstrap_with_every_image_once_is_the_point_estimate(scenes, model):
    mean = band_means(scenes.x)
    out = band_shapley(model, scenes.x, scenes.labels, baseline=mean, num_classes=6)
    index = torch.stack([torch.arange(12), torch.arange(12).flip(0)])
    boot = bootstrap_shapley(out["confusions"], index)
    torch.testing.assert_close(boot, out["phi"].expand(2, 4), **TOL)


def test_ablation_is_the_one_band_missing_coalition(scenes, model):
    mean = band_means(scenes.x)
    out = band_shapley(model, scenes.x, scenes.labels, baseline=mean, num_classes=6)
    drop = band_ablation(model, scenes.x, scenes.labels, baseline=mean, num_classes=6)
    full = out["values"][-1]
    expected = torch.stack([full - out["values"][15 - (1 << b)] for b in range(4)])
    torch.testing.assert_close(drop, expected, **TOL)


def test_groups_make_rgb_one_player(scenes, model):
    mean = band_means(scenes.x)
    out = band_shapley(model, scenes.x, scenes.labels, baseline=mean, num_classes=6, groups=[[0, 1, 2], [3]])
    assert out["phi"].shape == (2,)
    assert float(out["phi"].sum()) == pytest.approx(float(out["values"][-1] - out["values"][0]), abs=1e-9)


def test_band_shapley_errors(scenes, model):
    with pytest.raises(ValueError, match="baseline"):
        band_shapley(model, scenes.x, scenes.labels, baseline=torch.zeros(3), num_classes=6)
    with pytest.raises(ValueError, match="labels"):
        band_shapley(model, scenes.x, scenes.labels.float(), baseline=0.1, num_classes=6)
    with pytest.raises(ValueError, match="metric"):
        band_shapley(model, scenes.x, scenes.labels, baseline=0.1, num_classes=6, metric="dice")


@pytest.mark.parametrize("metric", ["miou", "accuracy"])
def test_agrees_with_captum(scenes, model, metric):
    attr = pytest.importorskip("captum.attr")
    from interpbook.attribution.band_shapley import score

    mean = band_means(scenes.x)

    def value(x):  # the whole set's score: captum's "one scalar per batch" mode
        with torch.no_grad():
            conf = confusion_matrix(model(x).argmax(1), scenes.labels, 6)
        return score(conf, metric)

    mask = torch.arange(4).view(1, 4, 1, 1).expand(1, 4, 16, 16).contiguous()  # one feature per band
    base = mean.view(1, 4, 1, 1).expand(1, 4, 16, 16).contiguous()
    ours = band_shapley(model, scenes.x, scenes.labels, baseline=mean, num_classes=6, metric=metric)["phi"]
    theirs = attr.ShapleyValues(value).attribute(scenes.x, baselines=base, feature_mask=mask)[0, :, 0, 0]
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=0, atol=1e-6)
    ours_ab = band_ablation(model, scenes.x, scenes.labels, baseline=mean, num_classes=6, metric=metric)
    theirs_ab = attr.FeatureAblation(value).attribute(scenes.x, baselines=base, feature_mask=mask)[0, :, 0, 0]
    torch.testing.assert_close(ours_ab.double(), theirs_ab.double(), rtol=0, atol=1e-6)
