"""The retraining evaluation of edge attributions: keep or remove the top edges, retrain, evaluate.

Rezaei et al. (2024) carry ROAR (Hooker et al., 2019) over to graphs. Given an attribution per graph,
the top ``k = floor(|E| r)`` edges (``|E|`` counts both directions of every undirected edge) are

* **kept**, and all others dropped: *RoMie*, retrain on the most important edges (GraphKAR in the code);
* **removed**: *RoLie*, retrain on the least important edges (GraphROAR in the code).

A fresh network is then trained on the edited training graphs and tested on the edited test graphs.
If an attribution ranks the edges the label depends on first, RoMie accuracy is high already at small
``r`` and RoLie accuracy falls quickly. Details follow the official code (``utils/edge_elimination.py``,
``node_elimination.py``, ``symmetric_edge_mask.py``):

1. scores are symmetrised, ``(S + S^T) / 2``, so both directions of an edge share one score;
2. ``k`` is made even — rounded down for removal, up for keeping — and both directions go together;
3. nodes left without edges are removed (the paper's guard against information leaking through
   isolated nodes); a graph left with no edge at all keeps its nodes with zeroed features instead.

:func:`retrain` trains many such networks at once as members of one stacked classifier through the
book's training loop :func:`interpbook.train.fit`; :func:`retraining_sweep` runs a whole grid. Unlike the
paper, which reports test accuracy at the epoch of best validation accuracy, each network here trains for a
fixed number of epochs and has no validation split.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from interpbook.graphs.datasets import GraphData
from interpbook.graphs.layers import normalized_adjacency
from interpbook.graphs.models import GraphClassifier, predict, recalibrate_batchnorm, stack_members
from interpbook.train import fit

MODES = ("keep", "remove")  # RoMie keeps the top-k edges, RoLie removes them
ISOLATED = ("remove", "keep")  # what happens to nodes left without edges


def symmetrize(scores: Tensor, adj: Tensor) -> Tensor:
    """``(S + S^T) / 2`` on the edges of ``adj``, 0 elsewhere: ``[G, N, N]``."""
    if scores.shape != adj.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and adjacency {tuple(adj.shape)} differ in shape")
    return (scores + scores.transpose(-1, -2)) / 2 * (adj > 0)


def edge_budget(adj: Tensor, ratio: float, mode: str) -> Tensor:
    """Undirected edges selected per graph: ``k = floor(|E| r)`` made even (down to remove, up to keep), halved."""
    _check_ratio_mode(ratio, mode)
    directed = (adj > 0).sum((-1, -2))  # |E| counts both directions, as edge_index does
    k = torch.floor(directed.double() * ratio).long()
    odd = k % 2 == 1
    k = torch.where(odd, k - 1 if mode == "remove" else k + 1, k)
    return k // 2


def top_k_edges(scores: Tensor, adj: Tensor, k: Tensor) -> Tensor:
    """Boolean ``[G, N, N]`` mask (both directions) of each graph's ``k[g]`` best undirected edges.

    Scores are symmetrised first; ties are broken by position (stable sort), so give tied scores a random
    tie-break if the order among them matters.
    """
    g, n, _ = adj.shape
    upper = torch.ones(n, n, dtype=torch.bool, device=adj.device).triu(1)
    candidates = (adj > 0) & upper
    s = torch.where(candidates, symmetrize(scores, adj), torch.full_like(scores, -torch.inf)).flatten(1)
    order = s.argsort(dim=1, descending=True, stable=True)  # [G, N*N]
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(n * n, device=adj.device).expand(g, -1))
    top = (rank < torch.as_tensor(k, device=adj.device).view(-1, 1)).view(g, n, n) & candidates
    return top | top.transpose(1, 2)


def select_edges(scores: Tensor, adj: Tensor, ratio: float, mode: str) -> Tensor:
    """The adjacency after keeping (``mode="keep"``) or removing (``"remove"``) each graph's top-k edges.

    Args:
        scores: ``[G, N, N]`` edge attributions (any real values; only their order on edges matters).
        adj: ``[G, N, N]`` 0/1 symmetric adjacency.
        ratio: ``r`` in [0, 1], the fraction of edges that forms the top-k (see :func:`edge_budget`).
        mode: ``"keep"`` (RoMie) or ``"remove"`` (RoLie).
    """
    top = top_k_edges(scores, adj, edge_budget(adj, ratio, mode))
    return adj * (top if mode == "keep" else (adj > 0) & ~top)


def drop_isolated(x: Tensor, adj: Tensor, node_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Remove nodes without edges (``node_mask`` off); a graph with no edge keeps its nodes, features zeroed.

    Returns the new ``(x, node_mask)``. Removing a node from a padded graph is switching its mask off:
    it then has no self-loop, no weight in BatchNorm statistics and none in the mean-pool readout.
    """
    connected = (adj > 0).any(-1) & node_mask  # [G, N]
    empty = ~connected.any(-1)  # [G]: no edge left at all
    new_mask = torch.where(empty.unsqueeze(-1), node_mask, connected)
    x = x * (~empty).view(-1, 1, 1).to(x.dtype) * new_mask.unsqueeze(-1).to(x.dtype)
    return x, new_mask


