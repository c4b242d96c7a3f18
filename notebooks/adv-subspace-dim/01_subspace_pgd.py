# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # How many dimensions does an adversary need?
#
# *Charles Godfrey, Henry Kvinge, Elise Bishoff, Myles Mckay, Davis Brown, Tim Doster, Eleanor Byler.*
# **How many dimensions are required to find an adversarial example?** arXiv:2303.14173, 2023
# {cite}`godfrey2023subspace`.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# 1. run projected gradient descent (PGD) inside an $\ell_p$ ball **restricted to a coordinate subspace**;
# 2. derive, for a linear model, why attack success depends on $\epsilon\,(d/D)^{1/q}$;
# 3. test such a scaling law on data with a *collapse fit* (isotonic regression over an exponent);
# 4. explain why $p = 1$ behaves differently, and where the law breaks (the $[0,1]$ box, structured subspaces).
# ```
#
# ## The idea
#
# Many threat models let the adversary touch only part of the input: a few pixels, a sticker-sized
# patch, one modality of a multimodal input. The perturbation then lives in a subspace
# $V = \operatorname{span}\{e_i : i \in S\}$ of the input space $\mathcal X = \mathbb R^D$, with
# $d = |S| = \dim V$. The paper asks how vulnerability depends on $d$ and finds that the success rate of
# PGD with an $\ell_p$ budget $\epsilon$ is, to a good approximation, a monotone function of one number,
#
# $$ \epsilon \left(\frac{\dim V}{\dim \mathcal X}\right)^{1/q}, \qquad \frac1p + \frac1q = 1, $$
#
# provided $p > 1$.
#
# **Why: the linear toy model.** For a logit $f(x) = w^\top x + b$, Hölder's inequality gives the largest
# change an adversary can cause inside $B_p(\epsilon) \cap V$:
#
# $$ \max_{\delta \in V,\ \|\delta\|_p \le \epsilon} w^\top \delta = \epsilon\, \|w_S\|_q , $$
#
# attained by $\delta_i \propto \operatorname{sign}(w_i)|w_i|^{q-1}$ on $S$. For a random coordinate
# set, $\|w_S\|_q^q$ is a sum of $d$ of the $D$ terms $|w_i|^q$, so
# $\|w_S\|_q \approx (d/D)^{1/q}\,\|w\|_q$, and an example with margin $m$ is broken once
# $\epsilon (d/D)^{1/q} \gtrsim m / \|w\|_q$. For $p = \infty$ ($q = 1$) halving the subspace doubles the
# budget needed; for $p = 2$ it multiplies it by $\sqrt 2$. For $p = 1$ ($q = \infty$),
# $\|w_S\|_\infty = \max_{i \in S} |w_i|$ grows only like $\sqrt{2\log d}$ for Gaussian weights: there is
# no power law, and the naive exponent $1/q = 0$ misses the slow growth.
#
# **The attack.** PGD {cite}`madry2018towards` restricted to $V$ by a coordinate mask $M$:
#
# $$ \delta \leftarrow \Pi_{B_p(\epsilon) \cap V \cap \text{box}}
#    \big(\delta + \alpha\, s_p(M \odot \nabla_x \mathcal L)\big), $$
#
# with $s_\infty = \operatorname{sign}$, $s_2(g) = g/\|g\|_2$, and for $p=1$ either steepest ascent (one
# coordinate per step) or SLIDE {cite}`tramer2019adversarial` (the top few percent of coordinates) followed
# by the exact $\ell_1$-ball projection of {cite}`duchi2008efficient`. All of it is
# `interpbook.attacks.perturb`; the analysis helpers live in `interpbook.attacks.subspace`.

# %% tags=["parameters"]
scale = "ci"
seed = 0
device = "auto"

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import interpbook
from interpbook import claims, figures
from interpbook.attacks import (
    collapse_fit,
    dual_exponent,
    linear_max_change,
    loglog_slope,
    max_violation,
    minimal_epsilon,
    patch_masks,
    pixel_masks,
    success_grid,
)
from interpbook.data import digits
from interpbook.models import MLP, Linear
from interpbook.models.basic import accuracy
from interpbook.train import fit

