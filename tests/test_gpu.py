"""Device parity: the same attack on CUDA and on the CPU gives the same answer (runs where a GPU exists)."""

from __future__ import annotations

import pytest
import torch

from interpbook.attacks import perturb, pixel_masks
from interpbook.models import MLP

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("norm", ["inf", "2", "1"])
def test_pgd_on_cuda_matches_cpu(norm):
    torch.manual_seed(0)
    model = MLP((1, 8, 8), (32,), 10).double()
    x, y = torch.rand(16, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (16,))
    mask = pixel_masks(16, (1, 8, 8), [20], generator=torch.Generator().manual_seed(1))[0]
    kw = dict(norm=norm, eps=0.5, steps=10, mask=mask, random_start=False)
    cpu = perturb(model, x, y, **kw)
    gpu = perturb(model.cuda(), x.cuda(), y.cuda(), **{**kw, "mask": mask.cuda()})
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-6, atol=1e-6)


def test_dtnet_iterations_on_cuda_match_cpu():
    from interpbook.data.reasoning import prefix_sums
    from interpbook.models import DTNet
    from interpbook.models.recurrent import iteration_report, progressive_loss

    x, y = prefix_sums(64, 12, seed=0)
    torch.manual_seed(0)
    net = DTNet(dim=1, width=16, recall=True, blocks_per_iter=2, max_iters=6).double()
    cpu = iteration_report(net, x.double(), y, 10)
    gpu = iteration_report(net.cuda(), x.double().cuda(), y.cuda(), 10)
    torch.testing.assert_close(gpu.state_change.cpu(), cpu.state_change, rtol=1e-6, atol=1e-9)
    assert torch.equal(gpu.correct.cpu(), cpu.correct)
    loss = progressive_loss(0.5, 6, seed=0)
    value = loss(net, (x.double().cuda(),), y.cuda())
    assert value.is_cuda and torch.isfinite(value)


def test_maze_and_prefix_generators_place_tensors_on_cuda():
    from interpbook.data.reasoning import is_perfect_maze, is_solution_path, mazes, prefix_sums

    inputs, targets = mazes(8, 13, seed=0, device="cuda")
    assert inputs.is_cuda and targets.is_cuda
    assert bool(is_perfect_maze(inputs).all()) and bool(is_solution_path(inputs, targets).all())
    x, y = prefix_sums(16, 10, seed=0, device="cuda")
    x_cpu, y_cpu = prefix_sums(16, 10, seed=0)
    assert x.is_cuda and torch.equal(x.cpu(), x_cpu) and torch.equal(y.cpu(), y_cpu)


def test_transformer_sae_and_cka_on_cuda_match_cpu():
    from interpbook.models import TinyTransformer
    from interpbook.sae import SparseAutoencoder
    from interpbook.similarity import linear_cka

    torch.manual_seed(0)
    model = TinyTransformer(vocab=16, d_model=16, n_layers=2, n_heads=2, d_mlp=32, n_ctx=8).double()
    tokens = torch.randint(0, 16, (4, 8))
    torch.testing.assert_close(model.cuda()(tokens.cuda()).cpu(), model.cpu()(tokens), rtol=1e-9, atol=1e-9)
    sae = SparseAutoencoder(16, 64, "topk", k=4).double()
    acts = torch.randn(32, 16, dtype=torch.float64)
    torch.testing.assert_close(sae.cuda()(acts.cuda()).x_hat.cpu(), sae.cpu()(acts).x_hat, rtol=1e-9, atol=1e-9)
    a, b = torch.randn(50, 8, dtype=torch.float64), torch.randn(50, 5, dtype=torch.float64)
    torch.testing.assert_close(linear_cka(a.cuda(), b.cuda()).cpu(), linear_cka(a, b), rtol=1e-9, atol=1e-12)
