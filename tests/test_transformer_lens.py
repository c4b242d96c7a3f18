"""Parity with TransformerLens: same weights -> same logits and the same activation under every hook name.

TransformerLens 4.x replaced ``HookedTransformer`` by ``TransformerBridge``; its native model
(``TransformerBridge.boot_native``) is the same pre-LN GPT-2 layout with the legacy hook names, so our weights are
loaded into it and every cached activation compared. Its ``solu_ln`` MLP keeps the post-softmax, pre-LayerNorm
activation at ``mlp.ln.hook_in`` (the legacy ``mlp.hook_mid``), and its ``ln_final.hook_normalized`` is taken before the
LayerNorm's gain and bias (the legacy one, and ours, after them: the unembedding's input, the bridge's ``hook_out``).
"""

import pytest
import torch

pytest.importorskip("transformer_lens")
pytest.importorskip("transformer_lens.model_bridge.sources.native", reason="needs transformer-lens >= 4")
from transformer_lens.config import TransformerBridgeConfig  # noqa: E402
from transformer_lens.model_bridge.sources.native import boot  # noqa: E402
from transformer_lens.utilities.activation_functions import solu as tl_solu  # noqa: E402

from interpbook.models.transformer import TinyTransformer, solu  # noqa: E402

pytestmark = pytest.mark.peer
TOL = dict(rtol=1e-5, atol=1e-5)
OUR_TOP = {"tok_embed": "embed", "pos": "pos_embed", "layers": "blocks", "ln_out": "ln_final", "head": "unembed"}


def config(act, seed=3):
    return TransformerBridgeConfig(d_model=16, d_head=4, n_layers=2, n_ctx=10, n_heads=4, d_vocab=13, d_mlp=24,
                                   act_fn=act, normalization_type="LN", seed=seed)


def our_name(tl_param: str) -> str:
    parts = tl_param.replace("._original_component", "").split(".")
    return ".".join([OUR_TOP[parts[0]], *parts[1:]])


def load_ours_into_tl(model, bridge):
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, param in bridge.original_model.named_parameters():
            param.copy_(ours[our_name(name)])
    return bridge


def tl_hook(name: str) -> str:
    return {"ln_final.hook_normalized": "ln_final.hook_out"}.get(name, name.replace("mlp.hook_mid", "mlp.ln.hook_in"))


@pytest.mark.parametrize("act", ["gelu", "solu_ln"])
def test_same_seed_same_initial_weights(act):
    ours = TinyTransformer(13, 16, 2, 4, 24, 10, act=act, seed=3)
    theirs = dict(boot(config(act, seed=3)).original_model.named_parameters())
    assert len(theirs) == len(list(ours.parameters()))
    for name, value in theirs.items():
        assert torch.equal(dict(ours.named_parameters())[our_name(name)], value), name


@pytest.mark.parametrize("act", ["gelu", "solu_ln"])
def test_logits_and_every_activation_match(act):
    torch.manual_seed(0)
    model = TinyTransformer(13, 16, 2, 4, 24, 10, act=act, seed=1)
    with torch.no_grad():  # non-trivial biases and LayerNorm gains, so every parameter is exercised
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    bridge = load_ours_into_tl(model, boot(config(act)))
    x = torch.randint(0, 13, (4, 10))
    logits, cache = model.run_with_cache(x)
    tl_logits, tl_cache = bridge.run_with_cache(x)
    torch.testing.assert_close(logits, tl_logits, **TOL)
    for name, value in cache.items():
        torch.testing.assert_close(value, tl_cache[tl_hook(name)], **TOL, msg=name)
    # replacement hooks and running from a layer agree too
    zero = "blocks.0.hook_resid_post"
    torch.testing.assert_close(model.run_with_hooks(x, {zero: torch.zeros_like}),
                               bridge.run_with_hooks(x, fwd_hooks=[(zero, lambda t, hook: torch.zeros_like(t))]), **TOL)
    resid = torch.randn(4, 10, 16)
    torch.testing.assert_close(model.resid_at(x, 1), bridge(x, stop_at_layer=1), **TOL)
    torch.testing.assert_close(model.forward_from(1, resid), bridge(resid, start_at_layer=1), **TOL)


def test_solu_matches_transformer_lens():
    x = 3 * torch.randn(5, 7, 33, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(solu(x), tl_solu(x), rtol=0, atol=1e-7)