SCALES = {
    "smoke": dict(  # seconds: proves the code path runs
        n_attack=24, dims=[16, 64, 256], n_eps=4, steps=5, epochs=1, bisect=4,
        patch_sides=[4, 16], toy_examples=200),
    "ci": dict(  # the book's default: <= 60 s on two CPU cores
        n_attack=256, dims=[8, 16, 32, 64, 128, 256], n_eps=24, steps=20, epochs=10, bisect=10,
        patch_sides=[3, 4, 6, 8, 11, 16], toy_examples=2000),
    "full": dict(  # every test digit, finer grids, longer attacks (still digits: see below)
        n_attack=540, dims=[4, 8, 16, 32, 64, 128, 256], n_eps=48, steps=100, epochs=20,
        bisect=14, patch_sides=[2, 3, 4, 6, 8, 11, 16], toy_examples=20000),
}
cfg = interpbook.start(
    "adv-subspace-dim", "01_subspace_pgd", scale=scale, seed=seed, device=device, scales=SCALES,
    title="How many dimensions are required to find an adversarial example?", paper="godfrey2023subspace")
figures.use_style()
cfg

# %% [markdown]
# ## The experiment
#
# | | smoke | ci | full |
# |---|---|---|---|
# | attacked test digits | 24 | 256 | 540 (all) |
# | subspace dimensions $d$ (of $D = 256$) | 16, 64, 256 | 8 … 256 (×2) | 4 … 256 (×2) |
# | budgets $\epsilon$ per norm (log-spaced) | 4 | 24 | 48 |
# | PGD steps | 5 | 20 | 100 |
# | bisection steps for $\epsilon^*$ | 4 | 10 | 14 |
#
# **Data and models.** scikit-learn's handwritten digits, bilinearly upsampled to $16 \times 16$ so that
# $D = 256$, pixels in $[0, 1]$. The main model is an MLP 256–128–10; a two-class logistic regression
# (digits 0–4 vs 5–9) serves the exactness check.
#
# **Subspaces.** Each attacked example gets its own random order of the 256 pixels; its $d$-dimensional
# subspace is the first $d$ pixels of that order, so subspaces are nested as $d$ grows.

# %%
dev = cfg.device
data = digits(16, seed=seed).to(dev)
D = math.prod(data.shape)
mlp = MLP(data.shape, hidden=(128,), classes=10).to(dev)
fit(mlp, data.x_train, data.y_train, epochs=cfg.epochs, lr=2e-3, seed=seed)
mlp_acc = accuracy(mlp, data.x_test, data.y_test)

with torch.no_grad():
    correct = mlp(data.x_test).argmax(1) == data.y_test
x_att, y_att = data.x_test[correct][: cfg.n_attack], data.y_test[correct][: cfg.n_attack]
gen = torch.Generator(device=dev).manual_seed(seed)
dims = np.array(cfg.dims)
masks = pixel_masks(len(x_att), data.shape, list(dims), generator=gen, device=dev)
print(f"MLP test accuracy {mlp_acc:.3f}; attacking {len(x_att)} correctly classified digits, D = {D}")

# %% [markdown]
# ## Success rate over budgets and subspace dimensions
#
# For each norm the budgets run from where the full-space attack almost never succeeds to where even the
# smallest subspace usually does: the law predicts that this takes a factor $(D/d_{\min})^{1/q}$ more
# budget than the full space needs.
#
# We attack first **without the $[0,1]$ box** (`clip=None`): the paper's law is a statement about the
# locally linear geometry of the model, and at $D = 256$ the box binds long before small subspaces reach
# high success — a pixel can move at most by one, so eight pixels cannot carry the $\ell_\infty$ budget of
# about 1.8 that the median digit needs in an 8-dimensional subspace. The boxed attack, the realistic
# threat model, follows below.

# %%
EPS_RANGE = {"inf": (10**-2.5, 10**0.3), "2": (10**-1.5, 10**1.0), "1": (10**-1.0, 10**1.5)}
NORM_LABEL = {"inf": r"$\ell_\infty$", "2": r"$\ell_2$", "1": r"$\ell_1$ (SLIDE)"}
pgd = dict(steps=cfg.steps, keep_best=True, generator=gen)
eps_grid, grids, fits = {}, {}, {}
for norm, (lo, hi) in EPS_RANGE.items():
    eps_grid[norm] = np.geomspace(lo, hi, cfg.n_eps)
    grids[norm] = success_grid(mlp, x_att, y_att, norm=norm, eps_grid=eps_grid[norm], masks=masks,
                               clip=None, **pgd)
    fits[norm] = collapse_fit(grids[norm], eps_grid[norm], dims, D)
    lo_v, hi_v = fits[norm].valley()
    print(f"{norm:>3}: gamma* = {fits[norm].gamma_star:.2f} (1/q = {1 / dual_exponent(norm):.2f}; near-optimal "
          f"{lo_v:.2f}..{hi_v:.2f}), residual {fits[norm].residual_star:.2e} vs {fits[norm].residual_zero:.2e} at 0")

