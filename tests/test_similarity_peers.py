"""interpbook.similarity against peer libraries (each test skips when its peer is not installed).

Peers, installed with ``pip install -c constraints.txt ckatorch torch-cka rsatoolbox repsim`` (none pulls
torchvision or another torch; repsim 0.1.5 ships only an sdist here and compiles a C++17 extension):

- ckatorch 1.0.3: ``cka_base`` (linear / RBF, biased / unbiased, Kornblith et al.'s median over all n^2
  squared distances, so it matches ``median="all"``) and ``cka_batch`` (Nguyen et al.'s minibatch CKA).
- torch-cka 0.21: ``CKA.compare`` accumulates minibatch CKA over a DataLoader of model activations, in
  float32 (hence the 1e-4 tolerance).
- repsim 0.1.5: ``hsic`` (Gretton's biased and Song's unbiased estimators), ``cka`` (linear; RBF with the
  median over distinct pairs, our ``median="pairs"``), ``cca`` (Pillai = our ``summary="mean"``, Yanai =
  ``"mean_sq"``), ``pwcca`` (the average of both weighting directions). repsim's ``svcca`` orthonormalises
  each input *before* its 99% SVD truncation, which then keeps every direction: it equals CCA, not
  Raghu et al.'s SVCCA, and the last test pins that difference down.
- rsatoolbox 0.3.2: RDMs (its "euclidean" is the squared distance divided by d) and RDM comparison.

A speed comparison with ckatorch's Gram form is printed with ``-s``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from interpbook.similarity import (
    MinibatchCKA,
    cca_similarity,
    gram_linear,
    gram_rbf,
    hsic,
    linear_cka,
    linear_hsic,
    pwcca,
    rbf_cka,
    rdm,
    rsa,
    svcca,
)

pytestmark = pytest.mark.peer

F64 = torch.float64


def pair(n: int = 51, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two dependent representations of ``n`` examples (``n`` odd keeps every median unambiguous)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=F64) * torch.tensor([4.0, 2, 1, 1, 0.5, 0.5], dtype=F64)
    y = x[:, :3] @ torch.randn(3, 5, generator=g, dtype=F64) + torch.randn(n, 5, generator=g, dtype=F64)
    return x, y


# ---------------------------------------------------------------------------------------------- ckatorch
@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("kernel, threshold", [("linear", 1.0), ("rbf", 1.0), ("rbf", 0.6)])
def test_cka_matches_ckatorch(kernel, threshold, unbiased):
    ckatorch = pytest.importorskip("ckatorch")
    x, y = pair()
    theirs = ckatorch.cka_base(x, y, kernel=kernel, unbiased=unbiased, threshold=threshold)
    ours = linear_cka(x, y, debiased=unbiased) if kernel == "linear" else rbf_cka(x, y, threshold,
                                                                                  debiased=unbiased)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_minibatch_cka_and_hsic1_match_ckatorch():
    ckatorch = pytest.importorskip("ckatorch")
    x, y = pair(n=240)
    xb, yb = x.reshape(4, 60, 6), y.reshape(4, 60, 5)  # 4 minibatches of 60
    acc = MinibatchCKA()
    for a, b in zip(xb, yb):
        acc.update(a, b)
    torch.testing.assert_close(acc.compute(), ckatorch.cka_batch(xb, yb), rtol=1e-10, atol=1e-12)
    k, l = gram_linear(xb), gram_linear(yb)
    torch.testing.assert_close(hsic(k, l, unbiased=True), ckatorch.hsic1(k, l), rtol=1e-10, atol=1e-12)


def test_feature_form_agrees_with_ckatorch_and_prints_timings():
    ckatorch = pytest.importorskip("ckatorch")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 128, generator=g, dtype=F64)
    y = x[:, :64] @ torch.randn(64, 96, generator=g, dtype=F64) + torch.randn(2000, 96, generator=g, dtype=F64)
    t0 = time.perf_counter()
    ours = linear_cka(x, y)
    t1 = time.perf_counter()
    theirs = ckatorch.cka_base(x, y)
    t2 = time.perf_counter()
    print(f"\nlinear CKA 2000x128 vs 2000x96: ours (feature form) {1e3 * (t1 - t0):.1f} ms, "
          f"ckatorch (Gram form) {1e3 * (t2 - t1):.1f} ms")
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------- torch-cka
class _Layers(nn.Module):
    """Hands precomputed activations to torch-cka's hooks: input ``[b, sum d]`` -> one output per layer."""

    def __init__(self, widths):
        super().__init__()
        self.bounds = np.cumsum([0, *widths]).tolist()
        self.layers = nn.ModuleList(nn.Identity() for _ in widths)

    def forward(self, z):
        return [layer(z[:, a:b]) for layer, a, b in zip(self.layers, self.bounds[:-1], self.bounds[1:])]


