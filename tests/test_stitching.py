"""Model stitching: known answers (self-stitch, exact affine recovery) and input checks."""

import pytest
import torch
from numpy.testing import assert_allclose

from interpbook.data.language import SynthLanguage
from interpbook.models.transformer import TinyTransformer, next_token_loss
from interpbook.similarity.stitching import AffineStitch, StitchedModel, least_squares_affine, stitch_models
from interpbook.train import fit

EXACT = 1e-6  # float64 least squares on well-conditioned data


@pytest.fixture(scope="module")
def lang_data():
    lang = SynthLanguage(vocab=16, n_ctx=12, repeat_len=(2, 4), seed=0)
    train, test = lang.split(96, 32, seed=0)
    return lang, train, test


@pytest.fixture(scope="module")
def trained(lang_data):
    lang, train, _ = lang_data
    model = TinyTransformer(lang.vocab, 16, 2, 2, 32, lang.n_ctx, seed=0)
    fit(model, train, train, epochs=2, batch_size=16, lr=3e-3, loss=next_token_loss)
    return model


def test_least_squares_recovers_exact_affine_map():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 7, generator=g, dtype=torch.float64)
    w, b = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    y = x @ w.T + b
    w_hat, b_hat = least_squares_affine(x.view(20, 10, 7), y.view(20, 10, 5), ridge=0.0)
    assert_allclose(w_hat.numpy(), w.numpy(), atol=EXACT)
    assert_allclose(b_hat.numpy(), b.numpy(), atol=EXACT)


def test_least_squares_is_the_regression_optimum():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 4, generator=g, dtype=torch.float64), torch.randn(300, 3, generator=g, dtype=torch.float64)
    w_hat, b_hat = least_squares_affine(x, y, ridge=0.0)
    ref = torch.linalg.lstsq(torch.cat([x, torch.ones(300, 1, dtype=x.dtype)], 1), y).solution  # [5, 3]
    assert_allclose(w_hat.T.numpy(), ref[:4].numpy(), atol=EXACT)
    assert_allclose(b_hat.numpy(), ref[4].numpy(), atol=EXACT)


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_self_stitch_has_no_penalty(trained, lang_data, layer):
    _, train, test = lang_data
    res = stitch_models(trained, trained, layer, train, test, steps=20, lr=1e-4, batch_size=16)
    assert abs(res.warm_penalty) < 1e-3  # the warm start is the identity
    assert abs(res.penalty) < 1e-2
    assert_allclose(res.stitch.weight.detach().numpy(), torch.eye(16).numpy(), atol=5e-2)
    assert res.stitched_loss == pytest.approx(res.top_loss + res.penalty)
    assert all(p.requires_grad for p in trained.parameters())  # the models are left as they were


def test_stitched_model_with_identity_equals_top(trained, lang_data):
    _, _, test = lang_data
    stitch = AffineStitch(16, 16)
    with torch.no_grad():
        stitch.weight.copy_(torch.eye(16))
    out = StitchedModel(trained, trained, 1, stitch)(test)
    assert_allclose(out.detach().numpy(), trained(test).detach().numpy(), atol=1e-5)


def test_adam_phase_improves_a_cold_stitch_between_different_models(trained, lang_data):
    lang, train, test = lang_data
    other = TinyTransformer(lang.vocab, 24, 2, 2, 32, lang.n_ctx, act="solu_ln", seed=1)
    fit(other, train, train, epochs=2, batch_size=16, lr=3e-3, loss=next_token_loss)
    res = stitch_models(trained, other, 1, train, test, steps=30, lr=3e-3, batch_size=16, warm_start=False)
    assert res.stitch.weight.shape == (24, 16)
    assert res.penalty < res.warm_penalty  # training the stitch helps
    assert len(res.history) >= 1


def test_device_argument(trained, lang_data):
    _, train, test = lang_data
    res = stitch_models(trained, trained, 1, train, test, steps=0, device="cpu")
    assert res.stitch.weight.device.type == "cpu" and res.history == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(layer=3), "layer must be a residual boundary 0..2"),
    (dict(steps=-1), "steps must be an integer"),
    (dict(batch_size=0), "batch_size must be an integer"),
    (dict(lr=0.0), "lr must be > 0"),
])
def test_bad_arguments_raise(trained, lang_data, kwargs, match):
    _, train, test = lang_data
    args = dict(layer=1) | kwargs
    with pytest.raises(ValueError, match=match):
        stitch_models(trained, trained, args.pop("layer"), train, test, **args)


def test_bad_inputs_raise(trained, lang_data):
    _, train, test = lang_data
    with pytest.raises(ValueError, match="train_tokens must be an integer tensor"):
        stitch_models(trained, trained, 1, train.float(), test)
    with pytest.raises(ValueError, match="bottom must have resid_at"):
        stitch_models(torch.nn.Linear(2, 2), trained, 1, train, test)
    with pytest.raises(ValueError, match="same examples"):
        least_squares_affine(torch.randn(10, 3), torch.randn(9, 3))
    with pytest.raises(ValueError, match="d_in must be an integer"):
        AffineStitch(0, 3)


def test_stitch_follows_the_models_dtype_and_keeps_the_top_frozen_in_eval_mode(trained, lang_data):
    import copy

    _, train, test = lang_data
    a, b = copy.deepcopy(trained).double(), copy.deepcopy(trained).double()
    a.train()
    b.train()
    seen = []
    handle = next(m for m in b.modules() if isinstance(m, torch.nn.LayerNorm)).register_forward_hook(
        lambda m, i, o: seen.append(m.training))
    try:
        res = stitch_models(a, b, 1, train, test, steps=3, batch_size=16)
    finally:
        handle.remove()
    assert res.stitch.weight.dtype == torch.float64
    assert seen and not any(seen)  # B's top ran in eval mode throughout, the Adam phase included
    assert a.training and b.training  # the caller's modes come back