# %%
def plot_grid(axes, grid_by_norm, exponent=None, title=""):
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(dims)))
    for ax, norm in zip(axes, EPS_RANGE):
        for row, d, c in zip(grid_by_norm[norm], dims, colors):
            gamma = (1 / dual_exponent(norm)) if exponent == "theory" else 0.0
            ax.plot(eps_grid[norm] * (d / D) ** gamma, row, "o-", ms=3, color=c, label=f"d = {d}")
        ax.set_xscale("log")
        ax.set_title(f"{NORM_LABEL[norm]} {title}")
        ax.set_xlabel(r"$\epsilon\,(d/D)^{1/q}$" if exponent == "theory" else r"$\epsilon$")
    axes[0].set_ylabel("attack success rate")
    axes[-1].legend(loc="upper left")


fig, axes = plt.subplots(2, 3, figsize=(12, 6.4), sharey=True)
plot_grid(axes[0], grids)
plot_grid(axes[1], grids, exponent="theory", title="collapsed")
fig.suptitle("Figure 1. PGD success on the MLP: raw (top) and against the predicted variable (bottom)")
fig.tight_layout()
figures.save(fig, "success_collapse")

# %% [markdown]
# For $p = \infty$ and $p = 2$ the six curves of the top row, one per subspace dimension, fall onto one
# curve once the budget is rescaled by $(d/D)^{1/q}$. For $p = 1$ the raw curves nearly coincide already
# and the rescaling by $(d/D)^{0}$ changes nothing: the $\ell_1$ adversary puts its budget on a handful
# of coordinates, and any subspace contains a few good ones.
#
# ### The collapse fit
#
# Rather than trusting the eye, scan the exponent: for each $\gamma \in [0, 1.5]$ compute
# $x = \log\big(\epsilon (d/D)^\gamma\big)$ for every grid cell, fit the best non-decreasing function of $x$
# (isotonic regression, pool-adjacent-violators) and record its mean squared residual. The minimiser
# $\gamma^*$ is the exponent the data prefer. We do the same on the **linear toy model** — Gaussian
# weights $w \sim \mathcal N(0, I_{256})$, margins $|\mathcal N(0,1)|$, success computed exactly from
# $\epsilon\|w_S\|_q \ge m$ — which is what the theory predicts with no attack in the loop.
#
# The residual has a flat bottom: with finitely many budgets, a range of exponents orders the grid cells
# equally well. The narrower that valley, the better the data pin $\gamma$ down; this is why the ci scale
# uses 24 budgets per norm (with 12, the $\ell_\infty$ valley spans about 0.85–1.12 and its argmin lands
# on an edge by chance). The printout above gives each valley's extent.

# %%
toy_gen = torch.Generator().manual_seed(seed + 1)
w_toy = torch.randn(D, generator=toy_gen, dtype=torch.float64)
m_toy = torch.randn(cfg.toy_examples, generator=toy_gen, dtype=torch.float64).abs()
toy_masks = pixel_masks(cfg.toy_examples, (D,), list(dims), generator=toy_gen).double()
toy_grids, toy_fits = {}, {}
for norm in EPS_RANGE:
    reach = linear_max_change(w_toy, toy_masks, 1.0, norm)  # ||w_S||_q, [len(dims), examples]
    scale_q = np.median(m_toy.numpy()) / float(reach[-1].median())  # centre the grid like the MLP's
    eps_t = np.geomspace(scale_q / 30, scale_q * 30, cfg.n_eps)
    hit = reach.unsqueeze(1) * torch.as_tensor(eps_t).view(1, -1, 1) >= m_toy.view(1, 1, -1)
    toy_grids[norm] = hit.double().mean(2).numpy()
    toy_fits[norm] = collapse_fit(toy_grids[norm], eps_t, dims, D)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for ax, norm in zip(axes, EPS_RANGE):
    f, t = fits[norm], toy_fits[norm]
    ax.semilogy(f.gammas, f.residuals, label=f"MLP, PGD (γ* = {f.gamma_star:.2f})")
    ax.semilogy(t.gammas, t.residuals, "--", label=f"linear toy, exact (γ* = {t.gamma_star:.2f})")
    ax.axvline(1 / dual_exponent(norm), color="k", lw=0.8, ls=":", label="1/q")
    ax.set_title(NORM_LABEL[norm])
    ax.set_xlabel(r"exponent $\gamma$")
    ax.legend()
