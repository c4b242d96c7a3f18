"""Parity of interpbook.sae's TopK recipe with EleutherAI's ``sparsify`` (``eai-sparsify``), on the same weights.

``sparsify`` trained the Pythia SAEs that Lan et al. (2024) compare. Same weights must give the same
reconstruction, FVU, AuxK loss and (decoder-projected) gradients. One documented difference: ``sparsify``'s fused
encoder drops the gradient that AuxK sends through the pre-activations, so there AuxK trains only the dead
latents' decoder rows, while here (as in Gao et al., 2024) it also reaches their encoder; the gradient check with
dead latents therefore compares the decoder only. No L1 peer: ``sae-lens`` would downgrade the installed
``transformer-lens``, and ``dictionary-learning`` pulls torchvision.
"""

from __future__ import annotations

import pytest
import torch

sparsify = pytest.importorskip("sparsify")

from interpbook.sae import SparseAutoencoder, sae_loss  # noqa: E402

pytestmark = pytest.mark.peer
D_IN, D_SAE, K = 16, 64, 4


def _twins(seed=0):
    torch.manual_seed(seed)
    ours = SparseAutoencoder(D_IN, D_SAE, kind="topk", k=K, dead_tokens=100)
    with torch.no_grad():
        ours.b_enc.normal_(0.0, 0.1)
        ours.b_dec.normal_(0.0, 0.1)
    peer = sparsify.Sae(D_IN, sparsify.SaeConfig(num_latents=D_SAE, k=K))
    with torch.no_grad():
        peer.encoder.weight.copy_(ours.W_enc.t())  # sparsify stores the encoder as nn.Linear [d_sae, d_in]
        peer.encoder.bias.copy_(ours.b_enc)
        peer.W_dec.copy_(ours.W_dec)
        peer.b_dec.copy_(ours.b_dec)
    return ours, peer


def _dead(every=3):
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[::every] = True
    return dead


def test_forward_fvu_and_auxk_match_sparsify():
    ours, peer = _twins()
    x = torch.randn(32, D_IN)
    dead = _dead()
    ref = peer(x, dead_mask=dead)
    out = ours(x)
    torch.testing.assert_close(out.x_hat, ref.sae_out, atol=1e-5, rtol=1e-5)
    codes = torch.zeros(32, D_SAE).scatter(1, ref.latent_indices, ref.latent_acts)
    torch.testing.assert_close(out.codes, codes, atol=1e-6, rtol=0)
    with torch.no_grad():
        ours.eval()
        torch.testing.assert_close(sae_loss(ours, (x,)), ref.fvu, atol=1e-6, rtol=1e-5)  # no dead latents yet
        ours.tokens_since_fired[dead] = ours.dead_tokens + 1
        torch.testing.assert_close(sae_loss(ours, (x,)), ref.fvu + ours.auxk_alpha * ref.auxk_loss,
                                   atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("with_dead", [False, True])
def test_gradients_match_sparsify(with_dead):
    ours, peer = _twins(1)
    x = torch.randn(32, D_IN)
    assert (ours(x).pre_acts > 0).sum(1).min() >= K  # sparsify passes gradient to top-k latents even at 0
    dead = _dead() if with_dead else None
    ours.train()
    if with_dead:
        ours.tokens_since_fired[dead] = ours.dead_tokens + 1
    sae_loss(ours, (x,)).backward()
    ref = peer(x, dead_mask=dead)
    (ref.fvu + ours.auxk_alpha * ref.auxk_loss).backward()
    peer.remove_gradient_parallel_to_decoder_directions()
    torch.testing.assert_close(ours.W_dec.grad, peer.W_dec.grad, atol=1e-6, rtol=1e-4)
    live = ~dead if with_dead else torch.ones(D_SAE, dtype=torch.bool)  # AuxK's encoder path touches dead ones
    torch.testing.assert_close(ours.W_enc.grad[:, live], peer.encoder.weight.grad.t()[:, live], atol=1e-6, rtol=1e-4)
    if not with_dead:
        torch.testing.assert_close(ours.b_enc.grad, peer.encoder.bias.grad, atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(ours.b_dec.grad, peer.b_dec.grad, atol=1e-6, rtol=1e-4)


def test_decoder_normalisation_matches_sparsify():
    ours, peer = _twins(2)
    with torch.no_grad():
        scale = torch.rand(D_SAE, 1) + 0.5
        ours.W_dec.mul_(scale)
        peer.W_dec.mul_(scale)
    ours.normalise_decoder_()
    peer.set_decoder_norm_to_unit_norm()
    torch.testing.assert_close(ours.W_dec, peer.W_dec, atol=1e-6, rtol=1e-6)
