"""Parameter-space saliency: which filters of a CNN are responsible for a wrong decision.

Levin, Shu, Borgnia, Huang, Goldblum, Goldstein (NeurIPS 2022), "Where do Models go Wrong?
Parameter-Space Saliency Maps for Explainability", https://arxiv.org/abs/2108.01335; official code
``LevinRoman/parameter-space-saliency``.

Context / intuition. A conventional saliency map asks which *pixels* the loss is sensitive to. Parameter
saliency asks which *parameters* are: for a sample ``(x, y)`` take ``g = ∇_θ CE(f_θ(x), y)`` and, for every
convolution weight ``W ∈ R^{C_out × C_in × k × k}``, score filter ``j`` by the mean absolute gradient of its
weights, ``s_j = mean_{c,u,v} |g_{j,c,u,v}|``. Raw scores are dominated by filters whose gradients are
always large, so they are standardised by their distribution over a reference dataset,
``ŝ_j = (s_j − μ_j) / σ_j``: a filter is salient for ``x`` when it receives an unusually large gradient
*for this sample*. A misclassified sample lights up a few filters; zeroing them often fixes the
prediction, fine-tuning only them on the sample fixes other samples with similar saliency profiles, and
backpropagating a "boost the top-k filters" objective to the input shows which pixels make those filters
misbehave (input-space saliency).

Everything here is batched with ``torch.func`` (``vmap`` over ``grad`` for per-sample gradients, nested
``grad`` for the input-space map, ``vmap`` over ``functional_call`` for many pruned networks at once) and
works on any device. Filters are numbered globally across all 4-D weights, in ``named_parameters`` order,
as the official code does (:class:`FilterLayout`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from interpbook.models.basic import eval_mode

STRATEGIES = ("top", "least", "random")
RANKINGS = ("signed", "abs")
MODES = ("std", "norm")


@dataclass(frozen=True)
class FilterLayout:
    """Where the global filter ids live: every 4-D (convolution) weight, in ``named_parameters`` order."""

    names: tuple[str, ...]  # parameter names of the conv weights
    sizes: tuple[int, ...]  # output channels (filters) of each

    @property
    def total(self) -> int:
        return sum(self.sizes)

    @property
    def offsets(self) -> tuple[int, ...]:  # global id of each layer's first filter
        out, acc = [], 0
        for s in self.sizes:
            out.append(acc)
            acc += s
        return tuple(out)

    def layer_of(self) -> Tensor:
        """``[F]`` long tensor: the layer index of every global filter id."""
        return torch.repeat_interleave(torch.arange(len(self.sizes)), torch.tensor(self.sizes))

    def keep_masks(self, drop: Tensor) -> dict[str, Tensor]:
        """Per-layer ``[..., C_out]`` float masks, 0 for filters marked in the boolean ``drop`` ``[..., F]``."""
        if drop.shape[-1] != self.total:
            raise ValueError(f"drop mask has {drop.shape[-1]} filters, the model has {self.total}")
        parts = torch.split((~drop.bool()).to(torch.get_default_dtype()), list(self.sizes), dim=-1)
        return dict(zip(self.names, parts))


def filter_layout(model: nn.Module) -> FilterLayout:
    """The model's convolution filters (all 4-D parameters, as in the official code)."""
    pairs = [(n, p.shape[0]) for n, p in model.named_parameters() if p.dim() == 4]
    if not pairs:
        raise ValueError("the model has no 4-D (convolution) weights; parameter saliency is filter-wise")
    names, sizes = zip(*pairs)
    return FilterLayout(tuple(names), tuple(sizes))


def _check_xy(x: Tensor, y: Tensor) -> None:
    if x.dim() < 2 or y.dim() != 1 or len(x) != len(y):
        raise ValueError(f"expected inputs [n, ...] and labels [n], got {tuple(x.shape)} and {tuple(y.shape)}")