def test_minibatch_cka_grid_matches_torch_cka():
    pytest.importorskip("torch_cka")
    from torch_cka import CKA

    x, y = pair(n=256)
    layers_a = [x, torch.tanh(x[:, :4])]
    layers_b = [y, x[:, 2:] ** 2, torch.relu(y[:, :3])]
    za, zb = torch.cat(layers_a, 1).float(), torch.cat(layers_b, 1).float()
    loader_a = DataLoader(TensorDataset(za), batch_size=64)
    loader_b = DataLoader(TensorDataset(zb), batch_size=64)
    names_a, names_b = [f"layers.{i}" for i in range(2)], [f"layers.{i}" for i in range(3)]
    peer = CKA(_Layers([6, 4]), _Layers([5, 4, 3]), "A", "B", names_a, names_b, device="cpu")
    peer.compare(loader_a, loader_b)
    acc = MinibatchCKA()
    for start in range(0, 256, 64):
        sl = slice(start, start + 64)
        acc.update([h[sl] for h in layers_a], [h[sl] for h in layers_b])
    torch.testing.assert_close(acc.compute(), peer.export()["CKA"].to(F64), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------- repsim
def test_hsic_and_cka_match_repsim():
    repsim = pytest.importorskip("repsim")
    x, y = pair()
    mats = [x.numpy(), y.numpy()]
    for estimator, unbiased in [("gretton", False), ("song", True)]:
        theirs = repsim.hsic(mats, kernel_type="linear", estimator=estimator)[0, 1]
        assert float(linear_hsic(x, y, unbiased=unbiased)) == pytest.approx(theirs, rel=1e-10)
        theirs = repsim.hsic(mats, kernel_type="rbf", estimator=estimator)[0, 1]
        ours = hsic(gram_rbf(x, median="pairs"), gram_rbf(y, median="pairs"), unbiased=unbiased)
        assert float(ours) == pytest.approx(theirs, rel=1e-9)
    assert float(linear_cka(x, y)) == pytest.approx(repsim.cka(mats, kernel_type="linear")[0, 1], rel=1e-10)
    assert float(rbf_cka(x, y, median="pairs")) == pytest.approx(repsim.cka(mats, kernel_type="rbf")[0, 1],
                                                                 rel=1e-10)


def test_cca_and_pwcca_match_repsim():
    repsim = pytest.importorskip("repsim")
    x, y = pair()
    mats = [x.numpy(), y.numpy()]
    assert float(cca_similarity(x, y)) == pytest.approx(repsim.cca(mats, "pillai")[0, 1], rel=1e-10)
    assert float(cca_similarity(x, y, summary="mean_sq")) == pytest.approx(repsim.cca(mats, "yanai")[0, 1],
                                                                           rel=1e-10)
    symmetric = (pwcca(x, y) + pwcca(y, x)) / 2  # repsim averages the two weighting directions
    assert float(symmetric) == pytest.approx(repsim.pwcca(mats)[0, 1], rel=1e-10)


def test_repsim_svcca_is_cca_not_truncated_svcca():
    repsim = pytest.importorskip("repsim")
    x, y = pair()  # x is anisotropic, so a 99%-variance truncation drops directions
    theirs = repsim.svcca([x.numpy(), y.numpy()], "yanai")[0, 1]
    assert float(svcca(x, y, keep=1.0, summary="mean_sq")) == pytest.approx(theirs, rel=1e-10)
    assert abs(float(svcca(x, y, keep=0.99, summary="mean_sq")) - theirs) > 1e-3


# --------------------------------------------------------------------------------------------- rsatoolbox
def test_rdms_and_rsa_match_rsatoolbox():
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, compare

    x, y = pair(n=25)
    rx, ry = calc_rdm(Dataset(x.numpy()), method="correlation"), calc_rdm(Dataset(y.numpy()), method="correlation")
    np.testing.assert_allclose(rdm(x).numpy(), rx.get_matrices()[0], atol=1e-12)
    euclid = calc_rdm(Dataset(x.numpy()), method="euclidean").get_matrices()[0]
    np.testing.assert_allclose((rdm(x, "sqeuclidean") / x.shape[1]).numpy(), euclid, rtol=1e-9, atol=1e-12)
    assert float(rsa(x, y)) == pytest.approx(float(compare(rx, ry, method="spearman")[0, 0]), rel=1e-10)
    assert float(rsa(x, y, compare="pearson")) == pytest.approx(float(compare(rx, ry, method="corr")[0, 0]),
                                                                rel=1e-10)
