"""Sparse autoencoders (SAEs): dictionary learning on a network's activations.

Context. A layer's activation ``x ∈ R^d`` mixes more "features" than it has dimensions (superposition).
An SAE rewrites it as a sparse, non-negative combination of ``m > d`` learned directions,
``x ≈ b_dec + Σ_i f_i(x) d_i`` with few ``f_i`` non-zero, in the hope that each direction ``d_i`` is one
interpretable feature (Bricken et al., 2023; Cunningham et al., 2024). Two recipes, one class:

* ``kind="topk"`` — Gao et al. (2024), *Scaling and evaluating sparse autoencoders*, as implemented by
  EleutherAI's ``sparsify`` (whose SAEs Lan et al., 2024 compare), except that the AuxK reconstruction of the
  residual is Gao et al.'s ``W_dec z_aux`` without ``sparsify``'s ``b_dec`` (it matters only while latents are
  dead), and the encoder starts as the transposed unit-norm decoder::

      pre(x) = W_encᵀ (x − b_dec) + b_enc                 # pre-encoder bias subtraction
      f(x)   = ReLU(TopK_k(pre(x)))                        # the k largest survive (fewer if < k are positive)
      x̂     = W_decᵀ f(x) + b_dec
      L      = ||x − x̂||² / ||x − x̄||²  +  α · L_aux       # normalised MSE (the batch's FVU) + AuxK

  AuxK revives dead latents (no firing during the last ``dead_tokens`` training tokens): the
  ``k_aux = d // 2`` largest ReLU pre-activations among them reconstruct the residual ``e = x − x̂``,
  ``L_aux = min(n_dead / k_aux, 1) · ||e − W_decᵀ f_aux||² / ||x − x̄||²`` (``e`` detached).
* ``kind="l1"`` — Bricken et al. (2023), *Towards Monosemanticity*::

      f(x) = ReLU(W_encᵀ (x − b_dec) + b_enc),    x̂ = W_decᵀ f(x) + b_dec
      L    = mean_batch ||x − x̂||²  +  λ · mean_batch Σ_i f_i(x) ||d_i||

  With unit-norm decoder rows the penalty is ``λ ||f||₁`` (Towards Monosemanticity). With
  ``normalise_decoder=False`` it is the decoder-norm-weighted penalty of Anthropic's April 2024 training
  update, which keeps the model from dodging the penalty by shrinking ``f`` and growing ``d_i``
  (that update's λ warm-up and input rescaling are left to the caller; dead-neuron resampling is not done).

Decoder normalisation (``normalise_decoder=True``, both recipes): the rows ``d_i`` stay at unit norm.
:func:`sae_loss` renormalises them before each training forward (the same trajectory as renormalising
after each optimiser step), and the decoder's gradient is projected onto the sphere's tangent space,
``g_i ← g_i − (g_i · d_i) d_i``, so that a step does not fight the constraint.

Layout (that of ``sae_lens``; ``sparsify`` stores ``W_enc`` transposed): ``W_enc [d_in, d_sae]``,
``b_enc [d_sae]``, ``W_dec [d_sae, d_in]`` (row ``i`` is the direction ``d_i``, a "column" of the
dictionary in Anthropic's notation), ``b_dec [d_in]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpbook.train import History, TrainConfig, fit

KINDS = ("topk", "l1")
ACTIVATIONS = ("codes", "relu_pre")
B_DEC_INITS = ("mean", "keep")


class SAEOutput(NamedTuple):
    x_hat: Tensor  # [..., d_in] reconstruction
    codes: Tensor  # [..., d_sae] sparse feature activations f(x)
    pre_acts: Tensor  # [..., d_sae] W_encᵀ (x − b_dec) + b_enc, before any non-linearity


class _TangentGrad(torch.autograd.Function):
    """Identity on the decoder whose backward removes each row's gradient component along that row."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return w.view_as(w)

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad - (grad * w).sum(-1, keepdim=True) * w  # [d_sae, d_in]


