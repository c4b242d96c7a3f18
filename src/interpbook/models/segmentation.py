"""A tiny fully convolutional segmentation net for RGB + NIR input, with a switch for *where* bands are fused.

Context (Godfrey et al., 2023, arXiv:2309.12463). Extra spectral bands can enter a network at different
depths. At one extreme, **early fusion** stacks them as extra input channels; at the other, **late fusion**
runs RGB and NIR through separate full branches and concatenates their features just before the final
per-pixel classifier. **Mid fusion** sits in between: separate stems, then one shared trunk.

Every variant is the same small FCN, :class:`FCNBranch`:

    stem (3×3 conv, ``widths[0]``)  →  stage (3×3 conv stride 2 and a 3×3 conv, ``widths[1]``)
    →  nearest ×2 upsampling, concatenated with the stem's features (a U-Net-style skip)  →  1×1 conv

followed by a 1×1 convolution to class logits. With ``context=True`` the decoder also reads an image-level
feature: the stage's features averaged over the whole tile, passed through a 1×1 conv + ReLU and broadcast to
every pixel (the "image pooling" branch of DeepLabv3's ASPP, Chen et al., 2017). Without it, a pixel sees a
9×9 window (and, through GroupNorm's per-tile statistics, only the tile's global scale), so a decision that
must depend on something far away, such as a backdoor trigger in another corner, has no direct path.
``fusion`` picks the wiring:

=========  ==================================================================================================
``rgb``    one branch on R, G, B (the NIR channel, if given, is ignored)
``early``  one branch on all four channels
``mid``    an RGB stem and a NIR stem, concatenated, then the shared stage and decoder
``late``   an RGB branch and a NIR branch, each complete, concatenated just before the 1×1 head
=========  ==================================================================================================

The model always takes ``[B, 4, H, W]`` (bands R, G, B, NIR; the ``rgb`` variant also accepts 3 channels)
and returns logits ``[B, classes, H, W]``; H and W must be even.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FUSIONS = ("rgb", "early", "mid", "late")


def _conv(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    # GroupNorm, not BatchNorm: no running statistics, so a model trained for ~100 steps evaluates as it trained
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2), nn.GroupNorm(4, c_out),
                         nn.ReLU())


class FCNBranch(nn.Module):
    """Stem, one stride-2 stage, upsampling decoder with a skip: ``[B, c_in, H, W] -> [B, widths[0], H, W]``.

    ``stem_width`` overrides the stem's width (mid fusion feeds the concatenated stems of two
    modalities to ``stage``; it then calls :meth:`trunk` directly).
    """

    def __init__(self, c_in: int, widths: tuple[int, int] = (8, 16), stem_width: int | None = None,
                 context: bool = False):
        super().__init__()
        w1, w2 = widths
        s = stem_width if stem_width is not None else w1
        self.stem = _conv(c_in, s) if c_in > 0 else nn.Identity()
        self.stage = nn.Sequential(_conv(s, w2, stride=2), _conv(w2, w2))
        self.pool = nn.Sequential(nn.Conv2d(w2, w2, 1), nn.ReLU()) if context else None
        self.decode = _conv(w2 * (2 if context else 1) + s, w1, kernel=1)

    def trunk(self, stem: Tensor) -> Tensor:  # [B, s, H, W] -> [B, w1, H, W]
        deep = self.stage(stem)  # [B, w2, H/2, W/2]
        up = F.interpolate(deep, size=stem.shape[-2:], mode="nearest")
        parts = [up]
        if self.pool is not None:  # image-level context: [B, w2, 1, 1] broadcast to every pixel
            parts.append(self.pool(deep.mean((2, 3), keepdim=True)).expand(-1, -1, *stem.shape[-2:]))
        return self.decode(torch.cat([*parts, stem], 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.trunk(self.stem(x))


class FusionFCN(nn.Module):
    """Tiny FCN over RGB + NIR with early, mid or late fusion (or RGB only).

    Args:
        fusion: one of :data:`FUSIONS`.
        classes: number of per-pixel classes.
        widths: ``(stem/decoder width, stage width)``, default the plan's 8 → 16.
        context: add the image-level pooling branch to every decoder (see the module docstring).

    Submodules (for hooks): ``branch`` (rgb, early), ``rgb_stem``/``nir_stem``/``branch`` (mid),
    ``rgb_branch``/``nir_branch`` (late), and ``head`` (the 1×1 classifier) in every variant.

    >>> FusionFCN("late", classes=6)(torch.rand(2, 4, 16, 16)).shape
    torch.Size([2, 6, 16, 16])
    """

    def __init__(self, fusion: str = "early", classes: int = 6, widths: tuple[int, int] = (8, 16), *,
                 context: bool = False):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; allowed: {', '.join(FUSIONS)}")
        self.fusion = fusion
        w1, _ = widths
        if fusion == "rgb":
            self.branch = FCNBranch(3, widths, context=context)
            head_in = w1
        elif fusion == "early":
            self.branch = FCNBranch(4, widths, context=context)
            head_in = w1
        elif fusion == "mid":
            self.rgb_stem, self.nir_stem = _conv(3, w1), _conv(1, w1)
            self.branch = FCNBranch(0, widths, stem_width=2 * w1, context=context)
            head_in = w1
        else:
            self.rgb_branch = FCNBranch(3, widths, context=context)
            self.nir_branch = FCNBranch(1, widths, context=context)
            head_in = 2 * w1
        self.head = nn.Conv2d(head_in, classes, 1)

    def _check(self, x: Tensor) -> None:
        allowed = (3, 4) if self.fusion == "rgb" else (4,)
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] not in allowed:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"fusion {self.fusion!r} needs x of shape [B, C, H, W] with C in {allowed} "
                             f"(bands R, G, B, NIR); got {shape}")
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"H and W must be even (one stride-2 stage); got {tuple(x.shape[-2:])}")

    def features(self, x: Tensor) -> Tensor:
        """The per-pixel features the 1×1 head reads, ``[B, head_in, H, W]``."""
        self._check(x)
        if self.fusion == "rgb":
            return self.branch(x[:, :3].contiguous())
        if self.fusion == "early":
            return self.branch(x)
        rgb, nir = x[:, :3].contiguous(), x[:, 3:4].contiguous()
        if self.fusion == "mid":
            return self.branch.trunk(torch.cat([self.rgb_stem(rgb), self.nir_stem(nir)], 1))
        return torch.cat([self.rgb_branch(rgb), self.nir_branch(nir)], 1)

    def forward(self, x: Tensor) -> Tensor:  # [B, 4, H, W] -> [B, classes, H, W]
        return self.head(self.features(x))


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, *, batch_size: int = 1024) -> Tensor:
    """Per-pixel predicted classes ``[B, H, W]`` of a segmentation model, in batches (no gradients)."""
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
