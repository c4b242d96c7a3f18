"""Deep-thinking networks: weight-tied convolutional nets that can iterate longer at test time.

A deep-thinking (DT) net {cite}`schwarzschild2021thinking` maps an input ``x`` (a bit string, a maze image, a
chess board) to a per-position answer by iterating ONE residual unit on a hidden state::

    h_0 = projection(x)                                   conv + ReLU, width w
    h_t = unit(h_{t-1})             or, with recall,      unit(recall_conv([h_{t-1}, x]))
    y_t = head(h_t)                                       3 convs -> 2 logits per position

Because the unit's weights are shared across iterations, the number of iterations is a test-time knob: a net
trained with ``m`` iterations on small problems can be run for ``t > m`` iterations on larger ones ("thinking
longer"). Bansal et al. {cite}`bansal2022overthinking` found that plain DT nets *overthink* (accuracy decays
for ``t >> m``) and cure it with **recall** (concatenate ``x`` to the state before every unit, so the problem
cannot be forgotten) and the **progressive loss** (:func:`progressive_loss`).

Layer shapes follow ``aks2203/deep-thinking``: bias-free 3-wide convolutions; a unit is
``blocks_per_iter`` ResNet basic blocks (2 in the papers); the 1-D head is w -> w -> w/2 -> 2, the 2-D head
w -> 32 -> 8 -> 2; the recall convolution is followed by a ReLU in the 1-D net and not in the 2-D net, as in
the official code. ``tied=False`` gives the feed-forward twin: ``max_iters`` distinct units (same layers,
untied weights; a shared recall convolution, as in the official feed-forward nets), so "depth" is equal and
only the weight sharing differs. Unlike the official 1-D feed-forward net, the twin keeps the ReLU after the
recall convolution, so that it differs from our DT net in the weight sharing alone.

Evaluation runs the net once for ``T`` iterations and reads the head after every iteration
(:func:`iteration_report`): accuracy vs test-time iterations, the '21 maximum-confidence rule, and how much
the state still moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MaskFn = Callable[[Tensor], Tensor]


def _conv(dim: int, c_in: int, c_out: int) -> nn.Module:
    return (nn.Conv1d if dim == 1 else nn.Conv2d)(c_in, c_out, kernel_size=3, padding=1, bias=False)


class BasicBlock(nn.Module):
    """ResNet basic block without biases: ``relu(conv(relu(conv(h))) + h)``, optional GroupNorm(4)."""

    def __init__(self, dim: int, width: int, group_norm: bool = False):
        super().__init__()
        self.conv1, self.conv2 = _conv(dim, width, width), _conv(dim, width, width)
        norm = (lambda: nn.GroupNorm(4, width, affine=False)) if group_norm else nn.Identity
        self.norm1, self.norm2 = norm(), norm()

    def forward(self, h: Tensor) -> Tensor:
        out = F.relu(self.norm1(self.conv1(h)))
        return F.relu(self.norm2(self.conv2(out)) + h)


class DTNet(nn.Module):
    """A deep-thinking net (``tied=True``) or its feed-forward twin (``tied=False``).

    Args:
        dim: 1 (strings: inputs (B, C, L)) or 2 (images/boards: inputs (B, C, H, W)).
        in_channels: C (1 for prefix sums, 3 for mazes, 12 for chess).
        width: channels of the hidden state.
        recall: concatenate the input to the state before every unit.
        blocks_per_iter: basic blocks per unit (the papers use 2).
        tied: share the unit across iterations (DT net) or not (feed-forward twin with ``max_iters`` units).
        max_iters: the training iteration count m; the default for ``forward``; the depth of the twin.
        out_channels: logits per position (2: bit / on-path / move square).
        group_norm: GroupNorm(4, affine=False) inside the blocks (the official ``*_gn`` variants).
    """

    def __init__(self, dim: int = 1, in_channels: int = 1, width: int = 32, *, recall: bool = True,
                 blocks_per_iter: int = 2, tied: bool = True, max_iters: int = 30, out_channels: int = 2,
                 group_norm: bool = False):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 (strings) or 2 (images); got {dim!r}")
        for name, value, low in (("in_channels", in_channels, 1), ("width", width, 2),
                                 ("blocks_per_iter", blocks_per_iter, 1), ("max_iters", max_iters, 1),
                                 ("out_channels", out_channels, 1)):
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        if group_norm and width % 4:
            raise ValueError(f"group_norm needs a width divisible by 4; got {width}")
        self.dim, self.in_channels, self.width = dim, in_channels, width
        self.recall, self.tied, self.max_iters = recall, tied, max_iters
        self.projection = nn.Sequential(_conv(dim, in_channels, width), nn.ReLU())
        self.recall_conv = _conv(dim, width + in_channels, width) if recall else None
        self.recall_relu = dim == 1  # as in aks2203/deep-thinking: ReLU after the recall conv in 1-D only
        n_units = 1 if tied else max_iters
        self.units = nn.ModuleList(
            nn.Sequential(*(BasicBlock(dim, width, group_norm) for _ in range(blocks_per_iter)))
            for _ in range(n_units))
        mid = (width, width // 2) if dim == 1 else (32, 8)
        self.head = nn.Sequential(_conv(dim, width, mid[0]), nn.ReLU(), _conv(dim, mid[0], mid[1]), nn.ReLU(),
                                  _conv(dim, mid[1], out_channels))

    # -- the recurrence -------------------------------------------------------------------------------------
    def _check(self, x: Tensor, iters: int, start: int) -> None:
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            want = "(B, C, L)" if self.dim == 1 else "(B, C, H, W)"
            raise ValueError(f"inputs must be {want} with C = {self.in_channels}; got shape {tuple(x.shape)}")
        if int(iters) != iters or iters < 0 or start < 0:
            raise ValueError(f"iters and start must be integers >= 0; got iters={iters!r}, start={start!r}")
        if not self.tied and start + iters > self.max_iters:
            raise ValueError(f"the feed-forward twin has {self.max_iters} units; cannot run iterations "
                             f"{start + 1}..{start + iters} (use tied=True to iterate beyond its depth)")

    def initial_state(self, x: Tensor) -> Tensor:
        """h_0 = projection(x): (B, width, *spatial)."""
        return self.projection(x)

    def step(self, h: Tensor, x: Tensor, t: int) -> Tensor:
        """One iteration: h_t from h_{t-1}; ``t`` is the 0-based index of the iteration (selects the untied unit)."""
        if self.recall_conv is not None:
            h = self.recall_conv(torch.cat([h, x], dim=1))
            if self.recall_relu:
                h = F.relu(h)
        return self.units[0 if self.tied else t](h)

    def run(self, x: Tensor, iters: int, *, state: Tensor | None = None, start: int = 0) -> tuple[Tensor, Tensor]:
        """``iters`` iterations from ``state`` (default h_0); returns (final state, logits of the final state)."""
        self._check(x, iters, start)
        h = self.initial_state(x) if state is None else state
        for t in range(start, start + iters):
            h = self.step(h, x, t)
        return h, self.head(h)

    def iterate(self, x: Tensor, iters: int, *, state: Tensor | None = None, start: int = 0
                ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(state, logits)`` after each of ``iters`` iterations (the head read at every iteration)."""
        self._check(x, iters, start)  # eagerly, not at the first next()
        return self._iterate(x, iters, self.initial_state(x) if state is None else state, start)

    def _iterate(self, x: Tensor, iters: int, h: Tensor, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        for t in range(start, start + iters):
            h = self.step(h, x, t)
            yield h, self.head(h)

    def forward(self, x: Tensor, iters: int | None = None, *, state: Tensor | None = None, start: int = 0) -> Tensor:
        """Logits (B, out_channels, *spatial) after ``iters`` iterations (default ``max_iters``)."""
        return self.run(x, self.max_iters if iters is None else iters, state=state, start=start)[1]


# -- training -------------------------------------------------------------------------------------------------
def open_pixels(inputs: Tensor) -> Tensor:
    """Bool (B, *spatial) mask of non-wall pixels of maze images (any channel > 0), the official loss mask."""
    return inputs.amax(dim=1) > 0


def _masked_ce(logits: Tensor, targets: Tensor, mask: Tensor | None) -> Tensor:
    per_position = F.cross_entropy(logits, targets, reduction="none")  # (B, *spatial)
    return per_position.mean() if mask is None else per_position[mask].mean()


def progressive_loss(alpha: float, max_iters: int, *, mask: MaskFn | None = None, seed: int = 0
                     ) -> Callable[[nn.Module, tuple, Tensor], Tensor]:
    """The progressive loss of Bansal et al. (2022), as a ``loss=`` for :func:`interpbook.train.fit`.

    Per batch, with m = ``max_iters``::

        L_max  = CE(net run for m iterations from h_0)
        n ~ U{0, ..., m-1},  k ~ U{1, ..., m-n}
        h_n    = net run for n iterations, WITHOUT gradient (the state is detached)
        L_prog = CE(net run for k more iterations from h_n)
        L      = (1 - alpha) * L_max + alpha * L_prog

    The graded k iterations start from a state the net produced at an arbitrary iteration, so the net cannot
    learn iteration-count-specific behaviour: it must learn a step that improves *any* partial solution. Terms
    with zero weight are not computed. ``mask(inputs)`` selects the positions that count (mazes:
    :func:`open_pixels`); the cross-entropy is averaged over them.

    Args:
        alpha: weight of the progressive term, in [0, 1] (0: the NeurIPS'21 loss; papers use 1 for prefix sums,
            0.01 for mazes, 0.5 for chess).
        max_iters: m, the training iteration count.
        seed: seeds the draws of n and k (a CPU generator), so training is reproducible.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha!r}")
    if int(max_iters) != max_iters or max_iters < 1:
        raise ValueError(f"max_iters must be an integer >= 1; got {max_iters!r}")
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def loss(model: nn.Module, inputs: tuple, targets: Tensor) -> Tensor:
        (x,) = inputs
        keep = None if mask is None else mask(x)
        total = x.new_zeros(())
        if alpha < 1:
            total = total + (1 - alpha) * _masked_ce(model.run(x, max_iters)[1], targets, keep)
        if alpha > 0:
            n = int(torch.randint(0, max_iters, (1,), generator=gen))
            k = int(torch.randint(1, max_iters - n + 1, (1,), generator=gen))
            state = None
            if n > 0:
                with torch.no_grad():
                    state = model.run(x, n)[0]
            logits = model.run(x, k, state=state, start=n)[1]
            total = total + alpha * _masked_ce(logits, targets, keep)
        return total

    return loss


# -- evaluation -----------------------------------------------------------------------------------------------
@dataclass
class IterationReport:
    """What a net does at every test-time iteration t = 1..T (index t-1)."""

    accuracy: Tensor  # (T,) fraction of instances solved exactly at iteration t
    max_conf_accuracy: Tensor  # (T,) same, each instance read at its most confident iteration <= t ('21 rule)
    state_change: Tensor  # (T,) median over instances of ||h_t - h_{t-1}|| / ||h_{t-1}||
    correct: Tensor  # (N, T) bool, instance solved exactly at iteration t


def _prediction(logits: Tensor, keep: Tensor | None) -> tuple[Tensor, Tensor]:
    """Argmax prediction (walls forced to 0 when masked) and its summed max-softmax confidence per instance."""
    conf, pred = logits.softmax(dim=1).max(dim=1)  # (B, *spatial)
    if keep is not None:
        pred, conf = pred * keep, conf * keep
    return pred, conf.flatten(1).sum(1)


def _solved(pred: Tensor, targets: Tensor) -> Tensor:
    return (pred == targets).flatten(1).all(dim=1)


def _batches(n: int, batch_size: int) -> range:
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    return range(0, n, batch_size)


@torch.no_grad()
def iteration_report(model: DTNet, inputs: Tensor, targets: Tensor, iters: int, *, mask: MaskFn | None = None,
                     batch_size: int = 256) -> IterationReport:
    """Run ``model`` for ``iters`` iterations once per batch and score the head after every iteration.

    Accuracy is whole-instance exact match (every bit / every open pixel right), as in the papers. With
    ``mask`` the prediction is zeroed outside the mask before comparing (the official maze rule).
    """
    if len(inputs) != len(targets):
        raise ValueError(f"inputs and targets differ in length: {len(inputs)} vs {len(targets)}")
    was_training = model.training
    model.eval()
    correct, mc_correct, change = [], [], []
    for i in _batches(len(inputs), batch_size):
        x, y = inputs[i:i + batch_size], targets[i:i + batch_size]
        keep = None if mask is None else mask(x)
        h = model.initial_state(x)
        best_conf = torch.full((len(x),), -torch.inf, device=x.device)
        best_pred = torch.zeros_like(y)
        c_b, mc_b, ch_b = [], [], []
        for h_new, logits in model.iterate(x, iters, state=h):
            ch_b.append((h_new - h).flatten(1).norm(dim=1) / h.flatten(1).norm(dim=1).clamp_min(1e-12))
            h = h_new
            pred, conf = _prediction(logits, keep)
            better = conf >= best_conf  # running arg-max of the confidence (latest on ties, as torch.cummax)
            best_conf = torch.where(better, conf, best_conf)
            best_pred[better] = pred[better]
            c_b.append(_solved(pred, y))
            mc_b.append(_solved(best_pred, y))
        correct.append(torch.stack(c_b, 1))
        mc_correct.append(torch.stack(mc_b, 1))
        change.append(torch.stack(ch_b, 1))
    model.train(was_training)
    correct_all = torch.cat(correct)
    return IterationReport(accuracy=correct_all.float().mean(0),
                           max_conf_accuracy=torch.cat(mc_correct).float().mean(0),
                           state_change=torch.cat(change).median(dim=0).values, correct=correct_all)


@torch.no_grad()
def perturbation_recovery(model: DTNet, inputs: Tensor, targets: Tensor, iters: int, *, at: int, noise: float,
                          mask: MaskFn | None = None, seed: int = 0, batch_size: int = 256) -> Tensor:
    """Accuracy (iters,) when the state is hit by Gaussian noise after iteration ``at``.

    The noise has, per instance, standard deviation ``noise`` x the RMS of that instance's state, so
    ``noise = 1`` replaces the state's signal-to-noise ratio by about 1 (the perturbation test of the [Re]
    study of Bansal et al.). A net that has learned a convergent algorithm recovers within a few iterations.
    """
    if not 1 <= at < iters:
        raise ValueError(f"`at` must satisfy 1 <= at < iters; got at={at}, iters={iters}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    was_training = model.training
    model.eval()
    correct = []
    for i in _batches(len(inputs), batch_size):
        x, y = inputs[i:i + batch_size], targets[i:i + batch_size]
        keep = None if mask is None else mask(x)
        rows = []
        h = None
        for h, logits in model.iterate(x, at):  # noqa: B007 (h: the state after iteration `at`)
            rows.append(_solved(_prediction(logits, keep)[0], y))
        rms = h.flatten(1).pow(2).mean(1).sqrt().view(-1, *[1] * (h.dim() - 1))
        h = h + noise * rms * torch.randn(h.shape, generator=gen).to(h.device)
        for _, logits in model.iterate(x, iters - at, state=h, start=at):
            rows.append(_solved(_prediction(logits, keep)[0], y))
        correct.append(torch.stack(rows, 1))
    model.train(was_training)
    return torch.cat(correct).float().mean(0)


@torch.no_grad()
def predictions(model: DTNet, inputs: Tensor, iters_list: list[int], *, mask: MaskFn | None = None) -> Tensor:
    """Argmax predictions (len(iters_list), B, *spatial) at the listed iteration counts (one unrolled pass)."""
    wanted = sorted(set(int(t) for t in iters_list))
    if not wanted or wanted[0] < 1:
        raise ValueError(f"iters_list must hold iteration counts >= 1; got {iters_list!r}")
    keep = None if mask is None else mask(inputs)
    was_training = model.training
    model.eval()
    found = {}
    for t, (_, logits) in enumerate(model.iterate(inputs, wanted[-1]), start=1):
        if t in wanted:
            found[t] = _prediction(logits, keep)[0]
    model.train(was_training)
    return torch.stack([found[int(t)] for t in iters_list])