def edit_graphs(scores: Tensor, x: Tensor, adj: Tensor, node_mask: Tensor, ratio: float, mode: str,
                isolated: str = "remove") -> tuple[Tensor, Tensor, Tensor]:
    """Apply one retraining configuration to a batch of graphs: ``(x, adj, node_mask)`` after editing."""
    if isolated not in ISOLATED:
        raise ValueError(f"unknown isolated-node handling {isolated!r}; allowed: {', '.join(ISOLATED)}")
    new_adj = select_edges(scores, adj, ratio, mode)
    if isolated == "keep":
        return x, new_adj, node_mask
    new_x, new_mask = drop_isolated(x, new_adj, node_mask)
    return new_x, new_adj, new_mask


def retrain(factory: Callable[[], GraphClassifier], train: tuple[Tensor, Tensor, Tensor], y_train: Tensor,
            test: tuple[Tensor, Tensor, Tensor], y_test: Tensor, seeds: Sequence[int], **fit_options) -> Tensor:
    """Train one fresh network per member from scratch and return each one's test accuracy ``[M]``.

    After :func:`~interpbook.train.fit`, BatchNorm statistics are recomputed on the member's own
    training graphs (:func:`~interpbook.graphs.models.recalibrate_batchnorm`) before testing in eval mode.

    Args:
        factory: builds one single (unstacked) classifier; member ``m`` is built under
            ``torch.manual_seed(seeds[m])``, so its initialisation depends on its seed only.
        train, test: ``(x [G, M, N, F], adj [G, M, N, N], node_mask [G, M, N])``: member ``m`` trains and
            is tested on slice ``[:, m]`` (its own edited graphs).
        y_train, y_test: ``[G]`` labels (the same for every member).
        seeds: one initialisation seed per member.
        fit_options: passed to :func:`interpbook.train.fit` (``epochs``, ``batch_size``, ``lr``, ``seed``...).
    """
    m = train[0].shape[1]
    if len(seeds) != m or any(t.shape[1] != m for t in (*train, *test)):
        raise ValueError(f"train/test inputs must carry {len(seeds)} members on dim 1 (one per seed)")
    models = []
    for s in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(s))
            models.append(factory())
    stacked = stack_members(models).to(train[0].device)
    train, test = tuple(train), tuple(test)
    if stacked.norms is not None:  # GCN: normalise every adjacency once, not in every training step
        train = (train[0], normalized_adjacency(train[1], train[2]), train[2])
        test = (test[0], normalized_adjacency(test[1], test[2]), test[2])
        stacked.normalize = False
    fit(stacked, train, y_train.unsqueeze(1).expand(-1, m), **fit_options)
    recalibrate_batchnorm(stacked, *train)
    pred = predict(stacked, *test)  # [G_test, M]
    return (pred == y_test.unsqueeze(1)).float().mean(0)


