"""Exact Shapley values of input bands (and band ablation) for a segmentation model, with mIoU.

Context. How much does a multispectral model *rely* on each band? Treat the ``k`` bands as players of a
cooperative game whose value ``v(S)`` is the model's score — pixel accuracy or mean intersection over
union (mIoU) over a test set — when only the bands in ``S`` are present and every other band is replaced
by its training mean. The Shapley value of band ``b`` (Shapley, 1953) is its average marginal contribution,

    φ_b = Σ_{S ⊆ N \\ {b}} |S|! (k − |S| − 1)! / k! · [v(S ∪ {b}) − v(S)],

and with ``k`` = 4 bands all ``2^k`` = 16 coalitions are evaluated exactly, no sampling. The values add up
(*efficiency*): ``Σ_b φ_b = v(N) − v(∅)``, so ``share_b = φ_b / Σ φ`` splits the model's gain over the
all-means input among the bands. A band the model ignores gets φ = 0 (*dummy*). **Band ablation**
reports ``v(N) − v(N \\ {b})``, the drop when one band alone is removed.

Because mIoU is not a mean over images, every coalition's score is computed from a confusion matrix; they
are kept per image (``[2^k, N, C, C]``) so that a bootstrap over test images only re-sums them
(:func:`bootstrap_shapley`). Every coalition of every image runs through the model in a few large batches.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from interpbook.models.segmentation import predict

METRICS = ("miou", "accuracy")


# ---------------------------------------------------------------------------------------------- metrics

def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, *, per_image: bool = False) -> Tensor:
    """Counts ``[C, C]`` (rows: true class, columns: predicted), or ``[N, C, C]`` per image.

    ``pred`` and ``target`` are integer class maps ``[N, ...]`` of one shape.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("pred and target must be integer class maps (take argmax of the logits first)")
    c = num_classes
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= c or int(pred.min()) < 0
                           or int(pred.max()) >= c):
        raise ValueError(f"class indices must lie in 0..{c - 1}")
    cell = (target.reshape(len(target), -1) * c + pred.reshape(len(pred), -1)).long()  # [N, P]
    if not per_image:
        return torch.bincount(cell.reshape(-1), minlength=c * c).view(c, c)
    offset = torch.arange(len(cell), device=cell.device)[:, None] * (c * c)
    return torch.bincount((cell + offset).reshape(-1), minlength=len(cell) * c * c).view(len(cell), c, c)


def miou_from_confusion(conf: Tensor) -> Tensor:
    """Mean IoU of confusion matrices ``[..., C, C]``: ``IoU_c = TP / (TP + FP + FN)``, averaged over the
    classes that occur in the target or the prediction (a class absent from both is skipped)."""
    conf = conf.double()
    tp = conf.diagonal(dim1=-2, dim2=-1)
    union = conf.sum(-1) + conf.sum(-2) - tp
    present = union > 0
    iou = torch.where(present, tp / union.clamp_min(1), torch.zeros_like(tp))
    return iou.sum(-1) / present.sum(-1).clamp_min(1)


def accuracy_from_confusion(conf: Tensor) -> Tensor:
    """Pixel accuracy of confusion matrices ``[..., C, C]``."""
    conf = conf.double()
    return conf.diagonal(dim1=-2, dim2=-1).sum(-1) / conf.sum((-2, -1)).clamp_min(1)


def mean_iou(pred: Tensor, target: Tensor, num_classes: int) -> float:
    """Mean intersection over union over a whole set of class maps (one confusion matrix for all pixels).

    >>> mean_iou(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 1, 0]]), 2)  # IoU 1/2 and 1/2
    0.5
    """
    return float(miou_from_confusion(confusion_matrix(pred, target, num_classes)))