axes[0].set_ylabel("isotonic-fit residual (MSE)")
fig.suptitle("Figure 2. Which exponent collapses the grid? Residual of the best monotone fit vs γ")
fig.tight_layout()
figures.save(fig, "residual_vs_gamma")

# %% [markdown]
# ## The minimal budget $\epsilon^*$
#
# A second view of the same law: for each example and subspace, bisect for the smallest budget at which
# PGD succeeds. The theory predicts $\epsilon^* \propto (d/D)^{-1/q}$, a straight line of slope $-1/q$ on
# log–log axes.

# %%
eps_star = {}
flat_masks = masks.reshape(-1, *data.shape)
x_rep, y_rep = x_att.repeat(len(dims), 1, 1, 1), y_att.repeat(len(dims))
for norm in ("inf", "2"):
    e = minimal_epsilon(mlp, x_rep, y_rep, norm=norm, mask=flat_masks, eps_max=4 * EPS_RANGE[norm][1],
                        iters=cfg.bisect, clip=None, **pgd)
    eps_star[norm] = e.view(len(dims), -1).cpu()
median_eps = {n: e.median(1).values.numpy() for n, e in eps_star.items()}
slopes = {n: loglog_slope(dims, v) for n, v in median_eps.items()}

fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4))
for ax, norm in zip(axes, eps_star):
    q_inv = 1 / dual_exponent(norm)
    ax.loglog(dims, median_eps[norm], "o-", label=f"median ε* (slope {slopes[norm]:.2f})")
    lo_q, hi_q = np.quantile(eps_star[norm].numpy(), [0.25, 0.75], axis=1)
    ax.fill_between(dims, lo_q, hi_q, alpha=0.2, label="interquartile range")
    ax.loglog(dims, median_eps[norm][-1] * (dims / D) ** -q_inv, "k:", label=f"slope −1/q = {-q_inv:.2f}")
    ax.set_xlabel("subspace dimension d")
    ax.set_title(NORM_LABEL[norm])
    ax.legend()
axes[0].set_ylabel(r"minimal budget $\epsilon^*$")
fig.suptitle("Figure 3. Minimal successful budget against subspace dimension")
fig.tight_layout()
figures.save(fig, "minimal_epsilon")

# %% [markdown]
# ## Exactness on a linear classifier
#
# On a linear model the closed form is not an approximation: the smallest budget that flips the decision
# is $\epsilon^* = |m| / \|w_S\|_q$ with $m$ the logit margin. PGD plus bisection should find it.
# Here PGD starts from the clean input: a random start leaves a component orthogonal to $w_S$ that the
# projection removes only slowly, which biases $\epsilon^*$ upwards by a few per cent in 20 steps. The
# $\ell_1$ check uses steepest ascent, which moves exactly the coordinate the closed form uses.

# %%
binary = lambda y: (y >= 5).long()
logreg = Linear(data.shape, classes=2).to(dev)
fit(logreg, data.x_train, binary(data.y_train), epochs=cfg.epochs, lr=1e-2, seed=seed)
with torch.no_grad():
    ok = logreg(data.x_test).argmax(1) == binary(data.y_test)
xl, yl = data.x_test[ok][: cfg.n_attack], binary(data.y_test[ok][: cfg.n_attack])
w_lin = (logreg.weight[1] - logreg.weight[0]).detach()
with torch.no_grad():
    margin = (logreg(xl)[:, 1] - logreg(xl)[:, 0]).abs()
