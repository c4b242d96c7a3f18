"""Synthetic overhead RGB + near-infrared scenes with per-pixel material labels, and band-wise corruption.

Context. Vegetation reflects strongly in the near-infrared (NIR, ~830 nm) and weakly in the visible; most
man-made surfaces are flat across the spectrum. A segmentation model that sees NIR can therefore separate
classes that look alike in RGB. Here the scenes are *built* so that two materials — vegetation and
artificial turf — differ mainly in NIR (0.45 vs 0.08; their green differs slightly, 0.08 vs 0.09, so RGB
separates them only weakly, from the colour ratio over a neighbourhood): NIR is nearly necessary by
construction, which is a design choice of the data, not a fact about the world (Godfrey et al., 2023,
arXiv:2309.12463, study real WorldView-3-like imagery).

Each scene, ``[4, H, W]`` with bands :data:`BANDS` = (R, G, B, NIR) in [0, 1], is

    x_b(p) = clip( L · s(p) · r_{m(p), b} · (1 + τ (2 ρ(p) − 1)) + σ_b ε_b(p) ),

with ``m(p)`` the material at pixel ``p`` (a Voronoi partition of ``n_regions`` random sites, its
distances warped by a smooth random field so that regions are blobs rather than polygons), ``r`` the
reflectance table :data:`REFLECTANCE`, ``L`` a global illumination scale per scene, ``s(p)`` a shadow
multiplier (``shadow`` = 0.3 where a roof casts its shadow), ``ρ`` a 1/f texture field (one per scene,
shared by the bands, as ImageNet-C's plasma fractal), and ``ε`` per-band white Gaussian noise.

Every random draw comes from one ``torch.Generator`` (CPU by default, so a seed gives the same scenes on
every device); the outputs are moved to ``device``. All scenes are drawn at once, without Python loops
over samples. :func:`corrupt_bands` applies an ImageNet-C corruption or multispectral weather to selected
bands only (corrupt all, copy back the chosen channels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from interpbook.corruptions import corrupt, weather
from interpbook.corruptions.weather import plasma_field

BANDS: tuple[str, ...] = ("R", "G", "B", "NIR")
MATERIALS: tuple[str, ...] = ("vegetation", "turf", "soil", "water", "road", "roof")
# Approximate surface reflectances (the plan's table, inferred): vegetation and turf differ only in NIR.
REFLECTANCE = torch.tensor([
    [0.05, 0.08, 0.04, 0.45],  # vegetation
    [0.05, 0.09, 0.04, 0.08],  # artificial turf
    [0.25, 0.20, 0.15, 0.30],  # soil
    [0.03, 0.05, 0.08, 0.01],  # water
    [0.12, 0.12, 0.12, 0.15],  # road
    [0.30, 0.30, 0.30, 0.33],  # roof
])
# Height above ground in metres, for the depth field (buildings and trees stand out; the rest is flat).
HEIGHT_M = {"vegetation": 3.0, "turf": 0.0, "soil": 0.0, "water": 0.0, "road": 0.0, "roof": 8.0}
SENSOR_ALTITUDE_M = 40.0  # a low sensor, so that heights change the optical path by a visible fraction
NIR_MODES = ("informative", "shuffled")


@dataclass
class SceneConfig:
    size: int = 16  # H = W in pixels
    n_regions: int = 6  # Voronoi sites per scene
    warp: float = 0.35  # amplitude of the smooth field added to the Voronoi distances (in units of the image side)
    illumination: tuple[float, float] = (0.75, 1.25)  # global illumination scale L ~ U(lo, hi) per scene
    shadow: float = 0.3  # multiplier in roof shadows (1: no shadows)
    shadow_offset: int = 2  # how far (pixels, down and right) a roof's shadow is cast
    texture: float = 0.15  # amplitude τ of the 1/f texture (multiplicative, ±τ)
    noise: tuple[float, ...] = (0.01, 0.01, 0.01, 0.01)  # per-band noise standard deviation σ_b
    nir: str = "informative"  # "shuffled": NIR reflectance drawn from a random material, not the region's own


@dataclass
class Scenes:
    """A batch of scenes: ``x`` ``[N, 4, H, W]`` in [0, 1], ``labels`` ``[N, H, W]`` long (indices into
    ``classes``), ``depth`` ``[N, 1, H, W]`` > 0 (distance from the sensor, for fog), and the names."""

    x: Tensor
    labels: Tensor
    depth: Tensor
    classes: tuple[str, ...]
    bands: tuple[str, ...] = BANDS

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device) -> Scenes:
        return Scenes(self.x.to(device), self.labels.to(device), self.depth.to(device), self.classes, self.bands)

    def __getitem__(self, index) -> Scenes:
        return Scenes(self.x[index], self.labels[index], self.depth[index], self.classes, self.bands)


def _check_materials(materials: Sequence[str]) -> tuple[str, ...]:
    materials = tuple(materials)
    unknown = [m for m in materials if m not in MATERIALS]
    if unknown or len(set(materials)) != len(materials) or len(materials) < 2:
        raise ValueError(f"materials must be >= 2 distinct names from {', '.join(MATERIALS)}; got {materials}")
    return materials


def label_maps(n: int, size: int, n_classes: int, *, n_regions: int = 6, warp: float = 0.35,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Blob-shaped label maps: a warped Voronoi partition, each cell a random class.

    Sites are uniform in the unit square; a pixel takes the class of the site minimising
    ``|p − site| + warp · (2 ρ_k(p) − 1)``, with ``ρ_k`` a smooth 1/f field per site, which bends the cell
    borders into blobs. Drawn on the generator's device.

    Returns:
        ``(labels, region)``, both ``[n, size, size]`` long: the class and the Voronoi cell of every pixel.
    """
    gen = generator if generator is not None else torch.Generator()
    dev = gen.device
    sites = torch.rand((n, n_regions, 2), generator=gen, device=dev)
    classes = torch.randint(0, n_classes, (n, n_regions), generator=gen, device=dev)
    coords = (torch.arange(size, device=dev, dtype=torch.float32) + 0.5) / size
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    dist = ((py - sites[..., 0, None, None]) ** 2 + (px - sites[..., 1, None, None]) ** 2).sqrt()  # [n, K, H, W]
    if warp > 0:
        bend = plasma_field(n * n_regions, size, decay=2.5, generator=gen, device=dev).view(n, n_regions, size, size)
        dist = dist + warp * (2 * bend - 1)
    region = dist.argmin(1)  # [n, H, W]
    return classes.gather(1, region.flatten(1)).view(n, size, size), region