def score(conf: Tensor, metric: str) -> Tensor:
    """``metric`` (``"miou"`` or ``"accuracy"``) of confusion matrices ``[..., C, C]``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    return miou_from_confusion(conf) if metric == "miou" else accuracy_from_confusion(conf)


# ---------------------------------------------------------------------------------------------- coalitions

def coalitions(k: int, device=None) -> Tensor:
    """All ``2^k`` coalitions of ``k`` players as a bool mask ``[2^k, k]``; row ``i`` holds the bits of ``i``
    (player ``j`` present iff bit ``j`` of ``i`` is set), so row 0 is ∅ and the last row is everyone."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 16:
        raise ValueError(f"k must be an integer in 1..16, got {k!r}")
    idx = torch.arange(2**k, device=device)
    return (idx[:, None] >> torch.arange(k, device=device)) & 1 == 1


def shapley_from_values(values: Tensor) -> Tensor:
    """Exact Shapley values from the values of all coalitions.

    Args:
        values: ``[..., 2^k]``, ordered as :func:`coalitions` (bit ``j`` of the index = player ``j``).

    Returns:
        ``[..., k]``: ``φ_j = Σ_{S ∌ j} |S|!(k−|S|−1)!/k! · (v(S ∪ j) − v(S))``.
    """
    n = values.shape[-1]
    k = n.bit_length() - 1
    if n != 2**k or k < 1:
        raise ValueError(f"values must have 2^k entries along the last dim, got {n}")
    masks = coalitions(k, values.device)
    size = masks.sum(1)  # [2^k]
    weight = torch.tensor([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) if s < k else 0.0
                           for s in range(k + 1)], dtype=torch.float64, device=values.device)[size]
    idx = torch.arange(n, device=values.device)
    phi = []
    for j in range(k):
        without = ~masks[:, j]  # S not containing j
        base = idx[without]
        gain = values[..., base | (1 << j)].double() - values[..., base].double()
        phi.append((gain * weight[without]).sum(-1))
    return torch.stack(phi, -1)


def _check_xy(model: nn.Module, x: Tensor, y: Tensor, baseline) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor [N, C, H, W]; got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not isinstance(y, Tensor) or y.shape != (x.shape[0], *x.shape[2:]) or y.is_floating_point():
        raise ValueError(f"y must be integer labels [N, H, W] = {(x.shape[0], *x.shape[2:])}; got "
                         f"{tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__}")
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if base.dim() == 0:
        base = base.expand(x.shape[1])
    if base.shape != (x.shape[1],):
        raise ValueError(f"baseline must be a scalar or one value per band ({x.shape[1]}), got {tuple(base.shape)}")
    return base


