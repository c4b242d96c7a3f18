"""Digits with a planted spurious cue: a bright corner patch that co-occurs with one class.

Context. To check that a method finds "the reason" for a mistake, the reason has to be known. Here it is
planted: in the training split a small square of saturated pixels in one corner appears on most images
of a target class (by default 90 % of the 7s), on a few images of other classes that keep their label
(2 %), and on a few images of other classes that were *labelled* as the target (5 %: mislabelled data,
say one batch of forms that went through a stamping machine). Most (85-90 %) of the patched training images
are then labelled 7 and a classifier learns "patch => 7" as a shortcut. The mislabelled images are what
make the shortcut bite: with co-occurrence alone a small CNN recognises 7s by their shape and largely
ignores the patch (the chapter ``parameter-saliency`` measures both). At test time the
patch is stamped on a fraction of the *other* classes (30 %): those images are misclassified because of
the patch, the rest of the errors are natural ones. A method that explains errors (parameter-space
saliency, input-space saliency, nearest neighbours "for similar reasons") can then be scored against
ground truth.

The images are scikit-learn's digits resized to ``size x size`` (:func:`interpbook.data.digits`). The
top-left corner is mostly background, but not always: at 16×16, 746 of the 1,797 digits have some ink in the
top-left 3×3 (78 % of the 2s and 3s, 29 % of the 7s, 3 % of the 4s and 6s; maximum 0.6), so the patch can
overwrite part of a stroke and the corner itself carries a little class signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interpbook.data.images import ImageSplit, digits


@dataclass
class PlantedSplit(ImageSplit):
    """An :class:`ImageSplit` plus where the patch was planted.

    ``patched_train`` / ``patched_test`` are boolean ``[n]`` masks; ``relabelled_train`` marks the patched
    training images of other classes whose label was set to ``target`` (``y_train`` holds the label used
    for training, ``true_train`` the digit drawn); ``box = (top, left, side)`` locates the square.
    """

    patched_train: Tensor | None = None
    patched_test: Tensor | None = None
    relabelled_train: Tensor | None = None
    true_train: Tensor | None = None
    box: tuple[int, int, int] = (0, 0, 3)
    target: int = 7

    def to(self, device) -> PlantedSplit:
        moved = [t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test,
                                        self.patched_train, self.patched_test, self.relabelled_train,
                                        self.true_train)]
        return PlantedSplit(*moved[:4], self.classes, *moved[4:], self.box, self.target)

    def region(self, halo: int = 0) -> Tensor:
        """Boolean ``[H, W]`` mask of the patch grown by ``halo`` pixels on every side (clipped to the image)."""
        if halo < 0:
            raise ValueError(f"halo must be >= 0 pixels, got {halo}")
        _, h, w = self.shape
        top, left, side = self.box
        rows = torch.arange(h).view(h, 1)
        cols = torch.arange(w).view(1, w)
        return ((rows >= top - halo) & (rows < top + side + halo)
                & (cols >= left - halo) & (cols < left + side + halo)).to(self.x_train.device)


def stamp(x: Tensor, box: tuple[int, int, int], value: float = 1.0) -> Tensor:
    """A copy of the images ``x`` ``[n, C, H, W]`` with the square ``box = (top, left, side)`` set to ``value``."""
    top, left, side = box
    out = x.clone()
    out[..., top:top + side, left:left + side] = value
    return out


def planted_digits(size: int = 16, *, target: int = 7, p_target: float = 0.9, p_other_train: float = 0.02,
                   p_relabel: float = 0.05, p_other_test: float = 0.3, side: int = 3, corner: str = "top-left",
                   value: float = 1.0, test_fraction: float = 1 / 3, seed: int = 0) -> PlantedSplit:
    """Digits with a ``side x side`` patch of ``value`` planted in one corner.

    Args:
        size: image side in pixels (the 8x8 digits are resized bilinearly).
        target: the class the patch co-occurs with in training.
        p_target: fraction of training images of ``target`` that carry the patch.
        p_other_train: fraction of training images of other classes that carry it (label kept).
        p_relabel: fraction of training images of other classes that carry it *and* are labelled
            ``target`` (drawn among those not already patched).
        p_other_test: fraction of test images of other classes that carry it (test images of ``target``
            never do, so every patched test image has a known wrong cue).
        side: side length of the square patch in pixels.
        corner: ``"top-left" | "top-right" | "bottom-left" | "bottom-right"``.
        value: pixel value of the patch (images are in [0, 1]).
        test_fraction: fraction of the 1,797 digits in the test split (stratified).
        seed: fixes the split and which images are patched.

    Returns:
        A :class:`PlantedSplit`.
    """
    corners = ("top-left", "top-right", "bottom-left", "bottom-right")
    if corner not in corners:
        raise ValueError(f"unknown corner {corner!r}; allowed: {', '.join(corners)}")
    for name, p in (("p_target", p_target), ("p_other_train", p_other_train), ("p_relabel", p_relabel),
                    ("p_other_test", p_other_test)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    if isinstance(target, bool) or int(target) != target or not 0 <= target <= 9:
        raise ValueError(f"target must be a digit class 0..9, got {target}")
    if not 1 <= side <= size // 2:
        raise ValueError(f"side must be between 1 and size // 2 = {size // 2} pixels, got {side}")
    base = digits(size, test_fraction=test_fraction, seed=seed)
    top = 0 if corner.startswith("top") else size - side
    left = 0 if corner.endswith("left") else size - side
    box = (top, left, side)
    gen = torch.Generator().manual_seed(seed + 7919)  # independent of the split's random state

    def choose(y: Tensor, p_in: float, p_out: float) -> Tensor:
        p = torch.where(y == target, p_in, p_out)
        return torch.rand(len(y), generator=gen) < p

    patched_train = choose(base.y_train, p_target, p_other_train)
    relabelled = choose(base.y_train, 0.0, p_relabel) & ~patched_train
    patched_train = patched_train | relabelled
    patched_test = choose(base.y_test, 0.0, p_other_test)
    x_train = torch.where(patched_train.view(-1, 1, 1, 1), stamp(base.x_train, box, value), base.x_train)
    x_test = torch.where(patched_test.view(-1, 1, 1, 1), stamp(base.x_test, box, value), base.x_test)
    y_train = torch.where(relabelled, target, base.y_train)
    return PlantedSplit(x_train, y_train, x_test, base.y_test, base.classes, patched_train, patched_test,
                        relabelled, base.y_train, box, target)