def multispectral_scenes(n: int, *, config: SceneConfig | None = None, materials: Sequence[str] = MATERIALS,
                         generator: torch.Generator | None = None, seed: int = 0, device=None,
                         **overrides) -> Scenes:
    """Draw ``n`` synthetic overhead RGB + NIR scenes with material labels.

    Args:
        n: number of scenes.
        config: a :class:`SceneConfig`; keyword ``overrides`` replace its fields (``size=32``, ``noise=...``).
        materials: the classes present, a subset of :data:`MATERIALS` in any order (label ``i`` is
            ``materials[i]``). Dropping ``"turf"`` gives the control in which no class needs NIR.
        generator, seed: the randomness (``generator`` wins; else a CPU generator seeded with ``seed``).
        device: where the returned tensors live (default: the generator's device).

    Returns:
        :class:`Scenes` with ``x`` ``[n, 4, H, W]`` float32 in [0, 1], ``labels`` ``[n, H, W]`` long and
        ``depth`` ``[n, 1, H, W]``.

    >>> s = multispectral_scenes(2, seed=0)
    >>> s.x.shape, s.labels.shape, s.bands
    (torch.Size([2, 4, 16, 16]), torch.Size([2, 16, 16]), ('R', 'G', 'B', 'NIR'))
    """
    cfg = config or SceneConfig()
    unknown = [k for k in overrides if not hasattr(cfg, k)]
    if unknown:
        raise ValueError(f"unknown scene option {unknown[0]!r}; allowed: {', '.join(vars(cfg))}")
    cfg = SceneConfig(**{**vars(cfg), **overrides})
    materials = _check_materials(materials)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if cfg.nir not in NIR_MODES:
        raise ValueError(f"unknown nir mode {cfg.nir!r}; allowed: {', '.join(NIR_MODES)}")
    if len(cfg.noise) != len(BANDS):
        raise ValueError(f"noise needs one standard deviation per band {BANDS}, got {cfg.noise}")
    gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    dev = gen.device
    h = w = cfg.size
    k = len(materials)
    table = REFLECTANCE[[MATERIALS.index(m) for m in materials]].to(dev)  # [k, 4]

    labels, region = label_maps(n, h, k, n_regions=cfg.n_regions, warp=cfg.warp, generator=gen)
    refl = table[labels].permute(0, 3, 1, 2)  # [n, 4, H, W]
    if cfg.nir == "shuffled":  # NIR of an independent random material per region: same marginal, no label information
        other = torch.randint(0, k, (n, cfg.n_regions), generator=gen, device=dev)
        refl[:, 3] = table[other.gather(1, region.flatten(1)).view(n, h, w), 3]
    lo, hi = cfg.illumination
    light = lo + (hi - lo) * torch.rand((n, 1, 1, 1), generator=gen, device=dev)
    roof = torch.zeros((n, 1, h, w), device=dev)
    if "roof" in materials:
        roof = (labels == materials.index("roof")).float()[:, None]
    o = cfg.shadow_offset
    cast = F.pad(roof, (o, 0, o, 0))[..., :h, :w] if o > 0 else torch.zeros_like(roof)
    shade = torch.where((cast > 0) & (roof == 0), torch.full_like(roof, cfg.shadow), torch.ones_like(roof))
    rho = plasma_field(n, (h, w), decay=2.0, generator=gen, device=dev)  # 1/f texture, shared by the bands
    sigma = torch.tensor(cfg.noise, device=dev).view(1, -1, 1, 1)
    noise = torch.randn((n, len(BANDS), h, w), generator=gen, device=dev) * sigma
    x = (light * shade * refl * (1 + cfg.texture * (2 * rho - 1)) + noise).clamp(0, 1)

    heights = torch.tensor([HEIGHT_M[m] for m in materials], device=dev)[labels][:, None]
    depth = SENSOR_ALTITUDE_M - heights
    out = Scenes(x.float(), labels.long(), depth.float(), materials)
    return out.to(device) if device is not None else out