class SparseAutoencoder(nn.Module):
    """A TopK or L1 sparse autoencoder (see the module docstring for the formulas).

    Args:
        d_in: width of the activations it encodes.
        d_sae: number of latents (dictionary size), usually a multiple of ``d_in``.
        kind: ``"topk"`` (Gao et al., 2024) or ``"l1"`` (Towards Monosemanticity).
        k: active latents per input, ``1 <= k <= d_sae`` (``kind="topk"`` only, required there).
        l1_coeff: the sparsity coefficient λ >= 0 (``kind="l1"`` only, required there).
        tied_init: start with ``W_enc = W_decᵀ`` (Gao et al.; ``sparsify``); otherwise draw it independently.
        normalise_decoder: keep the decoder rows at unit norm (with the gradient projection). Off, the rows
            start at norm 0.1 and are free, as in Anthropic's April 2024 update.
        auxk_alpha: weight α of the AuxK loss (topk only; Gao et al. use 1/32; 0 switches it off).
        dead_tokens: a latent counts as dead for AuxK after this many training inputs without firing
            (Gao et al. and ``sparsify``: 10M tokens; small runs need far fewer).
        device, dtype: where the parameters live.

    Example:
        >>> sae = SparseAutoencoder(16, 64, kind="topk", k=4)
        >>> out = sae(torch.randn(8, 16))
        >>> out.x_hat.shape, int((out.codes > 0).sum(1).max()) <= 4
        (torch.Size([8, 16]), True)
    """

    def __init__(self, d_in: int, d_sae: int, kind: str = "topk", *, k: int | None = None,
                 l1_coeff: float | None = None, tied_init: bool = True, normalise_decoder: bool = True,
                 auxk_alpha: float = 1 / 32, dead_tokens: int = 10_000_000, device=None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown SAE kind {kind!r}; allowed: {', '.join(KINDS)}")
        if d_in < 1 or d_sae < 1:
            raise ValueError(f"d_in and d_sae must be >= 1, got d_in={d_in}, d_sae={d_sae}")
        if kind == "topk" and (not isinstance(k, int) or not 1 <= k <= d_sae):
            raise ValueError(f"kind='topk' needs an integer k with 1 <= k <= d_sae={d_sae}, got k={k}")
        if kind == "l1" and (l1_coeff is None or l1_coeff < 0):
            raise ValueError(f"kind='l1' needs l1_coeff >= 0, got l1_coeff={l1_coeff}")
        if kind == "topk" and l1_coeff is not None or kind == "l1" and k is not None:
            raise ValueError(f"k belongs to kind='topk' and l1_coeff to kind='l1'; got kind={kind!r}, k={k}, "
                             f"l1_coeff={l1_coeff}")
        if auxk_alpha < 0 or dead_tokens < 1:
            raise ValueError(f"auxk_alpha must be >= 0 and dead_tokens >= 1; got {auxk_alpha}, {dead_tokens}")
        self.d_in, self.d_sae, self.kind, self.k, self.l1_coeff = d_in, d_sae, kind, k, l1_coeff
        self.normalise_decoder, self.auxk_alpha, self.dead_tokens = normalise_decoder, auxk_alpha, dead_tokens
        factory = {"device": device, "dtype": dtype}
        w_dec = torch.randn(d_sae, d_in, **factory)
        w_dec = w_dec / w_dec.norm(dim=1, keepdim=True) * (1.0 if normalise_decoder else 0.1)
        w_enc = w_dec.t().clone() if tied_init else torch.randn(d_in, d_sae, **factory) / d_in ** 0.5
        self.W_enc = nn.Parameter(w_enc)  # [d_in, d_sae]
        self.b_enc = nn.Parameter(torch.zeros(d_sae, **factory))
        self.W_dec = nn.Parameter(w_dec)  # [d_sae, d_in]
        self.b_dec = nn.Parameter(torch.zeros(d_in, **factory))
        # training inputs seen since each latent last fired (AuxK's dead mask); saved with the weights
        self.register_buffer("tokens_since_fired", torch.zeros(d_sae, dtype=torch.long, device=device))

    def extra_repr(self) -> str:
        sparsity = f"k={self.k}" if self.kind == "topk" else f"l1_coeff={self.l1_coeff}"
        return f"d_in={self.d_in}, d_sae={self.d_sae}, kind={self.kind!r}, {sparsity}"

    def decoder(self) -> Tensor:
        """``W_dec`` as used in the forward pass: with the tangent-space gradient when the rows are normalised."""
        if self.normalise_decoder and torch.is_grad_enabled() and self.W_dec.requires_grad:
            return _TangentGrad.apply(self.W_dec)
        return self.W_dec

    def pre_acts(self, x: Tensor) -> Tensor:
        """``W_encᵀ (x − b_dec) + b_enc``: ``[..., d_in] -> [..., d_sae]``, before any non-linearity."""
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, pre: Tensor) -> Tensor:
        """Sparse codes from pre-activations: ``ReLU(TopK_k(pre))`` or ``ReLU(pre)``."""
        if self.kind == "l1":
            return torch.relu(pre)
        values, indices = pre.topk(self.k, dim=-1, sorted=False)  # [..., k]
        return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))

    def encode(self, x: Tensor) -> Tensor:
        """Sparse feature activations ``f(x)``: ``[..., d_in] -> [..., d_sae]``."""
        return self.activate(self.pre_acts(x))

    def decode(self, codes: Tensor) -> Tensor:
        """``W_decᵀ f + b_dec``: ``[..., d_sae] -> [..., d_in]``."""
        return codes @ self.decoder() + self.b_dec

    def forward(self, x: Tensor) -> SAEOutput:
        if x.shape[-1] != self.d_in:
            raise ValueError(f"input's last dimension is {x.shape[-1]}, this SAE encodes d_in={self.d_in}")
        pre = self.pre_acts(x)
        if self.kind == "l1":
            codes = torch.relu(pre)
            return SAEOutput(self.decode(codes), codes, pre)
        values, indices = pre.topk(self.k, dim=-1, sorted=False)  # [..., k]
        values = torch.relu(values)
        # decode from the k active rows only (Gao et al.'s sparse kernel): k * d_in per input instead of d_sae * d_in
        flat = F.embedding_bag(indices.reshape(-1, self.k), self.decoder(),
                               per_sample_weights=values.reshape(-1, self.k), mode="sum")  # [n, d_in]
        x_hat = flat.reshape(*x.shape[:-1], self.d_in) + self.b_dec
        return SAEOutput(x_hat, torch.zeros_like(pre).scatter(-1, indices, values), pre)

    @torch.no_grad()
    def normalise_decoder_(self) -> SparseAutoencoder:
        """Rescale every decoder row to unit norm, in place (zero rows stay zero)."""
        eps = torch.finfo(self.W_dec.dtype).eps
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True) + eps)
        return self