@dataclass
class SweepResult:
    """Test accuracies of a retraining grid.

    ``accuracy[(explainer, mode, isolated)]`` is ``[len(ratios), len(seeds)]``; ``baseline`` holds the
    accuracy of networks trained on the unedited graphs, one per seed.
    """

    ratios: list[float]
    seeds: list[int]
    accuracy: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    baseline: np.ndarray | None = None

    def curve(self, explainer: str, mode: str, isolated: str = "remove") -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (over seeds, ddof=1 when > 1 seed) per ratio."""
        acc = self.accuracy[(explainer, mode, isolated)]
        sd = acc.std(1, ddof=1) if acc.shape[1] > 1 else np.zeros(len(acc))
        return acc.mean(1), sd

    def auc(self, explainer: str, mode: str, isolated: str = "remove", *, per_seed: bool = False):
        """Area under the accuracy-vs-ratio curve divided by the ratio range (a mean accuracy).

        Of the seed-mean curve by default; ``per_seed=True`` gives one area per seed, ``[len(seeds)]``.
        """
        acc = self.accuracy[(explainer, mode, isolated)]  # [ratios, seeds]
        r = np.asarray(self.ratios)
        areas = np.trapezoid(acc, r, axis=0) / (r[-1] - r[0]) if len(r) > 1 else acc[0]
        return np.asarray(areas, dtype=float) if per_seed else float(np.mean(areas))

    def band_agreement(self, a: str, b: str, *, modes: Sequence[str] = MODES, isolated: str = "remove",
                       k: float = 2.0) -> tuple[float, np.ndarray, np.ndarray]:
        """How often two explainers are indistinguishable: ``|mean_a - mean_b| <= k * sigma`` per (mode, ratio).

        ``sigma`` pools the two seed standard deviations, ``sqrt((sd_a^2 + sd_b^2) / 2)``. Returns the fraction
        of points inside the band, and the gaps and sigmas ``[len(modes), len(ratios)]``.
        """
        gaps, sigmas = [], []
        for mode in modes:
            (ma, sa), (mb, sb) = self.curve(a, mode, isolated), self.curve(b, mode, isolated)
            gaps.append(np.abs(ma - mb))
            sigmas.append(np.sqrt((sa ** 2 + sb ** 2) / 2))
        gaps, sigmas = np.array(gaps), np.array(sigmas)
        return float((gaps <= k * sigmas).mean()), gaps, sigmas


def retraining_sweep(factory: Callable[[], GraphClassifier], data: GraphData, train_mask: Tensor,
                     scores: dict[str, Tensor | Sequence[Tensor]], *, ratios: Sequence[float],
                     modes: Sequence[str] = MODES, isolated: Sequence[str] = ("remove",),
                     configs: Sequence[tuple[str, str, str]] | None = None, seeds: Sequence[int] = (0,),
                     baseline: bool = True, **fit_options) -> SweepResult:
    """Retrain on every (explainer, ratio, mode, isolated-node handling) for every seed.

    Args:
        factory: builds one fresh classifier (see :func:`retrain`).
        data: all graphs; attributions cover all of them (train and test), as in the paper.
        train_mask: ``[G]`` bool, ``True`` for training graphs; the rest are the test graphs.
        scores: explainer name -> ``[G, N, N]`` scores, or a sequence of them, one per seed (e.g. a fresh
            random attribution for every seed).
        ratios, modes, isolated: the grid: every explainer x mode x isolated-node handling, at every ratio.
        configs: instead of that product, explicit ``(explainer, mode, isolated)`` triples (each at every ratio).
        seeds: each seed trains all configurations as members of one stacked classifier (same
            initialisation seed and minibatch order for all its members).
        baseline: also train one member on the unedited graphs per seed.
    """
    triples = list(itertools.product(scores, modes, isolated)) if configs is None else [tuple(c) for c in configs]
    for name, mode, iso in triples:
        if name not in scores:
            raise ValueError(f"configuration names explainer {name!r}, which has no scores; have {', '.join(scores)}")
        _check_ratio_mode(0.0, mode)
        if iso not in ISOLATED:
            raise ValueError(f"unknown isolated-node handling {iso!r}; allowed: {', '.join(ISOLATED)}")
    for name, s in scores.items():
        if not isinstance(s, Tensor) and len(s) != len(seeds):
            raise ValueError(f"scores[{name!r}] gives {len(s)} attributions; need one, or one per seed ({len(seeds)})")
    configs = [(name, r, mode, iso) for name, mode, iso in triples for r in range(len(ratios))]
    result = SweepResult(list(ratios), list(seeds))
    acc = {key: np.zeros((len(ratios), len(seeds))) for key in triples}
    base = np.zeros(len(seeds))
    for j, seed in enumerate(seeds):
        xs, adjs, masks = [], [], []
        for name, r, mode, iso in configs:
            s = scores[name] if isinstance(scores[name], Tensor) else scores[name][j]
            x, adj, mask = edit_graphs(s, data.x, data.adj, data.node_mask, ratios[r], mode, iso)
            xs.append(x), adjs.append(adj), masks.append(mask)
        if baseline:
            xs.append(data.x), adjs.append(data.adj), masks.append(data.node_mask)
        x, adj, mask = (torch.stack(t, 1) for t in (xs, adjs, masks))  # [G, M, ...]
        tr, te = train_mask, ~train_mask
        out = retrain(factory, (x[tr], adj[tr], mask[tr]), data.y[tr], (x[te], adj[te], mask[te]), data.y[te],
                      [int(seed)] * x.shape[1], **{**fit_options, "seed": int(seed)})
        for i, (name, r, mode, iso) in enumerate(configs):
            acc[(name, mode, iso)][r, j] = float(out[i])
        if baseline:
            base[j] = float(out[-1])
    result.accuracy = acc
    result.baseline = base if baseline else None
    return result


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's rank correlation (tau-b, ties allowed) between two score lists over the same items.

    Used to compare how two settings rank the explainers: 1 means the same order, -1 the reverse.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two equally long lists of >= 2 scores, got shapes {a.shape} and {b.shape}")
    i, j = np.triu_indices(len(a), 1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = np.sqrt((sa != 0).sum() * (sb != 0).sum())
    return float((sa * sb).sum() / denom) if denom > 0 else float("nan")


def _check_ratio_mode(ratio: float, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)} (keep = RoMie, remove = RoLie)")
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"ratio must lie in [0, 1], got {ratio}")