lin_masks = pixel_masks(len(xl), data.shape, [32], generator=gen, device=dev)[0]
exact_err = {}
for norm, method in (("inf", "slide"), ("2", "slide"), ("1", "steepest")):
    closed = margin / linear_max_change(w_lin, lin_masks.flatten(1).double(), 1.0, norm).to(margin.dtype)
    # bracket [0, 2 x closed form] per example: the bisection cannot go below the true minimum, so the
    # check is whether PGD finds budgets as small as the closed form allows
    found = minimal_epsilon(logreg, xl, yl, norm=norm, mask=lin_masks, eps_max=2 * closed,
                            iters=cfg.bisect + 6, clip=None, l1_method=method, steps=cfg.steps,
                            random_start=False, generator=gen)
    exact_err[norm] = float(((found - closed).abs() / closed).max())
print(f"logistic regression accuracy {accuracy(logreg, data.x_test, binary(data.y_test)):.3f}")
print("largest relative error of PGD's eps* against margin/||w_S||_q:",
      {k: f"{v:.2%}" for k, v in exact_err.items()})

# %% [markdown]
# ## Where the law breaks: the box, and structured subspaces
#
# **The $[0,1]$ box.** Real attacks must keep pixels valid. At $D = 256$ a small subspace needs
# per-pixel changes larger than the box allows, so success saturates below one and the collapse fails
# at small $d$; on ImageNet-sized inputs the same fraction of pixels is thousands of coordinates and the
# box rarely binds. **Square patches** are subspaces whose coordinates are neighbours, so their
# gradients are not independent draws from the image — the random-subset argument need not apply.

# %%
box_grids = {n: success_grid(mlp, x_att, y_att, norm=n, eps_grid=eps_grid[n], masks=masks, clip=(0.0, 1.0),
                             **pgd) for n in ("inf", "2")}
box_fits = {n: collapse_fit(g, eps_grid[n], dims, D) for n, g in box_grids.items()}
sides = cfg.patch_sides
patch_dims = np.array([s * s for s in sides])
pmasks = patch_masks(len(x_att), data.shape, sides, generator=gen, device=dev)
patch_grid = success_grid(mlp, x_att, y_att, norm="2", eps_grid=eps_grid["2"], masks=pmasks, clip=None, **pgd)
patch_fit = collapse_fit(patch_grid, eps_grid["2"], patch_dims, D)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
colors = plt.cm.viridis(np.linspace(0, 0.9, len(dims)))
for ax, norm in zip(axes[:2], ("inf", "2")):
    for row, d, c in zip(box_grids[norm], dims, colors):
        ax.plot(eps_grid[norm] * (d / D) ** (1 / dual_exponent(norm)), row, "o-", ms=3, color=c, label=f"d = {d}")
    ax.set_xscale("log")
    ax.set_title(f"{NORM_LABEL[norm]}, pixels kept in [0, 1] (γ* = {box_fits[norm].gamma_star:.2f})")
    ax.set_xlabel(r"$\epsilon\,(d/D)^{1/q}$")
pcolors = plt.cm.magma(np.linspace(0, 0.8, len(sides)))
for row, d, c in zip(patch_grid, patch_dims, pcolors):
    axes[2].plot(eps_grid["2"] * (d / D) ** 0.5, row, "s-", ms=3, color=c, label=f"{int(math.isqrt(d))}² patch")
axes[2].set_xscale("log")
axes[2].set_title(f"$\\ell_2$, square patches (γ* = {patch_fit.gamma_star:.2f})")
axes[2].set_xlabel(r"$\epsilon\,(d/D)^{1/2}$")
axes[0].set_ylabel("attack success rate")
axes[0].legend(loc="upper left")
axes[2].legend(loc="upper left")
fig.suptitle("Figure 4. The same collapse with the [0, 1] box enforced (left, centre) and with patch subspaces (right)")
fig.tight_layout()
figures.save(fig, "box_and_patches")
print({n: round(f.gamma_star, 2) for n, f in box_fits.items()}, "patch gamma*:", round(patch_fit.gamma_star, 2))

# %% [markdown]
# ## Claims
#
# Each claim is the paper's statement, checked on the numbers computed above. C6.1–C6.3 concern the
# box-free geometry the law describes; C6.4 holds exactly for the linear toy and is *at risk* for the MLP
# (the plan expected the MLP's $\ell_1$ fit to be noisier); the box variant is *at risk* because at
# $D = 256$ small subspaces hit the box long before the budget the law asks for.

