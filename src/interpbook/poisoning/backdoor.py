"""Backdoor poisoning of segmentation data with spectral patch triggers, and its attack success rate.

Context: a BadNets-style backdoor (Gu et al., 2017) for per-pixel segmentation of multispectral tiles, as in
Bishoff et al. (2023). The attacker controls a fraction ``rate`` of the training tiles: into each it places a
small square *trigger* (a tarp of chosen reflectance) and relabels part of the map as a *target* class. A
model trained on the mix behaves normally on clean tiles and obeys the backdoor when the trigger is present.

A trigger has a spectral signature: the value it writes in each band, or ``None`` where it leaves the band
untouched. :func:`rgb_trigger` is a coloured tarp visible in the visible bands only; :func:`nir_trigger`
changes the near-infrared band only, so it is invisible to an RGB camera (and to an RGB-only model).

Relabelling modes (``relabel``):

- ``"victim"``: every pixel of the victim class becomes the target (object vanishing: roofs read as soil);
- ``"region"``: the trigger's own pixels become the target;
- ``"all"``: the whole map becomes the target.

The attack success rate (:func:`attack_success_rate`) is the share of attacked pixels (those the mode
relabels, minus those already of the target class) that a model labels as the target on triggered tiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from interpbook.models.basic import eval_mode
from interpbook.models.segmentation import predict

RELABEL_MODES = ("victim", "region", "all")


@dataclass(frozen=True)
class Trigger:
    """A square patch of side ``size`` pixels writing ``signature[b]`` into band ``b`` (``None``: untouched)."""

    size: int
    signature: tuple[float | None, ...]
    name: str = "trigger"

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"trigger size must be a positive integer, got {self.size!r}")
        values = [v for v in self.signature if v is not None]
        if not values:
            raise ValueError("a trigger must write at least one band (signature is all None)")
        if any(not 0 <= v <= 1 for v in values):
            raise ValueError(f"trigger values must lie in [0, 1], got {self.signature}")

    @property
    def bands(self) -> list[int]:
        """Indices of the bands the trigger writes."""
        return [i for i, v in enumerate(self.signature) if v is not None]


def rgb_trigger(size: int = 2, *, bands: int = 4, colour: Sequence[float] = (0.9, 0.1, 0.9)) -> Trigger:
    """A tarp visible in the visible bands only (default magenta), leaving any NIR band untouched."""
    if bands < 3:
        raise ValueError(f"an RGB trigger needs at least 3 bands (R, G, B first), got {bands}")
    return Trigger(size, (*map(float, colour), *([None] * (bands - 3))), "RGB trigger")


def nir_trigger(size: int = 2, *, bands: int = 4, nir: float = 0.9, band: int = 3) -> Trigger:
    """A patch that changes only the near-infrared band (index ``band``) to ``nir``: invisible in RGB."""
    if not 0 <= band < bands:
        raise ValueError(f"band must index one of the {bands} bands, got {band}")
    return Trigger(size, tuple(float(nir) if b == band else None for b in range(bands)), "NIR trigger")


def trigger_positions(n: int, image_size: tuple[int, int], trigger_size: int, *,
                      location: str | tuple[int, int] = "random", generator: torch.Generator | None = None,
                      device=None) -> Tensor:
    """Top-left corners ``[n, 2]`` (row, column) of a ``trigger_size`` patch inside an ``image_size`` tile.

    ``location="random"`` draws each corner uniformly among the positions where the patch fits;
    a ``(row, col)`` pair places every patch there.
    """
    h, w = image_size
    if trigger_size > min(h, w):
        raise ValueError(f"a {trigger_size}-pixel trigger does not fit a {h}×{w} tile")
    if isinstance(location, str):
        if location != "random":
            raise ValueError(f"location must be 'random' or a (row, col) pair, got {location!r}")
        gen = generator if generator is not None else torch.Generator()
        rows = torch.randint(0, h - trigger_size + 1, (n,), generator=gen, device=gen.device)
        cols = torch.randint(0, w - trigger_size + 1, (n,), generator=gen, device=gen.device)
        return torch.stack([rows, cols], 1).to(device)
    r, c = location
    if not (0 <= r <= h - trigger_size and 0 <= c <= w - trigger_size):
        raise ValueError(f"a {trigger_size}-pixel trigger at {location} does not fit a {h}×{w} tile")
    return torch.tensor([[r, c]], device=device).expand(n, 2).clone()


def trigger_mask(positions: Tensor, image_size: tuple[int, int], trigger_size: int) -> Tensor:
    """Boolean ``[n, H, W]``, True on the ``trigger_size`` square at each row of ``positions: [n, 2]``."""
    h, w = image_size
    rows = torch.arange(h, device=positions.device)[None, :, None]
    cols = torch.arange(w, device=positions.device)[None, None, :]
    r0, c0 = positions[:, 0, None, None], positions[:, 1, None, None]
    return (rows >= r0) & (rows < r0 + trigger_size) & (cols >= c0) & (cols < c0 + trigger_size)


def apply_trigger(x: Tensor, trigger: Trigger, positions: Tensor) -> Tensor:
    """Write ``trigger`` into tiles ``x: [n, C, H, W]`` at ``positions: [n, 2]``; a new tensor of x's shape."""
    if x.dim() != 4 or x.shape[1] != len(trigger.signature):
        raise ValueError(f"x must be [n, C, H, W] with C = {len(trigger.signature)} bands for this trigger; "
                         f"got {tuple(x.shape)}")
    if positions.shape != (x.shape[0], 2):
        raise ValueError(f"positions must be [{x.shape[0]}, 2], got {tuple(positions.shape)}")
    mask = trigger_mask(positions.to(x.device), x.shape[-2:], trigger.size)[:, None]  # [n, 1, H, W]
    written = torch.tensor([v is not None for v in trigger.signature], device=x.device)[None, :, None, None]
    value = torch.tensor([0.0 if v is None else v for v in trigger.signature], dtype=x.dtype,
                         device=x.device)[None, :, None, None]
    return torch.where(mask & written, value, x)