def band_means(x: Tensor) -> Tensor:
    """Per-band mean over a set of images, ``[C]``: the "absent band" fill of band Shapley and ablation."""
    if x.dim() != 4:
        raise ValueError(f"x must be [N, C, H, W], got {tuple(x.shape)}")
    return x.mean((0, 2, 3))


def class_band_means(x: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """Mean of every band over the pixels of every class, ``[n_classes, C]`` (NaN for an absent class)."""
    c = x.shape[1]
    flat = x.permute(1, 0, 2, 3).reshape(c, -1).double()  # [C, N*H*W]; float64 sums over many pixels
    one_hot = F.one_hot(labels.reshape(-1), n_classes).double()  # [N*H*W, K]
    sums = flat @ one_hot  # [C, K]
    counts = one_hot.sum(0)
    return (sums / counts).T.to(x.dtype)


# ---------------------------------------------------------------------------------------------- corruptions

WEATHER_CORRUPTIONS = ("fog", "haze", "snow")
TARGETS: dict[str, tuple[str, ...]] = {"RGB": ("R", "G", "B"), "NIR": ("NIR",), "all": BANDS}


def corrupt_bands(x: Tensor, name: str, severity: int, target: str | Sequence[str] = "all", *, seed: int = 0,
                  depth: Tensor | None = None, bands: Sequence[str] = BANDS) -> Tensor:
    """Corrupt only some bands of a multispectral batch ``x`` ``[B, C, H, W]`` in [0, 1].

    The whole cube is corrupted, then only the channels of ``target`` are copied into a copy of ``x``, so a
    corruption of "RGB" and one of "NIR" are the two halves of the same event. Weather (``fog``, ``haze``,
    ``snow`` of :mod:`interpbook.corruptions.weather`) acts on all bands at once, coherently (one fog bank,
    ``depth`` optional); ImageNet-C corruptions (:func:`interpbook.corruptions.corrupt`, defined for 1 or 3
    channels) act on the RGB triple and on each other band separately, with distinct seeds.

    Args:
        name: a corruption of :data:`interpbook.corruptions.CORRUPTIONS` or :data:`WEATHER_CORRUPTIONS`.
        severity: 1..5.
        target: ``"RGB"``, ``"NIR"``, ``"all"`` (:data:`TARGETS`) or a sequence of band names.
        seed: randomness of the corruption.
        depth: ``[B, 1, H, W]`` scene depth for the weather corruptions.
        bands: the band names of ``x``'s channels.
    """
    bands = tuple(bands)
    if x.dim() != 4 or x.shape[1] != len(bands):
        raise ValueError(f"x must be [B, {len(bands)}, H, W] for bands {bands}; got {tuple(x.shape)}")
    chosen = TARGETS[target] if isinstance(target, str) and target in TARGETS else target
    if isinstance(chosen, str) or any(b not in bands for b in chosen):
        raise ValueError(f"unknown target {target!r}; allowed: {', '.join(TARGETS)} or a list of bands from {bands}")
    idx = [bands.index(b) for b in chosen]
    if name in WEATHER_CORRUPTIONS:
        full = getattr(weather, name)(x, severity, depth=depth, seed=seed, bands=bands)
    else:
        rgb = [bands.index(b) for b in ("R", "G", "B") if b in bands]
        full = x.clone()
        if len(rgb) == 3:
            full[:, rgb] = corrupt(x[:, rgb], name, severity, seed=seed)
        for j, c in enumerate(i for i in range(len(bands)) if i not in (rgb if len(rgb) == 3 else [])):
            full[:, c:c + 1] = corrupt(x[:, c:c + 1], name, severity, seed=seed + 1 + j)
    out = x.clone()
    out[:, idx] = full[:, idx]
    return out