def sae_loss(model: SparseAutoencoder, inputs: tuple, targets: Tensor | None = None) -> Tensor:
    """The training objective of ``model``'s recipe on one batch; the ``loss=`` hook of :func:`interpbook.train.fit`.

    Args:
        model: a :class:`SparseAutoencoder`.
        inputs: ``(x,)`` with ``x`` of shape ``[batch, d_in]``.
        targets: ignored (``fit`` passes its labels; an SAE reconstructs its input).

    Returns:
        A scalar: normalised MSE (+ α AuxK) for TopK, MSE + λ Σ f_i ||d_i|| for L1.

    In training mode with gradients on, it first renormalises the decoder rows (when the model does so) and
    afterwards updates the dead-latent counter; evaluated under ``torch.no_grad()`` it changes nothing.
    """
    if not isinstance(model, SparseAutoencoder):
        raise ValueError(f"sae_loss needs a SparseAutoencoder, got {type(model).__name__}")
    (x,) = inputs
    if x.dim() != 2:
        raise ValueError(f"sae_loss expects x of shape [batch, d_in]; got {tuple(x.shape)} (flatten positions first)")
    training = model.training and torch.is_grad_enabled()
    if training and model.normalise_decoder:
        model.normalise_decoder_()  # undoes the drift of the previous optimiser step
    out = model(x)
    err = x - out.x_hat  # [batch, d_in]
    if model.kind == "l1":
        penalty = (out.codes * model.decoder().norm(dim=1)).sum(-1).mean()
        return err.pow(2).sum(-1).mean() + model.l1_coeff * penalty
    total_variance = (x - x.mean(0)).pow(2).sum()
    loss = err.pow(2).sum() / total_variance
    dead = model.tokens_since_fired > model.dead_tokens  # [d_sae], from the inputs before this batch
    if model.auxk_alpha > 0 and bool(dead.any()):
        loss = loss + model.auxk_alpha * _auxk_loss(model, out.pre_acts, err, dead, total_variance)
    if training:
        with torch.no_grad():
            model.tokens_since_fired += len(x)
            model.tokens_since_fired[(out.codes > 0).any(0)] = 0
    return loss


def _auxk_loss(model: SparseAutoencoder, pre: Tensor, err: Tensor, dead: Tensor, total_variance: Tensor) -> Tensor:
    """AuxK (Gao et al., 2024, App. B.1): the top dead latents reconstruct the detached residual."""
    k_aux = model.d_in // 2
    n_dead = int(dead.sum())
    scale = min(n_dead / k_aux, 1.0) if k_aux > 0 else 1.0
    k_aux = max(min(k_aux, n_dead), 1)
    masked = torch.where(dead, torch.relu(pre), torch.full_like(pre, -torch.inf))  # [batch, d_sae]
    values, indices = masked.topk(k_aux, dim=-1, sorted=False)
    codes = torch.zeros_like(pre).scatter(-1, indices, values)
    err_hat = codes @ model.decoder()  # no b_dec: the residual already accounts for it
    return scale * (err_hat - err.detach()).pow(2).sum() / total_variance