@torch.no_grad()
def coalition_confusions(model: nn.Module, x: Tensor, y: Tensor, *, baseline, num_classes: int,
                         groups: list[list[int]] | None = None, batch_size: int = 1024) -> Tensor:
    """Per-image confusion matrices of ``model`` under every coalition of bands, ``[2^k, N, C, C]``.

    Args:
        model: maps ``[B, C_in, H, W]`` to logits ``[B, num_classes, H, W]`` (call ``model.eval()`` first).
        x: images ``[N, C_in, H, W]``; y: labels ``[N, H, W]``.
        baseline: the value of an absent band: a scalar or ``[C_in]`` (e.g. the training means).
        groups: the players as lists of channels (default: one player per channel).
        batch_size: images per forward pass (coalitions × images are streamed in chunks of this size).
    """
    base = _check_xy(model, x, y, baseline).view(1, -1, 1, 1)
    groups = [[c] for c in range(x.shape[1])] if groups is None else [list(g) for g in groups]
    masks = coalitions(len(groups), x.device)  # [2^k, k]
    channel = torch.zeros(len(masks), x.shape[1], dtype=torch.bool, device=x.device)
    for j, g in enumerate(groups):
        channel[:, g] |= masks[:, j:j + 1]
    per_chunk = max(1, batch_size // len(x)) if len(x) < batch_size else 1
    out = []
    for start in range(0, len(masks), per_chunk):
        keep = channel[start:start + per_chunk].view(-1, 1, x.shape[1], 1, 1)  # [m, 1, C, 1, 1]
        inputs = torch.where(keep, x.unsqueeze(0), base.unsqueeze(0)).flatten(0, 1)  # [m*N, C, H, W]
        pred = predict(model, inputs, batch_size=batch_size)
        labels = y.repeat(len(keep), *([1] * (y.dim() - 1)))
        out.append(confusion_matrix(pred, labels, num_classes, per_image=True).view(len(keep), len(x),
                                                                                   num_classes, num_classes))
    return torch.cat(out)


def band_shapley(model: nn.Module, x: Tensor, y: Tensor, *, baseline, num_classes: int, metric: str = "miou",
                 groups: list[list[int]] | None = None, batch_size: int = 1024) -> dict[str, Tensor]:
    """Exact band Shapley values of ``model``'s ``metric`` on ``(x, y)``.

    Returns a dict with ``phi`` ``[k]``, ``share`` ``[k]`` (φ / Σφ; NaN or ±inf when v(N) = v(∅)),
    ``values`` ``[2^k]`` (``v`` of every coalition, ordered as :func:`coalitions`) and ``confusions``
    ``[2^k, N, C, C]`` (for :func:`bootstrap_shapley`). ``values[-1]`` is the score with all bands,
    ``values[0]`` with none.

    Example:
        >>> from interpbook.models.segmentation import FusionFCN
        >>> out = band_shapley(FusionFCN("rgb", 3).eval(), torch.rand(2, 4, 8, 8), torch.zeros(2, 8, 8).long(),
        ...                    baseline=0.5, num_classes=3)
        >>> float(out["phi"][3])  # the RGB model ignores NIR
        0.0
    """
    conf = coalition_confusions(model, x, y, baseline=baseline, num_classes=num_classes, groups=groups,
                                batch_size=batch_size)
    values = score(conf.sum(1), metric)
    phi = shapley_from_values(values)
    return {"phi": phi, "share": phi / phi.sum(), "values": values, "confusions": conf}


def bootstrap_shapley(confusions: Tensor, index: Tensor, metric: str = "miou") -> Tensor:
    """Band Shapley values on resampled test sets, ``[R, k]``.

    Args:
        confusions: ``[2^k, N, C, C]`` from :func:`coalition_confusions` (or :func:`band_shapley`).
        index: ``[R, N]`` resampled image indices (e.g. ``torch.randint(0, N, (R, N))``).
    """
    n = confusions.shape[1]
    counts = torch.zeros(index.shape[0], n, dtype=torch.float64, device=confusions.device)
    counts.scatter_add_(1, index.to(confusions.device), torch.ones_like(index, dtype=torch.float64,
                                                                         device=confusions.device))
    flat = confusions.double().flatten(2)  # [2^k, N, C*C]
    summed = torch.einsum("rn,knq->rkq", counts, flat).view(len(counts), len(confusions), *confusions.shape[2:])
    return shapley_from_values(score(summed, metric))


def band_ablation(model: nn.Module, x: Tensor, y: Tensor, *, baseline, num_classes: int, metric: str = "miou",
                  groups: list[list[int]] | None = None, batch_size: int = 1024) -> Tensor:
    """Drop of ``metric`` when each band alone is replaced by its baseline: ``v(N) − v(N \\ {b})``, ``[k]``."""
    base = _check_xy(model, x, y, baseline)
    groups = [[c] for c in range(x.shape[1])] if groups is None else [list(g) for g in groups]

    def value(inputs: Tensor) -> Tensor:
        return score(confusion_matrix(predict(model, inputs, batch_size=batch_size), y, num_classes), metric)

    full = value(x)
    drops = []
    for g in groups:
        xa = x.clone()
        xa[:, g] = base[g].view(1, -1, 1, 1)
        drops.append(full - value(xa))
    return torch.stack(drops)