# %%
for norm, name in (("inf", "ℓ∞"), ("2", "ℓ2")):
    q_inv = 1 / dual_exponent(norm)
    f = fits[norm]
    claims.check(f"C6.1-{norm}", f"{name}: success collapses onto a function of eps·(d/D)^(1/q): |γ* − 1/q| ≤ 0.15",
                 value=abs(f.gamma_star - q_inv), op="<=", threshold=0.15, source="abstract; main collapse figure",
                 paper=f"γ = 1/q = {q_inv:g}", note=f"linear toy (exact): γ* = {toy_fits[norm].gamma_star:.2f}")
    claims.check(f"C6.1-{norm}-fit", f"{name}: the collapse explains the grid: residual(γ*) ≤ 0.25·residual(0)",
                 value=claims.ratio(f.residual_star, f.residual_zero), op="<=", threshold=0.25,
                 source="main collapse figure")
claims.check("C6.2", "ℓ∞ and ℓ2: success is non-decreasing in eps at fixed d and in d at fixed eps (largest drop "
             "≤ 0.02)", value=max(max_violation(grids[n]) for n in ("inf", "2")), op="<=", threshold=0.02,
             source="success-rate grids")
claims.check("C6.2-l1", "ℓ1 (SLIDE): success is non-decreasing in eps and in d (largest drop ≤ 0.02)",
             value=max_violation(grids["1"]), op="<=", threshold=0.02, expect="at-risk", source="p = 1 analysis",
             note="The paper's law is stated for p > 1. SLIDE moves a fixed fraction of the subspace's "
                  "coordinates, so a larger subspace spreads the l1 budget over more pixels, which can lower "
                  "success: one of the p = 1 subtleties.")
for norm, name in (("inf", "ℓ∞"), ("2", "ℓ2")):
    q_inv = 1 / dual_exponent(norm)
    claims.check(f"C6.3-{norm}", f"{name}: median minimal eps* scales as d^(−1/q) (log-log slope within ±0.15)",
                 value=slopes[norm], op="between", threshold=(-q_inv - 0.15, -q_inv + 0.15),
                 source="linear theory", paper=f"−1/q = {-q_inv:.2f}")
t1, tinf = toy_fits["1"], toy_fits["inf"]
claims.check("C6.4a-toy", "ℓ1, linear toy: the naive exponent 1/q = 0 fails: residual(0) ≥ 3·residual(γ*)",
             value=claims.ratio(t1.residual_zero, t1.residual_star), op=">=", threshold=3, source="p = 1 analysis",
             note="the research plan's own toy gave 6.6e-4 vs 8.5e-5")
claims.check("C6.4b-toy", "ℓ1, linear toy: the best exponent is small, γ* < 0.4", value=t1.gamma_star, op="<",
             threshold=0.4, source="p = 1 analysis",
             note="the research plan's own toy gave γ* = 0.15")
claims.check("C6.4c-toy", "ℓ1, linear toy: collapse is worse than for ℓ∞ (best residual ratio > 1)",
             value=claims.ratio(t1.residual_star, tinf.residual_star), op=">", threshold=1.0, source="p = 1 analysis")
f1, finf = fits["1"], fits["inf"]
mlp_note = ("The plan marks the MLP's ℓ1 behaviour as soft: PGD-ℓ1 variants disagree strongly, and with "
            "few coordinates per subspace the residuals are small for every γ.")
claims.check("C6.4a-mlp", "ℓ1, MLP: the naive exponent 1/q = 0 fails: residual(0) ≥ 3·residual(γ*)",
             value=claims.ratio(f1.residual_zero, f1.residual_star), op=">=", threshold=3, expect="at-risk",
             note=mlp_note + " Caveat: at γ = 0 every d shares one x, and the monotone fit averages tied x, so any "
                  "γ > 0 breaks the ties; this ratio mainly shows that success depends on d (here γ* = "
                  f"{f1.gamma_star:.2f}, close to the naive 0), not that the exponent is non-zero.",
             source="p = 1 analysis")
claims.check("C6.4b-mlp", "ℓ1, MLP: the best exponent is small, γ* < 0.4", value=f1.gamma_star, op="<",
             threshold=0.4, expect="at-risk", note=mlp_note, source="p = 1 analysis")
