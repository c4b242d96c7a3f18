"""TinyTransformer: causality, hook names and shapes, replacement hooks, stitching entry points, SoLU-LN, training."""

import math

import numpy as np
import pytest
import torch

from interpbook.data.language import SynthLanguage, unigram_entropy
from interpbook.models.transformer import TinyTransformer, next_token_loss, solu, token_losses
from interpbook.train import fit

ACTS = ["gelu", "solu_ln"]


def small(act="gelu", **kw):
    kw = {"seed": 0, **kw}
    return TinyTransformer(13, 16, 2, 4, 24, 10, act=act, **kw)


def tokens(n=3, t=10, vocab=13, seed=1):
    return torch.randint(0, vocab, (n, t), generator=torch.Generator().manual_seed(seed))


def randomise(model, seed=5, scale=0.3):
    """Make every parameter matter (non-zero biases, LayerNorm gains != 1) so tests can see a wrong formula."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("act", ACTS)
def test_every_hook_present_with_documented_shape(act):
    model = small(act)
    x = tokens(n=3, t=7)
    logits, cache = model.run_with_cache(x)
    assert logits.shape == (3, 7, 13)
    assert list(cache) == model.hook_names()  # all of them, in forward order
    b, t, d, h, dh, m = 3, 7, 16, 4, 4, 24
    want = {"hook_embed": (b, t, d), "hook_pos_embed": (b, t, d), "ln_final.hook_normalized": (b, t, d)}
    for i in range(2):
        p = f"blocks.{i}."
        want.update({p + "hook_resid_pre": (b, t, d), p + "attn.hook_pattern": (b, h, t, t),
                     p + "attn.hook_z": (b, t, h, dh), p + "hook_attn_out": (b, t, d), p + "hook_resid_mid": (b, t, d),
                     p + "mlp.hook_pre": (b, t, m), p + "mlp.hook_post": (b, t, m), p + "hook_mlp_out": (b, t, d),
                     p + "hook_resid_post": (b, t, d)})
        if act == "solu_ln":
            want[p + "mlp.hook_mid"] = (b, t, m)
    assert {k: tuple(v.shape) for k, v in cache.items()} == want
    # the residual stream adds up: pre + attn_out = mid, mid + mlp_out = post = next pre
    for i in range(2):
        p = f"blocks.{i}."
        pre, mid, post = (cache[p + n] for n in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post"))
        torch.testing.assert_close(pre + cache[p + "hook_attn_out"], mid)
        torch.testing.assert_close(mid + cache[p + "hook_mlp_out"], post)
    torch.testing.assert_close(cache["blocks.0.hook_resid_post"], cache["blocks.1.hook_resid_pre"])
    torch.testing.assert_close(cache["hook_embed"] + cache["hook_pos_embed"], cache["blocks.0.hook_resid_pre"])


def test_names_filter_and_pattern_is_causal_softmax():
    model = randomise(small())
    _, cache = model.run_with_cache(tokens(), names=lambda n: n.endswith("hook_pattern"))
    assert sorted(cache) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    pattern = cache["blocks.1.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:-1]))
    assert (pattern.triu(1) == 0).all()
    _, one = model.run_with_cache(tokens(), names="blocks.0.hook_mlp_out")
    assert list(one) == ["blocks.0.hook_mlp_out"]


@pytest.mark.parametrize("act", ACTS)
def test_causal(act):
    """Changing token t leaves the logits at positions < t unchanged and changes those at >= t."""
    model = randomise(small(act))
    x = tokens(n=2, t=10)
    t = 6
    x2 = x.clone()
    x2[:, t] = (x[:, t] + 1) % 13
    a, b = model(x), model(x2)
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-6)
    assert ((a[:, t:] - b[:, t:]).abs().amax(-1) > 1e-4).all()


def test_encoder_sees_the_future():
    model = randomise(small(causal=False))
    x = tokens(n=2, t=10)
    x2 = x.clone()
    x2[:, -1] = (x[:, -1] + 1) % 13
    assert ((model(x)[:, 0] - model(x2)[:, 0]).abs().amax(-1) > 1e-4).all()
    pattern = model.run_with_cache(x, names="blocks.0.attn.hook_pattern")[1]["blocks.0.attn.hook_pattern"]
    assert (pattern > 0).all()


@pytest.mark.parametrize("causal", [True, False])
def test_explicit_attention_equals_fused_kernel(causal):
    """Caching the pattern switches attention to the explicit softmax; both paths compute the same function."""
    model = randomise(small("solu_ln", causal=causal))
    x = tokens()
    with_pattern, cache = model.run_with_cache(x, names=["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_z"])
    _, fused = model.run_with_cache(x, names="blocks.1.attn.hook_z")
    torch.testing.assert_close(with_pattern, model(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache["blocks.1.attn.hook_z"], fused["blocks.1.attn.hook_z"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ACTS)
def test_identity_hooks_change_nothing(act):
    model = randomise(small(act))
    x = tokens()
    reference = model(x)
    names = model.hook_names()
    same = model.run_with_hooks(x, {n: (lambda a: a) for n in names})
    observed = []
    watch = model.run_with_hooks(x, {n: (lambda a, n=n: observed.append(n)) for n in names})
    torch.testing.assert_close(same, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(watch, reference, rtol=1e-5, atol=1e-6)
    assert observed == names  # every hook fired once, in forward order


@pytest.mark.parametrize("act", ACTS)
def test_forward_from_resid_at_is_the_forward(act):
    model = randomise(small(act))
    x = tokens()
    reference, cache = model.run_with_cache(x)
    for layer in range(model.cfg.n_layers + 1):
        resid = model.resid_at(x, layer)
        torch.testing.assert_close(resid, cache[model.resid_name(layer)])
        torch.testing.assert_close(model.forward_from(layer, resid), reference, rtol=1e-5, atol=1e-6)
    assert model.resid_name(0) == "blocks.0.hook_resid_pre" and model.resid_name(2) == "blocks.1.hook_resid_post"


def test_replacing_an_activation_propagates():
    model = randomise(small())
    x = tokens()
    other = torch.randn(3, 10, 16, generator=torch.Generator().manual_seed(3))
    # replacing the residual stream entering block 1 is running block 1 on it
    replaced, cache = model.run_with_cache(x, hooks={"blocks.1.hook_resid_pre": lambda a: other})
    torch.testing.assert_close(replaced, model.forward_from(1, other), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cache["blocks.1.hook_resid_pre"], other)  # the cache holds what flowed on
    # zero-ablating the last MLP leaves unembed(LN(resid_mid)) -- a known answer
    ablated, cache = model.run_with_cache(x, hooks={"blocks.1.hook_mlp_out": torch.zeros_like})
    expected = model.unembed(model.ln_final(cache["blocks.1.hook_resid_mid"]))
    torch.testing.assert_close(ablated, expected, rtol=1e-5, atol=1e-6)
    # a hook inside forward_from fires too
    block = model.blocks[1]
    resid_mid = other + block.attn(block.ln1(other))
    torch.testing.assert_close(model.forward_from(1, other, hooks={"blocks.1.hook_mlp_out": torch.zeros_like}),
                               model.unembed(model.ln_final(resid_mid)), rtol=1e-5, atol=1e-6)


def test_cache_keeps_the_graph_when_asked():
    model = small()
    logits, cache = model.run_with_cache(tokens(), names="blocks.0.hook_resid_mid", detach=False)
    (grad,) = torch.autograd.grad(logits.sum(), cache["blocks.0.hook_resid_mid"])
    assert grad.shape == (3, 10, 16) and grad.abs().sum() > 0
    assert not model.run_with_cache(tokens(), names="blocks.0.hook_resid_mid")[1]["blocks.0.hook_resid_mid"] \
        .requires_grad


def test_solu_known_values():
    x = torch.tensor([[0.0, 0.0], [3.0, 3.0], [20.0, 0.0], [-1.0, 1.0]])
    e = math.e
    expected = torch.tensor([[0.0, 0.0], [1.5, 1.5], [20.0, 0.0], [-1 / (1 + e * e), e * e / (1 + e * e)]])
    torch.testing.assert_close(solu(x), expected, rtol=1e-6, atol=1e-6)


def test_solu_ln_mlp_against_the_written_formula():
    """post = LayerNorm(pre * softmax(pre)) (learned gain, bias); out = post W_out^T + b_out. numpy, float64."""
    model = randomise(small("solu_ln")).double()
    x = tokens()
    _, cache = model.run_with_cache(x)
    mlp = model.blocks[1].mlp
    h = cache["blocks.1.hook_resid_mid"].numpy()
    w_in, b_in = mlp.fc_in.weight.detach().numpy(), mlp.fc_in.bias.detach().numpy()
    w_out, b_out = mlp.fc_out.weight.detach().numpy(), mlp.fc_out.bias.detach().numpy()
    ln2, ln = model.blocks[1].ln2, mlp.ln
    mu, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    normed = (h - mu) / np.sqrt(var + 1e-5) * ln2.weight.detach().numpy() + ln2.bias.detach().numpy()
    pre = normed @ w_in.T + b_in
    soft = np.exp(pre - pre.max(-1, keepdims=True))
    mid = pre * soft / soft.sum(-1, keepdims=True)
    post = (mid - mid.mean(-1, keepdims=True)) / np.sqrt(mid.var(-1, keepdims=True) + 1e-5)
    post = post * ln.weight.detach().numpy() + ln.bias.detach().numpy()
    np.testing.assert_allclose(cache["blocks.1.mlp.hook_pre"].numpy(), pre, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(cache["blocks.1.mlp.hook_mid"].numpy(), mid, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(cache["blocks.1.mlp.hook_post"].numpy(), post, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(cache["blocks.1.hook_mlp_out"].numpy(), post @ w_out.T + b_out, rtol=1e-9, atol=1e-10)


def test_gelu_is_the_exact_erf_gelu():
    model = randomise(small("gelu")).double()
    _, cache = model.run_with_cache(tokens(), names=["blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post"])
    pre = cache["blocks.0.mlp.hook_pre"]
    torch.testing.assert_close(cache["blocks.0.mlp.hook_post"], 0.5 * pre * (1 + torch.erf(pre / math.sqrt(2))))
    assert "blocks.0.mlp.hook_mid" not in model.hook_names()


def test_init_as_transformer_lens_and_seeded():
    state = torch.random.get_rng_state()
    model = TinyTransformer(64, 48, 3, 4, 192, 32, seed=7)
    assert torch.equal(state, torch.random.get_rng_state()), "a seeded init leaves the global RNG alone"
    std = 0.8 / math.sqrt(48)
    assert abs(model.embed.weight.std().item() - std) < 0.05 * std
    assert abs(model.blocks[0].attn.o.weight.std().item() - std / math.sqrt(6)) < 0.1 * std / math.sqrt(6)
    assert abs(model.blocks[2].mlp.fc_out.weight.std().item() - std / math.sqrt(6)) < 0.1 * std / math.sqrt(6)
    assert model.blocks[1].attn.q.bias.abs().sum() == 0 and model.unembed.bias is None
    same = TinyTransformer(64, 48, 3, 4, 192, 32, seed=7)
    other = TinyTransformer(64, 48, 3, 4, 192, 32, seed=8)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters()))
    assert not torch.equal(model.embed.weight, other.embed.weight)
    assert TinyTransformer(64, 48, init_range=0.02, seed=0).embed.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_next_token_loss_and_token_losses_agree():
    model = randomise(small())
    x = tokens(n=5)
    per_token = token_losses(model, x, batch_size=2)
    assert per_token.shape == (5, 9)
    torch.testing.assert_close(next_token_loss(model, (x,), x), per_token.mean(), rtol=1e-5, atol=1e-6)
    masked = x.clone()
    masked[:, :5] = -100  # targets 1..4 ignored: only predictions of tokens 5.. count
    torch.testing.assert_close(next_token_loss(model, (x,), masked), per_token[:, 4:].mean(), rtol=1e-5, atol=1e-6)
    # an uninformed model (all logits equal) pays log(vocab) per token
    flat = lambda t: torch.zeros(*t.shape, 13)
    torch.testing.assert_close(token_losses(flat, x), torch.full((5, 9), math.log(13)))


def test_trained_model_beats_the_unigram_entropy():
    """200 AdamW steps of the book's training loop on the synthetic language: the held-out loss must fall well
    below the best context-free loss (the unigram entropy, ~4 nats; the chain's own floor is ~1.1)."""
    torch.manual_seed(0)
    lang = SynthLanguage(seed=0)
    train, test = lang.split(3200, 256, seed=0)
    model = TinyTransformer(lang.vocab, 32, 2, 4, 64, lang.n_ctx, seed=0)
    before = token_losses(model, test).mean().item()
    fit(model, train, train, loss=next_token_loss, epochs=2, batch_size=32, lr=1e-2, warmup_steps=20,
        schedule="cosine", clip_grad=1.0)
    after = token_losses(model, test).mean().item()
    floor = unigram_entropy(test, lang.vocab)
    assert before > floor  # the margin is earned by training
    assert after < floor - 1.0, (after, floor)


@pytest.mark.parametrize("kwargs,match", [
    ({"act": "relu"}, "allowed: gelu, solu_ln"),
    ({"n_heads": 5}, "multiple of n_heads"),
    ({"n_layers": 0}, "n_layers must be an integer >= 1"),
    ({"init_range": -1.0}, "init_range must be > 0"),
])
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TinyTransformer(13, **{"d_model": 16, "n_ctx": 10, **kwargs})


def test_bad_inputs():
    model = small()
    with pytest.raises(ValueError, match="1..n_ctx=10 positions"):
        model(tokens(t=11))
    with pytest.raises(ValueError, match="token ids must lie in 0..12"):
        model(torch.full((1, 3), 13))
    with pytest.raises(ValueError, match="integer tensor"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="boundary 0..2"):
        model.resid_at(tokens(), 3)
    with pytest.raises(ValueError, match="boundary 0..2"):
        model.forward_from(-1, torch.zeros(1, 4, 16))
    with pytest.raises(ValueError, match="d_model=16"):
        model.forward_from(1, torch.zeros(1, 4, 15))
    with pytest.raises(ValueError, match="unknown hook name 'blocks.2.hook_resid_pre'.*blocks.{0..1}"):
        model.run_with_cache(tokens(), names=["blocks.2.hook_resid_pre"])
    with pytest.raises(ValueError, match="unknown hook name 'blocks.0.mlp.hook_mid'"):
        model.run_with_hooks(tokens(), {"blocks.0.mlp.hook_mid": lambda a: a})  # gelu has no hook_mid
    with pytest.raises(ValueError, match=r"must return None or a tensor of shape \(3, 10, 16\)"):
        model.run_with_hooks(tokens(), {"blocks.0.hook_resid_mid": lambda a: a[:, :1]})
    with pytest.raises(ValueError, match="pos >= 2"):
        next_token_loss(model, (tokens(t=1),), tokens(t=1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    model = randomise(small("solu_ln")).double()
    x = tokens()
    cpu_logits, cpu_cache = model.run_with_cache(x)
    gpu_logits, gpu_cache = model.cuda().run_with_cache(x.cuda())
    torch.testing.assert_close(gpu_logits.cpu(), cpu_logits)
    for name, value in cpu_cache.items():
        torch.testing.assert_close(gpu_cache[name].cpu(), value)
