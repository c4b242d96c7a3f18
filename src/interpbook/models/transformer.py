"""A tiny decoder-only transformer with a named activation at every point of the residual stream.

Context. Part I of the book compares the *representations* of small language models: CKA between layers,
model stitching (run model B from layer l on model A's residual stream), sparse autoencoders on residual and
MLP activations. All of it needs the same two things from a model: read any intermediate activation by a
predictable name, and replace one. This module gives a GPT-2-shaped model small enough to train on a CPU in
seconds (3 layers, d_model 48 train in a few seconds on a synthetic language, :mod:`interpbook.data.language`).

Intuition. In a pre-LN transformer every block *adds* to the residual stream and never overwrites it::

    resid_pre[0] = embed(tokens) + pos_embed                 "l = 0 is the embedding output"
    resid_mid[l] = resid_pre[l] + attn(LN1(resid_pre[l]))
    resid_post[l] = resid_mid[l] + mlp(LN2(resid_mid[l]))    = resid_pre[l + 1]
    logits = unembed(LN_final(resid_post[n_layers - 1]))

so the residual stream at a block boundary l (``resid_at(tokens, l)``) is a complete summary of what the
lower blocks computed, and ``forward_from(l, resid)`` runs the upper blocks on any tensor of that shape:
``forward_from(l, resid_at(tokens, l)) == forward(tokens)``, and ``B.forward_from(l, W @ A.resid_at(x, l) + b)``
is the stitched model of Bansal et al.

The MLP activation is ``"gelu"`` (exact, erf-based, as TransformerLens ``act_fn="gelu"``) or ``"solu_ln"``, the
softmax linear unit of Elhage et al. (2022) followed by a LayerNorm over the hidden dimension, exactly as
TransformerLens writes it: ``mid = pre * softmax(pre, dim=-1)``, ``post = LayerNorm(mid)``.

Hook points (TransformerLens names; B batch, T positions, d = d_model, H heads, h = d_model / H, m = d_mlp)::

    hook_embed, hook_pos_embed              [B, T, d]
    blocks.{l}.hook_resid_pre               [B, T, d]
    blocks.{l}.attn.hook_pattern            [B, H, T, T]   softmax over the last (key) axis
    blocks.{l}.attn.hook_z                  [B, T, H, h]   per-head output before the output projection
    blocks.{l}.hook_attn_out                [B, T, d]
    blocks.{l}.hook_resid_mid               [B, T, d]
    blocks.{l}.mlp.hook_pre                 [B, T, m]      before the activation
    blocks.{l}.mlp.hook_mid                 [B, T, m]      solu_ln only: x * softmax(x), before its LayerNorm
    blocks.{l}.mlp.hook_post                [B, T, m]      the MLP hidden layer (after the LayerNorm for solu_ln)
    blocks.{l}.hook_mlp_out                 [B, T, d]
    blocks.{l}.hook_resid_post              [B, T, d]
    ln_final.hook_normalized                [B, T, d]      after the gain and bias: what the unembedding reads

A hook is a function ``tensor -> tensor | None``: returning a tensor of the same shape replaces the activation
from there on (returning ``None`` only observes it). The cache of :meth:`TinyTransformer.run_with_cache` holds
what flowed on, i.e. after any replacement.

Weights are initialised as TransformerLens 4.x initialises its native models (``init_mode="gpt2"``): every weight
matrix (embeddings, Q, K, V, O, MLP in/out, unembedding) is normal with mean 0 and std 0.8 / sqrt(d_model) (the
legacy HookedTransformer default ``initializer_range``), the two residual-writing projections (attention O, MLP
out) scaled down by 1 / sqrt(2 n_layers); biases 0, LayerNorm gains 1. With ``seed`` given, the draws come from a
private generator in TransformerLens's order, so the weights equal ``TransformerBridge.boot_native`` with the same
seed. The unembedding has no bias (as there).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = ("gelu", "solu_ln")
Hook = Callable[[Tensor], Tensor | None]
_BLOCK_POINTS = ("hook_resid_pre", "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
                 "mlp.hook_pre", "mlp.hook_mid", "mlp.hook_post", "hook_mlp_out", "hook_resid_post")


def solu(x: Tensor) -> Tensor:
    """Softmax linear unit ``x * softmax(x)`` over the last (hidden) dimension (Elhage et al., 2022)."""
    return x * torch.softmax(x, dim=-1)


@dataclass(frozen=True)
class TransformerConfig:
    """The shape of a :class:`TinyTransformer` (validated on creation; the model keeps it as ``model.cfg``)."""

    vocab: int  # number of token ids, BOS included
    d_model: int = 48  # width of the residual stream
    n_layers: int = 3
    n_heads: int = 4  # d_model must be a multiple; d_head = d_model // n_heads
    d_mlp: int = 192  # MLP hidden width
    n_ctx: int = 32  # longest input; learned positional embeddings for positions 0..n_ctx-1
    act: str = "gelu"  # gelu | solu_ln
    causal: bool = True  # False: every position attends everywhere (an encoder, e.g. for a CLS read-out)
    init_range: float | None = None  # std of the weight init; None: 0.8 / sqrt(d_model) as TransformerLens
    ln_eps: float = 1e-5

    def __post_init__(self):
        for name, low in (("vocab", 2), ("d_model", 1), ("n_layers", 1), ("n_heads", 1), ("d_mlp", 1),
                          ("n_ctx", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"unknown act {self.act!r}; allowed: {', '.join(ACTIVATIONS)}")
        if self.init_range is not None and not self.init_range > 0:
            raise ValueError(f"init_range must be > 0 or None; got {self.init_range!r}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


class _Tap:
    """Where a forward pass reports its named activations: applies hooks, keeps the requested ones."""

    def __init__(self, hooks: dict[str, Hook], keep: Iterable[str] = (), detach: bool = True):
        self.hooks, self.keep, self.detach = hooks, set(keep), detach
        self.cache: dict[str, Tensor] = {}

    def wants(self, name: str) -> bool:
        return name in self.hooks or name in self.keep

    def __call__(self, name: str, x: Tensor) -> Tensor:
        hook = self.hooks.get(name)
        if hook is not None:
            out = hook(x)
            if out is not None:
                if not isinstance(out, Tensor) or out.shape != x.shape:
                    got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                    raise ValueError(f"the hook on {name!r} must return None or a tensor of shape "
                                     f"{tuple(x.shape)}; got {got}")
                x = out
        if name in self.keep:
            self.cache[name] = x.detach() if self.detach else x
        return x


def _tap(tap: _Tap | None, name: str, x: Tensor) -> Tensor:
    return x if tap is None else tap(name, x)


class Attention(nn.Module):
    """Multi-head self-attention with separate Q, K, V, O projections (biases on all four)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads, self.d_head, self.causal = cfg.n_heads, cfg.d_head, cfg.causal
        self.q, self.k, self.v, self.o = (nn.Linear(cfg.d_model, cfg.d_model) for _ in range(4))

    def forward(self, x: Tensor, tap: _Tap | None = None, prefix: str = "") -> Tensor:
        b, t, d = x.shape
        q, k, v = (proj(x).view(b, t, self.n_heads, self.d_head).transpose(1, 2)  # [B, H, T, h]
                   for proj in (self.q, self.k, self.v))
        name = prefix + "attn.hook_pattern"
        if tap is not None and tap.wants(name):  # the pattern is needed: compute it explicitly
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)  # [B, H, T, T]
            if self.causal:
                future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(future, float("-inf"))
            z = tap(name, scores.softmax(dim=-1)) @ v
        else:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)  # [B, H, T, h]
        z = _tap(tap, prefix + "attn.hook_z", z.transpose(1, 2))  # [B, T, H, h]
        return self.o(z.reshape(b, t, d))


