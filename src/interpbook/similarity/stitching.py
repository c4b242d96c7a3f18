"""Model stitching: run the top of model B on the (affinely mapped) residual stream of model A's bottom.

Context. Lenc & Vedaldi (2015) and Bansal, Nakkiran & Barak (2021) compare two networks *functionally*: cut
A and B at the same boundary ``l``, connect A's bottom to B's top through a low-capacity trainable layer, and
ask how much worse the stitched network is than B. For transformers the natural cut is a residual-stream
boundary (Brown et al., 2023, https://arxiv.org/abs/2310.14993), and the stitch is affine::

    M_{A->B, l}(x) = B_{>l}( W h^A_l(x) + b ),        W: [d_B, d_A],  b: [d_B],

trained on next-token cross-entropy with A and B frozen. The **stitching penalty**

    Delta_{A->B}(l) = CE(M_{A->B, l}) - CE(B)     (nats/token, held-out tokens)

is a dissimilarity that is asymmetric by construction: it asks whether *B can use what A computed*, not
whether the two are alike.

Intuition. A purely gradient-trained stitch can fail silently (a bad optimiser run looks like dissimilar
models), so the stitch is warm-started with the least-squares map from ``h^A_l`` to ``h^B_l`` on the same
tokens, the answer when the two streams are affinely related, and only then trained with Adam on the task
loss (the "direct matching" initialisation followed by task-loss training of Csiszárik et al., 2021,
https://arxiv.org/abs/2106.07682; Bansal et al. train a linear/1×1 stitch with batch norm from scratch).
Stitching a model to itself recovers the identity at the warm start and has a penalty of ~0.

The bottom model runs once, without gradients: its residuals are computed in batches and cached, so each
optimiser step costs one pass through B's top blocks. Models follow the interface of
:class:`interpbook.models.transformer.TinyTransformer` (``resid_at(tokens, l)``, ``forward_from(l, resid)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpbook.models.transformer import token_losses
from interpbook.train import TrainConfig, fit


class AffineStitch(nn.Module):
    """``h -> h @ W.T + b`` from width ``d_in`` (model A) to ``d_out`` (model B), applied at every position."""

    def __init__(self, d_in: int, d_out: int, *, device=None, dtype=None):
        super().__init__()
        for name, value in (("d_in", d_in), ("d_out", d_out)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        self.weight = nn.Parameter(torch.zeros(d_out, d_in, device=device, dtype=dtype))  # [d_B, d_A]
        self.bias = nn.Parameter(torch.zeros(d_out, device=device, dtype=dtype))  # [d_B]

    def forward(self, h: Tensor) -> Tensor:  # [..., d_A] -> [..., d_B]
        return F.linear(h, self.weight, self.bias)


def least_squares_affine(x: Tensor, y: Tensor, *, ridge: float = 1e-8) -> tuple[Tensor, Tensor]:
    """The affine map ``y ~ x @ W.T + b`` of least squared error (float64, on ``x``'s device).

    Args:
        x: ``[..., d_x]`` source representations; every leading dimension is flattened into examples.
        y: ``[..., d_y]`` target representations of the same examples.
        ridge: Tikhonov term, relative to the mean eigenvalue of the centred ``x^T x`` (keeps a rank-deficient
            ``x`` solvable; 0 for the plain normal equations).

    Returns:
        ``(W [d_y, d_x], b [d_y])`` in float64. Exact (up to ``ridge``) when ``y`` is an affine function of a
        full-rank ``x``.
    """
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.dim() < 2 or y.dim() < 2:
        raise ValueError("x and y must be tensors [..., n, d] (at least 2-D); got "
                         f"{getattr(x, 'shape', type(x).__name__)} and {getattr(y, 'shape', type(y).__name__)}")
    if x.shape[:-1] != y.shape[:-1]:
        raise ValueError(f"x and y must hold the same examples: leading shapes {tuple(x.shape[:-1])} and "
                         f"{tuple(y.shape[:-1])} differ")
    if not ridge >= 0:
        raise ValueError(f"ridge must be >= 0; got {ridge!r}")
    x = x.reshape(-1, x.shape[-1]).to(torch.float64)
    y = y.reshape(-1, y.shape[-1]).to(device=x.device, dtype=torch.float64)
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 examples to fit an affine map; got {x.shape[0]}")
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    gram = xc.T @ xc  # [d_x, d_x]
    lam = ridge * gram.diagonal().mean().clamp_min(torch.finfo(torch.float64).tiny)
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    weight = torch.linalg.solve(gram + lam * eye, xc.T @ yc).T  # [d_y, d_x]
    return weight, my - weight @ mx


class StitchedModel(nn.Module):
    """``tokens -> top.forward_from(layer, stitch(bottom.resid_at(tokens, layer)))`` (logits)."""

    def __init__(self, bottom: nn.Module, top: nn.Module, layer: int, stitch: AffineStitch):
        super().__init__()
        self.bottom, self.top, self.layer, self.stitch = bottom, top, layer, stitch

    def forward(self, tokens: Tensor) -> Tensor:
        return self.top.forward_from(self.layer, self.stitch(self.bottom.resid_at(tokens, self.layer)))


class _TopOnResid(nn.Module):
    """What the optimiser sees: cached bottom residuals ``[B, T, d_A]`` -> B's logits through the stitch."""

    def __init__(self, top: nn.Module, layer: int, stitch: AffineStitch):
        super().__init__()
        self.top, self.layer, self.stitch = top, layer, stitch

    def train(self, mode: bool = True) -> _TopOnResid:
        """Only the stitch follows ``mode``: the frozen top stays in eval mode (no dropout, no batch-norm updates)."""
        self.training = mode
        self.stitch.train(mode)
        self.top.eval()
        return self

    def forward(self, resid: Tensor) -> Tensor:
        return self.top.forward_from(self.layer, self.stitch(resid))


def _resid_loss(model: _TopOnResid, inputs: tuple, targets: Tensor) -> Tensor:
    """Next-token cross-entropy of the stitched top; ``inputs[0]`` the residuals of ``tokens[:, :-1]``."""
    logits = model(inputs[0])  # [B, T-1, vocab]
    return F.cross_entropy(logits.flatten(0, 1), targets[:, 1:].flatten())


@torch.no_grad()
def _residuals(model: nn.Module, tokens: Tensor, layer: int, batch_size: int) -> Tensor:
    return torch.cat([model.resid_at(tokens[i:i + batch_size], layer) for i in range(0, len(tokens), batch_size)])


@dataclass
class StitchResult:
    """The outcome of :func:`stitch_models` (losses in nats per predicted token, on the held-out tokens)."""

    stitch: AffineStitch
    layer: int
    penalty: float  # CE(stitched, after Adam) - CE(top)
    warm_penalty: float  # CE(stitched, least-squares warm start only) - CE(top)
    top_loss: float  # CE(top) alone
    stitched_loss: float  # CE(stitched) after Adam
    history: list[float] = field(default_factory=list)  # mean training loss per epoch of the Adam phase


def stitch_models(bottom: nn.Module, top: nn.Module, layer: int, train_tokens: Tensor, test_tokens: Tensor, *,
                  steps: int = 100, lr: float = 1e-3, batch_size: int = 32, warm_start: bool = True,
                  ridge: float = 1e-8, warm_sequences: int | None = 512, seed: int = 0, device=None,
                  eval_batch_size: int = 256) -> StitchResult:
    """Stitch ``bottom``'s residual stream at boundary ``layer`` into ``top`` and measure the penalty.

    1. Residuals ``h^A_l``, ``h^B_l`` of ``train_tokens`` (batched, no gradients).
    2. Warm start (``warm_start=True``): ``W, b`` = least squares of ``h^B_l`` on ``h^A_l`` over the first
       ``warm_sequences`` training sequences (all if ``None``; every position counts as an example, so a few
       hundred sequences pin down a ``d_B x d_A`` map) (:func:`least_squares_affine`); otherwise ``W = 0, b = 0``.
    3. Adam (the book's :func:`interpbook.train.fit`, AdamW without weight decay, constant rate) for ``steps``
       minibatches on next-token cross-entropy; only ``W, b`` train, ``bottom`` and ``top`` stay frozen.
    4. Penalty = held-out cross-entropy of the stitched model minus that of ``top`` (nats/token).

    Args:
        bottom, top: models with ``resid_at(tokens, l)`` and ``forward_from(l, resid)`` (e.g. ``TinyTransformer``);
            they may differ in width, and may be the same model.
        layer: residual boundary, 0 (embedding output) .. n_layers.
        train_tokens, test_tokens: integer ``[n, pos]`` token sequences (fit / evaluate).
        steps: Adam steps (0: report the warm start only), rounded up to whole epochs of the training tokens
            when they exceed one epoch; lr, batch_size: of the Adam phase (constant rate, no weight decay).
        seed: minibatch order. device: where the work runs (default: ``top``'s device); models are moved there.

    Returns:
        A :class:`StitchResult`.
    """
    for name, tok in (("train_tokens", train_tokens), ("test_tokens", test_tokens)):
        if not isinstance(tok, Tensor) or tok.dim() != 2 or tok.shape[1] < 2 or tok.dtype.is_floating_point:
            got = f"{tuple(tok.shape)} {tok.dtype}" if isinstance(tok, Tensor) else type(tok).__name__
            raise ValueError(f"{name} must be an integer tensor [n, pos >= 2]; got {got}")
    if len(train_tokens) < 2 or len(test_tokens) < 1:
        raise ValueError(f"need >= 2 training and >= 1 test sequences; got {len(train_tokens)} and {len(test_tokens)}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0; got {steps!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0; got {lr!r}")
    if warm_sequences is not None and (isinstance(warm_sequences, bool) or int(warm_sequences) != warm_sequences
                                       or warm_sequences < 1):
        raise ValueError(f"warm_sequences must be an integer >= 1 or None; got {warm_sequences!r}")
    for name, model in (("bottom", bottom), ("top", top)):
        if not (hasattr(model, "resid_at") and hasattr(model, "forward_from")):
            raise ValueError(f"{name} must have resid_at(tokens, layer) and forward_from(layer, resid) "
                             f"(e.g. a TinyTransformer); got {type(model).__name__}")
    n_bottom, n_top = bottom.cfg.n_layers, top.cfg.n_layers
    if isinstance(layer, bool) or int(layer) != layer or not 0 <= layer <= min(n_bottom, n_top):
        raise ValueError(f"layer must be a residual boundary 0..{min(n_bottom, n_top)} of both models "
                         f"(n_layers {n_bottom} and {n_top}); got {layer!r}")
    device = torch.device(device) if device is not None else next(top.parameters()).device
    modes = bottom.training, top.training
    bottom, top = bottom.to(device).eval(), top.to(device).eval()  # the models stay on ``device``
    train_tokens, test_tokens = train_tokens.to(device), test_tokens.to(device)

    inputs = train_tokens[:, :-1]  # the last token predicts nothing we can score
    h_a = _residuals(bottom, inputs, layer, eval_batch_size)  # [n, T-1, d_A]
    dtype = next(top.parameters()).dtype
    stitch = AffineStitch(bottom.cfg.d_model, top.cfg.d_model, device=device, dtype=dtype)
    if warm_start:
        k = len(inputs) if warm_sequences is None else int(warm_sequences)
        h_b = _residuals(top, inputs[:k], layer, eval_batch_size)
        weight, bias = least_squares_affine(h_a[:k], h_b, ridge=ridge)
        with torch.no_grad():
            stitch.weight.copy_(weight.to(dtype))
            stitch.bias.copy_(bias.to(dtype))
    stitched = StitchedModel(bottom, top, layer, stitch)

    def held_out() -> float:
        return float(token_losses(stitched, test_tokens, eval_batch_size).mean())

    top_loss = float(token_losses(top, test_tokens, eval_batch_size).mean())
    warm_loss = held_out()
    history: list[float] = []
    if steps:
        frozen = [p for p in list(bottom.parameters()) + list(top.parameters()) if p.requires_grad]
        for p in frozen:  # no gradients for the frozen models: cheaper, and nothing else can change
            p.requires_grad_(False)
        try:
            per_epoch = -(-len(train_tokens) // batch_size)
            epochs = -(-int(steps) // per_epoch)
            n_used = min(len(train_tokens), int(steps) * batch_size) if epochs == 1 else len(train_tokens)
            cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=0.0, seed=seed)
            history = fit(_TopOnResid(top, layer, stitch), h_a[:n_used], train_tokens[:n_used], cfg,
                          parameters=stitch.parameters(), loss=_resid_loss).loss
        finally:
            for p in frozen:
                p.requires_grad_(True)
        top.eval()
    stitched_loss = held_out()
    bottom.train(modes[0])
    top.train(modes[1])
    return StitchResult(stitch, int(layer), stitched_loss - top_loss, warm_loss - top_loss, top_loss, stitched_loss,
                        history)