claims.check("C6.4c-mlp", "ℓ1, MLP: collapse is worse than for ℓ∞ (best residual ratio > 1)",
             value=claims.ratio(f1.residual_star, finf.residual_star), op=">", threshold=1.0, expect="at-risk",
             note=mlp_note, source="p = 1 analysis")
claims.check("C6.5", "On a linear classifier PGD's minimal eps* equals margin/||w_S||_q within 2% (worst case, "
             "ℓ∞, ℓ2, ℓ1)", value=max(exact_err.values()), op="<=", threshold=0.02, source="linear toy model")
claims.check("C6.1-box", "With pixels kept in [0, 1], ℓ2 success still collapses: |γ* − 1/2| ≤ 0.15",
             value=abs(box_fits["2"].gamma_star - 0.5), op="<=", threshold=0.15, expect="at-risk",
             note="At D = 256 a few pixels cannot carry the budget the law asks for without leaving [0, 1]; "
                  "the paper's CIFAR-10/ImageNet inputs have 12–600× more coordinates.",
             source="abstract (standard PGD)")
interpbook.finish();

# %% [markdown]
# ## What differs from the paper
#
# - **Data and models.** The paper attacks CIFAR-10 and ImageNet classifiers; here an MLP on $16\times16$
#   digits ($D = 256$) and a logistic regression, so the whole chapter runs in well under a minute on a
#   laptop CPU. The full-scale setting of this notebook is still digits (all test images, PGD-100, finer
#   grids); the CIFAR-10/ImageNet runs of the paper are not wired in yet.
# - **The box.** Claims C6.1–C6.3 are checked on attacks without the $[0,1]$ box, the geometry the
#   paper's law is about; Figure 4 and claim C6.1-box show what the box does at this small $D$.
# - **Subspaces.** Random pixel subsets, nested across $d$ for each example (the paper's exact sampling
#   is not stated in the abstract); square patches as a structured contrast.
# - **$\ell_1$.** The paper analyses $p = 1$ separately without (in the abstract) naming its $\ell_1$
#   attack; we use SLIDE for the grids and steepest ascent for the exactness check.
# - **Success** counts a run as successful if any PGD iterate misclassified (`keep_best=True`).
#
# ## Exercises
#
# 1. Change the subspace to *all pixels of the left half of the image* (a "modality"-like block). Does the
#    collapse still hold? Why might it not?
#
# ```{admonition} Solution
# :class: dropdown
# Build a mask with `masks = torch.zeros(...)` set to one on the chosen columns and pass it to
# `success_grid`. A half-image block is a single subspace rather than a random one, so
# $\|w_S\|_q$ is not $(d/D)^{1/q}\|w\|_q$ on average: the left half of a digit carries more (or less) of the
# model's gradient than a random half. Expect a shift of the curve along the $\epsilon$ axis rather than a
# collapse onto the random-subset curve.
# ```
#
# 2. Show that for $w \sim \mathcal N(0, I_D)$, $\mathbb E\,\|w_S\|_2^2 = d$, and use it to explain the
#    exponent $1/2$ for $p = 2$. Then compute $\|w_S\|_\infty$ for growing $d$ numerically and compare it
#    with $\sqrt{2 \log d}$.
#
# ```{admonition} Solution
# :class: dropdown
# $\|w_S\|_2^2 = \sum_{i \in S} w_i^2$ has expectation $d$ and concentrates (relative fluctuations
# $\sim 1/\sqrt d$), so $\|w_S\|_2 \approx \sqrt d = (d/D)^{1/2}\sqrt D$, giving the exponent $1/q = 1/2$.
# Numerically, `torch.randn(10000, d).abs().max(1).values.mean()` grows from about 1.4 at $d = 4$ to about
# 2.9 at $d = 256$, close to $\sqrt{2\log d}$ for large $d$: a slow, non-power-law growth, which is why the
# best exponent for $p = 1$ is small but not zero.
# ```
#
# 3. Train the MLP adversarially (replace the clean training batches by PGD-$\ell_\infty$ examples at
#    $\epsilon = 0.1$). Does the exponent change, or only the scale of $\epsilon^*$?
#
# ```{admonition} Solution
# :class: dropdown
# Adversarial training mostly moves the curves to larger budgets; the law concerns how the budget
# trades against the dimension, which the linear argument ties to the dual norm, not to the scale of the
# weights. Expect $\gamma^*$ near $1$ still, with larger $\epsilon^*$ at every $d$.
# ```
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