def train_sae(sae: SparseAutoencoder, x: Tensor, config: TrainConfig | None = None, *, b_dec_init: str = "mean",
              **overrides) -> History:
    """Train ``sae`` on the activations ``x [N, d_in]`` with the book's one loop, :func:`interpbook.train.fit`.

    Args:
        sae: the autoencoder, trained in place (on the device of ``x``; move it there first).
        x: activations, one row per token.
        config, overrides: :class:`interpbook.train.TrainConfig` and its fields (epochs, batch_size, lr,
            warmup_steps, schedule, clip_grad, ...).
        b_dec_init: ``"mean"`` sets ``b_dec`` to the mean activation first (``sparsify``'s start; Gao et al.
            use the geometric median), ``"keep"`` leaves it.

    Returns:
        ``fit``'s history (mean loss per epoch). The decoder rows are unit-norm on return when normalised.
    """
    if b_dec_init not in B_DEC_INITS:
        raise ValueError(f"unknown b_dec_init {b_dec_init!r}; allowed: {', '.join(B_DEC_INITS)}")
    if x.dim() != 2 or x.shape[1] != sae.d_in:
        raise ValueError(f"x must have shape [N, d_in={sae.d_in}], got {tuple(x.shape)}")
    if x.device != sae.W_enc.device:
        raise ValueError(f"x is on {x.device} but the SAE on {sae.W_enc.device}; move one of them first")
    if b_dec_init == "mean":
        with torch.no_grad():
            sae.b_dec.copy_(x.mean(0))
    cfg = dataclasses.replace(config or TrainConfig(), **overrides)
    if sae.kind == "topk" and len(x) % cfg.batch_size == 1:
        raise ValueError(f"{len(x)} rows in batches of {cfg.batch_size} leave a last batch of one row, whose "
                         "variance (the FVU loss's denominator) is 0; drop a row or change batch_size")
    dummy = torch.zeros(len(x), dtype=torch.long, device=x.device)  # fit wants labels; an SAE has none
    history = fit(sae, x, dummy, config, loss=sae_loss, **overrides)
    if sae.normalise_decoder:
        sae.normalise_decoder_()  # the last optimiser step is not followed by a forward
    return history


@torch.no_grad()
def feature_activations(sae: SparseAutoencoder, x: Tensor, *, which: str = "codes", batch_size: int = 4096,
                        device=None) -> Tensor:
    """Feature activations of ``sae`` on every row of ``x [N, d_in]`` -> ``[N, d_sae]`` on ``x``'s device.

    Args:
        which: ``"codes"``: the sparse codes ``f(x)``; ``"relu_pre"``: the dense ``ReLU(pre(x))`` before TopK
            (what ``sparsify``'s ``pre_acts`` returns, and so what the official pipeline of Lan et al. correlates
            for the Pythia SAEs). The two coincide for an L1 SAE.
        batch_size: rows per forward pass; ``device``: where to compute (default: the SAE's device).
    """
    if which not in ACTIVATIONS:
        raise ValueError(f"unknown activations {which!r}; allowed: {', '.join(ACTIVATIONS)}")
    device = device or sae.W_enc.device
    out = []
    for i in range(0, len(x), batch_size):
        pre = sae.pre_acts(x[i:i + batch_size].to(device))
        out.append((sae.activate(pre) if which == "codes" else torch.relu(pre)).to(x.device))
    return torch.cat(out) if out else x.new_zeros(0, sae.d_sae)


@dataclass
class SAEMetrics:
    fve: float  # fraction of variance explained, 1 − Σ||x − x̂||² / Σ||x − x̄||²
    mse: float  # mean over rows of ||x − x̂||²
    l0: float  # mean number of active latents per row
    dead_fraction: float  # latents that fire on no row
    frequencies: Tensor  # [d_sae] fraction of rows on which each latent fires


@torch.no_grad()
def evaluate(sae: SparseAutoencoder, x: Tensor, *, batch_size: int = 4096, device=None) -> SAEMetrics:
    """Reconstruction and sparsity of ``sae`` over the dataset ``x [N, d_in]``, computed in batches."""
    if x.dim() != 2 or x.shape[1] != sae.d_in or len(x) == 0:
        raise ValueError(f"x must have shape [N >= 1, d_in={sae.d_in}], got {tuple(x.shape)}")
    device = device or sae.W_enc.device
    mean = x.mean(0).to(device)
    sq_err = total = 0.0
    fired = torch.zeros(sae.d_sae, device=device)
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device)
        out = sae(xb)
        sq_err += float((xb - out.x_hat).pow(2).sum())
        total += float((xb - mean).pow(2).sum())
        fired += (out.codes > 0).sum(0)
    frequencies = (fired / len(x)).cpu()
    return SAEMetrics(fve=1.0 - sq_err / total if total > 0 else float("nan"), mse=sq_err / len(x),
                      l0=float(frequencies.sum()), dead_fraction=float((frequencies == 0).float().mean()),
                      frequencies=frequencies)
