"""Feature attribution. One verb for the family: ``attribute(model, x, method=..., target=None, **options)``.

- :mod:`interpbook.attribution.gradients`: saliency, input×gradient, integrated gradients (Gauss–Legendre or
  Riemann rules, any baseline), DeepLIFT-rescale, guided backprop, gradient SHAP.
- :mod:`interpbook.attribution.perturbation`: occlusion; Kernel SHAP and LIME over a segmentation.
- :mod:`interpbook.attribution.gradcam`: Grad-CAM on a chosen layer, upsampled to the input.
- :mod:`interpbook.attribution.baselines`: reference inputs (constant colour, uniform noise, blur).
- :mod:`interpbook.attribution.groundtruth`: scores of an attribution against a known ground truth
  (positive-mass precision, top-k recall, F1, sign agreement, mass outside the truth).
- :mod:`interpbook.attribution.band_shapley`: exact Shapley values of input bands (all 2^k coalitions, absent
  bands mean-filled) and band ablation for segmentation models, scored by mIoU or pixel accuracy.
- :mod:`interpbook.attribution.deletion`: deletion curves with a fixed fill.

Conventions (captum's): the model returns logits ``[batch, classes]``; ``target`` is an int, a ``[batch]``
tensor of class indices, or ``None`` for the model's prediction; the result has ``x``'s shape, except
Grad-CAM's ``[batch, 1, H, W]``, which broadcasts against ``[batch, C, H, W]``. Every method is batched,
runs on ``x``'s device, and is also callable directly (``integrated_gradients(model, x, 3, baseline=b)``).
The model is used as given: call ``model.eval()`` first.
"""

from __future__ import annotations

import inspect

from torch import Tensor, nn

from interpbook.attribution.band_shapley import band_ablation, band_shapley, mean_iou
from interpbook.attribution.gradcam import grad_cam
from interpbook.attribution.gradients import (
    RULES,
    completeness_gap,
    deeplift,
    gradient_shap,
    guided_backprop,
    input_x_gradient,
    integrated_gradients,
    quadrature,
    saliency,
)
from interpbook.attribution.perturbation import grid_segments, kernel_shap, lime, occlusion

METHODS = {
    "saliency": saliency,
    "input_x_gradient": input_x_gradient,
    "integrated_gradients": integrated_gradients,
    "deeplift": deeplift,
    "guided_backprop": guided_backprop,
    "gradient_shap": gradient_shap,
    "occlusion": occlusion,
    "kernel_shap": kernel_shap,
    "lime": lime,
    "grad_cam": grad_cam,
}


def options(method: str) -> list[str]:
    """The keyword options ``method`` accepts (beyond ``model``, ``x`` and ``target``)."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; allowed: {', '.join(METHODS)}")
    params = inspect.signature(METHODS[method]).parameters
    return [p for p in params if p not in ("model", "x", "target")]


def attribute(model: nn.Module, x: Tensor, *, method: str, target=None, **opts) -> Tensor:
    """Attribute the ``target`` logit of ``model`` at ``x`` with ``method``.

    Args:
        model: maps ``x`` to logits ``[batch, classes]`` (in eval mode).
        x: input batch ``[batch, ...]``.
        method: one of :data:`METHODS` (``options(method)`` lists its options).
        target: int, ``[batch]`` tensor, or ``None`` (the prediction).
        **opts: the method's options, e.g. ``baseline=``, ``n_steps=`` for integrated gradients.

    Returns:
        A tensor shaped like ``x`` (Grad-CAM: ``[batch, 1, H, W]``).

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
        >>> attribute(model, torch.rand(2, 1, 2, 2), method="integrated_gradients", target=0).shape
        torch.Size([2, 1, 2, 2])
    """
    allowed = options(method)
    unknown = [k for k in opts if k not in allowed]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for method {method!r}; allowed: {', '.join(allowed)}")
    return METHODS[method](model, x, target, **opts)


__all__ = [
    "METHODS", "RULES", "attribute", "band_ablation", "band_shapley", "completeness_gap", "deeplift", "grad_cam",
    "gradient_shap", "grid_segments", "guided_backprop", "input_x_gradient", "integrated_gradients", "kernel_shap",
    "lime", "mean_iou", "occlusion", "options", "quadrature", "saliency",
]
