"""Transfer attacks (interpbook.attacks.transfer) and the small ResNet / ViT: known answers, identities between
the presets, the l_inf ball and box, and parity with the Adversarial Robustness Toolbox (FGSM, BIM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interpbook.attacks import ATTACKS, Ensemble, attack, fooling_rate, ila, sign_attack, train_generator
from interpbook.attacks.transfer import (
    gaussian_kernel,
    input_diversity,
    linf_distance,
    off_diagonal_mean,
    rates,
    smooth,
    transfer_matrix,
    transfer_outcomes,
)
from interpbook.data import digits
from interpbook.models import MLP, Linear, SmallCNN, SmallResNet, TinyViT
from interpbook.train import fit

SHAPE = (1, 16, 16)


@pytest.fixture(scope="module")
def setup():
    data = digits(16)
    torch.manual_seed(0)
    model = MLP(SHAPE, hidden=(64,))
    fit(model, data.x_train, data.y_train, epochs=5, lr=3e-3)
    return model, data.x_test[:64], data.y_test[:64]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_attack_stays_in_the_ball_and_box(setup, name):
    model, x, y = setup
    for eps in (0.03, 0.2):
        x_adv = attack(name, model, x, y, eps=eps, steps=4, generator=gen())
        assert x_adv.shape == x.shape
        assert float(linf_distance(x_adv, x).max()) <= eps + 1e-6
        assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1


def test_fgsm_is_the_closed_form(setup):
    model, x, y = setup
    eps = 0.1
    xg = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(nn.functional.cross_entropy(model(xg), y, reduction="sum"), xg)
    expected = (x + eps * grad.sign()).clamp(0, 1)
    assert torch.allclose(attack("FGSM", model, x, y, eps=eps), expected, atol=1e-7)


def test_presets_reduce_to_each_other(setup):
    model, x, y = setup
    eps = 0.1
    fgsm = attack("FGSM", model, x, y, eps=eps)
    assert torch.equal(sign_attack(model, x, y, eps=eps, steps=1, alpha=eps), fgsm)  # one I-FGSM step of size eps
    ifgsm = attack("I-FGSM", model, x, y, eps=eps, steps=5)
    for name, extra in [("MI-FGSM", dict(decay=0.0)), ("NI-FGSM", dict(decay=0.0)), ("DI-FGSM", dict(diversity=0.0)),
                        ("TI-FGSM", dict(kernel=1)), ("SI-FGSM", dict(scales=1))]:
        assert torch.allclose(attack(name, model, x, y, eps=eps, steps=5, generator=gen(), **extra), ifgsm,
                              atol=1e-7), name
    # an ensemble of one model is that model
    assert torch.allclose(attack("I-FGSM", Ensemble([model]), x, y, eps=eps, steps=5), ifgsm, atol=1e-7)


def test_iterating_changes_nothing_on_a_two_class_linear_model():
    """Two logits w_k.x: the cross-entropy gradient is (p - 1)(w_y - w_o), so its sign never changes and every
    sign-gradient attack (iterated, with momentum) walks straight to FGSM's corner of the ball."""
    torch.manual_seed(0)
    model = Linear(SHAPE, classes=2)
    x = torch.full((8, *SHAPE), 0.5)  # far from the box: no clipping at eps = 0.1
    y = torch.randint(0, 2, (8,))
    fgsm = attack("FGSM", model, x, y, eps=0.1)
    w = model.weight  # [2, D]
    direction = torch.where(y[:, None] == 0, w[1] - w[0], w[0] - w[1]).sign().view_as(x)
    assert torch.allclose(fgsm, x + 0.1 * direction)
    for name in ("I-FGSM", "MI-FGSM", "NI-FGSM"):
        assert torch.allclose(attack(name, model, x, y, eps=0.1, steps=10), fgsm, atol=1e-6), name


def test_ti_smoothing_on_a_linear_model_is_the_smoothed_weight_sign():
    torch.manual_seed(1)
    model = Linear(SHAPE, classes=2)
    x = torch.full((4, *SHAPE), 0.5)
    y = torch.zeros(4, dtype=torch.long)
    out = attack("TI-FGSM", model, x, y, eps=0.05, steps=1, kernel=5, sigma=1.5)
    w = (model.weight[1] - model.weight[0]).view(1, *SHAPE)
    expected = x + 0.05 * smooth(w.expand(4, *SHAPE), gaussian_kernel(5, 1.5)).sign()
    assert torch.allclose(out, expected, atol=1e-7)


def test_gaussian_kernel_and_smoothing():
    k = gaussian_kernel(5, 1.0)
    assert k.shape == (5, 5) and abs(float(k.sum()) - 1) < 1e-6 and torch.equal(k, k.T)
    g = torch.randn(2, 3, 8, 8)
    assert torch.allclose(smooth(g, gaussian_kernel(1, 1.0)), g)  # the 1x1 kernel is the identity
    const = torch.ones(1, 1, 9, 9)
    assert torch.allclose(smooth(const, k)[..., 2:-2, 2:-2], const[..., 2:-2, 2:-2], atol=1e-6)  # mass preserved