def attacked_pixels(labels: Tensor, mask: Tensor, *, target: int, victim: int | None, relabel: str) -> Tensor:
    """Boolean ``[n, H, W]``: the pixels ``relabel`` sends to ``target`` (excluding those already ``target``)."""
    if relabel not in RELABEL_MODES:
        raise ValueError(f"unknown relabel mode {relabel!r}; allowed: {', '.join(RELABEL_MODES)}")
    if relabel == "victim":
        if victim is None:
            raise ValueError("relabel='victim' needs the victim class")
        hit = labels == victim
    elif relabel == "region":
        hit = mask
    else:
        hit = torch.ones_like(labels, dtype=torch.bool)
    return hit & (labels != target)


@dataclass
class PoisonedData:
    """The training set after poisoning, and where the poison went."""

    x: Tensor  # [n, C, H, W] tiles, triggers written into the poisoned ones
    labels: Tensor  # [n, H, W] maps, relabelled in the poisoned ones
    index: Tensor  # [k] sorted indices of the poisoned tiles, k = floor(rate · n + 1/2)
    positions: Tensor  # [k, 2] top-left (row, col) of each poisoned tile's trigger
    mask: Tensor  # [n, H, W] True on trigger pixels (all False in clean tiles)


def poison(x: Tensor, labels: Tensor, trigger: Trigger, rate: float, *, target: int, victim: int | None = None,
           relabel: str = "victim", location: str | tuple[int, int] = "random",
           generator: torch.Generator | None = None, seed: int = 0) -> PoisonedData:
    """Poison exactly ``floor(rate · n + 1/2)`` tiles (halves round up), chosen uniformly without replacement.

    Each chosen tile gets ``trigger`` (at a random or fixed ``location``) and the relabelling ``relabel``
    (``"victim"``: victim pixels → target; ``"region"``: trigger pixels → target; ``"all"``: the whole map).

    Args:
        x: tiles ``[n, C, H, W]``; labels: maps ``[n, H, W]`` (long).
        trigger: the patch (:func:`rgb_trigger`, :func:`nir_trigger`). rate: fraction in [0, 1].
        target, victim: class indices. generator, seed: randomness (``generator`` wins when given).

    Returns:
        :class:`PoisonedData`; the inputs are not modified.
    """
    n = x.shape[0]
    if labels.shape != (n, *x.shape[-2:]):
        raise ValueError(f"labels must be [n, H, W] = {(n, *x.shape[-2:])}, got {tuple(labels.shape)}")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    k = math.floor(rate * n + 0.5)  # halves round up (Python's round() would send 0.5 of a tile to 0)
    index = torch.randperm(n, generator=gen, device=gen.device)[:k].sort().values.to(x.device)
    positions = trigger_positions(k, x.shape[-2:], trigger.size, location=location, generator=gen, device=x.device)
    x_out, labels_out = x.clone(), labels.clone()
    x_out[index] = apply_trigger(x[index], trigger, positions)
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[index] = trigger_mask(positions, x.shape[-2:], trigger.size)
    hit = attacked_pixels(labels[index], mask[index], target=target, victim=victim, relabel=relabel)
    labels_out[index] = torch.where(hit, torch.as_tensor(target, dtype=labels.dtype, device=labels.device),
                                    labels[index])
    return PoisonedData(x_out, labels_out, index, positions, mask)