class FeedForward(nn.Module):
    """``fc_out(act(fc_in(x)))``; for ``solu_ln`` the activation is ``LayerNorm(solu(.))`` over d_mlp."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.fc_in = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.fc_out = nn.Linear(cfg.d_mlp, cfg.d_model)
        self.ln = nn.LayerNorm(cfg.d_mlp, eps=cfg.ln_eps) if cfg.act == "solu_ln" else None

    def forward(self, x: Tensor, tap: _Tap | None = None, prefix: str = "") -> Tensor:
        pre = _tap(tap, prefix + "mlp.hook_pre", self.fc_in(x))  # [B, T, m]
        if self.ln is None:
            post = F.gelu(pre)
        else:
            post = self.ln(_tap(tap, prefix + "mlp.hook_mid", solu(pre)))
        return self.fc_out(_tap(tap, prefix + "mlp.hook_post", post))


class Block(nn.Module):
    """Pre-LN block: ``x + attn(LN1 x)``, then ``+ mlp(LN2 .)``, with hooks on every intermediate."""

    def __init__(self, cfg: TransformerConfig, index: int):
        super().__init__()
        self.prefix = f"blocks.{index}."
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.mlp = FeedForward(cfg)

    def forward(self, x: Tensor, tap: _Tap | None = None) -> Tensor:
        p = self.prefix
        x = _tap(tap, p + "hook_resid_pre", x)
        x = _tap(tap, p + "hook_resid_mid", x + _tap(tap, p + "hook_attn_out", self.attn(self.ln1(x), tap, p)))
        x = x + _tap(tap, p + "hook_mlp_out", self.mlp(self.ln2(x), tap, p))
        return _tap(tap, p + "hook_resid_post", x)


class TinyTransformer(nn.Module):
    """A pre-LN decoder-only transformer with learned positional embeddings and named hook points.

    Args:
        vocab: number of token ids (BOS included).
        d_model, n_layers, n_heads, d_mlp: widths and depth (defaults: the Part I model, 3 x 48, 4 heads, 192).
        n_ctx: the longest input (learned positions 0..n_ctx-1).
        act: MLP activation, ``"gelu"`` or ``"solu_ln"``.
        causal: causal attention (a decoder); ``False`` lets every position see every other (an encoder).
        init_range: std of the weight init (default 0.8 / sqrt(d_model), TransformerLens's).
        seed: draw the initial weights from a private generator with this seed (the global RNG is untouched);
            ``None`` draws from the global RNG.
        ln_eps: LayerNorm epsilon.

    Example::

        model = TinyTransformer(64, 48, 3, 4, 192, 32, act="solu_ln", seed=0)
        logits, cache = model.run_with_cache(tokens, names=["blocks.1.hook_resid_post"])
        logits = model.forward_from(2, model.resid_at(tokens, 2))   # == model(tokens)
    """

    def __init__(self, vocab: int, d_model: int = 48, n_layers: int = 3, n_heads: int = 4, d_mlp: int = 192,
                 n_ctx: int = 32, act: str = "gelu", *, causal: bool = True, init_range: float | None = None,
                 seed: int | None = None, ln_eps: float = 1e-5):
        super().__init__()
        self.cfg = cfg = TransformerConfig(vocab, d_model, n_layers, n_heads, d_mlp, n_ctx, act, causal,
                                           init_range, ln_eps)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):  # torch's default init draws globally
            self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
            self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
            self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
            self.ln_final = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
            self.unembed = nn.Linear(cfg.d_model, cfg.vocab, bias=False)
        self.init_weights(seed)

    @torch.no_grad()
    def init_weights(self, seed: int | None = None) -> None:
        """(Re-)initialise as described in the module docstring; same ``seed`` -> same weights on any device."""
        cfg = self.cfg
        std = cfg.init_range if cfg.init_range is not None else 0.8 / math.sqrt(cfg.d_model)
        gen = None if seed is None else torch.Generator().manual_seed(seed)

        def normal_(weight: Tensor, scale: float = 1.0) -> None:  # drawn on the CPU in float32, then copied
            weight.copy_(torch.empty(weight.shape).normal_(0.0, std * scale, generator=gen))

        residual = 1.0 / math.sqrt(2 * cfg.n_layers)
        normal_(self.embed.weight)
        normal_(self.pos_embed.weight)
        for block in self.blocks:
            for ln in (block.ln1, block.ln2, block.mlp.ln):
                if ln is not None:
                    ln.reset_parameters()
            for proj, scale in ((block.attn.q, 1.0), (block.attn.k, 1.0), (block.attn.v, 1.0), (block.attn.o, residual),
                                (block.mlp.fc_in, 1.0), (block.mlp.fc_out, residual)):
                normal_(proj.weight, scale)
                proj.bias.zero_()
        self.ln_final.reset_parameters()
        normal_(self.unembed.weight)

    # -- names ----------------------------------------------------------------------------------------------
    def hook_names(self) -> list[str]:
        """Every hook point of this model, in the order the forward pass reaches them."""
        points = [p for p in _BLOCK_POINTS if p != "mlp.hook_mid" or self.cfg.act == "solu_ln"]
        return (["hook_embed", "hook_pos_embed"] + [f"blocks.{i}.{p}" for i in range(self.cfg.n_layers) for p in points]
                + ["ln_final.hook_normalized"])

    def resid_name(self, layer: int) -> str:
        """Hook name of residual boundary ``layer`` (0: the embedding output, n_layers: after the last block)."""
        self._check_layer(layer)
        n = self.cfg.n_layers
        return f"blocks.{layer}.hook_resid_pre" if layer < n else f"blocks.{n - 1}.hook_resid_post"

    def _resolve(self, names) -> list[str]:
        known = self.hook_names()
        if names is None:
            return known
        if callable(names):
            return [n for n in known if names(n)]
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in known]
        if unknown:
            points = [n.removeprefix("blocks.0.") for n in known if n.startswith("blocks.0.")]
            raise ValueError(f"unknown hook name {unknown[0]!r}; allowed: hook_embed, hook_pos_embed, "
                             f"blocks.{{0..{self.cfg.n_layers - 1}}}.<point> with <point> in {', '.join(points)}; "
                             f"ln_final.hook_normalized")
        return names

    def _make_tap(self, hooks: dict[str, Hook] | None, keep=(), detach: bool = True) -> _Tap | None:
        hooks = dict(hooks or {})
        self._resolve(list(hooks))  # raises on unknown names
        if any(not callable(h) for h in hooks.values()):
            raise ValueError("hooks must map hook names to callables tensor -> tensor | None")
        return _Tap(hooks, keep, detach) if hooks or keep else None

    # -- checks ---------------------------------------------------------------------------------------------
    def _check_layer(self, layer: int) -> None:
        n = self.cfg.n_layers
        if isinstance(layer, bool) or int(layer) != layer or not 0 <= layer <= n:
            raise ValueError(f"layer must be a residual-stream boundary 0..{n} (0 = embedding output); got {layer!r}")

    def _check_tokens(self, tokens: Tensor) -> None:
        if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.dtype.is_floating_point \
                or tokens.dtype == torch.bool or tokens.is_complex():
            got = f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be an integer tensor [batch, pos]; got {got}")
        if not 1 <= tokens.shape[1] <= self.cfg.n_ctx:
            raise ValueError(f"tokens must have 1..n_ctx={self.cfg.n_ctx} positions; got {tokens.shape[1]}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.cfg.vocab):
            raise ValueError(f"token ids must lie in 0..{self.cfg.vocab - 1}; got {tokens.min().item()}.."
                             f"{tokens.max().item()}")

    def _check_resid(self, resid: Tensor) -> None:
        if not isinstance(resid, Tensor) or resid.dim() != 3 or resid.shape[-1] != self.cfg.d_model \
                or not 1 <= resid.shape[1] <= self.cfg.n_ctx:
            got = tuple(resid.shape) if isinstance(resid, Tensor) else type(resid).__name__
            raise ValueError(f"resid must be [batch, pos <= {self.cfg.n_ctx}, d_model={self.cfg.d_model}]; got {got}")

    # -- the forward pass, in pieces ------------------------------------------------------------------------
    def _embed(self, tokens: Tensor, tap: _Tap | None) -> Tensor:
        self._check_tokens(tokens)
        b, t = tokens.shape
        pos = self.pos_embed.weight[:t].expand(b, t, self.cfg.d_model)  # [B, T, d]
        return _tap(tap, "hook_embed", self.embed(tokens)) + _tap(tap, "hook_pos_embed", pos)

    def _blocks(self, x: Tensor, start: int, stop: int, tap: _Tap | None) -> Tensor:
        for block in self.blocks[start:stop]:
            x = block(x, tap)
        return x

    def _head(self, x: Tensor, tap: _Tap | None) -> Tensor:
        return self.unembed(_tap(tap, "ln_final.hook_normalized", self.ln_final(x)))  # [B, T, vocab]

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits ``[batch, pos, vocab]``; position t predicts token t + 1."""
        return self._head(self._blocks(self._embed(tokens, None), 0, self.cfg.n_layers, None), None)

    def run_with_hooks(self, tokens: Tensor, hooks: dict[str, Hook]) -> Tensor:
        """Logits with ``hooks`` (``{name: fn}``) applied; ``fn`` returning a tensor replaces the activation."""
        tap = self._make_tap(hooks)
        return self._head(self._blocks(self._embed(tokens, tap), 0, self.cfg.n_layers, tap), tap)

    def run_with_cache(self, tokens: Tensor, names=None, *, hooks: dict[str, Hook] | None = None,
                       detach: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and a dict of activations.

        Args:
            tokens: integer ``[batch, pos]``.
            names: which hook points to keep: ``None`` (all), a name, a list of names, or a predicate on names.
            hooks: optional replacement hooks, applied before caching.
            detach: cache detached tensors (``False`` keeps the graph, e.g. to take gradients w.r.t. them).

        Returns:
            ``(logits [batch, pos, vocab], {name: tensor})`` with the shapes of the module docstring.
        """
        tap = self._make_tap(hooks, self._resolve(names), detach) or _Tap({}, (), detach)
        logits = self._head(self._blocks(self._embed(tokens, tap), 0, self.cfg.n_layers, tap), tap)
        return logits, tap.cache

    def resid_at(self, tokens: Tensor, layer: int, hooks: dict[str, Hook] | None = None) -> Tensor:
        """The residual stream at boundary ``layer`` (0 = embedding output) ``[batch, pos, d_model]``.

        Only the blocks below ``layer`` run. Equals ``run_with_cache(tokens)[1][resid_name(layer)]``.
        """
        self._check_layer(layer)
        tap = self._make_tap(hooks)
        return self._blocks(self._embed(tokens, tap), 0, layer, tap)

    def forward_from(self, layer: int, resid: Tensor, hooks: dict[str, Hook] | None = None) -> Tensor:
        """Run blocks ``layer..n_layers-1`` and the unembedding on a residual stream ``[batch, pos, d_model]``.

        ``forward_from(l, resid_at(tokens, l))`` equals ``forward(tokens)``; feeding another model's (mapped)
        residual stream gives a stitched model. Hooks of the blocks that run fire as usual.
        """
        self._check_layer(layer)
        self._check_resid(resid)
        tap = self._make_tap(hooks)
        return self._head(self._blocks(resid, layer, self.cfg.n_layers, tap), tap)


def next_token_loss(model: Callable[[Tensor], Tensor], inputs: tuple, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy (nats) of one batch, in the form :func:`interpbook.train.fit` takes as ``loss=``.

    ``inputs[0]`` holds tokens ``[batch, pos]``; position t is scored on ``targets[:, t + 1]`` (usually the
    tokens themselves: ``fit(model, tokens, tokens, loss=next_token_loss)``). Targets equal to -100 are ignored,
    which masks positions out of the loss.
    """
    tokens = inputs[0]
    if tokens.dim() != 2 or tokens.shape[1] < 2 or targets.shape != tokens.shape:
        raise ValueError(f"next_token_loss needs tokens [batch, pos >= 2] and targets of the same shape; got "
                         f"{tuple(tokens.shape)} and {tuple(targets.shape)}")
    logits = model(tokens[:, :-1])  # [B, T-1, vocab]: the last token predicts nothing we can score
    return F.cross_entropy(logits.flatten(0, 1), targets[:, 1:].flatten(), ignore_index=-100)


@torch.no_grad()
def token_losses(model: Callable[[Tensor], Tensor], tokens: Tensor, batch_size: int = 512) -> Tensor:
    """Per-token next-token cross-entropy ``[n, pos - 1]`` (nats): entry t scores the prediction of token t + 1.

    ``model`` is any map tokens -> logits (e.g. a stitched model); evaluated in batches without gradients.
    """
    if tokens.dim() != 2 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be [n, pos >= 2]; got {tuple(tokens.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    was = getattr(model, "training", None)
    if was is not None:
        model.eval()
    out = []
    for i in range(0, len(tokens), batch_size):
        chunk = tokens[i:i + batch_size]
        logits = model(chunk[:, :-1])
        out.append(F.cross_entropy(logits.transpose(1, 2), chunk[:, 1:], reduction="none"))  # [b, T-1]
    if was:
        model.train()
    return torch.cat(out)