def test_input_diversity_identities():
    x = torch.rand(6, 1, 16, 16)
    assert torch.equal(input_diversity(x, 0.0, generator=gen()), x)  # never applied
    assert torch.allclose(input_diversity(x, 1.0, ratio=1.0, generator=gen()), x, atol=1e-5)  # r = H, no padding
    out = input_diversity(x, 1.0, generator=gen())
    assert out.shape == x.shape and not torch.allclose(out, x)
    assert torch.equal(out, input_diversity(x, 1.0, generator=gen()))  # the same draws for the same seed
    # the shrunk image keeps its mass up to the resampling: total intensity scales with the area factor
    ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert float(ratio.min()) > (1 / 1.25) ** 2 - 0.1 and float(ratio.max()) < 1.0 + 1e-3


def test_ensemble_averages_logits():
    torch.manual_seed(0)
    a, b = MLP(SHAPE, (8,)), MLP(SHAPE, (8,))
    x = torch.rand(5, *SHAPE)
    ens = Ensemble([a, b], weights=[3, 1])
    assert torch.allclose(ens(x), 0.75 * a(x) + 0.25 * b(x), atol=1e-6)


def test_ensemble_fusing_probabilities_is_liu_et_al_objective():
    torch.manual_seed(0)
    a, b = MLP(SHAPE, (8,)).double(), MLP(SHAPE, (8,)).double()
    x, y = torch.rand(5, *SHAPE, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 4])
    ens = Ensemble([a, b], weights=[3, 1], fuse="probs").double()
    mix = 0.75 * a(x).softmax(-1) + 0.25 * b(x).softmax(-1)
    torch.testing.assert_close(ens(x), mix.log())
    torch.testing.assert_close(ens(x).exp().sum(-1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(nn.functional.cross_entropy(ens(x), y), -mix[torch.arange(5), y].log().mean())
    one = Ensemble([a, b], weights=[1, 0], fuse="probs").double()  # a zero weight drops a member
    torch.testing.assert_close(one(x), a(x).log_softmax(-1))
    with pytest.raises(ValueError, match="allowed: logits, probs"):
        Ensemble([a], fuse="loss")


def test_outcomes_rates_and_bootstrap_indexing():
    class Fixed(nn.Module):  # predicts the class stored in the first pixel
        def forward(self, x):
            return nn.functional.one_hot(x[:, 0, 0, 0].long(), 3).float()

    y = torch.tensor([0, 1, 2, 0])
    x = torch.zeros(4, 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor([0, 1, 1, 0]).float()  # clean: right, right, wrong, right
    x_adv = x.clone()
    x_adv[:, 0, 0, 0] = torch.tensor([1, 1, 0, 2]).float()  # fools examples 0 and 3
    fooled, valid = transfer_outcomes([x_adv], [Fixed()], x, y)
    assert valid.tolist() == [[True, True, False, True]]
    assert fooled.tolist() == [[[True, False, True, True]]]
    assert abs(fooling_rate(Fixed(), x, x_adv, y) - 2 / 3) < 1e-6
    assert torch.allclose(rates(fooled, valid), torch.tensor([[2 / 3]]))
    assert torch.allclose(transfer_matrix([x_adv], [Fixed()], x, y), torch.tensor([[2 / 3]]))
    boot = rates(fooled, valid, index=torch.tensor([[0, 0, 1, 2], [3, 3, 3, 3]]))
    assert torch.allclose(boot[:, 0, 0], torch.tensor([2 / 3, 1.0]))
    m = torch.arange(9.0).view(3, 3)
    assert float(off_diagonal_mean(m)) == pytest.approx((1 + 2 + 3 + 5 + 6 + 7) / 6)


def test_ila_with_no_reference_direction_does_nothing_and_otherwise_stays_in_the_ball(setup):
    model, x, y = setup
    layer = model.net[1]  # the hidden ReLU
    assert torch.equal(ila(model, layer, x, x, eps=0.1, steps=5), x)  # zero direction, zero gradient
    ref = attack("I-FGSM", model, x, y, eps=0.1)
    out = ila(model, layer, x, ref, eps=0.1, steps=5)
    assert float(linf_distance(out, x).max()) <= 0.1 + 1e-6
    assert fooling_rate(model, x, out, y) > 0.5


def test_generator_fools_its_surrogate_and_leaves_it_unchanged():
    data = digits(16)
    torch.manual_seed(0)
    surrogate = SmallResNet(SHAPE, widths=(8, 16))
    fit(surrogate, data.x_train, data.y_train, epochs=6, lr=3e-3)
    state = {k: v.clone() for k, v in surrogate.state_dict().items()}
    g = train_generator(surrogate, data.x_train, data.y_train, eps=0.1, epochs=3, seed=0)
    assert all(torch.equal(state[k], v) for k, v in surrogate.state_dict().items())  # BN statistics included
    x, y = data.x_test[:200], data.y_test[:200]
    with torch.no_grad():
        x_adv = g(x)
    assert float(linf_distance(x_adv, x).max()) <= 0.1 + 1e-6
    noise = (x + 0.1 * torch.randint(0, 2, x.shape, generator=gen()).float().mul(2).sub(1)).clamp(0, 1)
    assert fooling_rate(surrogate, x, x_adv, y) > fooling_rate(surrogate, x, noise, y) + 0.2


def test_bad_inputs_raise_clear_errors(setup):
    model, x, y = setup
    with pytest.raises(ValueError, match="unknown attack"):
        attack("CW", model, x, y, eps=0.1)
    with pytest.raises(ValueError, match="eps >= 0"):
        sign_attack(model, x, y, eps=-1)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        sign_attack(model, x[0], y, eps=0.1)
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(4, 1.0)
    with pytest.raises(ValueError, match="at least one model"):
        Ensemble([])
    with pytest.raises(ValueError, match="multiples of the patch"):
        TinyViT((1, 15, 15))
    with pytest.raises(ValueError, match="odd"):
        SmallCNN(SHAPE, kernel=4)


@pytest.mark.parametrize("make", [lambda: SmallResNet(SHAPE), lambda: TinyViT(SHAPE),
                                  lambda: SmallCNN(SHAPE, (8, 16), (1, 2), kernel=5)])
def test_vision_models_shapes_and_gradients(make):
    torch.manual_seed(0)
    model = make()
    x = torch.rand(3, *SHAPE, requires_grad=True)
    out = model(x)
    assert out.shape == (3, 10)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.peer
def test_fgsm_and_bim_agree_with_art(setup):
    pytest.importorskip("art")
    from art.attacks.evasion import BasicIterativeMethod, FastGradientMethod
    from art.estimators.classification import PyTorchClassifier

    model, x, y = setup
    clf = PyTorchClassifier(model, loss=nn.CrossEntropyLoss(), input_shape=SHAPE, nb_classes=10, clip_values=(0, 1))
    eps = 0.1
    theirs = FastGradientMethod(clf, norm=np.inf, eps=eps).generate(x.numpy(), y.numpy())
    assert np.allclose(attack("FGSM", model, x, y, eps=eps).numpy(), theirs, atol=1e-6)
    theirs = BasicIterativeMethod(clf, eps=eps, eps_step=eps / 10, max_iter=10, verbose=False).generate(
        x.numpy(), y.numpy())
    ours = attack("I-FGSM", model, x, y, eps=eps, steps=10).numpy()
    assert np.mean(np.abs(ours - theirs) < 1e-5) > 0.999  # sign ties at exactly zero gradients may differ


def test_pgd_steps_can_cross_the_ball_from_a_random_start(setup):
    # with alpha = eps / T a random start near -eps can never reach +eps; the preset's 2.5 eps / T can
    model, x, y = setup
    eps, steps = 0.1, 4
    a = attack("PGD", model, x, y, eps=eps, steps=steps, generator=gen())
    b = sign_attack(model, x, y, eps=eps, steps=steps, random_start=True, alpha=2.5 * eps / steps, generator=gen())
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="step_factor"):
        sign_attack(model, x, y, eps=eps, step_factor=0)


def test_attacks_give_the_model_back_in_its_mode(setup):
    model, x, y = setup
    layer = model.net[1] if hasattr(model, "net") else next(m for m in model.modules() if isinstance(m, nn.Linear))
    for training in (True, False):
        model.train(training)
        attack("I-FGSM", model, x, y, eps=0.05, steps=2)
        ila(model, layer, x, x, eps=0.05, steps=2)
        fooling_rate(model, x, x, y)
        transfer_outcomes([x], [model], x, y)
        assert model.training is training
    model.eval()


def test_rates_are_nan_for_a_target_without_valid_examples():
    fooled = torch.zeros(1, 2, 3, dtype=torch.bool)
    valid = torch.tensor([[False, False, False], [True, True, False]])
    fooled[0, 1, 0] = True
    out = rates(fooled, valid)
    assert torch.isnan(out[0, 0]) and float(out[0, 1]) == 0.5


def test_generator_training_leaves_the_global_rng_alone(setup):
    model, x, y = setup
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    train_generator(model, x, y, eps=0.1, epochs=1, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_probability_ensemble_follows_its_members_device():
    a = MLP(SHAPE, (8,))
    ens = Ensemble([a], fuse="probs")
    ens.weights = ens.weights.double()  # a buffer in another dtype must not break the fusion
    assert ens(torch.rand(2, *SHAPE)).dtype == torch.float32