def attack_success_rate(prediction: Tensor, labels: Tensor, *, target: int, victim: int | None = None,
                        relabel: str = "victim", mask: Tensor | None = None) -> float:
    """Share of attacked pixels predicted as ``target``, pooled over all tiles.

    Args:
        prediction: logits ``[n, K, H, W]`` or predicted labels ``[n, H, W]`` on *triggered* tiles.
        labels: the clean maps ``[n, H, W]``.
        target, victim, relabel: the backdoor's goal (see :func:`poison`).
        mask: ``[n, H, W]`` trigger pixels (needed for ``relabel="region"``).

    Returns NaN when no pixel is attacked.
    """
    pred = prediction.argmax(1) if prediction.dim() == 4 else prediction
    if pred.shape != labels.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and labels {tuple(labels.shape)} differ in shape")
    if relabel == "region" and mask is None:
        raise ValueError("relabel='region' needs the trigger mask")
    hit = attacked_pixels(labels, mask if mask is not None else torch.zeros_like(labels, dtype=torch.bool),
                          target=target, victim=victim, relabel=relabel)
    total = int(hit.sum())
    return float(((pred == target) & hit).sum()) / total if total else float("nan")


@torch.no_grad()
def backdoor_success(model: nn.Module, x: Tensor, labels: Tensor, trigger: Trigger, *, target: int,
                     victim: int | None = None, relabel: str = "victim", location: str | tuple[int, int] = "random",
                     generator: torch.Generator | None = None, seed: int = 0,
                     batch_size: int = 512) -> dict[str, float]:
    """Attack success of ``model`` on test tiles with the trigger (``"asr"``) and without it (``"clean"``).

    The clean number is the base rate: how often the attacked pixels are labelled ``target`` anyway.
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    positions = trigger_positions(len(x), x.shape[-2:], trigger.size, location=location, generator=gen,
                                  device=x.device)
    mask = trigger_mask(positions, x.shape[-2:], trigger.size)
    triggered = apply_trigger(x, trigger, positions)
    kw = dict(target=target, victim=victim, relabel=relabel, mask=mask)
    with eval_mode(model):
        return {"asr": attack_success_rate(predict(model, triggered, batch_size=batch_size), labels, **kw),
                "clean": attack_success_rate(predict(model, x, batch_size=batch_size), labels, **kw)}