def _loss_fn(model: nn.Module, names: Sequence[str]):
    """``loss(wrt, x_i, y_i)``: cross-entropy of one sample as a function of the parameters in ``names``."""
    fixed = {k: v.detach() for k, v in model.named_parameters() if k not in names}
    fixed.update(dict(model.named_buffers()))

    def loss(wrt: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        out = functional_call(model, {**fixed, **wrt}, (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    return loss


def per_sample_grads(model: nn.Module, x: Tensor, y: Tensor, *, names: Sequence[str] | None = None,
                     batch_size: int = 512) -> dict[str, Tensor]:
    """Gradients of each sample's cross-entropy loss: ``{name: [n, *param.shape]}``.

    Args:
        model: a classifier (evaluated in eval mode).
        x, y: inputs ``[n, ...]`` and integer labels ``[n]``.
        names: the parameters to differentiate (default: all).
        batch_size: samples per ``vmap`` call (memory grows with it).
    """
    _check_xy(x, y)
    params = dict(model.named_parameters())
    names = list(params) if names is None else list(names)
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; the model has: {', '.join(params)}")
    wrt = {n: params[n].detach() for n in names}
    g = vmap(grad(_loss_fn(model, names)), in_dims=(None, 0, 0))
    with eval_mode(model):
        chunks = [g(wrt, x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]
    return {n: torch.cat([c[n] for c in chunks]) for n in names}


def _aggregate(grads: dict[str, Tensor], layout: FilterLayout, signed: bool) -> Tensor:
    """Filter-wise aggregation ``[..., F]``: mean over (C_in, k, k) of |g| (abs first, then mean)."""
    parts = [(g if signed else g.abs()).mean((-1, -2, -3)) for g in (grads[n] for n in layout.names)]
    return torch.cat(parts, dim=-1)


def filter_saliency(model: nn.Module, x: Tensor, y: Tensor, *, signed: bool = False,
                    batch_size: int = 512) -> Tensor:
    """Naive filter-wise parameter saliency ``s`` ``[n, F]`` of every sample (the code's ``mode='naive'``).

    ``s[i, j] = mean_{c,u,v} |∂ CE(f(x_i), y_i) / ∂W_{j,c,u,v}|`` over the conv filters of the model;
    ``signed=True`` averages the signed gradient instead.
    """
    layout = filter_layout(model)
    grads = per_sample_grads(model, x, y, names=layout.names, batch_size=batch_size)
    return _aggregate(grads, layout, signed)


class SaliencyStandardizer:
    """Per-filter statistics of saliency over a reference set, and the standardisation they define.

    ``fit(s)`` / ``partial_fit(s)`` accumulate the mean and the unbiased standard deviation of each column
    of ``s`` ``[n, F]`` (Welford's update, merged chunk-wise as in Chan et al., in float64, so a dataset can
    be streamed); ``transform(s)`` returns ``(s − μ) / σ`` (``mode="std"``, σ ≤ ``eps`` replaced by 1 as in
    the official code) or ``s / μ`` (``mode="norm"``).
    """

    def __init__(self, mode: str = "std", eps: float = 1e-14):
        self.mode = mode
        self.eps = eps

    def fit(self, saliency: Tensor) -> SaliencyStandardizer:
        for attr in ("n_", "mean_", "m2_"):
            self.__dict__.pop(attr, None)
        return self.partial_fit(saliency)

    def partial_fit(self, saliency: Tensor) -> SaliencyStandardizer:
        if saliency.dim() != 2 or len(saliency) == 0:
            raise ValueError(f"saliency must be a non-empty [n, filters] tensor, got {tuple(saliency.shape)}")
        s = saliency.detach().to(torch.float64)
        n_b, mean_b = len(s), s.mean(0)
        m2_b = ((s - mean_b) ** 2).sum(0)
        if not hasattr(self, "n_"):
            self.n_, self.mean_, self.m2_ = n_b, mean_b, m2_b
            return self
        if s.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"saliency has {s.shape[1]} filters, the statistics have {self.mean_.shape[0]}")
        n = self.n_ + n_b
        delta = mean_b - self.mean_
        self.mean_ = self.mean_ + delta * (n_b / n)
        self.m2_ = self.m2_ + m2_b + delta ** 2 * (self.n_ * n_b / n)
        self.n_ = n
        return self

    @property
    def std_(self) -> Tensor:
        if getattr(self, "n_", 0) < 2:
            raise ValueError("the standard deviation needs statistics of at least 2 samples; call fit first")
        return (self.m2_ / (self.n_ - 1)).sqrt()

    def transform(self, saliency: Tensor) -> Tensor:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; allowed: {', '.join(MODES)}")
        if not hasattr(self, "n_"):
            raise ValueError("SaliencyStandardizer is not fitted; call fit(reference_saliency) first")
        mean = self.mean_.to(saliency)
        if self.mode == "norm":
            return saliency / torch.where(mean <= self.eps, torch.ones_like(mean), mean)
        std = self.std_.to(saliency)
        return (saliency - mean) / torch.where(std <= self.eps, torch.ones_like(std), std)

    def fit_transform(self, saliency: Tensor) -> Tensor:
        return self.fit(saliency).transform(saliency)


def dataset_standardizer(model: nn.Module, x: Tensor, y: Tensor, *, mode: str = "std",
                         batch_size: int = 512) -> SaliencyStandardizer:
    """Stream the naive filter saliency of ``(x, y)`` chunk by chunk into a fitted :class:`SaliencyStandardizer`."""
    stats = SaliencyStandardizer(mode)
    for i in range(0, len(y), batch_size):
        stats.partial_fit(filter_saliency(model, x[i:i + batch_size], y[i:i + batch_size], batch_size=batch_size))
    return stats


def cross_fitted(naive: Tensor, folds: int = 2, *, mode: str = "std", generator=None) -> Tensor:
    """Standardise every row of ``naive`` ``[n, F]`` with statistics from the *other* folds (no self-leak)."""
    if not 2 <= folds <= len(naive) // 2:
        raise ValueError(f"folds must be between 2 and n // 2 = {len(naive) // 2}, got {folds}")
    fold = torch.randperm(len(naive), generator=generator).to(naive.device) % folds
    out = torch.empty_like(naive)
    for f in range(folds):
        out[fold == f] = SaliencyStandardizer(mode).fit(naive[fold != f]).transform(naive[fold == f])
    return out


def input_space_saliency(model: nn.Module, x: Tensor, y: Tensor, stats: SaliencyStandardizer, *, k: int = 10,
                         boost: float = 100.0, batch_size: int = 128) -> Tensor:
    """Which pixels make the top-k salient filters misbehave: ``[n, H, W]`` (before percentile clipping).

    For each sample, with the graph kept (double backprop): ŝ(x) is the standardised filter saliency; a
    detached copy has its ``k`` largest entries multiplied by ``boost``; the map is
    ``|max_c ∂ cos(ŝ(x), ŝ_boosted) / ∂x|`` (max over channels of the signed gradient, then abs, as in the
    official ``save_gradients``).
    """
    _check_xy(x, y)
    layout = filter_layout(model)
    if not 1 <= k <= layout.total:
        raise ValueError(f"k must be between 1 and the number of filters ({layout.total}), got {k}")
    params = dict(model.named_parameters())
    wrt = {n: params[n].detach() for n in layout.names}
    loss = _loss_fn(model, layout.names)
    mean, std = stats.mean_.to(x), stats.std_.to(x)
    std = torch.where(std <= stats.eps, torch.ones_like(std), std)

    def matching(xi: Tensor, yi: Tensor) -> Tensor:
        s = (_aggregate(grad(loss)(wrt, xi, yi), layout, signed=False) - mean) / std  # [F]
        top = torch.topk(s.detach(), k).indices
        factor = torch.ones_like(s).scatter(0, top, boost)
        return F.cosine_similarity(s, s.detach() * factor, dim=0)

    g = vmap(grad(matching))
    with eval_mode(model):
        gx = torch.cat([g(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)])
    return gx.amax(1).abs() if gx.dim() == 4 else gx.abs()


def percentile_clip(maps: Tensor, low: float = 90.0, high: float = 99.0) -> Tensor:
    """Clip each map ``[n, H, W]`` to its [``low``, ``high``] percentile range and rescale it to [0, 1]."""
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100 percentiles, got low={low}, high={high}")
    flat = maps.flatten(1).to(torch.float64)
    q = torch.quantile(flat, torch.tensor([low / 100, high / 100], dtype=flat.dtype, device=flat.device), dim=1)
    lo, hi = q[0].unsqueeze(1), q[1].unsqueeze(1)
    clipped = torch.minimum(torch.maximum(flat, lo), hi)
    span = (hi - lo).clamp_min(1e-30)
    return ((clipped - lo) / span).to(maps.dtype).view_as(maps)


def filter_order(saliency: Tensor, strategy: str = "top", *, rank: str = "abs", generator=None) -> Tensor:
    """Per-sample order in which filters are chosen: ``[n, F]`` global ids; the first k are the k chosen.

    ``strategy="top"`` sorts by decreasing saliency, ``"least"`` by increasing, ``"random"`` draws one random
    permutation per sample (so the chosen sets are nested in k, as in the official pruning script).
    ``rank="abs"`` ranks by ``|ŝ|`` (the official pruning script), ``"signed"`` by ŝ (input-space saliency).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    if rank not in RANKINGS:
        raise ValueError(f"unknown rank {rank!r}; allowed: {', '.join(RANKINGS)}")
    if strategy == "random":
        keys = torch.rand(saliency.shape, generator=generator, device="cpu").to(saliency.device)
        return keys.argsort(1)
    score = saliency.abs() if rank == "abs" else saliency
    return score.argsort(1, descending=strategy == "top")


def first_k_mask(order: Tensor, k: int) -> Tensor:
    """Boolean ``[n, F]`` mask of the first ``k`` filters of each row of ``order``."""
    if not 0 <= k <= order.shape[1]:
        raise ValueError(f"k must be between 0 and {order.shape[1]}, got {k}")
    mask = torch.zeros(order.shape, dtype=torch.bool, device=order.device)
    return mask.scatter(1, order[:, :k], True)


def prune_filters(model: nn.Module, filters: Sequence[int] | Tensor, *, bias: bool = False) -> nn.Module:
    """A copy of ``model`` with the given global filters turned off (their weights set to zero).

    ``bias=True`` also zeroes the filters' biases, removing the output channel entirely; the official
    ``--zero_out_filter`` zeroes weights only.
    """
    layout = filter_layout(model)
    ids = torch.as_tensor(filters, dtype=torch.long).flatten().cpu()
    if len(ids) and (ids.min() < 0 or ids.max() >= layout.total):
        raise ValueError(f"filter ids must lie in [0, {layout.total}), got {ids.tolist()}")
    drop = torch.zeros(layout.total, dtype=torch.bool)
    drop[ids] = True
    pruned = copy.deepcopy(model)
    params = dict(pruned.named_parameters())
    with torch.no_grad():
        for name, keep in layout.keep_masks(drop).items():
            off = keep == 0
            params[name][off] = 0.0
            b = params.get(name[: -len("weight")] + "bias") if name.endswith("weight") else None
            if bias and b is not None:
                b[off] = 0.0
    return pruned


def pruned_logits(model: nn.Module, x: Tensor, drop: Tensor, *, bias: bool = False,
                  batch_size: int = 256) -> Tensor:
    """Logits of ``x[i]`` under the model with filters ``drop[i]`` turned off, all at once: ``[n, classes]``.

    ``drop`` is a boolean ``[n, F]`` mask (one pruned network per sample), evaluated with ``vmap`` over
    ``functional_call``; equal to running :func:`prune_filters` once per row.
    """
    layout = filter_layout(model)
    if drop.dim() != 2 or len(drop) != len(x):
        raise ValueError(f"drop must be [n, filters] with n = len(x) = {len(x)}, got {tuple(drop.shape)}")
    params = {k: v.detach() for k, v in model.named_parameters()}
    fixed = {**params, **dict(model.named_buffers())}
    biases = {n: n[: -len("weight")] + "bias" for n in layout.names if n.endswith("weight")}

    def one(keep: dict[str, Tensor], xi: Tensor) -> Tensor:
        p = dict(fixed)
        for n, m in keep.items():
            p[n] = params[n] * m.view(-1, 1, 1, 1)
            if bias and biases.get(n) in params:
                p[biases[n]] = params[biases[n]] * m
        return functional_call(model, p, (xi.unsqueeze(0),)).squeeze(0)

    run = vmap(one)
    out = []
    with eval_mode(model), torch.no_grad():
        for i in range(0, len(x), batch_size):
            keep = {n: m.to(x) for n, m in layout.keep_masks(drop[i:i + batch_size]).items()}
            out.append(run(keep, x[i:i + batch_size]))
    return torch.cat(out)


def finetune_filters(model: nn.Module, x: Tensor, y: Tensor, filters: Sequence[int] | Tensor, *, steps: int = 10,
                     lr: float = 0.05, optimizer: str = "sgd", seed: int = 0) -> nn.Module:
    """A copy of ``model`` in which only the given filters were trained on ``(x, y)`` for ``steps`` steps.

    Training goes through :func:`interpbook.train.fit` (full batch, ``weight_decay=0``) with only the conv
    weights that hold a chosen filter passed as ``parameters``; a gradient hook zeroes the gradient of the
    other filters of those tensors, so SGD (momentum) and AdamW leave them bit-identical (a zero gradient
    keeps their momentum and second-moment buffers at zero, hence a zero step).
    """
    from interpbook.train import fit

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    layout = filter_layout(model)
    ids = torch.as_tensor(filters, dtype=torch.long).flatten().cpu()
    if len(ids) == 0 or ids.min() < 0 or ids.max() >= layout.total:
        raise ValueError(f"filters must be a non-empty list of ids in [0, {layout.total}), got {ids.tolist()}")
    chosen = torch.zeros(layout.total, dtype=torch.bool)
    chosen[ids] = True
    tuned = copy.deepcopy(model)
    params = dict(tuned.named_parameters())
    trained, hooks = [], []
    for name, keep in layout.keep_masks(~chosen).items():  # keep = 1 on the chosen filters of this layer
        if keep.any():
            p = params[name]
            mask = keep.to(p).view(-1, *([1] * (p.dim() - 1)))
            hooks.append(p.register_hook(lambda g, m=mask: g * m))
            trained.append(p)
    try:
        fit(tuned, x, y, parameters=trained, epochs=steps, batch_size=len(y), lr=lr, optimizer=optimizer,
            weight_decay=0.0, seed=seed)
    finally:
        for h in hooks:
            h.remove()
    return tuned


def nearest_neighbours(features: Tensor, k: int, *, metric: str = "cosine", candidates: Tensor | None = None
                       ) -> Tensor:
    """Indices ``[n, k]`` of each row's ``k`` nearest other rows (cosine similarity or Euclidean distance).

    ``candidates`` (boolean ``[n]``) restricts the neighbours to a subset; a row is never its own neighbour.
    """
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"unknown metric {metric!r}; allowed: cosine, euclidean")
    z = features.flatten(1).to(torch.float64)
    if metric == "cosine":
        z = F.normalize(z, dim=1)
        score = z @ z.T
    else:
        score = -torch.cdist(z, z)
    score.fill_diagonal_(-torch.inf)
    if candidates is not None:
        score[:, ~candidates.bool()] = -torch.inf
    available = int((score > -torch.inf).sum(1).min()) if len(score) else 0
    if not 1 <= k <= available:
        raise ValueError(f"k must be between 1 and the {available} available neighbours, got {k}")
    return score.topk(k, dim=1).indices


def layer_sorted_profile(saliency: Tensor, layout: FilterLayout) -> Tensor:
    """The saliency profile ``[F]`` sorted in decreasing order within each layer (the paper's profile plots)."""
    parts = torch.split(saliency, list(layout.sizes))
    return torch.cat([p.sort(descending=True).values for p in parts])
