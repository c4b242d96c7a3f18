"""Grad-CAM: class activation maps from a convolutional layer's gradients (Selvaraju et al., 2017).

Context. A late convolutional layer keeps a coarse spatial map per channel. Grad-CAM weights channel
``k``'s activation ``A^k`` by the spatial mean of the target logit's gradient,
``alpha_k = mean_{ij} df_t / dA^k_ij``, sums, and keeps the positive part:
``L = ReLU(sum_k alpha_k A^k)``. The map lives at the layer's resolution and is upsampled to the input's.
Because it passes through a ReLU it can never say that a region speaks *against* the class.

Shapes: the result is ``[batch, 1, H, W]``, which broadcasts against an input ``[batch, C, H, W]``.
Without the ReLU and with nearest upsampling this is captum's ``LayerGradCam`` (its default
``relu_attributions=False``) followed by ``LayerAttribution.interpolate``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpbook.attribution._common import check_input, resolve_target, select

UPSAMPLE = ("bilinear", "nearest", None)


def _find_layer(model: nn.Module, layer) -> nn.Module:
    if layer is None:
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError("grad_cam needs layer=...: the model has no nn.Conv2d to default to")
        return convs[-1]
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n]
            raise ValueError(f"model has no submodule {layer!r}; submodules: {', '.join(names)}") from None
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError("layer is not a submodule of model")
        return layer
    raise ValueError(f"layer must be an nn.Module of the model, its name, or None, got {type(layer).__name__}")


def grad_cam(model: nn.Module, x: Tensor, target=None, *, layer=None, relu: bool = True,
             upsample: str | None = "bilinear") -> Tensor:
    """Grad-CAM map of ``target`` computed at ``layer``, upsampled to ``x``'s spatial size.

    Args:
        model, x, target: logits ``[batch, classes]``, images ``[batch, C, H, W]``, class to explain.
        layer: the module whose output ``[batch, K, h, w]`` is used (a module of ``model``, its dotted
            name, or ``None`` for the last ``nn.Conv2d``). It must run once per forward pass.
        relu: keep only the positive part (Selvaraju et al.); ``False`` is captum's default.
        upsample: ``"bilinear"`` (the paper's), ``"nearest"`` (captum's ``interpolate`` default) or
            ``None`` to return the map at the layer's resolution ``[batch, 1, h, w]``.

    Returns:
        ``[batch, 1, H, W]`` (or ``[batch, 1, h, w]`` when ``upsample=None``).
    """
    check_input(x)
    if x.ndim != 4:
        raise ValueError(f"grad_cam needs images [batch, C, H, W], got shape {tuple(x.shape)}")
    if upsample not in UPSAMPLE:
        raise ValueError(f"unknown upsample {upsample!r}; allowed: {', '.join(map(str, UPSAMPLE))}")
    module = _find_layer(model, layer)
    tgt = resolve_target(model, x, target)
    acts: list[Tensor] = []
    def keep(mod, inp, out):  # the rest of the net runs on a copy: an in-place ReLU after the layer cannot
        acts.append(out)      # overwrite the activations A^k the map is built from
        return out.clone() if isinstance(out, Tensor) else out

    handle = module.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            out = model(x.detach().requires_grad_(True))
            if len(acts) != 1 or not isinstance(acts[0], Tensor) or acts[0].ndim != 4:
                raise ValueError("layer must run once per forward pass and output [batch, K, h, w]")
            (grad,) = torch.autograd.grad(select(out, tgt).sum(), acts[0])
    finally:
        handle.remove()
    cam = (grad.mean((2, 3), keepdim=True) * acts[0]).sum(1, keepdim=True).detach()  # [batch, 1, h, w]
    if relu:
        cam = cam.clamp_min(0)
    if upsample is not None and cam.shape[2:] != x.shape[2:]:
        cam = F.interpolate(cam, size=x.shape[2:], mode=upsample)
    return cam
